//! lcw-joiner end to end with Workday writeback on, against a zero-latency sandbox: the callout's
//! enrichment (Workday report by prompt, the Entra PATCH, the claims), `Get_Workers`,
//! `Change_Work_Contact_Information` and `Workday_Account_for_Worker_Update`, then `resume`. The
//! same joiners with writeback off give the baseline, so the writeback's own cost is the difference.
//!
//! The app is built by `App::start` from settings, as the Functions and Lambda adapters build it,
//! in this process; the sandbox answers on loopback with no added latency and no throttling.
//!
//! `cargo bench --bench joiner_writeback` (env: `BENCH_JOINERS`, default 300 per series;
//! `BENCH_WARMUP`, default 20). Writes `target/bench-reports/joiner_writeback.json`; exits non-zero
//! when a callout does not resume `Completed` or the writeback did not land once per joiner.

mod support;
use support::{env_or, report_dir, stats, stats_json};

use std::time::{Duration, Instant};

use entra_enrich::app::{App, AppOptions, JoinerGate};
use entra_enrich::config::Env;
use entra_enrich::handlers::lcw_joiner::JoinerRequest;
use entra_sandbox::workday::{WORKDAY_PASSWORD, WORKDAY_PROMPT, WORKDAY_USERNAME};
use entra_sandbox::{Sandbox, SandboxOptions};
use serde_json::{json, Value};

const WORKFLOW: &str = "7a1f2c3d-4b5e-4f60-8a71-92b3c4d5e6f7";
const TASK: &str = "1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f";

fn settings(sb: &Sandbox, state: &std::path::Path, writeback: &str) -> Env {
    [
        ("GRAPH_BASE_URL", sb.graph_base_url()),
        ("IDENTITY_ENDPOINT", sb.identity_endpoint()),
        ("IDENTITY_HEADER", sb.identity_header()),
        ("ENRICH_STATE_DIR", state.display().to_string()),
        ("ENRICH_MAX_WRITES_PER_MINUTE", "6000000".to_string()),
        ("ENRICH_SOURCE", "workday".to_string()),
        ("ENRICH_WORKDAY_REPORT_URL", sb.workday_report_url()),
        ("ENRICH_WORKDAY_PROMPT", WORKDAY_PROMPT.to_string()),
        ("ENRICH_WORKDAY_COUNTRY_FIELD", "Country".to_string()),
        ("ENRICH_WORKDAY_USERNAME", WORKDAY_USERNAME.to_string()),
        ("ENRICH_WORKDAY_PASSWORD", WORKDAY_PASSWORD.to_string()),
        ("ENRICH_WORKDAY_WRITEBACK", writeback.to_string()),
        ("ENRICH_WORKDAY_WWS_URL", sb.wws_url()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// Joiner `n` of series `series`: an Entra account and its Workday worker (no WORK email yet).
fn joiner(sb: &Sandbox, series: &str, n: usize) -> (String, String) {
    let eid = format!("{series}{n:06}");
    let id = format!(
        "0b0b0b0b-0000-4000-8000-{:012}",
        n + if series == "B" { 500_000 } else { 0 }
    );
    let upn = format!("joiner.{eid}@contoso.example").to_lowercase();
    sb.upsert_user(json!({
        "id": id, "userPrincipalName": upn, "mail": upn, "employeeId": eid,
        "onPremisesSyncEnabled": true, "accountEnabled": true, "otherMails": [],
        "displayName": format!("Joiner {eid}"),
    }))
    .expect("user");
    sb.upsert_worker(json!({
        "Employee_ID": eid, "Personal_Email": format!("private.{eid}@mail.example").to_lowercase(),
        "Country": "DE",
    }));
    (id, eid)
}

fn callout(sb: &Sandbox, subject: &str, tpr: &str) -> JoinerRequest {
    sb.add_task_processing_result(WORKFLOW, TASK, tpr);
    JoinerRequest {
        authorization: None,
        body: Ok(json!({
            "source": "lifecycleWorkflows",
            "type": "lifecycleEvent",
            "data": {
                "@odata.type": "#microsoft.graph.identityGovernance.customTaskExtensionCalloutData",
                "subject": {"id": subject},
                "task": {"id": TASK},
                "taskProcessingResult": {"id": tpr},
                "workflow": {"id": WORKFLOW},
            }
        })),
    }
}

/// One series: `warmup + n` joiners, one callout each, sequentially; the latencies of the last `n`.
async fn series(sb: &Sandbox, label: &str, writeback: &str, warmup: usize, n: usize) -> Vec<f64> {
    let state = tempfile::tempdir().expect("state dir");
    let options = AppOptions {
        transport: Some(sb.sdk_transport()),
        ..AppOptions::default()
    };
    let app = App::start(&settings(sb, state.path(), writeback), &options)
        .await
        .expect("app starts");
    let mut samples = Vec::with_capacity(n);
    for i in 0..warmup + n {
        let (id, _) = joiner(sb, label, i);
        let tpr = format!("{:08x}-0000-4000-8000-{i:012}", label.as_bytes()[0]);
        let started = Instant::now();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
        let answer = app
            .joiner(callout(sb, &id, &tpr), JoinerGate::FunctionKey, deadline)
            .await;
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        if answer.body["resume"] != "Completed" {
            eprintln!(
                "{label}: joiner {i} did not resume Completed: {}",
                answer.body
            );
            std::process::exit(1);
        }
        if i >= warmup {
            samples.push(ms);
        }
    }
    samples
}

fn changes(sb: &Sandbox, op: &str) -> usize {
    sb.requests()
        .iter()
        .filter(|r| r.status == 200 && r.body.as_deref().is_some_and(|b| b.contains(op)))
        .count()
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("skipped: run with `cargo bench` (this is a benchmark, not a test)");
        return;
    }
    let n: usize = env_or("BENCH_JOINERS", 300);
    let warmup: usize = env_or("BENCH_WARMUP", 20);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let sb = rt
        .block_on(Sandbox::start(SandboxOptions {
            users: 200,
            seed: 7,
            ..SandboxOptions::default()
        }))
        .expect("sandbox");
    let off = rt.block_on(series(&sb, "A", "off", warmup, n));
    let on = rt.block_on(series(&sb, "B", "email,username", warmup, n));
    let emails = changes(&sb, "Change_Work_Contact_Information_Request");
    let names = changes(&sb, "Workday_Account_for_Worker_Update_Request");
    let (off_s, on_s) = (stats(&off), stats(&on));
    println!("lcw-joiner end to end, zero-latency sandbox, {n} sequential callouts per series (after {warmup} warm-up):");
    println!(
        "  writeback off:             p50 {:.2} ms, p99 {:.2} ms",
        off_s.p50, off_s.p99
    );
    println!(
        "  writeback email,username:  p50 {:.2} ms, p99 {:.2} ms",
        on_s.p50, on_s.p99
    );
    println!(
        "  Workday writes: {emails} work emails, {names} usernames (expected {} each)",
        warmup + n
    );
    let report: Value = json!({
        "joiners": n,
        "warmup": warmup,
        "writebackOff": stats_json(&off_s),
        "writebackOn": stats_json(&on_s),
        "workEmailWrites": emails,
        "userNameWrites": names,
    });
    let dir = report_dir();
    std::fs::create_dir_all(&dir).expect("report dir");
    let path = dir.join("joiner_writeback.json");
    std::fs::write(
        &path,
        serde_json::to_vec_pretty(&report).unwrap_or_default(),
    )
    .expect("report");
    println!("  report: {}", path.display());
    if emails != warmup + n || names != warmup + n {
        eprintln!("the writeback did not land once per joiner");
        std::process::exit(1);
    }
}
