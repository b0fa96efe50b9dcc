//! The caller's deadline, carried with the task rather than threaded through every signature.
//!
//! A handler that must answer within a platform limit (lcw-joiner inside the relay's 60 s HTTP
//! action, a timer inside `functionTimeout`) runs its work inside [`within`]. Every Graph call made in
//! that task then caps its own per-call deadline, its per-request timeout and its `Retry-After` waits
//! by the caller's remaining time, and fails with a transient [`crate::GraphErrorKind::Timeout`]
//! instead of outliving the caller. Nested scopes only ever shorten the deadline.
//!
//! The scope is a `tokio` task-local: it follows the future (including `join!`,
//! `buffer_unordered` and `FuturesUnordered` inside it), not tasks it `spawn`s.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

tokio::task_local! {
    static DEADLINE: Instant;
}

/// Runs `work` with `deadline` as the caller's deadline (or the enclosing one, if that is earlier).
pub async fn within<F: Future>(deadline: Instant, work: F) -> F::Output {
    let effective = cap(deadline);
    DEADLINE.scope(effective, work).await
}

/// The caller's deadline, when the current task runs inside [`within`].
pub fn current() -> Option<Instant> {
    DEADLINE.try_with(|d| *d).ok()
}

/// `at`, or the caller's deadline when that comes first.
pub fn cap(at: Instant) -> Instant {
    current().map_or(at, |d| d.min(at))
}

/// Time left before the caller's deadline; `None` without one.
pub fn remaining() -> Option<Duration> {
    current().map(|d| d.saturating_duration_since(Instant::now()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn scopes_nest_and_only_shorten() {
        assert!(current().is_none());
        let outer = Instant::now() + Duration::from_secs(10);
        within(outer, async move {
            assert_eq!(current(), Some(outer));
            let later = outer + Duration::from_secs(5);
            within(later, async move { assert_eq!(current(), Some(outer)) }).await;
            let sooner = outer - Duration::from_secs(5);
            within(sooner, async move { assert_eq!(current(), Some(sooner)) }).await;
            assert_eq!(cap(later), outer);
            assert!(remaining().is_some_and(|r| r <= Duration::from_secs(10)));
        })
        .await;
        assert!(current().is_none());
    }
}
