//! Identity and access service limits (https://learn.microsoft.com/graph/throttling-limits,
//! "Identity and access service limits"): per application+tenant a ResourceUnit quota per 10 s
//! (S <50 users 3,500; M 50–500 5,000; L >500 8,000) and 3,000 writes per 2 min 30 s; per tenant
//! 18,000 writes per 5 min. Windows are **sliding** (a log of admitted requests); every window is
//! divided by `time_scale`. Rejected requests are not charged.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

#[derive(Debug, Default)]
struct Window {
    log: VecDeque<(Instant, u32)>,
    used: u64,
}

impl Window {
    fn prune(&mut self, now: Instant, len: Duration) {
        while let Some(&(t, c)) = self.log.front() {
            if now.duration_since(t) >= len {
                self.used -= u64::from(c);
                self.log.pop_front();
            } else {
                break;
            }
        }
    }
    /// Time until `cost` more fits under `limit`, or None when it fits now.
    fn wait_for(&self, now: Instant, len: Duration, limit: u64, cost: u32) -> Option<Duration> {
        if self.used + u64::from(cost) <= limit {
            return None;
        }
        let mut freed = 0u64;
        let need = self.used + u64::from(cost) - limit;
        for &(t, c) in &self.log {
            freed += u64::from(c);
            if freed >= need {
                return Some((t + len).saturating_duration_since(now));
            }
        }
        Some(len)
    }
    fn charge(&mut self, now: Instant, cost: u32) {
        if cost > 0 {
            self.log.push_back((now, cost));
            self.used += u64::from(cost);
        }
    }
}

/// Which limit rejected a request.
#[derive(Debug, Clone, PartialEq)]
pub struct Throttled {
    pub retry_after: Duration,
    /// `ResourceUnitLimitExceeded` or `WriteLimitExceeded`.
    pub information: &'static str,
    /// `Application_Tenant` or `Tenant`.
    pub scope: &'static str,
}

#[derive(Debug)]
pub struct Throttle {
    time_scale: f64,
    enabled: bool,
    ru: HashMap<String, Window>,
    writes: HashMap<String, Window>,
    tenant_writes: Window,
}

pub const RU_WINDOW: Duration = Duration::from_secs(10);
pub const APP_WRITE_WINDOW: Duration = Duration::from_secs(150);
pub const APP_WRITE_LIMIT: u64 = 3_000;
pub const TENANT_WRITE_WINDOW: Duration = Duration::from_secs(300);
pub const TENANT_WRITE_LIMIT: u64 = 18_000;

/// RU quota per 10 s for the tenant size (throttling-limits: S <50, M 50–500, L >500 users).
pub fn ru_limit(users: usize) -> u64 {
    if users < 50 {
        3_500
    } else if users <= 500 {
        5_000
    } else {
        8_000
    }
}

impl Throttle {
    pub fn new(time_scale: f64, enabled: bool) -> Self {
        let time_scale = if time_scale.is_finite() && time_scale > 0.0 {
            time_scale
        } else {
            1.0
        };
        Self {
            time_scale,
            enabled,
            ru: HashMap::new(),
            writes: HashMap::new(),
            tenant_writes: Window::default(),
        }
    }

    pub fn scaled(&self, d: Duration) -> Duration {
        d.div_f64(self.time_scale)
    }

    pub fn time_scale(&self) -> f64 {
        self.time_scale
    }

    pub fn set_enabled(&mut self, on: bool) {
        self.enabled = on;
    }

    /// Admits (and charges) or rejects one request of `ru` resource units and `writes` writes.
    pub fn admit(
        &mut self,
        app: &str,
        users: usize,
        ru: u32,
        writes: u32,
        now: Instant,
    ) -> Result<(), Throttled> {
        if !self.enabled {
            return Ok(());
        }
        let ru_len = self.scaled(RU_WINDOW);
        let w_len = self.scaled(APP_WRITE_WINDOW);
        let t_len = self.scaled(TENANT_WRITE_WINDOW);
        let ru_w = self.ru.entry(app.to_string()).or_default();
        ru_w.prune(now, ru_len);
        if let Some(wait) = ru_w.wait_for(now, ru_len, ru_limit(users), ru) {
            return Err(Throttled {
                retry_after: wait,
                information: "ResourceUnitLimitExceeded",
                scope: "Application_Tenant",
            });
        }
        if writes > 0 {
            let w = self.writes.entry(app.to_string()).or_default();
            w.prune(now, w_len);
            if let Some(wait) = w.wait_for(now, w_len, APP_WRITE_LIMIT, writes) {
                return Err(Throttled {
                    retry_after: wait,
                    information: "WriteLimitExceeded",
                    scope: "Application_Tenant",
                });
            }
            self.tenant_writes.prune(now, t_len);
            if let Some(wait) = self
                .tenant_writes
                .wait_for(now, t_len, TENANT_WRITE_LIMIT, writes)
            {
                return Err(Throttled {
                    retry_after: wait,
                    information: "WriteLimitExceeded",
                    scope: "Tenant",
                });
            }
            if let Some(w) = self.writes.get_mut(app) {
                w.charge(now, writes);
            }
            self.tenant_writes.charge(now, writes);
        }
        if let Some(w) = self.ru.get_mut(app) {
            w.charge(now, ru);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_quota_and_retry_after() {
        let mut t = Throttle::new(1000.0, true);
        let t0 = Instant::now();
        for _ in 0..3000 {
            assert!(t.admit("app", 10, 1, 1, t0).is_ok());
        }
        let e = t
            .admit("app", 10, 1, 1, t0 + Duration::from_millis(10))
            .err();
        let e = e.map(|e| (e.information, e.retry_after));
        assert_eq!(e, Some(("WriteLimitExceeded", Duration::from_millis(140))));
        assert!(t.admit("other", 10, 1, 1, t0).is_ok());
        assert!(t
            .admit("app", 10, 1, 1, t0 + Duration::from_millis(150))
            .is_ok());
    }

    #[test]
    fn ru_quota_by_tenant_size() {
        assert_eq!(
            (ru_limit(49), ru_limit(50), ru_limit(500), ru_limit(501)),
            (3500, 5000, 5000, 8000)
        );
        let mut t = Throttle::new(1.0, true);
        let now = Instant::now();
        for _ in 0..1750 {
            assert!(t.admit("a", 10, 2, 0, now).is_ok());
        }
        assert_eq!(
            t.admit("a", 10, 1, 0, now).err().map(|e| e.information),
            Some("ResourceUnitLimitExceeded")
        );
    }
}
