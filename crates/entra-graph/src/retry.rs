//! Retry policy, `Retry-After` parsing and full-jitter exponential backoff.
//!
//! Graph: "Wait the number of seconds specified in the Retry-After header … If no Retry-After header
//! is provided by the response, we recommend implementing an exponential backoff retry policy"; the
//! documented sample is `Retry-After: 2.128` (<https://learn.microsoft.com/graph/throttling>). HTTP
//! also allows an HTTP-date (RFC 9110 §10.2.3), which we accept too.

use std::time::{Duration, SystemTime};

use rand::Rng;

/// How a call is retried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total attempts per call (or per batch item), including the first. At least 1.
    pub max_attempts: u32,
    /// The first backoff ceiling; doubles per retry.
    pub base_delay: Duration,
    /// The largest backoff ceiling (does not cap a `Retry-After` Graph sends).
    pub max_delay: Duration,
    /// Total time budget per call, from its first request (the first write-limiter wait is not
    /// counted): no retry starts, and no `Retry-After` is waited for, past it.
    pub deadline: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 6,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            deadline: Duration::from_secs(180),
        }
    }
}

impl RetryPolicy {
    /// Full jitter: a uniformly random delay in `[0, min(max_delay, base_delay × 2^retry)]`, where
    /// `retry` is 0 for the first retry.
    pub fn backoff(&self, retry: u32) -> Duration {
        let ceiling = self.backoff_ceiling(retry);
        let ceiling_ms = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
        if ceiling_ms == 0 {
            return Duration::ZERO;
        }
        Duration::from_millis(rand::rng().random_range(0..=ceiling_ms))
    }

    /// The upper bound of [`RetryPolicy::backoff`] for `retry`.
    pub fn backoff_ceiling(&self, retry: u32) -> Duration {
        let factor = 1u32.checked_shl(retry.min(20)).unwrap_or(u32::MAX);
        self.base_delay
            .checked_mul(factor)
            .unwrap_or(self.max_delay)
            .min(self.max_delay)
    }
}

/// Parses a `Retry-After` value: decimal seconds (`2.128`, `0.05`, `7`) or an HTTP-date. Negative,
/// non-finite or unparseable values give `None`; a date in the past gives zero.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let v = value.trim();
    if v.is_empty() {
        return None;
    }
    if let Ok(secs) = v.parse::<f64>() {
        if secs.is_finite() && secs >= 0.0 {
            // Cap absurd values at a day rather than overflow.
            return Some(Duration::from_secs_f64(secs.min(86_400.0)));
        }
        return None;
    }
    let when = httpdate::parse_http_date(v).ok()?;
    Some(
        when.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_decimal_seconds() {
        assert_eq!(
            parse_retry_after("2.128"),
            Some(Duration::from_millis(2128))
        );
        assert_eq!(parse_retry_after(" 7 "), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after("0.05"), Some(Duration::from_millis(50)));
        assert_eq!(parse_retry_after("-1"), None);
        assert_eq!(parse_retry_after("NaN"), None);
        assert_eq!(parse_retry_after("soon"), None);
        assert_eq!(parse_retry_after(""), None);
    }

    #[test]
    fn parses_http_dates() {
        let past = "Sun, 06 Nov 1994 08:49:37 GMT";
        assert_eq!(parse_retry_after(past), Some(Duration::ZERO));
        let future = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(120));
        let d = parse_retry_after(&future).unwrap_or_default();
        assert!(
            d > Duration::from_secs(100) && d <= Duration::from_secs(120),
            "{d:?}"
        );
    }

    #[test]
    fn backoff_is_bounded_by_the_ceiling() {
        let p = RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(1_000),
            deadline: Duration::from_secs(10),
        };
        assert_eq!(p.backoff_ceiling(0), Duration::from_millis(100));
        assert_eq!(p.backoff_ceiling(2), Duration::from_millis(400));
        assert_eq!(p.backoff_ceiling(10), Duration::from_millis(1_000));
        assert_eq!(p.backoff_ceiling(u32::MAX), Duration::from_millis(1_000));
        for r in 0..20 {
            assert!(p.backoff(r) <= p.backoff_ceiling(r));
        }
    }
}
