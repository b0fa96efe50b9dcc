//! Exactly once under concurrency and deadlines: the same event twice at the same moment, two
//! handlers on one user, several instances, a Graph that hangs. Each test drives the real handlers
//! against the sandbox tenant, with Graph answering slowly enough that the events truly overlap,
//! and asserts what the sandbox received: how many PATCHes per user, how many `resume` calls.

mod support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use entra_enrich::handlers::backfill::{run_backfill, BackfillOptions, NoProgress};
use entra_enrich::handlers::lcw_joiner::{handle_callout, JoinerRequest, JoinerResponse};
use entra_enrich::handlers::watch::{run_watch, MAX_RETRY_ATTEMPTS};
use entra_enrich::handlers::EnrichContext;
use entra_sandbox::{FaultAction, FaultRule, FaultTrigger, SandboxOptions};
use futures::StreamExt;
use serde_json::json;
use support::*;

fn tenant(users: usize, seed: u64) -> SandboxOptions {
    SandboxOptions {
        users,
        seed,
        ..SandboxOptions::default()
    }
}

/// Graph answers every read and write after `ms`: long enough for concurrent handlers to read the
/// same user before either writes (what broke before claims existed).
fn slow_graph(h: &Harness, ms: u64) {
    h.sandbox.set_faults(vec![FaultRule::new(
        "* /v1.0/**",
        FaultTrigger::EveryNth(1),
        FaultAction::Latency(Duration::from_millis(ms)),
    )]);
}

fn tpr_id(n: usize) -> String {
    format!("9e8d7c6b-5a4f-4e3d-8c1b-{n:012}")
}

fn callout(h: &Harness, subject: &str, tpr: &str) -> JoinerRequest {
    lcw_callout(&h.sandbox, subject, tpr)
}

fn header<'a>(r: &'a JoinerResponse, name: &str) -> Option<&'a str> {
    r.headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Sends every callout (16 at a time), then resends those answered 503, as the relay does, until all
/// are answered or `rounds` pass. Returns the final answer per task processing result.
async fn callouts_until_answered(
    ctx: &EnrichContext,
    h: &Harness,
    pairs: &[(String, String)],
    rounds: usize,
) -> HashMap<String, JoinerResponse> {
    let mut answers: HashMap<String, JoinerResponse> = HashMap::new();
    let mut pending: Vec<(String, String)> = pairs.to_vec();
    for _ in 0..rounds {
        if pending.is_empty() {
            break;
        }
        let batch = std::mem::take(&mut pending);
        let results: Vec<(String, String, JoinerResponse)> =
            futures::stream::iter(batch.into_iter().map(|(subject, tpr)| async move {
                let r = handle_callout(ctx, None, callout(h, &subject, &tpr)).await;
                (subject, tpr, r)
            }))
            .buffer_unordered(16)
            .collect()
            .await;
        for (subject, tpr, r) in results {
            if r.status == 503 {
                assert!(
                    header(&r, "Retry-After").is_some(),
                    "503 without Retry-After"
                );
                pending.push((subject, tpr));
            } else {
                answers.insert(tpr, r);
            }
        }
    }
    assert!(pending.is_empty(), "callouts never answered: {pending:?}");
    answers
}

/// A tenant whose watch has started ("from now"), then `hires` new hybrid users synced in.
async fn watched_tenant_with_new_hires(seed: u64, hires: usize) -> (Harness, Vec<String>) {
    let h = Harness::start(tenant(80, seed), &[]).await;
    run_watch(&h.ctx, Duration::from_secs(30))
        .await
        .expect("watch starts from now");
    let ids = (1..=hires)
        .map(|n| h.sandbox.upsert_user(new_hire(n)).expect("new hire"))
        .collect();
    (h, ids)
}

/// Leaves a claim on `user` as another handler (or a killed instance) would: taken, not released,
/// its lease ending `expires_in_ms` from now.
async fn plant_claim(h: &Harness, user: &str, handler: &str, expires_in_ms: i64) {
    let now_ms = (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64;
    let record = json!({
        "holder": format!("{handler}/elsewhere"), "handler": handler,
        "acquired": now_ms - 1_000, "expires": now_ms + expires_in_ms,
    });
    h.ctx
        .state
        .put(
            &format!("claims/users/{user}.json"),
            serde_json::to_vec(&record).expect("json").into(),
            entra_state::WriteCondition::Any,
        )
        .await
        .expect("claim left behind");
}

#[tokio::test]
async fn twenty_concurrent_copies_of_one_callout_patch_once_and_resume_once() {
    let h = Harness::start(tenant(120, 3), &[]).await;
    let subject = hybrid_user_with_valid_email(&h);
    let tpr = tpr_id(1);
    slow_graph(&h, 40);

    let copies = (0..20).map(|_| handle_callout(&h.ctx, None, callout(&h, &subject, &tpr)));
    let answers = futures::future::join_all(copies).await;

    let patched = successful_patches_per_user(&h.sandbox);
    assert_eq!(patched.get(&subject), Some(&1), "PATCHes: {patched:?}");
    assert_eq!(
        h.sandbox.resumes(WORKFLOW, TASK, &tpr).len(),
        1,
        "one resume"
    );
    let ok: Vec<&JoinerResponse> = answers.iter().filter(|a| a.status == 200).collect();
    let busy: Vec<&JoinerResponse> = answers.iter().filter(|a| a.status == 503).collect();
    assert_eq!(ok.len() + busy.len(), 20, "{answers:?}");
    assert!(!ok.is_empty());
    assert!(
        ok.iter()
            .filter(|a| a.body.get("replayed").is_none())
            .count()
            == 1,
        "exactly one copy did the work; the others were replays or 503"
    );
    for b in &busy {
        assert!(header(b, "Retry-After").is_some(), "{b:?}");
    }

    // The relay's retry, once the first copy is done, gets the recorded answer and writes nothing.
    h.sandbox.reset_requests();
    let retry = handle_callout(&h.ctx, None, callout(&h, &subject, &tpr)).await;
    assert_eq!(retry.status, 200, "{retry:?}");
    assert_eq!(retry.body["replayed"], true);
    assert_eq!(retry.body["resume"], "Completed");
    assert_eq!(graph_calls(&h.sandbox), 0);
    assert_eq!(h.sandbox.resumes(WORKFLOW, TASK, &tpr).len(), 1);
}

#[tokio::test]
async fn distinct_callouts_overlapping_on_the_same_users_write_each_user_once() {
    let h = Harness::start(tenant(300, 5), &[]).await;
    let users = users_to_enrich(&h, 30);
    assert_eq!(users.len(), 30);
    slow_graph(&h, 20);
    // Two joiner workflows (two task processing results) for every user, side by side.
    let pairs: Vec<(String, String)> = users
        .iter()
        .enumerate()
        .flat_map(|(i, u)| [(u.clone(), tpr_id(i)), (u.clone(), tpr_id(1_000 + i))])
        .collect();
    let answers = callouts_until_answered(&h.ctx, &h, &pairs, 20).await;

    let patched = successful_patches_per_user(&h.sandbox);
    for u in &users {
        assert_eq!(
            patched.get(u),
            Some(&1),
            "user {u} PATCHed {:?} times",
            patched.get(u)
        );
    }
    for (_, tpr) in &pairs {
        assert_eq!(
            h.sandbox.resumes(WORKFLOW, TASK, tpr).len(),
            1,
            "callout {tpr}"
        );
        assert_eq!(
            answers[tpr].body["resume"], "Completed",
            "{:?}",
            answers[tpr]
        );
    }
}

#[tokio::test]
async fn joiner_and_watch_on_the_same_new_hires_write_each_once() {
    let (h, hires) = watched_tenant_with_new_hires(9, 12).await;
    slow_graph(&h, 25);

    let pairs: Vec<(String, String)> = hires
        .iter()
        .enumerate()
        .map(|(i, id)| (id.clone(), tpr_id(i)))
        .collect();
    let watch_ctx = h.context();
    let (watch, answers) = tokio::join!(
        run_watch(&watch_ctx, Duration::from_secs(60)),
        callouts_until_answered(&h.ctx, &h, &pairs, 20),
    );
    let watch = watch.expect("watch round");

    let patched = successful_patches_per_user(&h.sandbox);
    for id in &hires {
        assert_eq!(patched.get(id), Some(&1), "new hire {id}: {patched:?}");
        let user = h.sandbox.user(id).expect("user");
        assert_eq!(user["usageLocation"], "DE");
    }
    for (_, tpr) in &pairs {
        assert_eq!(h.sandbox.resumes(WORKFLOW, TASK, tpr).len(), 1);
        assert_eq!(answers[tpr].body["resume"], "Completed");
    }
    // Whatever the watch did not write, it left to the joiner (and said so) or found already done.
    let left = watch.outcomes.get("ClaimedElsewhere");
    assert_eq!(left, watch.claims.left_to_others, "{watch:?}");
}

#[tokio::test]
async fn two_watch_instances_write_each_new_hire_once() {
    let (h, hires) = watched_tenant_with_new_hires(11, 16).await;
    slow_graph(&h, 25);

    let (a, b) = (h.context(), h.context());
    let (first, second) = tokio::join!(
        run_watch(&a, Duration::from_secs(60)),
        run_watch(&b, Duration::from_secs(60))
    );
    // One instance may lose the race for the cursor (and stop); neither may write a user twice.
    assert!(first.is_ok() || second.is_ok(), "{first:?} {second:?}");
    // A later tick finishes anything left, and our own writes come back as NoChangeRequired.
    run_watch(&h.ctx, Duration::from_secs(60))
        .await
        .expect("next tick");

    let patched = successful_patches_per_user(&h.sandbox);
    for id in &hires {
        assert_eq!(patched.get(id), Some(&1), "new hire {id}: {patched:?}");
    }
}

#[tokio::test]
async fn a_backfill_overlapping_joiners_writes_each_user_once() {
    let h = Harness::start(tenant(400, 13), &[]).await;
    let users = users_to_enrich(&h, 40);
    slow_graph(&h, 5);
    let pairs: Vec<(String, String)> = users
        .iter()
        .enumerate()
        .map(|(i, id)| (id.clone(), tpr_id(i)))
        .collect();
    let backfill_ctx = h.context();
    let options = BackfillOptions::default();
    let (summary, answers) = tokio::join!(
        run_backfill(&backfill_ctx, &options, &NoProgress),
        callouts_until_answered(&h.ctx, &h, &pairs, 20),
    );
    let summary = summary.expect("backfill");

    let patched = successful_patches_per_user(&h.sandbox);
    assert!(
        patched.values().all(|n| *n == 1),
        "a user was PATCHed twice: {:?}",
        patched.iter().filter(|(_, n)| **n > 1).collect::<Vec<_>>()
    );
    for (id, tpr) in &pairs {
        assert_eq!(patched.get(id), Some(&1), "user {id}");
        assert_eq!(answers[tpr].body["resume"], "Completed");
    }
    // The users the backfill left to a joiner are in its report, with the reason.
    let left: Vec<&str> = summary
        .report
        .iter()
        .filter(|r| r.outcome == "ClaimedElsewhere")
        .map(|r| r.user_id.as_str())
        .collect();
    assert_eq!(left.len() as u64, summary.outcomes.get("ClaimedElsewhere"));
    assert!(
        left.iter().all(|id| users.iter().any(|u| u == id)),
        "{left:?}"
    );
}

#[tokio::test]
async fn with_graph_hung_the_joiner_answers_503_within_its_deadline_and_does_not_resume() {
    let h = Harness::start(tenant(60, 17), &[("ENRICH_JOINER_DEADLINE_SECONDS", "2")]).await;
    let subject = hybrid_user_with_valid_email(&h);
    let tpr = tpr_id(7);
    // Graph stops answering a GET /users/{id} (it would answer after 5 minutes).
    h.sandbox.set_faults(vec![FaultRule::new(
        "GET /v1.0/users/*",
        FaultTrigger::EveryNth(1),
        FaultAction::Latency(Duration::from_secs(300)),
    )]);

    let started = Instant::now();
    let answer = handle_callout(&h.ctx, None, callout(&h, &subject, &tpr)).await;
    let took = started.elapsed();
    assert_eq!(answer.status, 503, "{answer:?}");
    assert!(header(&answer, "Retry-After").is_some());
    assert!(took < Duration::from_secs(10), "answered after {took:?}");
    let text = answer.body.to_string();
    assert!(!text.contains('@'), "no address in the answer: {text}");
    assert!(
        h.sandbox.resumes(WORKFLOW, TASK, &tpr).is_empty(),
        "resumed"
    );
    assert!(successful_patches_per_user(&h.sandbox).is_empty());

    // Graph recovers; the relay's retry is not blocked by the abandoned attempt's claims.
    h.sandbox.set_faults(Vec::new());
    let mut retry = handle_callout(&h.ctx, None, callout(&h, &subject, &tpr)).await;
    for _ in 0..20 {
        if retry.status != 503 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        retry = handle_callout(&h.ctx, None, callout(&h, &subject, &tpr)).await;
    }
    assert_eq!(retry.status, 200, "{retry:?}");
    assert_eq!(retry.body["resume"], "Completed");
    assert_eq!(h.sandbox.resumes(WORKFLOW, TASK, &tpr).len(), 1);
    assert_eq!(
        successful_patches_per_user(&h.sandbox).get(&subject),
        Some(&1)
    );
}

#[tokio::test]
async fn an_instance_killed_while_holding_a_claim_blocks_the_user_only_for_the_lease() {
    let h = Harness::start(tenant(60, 19), &[]).await;
    let subject = hybrid_user_with_valid_email(&h);
    // A killed instance's claim: taken, never released, its lease not yet over.
    plant_claim(&h, &subject, "new-hire-watch", 7_000).await;

    let tpr = tpr_id(9);
    // lcw-joiner waits a few seconds for the holder, then answers 503 (the lease still runs).
    let first = handle_callout(&h.ctx, None, callout(&h, &subject, &tpr)).await;
    assert_eq!(first.status, 503, "{first:?}");
    assert!(first.body["message"]
        .as_str()
        .is_some_and(|m| m.contains("new-hire-watch")));
    assert!(successful_patches_per_user(&h.sandbox).is_empty());

    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let retry = handle_callout(&h.ctx, None, callout(&h, &subject, &tpr)).await;
    assert_eq!(retry.status, 200, "{retry:?}");
    assert_eq!(retry.body["outcome"], "EntryExportUpdate");
    assert_eq!(
        successful_patches_per_user(&h.sandbox).get(&subject),
        Some(&1)
    );
}

#[tokio::test]
async fn with_graph_hung_a_timer_stops_within_its_budget_and_keeps_its_cursor() {
    let h = Harness::start(tenant(60, 23), &[]).await;
    run_watch(&h.ctx, Duration::from_secs(30))
        .await
        .expect("watch starts from now");
    let cursor = h
        .ctx
        .state
        .get(entra_enrich::handlers::watch::CURSOR_KEY)
        .await
        .expect("state")
        .expect("cursor saved");
    h.sandbox.upsert_user(new_hire(1)).expect("new hire");
    // Graph stops answering the delta query (it would answer after 5 minutes).
    h.sandbox.set_faults(vec![FaultRule::new(
        "GET /v1.0/users/delta",
        FaultTrigger::EveryNth(1),
        FaultAction::Latency(Duration::from_secs(300)),
    )]);

    let budget = Duration::from_secs(2);
    let started = Instant::now();
    let result = run_watch(&h.ctx, budget).await;
    let took = started.elapsed();
    let err = result.expect_err("a hung Graph ends the round with an error");
    assert!(err.is_transient(), "the next tick retries: {err}");
    assert!(
        took < budget + entra_enrich::handlers::watch::timer_grace(budget) + Duration::from_secs(2),
        "returned after {took:?}"
    );
    let after = h
        .ctx
        .state
        .get(entra_enrich::handlers::watch::CURSOR_KEY)
        .await
        .expect("state")
        .expect("cursor");
    assert_eq!(after.bytes, cursor.bytes, "the cursor stays where it was");

    // Graph recovers: the next tick enriches the hire.
    h.sandbox.set_faults(Vec::new());
    let next = run_watch(&h.ctx, Duration::from_secs(30))
        .await
        .expect("next tick");
    assert_eq!(next.writes, 1, "{next:?}");
}

#[tokio::test]
async fn a_rollback_leaves_a_user_another_handler_is_writing() {
    let h = Harness::start(tenant(120, 29), &[]).await;
    let summary = run_backfill(&h.ctx, &BackfillOptions::default(), &NoProgress)
        .await
        .expect("backfill");
    let written: Vec<String> = successful_patches_per_user(&h.sandbox)
        .into_keys()
        .collect();
    assert!(written.len() > 10);
    let held = written[0].clone();
    // lcw-joiner (say) holds the claim of one of the users right now.
    plant_claim(&h, &held, "lcw-joiner", 60_000).await;
    h.sandbox.reset_requests();

    let rollback = entra_enrich::handlers::rollback::run_rollback(&h.ctx, &summary.run_id)
        .await
        .expect("rollback");
    let line = rollback
        .lines
        .iter()
        .find(|l| l.user_id == held)
        .expect("a line for the held user");
    assert_eq!(line.result, "busy", "{line:?}");
    assert!(line
        .detail
        .as_deref()
        .is_some_and(|d| d.contains("lcw-joiner")));
    let patched = successful_patches_per_user(&h.sandbox);
    assert!(!patched.contains_key(&held), "the held user was written");
    // Every other user was rolled back as usual.
    let busy = rollback.lines.iter().filter(|l| l.result == "busy").count();
    assert_eq!(busy, 1);
    assert!(rollback.restored > 10);
    assert_eq!(patched.len(), rollback.restored);
}

#[tokio::test]
async fn a_new_hire_the_watch_left_to_a_killed_instance_is_enriched_once_its_lease_ends() {
    let (h, hires) = watched_tenant_with_new_hires(31, 3).await;
    // A killed instance (a watch cut off mid-page, a joiner frozen) still holds the first hire.
    plant_claim(&h, &hires[0], "new-hire-watch", 1_500).await;
    let first = run_watch(&h.ctx, Duration::from_secs(30))
        .await
        .expect("watch");
    assert_eq!(first.writes, 2, "{first:?}");
    assert_eq!(first.outcomes.get("ClaimedElsewhere"), 1, "{first:?}");

    // The delta has nothing new for that hire: only the watch's memory of it can bring it back.
    tokio::time::sleep(Duration::from_millis(2_000)).await;
    let next = run_watch(&h.ctx, Duration::from_secs(30))
        .await
        .expect("next tick");
    assert_eq!(next.writes, 1, "{next:?}");
    let user = h.sandbox.user(&hires[0]).expect("user");
    assert_eq!(user["otherMails"], json!(["private.hire1@mail.example"]));
    let patched = successful_patches_per_user(&h.sandbox);
    for id in &hires {
        assert_eq!(patched.get(id), Some(&1), "new hire {id}: {patched:?}");
    }
    // Once written, the hire is not carried further.
    let settled = run_watch(&h.ctx, Duration::from_secs(30))
        .await
        .expect("third tick");
    assert_eq!(settled.retried, 0, "{settled:?}");
}

#[tokio::test]
async fn a_new_hire_whose_write_failed_during_the_watch_is_written_by_the_next_tick() {
    let (h, hires) = watched_tenant_with_new_hires(37, 1).await;
    // Graph throttles every write attempt of this round, past the client's retries.
    h.sandbox.set_faults(vec![FaultRule::new(
        "PATCH /v1.0/users/*",
        FaultTrigger::FirstN(40),
        FaultAction::Status {
            status: 429,
            retry_after: Some(0.01),
        },
    )]);
    let first = run_watch(&h.ctx, Duration::from_secs(30))
        .await
        .expect("watch");
    assert_eq!(first.writes, 0, "{first:?}");
    assert_eq!(first.outcomes.get("Failed"), 1, "{first:?}");
    assert_eq!(first.retry_pending, 1, "{first:?}");

    h.sandbox.set_faults(Vec::new());
    let next = run_watch(&h.ctx, Duration::from_secs(30))
        .await
        .expect("next tick");
    assert_eq!(next.writes, 1, "{next:?}");
    assert_eq!(next.retry_pending, 0, "{next:?}");
    let user = h.sandbox.user(&hires[0]).expect("user");
    assert_eq!(user["otherMails"], json!(["private.hire1@mail.example"]));
    assert_eq!(
        successful_patches_per_user(&h.sandbox).get(&hires[0]),
        Some(&1)
    );
}

#[tokio::test]
async fn a_new_hire_never_settled_is_left_to_the_backfill_after_the_retry_limit() {
    let (h, hires) = watched_tenant_with_new_hires(41, 1).await;
    // Another handler holds the hire for the whole test: every tick finds it claimed.
    plant_claim(&h, &hires[0], "lcw-joiner", 600_000).await;
    let first = run_watch(&h.ctx, Duration::from_secs(30))
        .await
        .expect("watch");
    assert_eq!(first.retry_pending, 1, "{first:?}");
    for tick in 1..MAX_RETRY_ATTEMPTS {
        let s = run_watch(&h.ctx, Duration::from_secs(30))
            .await
            .expect("tick");
        assert_eq!((s.retried, s.retry_pending), (1, 1), "tick {tick}: {s:?}");
        assert_eq!(s.retry_abandoned, 0, "tick {tick}: {s:?}");
    }
    let last = run_watch(&h.ctx, Duration::from_secs(30))
        .await
        .expect("last tick");
    assert_eq!(last.retry_abandoned, 1, "{last:?}");
    assert_eq!(last.retry_pending, 0, "{last:?}");
    let after = run_watch(&h.ctx, Duration::from_secs(30))
        .await
        .expect("after");
    assert_eq!(after.retried, 0, "{after:?}");
    assert!(!successful_patches_per_user(&h.sandbox).contains_key(&hires[0]));
}

#[tokio::test]
async fn users_carried_for_retry_never_keep_the_delta_from_moving() {
    let (h, hires) = watched_tenant_with_new_hires(43, 3).await;
    for id in &hires {
        plant_claim(&h, id, "lcw-joiner", 600_000).await;
    }
    let first = run_watch(&h.ctx, Duration::from_secs(30))
        .await
        .expect("watch");
    assert_eq!(first.retry_pending, 3, "{first:?}");
    // A new hire synced meanwhile, and a tick with no time to spare: the delta comes first, the
    // carried users wait for a tick with time left.
    let late = h.sandbox.upsert_user(new_hire(4)).expect("new hire");
    let tick = run_watch(&h.ctx, Duration::ZERO).await.expect("tick");
    assert_eq!(tick.retried, 0, "{tick:?}");
    assert_eq!(tick.retry_pending, 3, "{tick:?}");
    assert!(tick.round_complete, "{tick:?}");
    assert_eq!(tick.writes, 1, "{tick:?}");
    assert_eq!(successful_patches_per_user(&h.sandbox).get(&late), Some(&1));
    // With time to spare they are tried again, and still counted against the retry limit.
    let next = run_watch(&h.ctx, Duration::from_secs(30))
        .await
        .expect("next");
    assert_eq!((next.retried, next.retry_pending), (3, 3), "{next:?}");
}
