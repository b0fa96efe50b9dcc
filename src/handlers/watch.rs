//! new-hire-watch: every few minutes, ask Graph `users/delta` what changed, and enrich each changed
//! in-scope user. This is how a new hire's alternate email is in place within minutes of the account
//! appearing, without waiting for the Lifecycle Workflows schedule.
//!
//! - The first run starts from now (`$deltaToken=latest`): the backfill covers the existing population.
//! - The cursor (the `@odata.nextLink` mid-round, the `@odata.deltaLink` between rounds) is saved after
//!   every page, so an invocation that reaches its time budget, or is killed, resumes where it stopped.
//! - An expired or unknown token (`syncStateNotFound`, `410 Gone`) starts a new full round
//!   (<https://learn.microsoft.com/graph/delta-query-overview#synchronization-reset>); the plan's diff
//!   means users already correct are not written again.
//! - Our own PATCHes come back in the next round as changes; they plan as `Unchanged`, so nothing loops.
//! - A changed user the round could not settle (`ClaimedElsewhere`: a claim held by another handler or
//!   by a killed instance; a transient failure) would otherwise be lost, since the delta will not show it
//!   again until it changes. Its object id (nothing else: no PII) goes in the cursor's retry list, and
//!   every later invocation reads it again by id and enriches it under a claim, until it settles or
//!   [`MAX_RETRY_ATTEMPTS`] pass; then it is left to the backfill.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use entra_core::{Outcome, UserRecord};
use entra_graph::{DeltaCursor, DeltaNext, DeltaPage, GraphError};
use entra_state::WriteCondition;
use futures::StreamExt;
use serde::{Deserialize, Serialize};

use super::apply::UserResult;
use super::audit::{now_rfc3339, AuditLog};
use super::claim::{ClaimStats, Claims};
use super::enrich::{enrich_claimed, EnrichError, WhenBusy};
use super::report::Tally;
use super::writeback::{run_queue, QueueSummary};
use super::{EnrichContext, RunId};

/// The state-store key of the watch cursor.
pub const CURSOR_KEY: &str = "checkpoints/new-hire-watch.json";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Cursor {
    /// A nextLink (mid-round) or a deltaLink (between rounds).
    link: String,
    mid_round: bool,
    updated: String,
    /// Changed users not settled yet ([`RetryUser`]): tried again by every invocation.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    retry: Vec<RetryUser>,
}

/// A user the watch saw change but could not settle: another handler held its claim (a killed
/// instance's for up to a lease), or a transient failure stopped its write. The delta will not
/// show it again unless it changes again, so the cursor remembers it. An object id, no personal data.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
struct RetryUser {
    id: String,
    /// Invocations that have tried it so far.
    attempts: u32,
}

/// What one invocation did.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WatchSummary {
    pub run_id: String,
    /// True when this invocation had no cursor and only took one ("from now").
    pub initialized: bool,
    /// True when the token had expired and a new full round started.
    pub reset: bool,
    pub pages: u64,
    pub changed_users: u64,
    /// Changed users whose delta record lacked a property the decision needs, read whole first.
    pub read_whole: u64,
    pub users_in_scope: u64,
    pub writes: u64,
    /// False when the time budget ended the invocation mid-round (the next one resumes).
    pub round_complete: bool,
    /// Users left unsettled by earlier invocations and tried again by this one.
    pub retried: u64,
    /// Users still unsettled, carried in the cursor to the next invocation.
    pub retry_pending: u64,
    /// Users tried [`MAX_RETRY_ATTEMPTS`] times (or past the cursor's room): left to the backfill.
    pub retry_abandoned: u64,
    pub outcomes: Tally,
    /// Claims taken, and users left to another handler writing them at the same moment.
    pub claims: ClaimStats,
    /// The Workday writebacks queued earlier (a Workday outage, a hire date) and tried again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub writeback_queue: Option<QueueSummary>,
}

/// Watch failures that stop the invocation; the cursor is left where it was.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error("Graph delta query failed: {0}")]
    Graph(#[from] GraphError),
    #[error("state store: {0}")]
    State(#[from] entra_state::StateError),
    #[error("another new-hire-watch instance moved the cursor at the same time; this one stops")]
    Conflict,
    #[error("the time budget (ENRICH_TIME_BUDGET_SECONDS) and its grace ran out during a call; the next tick resumes from the cursor")]
    Deadline,
}

impl WatchError {
    /// True when the next tick may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            WatchError::Graph(e) => e.is_transient(),
            WatchError::State(_) | WatchError::Conflict | WatchError::Deadline => true,
        }
    }
}

/// Users enriched at once within one delta page.
const CONCURRENCY: usize = 8;

/// Carried users tried again between two looks at the clock.
const RETRY_BATCH: usize = CONCURRENCY * 4;

/// Invocations that try an unsettled user again before leaving it to the backfill: an hour of
/// 5-minute ticks, far past a claim's lease ([`super::claim::LEASE`]) and a throttling spell.
pub const MAX_RETRY_ATTEMPTS: u32 = 12;

/// Unsettled users the cursor carries at most (about 60 bytes each); past it the oldest are left
/// to the backfill, so a long Graph outage cannot grow the checkpoint without bound.
const MAX_RETRY_USERS: usize = 2_000;

/// How long past its time budget a timer's calls may still run (a page, a write in flight) before
/// they are cut off: a quarter of the budget, at least 5 s (an invocation always gets one page
/// done) and at most a minute (60 s for the default 240 s). `functionTimeout` (host.json, 10 min)
/// must exceed the budget plus this.
pub fn timer_grace(time_budget: Duration) -> Duration {
    (time_budget / 4).clamp(Duration::from_secs(5), Duration::from_secs(60))
}

/// Runs one new-hire-watch invocation: no page is started after `time_budget`, and every Graph call
/// stops at the budget plus [`timer_grace`] at the latest (the cursor then stays where it was).
pub async fn run_watch(
    ctx: &EnrichContext,
    time_budget: Duration,
) -> Result<WatchSummary, WatchError> {
    let hard = tokio::time::Instant::now() + time_budget + timer_grace(time_budget);
    // Graph calls see the deadline and fail on their own; the outer timeout is the backstop for the
    // state store and anything else that does not.
    let round = entra_graph::deadline::within(hard, watch_round(ctx, time_budget));
    tokio::time::timeout_at(hard + BACKSTOP, round)
        .await
        .unwrap_or(Err(WatchError::Deadline))
}

/// How long after a timer's hard deadline its work is cancelled outright.
pub const BACKSTOP: Duration = Duration::from_secs(1);

async fn watch_round(
    ctx: &EnrichContext,
    time_budget: Duration,
) -> Result<WatchSummary, WatchError> {
    let started = Instant::now();
    let mut run = WatchRun::new(ctx);
    let stored = ctx.state.get(CURSOR_KEY).await?;
    let mut etag = stored.as_ref().map(|v| v.etag.clone());
    let saved = stored
        .as_ref()
        .and_then(|v| serde_json::from_slice::<Cursor>(&v.bytes).ok());
    let (mut cursor, mut retry) = match saved {
        Some(c) => (DeltaCursor::Link(c.link), c.retry),
        None => {
            run.summary.initialized = true;
            let select = ctx.select();
            (DeltaCursor::Latest { select }, Vec::new())
        }
    };
    // The delta comes first: carried users and queued writebacks get half the budget at most.
    run.retry_earlier(&mut retry, started + time_budget / 2)
        .await;
    if ctx.writeback.is_some() {
        let queue = run_queue(ctx, &run.audit, &run.claims, started + time_budget / 2).await?;
        run.summary.writeback_queue = Some(queue);
    }

    loop {
        let page = run.next_page(&mut cursor).await?;
        if !run.summary.initialized {
            run.enrich_page(page.users, &mut retry).await;
        }
        let (link, mid_round) = match page.next {
            DeltaNext::More(next) => (next, true),
            DeltaNext::Done(delta) => (delta, false),
        };
        let checkpoint = Cursor {
            link: link.clone(),
            mid_round,
            updated: now_rfc3339(),
            retry: bounded(&mut retry, &mut run.summary),
        };
        etag = Some(save_cursor(ctx, etag.take(), &checkpoint).await?);
        if !mid_round {
            run.summary.round_complete = true;
            break;
        }
        if started.elapsed() >= time_budget {
            tracing::info!(
                pages = run.summary.pages,
                "time budget reached mid-round; the next invocation resumes"
            );
            break;
        }
        cursor = DeltaCursor::Link(link);
    }
    Ok(run.finish(&retry))
}

/// One invocation's working set: its audit log, its claims and what it has done so far.
struct WatchRun<'a> {
    ctx: &'a EnrichContext,
    audit: AuditLog,
    claims: Claims,
    summary: WatchSummary,
}

impl<'a> WatchRun<'a> {
    fn new(ctx: &'a EnrichContext) -> Self {
        let run_id = RunId::new();
        Self {
            ctx,
            audit: AuditLog::new(ctx.state.clone(), run_id.clone(), "new-hire-watch"),
            claims: Claims::new(ctx.state.clone(), "new-hire-watch", run_id.as_str()),
            summary: WatchSummary {
                run_id: run_id.to_string(),
                ..Default::default()
            },
        }
    }

    /// The next delta page; an expired or unknown token starts one new full round.
    async fn next_page(&mut self, cursor: &mut DeltaCursor) -> Result<DeltaPage, WatchError> {
        loop {
            match self.ctx.graph.delta_page(cursor).await {
                Ok(page) => {
                    self.summary.pages += 1;
                    return Ok(page);
                }
                Err(e) if e.is_delta_reset() && !self.summary.reset => {
                    tracing::warn!(error = %e, "delta token expired or unknown; starting a new full round");
                    self.summary.reset = true;
                    let select = self.ctx.select();
                    *cursor = DeltaCursor::Start { select };
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Tries again the users earlier invocations could not settle, each read afresh under its claim.
    /// No batch starts after `until`: a long list must not keep the delta from moving, so the users
    /// not reached wait, first in line, for the next invocation (their attempts unchanged).
    async fn retry_earlier(&mut self, retry: &mut Vec<RetryUser>, until: Instant) {
        let pending = std::mem::take(retry);
        let mut not_reached = Vec::new();
        for batch in pending.chunks(RETRY_BATCH) {
            if Instant::now() >= until {
                not_reached.extend_from_slice(batch);
                continue;
            }
            self.summary.retried += batch.len() as u64;
            let attempts: HashMap<&str, u32> =
                batch.iter().map(|r| (r.id.as_str(), r.attempts)).collect();
            let work = batch.iter().map(|r| (r.id.clone(), None)).collect();
            for (id, result) in self.enrich_all(work).await {
                if !self.record(&id, result) {
                    continue;
                }
                let tried = attempts.get(id.as_str()).copied().unwrap_or(0) + 1;
                if tried >= MAX_RETRY_ATTEMPTS {
                    tracing::warn!(user_id = %id, attempts = tried, "a changed user stayed unsettled; left to the next backfill");
                    self.summary.retry_abandoned += 1;
                } else {
                    retry.push(RetryUser {
                        id,
                        attempts: tried,
                    });
                }
            }
        }
        retry.splice(0..0, not_reached);
    }

    /// Enriches the in-scope users of one delta page; those left unsettled join `retry`.
    async fn enrich_page(&mut self, records: Vec<serde_json::Value>, retry: &mut Vec<RetryUser>) {
        let users: Vec<UserRecord> = records
            .into_iter()
            .filter(|u| u.get("@removed").is_none())
            .filter_map(|u| UserRecord::from_json(u).ok())
            .collect();
        self.summary.changed_users += users.len() as u64;
        let users = self.whole(users, retry).await;
        let work: Vec<(String, Option<UserRecord>)> = users
            .into_iter()
            .filter(|u| self.ctx.policy.scope.matches(u))
            .map(|u| (u.id().to_string(), Some(u)))
            .collect();
        self.summary.users_in_scope += work.len() as u64;
        for (id, result) in self.enrich_all(work).await {
            let unsettled = self.record(&id, result);
            retry.retain(|r| r.id != id);
            if unsettled {
                retry.push(RetryUser { id, attempts: 0 });
            }
        }
    }

    /// The users of a page with every property the decision needs. Graph gives an updated user as
    /// "their id with at least the properties that have been updated"
    /// (<https://learn.microsoft.com/graph/delta-query-overview#resource-representation-in-the-delta-query-response>):
    /// a record without its scope, source or current values would look out of scope, or unchanged.
    /// Those are read whole, 20 to a `$batch`; a read that fails transiently joins `retry`.
    async fn whole(
        &mut self,
        users: Vec<UserRecord>,
        retry: &mut Vec<RetryUser>,
    ) -> Vec<UserRecord> {
        let needed = self.ctx.select();
        let (mut whole, partial): (Vec<UserRecord>, Vec<UserRecord>) = users
            .into_iter()
            .partition(|u| needed.iter().all(|p| u.as_json().contains_key(p.as_str())));
        if partial.is_empty() {
            return whole;
        }
        let ids: Vec<String> = partial.iter().map(|u| u.id().to_string()).collect();
        self.summary.read_whole += ids.len() as u64;
        let select: Vec<&str> = needed.iter().map(String::as_str).collect();
        let answers = self.ctx.graph.get_users_batch(&ids, &select).await;
        for (id, answer) in ids.into_iter().zip(answers) {
            match answer.map(|j| j.map(UserRecord::from_json)) {
                Ok(Some(Ok(user))) => whole.push(user),
                // Deleted since (its removal comes in a later round), or no id: nothing to do.
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(user_id = %id, error = %e, "a changed user could not be read whole; tried again next tick");
                    self.summary.outcomes.add(&Outcome::Failed {
                        reason: e.to_string(),
                        transient: e.is_transient(),
                    });
                    if e.is_transient() {
                        retry.retain(|r| r.id != id);
                        retry.push(RetryUser { id, attempts: 0 });
                    }
                }
            }
        }
        whole
    }

    /// Each user is claimed before its write and re-read under the claim, so lcw-joiner, a backfill
    /// or another watch instance on the same user at the same moment write it once.
    async fn enrich_all(
        &self,
        work: Vec<(String, Option<UserRecord>)>,
    ) -> Vec<(String, Result<UserResult, EnrichError>)> {
        let (ctx, audit, claims) = (self.ctx, &self.audit, &self.claims);
        let enrich = |(id, prefetched): (String, Option<UserRecord>)| async move {
            let result = enrich_claimed(ctx, audit, claims, &id, prefetched, WhenBusy::Leave).await;
            (id, result)
        };
        futures::stream::iter(work.into_iter().map(enrich))
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await
    }

    /// Counts one user's result; true when it is unsettled and worth trying again.
    fn record(&mut self, id: &str, result: Result<UserResult, EnrichError>) -> bool {
        match result {
            Ok(r) => {
                if matches!(r.outcome, Outcome::Updated { .. }) && !r.dry_run {
                    self.summary.writes += 1;
                }
                tracing::info!(user_id = %r.user_id, outcome = r.outcome.code(), "new-hire-watch");
                self.summary.outcomes.add_result(&r);
                match &r.outcome {
                    Outcome::ClaimedElsewhere { .. } => true,
                    Outcome::Failed { transient, .. } => *transient,
                    // Workday may not list a hire yet (a report refreshed later, a late HR entry):
                    // kept for the next ticks, as the provisioning connector escrows it.
                    Outcome::NoMatchingValue => {
                        matches!(self.ctx.hr, super::context::HrSource::Workday(_))
                    }
                    _ => false,
                }
            }
            Err(e) => {
                // A failed read of one user must not lose the others: report it, keep going.
                tracing::warn!(user_id = %id, error = %e, "could not enrich a changed user");
                let transient = e.is_transient();
                self.summary.outcomes.add(&Outcome::Failed {
                    reason: e.to_string(),
                    transient,
                });
                transient
            }
        }
    }

    fn finish(mut self, retry: &[RetryUser]) -> WatchSummary {
        self.summary.retry_pending = retry.len() as u64;
        self.summary.claims = self.claims.stats();
        self.summary
    }
}

/// The retry list as the cursor stores it: the newest [`MAX_RETRY_USERS`], the rest abandoned.
fn bounded(retry: &mut Vec<RetryUser>, summary: &mut WatchSummary) -> Vec<RetryUser> {
    if retry.len() > MAX_RETRY_USERS {
        let dropped = retry.len() - MAX_RETRY_USERS;
        tracing::warn!(
            users = dropped,
            "too many unsettled users to carry; the oldest are left to the next backfill"
        );
        summary.retry_abandoned += dropped as u64;
        retry.drain(..dropped);
    }
    retry.clone()
}

/// Saves the cursor over the version this invocation read (or as new); a conflict means another
/// instance moved it, and this one stops.
async fn save_cursor(
    ctx: &EnrichContext,
    etag: Option<entra_state::ETag>,
    cursor: &Cursor,
) -> Result<entra_state::ETag, WatchError> {
    let cond = match etag {
        Some(e) => WriteCondition::IfMatch(e),
        None => WriteCondition::IfNoneMatch,
    };
    let bytes = serde_json::to_vec(cursor).unwrap_or_default();
    match ctx.state.put(CURSOR_KEY, bytes.into(), cond).await {
        Ok(e) => Ok(e),
        Err(entra_state::StateError::Conflict { .. }) => Err(WatchError::Conflict),
        Err(e) => Err(e.into()),
    }
}
