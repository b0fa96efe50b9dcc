//! The tenant checks in health: doctor's cheap ones (the app's permissions, Email OTP and the
//! policy's migration state), cached for `ENRICH_HEALTH_CHECKS_SECONDS` (ten minutes by default) so
//! that a probe every few seconds costs Graph one policy read per ten minutes.
//!
//! Health never waits long for Graph: a stale or missing answer starts one refresh in the
//! background (never two at once) and waits for it up to [`READINESS_WAIT`]. A refresh that takes
//! longer finishes on its own, and health shows the previous answer, marked `stale`, meanwhile.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::watch;

use crate::handlers::audit::now_rfc3339;
use crate::handlers::doctor::{cheap_tenant_checks, Check, Needs, Verdict};
use crate::handlers::EnrichContext;

/// How long health waits for a refresh before it answers with what it has.
pub const READINESS_WAIT: Duration = Duration::from_secs(3);

/// What health shows under `tenantChecks`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Readiness {
    /// `fresh` (younger than the TTL), `stale` (older, a refresh is under way) or `pending` (the
    /// first refresh has not finished yet).
    pub state: &'static str,
    /// When the checks ran (UTC), if they have.
    pub checked_at: Option<String>,
    pub age_seconds: Option<u64>,
    /// How many checks failed: each names its fix; `entra-enrich doctor` runs them all.
    pub failures: usize,
    pub checks: Vec<Check>,
}

struct Answer {
    at: Instant,
    checked_at: String,
    checks: Vec<Check>,
}

#[derive(Default)]
struct Slot {
    last: Option<Answer>,
    /// Set while a refresh runs; it turns `true` when the refresh is done.
    refreshing: Option<watch::Receiver<bool>>,
}

/// One per app.
#[derive(Default)]
pub(crate) struct ReadinessCache {
    slot: Mutex<Slot>,
}

impl ReadinessCache {
    /// The cached checks, refreshed first (within [`READINESS_WAIT`]) when they are older than
    /// `ttl` or missing.
    pub(super) async fn view(
        self: &Arc<Self>,
        ctx: &EnrichContext,
        needs: Needs,
        ttl: Duration,
    ) -> Readiness {
        if let Some(mut done) = self.refresh_if_stale(ctx, needs, ttl) {
            let _ = tokio::time::timeout(READINESS_WAIT, done.wait_for(|d| *d)).await;
        }
        self.snapshot(ttl)
    }

    /// Starts a refresh unless the answer is fresh; returns what tells when it is done.
    fn refresh_if_stale(
        self: &Arc<Self>,
        ctx: &EnrichContext,
        needs: Needs,
        ttl: Duration,
    ) -> Option<watch::Receiver<bool>> {
        let mut slot = self.slot.lock().ok()?;
        if slot.last.as_ref().is_some_and(|a| a.at.elapsed() < ttl) {
            return None;
        }
        // A refresh whose task died (its sender is gone) is started again.
        if let Some(running) = slot.refreshing.as_ref().filter(|r| r.has_changed().is_ok()) {
            return Some(running.clone());
        }
        let (tx, rx) = watch::channel(false);
        slot.refreshing = Some(rx.clone());
        let cache = Arc::clone(self);
        let ctx = ctx.clone();
        tokio::spawn(async move {
            let checks = cheap_tenant_checks(&ctx, needs).await;
            cache.store(checks);
            let _ = tx.send(true);
        });
        Some(rx)
    }

    fn store(&self, checks: Vec<Check>) {
        if let Ok(mut slot) = self.slot.lock() {
            slot.last = Some(Answer {
                at: Instant::now(),
                checked_at: now_rfc3339(),
                checks,
            });
            slot.refreshing = None;
        }
    }

    fn snapshot(&self, ttl: Duration) -> Readiness {
        let slot = self.slot.lock().ok();
        let Some(answer) = slot.as_ref().and_then(|s| s.last.as_ref()) else {
            return Readiness {
                state: "pending",
                checked_at: None,
                age_seconds: None,
                failures: 0,
                checks: Vec::new(),
            };
        };
        let age = answer.at.elapsed();
        Readiness {
            state: if age < ttl { "fresh" } else { "stale" },
            checked_at: Some(answer.checked_at.clone()),
            age_seconds: Some(age.as_secs()),
            failures: answer
                .checks
                .iter()
                .filter(|c| c.verdict == Verdict::Fail)
                .count(),
            checks: answer.checks.clone(),
        }
    }
}
