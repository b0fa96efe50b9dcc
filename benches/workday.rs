//! A 100,000-worker Workday report through a real backfill: the report is parsed as it arrives, so
//! peak memory follows the in-scope population (the employeeId index), not the report (target ≤ 64 MB
//! peak RSS, as for the directory source).
//!
//! The sandbox (with its RaaS report) runs in this process; the product runs as a child process (the
//! release binary): `entra-enrich backfill --dry-run --json --source workday`, with the personal
//! emails only in Workday. Reported: the report's size, the child's peak RSS (`VmHWM`), the source
//! pass (the report read, from the summary's `hrFile.readMs`), wall time, and the matched and
//! unmatched counts, checked against the report as generated.
//!
//! `cargo bench --bench workday` (env: `BENCH_WORKERS`, default 100000; `BENCH_USERS`, default
//! 20000). Writes `target/bench-reports/workday.json`; exits non-zero when a target is missed.

mod support;
use support::{env_or, product_command, run_measured};

use std::path::Path;

use entra_sandbox::workday::{WorkdayOptions, WORKDAY_PASSWORD, WORKDAY_USERNAME};
use entra_sandbox::{Sandbox, SandboxOptions};
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_entra-enrich");
const TARGET_RSS_MB: f64 = 64.0;

fn main() {
    let workers: usize = env_or("BENCH_WORKERS", 100_000);
    let users: usize = env_or("BENCH_USERS", 20_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let sb = rt
        .block_on(Sandbox::start(SandboxOptions {
            users,
            seed: 7,
            workday: WorkdayOptions {
                personal_email_only_in_workday: true,
                // The seeded tenant gives one worker per user with an employeeId; the rest have no
                // account yet.
                extra_workers: Some(workers.saturating_sub(users)),
            },
            ..SandboxOptions::default()
        }))
        .expect("sandbox");
    // Top up to exactly `workers` rows with workers who have no account yet.
    let mut rows = sb.workday_rows();
    let mut n = 0usize;
    while rows.len() < workers {
        rows.push(json!({
            "Employee_ID": format!("T{n:08}"),
            "Personal_Email": format!("late.hire{n}@mail.example"),
            "Country": "FR",
        }));
        n += 1;
    }
    sb.set_workday_rows(rows.clone());
    let total = rows.len() as u64;
    let report_mb = rows.iter().map(|r| r.to_string().len() + 1).sum::<usize>() as f64 / 1e6;
    drop(rows);
    let dir = tempfile::tempdir().expect("tempdir");
    let report = dir.path().join("report.json");
    let out_path = dir.path().join("child.stdout");
    let run = run_measured(
        product_command(BIN, &sb, &dir.path().join("state"))
            .args([
                "backfill",
                "--dry-run",
                "--json",
                "--source",
                "workday",
                "--report",
            ])
            .arg(&report)
            .env("ENRICH_WORKDAY_REPORT_URL", sb.workday_report_url())
            .env("ENRICH_WORKDAY_USERNAME", WORKDAY_USERNAME)
            .env("ENRICH_WORKDAY_PASSWORD", WORKDAY_PASSWORD)
            .env("ENRICH_WORKDAY_COUNTRY_FIELD", "Country"),
        &out_path,
    );
    let (status, peak, wall) = (run.status, run.peak_kb, run.wall);
    assert!(status.success(), "backfill failed: {}", run.stdout);
    let summary: Value = run.summary();
    let counts = &summary["hrFile"];
    let matched = counts["matched"].as_u64().unwrap_or(0);
    let unmatched = counts["unmatched"].as_u64().unwrap_or(0);
    let blank = counts["blankEmployeeIds"].as_u64().unwrap_or(0);
    let read_s = counts["readMs"].as_u64().unwrap_or(0) as f64 / 1000.0;
    let rss_mb = peak as f64 / 1024.0;
    let ok_rss = rss_mb <= TARGET_RSS_MB;
    let ok_counts = counts["records"].as_u64() == Some(total)
        && matched + unmatched + blank == total
        && unmatched >= (workers.saturating_sub(users)) as u64;
    let mark = |ok: bool| if ok { "ok" } else { "MISSED" };
    println!("| Workday RaaS report (1 row per worker)     | value        | target  |        |");
    println!("|--------------------------------------------|--------------|---------|--------|");
    println!("| workers (rows)                             | {total:>12} |         |        |");
    println!(
        "| report size (MB of JSON)                   | {report_mb:>12.1} |         |        |"
    );
    println!(
        "| directory users                            | {:>12} |         |        |",
        sb.user_count()
    );
    println!("| matched an in-scope user                   | {matched:>12} |         |        |");
    println!(
        "| matched none                               | {unmatched:>12} | counted | {:<6} |",
        mark(ok_counts)
    );
    println!("| source pass: the report read (s)           | {read_s:>12.2} |         |        |");
    println!("| peak RSS (MB, VmHWM)                       | {rss_mb:>12.1} | <= {TARGET_RSS_MB:.0}   | {:<6} |", mark(ok_rss));
    println!(
        "| wall time, whole dry-run backfill (s)      | {:>12.2} |         |        |",
        wall.as_secs_f64()
    );
    let dir_out = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-reports");
    let _ = std::fs::create_dir_all(&dir_out);
    let _ = std::fs::write(
        dir_out.join("workday.json"),
        serde_json::to_vec_pretty(&json!({
            "workers": total, "reportMb": report_mb, "users": sb.user_count(),
            "matched": matched, "unmatched": unmatched, "blankEmployeeIds": blank,
            "sourcePassSeconds": read_s, "peakRssMb": rss_mb, "wallSeconds": wall.as_secs_f64(),
        }))
        .unwrap_or_default(),
    );
    if !(ok_rss && ok_counts) {
        std::process::exit(1);
    }
}
