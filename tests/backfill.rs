//! The engine's safety rules and the backfill's guarantees, proven against the sandbox tenant: what
//! the sandbox received, and what the tenant holds afterwards.

mod support;

use std::collections::{HashMap, HashSet};

use entra_core::{AlternateEmail, CountryCode};
use entra_enrich::handlers::backfill::{run_backfill, BackfillOptions, NoProgress};
use entra_enrich::handlers::rollback::run_rollback;
use entra_sandbox::{FaultAction, FaultRule, FaultTrigger, SandboxOptions};
use serde_json::Value;
use support::*;

fn tenant(users: usize, seed: u64) -> SandboxOptions {
    SandboxOptions {
        users,
        seed,
        ..SandboxOptions::default()
    }
}

#[tokio::test]
async fn backfill_writes_only_allowed_valid_values_to_in_scope_users_and_reports_the_rest() {
    let h = Harness::start(tenant(600, 7), &[]).await;
    let summary = run_backfill(&h.ctx, &BackfillOptions::default(), &NoProgress)
        .await
        .expect("backfill");
    assert!(summary.complete);
    assert!(
        summary.writes > 100,
        "a 600-user tenant needs writes: {summary:?}"
    );

    // Never creates, never deletes.
    let c = h.sandbox.counters();
    assert_eq!((c.creates, c.deletes), (0, 0));
    for r in h.sandbox.requests() {
        let users_root = r.path.trim_end_matches('/') == "/v1.0/users";
        assert!(!(r.method == "POST" && users_root), "POST /users sent");
        assert!(r.method != "DELETE", "DELETE sent: {}", r.path);
    }

    // Every PATCH body holds only allow-listed properties, each with a valid value.
    let sent = patches(&h.sandbox);
    assert!(!sent.is_empty());
    for (_, body, _) in &sent {
        let obj = body.as_object().expect("PATCH body is an object");
        assert!(!obj.is_empty());
        for (k, v) in obj {
            match k.as_str() {
                "otherMails" => {
                    for m in v.as_array().expect("array") {
                        AlternateEmail::parse(m.as_str().expect("string"))
                            .expect("valid email written");
                    }
                }
                "usageLocation" => {
                    CountryCode::parse(v.as_str().expect("string")).expect("valid country written");
                }
                other => panic!("PATCH wrote a property outside the allow-list: {other}"),
            }
        }
    }

    let dups = duplicate_employee_ids(&h.before);
    let admins: HashSet<String> = h.sandbox.privileged_user_ids().into_iter().collect();
    let reported: HashMap<&str, &str> = summary
        .report
        .iter()
        .map(|r| (r.user_id.as_str(), r.outcome.as_str()))
        .collect();
    let mut seen = (0, 0, 0, 0, 0);
    for (id, before) in &h.before {
        let after = h.sandbox.user(id).expect("user still exists");
        let eid = before["employeeId"]
            .as_str()
            .map(|e| e.trim().to_ascii_lowercase());
        if !is_hybrid(before) {
            seen.0 += 1;
            assert_eq!(
                written_fields(before),
                written_fields(&after),
                "cloud-only user {id} touched"
            );
            assert_eq!(
                reported.get(id.as_str()),
                Some(&"EntrySynchronizationSkipped")
            );
        } else if eid.as_ref().is_some_and(|e| dups.contains(e)) {
            seen.1 += 1;
            assert_eq!(
                written_fields(before),
                written_fields(&after),
                "duplicate employeeId {id} touched"
            );
            assert_eq!(reported.get(id.as_str()), Some(&"DuplicateTargetEntries"));
        } else if eid.as_ref().is_none_or(|e| e.is_empty()) {
            // No employeeId: never written, under the directory source too (ImportSkipped).
            seen.4 += 1;
            assert_eq!(
                written_fields(before),
                written_fields(&after),
                "user {id} without employeeId touched"
            );
            assert_eq!(
                reported.get(id.as_str()),
                Some(&"ImportSkipped"),
                "user {id}"
            );
        } else if admins.contains(id) {
            seen.2 += 1;
            assert_eq!(
                before["otherMails"], after["otherMails"],
                "admin {id} otherMails touched"
            );
            assert_eq!(
                reported.get(id.as_str()),
                Some(&"InsufficientRights"),
                "admin {id} not reported as denied"
            );
        } else if let Some(email) = personal_email(before) {
            if AlternateEmail::parse(&email).is_err() {
                seen.3 += 1;
                assert_eq!(
                    before["otherMails"], after["otherMails"],
                    "invalid email written to {id}"
                );
                assert!(
                    reported.contains_key(id.as_str()),
                    "invalid value of {id} not reported"
                );
            } else {
                // A valid personal email is now the (only) alternate email, case-insensitively.
                let mails: Vec<String> = after["otherMails"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|v| v.as_str().map(str::to_ascii_lowercase))
                            .collect()
                    })
                    .unwrap_or_default();
                assert_eq!(mails, vec![email.trim().to_ascii_lowercase()], "user {id}");
            }
        }
    }
    assert!(
        seen.0 > 0 && seen.1 > 0 && seen.2 > 0 && seen.3 > 0 && seen.4 > 0,
        "the tenant mix covers every case: {seen:?}"
    );

    // No user was written twice.
    let mut per_user: HashMap<&str, usize> = HashMap::new();
    for (id, _, status) in &sent {
        if (200..300).contains(status) {
            *per_user.entry(id.as_str()).or_default() += 1;
        }
    }
    assert!(
        per_user.values().all(|n| *n == 1),
        "a user was written twice"
    );

    // A second backfill performs zero writes.
    h.sandbox.reset_requests();
    let again = run_backfill(&h.ctx, &BackfillOptions::default(), &NoProgress)
        .await
        .expect("second backfill");
    assert_eq!(again.writes, 0);
    let resent: Vec<(String, u16)> = patches(&h.sandbox)
        .into_iter()
        .map(|(id, _, s)| (id, s))
        .collect();
    assert!(
        resent.is_empty(),
        "the second backfill sent PATCHes: {resent:?}"
    );
}

#[tokio::test]
async fn dry_run_writes_nothing_and_reports_what_it_would_do() {
    let h = Harness::start(tenant(200, 11), &[("ENRICH_DRY_RUN", "true")]).await;
    let summary = run_backfill(&h.ctx, &BackfillOptions::default(), &NoProgress)
        .await
        .expect("dry run");
    assert!(summary.dry_run);
    assert_eq!(summary.writes, 0);
    assert!(
        summary.outcomes.get("EntryExportUpdate") > 0,
        "{:?}",
        summary.outcomes
    );
    assert_eq!(h.sandbox.counters().patches, 0);
    assert_eq!(snapshot(&h.sandbox), h.before);
}

#[tokio::test]
async fn a_429_and_5xx_storm_loses_no_write_and_duplicates_none() {
    let options = SandboxOptions {
        // Quota windows 300x shorter: 3,000 writes per 0.5 s, so the client (unthrottled here) hits it.
        time_scale: 300.0,
        faults: vec![
            FaultRule::new(
                "PATCH /v1.0/users/*",
                FaultTrigger::Probability(0.25),
                FaultAction::Status {
                    status: 429,
                    retry_after: Some(0.02),
                },
            ),
            FaultRule::new(
                "POST /v1.0/$batch",
                FaultTrigger::EveryNth(4),
                FaultAction::Status {
                    status: 503,
                    retry_after: None,
                },
            ),
        ],
        ..tenant(800, 21)
    };
    let h = Harness::start(options, &[]).await;
    let summary = run_backfill(&h.ctx, &BackfillOptions::default(), &NoProgress)
        .await
        .expect("backfill under a storm");
    let c = h.sandbox.counters();
    assert!(c.throttled > 20, "the storm must throttle: {c:?}");
    let failed = summary.outcomes.get("Failed");
    assert_eq!(
        failed, 0,
        "writes lost to the storm: {:?}",
        summary.outcomes
    );

    // No user got two successful PATCHes.
    let mut per_user: HashMap<String, usize> = HashMap::new();
    for (id, _, status) in patches(&h.sandbox) {
        if (200..300).contains(&status) {
            *per_user.entry(id).or_default() += 1;
        }
    }
    assert_eq!(per_user.len() as u64, summary.writes);
    assert!(per_user.values().all(|n| *n == 1), "a write was duplicated");

    // Nothing was lost: with the faults gone, a second run has nothing left to write.
    h.sandbox.set_faults(Vec::new());
    let again = run_backfill(&h.ctx, &BackfillOptions::default(), &NoProgress)
        .await
        .expect("second backfill");
    assert_eq!(again.writes, 0, "{:?}", again.outcomes);
}

#[tokio::test]
async fn rollback_restores_exactly_the_before_values_and_refuses_users_changed_since() {
    let h = Harness::start(tenant(300, 5), &[]).await;
    let summary = run_backfill(&h.ctx, &BackfillOptions::default(), &NoProgress)
        .await
        .expect("backfill");
    assert!(summary.writes > 0);
    let after_backfill = snapshot(&h.sandbox);

    // Someone changes one written user after the run: rollback must not overwrite that.
    let changed = after_backfill
        .iter()
        .find(|(id, u)| u["otherMails"] != h.before[*id]["otherMails"])
        .map(|(id, _)| id.clone())
        .expect("a written user");
    h.sandbox
        .set_user_property(
            &changed,
            "otherMails",
            Value::from(vec!["helpdesk.set@example.org"]),
        )
        .expect("set property");

    let rb = run_rollback(&h.ctx, &summary.run_id)
        .await
        .expect("rollback");
    let mut results: HashMap<&str, usize> = HashMap::new();
    for l in &rb.lines {
        *results.entry(l.result).or_default() += 1;
    }
    let refusals: Vec<_> = rb
        .lines
        .iter()
        .filter(|l| l.result != "restored")
        .take(3)
        .collect();
    assert_eq!(rb.refused, 1, "{results:?} {refusals:?}");
    assert_eq!(
        (rb.restored + results.get("partly-restored").copied().unwrap_or(0)) as u64 + 1,
        summary.writes,
        "{results:?} {refusals:?}"
    );
    for (id, before) in &h.before {
        let now = h.sandbox.user(id).expect("user");
        if *id == changed {
            assert_eq!(
                now["otherMails"],
                Value::from(vec!["helpdesk.set@example.org"])
            );
        } else {
            assert_eq!(
                now["otherMails"], before["otherMails"],
                "otherMails of {id} not restored exactly"
            );
            // usageLocation is not nullable in Graph: a value the run set where there was none stays.
            if !before["usageLocation"].is_null() {
                assert_eq!(
                    now["usageLocation"], before["usageLocation"],
                    "usageLocation of {id} not restored"
                );
            }
        }
    }
}

#[tokio::test]
async fn rollback_dry_run_writes_nothing() {
    let h = Harness::start(tenant(120, 3), &[]).await;
    let summary = run_backfill(&h.ctx, &BackfillOptions::default(), &NoProgress)
        .await
        .expect("backfill");
    let mut ctx = h.context();
    ctx.dry_run = true;
    h.sandbox.reset_requests();
    let rb = run_rollback(&ctx, &summary.run_id)
        .await
        .expect("rollback dry run");
    assert!(rb.lines.iter().any(|l| l.result == "would-restore"));
    assert!(
        rb.lines
            .iter()
            .all(|l| l.result == "would-restore" || l.result == "partly-restored"),
        "{rb:?}"
    );
    assert!(patches(&h.sandbox).is_empty());
}

#[tokio::test]
async fn an_interrupted_run_resumes_with_the_same_run_id_and_writes_each_user_once() {
    let h = Harness::start(tenant(400, 9), &[]).await;
    // The first invocation writes 50 users, then stops (a timer out of time, or a canary).
    let first = run_backfill(
        &h.ctx,
        &BackfillOptions {
            limit: Some(50),
            ..BackfillOptions::default()
        },
        &NoProgress,
    )
    .await
    .expect("first part");
    assert!(!first.complete);
    assert!(first.deferred > 0);
    // At most 50 planned writes were attempted; a privileged admin among them is denied, not written.
    assert!(first.writes > 0 && first.writes <= 50, "{first:?}");
    let second = run_backfill(&h.context(), &BackfillOptions::default(), &NoProgress)
        .await
        .expect("resumed");
    assert!(second.resumed);
    assert_eq!(second.run_id, first.run_id);
    assert!(second.complete);
    let mut per_user: HashMap<String, usize> = HashMap::new();
    for (id, _, status) in patches(&h.sandbox) {
        if (200..300).contains(&status) {
            *per_user.entry(id).or_default() += 1;
        }
    }
    assert!(
        per_user.values().all(|n| *n == 1),
        "a user was written twice across the two parts"
    );
    assert_eq!(per_user.len() as u64, first.writes + second.writes);
}
