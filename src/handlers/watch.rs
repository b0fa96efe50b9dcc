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

use std::time::{Duration, Instant};

use entra_core::{Outcome, UserRecord};
use entra_graph::{DeltaCursor, DeltaNext, GraphError};
use entra_state::WriteCondition;
use futures::StreamExt;
use serde::{Deserialize, Serialize};

use super::apply::UserResult;
use super::audit::{now_rfc3339, AuditLog};
use super::claim::{ClaimStats, Claims};
use super::enrich::{enrich_claimed, EnrichError, WhenBusy};
use super::report::Tally;
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
    pub users_in_scope: u64,
    pub writes: u64,
    /// False when the time budget ended the invocation mid-round (the next one resumes).
    pub round_complete: bool,
    pub outcomes: Tally,
    /// Claims taken, and users left to another handler writing them at the same moment.
    pub claims: ClaimStats,
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
    let run_id = RunId::new();
    let audit = AuditLog::new(ctx.state.clone(), run_id.clone(), "new-hire-watch");
    let claims = Claims::new(ctx.state.clone(), "new-hire-watch", run_id.as_str());
    let select = ctx.select();
    let mut summary = WatchSummary {
        run_id: run_id.to_string(),
        ..Default::default()
    };

    let stored = ctx.state.get(CURSOR_KEY).await?;
    let mut etag = stored.as_ref().map(|v| v.etag.clone());
    let mut cursor = match stored
        .as_ref()
        .and_then(|v| serde_json::from_slice::<Cursor>(&v.bytes).ok())
    {
        Some(c) => DeltaCursor::Link(c.link),
        None => {
            summary.initialized = true;
            DeltaCursor::Latest {
                select: select.clone(),
            }
        }
    };

    loop {
        let page = match ctx.graph.delta_page(&cursor).await {
            Ok(p) => p,
            Err(e) if e.is_delta_reset() && !summary.reset => {
                tracing::warn!(error = %e, "delta token expired or unknown; starting a new full round");
                summary.reset = true;
                cursor = DeltaCursor::Start {
                    select: select.clone(),
                };
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        summary.pages += 1;

        if !summary.initialized {
            let users: Vec<UserRecord> = page
                .users
                .into_iter()
                .filter(|u| u.get("@removed").is_none())
                .filter_map(|u| UserRecord::from_json(u).ok())
                .collect();
            summary.changed_users += users.len() as u64;
            let in_scope: Vec<UserRecord> = users
                .into_iter()
                .filter(|u| ctx.policy.scope.matches(u))
                .collect();
            summary.users_in_scope += in_scope.len() as u64;
            // Each user is claimed before its write and re-read under the claim, so lcw-joiner, a
            // backfill or another watch instance on the same user at the same moment write it once.
            let enrich = |u: UserRecord| {
                let (audit, claims) = (&audit, &claims);
                async move {
                    let id = u.id().to_string();
                    enrich_claimed(ctx, audit, claims, &id, Some(u), WhenBusy::Leave).await
                }
            };
            let results: Vec<Result<UserResult, EnrichError>> =
                futures::stream::iter(in_scope.into_iter().map(enrich))
                    .buffer_unordered(CONCURRENCY)
                    .collect()
                    .await;
            for r in results {
                match r {
                    Ok(r) => {
                        if matches!(r.outcome, Outcome::Updated { .. }) && !r.dry_run {
                            summary.writes += 1;
                        }
                        tracing::info!(user_id = %r.user_id, outcome = r.outcome.code(), "new-hire-watch");
                        summary.outcomes.add_result(&r);
                    }
                    Err(e) => {
                        // A failed read of one user must not lose the others: report it, keep going.
                        // It is retried when the user changes again or by the next backfill.
                        tracing::warn!(error = %e, "could not enrich a changed user");
                        summary.outcomes.add(&Outcome::Failed {
                            reason: e.to_string(),
                            transient: e.is_transient(),
                        });
                    }
                }
            }
        }

        let (link, mid_round) = match &page.next {
            DeltaNext::More(next) => (next.clone(), true),
            DeltaNext::Done(delta) => (delta.clone(), false),
        };
        let cp = Cursor {
            link: link.clone(),
            mid_round,
            updated: now_rfc3339(),
        };
        let cond = match etag.take() {
            Some(e) => WriteCondition::IfMatch(e),
            None => WriteCondition::IfNoneMatch,
        };
        etag = Some(
            match ctx
                .state
                .put(
                    CURSOR_KEY,
                    serde_json::to_vec(&cp).unwrap_or_default().into(),
                    cond,
                )
                .await
            {
                Ok(e) => e,
                Err(entra_state::StateError::Conflict { .. }) => return Err(WatchError::Conflict),
                Err(e) => return Err(e.into()),
            },
        );

        if !mid_round {
            summary.round_complete = true;
            break;
        }
        if started.elapsed() >= time_budget {
            tracing::info!(
                pages = summary.pages,
                "time budget reached mid-round; the next invocation resumes"
            );
            break;
        }
        cursor = DeltaCursor::Link(link);
    }
    summary.claims = claims.stats();
    Ok(summary)
}
