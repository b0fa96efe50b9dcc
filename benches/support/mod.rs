//! Helpers shared by the root benches (each bench is its own crate root; this is `mod support;`).

#![allow(dead_code)]

/// An environment knob, or its default when unset or unparsable.
pub(crate) fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `VmHWM` (peak resident set) of a live process, in kB.
pub(crate) fn vm_hwm_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

/// A child run: its exit status, peak RSS (kB, `VmHWM` polled every 10 ms), wall time and stdout.
pub(crate) struct Measured {
    pub status: std::process::ExitStatus,
    pub peak_kb: u64,
    pub wall: std::time::Duration,
    pub stdout: String,
}

impl Measured {
    /// The last line of stdout that is JSON (the `--json` summary).
    pub(crate) fn summary(&self) -> serde_json::Value {
        self.stdout
            .lines()
            .rev()
            .find_map(|l| serde_json::from_str(l).ok())
            .expect("a JSON summary")
    }
}

/// Runs `cmd` with stdout to `stdout_path` (no stdin, no stderr), measuring it.
pub(crate) fn run_measured(
    cmd: &mut std::process::Command,
    stdout_path: &std::path::Path,
) -> Measured {
    use std::process::Stdio;
    let started = std::time::Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::from(
            std::fs::File::create(stdout_path).expect("stdout file"),
        ))
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the release binary");
    let pid = child.id();
    let mut peak_kb = 0u64;
    let status = loop {
        if let Some(kb) = vm_hwm_kb(pid) {
            peak_kb = peak_kb.max(kb);
        }
        match child.try_wait().expect("wait") {
            Some(s) => break s,
            None => std::thread::sleep(std::time::Duration::from_millis(10)),
        }
    };
    Measured {
        status,
        peak_kb,
        wall: started.elapsed(),
        stdout: std::fs::read_to_string(stdout_path).unwrap_or_default(),
    }
}

/// The release binary against `sb`, with only `PATH`, the sandbox's Graph and managed identity, and
/// the state directory `state` set.
pub(crate) fn product_command(
    bin: &str,
    sb: &entra_sandbox::Sandbox,
    state: &std::path::Path,
) -> std::process::Command {
    let mut cmd = std::process::Command::new(bin);
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("GRAPH_BASE_URL", sb.graph_base_url())
        .env("IDENTITY_ENDPOINT", sb.identity_endpoint())
        .env("IDENTITY_HEADER", sb.identity_header())
        .env("ENRICH_STATE_DIR", state);
    cmd
}

/// Latency figures of one series, in ms (nearest-rank percentiles).
pub(crate) struct Stats {
    pub n: usize,
    pub min: f64,
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
    pub mean: f64,
}

pub(crate) fn stats(samples_ms: &[f64]) -> Stats {
    let mut v = samples_ms.to_vec();
    v.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        if v.is_empty() {
            return f64::NAN;
        }
        // Nearest rank.
        let rank = ((p / 100.0) * v.len() as f64).ceil().max(1.0) as usize;
        v[rank.min(v.len()) - 1]
    };
    Stats {
        n: v.len(),
        min: v.first().copied().unwrap_or(f64::NAN),
        p50: pct(50.0),
        p99: pct(99.0),
        max: v.last().copied().unwrap_or(f64::NAN),
        mean: if v.is_empty() {
            f64::NAN
        } else {
            v.iter().sum::<f64>() / v.len() as f64
        },
    }
}

pub(crate) fn stats_json(s: &Stats) -> serde_json::Value {
    serde_json::json!({"n": s.n, "minMs": s.min, "p50Ms": s.p50, "p99Ms": s.p99, "maxMs": s.max, "meanMs": s.mean})
}

/// Where benches write their JSON reports: `$CARGO_TARGET_DIR/bench-reports`.
pub(crate) fn report_dir() -> std::path::PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("bench-reports")
}
