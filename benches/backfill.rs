//! A 100,000-user backfill against the time-scaled Graph write quota, with the real release binary.
//!
//! The sandbox (Graph + Entra emulator) runs in this process on a multi-thread tokio runtime; the
//! product runs as a child process: `entra-enrich backfill --json`, twice (the second run must write
//! nothing). Reported: achieved write rate as a fraction of the configured limit (target ≥ 0.95),
//! 429s, redundant writes (must be 0), the child's peak RSS (`VmHWM`, target ≤ 64 MB).
//!
//! `cargo bench --bench backfill` (env: `BENCH_USERS`, default 100000; `BENCH_TIME_SCALE`, default
//! 100; `BENCH_SEED`, default 7; `BENCH_STATE_DIR`, parent of the temporary state directory). Writes `target/bench-reports/backfill.json`; exits non-zero when a
//! target is missed, after printing the numbers.

mod support;
use support::{env_or, report_dir, vm_hwm_kb};

use std::collections::HashMap;
use std::fs::File;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use entra_sandbox::{Sandbox, SandboxOptions, TenantSource};
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_entra-enrich");
const TARGET_FRACTION: f64 = 0.95;
const TARGET_RSS_MB: f64 = 64.0;

/// What one child run produced.
struct ChildRun {
    summary: Value,
    peak_rss_kb: u64,
    rss_samples: u64,
    wall: Duration,
}

fn run_backfill(sb: &Sandbox, state_dir: &Path, per_minute: u64, label: &str) -> ChildRun {
    let out_path = state_dir.join(format!("{label}.stdout"));
    let err_path = state_dir.join(format!("{label}.stderr"));
    let stdout = File::create(&out_path).expect("create the child's stdout file");
    let stderr = File::create(&err_path).expect("create the child's stderr file");
    let started = Instant::now();
    let mut child = Command::new(BIN)
        .args(["backfill", "--json"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("GRAPH_BASE_URL", sb.graph_base_url())
        .env("IDENTITY_ENDPOINT", sb.identity_endpoint())
        .env("IDENTITY_HEADER", sb.identity_header())
        .env("ENRICH_STATE_DIR", state_dir.join("state"))
        .env(
            "ENRICH_USAGELOCATION_SOURCE",
            "onPremisesExtensionAttributes.extensionAttribute2",
        )
        .env("ENRICH_MAX_WRITES_PER_MINUTE", per_minute.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::from(stdout))
        .stderr(Stdio::from(stderr))
        .spawn()
        .expect("spawn the entra-enrich release binary");
    let pid = child.id();
    let (mut peak, mut samples) = (0u64, 0u64);
    let status = loop {
        if let Some(kb) = vm_hwm_kb(pid) {
            peak = peak.max(kb);
            samples += 1;
        }
        match child.try_wait().expect("wait for the backfill child") {
            Some(status) => break status,
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    };
    let wall = started.elapsed();
    let out = std::fs::read_to_string(&out_path).unwrap_or_default();
    if !status.success() {
        let err = std::fs::read_to_string(&err_path).unwrap_or_default();
        let tail: Vec<&str> = err.lines().rev().take(30).collect();
        eprintln!("--- {label}: child stderr (last 30 lines, newest first) ---");
        for l in tail {
            eprintln!("{l}");
        }
        panic!("{label}: entra-enrich backfill exited with {status}; stdout: {out}");
    }
    let summary: Value = out
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("{label}: no JSON summary on stdout: {out:?}"));
    ChildRun {
        summary,
        peak_rss_kb: peak,
        rss_samples: samples,
        wall,
    }
}

/// PATCH /v1.0/users/{id} items the sandbox saw, grouped by status class.
struct PatchCounts {
    /// 2xx answers.
    ok: u64,
    /// Answers other than 429 (what Graph admitted and charged to the write quota).
    admitted: u64,
    throttled: u64,
    /// 2xx PATCHes beyond the first per user.
    redundant: u64,
    users_written: u64,
}

fn patch_counts(sb: &Sandbox) -> PatchCounts {
    let mut per_user: HashMap<String, u64> = HashMap::new();
    let (mut ok, mut admitted, mut throttled) = (0, 0, 0);
    for r in sb.requests() {
        if r.method != "PATCH" || r.route != "PATCH /v1.0/users/{id}" {
            continue;
        }
        if r.status == 429 {
            throttled += 1;
            continue;
        }
        admitted += 1;
        if (200..300).contains(&r.status) {
            ok += 1;
            let id = r.path.rsplit('/').next().unwrap_or("").to_string();
            *per_user.entry(id).or_default() += 1;
        }
    }
    PatchCounts {
        ok,
        admitted,
        throttled,
        redundant: per_user.values().map(|n| n.saturating_sub(1)).sum(),
        users_written: per_user.len() as u64,
    }
}

fn u(v: &Value, key: &str) -> u64 {
    v.get(key).and_then(Value::as_u64).unwrap_or(0)
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --all-targets` runs this binary without it.
    if !std::env::args().any(|a| a == "--bench") {
        println!("skipped: run with `cargo bench` (this is a benchmark, not a test)");
        return;
    }
    let users: usize = env_or("BENCH_USERS", 100_000);
    let time_scale: f64 = env_or("BENCH_TIME_SCALE", 100.0);
    let seed: u64 = env_or("BENCH_SEED", 7);
    let per_minute = (1000.0 * time_scale).round() as u64;
    let configured_per_s = per_minute as f64 / 60.0;

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("build the tokio runtime");
    let bench_start = Instant::now();
    let sb = rt
        .block_on(Sandbox::start(SandboxOptions {
            tenant: TenantSource::Generated { users, seed },
            time_scale,
            throttling: true,
            record_requests: true,
            record_bodies: false,
            ..Default::default()
        }))
        .expect("start the sandbox");
    let setup_s = bench_start.elapsed().as_secs_f64();
    // BENCH_STATE_DIR: where the temporary state directory goes (default: the system temp dir).
    let dir = match std::env::var_os("BENCH_STATE_DIR") {
        Some(parent) => tempfile::tempdir_in(parent),
        None => tempfile::tempdir(),
    }
    .expect("create a temporary state directory");
    println!(
        "backfill bench: {users} users (seed {seed}), time_scale {time_scale}, \
         ENRICH_MAX_WRITES_PER_MINUTE={per_minute}, sandbox setup {setup_s:.2} s"
    );

    // Run 1: the real backfill.
    let first = run_backfill(&sb, dir.path(), per_minute, "run1");
    let counters1 = sb.counters();
    let patches1 = patch_counts(&sb);
    sb.reset_requests();

    // Run 2: everything is already correct; it must write nothing.
    let second = run_backfill(&sb, dir.path(), per_minute, "run2");
    let counters2 = sb.counters();
    let patches2 = patch_counts(&sb);
    let total_wall = bench_start.elapsed().as_secs_f64();

    let s1 = &first.summary;
    let writes = u(s1, "writes");
    let write_s = u(s1, "writeMs") as f64 / 1000.0;
    let elapsed_s = u(s1, "elapsedMs") as f64 / 1000.0;
    let admitted_per_s = if write_s > 0.0 {
        patches1.admitted as f64 / write_s
    } else {
        0.0
    };
    let accepted_per_s = if write_s > 0.0 {
        writes as f64 / write_s
    } else {
        0.0
    };
    let fraction = admitted_per_s / configured_per_s;
    let fraction_accepted = accepted_per_s / configured_per_s;
    let rss1_mb = first.peak_rss_kb as f64 / 1024.0;
    let rss2_mb = second.peak_rss_kb as f64 / 1024.0;
    let peak_rss_mb = rss1_mb.max(rss2_mb);
    let throttled = counters1.throttled + counters2.throttled;
    let redundant_run1 = patches1.redundant;
    let second_run_writes = patches2.ok;

    let ok_fraction = fraction >= TARGET_FRACTION;
    let ok_429 = true; // reported, no target
    let ok_redundant =
        redundant_run1 == 0 && second_run_writes == 0 && u(&second.summary, "writes") == 0;
    let ok_rss = peak_rss_mb <= TARGET_RSS_MB;

    let mark = |ok: bool| if ok { "ok" } else { "MISSED" };
    println!();
    println!(
        "| metric                                        | value        | target   |        |"
    );
    println!(
        "|-----------------------------------------------|--------------|----------|--------|"
    );
    println!(
        "| users listed                                  | {:>12} |          |        |",
        u(s1, "usersListed")
    );
    println!(
        "| users in scope                                | {:>12} |          |        |",
        u(s1, "usersInScope")
    );
    println!(
        "| writes accepted (summary.writes)              | {:>12} |          |        |",
        writes
    );
    println!(
        "| PATCH items admitted by Graph (non-429)       | {:>12} |          |        |",
        patches1.admitted
    );
    println!(
        "| PATCH items 2xx / distinct users written      | {:>5} / {:<5}|          |        |",
        patches1.ok, patches1.users_written
    );
    println!(
        "| write phase (s, summary.writeMs)              | {:>12.2} |          |        |",
        write_s
    );
    println!(
        "| backfill elapsed (s, summary.elapsedMs)       | {:>12.2} |          |        |",
        elapsed_s
    );
    println!(
        "| configured writes/s (1000*K/60)               | {:>12.1} |          |        |",
        configured_per_s
    );
    println!(
        "| admitted writes/s                             | {:>12.1} |          |        |",
        admitted_per_s
    );
    println!("| fraction of limit (admitted)                  | {:>12.3} | >= {TARGET_FRACTION:.2}  | {:<6} |", fraction, mark(ok_fraction));
    println!(
        "| accepted writes/s (2xx only) / fraction       | {:>6.1} {:>5.3} |          |        |",
        accepted_per_s, fraction_accepted
    );
    println!(
        "| 429s (sandbox counters.throttled, both runs)  | {:>12} | reported | {:<6} |",
        throttled,
        mark(ok_429)
    );
    println!(
        "| redundant writes, run 1                       | {:>12} | 0        | {:<6} |",
        redundant_run1,
        mark(redundant_run1 == 0)
    );
    println!(
        "| successful PATCHes, run 2                     | {:>12} | 0        | {:<6} |",
        second_run_writes,
        mark(second_run_writes == 0)
    );
    println!("| peak RSS run 1 (MB, VmHWM)                    | {:>12.1} | <= {TARGET_RSS_MB:.0}    | {:<6} |", rss1_mb, mark(rss1_mb <= TARGET_RSS_MB));
    println!("| peak RSS run 2 (MB, VmHWM)                    | {:>12.1} | <= {TARGET_RSS_MB:.0}    | {:<6} |", rss2_mb, mark(rss2_mb <= TARGET_RSS_MB));
    println!(
        "| child wall time run 1 / run 2 (s)             | {:>5.2} / {:<5.2}|          |        |",
        first.wall.as_secs_f64(),
        second.wall.as_secs_f64()
    );
    println!(
        "| bench total wall time (s)                     | {:>12.2} |          |        |",
        total_wall
    );
    let claims = s1.get("claims").cloned().unwrap_or(Value::Null);
    let claim_requests = u(&claims, "storageRequests");
    println!(
        "| claims taken / left to others, run 1          | {:>5} / {:<5}|          |        |",
        u(&claims, "acquired"),
        u(&claims, "leftToOthers")
    );
    println!(
        "| claim storage requests run 1 (per write)      | {:>6} {:>5.2} |          |        |",
        claim_requests,
        if writes > 0 {
            claim_requests as f64 / writes as f64
        } else {
            0.0
        }
    );
    println!(
        "| claim storage requests run 2                  | {:>12} |          |        |",
        u(&second.summary["claims"], "storageRequests")
    );
    println!();
    println!(
        "run 1 outcomes: {}",
        s1.get("outcomes").cloned().unwrap_or(Value::Null)
    );

    let report = json!({
        "bench": "backfill",
        "users": users,
        "seed": seed,
        "timeScale": time_scale,
        "maxWritesPerMinute": per_minute,
        "configuredWritesPerSecond": configured_per_s,
        "run1": {
            "summary": s1,
            "patchItemsAdmitted": patches1.admitted,
            "patchItems2xx": patches1.ok,
            "usersWritten": patches1.users_written,
            "patchItems429": patches1.throttled,
            "writePhaseSeconds": write_s,
            "admittedWritesPerSecond": admitted_per_s,
            "acceptedWritesPerSecond": accepted_per_s,
            "fractionOfLimit": fraction,
            "fractionOfLimitAccepted": fraction_accepted,
            "throttled": counters1.throttled,
            "redundantWrites": redundant_run1,
            "peakRssMb": rss1_mb,
            "rssSamples": first.rss_samples,
            "wallSeconds": first.wall.as_secs_f64(),
        },
        "run2": {
            "summary": second.summary,
            "successfulPatches": second_run_writes,
            "throttled": counters2.throttled,
            "peakRssMb": rss2_mb,
            "rssSamples": second.rss_samples,
            "wallSeconds": second.wall.as_secs_f64(),
        },
        "throttled": throttled,
        "peakRssMb": peak_rss_mb,
        "totalWallSeconds": total_wall,
        "targets": {
            "fractionOfLimit": {"target": TARGET_FRACTION, "met": ok_fraction},
            "redundantWrites": {"target": 0, "met": ok_redundant},
            "peakRssMb": {"target": TARGET_RSS_MB, "met": ok_rss},
        },
    });
    let dir_out = report_dir();
    let path = dir_out.join("backfill.json");
    match std::fs::create_dir_all(&dir_out).and_then(|_| {
        std::fs::write(
            &path,
            serde_json::to_vec_pretty(&report).unwrap_or_default(),
        )
    }) {
        Ok(()) => println!("report: {}", path.display()),
        Err(e) => eprintln!("could not write {}: {e}", path.display()),
    }

    drop(sb);
    rt.shutdown_timeout(Duration::from_secs(1));
    if !(ok_fraction && ok_redundant && ok_rss) {
        eprintln!("backfill bench: a target was missed (see the table)");
        std::process::exit(1);
    }
}
