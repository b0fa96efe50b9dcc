//! Backfill: reconcile every in-scope user against the HR source.
//!
//! 1. Stream the users once (`$select`, 999 a page), plan each in-scope user, and build the `employeeId`
//!    index that finds ambiguous matches. Only compact plans are kept, not the users.
//! 2. Refuse every plan whose `employeeId` turned out to be shared (`DuplicateTargetEntries`).
//! 3. Write within the client-side rate limit, 20 users per `$batch`, a few batches in flight.
//!
//! Resumable: the run id lives in `checkpoints/backfill.json` until the run completes, and the run's
//! audit log says which users were already written, so a killed run (or a timer invocation that ran out
//! of time) continues with the same run id and never writes a user twice.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use std::sync::Arc;

use entra_core::{
    address_fingerprint, plan_user_among, AddressBook, AlternateEmail, Decision, EmployeeIdIndex,
    FieldIssue, HrIndex, Outcome, SourceLookup, UserPatch, UserRecord,
};
use entra_graph::GraphError;
use entra_state::{StateStore, WriteCondition};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::apply::{outcome_for_write_error, UserResult};
use super::audit::{now_rfc3339, read_run, AuditError, AuditLog};
use super::claim::{unix_ms, user_claim_key, ClaimGuard, ClaimStats, Claimed, Claims, LEASE};
use super::context::HrSource;
use super::email_method::{all_markers, with_method_step, MethodWriter};
use super::report::{belongs_in_report, ReportRow, Tally};
use super::writeback::{settles_match, write_back, WritebackStep};
use super::{EnrichContext, RunId};

/// The state-store key of the backfill checkpoint.
pub const CHECKPOINT_KEY: &str = "checkpoints/backfill.json";
/// The users Graph refused with `Authorization_RequestDenied` (privileged admins): not attempted
/// again by later backfills until `retry_denied`, so a daily backfill spends no quota on them.
pub const DENIED_KEY: &str = "checkpoints/denied-users.json";
/// Rounds of writes in one run: the first, then retries of users whose write failed transiently.
const TRANSIENT_ROUNDS: u32 = 4;
/// Graph's `$batch` limit (<https://learn.microsoft.com/graph/json-batching>).
const BATCH_SIZE: usize = 20;

/// How to run a backfill.
#[derive(Debug, Clone)]
pub struct BackfillOptions {
    /// Write at most this many users (the listing is always complete, so duplicates are always found).
    pub limit: Option<usize>,
    /// `$batch` requests in flight at once.
    pub concurrency: usize,
    /// Stop starting writes after this long (timer invocations); the next run resumes.
    pub time_budget: Option<Duration>,
    /// Ignore an unfinished run and start a new one.
    pub fresh: bool,
    /// Try again the users an earlier run was denied (after the app was granted the directory role).
    pub retry_denied: bool,
    /// Write every matched user's work email and username back to Workday too
    /// (`ENRICH_WORKDAY_WRITEBACK`); a dry run lists what it would write back.
    pub writeback: bool,
}

impl Default for BackfillOptions {
    fn default() -> Self {
        Self {
            limit: None,
            concurrency: 8,
            time_budget: None,
            fresh: false,
            retry_denied: false,
            writeback: false,
        }
    }
}

/// Progress callbacks, so the command line can draw a bar and the handlers stay transport-free.
pub trait Progress: Send + Sync {
    /// A new phase starts; `total` when it is known.
    fn phase(&self, name: &'static str, total: Option<u64>);
    /// `n` more items done in the current phase.
    fn advance(&self, n: u64);
    /// The run is over.
    fn finish(&self);
}

/// No progress display.
pub struct NoProgress;

impl Progress for NoProgress {
    fn phase(&self, _: &'static str, _: Option<u64>) {}
    fn advance(&self, _: u64) {}
    fn finish(&self) {}
}

/// What a backfill did.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BackfillSummary {
    pub run_id: RunId,
    /// True when this run continued an unfinished one.
    pub resumed: bool,
    pub dry_run: bool,
    /// False when the time budget or the limit stopped it before every planned write was done.
    pub complete: bool,
    pub users_listed: u64,
    pub users_in_scope: u64,
    /// PATCHes Graph accepted in this invocation (each user at most once).
    pub writes: u64,
    /// Users skipped because this run had already written them before it was interrupted.
    pub already_written: u64,
    /// Planned writes left for the next invocation (time budget or limit).
    pub deferred: u64,
    pub outcomes: Tally,
    pub elapsed_ms: u64,
    /// Duration of the write phase alone (what the write rate is measured against).
    pub write_ms: u64,
    /// Claims taken before writes, users left to another handler writing them at the same moment,
    /// and the state-store requests the claims cost.
    pub claims: ClaimStats,
    /// What the HR file held, when the source is a file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hr_file: Option<HrFileCounts>,
    /// What `--writeback` did (or, in a dry run, would do) in Workday.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub writeback: Option<WritebackTotals>,
    /// Every user not updated, with the reason.
    #[serde(skip)]
    pub report: Vec<ReportRow>,
    /// The employeeIds of the in-scope users, to list the HR records that matched none of them.
    #[serde(skip)]
    pub in_scope_ids: Arc<EmployeeIdIndex>,
}

/// The rows of an HR file, and how many matched an in-scope user (Microsoft's "users in the source
/// that did not match": new hires not synced yet, employeeId typos, leavers).
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HrFileCounts {
    /// `file` (a CSV export) or `workday` (the RaaS report).
    pub source: &'static str,
    pub records: u64,
    pub matched: u64,
    pub unmatched: u64,
    pub blank_employee_ids: u64,
    /// How long reading the source took (the whole file, or the whole Workday report).
    pub read_ms: u64,
}

/// Backfill failures that stop the whole run (per-user problems are outcomes, not errors).
#[derive(Debug, thiserror::Error)]
pub enum BackfillError {
    #[error("listing users from Graph failed: {0}")]
    Graph(#[from] GraphError),
    #[error("state store: {0}")]
    State(#[from] entra_state::StateError),
    #[error(transparent)]
    Audit(#[from] AuditError),
    #[error("another backfill instance updated the checkpoint at the same time; this one stops to avoid double work")]
    Conflict,
    #[error("the time budget (ENRICH_TIME_BUDGET_SECONDS) and its grace ran out during a call; the next run resumes this one")]
    Deadline,
    #[error("{0}")]
    Source(#[from] crate::sources::SourceError),
    #[error("reading the Workday report failed: {0}")]
    Workday(#[from] entra_workday::WorkdayError),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Checkpoint {
    run_id: RunId,
    status: RunStatus,
    started: String,
    updated: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
enum RunStatus {
    Running,
    Complete,
}

/// The slice of a user the write phase needs: identity, the before-values, and the plan.
struct PlannedWrite {
    user_id: String,
    upn: Option<String>,
    employee_id: Option<String>,
    other_mails: Vec<String>,
    usage_location: Option<String>,
    /// Empty when only the email method is to be written.
    patch: UserPatch,
    outcome: Outcome,
    issues: Vec<FieldIssue>,
    /// When the page this plan came from was read (Unix ms): a write released by another handler
    /// after it makes the plan stale.
    read_at: i64,
    /// The email method's address, when it is to be brought to it, and the marker the run found.
    method: Option<(AlternateEmail, Option<String>)>,
}

impl PlannedWrite {
    fn new(
        user: &UserRecord,
        patch: UserPatch,
        outcome: Outcome,
        issues: Vec<FieldIssue>,
        read_at: i64,
    ) -> Self {
        Self {
            user_id: user.id().to_string(),
            upn: user.user_principal_name().map(str::to_string),
            employee_id: user.employee_id().map(str::to_string),
            other_mails: user.other_mails(),
            usage_location: user.usage_location().map(str::to_string),
            patch,
            outcome,
            issues,
            read_at,
            method: None,
        }
    }

    /// Rebuilds the minimal user record the audit log and the report need.
    fn record(&self) -> Option<UserRecord> {
        UserRecord::from_json(json!({
            "id": self.user_id,
            "userPrincipalName": self.upn,
            "employeeId": self.employee_id,
            "otherMails": self.other_mails,
            "usageLocation": self.usage_location,
        }))
        .ok()
    }
}

/// What one `$batch` came back with.
struct BatchDone {
    results: Vec<UserResult>,
    /// Writes that failed transiently, for a later round.
    again: Vec<PlannedWrite>,
}

/// Counts and report rows of a run, filled as users are settled.
#[derive(Default)]
struct Totals {
    tally: Tally,
    report: Vec<ReportRow>,
    written: u64,
    deferred: u64,
    already_written: u64,
}

impl Totals {
    fn settle(&mut self, result: &UserResult, personal_email: Option<&str>) {
        self.tally.add_result(result);
        if belongs_in_report(result) {
            self.report
                .push(ReportRow::from_result(result, personal_email));
        }
    }
}

/// Writes planned users 20 to a `$batch`, a few batches in flight, while the listing goes on: the run
/// holds only the batches in flight, never the whole population.
struct WritePipeline {
    graph: entra_graph::GraphClient,
    methods: MethodWriter,
    audit: AuditLog,
    claims: Claims,
    concurrency: usize,
    batch: Vec<PlannedWrite>,
    in_flight: futures::stream::FuturesUnordered<
        std::pin::Pin<Box<dyn std::future::Future<Output = BatchDone> + Send>>,
    >,
    retry: Vec<PlannedWrite>,
    last_round: bool,
}

impl WritePipeline {
    fn new(ctx: &EnrichContext, audit: AuditLog, claims: Claims, concurrency: usize) -> Self {
        Self {
            graph: ctx.graph.clone(),
            methods: MethodWriter::new(ctx),
            audit,
            claims,
            concurrency: concurrency.max(1),
            batch: Vec::with_capacity(BATCH_SIZE),
            in_flight: futures::stream::FuturesUnordered::new(),
            retry: Vec::new(),
            last_round: false,
        }
    }

    async fn push(
        &mut self,
        write: PlannedWrite,
        totals: &mut Totals,
        denied: &mut HashSet<String>,
    ) {
        self.batch.push(write);
        if self.batch.len() == BATCH_SIZE {
            self.send(totals, denied).await;
        }
    }

    async fn send(&mut self, totals: &mut Totals, denied: &mut HashSet<String>) {
        if self.batch.is_empty() {
            return;
        }
        while self.in_flight.len() >= self.concurrency {
            self.collect_one(totals, denied).await;
        }
        let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(BATCH_SIZE));
        let writers = Writers {
            graph: self.graph.clone(),
            methods: self.methods.clone(),
            audit: self.audit.clone(),
            claims: self.claims.clone(),
        };
        let last_round = self.last_round;
        self.in_flight
            .push(Box::pin(write_batch(writers, batch, last_round)));
    }

    async fn collect_one(&mut self, totals: &mut Totals, denied: &mut HashSet<String>) {
        let Some(done) = self.in_flight.next().await else {
            return;
        };
        self.retry.extend(done.again);
        for r in done.results {
            match &r.outcome {
                Outcome::Updated { .. } => {
                    totals.written += 1;
                    denied.remove(&r.user_id);
                }
                Outcome::Denied { .. } => {
                    denied.insert(r.user_id.clone());
                }
                _ => {}
            }
            totals.settle(&r, None);
        }
    }

    /// Sends the partial batch and waits for everything in flight.
    async fn drain(&mut self, totals: &mut Totals, denied: &mut HashSet<String>) {
        self.send(totals, denied).await;
        while !self.in_flight.is_empty() {
            self.collect_one(totals, denied).await;
        }
    }
}

/// What one `$batch` task writes with.
struct Writers {
    graph: entra_graph::GraphClient,
    methods: MethodWriter,
    audit: AuditLog,
    claims: Claims,
}

/// One `$batch`: claim the users, PATCH those held that have a PATCH (up to 20), one audit append for
/// all that Graph accepted, bring the email methods to their address, then release the claims.
async fn write_batch(w: Writers, batch: Vec<PlannedWrite>, last_round: bool) -> BatchDone {
    let mut done = BatchDone {
        results: Vec::with_capacity(batch.len()),
        again: Vec::new(),
    };
    let (held, guards) = claim_batch(&w.claims, batch, last_round, &mut done).await;
    if held.is_empty() {
        return done;
    }
    let (patched, method_only): (Vec<PlannedWrite>, Vec<PlannedWrite>) =
        held.into_iter().partition(|p| !p.patch.is_empty());
    let items: Vec<(String, UserPatch)> = patched
        .iter()
        .map(|p| (p.user_id.clone(), p.patch.clone()))
        .collect();
    // The writes must land while the claims hold: the lease caps the batch's deadline.
    let lease_end = tokio::time::Instant::now() + LEASE - Duration::from_secs(10);
    let answers = if items.is_empty() {
        Vec::new()
    } else {
        entra_graph::deadline::within(lease_end, w.graph.patch_users_batch(&items)).await
    };
    let mut accepted: Vec<(UserRecord, UserPatch)> = Vec::new();
    let mut accepted_at: Vec<usize> = Vec::new();
    let mut methods: Vec<(usize, UserRecord, AlternateEmail, Option<String>)> = Vec::new();
    for (p, answer) in patched.into_iter().zip(answers) {
        if !last_round && matches!(&answer, Err(e) if e.is_transient()) {
            done.again.push(p);
            continue;
        }
        let Some(user) = p.record() else { continue };
        match answer {
            Ok(()) => {
                accepted_at.push(done.results.len());
                if let Some((email, marker)) = p.method {
                    methods.push((done.results.len(), user.clone(), email, marker));
                }
                done.results
                    .push(UserResult::without_write(&user, p.outcome, p.issues));
                accepted.push((user, p.patch));
            }
            Err(e) => {
                let outcome = outcome_for_write_error(&e);
                if !matches!(outcome, Outcome::Denied { .. }) {
                    tracing::warn!(user_id = %user.id(), code = outcome.code(), error = %e, "write not applied");
                }
                done.results
                    .push(UserResult::without_write(&user, outcome, p.issues));
            }
        }
    }
    for p in method_only {
        let Some(user) = p.record() else { continue };
        if let Some((email, marker)) = p.method {
            methods.push((done.results.len(), user.clone(), email, marker));
        }
        done.results
            .push(UserResult::without_write(&user, p.outcome, p.issues));
    }
    // One append (one flush) for the whole batch, before the claims are released.
    if let Err(e) = w.audit.record_many(&accepted).await {
        tracing::error!(error = %e, users = accepted.len(), "writes succeeded but their audit records could not be stored");
        for i in accepted_at {
            if let Some(r) = done.results.get_mut(i) {
                r.issues.push(FieldIssue {
                    field: "audit",
                    reason: format!("the audit record could not be stored: {e}"),
                });
            }
        }
    }
    write_methods(&w, methods, &mut done).await;
    futures::future::join_all(guards.into_iter().map(ClaimGuard::release)).await;
    done
}

/// The email methods of a batch's users, side by side, folded into their results.
async fn write_methods(
    w: &Writers,
    methods: Vec<(usize, UserRecord, AlternateEmail, Option<String>)>,
    done: &mut BatchDone,
) {
    let steps = futures::future::join_all(methods.iter().map(|(_, user, email, marker)| {
        w.methods
            .ensure(&w.audit, user, email, Some(marker.clone()))
    }))
    .await;
    for ((i, ..), step) in methods.into_iter().zip(steps) {
        if let Some(r) = done.results.get_mut(i) {
            *r = with_method_step(r.clone(), step);
        }
    }
}

/// Claims every user of a batch at once. Users another handler holds, or wrote since this run read
/// them, are settled as `ClaimedElsewhere`; a claim the store could not answer is retried in a later
/// round (or reported as failed in the last one).
async fn claim_batch(
    claims: &Claims,
    batch: Vec<PlannedWrite>,
    last_round: bool,
    done: &mut BatchDone,
) -> (Vec<PlannedWrite>, Vec<ClaimGuard>) {
    let answers = futures::future::join_all(batch.iter().map(|w| {
        let key = user_claim_key(&w.user_id);
        async move { claims.acquire(&key, Some(w.read_at)).await }
    }))
    .await;
    let mut held = Vec::with_capacity(batch.len());
    let mut guards = Vec::with_capacity(batch.len());
    for (w, answer) in batch.into_iter().zip(answers) {
        let outcome = match answer {
            Ok(Claimed::Held(guard)) => {
                guards.push(guard);
                held.push(w);
                continue;
            }
            Ok(Claimed::Busy { handler, .. } | Claimed::Stale { handler }) => {
                Outcome::ClaimedElsewhere { handler }
            }
            Err(_) if !last_round => {
                done.again.push(w);
                continue;
            }
            Err(e) => Outcome::failed(format!("the user could not be claimed: {e}"), true),
        };
        if let Some(user) = w.record() {
            done.results
                .push(UserResult::without_write(&user, outcome, Vec::new()));
        }
    }
    (held, guards)
}

/// Runs a backfill. With a time budget (timers), no write starts after it, and every call stops at
/// the budget plus [`super::watch::timer_grace`] at the latest; what is left is deferred.
pub async fn run_backfill(
    ctx: &EnrichContext,
    options: &BackfillOptions,
    progress: &dyn Progress,
) -> Result<BackfillSummary, BackfillError> {
    match options.time_budget {
        Some(budget) => {
            let hard = tokio::time::Instant::now() + budget + super::watch::timer_grace(budget);
            let run = entra_graph::deadline::within(hard, backfill(ctx, options, progress));
            tokio::time::timeout_at(hard + super::watch::BACKSTOP, run)
                .await
                .unwrap_or(Err(BackfillError::Deadline))
        }
        None => backfill(ctx, options, progress).await,
    }
}

async fn backfill(
    ctx: &EnrichContext,
    options: &BackfillOptions,
    progress: &dyn Progress,
) -> Result<BackfillSummary, BackfillError> {
    let started = Instant::now();
    let start = RunStart::load(ctx, options.fresh).await?;
    let denied = load_denied(ctx.state.as_ref()).await?;
    let denied_before = denied.clone();

    // Pass 1: the employeeId index of the in-scope population (a small $select; ~101 requests for
    // 100,000 users). An employeeId shared by several in-scope users is ambiguous: refused below.
    progress.phase("indexing", None);
    let population = index_population(ctx, progress).await?;

    // Pass 2: stream again, plan each user, and write as we go.
    progress.phase("reconciling", Some(population.count));
    let write_started = Instant::now();
    let mut pass = Reconcile::new(ctx, options, &start, &population, denied);
    pass.deadline = options.time_budget.map(|b| started + b);
    pass.run(progress).await?;
    pass.retry_transient().await;
    progress.finish();
    let write_ms = write_started.elapsed().as_millis() as u64;

    let complete = pass.totals.deferred == 0;
    if !ctx.dry_run && (pass.denied != denied_before || options.retry_denied) {
        save_denied(ctx.state.as_ref(), &pass.denied).await?;
    }
    if !ctx.dry_run {
        let status = if complete {
            RunStatus::Complete
        } else {
            RunStatus::Running
        };
        save_checkpoint(
            ctx.state.as_ref(),
            &start.run_id,
            status,
            start.etag.clone(),
        )
        .await?;
    }
    let (listed, in_scope, claims) = (pass.listed, pass.in_scope, pass.pipeline.claims.stats());
    let writeback = pass.writeback.map(|w| w.totals);
    let totals = pass.totals;
    Ok(BackfillSummary {
        run_id: start.run_id,
        resumed: start.resumed,
        dry_run: ctx.dry_run,
        complete,
        users_listed: listed,
        users_in_scope: in_scope,
        writes: totals.written,
        already_written: totals.already_written,
        deferred: totals.deferred,
        outcomes: totals.tally,
        elapsed_ms: started.elapsed().as_millis() as u64,
        write_ms,
        claims,
        hr_file: population.hr_file,
        writeback,
        report: totals.report,
        in_scope_ids: Arc::new(population.index),
    })
}

/// The run a backfill invocation belongs to: a new one, or the unfinished one it continues.
struct RunStart {
    run_id: RunId,
    resumed: bool,
    etag: Option<entra_state::ETag>,
    /// The users the continued run already wrote (its audit log): never written twice.
    already: HashSet<String>,
}

impl RunStart {
    async fn load(ctx: &EnrichContext, fresh: bool) -> Result<Self, BackfillError> {
        // A dry run never touches the checkpoint: it must not interfere with a real run.
        let (run_id, resumed, etag) = if ctx.dry_run {
            (RunId::new(), false, None)
        } else {
            start_or_resume(ctx.state.as_ref(), fresh).await?
        };
        let mut already = HashSet::new();
        if resumed {
            already = read_run(ctx.state.as_ref(), &run_id)
                .await?
                .into_iter()
                .map(|r| r.user_id)
                .collect();
            tracing::info!(run_id = %run_id, users_already_written = already.len(), "resuming an unfinished backfill");
        }
        Ok(Self {
            run_id,
            resumed,
            etag,
            already,
        })
    }
}

/// What pass 1 learned about the whole directory.
struct Population {
    /// Users listed, in scope or not.
    count: u64,
    /// The employeeIds of the in-scope users: who shares one, and which HR rows match a user.
    index: EmployeeIdIndex,
    /// Every address in use, and the one each in-scope user is planned: nobody is given another's.
    book: AddressBook,
    /// The HR records of in-scope users (`None` for the directory source).
    hr: Option<Arc<HrIndex>>,
    hr_file: Option<HrFileCounts>,
}

async fn index_population(
    ctx: &EnrichContext,
    progress: &dyn Progress,
) -> Result<Population, BackfillError> {
    let select = index_select(ctx);
    let select_refs: Vec<&str> = select.iter().map(String::as_str).collect();
    let directory = matches!(ctx.hr, HrSource::Directory);
    let mut pager = ctx.graph.list_users(None, &select_refs, 999);
    let (mut index, mut book, mut count) = (EmployeeIdIndex::default(), AddressBook::new(), 0u64);
    while let Some(page) = pager.next_page().await? {
        count += page.len() as u64;
        progress.advance(page.len() as u64);
        for user in page
            .into_iter()
            .filter_map(|j| UserRecord::from_json(j).ok())
        {
            book.insert_user(&user);
            if !ctx.policy.scope.matches(&user) {
                continue;
            }
            if let Some(eid) = user.employee_id() {
                index.insert(eid, user.id());
            }
            if directory {
                let planned = ctx.sources.values_from_user(&user).personal_email;
                book.insert_planned(user.id(), planned.as_deref().unwrap_or_default());
            }
        }
    }
    let (hr, hr_file) = read_hr(&ctx.hr, &index).await?;
    if let Some(hr) = hr.as_deref() {
        // The addresses this run gives: two users planned one address are both refused.
        for (key, values) in hr.records() {
            if let (Some(user), Some(email)) = (index.user_for_key(key), &values.personal_email) {
                book.insert_planned(user, email);
            }
        }
    }
    book.freeze_to_planned();
    Ok(Population {
        count,
        index,
        book,
        hr,
        hr_file,
    })
}

/// Pass 1's `$select`: identity, every address in use, the scope's properties, and (for the
/// directory source) the properties the values come from.
fn index_select(ctx: &EnrichContext) -> Vec<String> {
    let mut select: Vec<String> = [
        "id",
        "employeeId",
        "onPremisesSyncEnabled",
        "userPrincipalName",
        "mail",
        "otherMails",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let source_props = match ctx.hr {
        HrSource::Directory => ctx.sources.properties(),
        _ => Vec::new(),
    };
    for p in ctx
        .policy
        .scope
        .properties()
        .into_iter()
        .chain(source_props)
    {
        if !select.iter().any(|s| s.eq_ignore_ascii_case(&p)) {
            select.push(p);
        }
    }
    select
}

/// Pass 2's working set: the plans, the writes in flight and the counts so far.
struct Reconcile<'a> {
    ctx: &'a EnrichContext,
    options: &'a BackfillOptions,
    start: &'a RunStart,
    population: &'a Population,
    /// No write starts after this (timer invocations); the rest is deferred.
    deadline: Option<Instant>,
    pipeline: WritePipeline,
    totals: Totals,
    denied: HashSet<String>,
    /// The email method markers (user id → fingerprint), listed once when the policy writes methods.
    markers: HashMap<String, String>,
    listed: u64,
    in_scope: u64,
    /// Writes started, against `options.limit`.
    issued: usize,
    /// The Workday writebacks in flight, when the run writes back.
    writeback: Option<WritebackPass>,
}

impl<'a> Reconcile<'a> {
    fn new(
        ctx: &'a EnrichContext,
        options: &'a BackfillOptions,
        start: &'a RunStart,
        population: &'a Population,
        denied: HashSet<String>,
    ) -> Self {
        let audit = AuditLog::new(ctx.state.clone(), start.run_id.clone(), "backfill");
        let claims = Claims::new(ctx.state.clone(), "backfill", start.run_id.as_str());
        Self {
            ctx,
            options,
            start,
            population,
            deadline: None,
            pipeline: WritePipeline::new(ctx, audit, claims, options.concurrency),
            totals: Totals::default(),
            denied,
            markers: HashMap::new(),
            listed: 0,
            in_scope: 0,
            issued: 0,
            writeback: WritebackPass::new(ctx, start),
        }
    }

    /// Lists every user again and reconciles each, writing as it goes.
    async fn run(&mut self, progress: &dyn Progress) -> Result<(), BackfillError> {
        if self.ctx.policy.sspr_target.writes_method() {
            self.markers = all_markers(self.ctx.state.as_ref()).await?;
        }
        // With `--writeback`, what the writeback reads too (the hire date).
        let select = self.ctx.user_select();
        let select_refs: Vec<&str> = select.iter().map(String::as_str).collect();
        // No server-side prefilter: out-of-scope users are read too, so the report names them.
        let mut pager = self.ctx.graph.list_users(None, &select_refs, 999);
        loop {
            let read_at = unix_ms(time::OffsetDateTime::now_utc());
            let Some(page) = pager.next_page().await? else {
                break;
            };
            self.listed += page.len() as u64;
            progress.advance(page.len() as u64);
            for json in page {
                match UserRecord::from_json(json) {
                    Ok(user) => self.reconcile_user(user, read_at).await,
                    Err(_) => tracing::warn!("Graph returned a user without an id; skipped"),
                }
            }
        }
        self.pipeline
            .drain(&mut self.totals, &mut self.denied)
            .await;
        if let Some(w) = &mut self.writeback {
            w.drain().await;
        }
        Ok(())
    }

    /// Plans one user and settles it, or queues its write.
    async fn reconcile_user(&mut self, user: UserRecord, read_at: i64) {
        if !self.ctx.policy.scope.matches(&user) {
            let r = UserResult::without_write(&user, Outcome::OutOfScope, Vec::new());
            self.totals.settle(&r, None);
            return;
        }
        self.in_scope += 1;
        let (decision, personal_email) = self.plan(&user);
        if let Some(w) = &mut self.writeback {
            if settles_match(&decision.outcome) {
                let past = self.deadline.is_some_and(|d| Instant::now() >= d);
                w.push(&user, past).await;
            }
        }
        // The email method needs a look unless its marker says it holds the address already.
        let marker = self.markers.get(user.id()).cloned();
        let method = decision
            .sspr_email
            .clone()
            .filter(|e| marker.as_deref() != Some(address_fingerprint(e.as_str()).as_str()))
            .map(|e| (e, marker));
        let patch = match (decision.patch, &method) {
            (Some(patch), _) => patch,
            (None, Some(_)) => UserPatch::default(),
            (None, None) => {
                let r = UserResult::without_write(&user, decision.outcome, decision.issues);
                self.totals.settle(&r, personal_email.as_deref());
                return;
            }
        };
        if self.start.already.contains(user.id()) {
            // Written by this run before it was interrupted.
            self.totals.already_written += 1;
            let r = UserResult::without_write(&user, decision.outcome, decision.issues);
            self.totals.settle(&r, personal_email.as_deref());
            return;
        }
        if self.denied.contains(user.id()) && !self.options.retry_denied {
            self.totals.settle(&denied_earlier(&user), None);
            return;
        }
        if self.options.limit.is_some_and(|l| self.issued >= l) || self.past_deadline() {
            self.totals.deferred += 1;
            return;
        }
        self.issued += 1;
        if self.ctx.dry_run {
            let mut r = UserResult::without_write(&user, decision.outcome, decision.issues);
            r.dry_run = !patch.is_empty();
            if let Some((email, marker)) = &method {
                let audit = &self.pipeline.audit;
                let step = self
                    .pipeline
                    .methods
                    .ensure(audit, &user, email, Some(marker.clone()));
                r = with_method_step(r, step.await);
            }
            self.totals.settle(&r, None);
            return;
        }
        let mut write = PlannedWrite::new(&user, patch, decision.outcome, decision.issues, read_at);
        write.method = method;
        self.pipeline
            .push(write, &mut self.totals, &mut self.denied)
            .await;
    }

    /// The user's plan among the whole population, and the personal email it was planned from.
    fn plan(&self, user: &UserRecord) -> (Decision, Option<String>) {
        let population = self.population;
        let duplicate = user
            .employee_id()
            .is_some_and(|e| population.index.is_duplicate(e));
        let policy = &self.ctx.policy;
        match population.hr.as_deref() {
            None => {
                let values = self.ctx.sources.values_from_user(user);
                let lookup = SourceLookup::Found(&values);
                let decision = plan_user_among(policy, user, lookup, duplicate, &population.book);
                (decision, values.personal_email.clone())
            }
            Some(hr) => {
                let lookup = user
                    .employee_id()
                    .map_or(SourceLookup::NotFound, |eid| hr.lookup(eid));
                let email = match &lookup {
                    SourceLookup::Found(v) => v.personal_email.clone(),
                    _ => None,
                };
                let decision = plan_user_among(policy, user, lookup, duplicate, &population.book);
                (decision, email)
            }
        }
    }

    fn past_deadline(&self) -> bool {
        self.deadline.is_some_and(|d| Instant::now() >= d)
    }

    /// Transient failures (throttling storms, 5xx) that outlasted the client's own retries get
    /// further rounds, so a storm delays writes but does not lose them.
    async fn retry_transient(&mut self) {
        for round in 2..=TRANSIENT_ROUNDS {
            if self.pipeline.retry.is_empty() {
                break;
            }
            if self.past_deadline() {
                self.totals.deferred += self.pipeline.retry.len() as u64;
                self.pipeline.retry.clear();
                break;
            }
            let users = self.pipeline.retry.len();
            tracing::info!(round, users, "retrying writes that failed transiently");
            tokio::time::sleep(Duration::from_millis(500 * u64::from(round))).await;
            self.pipeline.last_round = round == TRANSIENT_ROUNDS;
            for w in std::mem::take(&mut self.pipeline.retry) {
                self.pipeline
                    .push(w, &mut self.totals, &mut self.denied)
                    .await;
            }
            self.pipeline
                .drain(&mut self.totals, &mut self.denied)
                .await;
        }
    }
}

/// A user Graph refused in an earlier run (a privileged admin): not attempted again.
fn denied_earlier(user: &UserRecord) -> UserResult {
    UserResult::without_write(
        user,
        Outcome::denied_privileged(),
        vec![FieldIssue {
            field: "otherMails",
            reason: "not attempted: denied by an earlier run; rerun with --retry-denied after granting the role".into(),
        }],
    )
}

/// The HR records of in-scope users: `None` for the directory source. A file is read whole (every
/// row checked) but only the rows of in-scope users are kept, so memory follows the population,
/// not the file.
async fn read_hr(
    source: &HrSource,
    index: &EmployeeIdIndex,
) -> Result<(Option<Arc<HrIndex>>, Option<HrFileCounts>), BackfillError> {
    let wanted = |key: &str| index.user_for_key(key).is_some();
    let started = Instant::now();
    let (name, read) = match source {
        HrSource::Directory => return Ok((None, None)),
        HrSource::Index(hr) => return Ok((Some(hr.clone()), None)),
        HrSource::Workday(workday) => {
            let read = workday.read_all(&wanted).await?;
            (
                "workday",
                (read.index, read.rows, read.unmatched, read.blank_ids),
            )
        }
        HrSource::File(file) => {
            let read = file.read(&wanted)?;
            (
                "file",
                (read.index, read.rows, read.unmatched, read.blank_ids),
            )
        }
    };
    let (hr, rows, unmatched, blank_ids) = read;
    let counts = HrFileCounts {
        source: name,
        records: rows,
        matched: rows - unmatched - blank_ids,
        unmatched,
        blank_employee_ids: blank_ids,
        read_ms: started.elapsed().as_millis() as u64,
    };
    tracing::info!(
        source = name,
        records = counts.records,
        matched = counts.matched,
        unmatched = counts.unmatched,
        "HR source read"
    );
    Ok((Some(Arc::new(hr)), Some(counts)))
}

pub async fn load_denied(state: &dyn StateStore) -> Result<HashSet<String>, BackfillError> {
    Ok(state
        .get(DENIED_KEY)
        .await?
        .and_then(|v| serde_json::from_slice::<Vec<String>>(&v.bytes).ok())
        .map(|v| v.into_iter().collect())
        .unwrap_or_default())
}

async fn save_denied(
    state: &dyn StateStore,
    denied: &HashSet<String>,
) -> Result<(), BackfillError> {
    let mut ids: Vec<&String> = denied.iter().collect();
    ids.sort();
    let bytes = serde_json::to_vec_pretty(&ids).unwrap_or_default();
    state
        .put(DENIED_KEY, bytes.into(), WriteCondition::Any)
        .await?;
    Ok(())
}

/// Continues the unfinished run named by the checkpoint, or starts a new one (and records it before
/// any write, so a kill at any point leaves a resumable run).
async fn start_or_resume(
    state: &dyn StateStore,
    fresh: bool,
) -> Result<(RunId, bool, Option<entra_state::ETag>), BackfillError> {
    let existing = state.get(CHECKPOINT_KEY).await?;
    if let Some(v) = &existing {
        if let Ok(cp) = serde_json::from_slice::<Checkpoint>(&v.bytes) {
            if cp.status == RunStatus::Running && !fresh {
                let cp = Checkpoint {
                    updated: now_rfc3339(),
                    ..cp
                };
                let etag = put(state, &cp, Some(v.etag.clone())).await?;
                return Ok((cp.run_id, true, Some(etag)));
            }
        }
    }
    let now = now_rfc3339();
    let cp = Checkpoint {
        run_id: RunId::new(),
        status: RunStatus::Running,
        started: now.clone(),
        updated: now,
    };
    let etag = put(state, &cp, existing.map(|v| v.etag)).await?;
    Ok((cp.run_id, false, Some(etag)))
}

async fn save_checkpoint(
    state: &dyn StateStore,
    run_id: &RunId,
    status: RunStatus,
    etag: Option<entra_state::ETag>,
) -> Result<(), BackfillError> {
    let current = state.get(CHECKPOINT_KEY).await?;
    let started = current
        .as_ref()
        .and_then(|v| serde_json::from_slice::<Checkpoint>(&v.bytes).ok())
        .map(|c| c.started)
        .unwrap_or_else(now_rfc3339);
    let cp = Checkpoint {
        run_id: run_id.clone(),
        status,
        started,
        updated: now_rfc3339(),
    };
    put(state, &cp, etag).await.map(|_| ())
}

async fn put(
    state: &dyn StateStore,
    cp: &Checkpoint,
    etag: Option<entra_state::ETag>,
) -> Result<entra_state::ETag, BackfillError> {
    let bytes = serde_json::to_vec_pretty(cp).unwrap_or_default();
    let cond = match etag {
        Some(e) => WriteCondition::IfMatch(e),
        None => WriteCondition::IfNoneMatch,
    };
    match state.put(CHECKPOINT_KEY, bytes.into(), cond).await {
        Ok(e) => Ok(e),
        Err(entra_state::StateError::Conflict { .. }) => Err(BackfillError::Conflict),
        Err(e) => Err(e.into()),
    }
}

/// What `backfill --writeback` did in Workday.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WritebackTotals {
    /// Matched users whose Workday values were read.
    pub checked: u64,
    /// Users written (in a dry run: to be written).
    pub written: u64,
    /// Users Workday holds right already.
    pub unchanged: u64,
    /// Users queued for new-hire-watch (a transient failure, a hire date ahead).
    pub queued: u64,
    /// Users Workday refused for good (a validation fault), or with no valid value.
    pub refused: u64,
    /// Users another handler was writing back at the same moment.
    pub busy: u64,
    /// Users not reached before the time budget.
    pub deferred: u64,
    /// One row per user not left unchanged: what was (or would be) written, or why not.
    #[serde(skip)]
    pub rows: Vec<ReportRow>,
}

/// Workday writes of users Workday can answer a few at a time.
const WRITEBACK_CONCURRENCY: usize = 4;

type WritebackDone = (ReportRow, WritebackStep);

/// The run's Workday writebacks, a few in flight while the listing goes on.
struct WritebackPass {
    ctx: EnrichContext,
    audit: AuditLog,
    claims: Claims,
    in_flight: futures::stream::FuturesUnordered<
        std::pin::Pin<Box<dyn std::future::Future<Output = WritebackDone> + Send>>,
    >,
    totals: WritebackTotals,
}

impl WritebackPass {
    fn new(ctx: &EnrichContext, start: &RunStart) -> Option<Self> {
        ctx.writeback.as_ref()?;
        Some(WritebackPass {
            ctx: ctx.clone(),
            audit: AuditLog::new(ctx.state.clone(), start.run_id.clone(), "backfill"),
            claims: Claims::new(ctx.state.clone(), "backfill", start.run_id.as_str()),
            in_flight: futures::stream::FuturesUnordered::new(),
            totals: WritebackTotals::default(),
        })
    }

    /// Starts `user`'s writeback (or counts it deferred, `past` the deadline).
    async fn push(&mut self, user: &UserRecord, past: bool) {
        if past {
            self.totals.deferred += 1;
            return;
        }
        while self.in_flight.len() >= WRITEBACK_CONCURRENCY {
            self.collect_one().await;
        }
        let (ctx, audit, claims) = (self.ctx.clone(), self.audit.clone(), self.claims.clone());
        let user = user.clone();
        self.in_flight.push(Box::pin(async move {
            let step = match ctx.writeback.as_deref() {
                Some(w) => write_back(&ctx, w, &audit, &claims, &user).await,
                None => WritebackStep::Unchanged,
            };
            let row = ReportRow::from_result(
                &UserResult::without_write(&user, Outcome::Unchanged, Vec::new()),
                None,
            );
            (row, step)
        }));
    }

    async fn collect_one(&mut self) {
        let Some((mut row, step)) = self.in_flight.next().await else {
            return;
        };
        let t = &mut self.totals;
        t.checked += 1;
        match &step {
            WritebackStep::Unchanged => t.unchanged += 1,
            WritebackStep::Written(_) | WritebackStep::WouldWrite(_) => t.written += 1,
            WritebackStep::Waiting { .. } | WritebackStep::Queued { .. } => t.queued += 1,
            WritebackStep::Refused { .. } => t.refused += 1,
            WritebackStep::Busy(_) => t.busy += 1,
        }
        if step != WritebackStep::Unchanged {
            row.outcome = step.code().to_string();
            row.detail = step.describe();
            t.rows.push(row);
        }
    }

    async fn drain(&mut self) {
        while !self.in_flight.is_empty() {
            self.collect_one().await;
        }
    }
}
