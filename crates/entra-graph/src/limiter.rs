//! A client-side write-rate limiter (GCRA) shared by every writer in the process.
//!
//! Graph's identity write quota is 3,000 requests per 2 min 30 s per application+tenant, shared by
//! every handler of the app (<https://learn.microsoft.com/graph/throttling-limits>, "Identity and
//! access service limits"). Pacing writes below that quota on our side keeps a backlog from turning
//! into a 429 storm; [`WriteLimiter::pause_for`] additionally stops every writer when Graph says
//! `Retry-After` (<https://learn.microsoft.com/graph/throttling>).
//!
//! Fairness: waiters queue on a `tokio::sync::Mutex`, which is FIFO, and the one at the head sleeps
//! (no busy-wait) until its slot. Dropping an `acquire` future gives nothing back and takes nothing.

use std::sync::Mutex as StdMutex;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

/// The default pace: 1,000 writes/minute, leaving headroom under 1,200/min (3,000 per 150 s).
pub const DEFAULT_MAX_WRITES_PER_MINUTE: u32 = 1_000;

/// A fair, async GCRA limiter for Graph writes. Share it with `Arc<WriteLimiter>`.
#[derive(Debug)]
pub struct WriteLimiter {
    /// Emission interval: one write every `interval`.
    interval: Duration,
    /// How far ahead of the theoretical arrival time a write may go (burst − 1 intervals).
    tolerance: Duration,
    per_minute: u32,
    burst: u32,
    /// Theoretical arrival time of the next write; `None` until the first write.
    tat: Mutex<Option<Instant>>,
    /// No write starts before this instant (set on a 429).
    paused_until: StdMutex<Option<Instant>>,
}

impl WriteLimiter {
    /// At most `per_minute` writes per minute, evenly spaced (burst 1). `0` is treated as 1.
    pub fn new(per_minute: u32) -> Self {
        Self::with_burst(per_minute, 1)
    }

    /// At most `per_minute` writes per minute on average, letting up to `burst` writes go back to
    /// back after an idle period. `0` is treated as 1 for both.
    pub fn with_burst(per_minute: u32, burst: u32) -> Self {
        let per_minute = per_minute.max(1);
        let burst = burst.max(1);
        let interval = Duration::from_secs(60) / per_minute;
        Self {
            interval,
            tolerance: interval * (burst - 1),
            per_minute,
            burst,
            tat: Mutex::new(None),
            paused_until: StdMutex::new(None),
        }
    }

    /// The configured rate.
    pub fn per_minute(&self) -> u32 {
        self.per_minute
    }

    /// The configured burst.
    pub fn burst(&self) -> u32 {
        self.burst
    }

    /// Waits (fairly, without spinning) until one write may start, and takes its slot.
    pub async fn acquire(&self) {
        self.acquire_n(1).await;
    }

    /// Waits until `n` writes may start (e.g. the items of one `$batch`), and takes their slots.
    pub async fn acquire_n(&self, n: u32) {
        if n == 0 {
            return;
        }
        // Holding the queue lock across the sleep is what makes the limiter FIFO-fair.
        let mut tat = self.tat.lock().await;
        loop {
            let now = Instant::now();
            let paused = self.paused_until();
            let mut ready_at = match *tat {
                Some(t) => t.checked_sub(self.tolerance).unwrap_or(t),
                None => now,
            };
            if let Some(p) = paused {
                ready_at = ready_at.max(p);
            }
            if ready_at > now {
                tokio::time::sleep_until(ready_at).await;
                continue; // a 429 may have extended the pause while we slept
            }
            let base = match *tat {
                Some(t) => t.max(now),
                None => now,
            };
            let base = match paused {
                Some(p) => base.max(p),
                None => base,
            };
            *tat = Some(base + self.interval * n);
            return;
        }
    }

    /// Stops every writer from starting a write for `duration` from now (never shortens a pause
    /// already in force). Called when Graph answers a write with 429.
    pub fn pause_for(&self, duration: Duration) {
        let until = Instant::now() + duration;
        if let Ok(mut guard) = self.paused_until.lock() {
            *guard = Some(match *guard {
                Some(existing) => existing.max(until),
                None => until,
            });
        }
    }

    /// The instant writers are paused until, if a pause is set (it may be in the past).
    pub fn paused_until(&self) -> Option<Instant> {
        self.paused_until.lock().ok().and_then(|g| *g)
    }
}

impl Default for WriteLimiter {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_WRITES_PER_MINUTE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    async fn spawn_acquirers(limiter: &Arc<WriteLimiter>, n: usize) -> Arc<AtomicUsize> {
        let done = Arc::new(AtomicUsize::new(0));
        for _ in 0..n {
            let l = Arc::clone(limiter);
            let d = Arc::clone(&done);
            tokio::spawn(async move {
                l.acquire().await;
                d.fetch_add(1, Ordering::SeqCst);
            });
        }
        tokio::task::yield_now().await;
        done
    }

    #[tokio::test(start_paused = true)]
    async fn spaces_writes_at_the_configured_rate() {
        // 60/min = one per second; burst 1.
        let limiter = Arc::new(WriteLimiter::new(60));
        let done = spawn_acquirers(&limiter, 5).await;
        tokio::time::sleep(Duration::from_millis(2_500)).await;
        // Slots at t=0, 1, 2 → exactly three by t=2.5 s (virtual time).
        assert_eq!(done.load(Ordering::SeqCst), 3);
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert_eq!(done.load(Ordering::SeqCst), 5);
    }

    #[tokio::test(start_paused = true)]
    async fn burst_lets_writes_through_back_to_back() {
        let limiter = Arc::new(WriteLimiter::with_burst(60, 3));
        let done = spawn_acquirers(&limiter, 5).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(done.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn pause_stops_all_writers_until_it_ends() {
        let limiter = Arc::new(WriteLimiter::with_burst(6_000, 10));
        limiter.pause_for(Duration::from_secs(10));
        let done = spawn_acquirers(&limiter, 3).await;
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(done.load(Ordering::SeqCst), 0);
        // A second 429 extends the pause; a shorter one does not shorten it.
        limiter.pause_for(Duration::from_secs(1));
        tokio::time::sleep(Duration::from_millis(5_500)).await;
        assert_eq!(done.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn waiters_are_served_in_arrival_order() {
        let limiter = Arc::new(WriteLimiter::new(600));
        let order = Arc::new(StdMutex::new(Vec::new()));
        for i in 0..5 {
            let l = Arc::clone(&limiter);
            let o = Arc::clone(&order);
            tokio::spawn(async move {
                l.acquire().await;
                if let Ok(mut g) = o.lock() {
                    g.push(i);
                }
            });
            tokio::task::yield_now().await;
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
        let got = order.lock().map(|g| g.clone()).unwrap_or_default();
        assert_eq!(got, vec![0, 1, 2, 3, 4]);
    }
}
