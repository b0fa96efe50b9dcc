//! Workday writeback (`ENRICH_WORKDAY_WRITEBACK`): once a joiner's Entra account is settled, its work
//! email becomes the worker's primary WORK email (`Change_Work_Contact_Information`), and its UPN the
//! worker's Workday username (`Workday_Account_for_Worker_Update`), in the same handler, not on the
//! next provisioning cycle.
//!
//! - Joiners only: lcw-joiner and new-hire-watch write back; a backfill only with `--writeback`.
//! - Matched by `employeeId` = Workday `Employee_ID`, and only for a user the Entra part settled
//!   (in scope, one user with the employeeId, found in the HR source): a wrong match would give one
//!   worker another's address.
//! - Read first (`Get_Workers`), write only what differs, under the user's writeback claim
//!   (`claims/workday/{id}.json`), so two handlers on one joiner write Workday once.
//! - Each write is an audit line with `"target": "workday"`; `rollback --run` puts the before-values
//!   back.
//! - A validation fault is permanent (the outcome says so). A 5xx, a timeout or a refused credential
//!   queues the user in the state store (`writeback/queue/{id}.json`: ids and counts, no address), and
//!   every new-hire-watch tick tries the queue again, [`MAX_ATTEMPTS`] times at most. The Entra
//!   write counts either way: lcw-joiner resumes the workflow.
//! - `ENRICH_WORKDAY_WRITEBACK_FROM=hire-date` queues a pre-hire until its `employeeHireDate`
//!   (Entra's Workday Writeback tutorial delays the flow the same way).

use std::time::Duration;

use entra_core::{FieldIssue, Outcome, UserRecord};
use entra_state::{StateError, StateStore, WriteCondition};
use entra_workday::{WorkdayError, WorkdayErrorKind, WwsClient};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::apply::UserResult;
use super::audit::{now_rfc3339, AuditLog};
use super::claim::{Claimed, Claims};
use super::EnrichContext;
use crate::config::{UserNameForm, WorkEmailFrom, WritebackFrom, WritebackSettings};

/// The audit target of a Workday write.
pub const TARGET: &str = "workday";
/// The audit properties of a Workday write.
pub const WORK_EMAIL: &str = "workEmail";
pub const USER_NAME: &str = "userName";
/// The names an outcome and a report give them.
pub const OUTCOME_WORK_EMAIL: &str = "workday.workEmail";
pub const OUTCOME_USER_NAME: &str = "workday.userName";

/// Watch ticks that try a queued writeback before it is left to `backfill --writeback`: an hour of
/// 5-minute ticks, past a Workday maintenance window's usual length.
pub const MAX_ATTEMPTS: u32 = 12;

const QUEUE: &str = "writeback/queue/";

/// What a writeback leaves of its caller's deadline: lcw-joiner still resumes the workflow.
pub const RESUME_RESERVE: Duration = Duration::from_secs(3);

/// What is written back, from which Entra property, and when.
#[derive(Debug, Clone, Copy)]
pub struct WritebackPolicy {
    pub email: bool,
    pub user_name: bool,
    pub email_from: WorkEmailFrom,
    pub user_name_form: UserNameForm,
    pub from: WritebackFrom,
}

impl From<&WritebackSettings> for WritebackPolicy {
    fn from(s: &WritebackSettings) -> Self {
        WritebackPolicy {
            email: s.email,
            user_name: s.user_name,
            email_from: s.email_from,
            user_name_form: s.user_name_form,
            from: s.from,
        }
    }
}

/// The Workday Web Services client and what to write with it.
#[derive(Debug, Clone)]
pub struct Writeback {
    client: WwsClient,
    policy: WritebackPolicy,
}

/// The values a user's account gives Workday.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Wanted {
    pub email: Option<String>,
    pub user_name: Option<String>,
}

/// What the writeback did for one user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WritebackStep {
    /// Workday holds the values already (it was read).
    Unchanged,
    /// These were written ([`OUTCOME_WORK_EMAIL`], [`OUTCOME_USER_NAME`]).
    Written(Vec<&'static str>),
    /// A dry run: these would be written.
    WouldWrite(Vec<&'static str>),
    /// Queued until the user's hire date.
    Waiting { until: String },
    /// A transient failure: queued for the next watch tick. `written` landed before it.
    Queued {
        reason: String,
        written: Vec<&'static str>,
    },
    /// Permanent: Workday refused it (a validation fault), or the account gives no valid value.
    Refused {
        reason: String,
        written: Vec<&'static str>,
    },
    /// Another handler is writing this user back right now.
    Busy(String),
}

impl WritebackStep {
    /// The report code: `WorkdayUpdated` (written, or to be written in a dry run),
    /// `NoChangeRequired`, `WorkdayQueued`, `WorkdayRefused`, `ClaimedElsewhere`.
    pub fn code(&self) -> &'static str {
        match self {
            WritebackStep::Unchanged => "NoChangeRequired",
            WritebackStep::Written(_) | WritebackStep::WouldWrite(_) => "WorkdayUpdated",
            WritebackStep::Waiting { .. } | WritebackStep::Queued { .. } => "WorkdayQueued",
            WritebackStep::Refused { .. } => "WorkdayRefused",
            WritebackStep::Busy(_) => "ClaimedElsewhere",
        }
    }

    /// One line for an admin; addresses masked.
    pub fn describe(&self) -> String {
        let text = match self {
            WritebackStep::Unchanged => "Workday holds the account's values already".into(),
            WritebackStep::Written(p) => format!("wrote {} to Workday", p.join(", ")),
            WritebackStep::WouldWrite(p) => format!("would write {} to Workday (dry run)", p.join(", ")),
            WritebackStep::Waiting { until } => format!(
                "written back on the hire date ({until}; ENRICH_WORKDAY_WRITEBACK_FROM=hire-date): queued for new-hire-watch"
            ),
            WritebackStep::Queued { reason, written } => format!(
                "{}not written back yet: {reason}; queued, new-hire-watch retries it (at most {MAX_ATTEMPTS} ticks)",
                wrote(written)
            ),
            WritebackStep::Refused { reason, written } => {
                format!("{}not written back: {reason}", wrote(written))
            }
            WritebackStep::Busy(handler) => format!(
                "{handler} is writing this user back to Workday right now; left to it"
            ),
        };
        entra_core::pii::mask_emails_in(&text)
    }
}

fn wrote(written: &[&str]) -> String {
    if written.is_empty() {
        String::new()
    } else {
        format!("wrote {}, then ", written.join(", "))
    }
}

impl Writeback {
    pub fn new(client: WwsClient, policy: WritebackPolicy) -> Self {
        Writeback { client, policy }
    }

    pub fn client(&self) -> &WwsClient {
        &self.client
    }

    /// The user properties the writeback reads, beyond the base ones.
    pub fn select(&self) -> &'static [&'static str] {
        match self.policy.from {
            WritebackFrom::HireDate => &["employeeHireDate"],
            WritebackFrom::Created => &[],
        }
    }

    /// What `user`'s account gives Workday, or why it gives nothing valid.
    pub fn wanted(&self, user: &UserRecord) -> Result<Wanted, String> {
        let upn = user.user_principal_name().map(str::trim).unwrap_or("");
        let mut wanted = Wanted::default();
        if self.policy.email {
            let address = match self.policy.email_from {
                WorkEmailFrom::Mail => user.mail().map(str::trim).filter(|m| !m.is_empty()),
                WorkEmailFrom::UserPrincipalName => None,
            }
            .unwrap_or(upn);
            if !is_plain_address(address) {
                return Err(
                    "the account has no valid work email (mail, or the UPN): nothing written back"
                        .into(),
                );
            }
            wanted.email = Some(address.to_string());
        }
        if self.policy.user_name {
            let name = match self.policy.user_name_form {
                UserNameForm::Upn => upn,
                UserNameForm::LocalPart => upn.split('@').next().unwrap_or(""),
            };
            if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(
                    "the account's UPN gives no valid Workday username: nothing written back"
                        .into(),
                );
            }
            wanted.user_name = Some(name.to_string());
        }
        Ok(wanted)
    }

    /// The hire date `user` waits for, when it is still ahead.
    fn waits_until(&self, user: &UserRecord) -> Option<OffsetDateTime> {
        if self.policy.from != WritebackFrom::HireDate {
            return None;
        }
        let raw = user.as_json().get("employeeHireDate")?.as_str()?;
        let date =
            OffsetDateTime::parse(raw, &time::format_description::well_known::Rfc3339).ok()?;
        (date > OffsetDateTime::now_utc()).then_some(date)
    }
}

/// One address, as Workday's `Email_Address` takes it: one `@`, no spaces or controls, ASCII.
fn is_plain_address(a: &str) -> bool {
    let mut parts = a.split('@');
    let (Some(local), Some(domain), None) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && a.len() <= 254
        && a.chars().all(|c| c.is_ascii_graphic())
}

/// True when `outcome` settles the user's Entra side with a unique match: only then is Workday
/// written (never for an out-of-scope, unmatched, ambiguous, refused or unsettled user).
pub fn settles_match(outcome: &Outcome) -> bool {
    matches!(
        outcome,
        Outcome::Updated { .. }
            | Outcome::Unchanged
            | Outcome::SourceValueMissing { .. }
            | Outcome::InvalidValue { .. }
    )
}

/// The writeback of one user whose Entra side `result` settled, folded into `result`; `result`
/// unchanged when the context writes nothing back or the user does not qualify.
pub async fn with_writeback(
    ctx: &EnrichContext,
    audit: &AuditLog,
    claims: &Claims,
    user: &UserRecord,
    result: UserResult,
) -> UserResult {
    let Some(writeback) = ctx.writeback.as_deref() else {
        return result;
    };
    if !settles_match(&result.outcome) {
        return result;
    }
    let step = write_back(ctx, writeback, audit, claims, user).await;
    with_writeback_step(result, step)
}

/// Brings Workday to what `user`'s account gives, under the user's writeback claim. The Workday
/// calls end [`RESUME_RESERVE`] before the caller's deadline (lcw-joiner's time left, a timer's
/// budget); past it, the writeback is queued.
pub async fn write_back(
    ctx: &EnrichContext,
    writeback: &Writeback,
    audit: &AuditLog,
    claims: &Claims,
    user: &UserRecord,
) -> WritebackStep {
    let budget = entra_graph::deadline::remaining().map(|left| left.saturating_sub(RESUME_RESERVE));
    let Some(employee_id) = user.employee_id() else {
        return refused("the user has no employeeId: nothing written back".into());
    };
    if !ctx.policy.scope.matches(user) {
        return refused("the user is out of scope: nothing written back".into());
    }
    let wanted = match writeback.wanted(user) {
        Ok(w) => w,
        Err(reason) => return refused(reason),
    };
    if let Some(until) = writeback.waits_until(user) {
        let until = until
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        if ctx.dry_run {
            return WritebackStep::Waiting { until };
        }
        let queued = Queued::new(user.id(), employee_id, audit).not_before(&until);
        return match enqueue(ctx.state.as_ref(), &queued).await {
            Ok(()) => WritebackStep::Waiting { until },
            Err(e) => queue_lost(&e, Vec::new()),
        };
    }
    if ctx.dry_run {
        return settle(writeback, audit, user, employee_id, &wanted, true, budget)
            .await
            .unwrap_or_else(|(e, written)| transient_or_refused(&e, written));
    }
    let key = writeback_claim_key(user.id());
    let guard = match claims.acquire(&key, None).await {
        Ok(Claimed::Held(guard)) => guard,
        Ok(Claimed::Busy { handler, .. } | Claimed::Stale { handler }) => {
            return WritebackStep::Busy(handler)
        }
        Err(e) => {
            let step = WritebackStep::Queued {
                reason: format!("the writeback claim could not be taken: {e}"),
                written: Vec::new(),
            };
            return requeue(ctx, user, employee_id, audit, step).await;
        }
    };
    let settled = settle(writeback, audit, user, employee_id, &wanted, false, budget).await;
    let step = match settled {
        Ok(step) => {
            // Done: a queued attempt of this user has nothing left to do.
            if let Err(e) = dequeue(ctx.state.as_ref(), user.id()).await {
                tracing::warn!(user_id = %user.id(), error = %e, "the writeback queue entry could not be removed; the next tick reads Workday and writes nothing");
            }
            step
        }
        Err((e, written)) => {
            let step = transient_or_refused(&e, written);
            requeue(ctx, user, employee_id, audit, step).await
        }
    };
    guard.release().await;
    step
}

/// Queues a transient failure (or drops the queue entry of a permanent one).
async fn requeue(
    ctx: &EnrichContext,
    user: &UserRecord,
    employee_id: &str,
    audit: &AuditLog,
    step: WritebackStep,
) -> WritebackStep {
    let store = ctx.state.as_ref();
    match &step {
        WritebackStep::Queued { reason, written } => {
            let mut queued = Queued::new(user.id(), employee_id, audit);
            queued.reason = reason.clone();
            if let Ok(Some(earlier)) = read_queued(store, user.id()).await {
                queued.attempts = earlier.attempts;
            }
            match enqueue(store, &queued).await {
                Ok(()) => step,
                Err(e) => queue_lost(&e, written.clone()),
            }
        }
        WritebackStep::Refused { .. } => {
            if let Err(e) = dequeue(store, user.id()).await {
                tracing::warn!(user_id = %user.id(), error = %e, "the writeback queue entry could not be removed");
            }
            step
        }
        _ => step,
    }
}

fn queue_lost(e: &StateError, written: Vec<&'static str>) -> WritebackStep {
    WritebackStep::Refused {
        reason: format!("the writeback could not be queued ({e}); run `backfill --writeback` once the state store is back"),
        written,
    }
}

/// A permanent refusal; an address in `reason` (a Graph or Workday message) is masked, since the
/// reason reaches log lines as well as reports.
fn refused(reason: String) -> WritebackStep {
    WritebackStep::Refused {
        reason: entra_core::pii::mask_emails_in(&reason),
        written: Vec::new(),
    }
}

/// A Workday failure as a step: transient ones (and a refused credential, fixed by an operator) are
/// queued, the rest are permanent.
fn transient_or_refused(e: &WorkdayError, written: Vec<&'static str>) -> WritebackStep {
    let reason = entra_core::pii::mask_emails_in(&e.to_string());
    match e.kind {
        WorkdayErrorKind::Transient | WorkdayErrorKind::Auth | WorkdayErrorKind::Secret => {
            WritebackStep::Queued { reason, written }
        }
        _ => WritebackStep::Refused { reason, written },
    }
}

/// Reads the worker and writes what differs; the error comes with what landed before it.
async fn settle(
    writeback: &Writeback,
    audit: &AuditLog,
    user: &UserRecord,
    employee_id: &str,
    wanted: &Wanted,
    dry_run: bool,
    budget: Option<Duration>,
) -> Result<WritebackStep, (WorkdayError, Vec<&'static str>)> {
    let work = async {
        let mut written = Vec::new();
        let client = &writeback.client;
        let current = client
            .worker(employee_id)
            .await
            .map_err(|e| (e, Vec::new()))?;
        let differs = |want: &Option<String>, have: Option<&str>| {
            want.as_deref()
                .filter(|w| !have.is_some_and(|h| h.trim().eq_ignore_ascii_case(w)))
                .map(str::to_string)
        };
        let email = differs(&wanted.email, current.work_email());
        let user_name = differs(&wanted.user_name, current.user_name.as_deref());
        let planned: Vec<&'static str> = [
            email.as_ref().map(|_| OUTCOME_WORK_EMAIL),
            user_name.as_ref().map(|_| OUTCOME_USER_NAME),
        ]
        .into_iter()
        .flatten()
        .collect();
        if planned.is_empty() {
            return Ok(WritebackStep::Unchanged);
        }
        if dry_run {
            return Ok(WritebackStep::WouldWrite(planned));
        }
        if let Some(address) = &email {
            let today = today();
            client
                .set_work_email(employee_id, address, &today)
                .await
                .map_err(|e| (e, written.clone()))?;
            record(audit, user, WORK_EMAIL, current.work_email(), address).await;
            written.push(OUTCOME_WORK_EMAIL);
        }
        if let Some(name) = &user_name {
            client
                .set_user_name(employee_id, name)
                .await
                .map_err(|e| (e, written.clone()))?;
            record(audit, user, USER_NAME, current.user_name.as_deref(), name).await;
            written.push(OUTCOME_USER_NAME);
        }
        Ok(WritebackStep::Written(written))
    };
    match budget {
        None => work.await,
        Some(budget) => tokio::time::timeout(budget, work)
            .await
            .unwrap_or_else(|_| {
                Err((
                    WorkdayError::new(
                        WorkdayErrorKind::Transient,
                        "Workday did not answer within the joiner's time left",
                    ),
                    Vec::new(),
                ))
            }),
    }
}

async fn record(
    audit: &AuditLog,
    user: &UserRecord,
    property: &str,
    before: Option<&str>,
    after: &str,
) {
    if let Err(e) = audit
        .record_target(user, TARGET, property, before, Some(after))
        .await
    {
        tracing::error!(user_id = %user.id(), property, error = %e, "Workday written but its audit record could not be stored");
    }
}

/// Today (UTC) as Workday's `Event_Effective_Date`.
pub fn today() -> String {
    let d = OffsetDateTime::now_utc().date();
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

/// The state-store key of a user's writeback claim.
pub fn writeback_claim_key(user_id: &str) -> String {
    format!("claims/workday/{user_id}.json")
}

/// `result` with the writeback step folded in: a write adds the Workday properties to the written
/// ones (an unchanged user becomes updated), anything left undone becomes an issue.
pub fn with_writeback_step(mut result: UserResult, step: WritebackStep) -> UserResult {
    let issue = |step: &WritebackStep| FieldIssue {
        field: TARGET,
        reason: step.describe(),
    };
    let add = |result: &mut UserResult, properties: &[&'static str]| {
        if properties.is_empty() {
            return;
        }
        result.outcome = match std::mem::replace(&mut result.outcome, Outcome::Unchanged) {
            Outcome::Updated { properties: mut p } => {
                p.extend_from_slice(properties);
                Outcome::Updated { properties: p }
            }
            other => {
                if let Outcome::InvalidValue { field, .. } | Outcome::SourceValueMissing { field } =
                    &other
                {
                    result.issues.push(FieldIssue {
                        field,
                        reason: other.describe(),
                    });
                }
                Outcome::Updated {
                    properties: properties.to_vec(),
                }
            }
        };
    };
    match &step {
        WritebackStep::Unchanged => {}
        WritebackStep::Written(p) => add(&mut result, p),
        WritebackStep::WouldWrite(p) => {
            result.dry_run = true;
            add(&mut result, p);
        }
        WritebackStep::Queued { written, .. } | WritebackStep::Refused { written, .. } => {
            add(&mut result, written);
            result.issues.push(issue(&step));
        }
        WritebackStep::Waiting { .. } | WritebackStep::Busy(_) => result.issues.push(issue(&step)),
    }
    result
}

/// A queued writeback: ids and counts, never an address (the values are read again from Entra).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Queued {
    pub user_id: String,
    pub employee_id: String,
    /// Watch ticks that have tried it.
    pub attempts: u32,
    /// Not tried before this (RFC 3339): the hire date.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<String>,
    pub queued_at: String,
    pub handler: String,
    /// Why the last try did not finish (addresses masked).
    #[serde(default)]
    pub reason: String,
}

impl Queued {
    fn new(user_id: &str, employee_id: &str, audit: &AuditLog) -> Self {
        Queued {
            user_id: user_id.to_string(),
            employee_id: employee_id.to_string(),
            attempts: 0,
            not_before: None,
            queued_at: now_rfc3339(),
            handler: audit.handler().to_string(),
            reason: String::new(),
        }
    }

    fn not_before(mut self, until: &str) -> Self {
        self.not_before = Some(until.to_string());
        self.reason = "waiting for the hire date".into();
        self
    }

    /// True when a tick may try it now.
    pub fn is_due(&self) -> bool {
        let parse =
            |s: &str| OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok();
        self.not_before
            .as_deref()
            .and_then(parse)
            .is_none_or(|t| t <= OffsetDateTime::now_utc())
    }
}

fn queue_key(user_id: &str) -> String {
    format!("{QUEUE}{user_id}.json")
}

async fn enqueue(store: &dyn StateStore, queued: &Queued) -> Result<(), StateError> {
    let bytes = serde_json::to_vec(queued).unwrap_or_default();
    store
        .put(
            &queue_key(&queued.user_id),
            bytes.into(),
            WriteCondition::Any,
        )
        .await
        .map(|_| ())
}

async fn dequeue(store: &dyn StateStore, user_id: &str) -> Result<(), StateError> {
    store.delete(&queue_key(user_id)).await.map(|_| ())
}

async fn read_queued(store: &dyn StateStore, user_id: &str) -> Result<Option<Queued>, StateError> {
    Ok(store
        .get(&queue_key(user_id))
        .await?
        .and_then(|v| serde_json::from_slice(&v.bytes).ok()))
}

/// Every queued writeback (a torn entry is skipped with a warning).
pub async fn queued(store: &dyn StateStore) -> Result<Vec<Queued>, StateError> {
    let mut out = Vec::new();
    for key in store.list(QUEUE).await? {
        let id = key.trim_start_matches(QUEUE).trim_end_matches(".json");
        match read_queued(store, id).await? {
            Some(q) => out.push(q),
            None => tracing::warn!(key = %key, "a writeback queue entry is not readable; skipped"),
        }
    }
    Ok(out)
}

/// What one pass over the queue did.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct QueueSummary {
    /// Entries tried (due ones).
    pub tried: u64,
    /// Entries now done (written, or Workday already right).
    pub completed: u64,
    /// Entries still queued (waiting for a hire date, or failed again).
    pub pending: u64,
    /// Entries tried [`MAX_ATTEMPTS`] times, or refused for good: dropped, left to `backfill --writeback`.
    pub abandoned: u64,
}

/// Tries every due queued writeback once: the user is read again from Entra (its values, scope and
/// employeeId as they are now), then written back as a joiner would be. No entry is tried after
/// `until`.
pub async fn run_queue(
    ctx: &EnrichContext,
    audit: &AuditLog,
    claims: &Claims,
    until: std::time::Instant,
) -> Result<QueueSummary, StateError> {
    let mut summary = QueueSummary::default();
    let Some(writeback) = ctx.writeback.as_deref() else {
        return Ok(summary);
    };
    let store = ctx.state.as_ref();
    for entry in queued(store).await? {
        if !entry.is_due() || std::time::Instant::now() >= until {
            summary.pending += 1;
            continue;
        }
        summary.tried += 1;
        let step = retry_entry(ctx, writeback, audit, claims, &entry).await;
        match step {
            WritebackStep::Unchanged | WritebackStep::Written(_) => summary.completed += 1,
            WritebackStep::Refused { reason, .. } => {
                tracing::warn!(user_id = %entry.user_id, reason = %reason, "a queued writeback was refused; dropped");
                dequeue(store, &entry.user_id).await?;
                summary.abandoned += 1;
            }
            WritebackStep::Queued { .. }
            | WritebackStep::Busy(_)
            | WritebackStep::Waiting { .. } => {
                if bump(store, &entry).await? {
                    summary.pending += 1;
                } else {
                    summary.abandoned += 1;
                }
            }
            WritebackStep::WouldWrite(_) => summary.pending += 1,
        }
    }
    Ok(summary)
}

/// One queued entry, with the user read afresh and its match made again (scope, employeeId, the
/// HR source, another in-scope user with the employeeId): a user who no longer settles is dropped.
async fn retry_entry(
    ctx: &EnrichContext,
    writeback: &Writeback,
    audit: &AuditLog,
    claims: &Claims,
    entry: &Queued,
) -> WritebackStep {
    use super::enrich::{plan_record, read_user, with_hr_of, EnrichError};
    let transient = |reason: String| WritebackStep::Queued {
        reason: entra_core::pii::mask_emails_in(&reason),
        written: Vec::new(),
    };
    let user = match read_user(ctx, &entry.user_id).await {
        Ok(u) => u,
        Err(EnrichError::NotFound) => return refused("the user no longer exists".into()),
        Err(e) if e.is_transient() => return transient(e.to_string()),
        Err(e) => return refused(e.to_string()),
    };
    let planned = match with_hr_of(ctx, &user).await {
        Ok(live) => plan_record(&live, &user).await.map_err(EnrichError::from),
        Err(e) => Err(e),
    };
    match planned {
        Ok(decision) if settles_match(&decision.outcome) => {
            write_back(ctx, writeback, audit, claims, &user).await
        }
        Ok(decision) => refused(format!(
            "the user no longer matches one worker ({})",
            decision.outcome.code()
        )),
        Err(e) if e.is_transient() => transient(e.to_string()),
        Err(e) => refused(e.to_string()),
    }
}

/// Counts one more attempt; false (and the entry dropped) when the attempts are used up.
async fn bump(store: &dyn StateStore, entry: &Queued) -> Result<bool, StateError> {
    // The attempt just made may have rewritten the entry (a new reason): count on top of it.
    let mut current = read_queued(store, &entry.user_id)
        .await?
        .unwrap_or_else(|| entry.clone());
    if current.not_before.is_some() && !current.is_due() {
        return Ok(true);
    }
    current.attempts = entry.attempts + 1;
    if current.attempts >= MAX_ATTEMPTS {
        tracing::warn!(user_id = %entry.user_id, attempts = current.attempts, "a queued writeback kept failing; left to `backfill --writeback`");
        dequeue(store, &entry.user_id).await?;
        return Ok(false);
    }
    enqueue(store, &current).await?;
    Ok(true)
}
