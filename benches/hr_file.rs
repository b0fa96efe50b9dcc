//! A 1,000,000-row HR file through a real backfill: peak memory must follow the in-scope population,
//! not the file (target ≤ 64 MB peak RSS).
//!
//! The sandbox runs in this process; the product runs as a child process (the release binary):
//! `entra-enrich backfill --dry-run --json --source csv:FILE`, which reads every row strictly, keeps
//! only the rows of in-scope users, and lists the rest beside the report. Reported: the file's size,
//! the child's peak RSS (`VmHWM`), wall time, and the matched / unmatched counts, which are checked
//! against the file as generated.
//!
//! `cargo bench --bench hr_file` (env: `BENCH_HR_ROWS`, default 1000000; `BENCH_USERS`, default
//! 20000). Writes `target/bench-reports/hr_file.json`; exits non-zero when a target is missed.

mod support;
use support::{env_or, product_command, run_measured};

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use entra_sandbox::{Sandbox, SandboxOptions};
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_entra-enrich");
const TARGET_RSS_MB: f64 = 64.0;

/// Writes the HR file: one row per directory user with an employeeId (its own values), then rows
/// that match no one, up to `rows`. Returns (rows written for users, total rows).
fn write_hr_file(sb: &Sandbox, path: &Path, rows: u64) -> (u64, u64) {
    let mut w = BufWriter::new(File::create(path).expect("create the HR file"));
    writeln!(w, "employeeId,displayName,personalEmail,country").expect("write");
    let mut written = 0u64;
    let mut for_users = 0u64;
    for id in sb.user_ids() {
        let Some(u) = sb.user(&id) else { continue };
        let Some(eid) = u["employeeId"].as_str().filter(|e| !e.trim().is_empty()) else {
            continue;
        };
        if eid.contains(['"', ',', '\n']) {
            continue;
        }
        writeln!(
            w,
            "{},\"User {written}\",person{written}@mail.example,DE",
            eid.trim()
        )
        .expect("write");
        written += 1;
        for_users += 1;
    }
    while written < rows {
        writeln!(
            w,
            "X{written:09},\"Not Synced {written}\",hire{written}@mail.example,FR"
        )
        .expect("write");
        written += 1;
    }
    w.flush().expect("flush");
    (for_users, written)
}

fn main() {
    let rows: u64 = env_or("BENCH_HR_ROWS", 1_000_000);
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
            ..SandboxOptions::default()
        }))
        .expect("sandbox");
    let dir = tempfile::tempdir().expect("tempdir");
    let hr = dir.path().join("hr.csv");
    let (for_users, total) = write_hr_file(&sb, &hr, rows);
    let file_mb = std::fs::metadata(&hr).map(|m| m.len()).unwrap_or(0) as f64 / 1e6;
    let report = dir.path().join("report.json");

    let out_path = dir.path().join("child.stdout");
    let run = run_measured(
        product_command(BIN, &sb, &dir.path().join("state"))
            .args(["backfill", "--dry-run", "--json", "--source"])
            .arg(format!("csv:{}", hr.display()))
            .arg("--report")
            .arg(&report),
        &out_path,
    );
    let (status, peak, wall) = (run.status, run.peak_kb, run.wall);
    assert!(status.success(), "backfill failed: {}", run.stdout);
    let summary: Value = run.summary();
    let hr_counts = &summary["hrFile"];
    let unmatched = hr_counts["unmatched"].as_u64().unwrap_or(0);
    let matched = hr_counts["matched"].as_u64().unwrap_or(0);
    let listing = dir.path().join("report-unmatched-hr.csv");
    let listed = std::fs::read_to_string(&listing)
        .map(|t| t.lines().count() as u64 - 1)
        .unwrap_or(0);
    let rss_mb = peak as f64 / 1024.0;
    let ok_rss = rss_mb <= TARGET_RSS_MB;
    // Rows for out-of-scope users are unmatched too; every generated filler row must be.
    let ok_counts = hr_counts["records"].as_u64() == Some(total)
        && unmatched >= total - for_users
        && listed == unmatched
        && matched + unmatched == total;
    let mark = |ok: bool| if ok { "ok" } else { "MISSED" };
    println!("| HR file (1 row per worker)                 | value        | target  |        |");
    println!("|--------------------------------------------|--------------|---------|--------|");
    println!("| rows                                       | {total:>12} |         |        |");
    println!("| file size (MB)                             | {file_mb:>12.1} |         |        |");
    println!("| directory users / rows for them            | {:>5} / {for_users:>5} |         |        |", sb.user_count());
    println!("| matched an in-scope user                   | {matched:>12} |         |        |");
    println!(
        "| matched none (listed beside the report)    | {unmatched:>12} | = listed | {:<6} |",
        mark(ok_counts)
    );
    println!("| peak RSS (MB, VmHWM)                       | {rss_mb:>12.1} | <= {TARGET_RSS_MB:.0}   | {:<6} |", mark(ok_rss));
    println!(
        "| wall time, whole dry-run backfill (s)      | {:>12.2} |         |        |",
        wall.as_secs_f64()
    );
    let dir_out = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-reports");
    let _ = std::fs::create_dir_all(&dir_out);
    let _ = std::fs::write(
        dir_out.join("hr_file.json"),
        serde_json::to_vec_pretty(&json!({
            "rows": total, "fileMb": file_mb, "users": sb.user_count(), "rowsForUsers": for_users,
            "matched": matched, "unmatched": unmatched, "listed": listed,
            "peakRssMb": rss_mb, "wallSeconds": wall.as_secs_f64(),
        }))
        .unwrap_or_default(),
    );
    if !(ok_rss && ok_counts) {
        std::process::exit(1);
    }
}
