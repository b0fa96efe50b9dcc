//! Workday writeback (`ENRICH_WORKDAY_WRITEBACK`), against the sandbox's Workday Web Services: a
//! joiner's work email becomes the worker's primary WORK email at once, once; a replay, a second
//! watch round and a second backfill write nothing; a validation fault is final and the Entra write
//! still counts; a 503 queues the writeback for the next watch tick; rollback puts Workday back; no
//! personal email, password or token reaches a log line, a message or a report.

mod support;

use std::time::Duration;

use entra_enrich::app::{build_hr_source, build_writeback, App};
use entra_enrich::config::Config;
use entra_enrich::handlers::backfill::{BackfillOptions, NoProgress};
use entra_enrich::handlers::lcw_joiner::handle_callout;
use entra_enrich::handlers::rollback::run_rollback;
use entra_enrich::handlers::watch::run_watch;
use entra_enrich::handlers::writeback::{queued, MAX_ATTEMPTS};
use entra_enrich::handlers::RunId;
use entra_sandbox::workday::{WORKDAY_PASSWORD, WORKDAY_PROMPT, WORKDAY_USERNAME};
use entra_sandbox::{FaultAction, FaultRule, FaultTrigger, Sandbox, SandboxOptions};
use serde_json::{json, Value};
use support::logs::LogBuffer;
use support::*;

const WWS: &str = "POST /ccx/service/*/Human_Resources/*";
const GET_WORKERS: &str = "Get_Workers_Request";
const CHANGE_CONTACT: &str = "Change_Work_Contact_Information_Request";
const ACCOUNT_UPDATE: &str = "Workday_Account_for_Worker_Update_Request";
const WATCH_BUDGET: Duration = Duration::from_secs(30);

fn tenant() -> SandboxOptions {
    SandboxOptions {
        users: 30,
        seed: 11,
        ..SandboxOptions::default()
    }
}

/// Workday as the source (one row per joiner through the prompt) and writeback on, `extra` on top.
fn settings(sandbox: &Sandbox, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = [
        ("ENRICH_SOURCE", "workday".to_string()),
        ("ENRICH_WORKDAY_REPORT_URL", sandbox.workday_report_url()),
        ("ENRICH_WORKDAY_PROMPT", WORKDAY_PROMPT.to_string()),
        ("ENRICH_WORKDAY_USERNAME", WORKDAY_USERNAME.to_string()),
        ("ENRICH_WORKDAY_PASSWORD", WORKDAY_PASSWORD.to_string()),
        ("ENRICH_WORKDAY_COUNTRY_FIELD", "Country".to_string()),
        ("ENRICH_WORKDAY_WRITEBACK", "email".to_string()),
        ("ENRICH_WORKDAY_WWS_URL", sandbox.wws_url()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    for (k, v) in extra {
        out.retain(|(key, _)| key != k);
        out.push((k.to_string(), v.to_string()));
    }
    out
}

/// A harness whose context reads Workday and writes back to it.
async fn harness(extra: &[(&str, &str)]) -> Harness {
    let mut h = Harness::start(tenant(), &[]).await;
    let settings = settings(&h.sandbox, extra);
    let settings: Vec<(&str, &str)> = settings
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let env = env_for(&h.sandbox, h.state_dir.path(), &settings);
    h.config = Config::from_env(&env).expect("writeback settings");
    let options = app_options(&h.sandbox);
    h.ctx = h.context();
    h.ctx.hr = build_hr_source(&h.config, &env, &options).expect("Workday source");
    h.ctx.writeback = build_writeback(&h.config, &env, &options).expect("writeback client");
    h
}

/// New hire `n`: an Entra account with `mail`, and a Workday worker with two HOME addresses and
/// no WORK email yet. Returns (object id, employeeId, mail).
fn joiner(h: &Harness, n: usize) -> (String, String, String) {
    let eid = format!("NH{n:05}");
    let mail = format!("new.hire{n}@contoso.example");
    let mut hire = new_hire(n);
    hire["mail"] = json!(mail);
    let id = h.sandbox.upsert_user(hire).expect("new hire");
    h.sandbox.upsert_worker(json!({
        "Employee_ID": eid, "Personal_Email": format!("private.hire{n}@mail.example"), "Country": "DE"
    }));
    let homes = [
        (format!("private.hire{n}@mail.example"), "HOME", true),
        (format!("other.hire{n}@mail.example"), "HOME", false),
    ];
    let homes: Vec<(&str, &str, bool)> =
        homes.iter().map(|(a, u, p)| (a.as_str(), *u, *p)).collect();
    assert!(h.sandbox.set_worker_emails(&eid, homes));
    (id, eid, mail)
}

/// The worker's addresses as (address, usage, primary), sorted.
fn emails(h: &Harness, eid: &str) -> Vec<(String, String, bool)> {
    let worker = h.sandbox.worker(eid).expect("worker");
    let mut out: Vec<(String, String, bool)> = worker["emails"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            (
                e["address"].as_str().unwrap_or_default().to_string(),
                e["usage"].as_str().unwrap_or_default().to_string(),
                e["primary"].as_bool().unwrap_or(false),
            )
        })
        .collect();
    out.sort();
    out
}

fn primary_work(h: &Harness, eid: &str) -> Option<String> {
    emails(h, eid)
        .into_iter()
        .find(|(_, usage, primary)| usage == "WORK" && *primary)
        .map(|(a, ..)| a)
}

/// The Workday Web Services operations the sandbox received for `eid`, with their status.
fn operations(h: &Harness, op: &str, eid: &str) -> Vec<u16> {
    let id = format!(">{eid}<");
    h.sandbox
        .requests()
        .into_iter()
        .filter(|r| r.path.contains("/Human_Resources/"))
        .filter(|r| {
            r.body
                .as_deref()
                .is_some_and(|b| b.contains(op) && b.contains(&id))
        })
        .map(|r| r.status)
        .collect()
}

fn wws_requests(h: &Harness) -> usize {
    h.sandbox
        .requests()
        .iter()
        .filter(|r| r.path.contains("/Human_Resources/"))
        .count()
}

/// Workday Web Services answer the next request 503 (the client does not retry it itself).
fn workday_unavailable_once(h: &Harness) {
    h.sandbox.set_faults(vec![FaultRule::new(
        WWS,
        FaultTrigger::FirstN(1),
        FaultAction::Status {
            status: 503,
            retry_after: None,
        },
    )]);
}

/// Callout `n` for `id` while Workday answers 503: the workflow resumes `Completed` all the same,
/// and the reasons say the writeback is queued.
async fn callout_while_workday_is_down(
    h: &Harness,
    id: &str,
    n: usize,
) -> entra_enrich::handlers::lcw_joiner::JoinerResponse {
    workday_unavailable_once(h);
    let answer = handle_callout(&h.ctx, None, lcw_callout(&h.sandbox, id, &tpr(n))).await;
    assert_eq!(answer.body["resume"], "Completed", "{}", answer.body);
    let reasons = answer.body["reasons"].to_string();
    assert!(reasons.contains("queued"), "{}", answer.body);
    answer
}

/// Rolls back the run that wrote Workday (found in the audit log).
async fn roll_back_the_workday_run(
    h: &Harness,
) -> entra_enrich::handlers::rollback::RollbackSummary {
    let records = audit_records(h).await;
    let run = records
        .iter()
        .find(|r| r["target"] == "workday")
        .and_then(|r| r["runId"].as_str())
        .expect("a Workday audit line");
    run_rollback(&h.ctx, &RunId(run.to_string()))
        .await
        .expect("rollback")
}

fn tpr(n: usize) -> String {
    format!("5d4c3b2a-1f0e-4d9c-8b7a-{n:012}")
}

/// Every audit record the state store holds, across runs.
async fn audit_records(h: &Harness) -> Vec<Value> {
    let mut out = Vec::new();
    for key in h.ctx.state.list("audit/").await.expect("list") {
        let bytes = h
            .ctx
            .state
            .read_log(&key)
            .await
            .expect("read")
            .unwrap_or_default();
        for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            out.push(serde_json::from_slice(line).expect("audit line"));
        }
    }
    out
}

#[tokio::test]
async fn a_joiner_callout_writes_the_work_email_back_once_and_resumes_completed() {
    let h = harness(&[]).await;
    let (id, eid, mail) = joiner(&h, 1);
    let before = emails(&h, &eid);

    let answer = handle_callout(&h.ctx, None, lcw_callout(&h.sandbox, &id, &tpr(1))).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["resume"], "Completed", "{}", answer.body);
    let resumes = h.sandbox.resumes(WORKFLOW, TASK, &tpr(1));
    assert_eq!(resumes.len(), 1);
    assert_eq!(resumes[0].operation_status, "Completed");

    // One write: the account's mail as the primary WORK email, the HOME addresses kept.
    assert_eq!(operations(&h, CHANGE_CONTACT, &eid), vec![200]);
    let mut expected = before.clone();
    expected.push((mail.clone(), "WORK".into(), true));
    expected.sort();
    assert_eq!(emails(&h, &eid), expected);
    // Username writeback is off: no account update.
    assert!(operations(&h, ACCOUNT_UPDATE, &eid).is_empty());

    // Audited, target workday, before and after.
    let records = audit_records(&h).await;
    let workday: Vec<&Value> = records
        .iter()
        .filter(|r| r["target"] == "workday")
        .collect();
    assert_eq!(workday.len(), 1, "{records:?}");
    assert_eq!(workday[0]["property"], "workEmail");
    assert_eq!(workday[0]["before"], Value::Null);
    assert_eq!(workday[0]["after"], json!(mail));
    assert_eq!(workday[0]["userId"], json!(id));
    assert_eq!(workday[0]["handler"], "lcw-joiner");

    // A replay of the callout: answered from the record, nothing sent to Workday.
    let sent = wws_requests(&h);
    let replay = handle_callout(&h.ctx, None, lcw_callout(&h.sandbox, &id, &tpr(1))).await;
    assert_eq!(replay.body["replayed"], true, "{}", replay.body);
    assert_eq!(wws_requests(&h), sent);

    // The workflow run again (a new task processing result): Workday is read, and not written.
    let again = handle_callout(&h.ctx, None, lcw_callout(&h.sandbox, &id, &tpr(2))).await;
    assert_eq!(again.body["resume"], "Completed", "{}", again.body);
    assert_eq!(operations(&h, CHANGE_CONTACT, &eid), vec![200]);
    assert_eq!(operations(&h, GET_WORKERS, &eid).len(), 2);
}

#[tokio::test]
async fn the_username_follows_the_setting_and_a_worker_already_right_gets_a_read_and_no_write() {
    let h = harness(&[
        ("ENRICH_WORKDAY_WRITEBACK", "email,username"),
        ("ENRICH_WORKDAY_WRITEBACK_USERNAME", "local-part"),
    ])
    .await;
    // Worker 2 has its work email and username already.
    let (id, eid, mail) = joiner(&h, 2);
    let homes = emails(&h, &eid);
    let mut all: Vec<(&str, &str, bool)> = homes
        .iter()
        .map(|(a, u, p)| (a.as_str(), u.as_str(), *p))
        .collect();
    all.push((mail.as_str(), "WORK", true));
    assert!(h.sandbox.set_worker_emails(&eid, all));
    assert!(h.sandbox.set_worker_user_name(&eid, Some("new.hire2")));
    let answer = handle_callout(&h.ctx, None, lcw_callout(&h.sandbox, &id, &tpr(3))).await;
    assert_eq!(answer.body["resume"], "Completed", "{}", answer.body);
    assert_eq!(operations(&h, GET_WORKERS, &eid), vec![200]);
    assert!(operations(&h, CHANGE_CONTACT, &eid).is_empty());
    assert!(operations(&h, ACCOUNT_UPDATE, &eid).is_empty());

    // Worker 3 has neither: both are written, the username as the UPN's local part.
    let (id, eid, _) = joiner(&h, 3);
    let answer = handle_callout(&h.ctx, None, lcw_callout(&h.sandbox, &id, &tpr(4))).await;
    assert_eq!(answer.body["resume"], "Completed", "{}", answer.body);
    assert_eq!(operations(&h, CHANGE_CONTACT, &eid), vec![200]);
    assert_eq!(operations(&h, ACCOUNT_UPDATE, &eid), vec![200]);
    let worker = h.sandbox.worker(&eid).expect("worker");
    assert_eq!(worker["userName"], "new.hire3");
}

#[tokio::test]
async fn the_watch_writes_a_new_hire_back_once_and_a_second_round_writes_nothing() {
    let h = harness(&[]).await;
    run_watch(&h.ctx, WATCH_BUDGET).await.expect("watch init");
    let (_, eid, mail) = joiner(&h, 4);
    let first = run_watch(&h.ctx, WATCH_BUDGET).await.expect("watch");
    assert!(first.writes >= 1, "{first:?}");
    assert_eq!(primary_work(&h, &eid), Some(mail));
    assert_eq!(operations(&h, CHANGE_CONTACT, &eid), vec![200]);

    let second = run_watch(&h.ctx, WATCH_BUDGET).await.expect("watch");
    assert_eq!(second.writes, 0, "{second:?}");
    assert_eq!(operations(&h, CHANGE_CONTACT, &eid), vec![200]);
}

#[tokio::test]
async fn two_callouts_and_the_watch_on_one_new_hire_at_once_write_workday_once() {
    let h = harness(&[]).await;
    run_watch(&h.ctx, WATCH_BUDGET).await.expect("watch init");
    let (id, eid, _) = joiner(&h, 5);
    // Workday answers slowly, so both handlers are in flight together.
    h.sandbox.set_faults(vec![FaultRule::new(
        WWS,
        FaultTrigger::EveryNth(1),
        FaultAction::Latency(Duration::from_millis(300)),
    )]);
    // Two task processing results for the subject (the workflow run twice) and the watch: the
    // second callout takes the user's claim as the first one moves on to Workday.
    let first = handle_callout(&h.ctx, None, lcw_callout(&h.sandbox, &id, &tpr(5)));
    let second = handle_callout(&h.ctx, None, lcw_callout(&h.sandbox, &id, &tpr(105)));
    let watch = run_watch(&h.ctx, WATCH_BUDGET);
    let (a, b, round) = tokio::join!(first, second, watch);
    round.expect("watch");
    for answer in [a, b] {
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert_eq!(answer.body["resume"], "Completed", "{}", answer.body);
    }
    assert_eq!(operations(&h, CHANGE_CONTACT, &eid), vec![200]);
}

#[tokio::test]
async fn a_validation_fault_is_final_and_the_entra_write_still_counts() {
    // The directory gives the personal email; Workday has no worker with this employeeId, and
    // answers Get_Workers with a validation fault.
    let h = harness(&[("ENRICH_SOURCE", "directory")]).await;
    let mut hire = new_hire(6);
    hire["mail"] = json!("new.hire6@contoso.example");
    let id = h.sandbox.upsert_user(hire).expect("new hire");

    let answer = handle_callout(&h.ctx, None, lcw_callout(&h.sandbox, &id, &tpr(6))).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["resume"], "Completed", "{}", answer.body);
    let user = h.sandbox.user(&id).expect("user");
    assert_eq!(user["otherMails"], json!(["private.hire6@mail.example"]));
    let reasons = answer.body["reasons"].to_string();
    assert!(reasons.contains("not written back"), "{reasons}");
    assert!(reasons.contains("Get_Workers"), "{reasons}");
    assert!(!reasons.contains("private.hire6@mail.example"), "{reasons}");
    assert_eq!(operations(&h, GET_WORKERS, "NH00006"), vec![500]);

    // Nothing queued: the next ticks do not ask Workday again.
    assert!(queued(h.ctx.state.as_ref())
        .await
        .expect("queue")
        .is_empty());
    run_watch(&h.ctx, WATCH_BUDGET).await.expect("watch init");
    run_watch(&h.ctx, WATCH_BUDGET).await.expect("watch");
    assert_eq!(operations(&h, GET_WORKERS, "NH00006"), vec![500]);
}

#[tokio::test]
async fn a_workday_503_queues_the_writeback_and_the_next_watch_tick_completes_it_once() {
    let h = harness(&[]).await;
    let (id, eid, mail) = joiner(&h, 7);
    let answer = callout_while_workday_is_down(&h, &id, 7).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(primary_work(&h, &eid), None);
    let queue = queued(h.ctx.state.as_ref()).await.expect("queue");
    assert_eq!(queue.len(), 1);
    assert_eq!(queue[0].user_id, id);
    // The queue holds ids, never an address.
    let raw = std::fs::read_dir(h.state_dir.path().join("writeback/queue"))
        .expect("queue dir")
        .map(|e| std::fs::read_to_string(e.expect("entry").path()).expect("read"))
        .collect::<String>();
    assert!(!raw.contains('@'), "{raw}");

    let tick = run_watch(&h.ctx, WATCH_BUDGET).await.expect("watch");
    let q = tick.writeback_queue.expect("queue summary");
    assert_eq!((q.tried, q.completed, q.pending), (1, 1, 0), "{q:?}");
    assert_eq!(primary_work(&h, &eid), Some(mail));
    assert_eq!(operations(&h, CHANGE_CONTACT, &eid), vec![200]);
    assert!(queued(h.ctx.state.as_ref())
        .await
        .expect("queue")
        .is_empty());

    run_watch(&h.ctx, WATCH_BUDGET).await.expect("watch");
    assert_eq!(operations(&h, CHANGE_CONTACT, &eid), vec![200]);
}

#[tokio::test]
async fn a_hanging_workday_never_holds_the_workflow() {
    let mut h = harness(&[]).await;
    h.ctx.joiner_deadline = Duration::from_secs(5);
    let (id, eid, _) = joiner(&h, 14);
    // Workday takes a minute to answer anything.
    h.sandbox.set_faults(vec![FaultRule::new(
        WWS,
        FaultTrigger::EveryNth(1),
        FaultAction::Latency(Duration::from_secs(60)),
    )]);
    let answer = handle_callout(&h.ctx, None, lcw_callout(&h.sandbox, &id, &tpr(14))).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["resume"], "Completed", "{}", answer.body);
    assert_eq!(h.sandbox.resumes(WORKFLOW, TASK, &tpr(14)).len(), 1);
    assert!(
        answer.body["reasons"].to_string().contains("queued"),
        "{}",
        answer.body
    );
    let queue = queued(h.ctx.state.as_ref()).await.expect("queue");
    assert_eq!(queue.len(), 1);
    assert_eq!(queue[0].employee_id, eid);
}

#[tokio::test]
async fn a_queued_writeback_whose_match_became_ambiguous_is_dropped() {
    let h = harness(&[]).await;
    let (id, eid, _) = joiner(&h, 15);
    callout_while_workday_is_down(&h, &id, 15).await;
    // Meanwhile a second hybrid account gets the same employeeId.
    let mut twin = new_hire(16);
    twin["employeeId"] = json!(eid);
    h.sandbox.upsert_user(twin).expect("twin");

    let tick = run_watch(&h.ctx, WATCH_BUDGET).await.expect("watch");
    let q = tick.writeback_queue.expect("queue summary");
    assert_eq!((q.tried, q.abandoned), (1, 1), "{q:?}");
    assert!(operations(&h, CHANGE_CONTACT, &eid).is_empty());
    assert_eq!(primary_work(&h, &eid), None);
    assert!(queued(h.ctx.state.as_ref())
        .await
        .expect("queue")
        .is_empty());
}

#[tokio::test]
async fn a_workday_that_stays_down_is_tried_a_bounded_number_of_times() {
    let h = harness(&[]).await;
    let (id, eid, _) = joiner(&h, 8);
    h.sandbox.set_faults(vec![FaultRule::new(
        WWS,
        FaultTrigger::EveryNth(1),
        FaultAction::Status {
            status: 500,
            retry_after: None,
        },
    )]);
    let answer = handle_callout(&h.ctx, None, lcw_callout(&h.sandbox, &id, &tpr(8))).await;
    assert_eq!(answer.body["resume"], "Completed", "{}", answer.body);
    let mut abandoned = 0;
    for _ in 0..MAX_ATTEMPTS + 2 {
        let tick = run_watch(&h.ctx, WATCH_BUDGET).await.expect("watch");
        abandoned += tick.writeback_queue.map_or(0, |q| q.abandoned);
    }
    assert_eq!(abandoned, 1);
    assert!(queued(h.ctx.state.as_ref())
        .await
        .expect("queue")
        .is_empty());
    // The joiner's try plus one per tick until the bound, then none.
    assert_eq!(
        operations(&h, GET_WORKERS, &eid).len(),
        1 + MAX_ATTEMPTS as usize
    );
}

#[tokio::test]
async fn a_pre_hire_is_written_back_on_its_hire_date() {
    let h = harness(&[("ENRICH_WORKDAY_WRITEBACK_FROM", "hire-date")]).await;
    let (id, eid, mail) = joiner(&h, 9);
    let mut user = h.sandbox.user(&id).expect("user");
    user["employeeHireDate"] = json!("2099-01-01T00:00:00Z");
    h.sandbox.upsert_user(user.clone()).expect("hire date");
    // `backfill --writeback` waits for the hire date too.
    let app = App::from_parts(h.config.clone(), h.ctx.clone(), None);
    let options = BackfillOptions {
        writeback: true,
        ..BackfillOptions::default()
    };
    let summary = app.backfill(&options, &NoProgress).await.expect("backfill");
    assert!(summary.writeback.expect("totals").queued >= 1);
    assert!(operations(&h, GET_WORKERS, &eid).is_empty());
    let answer = handle_callout(&h.ctx, None, lcw_callout(&h.sandbox, &id, &tpr(9))).await;
    assert_eq!(answer.body["resume"], "Completed", "{}", answer.body);
    assert!(
        answer.body["reasons"].to_string().contains("hire date"),
        "{}",
        answer.body
    );
    assert!(operations(&h, GET_WORKERS, &eid).is_empty());
    let queue = queued(h.ctx.state.as_ref()).await.expect("queue");
    assert_eq!(queue[0].not_before.as_deref(), Some("2099-01-01T00:00:00Z"));

    // Not due: a tick leaves it.
    run_watch(&h.ctx, WATCH_BUDGET).await.expect("watch init");
    run_watch(&h.ctx, WATCH_BUDGET).await.expect("watch");
    assert!(operations(&h, GET_WORKERS, &eid).is_empty());

    // HR moves the hire date to the past: the next tick writes it back.
    user["employeeHireDate"] = json!("2020-01-01T00:00:00Z");
    h.sandbox.upsert_user(user).expect("hire date");
    let mut due = queue[0].clone();
    due.not_before = Some("2020-01-01T00:00:00Z".into());
    let key = format!("writeback/queue/{id}.json");
    let bytes = serde_json::to_vec(&due).expect("json");
    h.ctx
        .state
        .put(&key, bytes.into(), entra_state::WriteCondition::Any)
        .await
        .expect("queue");
    run_watch(&h.ctx, WATCH_BUDGET).await.expect("watch");
    assert_eq!(primary_work(&h, &eid), Some(mail));
    assert_eq!(operations(&h, CHANGE_CONTACT, &eid), vec![200]);
}

#[tokio::test]
async fn rollback_restores_the_work_email_the_run_changed() {
    let h = harness(&[]).await;
    let (id, eid, mail) = joiner(&h, 10);
    let mut all: Vec<(String, String, bool)> = emails(&h, &eid);
    all.push(("old.address10@contoso.example".into(), "WORK".into(), true));
    let all_refs: Vec<(&str, &str, bool)> = all
        .iter()
        .map(|(a, u, p)| (a.as_str(), u.as_str(), *p))
        .collect();
    assert!(h.sandbox.set_worker_emails(&eid, all_refs));
    let answer = handle_callout(&h.ctx, None, lcw_callout(&h.sandbox, &id, &tpr(10))).await;
    assert_eq!(answer.body["resume"], "Completed", "{}", answer.body);
    assert_eq!(primary_work(&h, &eid), Some(mail));

    let summary = roll_back_the_workday_run(&h).await;
    let line = summary
        .lines
        .iter()
        .find(|l| l.user_id == id)
        .expect("the user's line");
    assert_eq!(line.result, "restored", "{line:?}");
    assert!(
        line.properties.iter().any(|p| p == "workday.workEmail"),
        "{line:?}"
    );
    assert_eq!(
        primary_work(&h, &eid).as_deref(),
        Some("old.address10@contoso.example")
    );
    // HOME addresses untouched throughout.
    assert_eq!(emails(&h, &eid), {
        let mut e = all.clone();
        e.sort();
        e
    });
}

#[tokio::test]
async fn rollback_reports_a_first_work_email_it_cannot_remove() {
    let h = harness(&[]).await;
    let (id, eid, mail) = joiner(&h, 11);
    let answer = handle_callout(&h.ctx, None, lcw_callout(&h.sandbox, &id, &tpr(11))).await;
    assert_eq!(answer.body["resume"], "Completed", "{}", answer.body);
    let summary = roll_back_the_workday_run(&h).await;
    let line = summary
        .lines
        .iter()
        .find(|l| l.user_id == id)
        .expect("line");
    assert_eq!(line.result, "unrestorable", "{line:?}");
    let detail = line.detail.clone().unwrap_or_default();
    assert!(detail.contains("workday.workEmail"), "{detail}");
    assert_eq!(primary_work(&h, &eid), Some(mail));
}

#[tokio::test]
async fn backfill_writes_back_only_with_the_flag_its_dry_run_lists_it_and_a_rerun_writes_nothing() {
    let h = harness(&[]).await;
    let (_, eid, mail) = joiner(&h, 12);
    let app = App::from_parts(h.config.clone(), h.ctx.clone(), None);

    // Without --writeback: Workday is not touched.
    let plain = app
        .backfill(&BackfillOptions::default(), &NoProgress)
        .await
        .expect("backfill");
    assert!(plain.writeback.is_none());
    assert_eq!(wws_requests(&h), 0);

    // A dry run lists what it would write back, and writes nothing.
    let options = BackfillOptions {
        writeback: true,
        fresh: true,
        ..BackfillOptions::default()
    };
    let dry = App::from_parts(h.config.clone(), h.ctx.clone(), None)
        .dry_run(true)
        .backfill(&options, &NoProgress)
        .await
        .expect("dry run");
    let planned = dry.writeback.expect("writeback totals");
    assert!(planned.written >= 1, "{planned:?}");
    assert!(planned.rows.iter().any(
        |r| r.employee_id.as_deref() == Some(eid.as_str()) && r.detail.contains("would write")
    ));
    let changes = |h: &Harness| {
        h.sandbox
            .requests()
            .iter()
            .filter(|r| r.status == 200)
            .filter(|r| {
                r.body
                    .as_deref()
                    .is_some_and(|b| b.contains(CHANGE_CONTACT))
            })
            .count()
    };
    assert_eq!(changes(&h), 0);

    let real = app.backfill(&options, &NoProgress).await.expect("backfill");
    let done = real.writeback.expect("writeback totals");
    assert_eq!(done.written, planned.written, "{done:?}");
    assert_eq!(changes(&h) as u64, done.written);
    assert_eq!(primary_work(&h, &eid), Some(mail));

    let rerun = app.backfill(&options, &NoProgress).await.expect("rerun");
    assert_eq!(rerun.writeback.expect("totals").written, 0);
    assert_eq!(changes(&h) as u64, done.written);
}

#[tokio::test]
async fn writeback_settings_name_the_setting_and_the_fix() {
    let h = Harness::start(tenant(), &[]).await;
    let cases: [(&[(&str, &str)], &str); 3] = [
        (
            &[("ENRICH_WORKDAY_WRITEBACK", "mail")],
            "ENRICH_WORKDAY_WRITEBACK",
        ),
        (&[("ENRICH_WORKDAY_WWS_URL", "")], "ENRICH_WORKDAY_WWS_URL"),
        (
            &[("ENRICH_WORKDAY_WRITEBACK_FROM", "start")],
            "ENRICH_WORKDAY_WRITEBACK_FROM",
        ),
    ];
    for (extra, setting) in cases {
        let settings = settings(&h.sandbox, extra);
        let settings: Vec<(&str, &str)> = settings
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let env = env_for(&h.sandbox, h.state_dir.path(), &settings);
        let e = Config::from_env(&env).expect_err("invalid");
        assert!(e.problems.iter().any(|p| p.setting == setting), "{e}");
        assert!(!e.to_string().contains(WORKDAY_PASSWORD), "{e}");
    }
    // --writeback without writeback configured: refused with the setting to set.
    let app = App::from_parts(h.config.clone(), h.ctx.clone(), None);
    let options = BackfillOptions {
        writeback: true,
        ..BackfillOptions::default()
    };
    let e = app
        .backfill(&options, &NoProgress)
        .await
        .expect_err("refused");
    assert_eq!(e.setting(), Some("ENRICH_WORKDAY_WRITEBACK"));
}

#[tokio::test]
async fn no_password_personal_email_or_token_reaches_the_logs_or_answers() {
    let logs = LogBuffer::default();
    let _guard = tracing::subscriber::set_default(logs.subscriber("debug"));
    let h = harness(&[("ENRICH_WORKDAY_WRITEBACK", "email,username")]).await;
    let (id, eid, _) = joiner(&h, 13);
    let answer = callout_while_workday_is_down(&h, &id, 13).await;
    run_watch(&h.ctx, WATCH_BUDGET).await.expect("watch");
    assert_eq!(operations(&h, CHANGE_CONTACT, &eid), vec![200]);
    let text = format!("{}{}", logs.text(), answer.body);
    for secret in [
        WORKDAY_PASSWORD,
        "private.hire13@mail.example",
        "other.hire13@mail.example",
    ] {
        assert!(!text.contains(secret), "{secret} leaked: {text}");
    }
    assert!(!text.contains("PasswordText"), "{text}");
}

#[tokio::test]
async fn doctor_says_whether_workday_web_services_take_the_integration_user() {
    use entra_enrich::handlers::doctor::{workday_writeback_check, Verdict};
    let h = harness(&[]).await;
    let writeback = h.ctx.writeback.clone().expect("writeback");
    let check = workday_writeback_check(&writeback).await;
    assert_eq!(check.verdict, Verdict::Pass, "{check:?}");

    // The ISU's password was changed in Workday only.
    h.sandbox.set_workday_password("rotated-in-workday");
    let check = workday_writeback_check(&writeback).await;
    assert_eq!(check.verdict, Verdict::Fail, "{check:?}");
    assert!(
        check
            .fix
            .as_deref()
            .is_some_and(|f| f.contains("ENRICH_WORKDAY_USERNAME")),
        "{check:?}"
    );
    assert!(
        !format!("{check:?}").contains(WORKDAY_PASSWORD),
        "{check:?}"
    );
}
