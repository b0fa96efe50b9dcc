//! Deterministic, seeded fault injection per route pattern.

use std::time::Duration;

use crate::error::SandboxError;

/// When a rule fires among the requests its pattern matches.
#[derive(Debug, Clone, PartialEq)]
pub enum FaultTrigger {
    /// Every n-th matching request (n ≥ 1): the n-th, 2n-th, …
    EveryNth(u64),
    /// Each matching request with this probability, decided by a seeded hash of
    /// (seed, rule index, match number) — the same sequence on every run.
    Probability(f64),
    /// Only the first `n` matching requests.
    FirstN(u64),
}

/// What a firing rule does.
#[derive(Debug, Clone, PartialEq)]
pub enum FaultAction {
    /// Answer with this status (429/500/502/503/504…) and a Graph error body. A 429 carries
    /// `Retry-After` (seconds, fractional allowed).
    Status {
        status: u16,
        retry_after: Option<f64>,
    },
    /// Close the connection without sending a response.
    Reset,
    /// Delay the (otherwise normal) response.
    Latency(Duration),
}

/// A fault rule: `pattern` is `"METHOD /path/with/*"`; `*` matches one path segment, a trailing
/// `/**` any rest; the method may be `*`.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultRule {
    pub pattern: String,
    pub trigger: FaultTrigger,
    pub action: FaultAction,
}

impl FaultRule {
    pub fn new(pattern: impl Into<String>, trigger: FaultTrigger, action: FaultAction) -> Self {
        Self {
            pattern: pattern.into(),
            trigger,
            action,
        }
    }

    /// Parses the CLI form `"PATTERN;TRIGGER;ACTION"`, e.g.
    /// `"PATCH /v1.0/users/*;every=3;status=429,retry=1.5"`, `"GET /v1.0/users;p=0.1;reset"`,
    /// `"* /v1.0/**;every=1;latency=200ms"`, `"GET /v1.0/users;first=2;status=503"`.
    pub fn parse(s: &str) -> Result<Self, SandboxError> {
        let parts: Vec<&str> = s.split(';').map(str::trim).collect();
        let [pattern, trigger, action] = parts.as_slice() else {
            return Err(SandboxError::Fault(format!(
                "expected PATTERN;TRIGGER;ACTION, got {s}"
            )));
        };
        let bad = |what: &str| SandboxError::Fault(format!("bad {what} in {s}"));
        let trigger = if let Some(n) = trigger.strip_prefix("every=") {
            FaultTrigger::EveryNth(n.parse().map_err(|_| bad("every"))?)
        } else if let Some(p) = trigger.strip_prefix("p=") {
            FaultTrigger::Probability(p.parse().map_err(|_| bad("p"))?)
        } else if let Some(n) = trigger.strip_prefix("first=") {
            FaultTrigger::FirstN(n.parse().map_err(|_| bad("first"))?)
        } else {
            return Err(bad("trigger"));
        };
        let action = if *action == "reset" {
            FaultAction::Reset
        } else if let Some(ms) = action.strip_prefix("latency=") {
            let ms = ms.trim_end_matches("ms");
            FaultAction::Latency(Duration::from_millis(
                ms.parse().map_err(|_| bad("latency"))?,
            ))
        } else if let Some(rest) = action.strip_prefix("status=") {
            let mut it = rest.split(',');
            let status = it.next().unwrap_or("").parse().map_err(|_| bad("status"))?;
            let mut retry_after = None;
            for kv in it {
                if let Some(r) = kv.strip_prefix("retry=") {
                    retry_after = Some(r.parse().map_err(|_| bad("retry"))?);
                }
            }
            FaultAction::Status {
                status,
                retry_after,
            }
        } else {
            return Err(bad("action"));
        };
        if pattern.split_once(' ').is_none() {
            return Err(bad("pattern (expected 'METHOD /path')"));
        }
        Ok(Self::new(*pattern, trigger, action))
    }

    pub fn matches(&self, method: &str, path: &str) -> bool {
        let Some((m, p)) = self.pattern.split_once(' ') else {
            return false;
        };
        if m != "*" && !m.eq_ignore_ascii_case(method) {
            return false;
        }
        path_matches(p.trim(), path)
    }
}

fn path_matches(pattern: &str, path: &str) -> bool {
    let mut pat = pattern.trim_end_matches('/').split('/');
    let mut segs = path.trim_end_matches('/').split('/');
    loop {
        match (pat.next(), segs.next()) {
            (Some("**"), _) => return true,
            (Some("*"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Rules plus their per-rule match counters.
#[derive(Debug, Default)]
pub struct Faults {
    seed: u64,
    rules: Vec<(FaultRule, u64)>,
}

impl Faults {
    pub fn new(seed: u64, rules: Vec<FaultRule>) -> Self {
        Self {
            seed,
            rules: rules.into_iter().map(|r| (r, 0)).collect(),
        }
    }

    pub fn set(&mut self, rules: Vec<FaultRule>) {
        self.rules = rules.into_iter().map(|r| (r, 0)).collect();
    }

    pub fn add(&mut self, rule: FaultRule) {
        self.rules.push((rule, 0));
    }

    /// The actions that fire for this request (latency rules accumulate; the first
    /// status/reset wins).
    pub fn evaluate(&mut self, method: &str, path: &str) -> Vec<FaultAction> {
        let mut out = Vec::new();
        for (idx, (rule, count)) in self.rules.iter_mut().enumerate() {
            if !rule.matches(method, path) {
                continue;
            }
            *count += 1;
            let fire = match rule.trigger {
                FaultTrigger::EveryNth(n) => n > 0 && *count % n == 0,
                FaultTrigger::FirstN(n) => *count <= n,
                FaultTrigger::Probability(p) => {
                    let h = mix(self.seed ^ mix(idx as u64) ^ mix(*count).rotate_left(17));
                    (h >> 11) as f64 / (1u64 << 53) as f64 <= p
                }
            };
            if fire {
                out.push(rule.action.clone());
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_match() {
        let r = FaultRule::parse("PATCH /v1.0/users/*;every=2;status=429,retry=1.5").ok();
        let r =
            r.unwrap_or_else(|| FaultRule::new("x", FaultTrigger::EveryNth(1), FaultAction::Reset));
        assert_eq!(
            r.action,
            FaultAction::Status {
                status: 429,
                retry_after: Some(1.5)
            }
        );
        assert!(r.matches("PATCH", "/v1.0/users/abc"));
        assert!(!r.matches("GET", "/v1.0/users/abc"));
        assert!(!r.matches("PATCH", "/v1.0/users"));
        let mut f = Faults::new(1, vec![r]);
        let fired: Vec<usize> = (0..4)
            .map(|_| f.evaluate("PATCH", "/v1.0/users/a").len())
            .collect();
        assert_eq!(fired, vec![0, 1, 0, 1]);
        assert!(FaultRule::parse("nonsense").is_err());
    }

    #[test]
    fn probability_is_deterministic() {
        let rule = FaultRule::new(
            "GET /**",
            FaultTrigger::Probability(0.3),
            FaultAction::Reset,
        );
        let run = |seed| {
            let mut f = Faults::new(seed, vec![rule.clone()]);
            (0..200)
                .map(|_| !f.evaluate("GET", "/v1.0/users").is_empty())
                .collect::<Vec<_>>()
        };
        assert_eq!(run(5), run(5));
        let hits = run(5).iter().filter(|b| **b).count();
        assert!((30..90).contains(&hits), "{hits}");
    }
}
