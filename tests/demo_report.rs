//! The demo (the README's first command) tells one story: its outcome table, its "not fully updated"
//! line, and the JSON and CSV report files agree, and partly written users (one property written,
//! the other invalid) are counted as `UpdatedWithWarnings`, in the table and in the report.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

/// The first backfill's block of the demo's output.
struct Block {
    table: BTreeMap<String, u64>,
    total: u64,
    listed: u64,
    written: u64,
    /// (users in the report, not updated, updated with warnings, JSON path)
    report: (u64, u64, u64, String),
}

/// The number just before the words `a b` in `line` (e.g. `2430 written`, `420 not updated`).
fn number_before(line: &str, a: &str, b: &str) -> u64 {
    let words: Vec<&str> = line
        .split_whitespace()
        .map(|w| w.trim_matches(|c: char| c == ',' || c == ':' || c == '('))
        .collect();
    let at = (1..words.len())
        .find(|&i| words[i] == a && (b.is_empty() || words.get(i + 1) == Some(&b)))
        .unwrap_or_else(|| panic!("{a:?} {b:?} in {line:?}"));
    words[at - 1].parse().expect("a number")
}

fn parse_block(out: &str) -> Block {
    let first = out
        .split("== second backfill")
        .next()
        .expect("first backfill block");
    let mut table = BTreeMap::new();
    let (mut total, mut listed, mut written, mut report) = (0, 0, 0, None);
    let mut in_table = false;
    for line in first.lines() {
        let t = line.trim();
        if t.starts_with("listed ") {
            listed = t
                .split_whitespace()
                .nth(1)
                .and_then(|n| n.parse().ok())
                .expect("listed");
            written = number_before(t, "written", "");
        } else if t.starts_with("outcome ") {
            in_table = true;
        } else if in_table && t.starts_with("total") {
            total = t
                .split_whitespace()
                .nth(1)
                .and_then(|n| n.parse().ok())
                .expect("total");
            in_table = false;
        } else if in_table && !t.starts_with('-') && !t.is_empty() {
            let mut it = t.split_whitespace();
            let (code, n) = (it.next().expect("code"), it.next().expect("count"));
            table.insert(code.to_string(), n.parse().expect("count"));
        } else if let Some(rest) = t.strip_prefix("report (") {
            let users = rest
                .split_whitespace()
                .next()
                .and_then(|n| n.parse().ok())
                .expect("report count");
            let path = t
                .split("): ")
                .nth(1)
                .and_then(|rest| rest.split(" and ").next())
                .expect("report path")
                .to_string();
            report = Some((
                users,
                number_before(t, "not", "updated"),
                number_before(t, "updated", "with"),
                path,
            ));
        }
    }
    Block {
        table,
        total,
        listed,
        written,
        report: report.expect("a report line"),
    }
}

/// Runs `entra-enrich demo ARGS` in a new directory, which must succeed: the directory and stdout.
fn demo(args: &[&str]) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new(env!("CARGO_BIN_EXE_entra-enrich"))
        .arg("demo")
        .args(args)
        .current_dir(dir.path())
        .output()
        .expect("demo runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "demo failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (dir, stdout)
}

#[test]
fn the_demo_outcome_table_adds_up_to_its_report_line_and_to_the_report_files() {
    let (dir, stdout) = demo(&["--users", "900", "--seed", "42"]);
    let b = parse_block(&stdout);

    assert_eq!(
        b.total, b.listed,
        "every listed user is in the table: {stdout}"
    );
    assert_eq!(b.table.values().sum::<u64>(), b.total);
    let full = b.table.get("EntryExportUpdate").copied().unwrap_or(0);
    let warned = b.table.get("UpdatedWithWarnings").copied().unwrap_or(0);
    let unchanged = b.table.get("NoChangeRequired").copied().unwrap_or(0);
    assert!(
        warned > 0,
        "the demo tenant has partly written users: {stdout}"
    );
    assert_eq!(full + warned, b.written, "written = clean + with warnings");

    let (in_report, not_updated, warned_line, path) = &b.report;
    assert_eq!(
        *in_report,
        b.total - full - unchanged,
        "table vs report line: {stdout}"
    );
    assert_eq!(*warned_line, warned);
    assert_eq!(not_updated + warned_line, *in_report);

    let json: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join(path)).expect("JSON report"))
            .expect("JSON");
    let rows = json.as_array().expect("rows");
    assert_eq!(rows.len() as u64, *in_report, "report file rows");
    let mut by_code: BTreeMap<String, u64> = BTreeMap::new();
    for r in rows {
        *by_code
            .entry(r["outcome"].as_str().expect("outcome").to_string())
            .or_default() += 1;
    }
    for (code, n) in &b.table {
        if code != "EntryExportUpdate" && code != "NoChangeRequired" {
            assert_eq!(by_code.get(code), Some(n), "report rows with {code}");
        }
    }
    // A partly written user's row says which field was left out and why.
    let partial = rows
        .iter()
        .find(|r| r["outcome"] == "UpdatedWithWarnings")
        .expect("a partial row");
    assert!(
        partial["detail"]
            .as_str()
            .is_some_and(|d| d.contains("not written")),
        "{partial}"
    );
    let csv = std::fs::read_to_string(Path::new(&dir.path().join(path)).with_extension("csv"))
        .expect("CSV report");
    assert_eq!(
        csv.lines().count() as u64,
        in_report + 1,
        "CSV rows + header"
    );
}

/// `demo --source workday`: the personal emails exist only in the sandbox's Workday report, the
/// first backfill writes from it, the second writes nothing, and no address is printed.
#[test]
fn the_workday_demo_writes_from_the_report_then_nothing() {
    let (_dir, stdout) = demo(&["--users", "300", "--seed", "42", "--source", "workday"]);
    assert!(
        stdout.contains("HR source: the sandbox's Workday RaaS report"),
        "{stdout}"
    );
    let reads: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains("Workday report:"))
        .collect();
    assert_eq!(reads.len(), 2, "{stdout}");
    let b = parse_block(&stdout);
    assert!(
        b.written > 100,
        "the first backfill wrote from Workday: {stdout}"
    );
    let second = stdout
        .split("== second backfill")
        .nth(1)
        .expect("a second backfill");
    assert!(
        second.contains(" in scope, 0 written"),
        "the second backfill writes nothing: {second}"
    );
    assert!(
        !stdout.contains("@mail.") && !stdout.contains("@gmail.com"),
        "{stdout}"
    );
}

/// The demo's identity is the sandbox's: in a shell where a platform aims the managed identity
/// elsewhere (App Service, Cloud Shell), it stops before any call, names the variable and the fix.
#[test]
fn the_demo_refuses_a_shell_with_a_platform_identity_and_says_how_to_run_it() {
    for name in ["IDENTITY_ENDPOINT", "MSI_ENDPOINT"] {
        let out = Command::new(env!("CARGO_BIN_EXE_entra-enrich"))
            .args(["demo", "--users", "10"])
            .env(name, "http://127.0.0.1:9/token")
            .current_dir(tempfile::tempdir().expect("tempdir").path())
            .output()
            .expect("demo runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(78), "{stderr}");
        assert!(stderr.contains(&format!("env -u {name}")), "{stderr}");
        assert!(!String::from_utf8_lossy(&out.stdout).contains("== first backfill =="));
    }
}
