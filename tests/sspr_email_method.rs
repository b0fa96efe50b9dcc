//! The SSPR "Authentication email" (`/authentication/emailMethods`), written beside `otherMails` with
//! `ENRICH_SSPR_EMAIL_TARGET`: once, never over an address the user registered, undone by rollback,
//! planned only in a dry run, once under concurrency. Each test asserts what the sandbox received and
//! holds.

mod support;

use std::collections::HashMap;

use entra_enrich::handlers::audit::AuditLog;
use entra_enrich::handlers::backfill::{run_backfill, BackfillOptions, NoProgress};
use entra_enrich::handlers::claim::Claims;
use entra_enrich::handlers::enrich::{enrich_user, UserRef, WhenBusy};
use entra_enrich::handlers::rollback::run_rollback;
use entra_enrich::handlers::RunId;
use entra_sandbox::{FaultAction, FaultRule, FaultTrigger, SandboxOptions};
use support::*;

const METHODS: &str = "/authentication/emailMethods";

/// A small tenant whose managed identity may also write authentication methods.
fn tenant(users: usize, seed: u64) -> SandboxOptions {
    let mut o = SandboxOptions {
        users,
        seed,
        ..SandboxOptions::default()
    };
    o.identity
        .managed_identity_roles
        .push("UserAuthenticationMethod.ReadWrite.All".into());
    o
}

/// Successful method writes (POST/PATCH/DELETE on emailMethods) per user id.
fn method_writes(h: &Harness) -> HashMap<String, Vec<String>> {
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    for r in h.sandbox.requests() {
        if r.method == "GET" || !r.path.contains(METHODS) || !(200..300).contains(&r.status) {
            continue;
        }
        let id = r
            .path
            .trim_start_matches("/v1.0/users/")
            .split('/')
            .next()
            .unwrap_or_default()
            .to_string();
        out.entry(id).or_default().push(r.method.clone());
    }
    out
}

fn method_reads(h: &Harness) -> usize {
    h.sandbox
        .requests()
        .iter()
        .filter(|r| r.method == "GET" && r.path.contains(METHODS))
        .count()
}

#[tokio::test]
async fn with_both_a_backfill_writes_other_mails_and_the_method_once_and_a_second_run_writes_neither(
) {
    let h = Harness::start(tenant(60, 5), &[("ENRICH_SSPR_EMAIL_TARGET", "both")]).await;
    let targets = users_to_enrich(&h, 60);
    assert!(targets.len() >= 10, "the tenant has users to enrich");

    let first = run_backfill(&h.ctx, &BackfillOptions::default(), &NoProgress)
        .await
        .expect("backfill");
    let patched = successful_patches_per_user(&h.sandbox);
    let methods = method_writes(&h);
    for id in &targets {
        let user = h.sandbox.user(id).expect("user");
        let personal = personal_email(&h.before[id]).expect("personal email");
        assert_eq!(patched.get(id), Some(&1), "one otherMails PATCH for {id}");
        assert_eq!(
            methods.get(id).map(Vec::as_slice),
            Some(&["POST".to_string()][..]),
            "one method write for {id}"
        );
        assert_eq!(
            h.sandbox.email_method(id).as_deref(),
            Some(personal.as_str())
        );
        assert_eq!(user["otherMails"], serde_json::json!([personal]));
    }
    // Everyone else who got a method passed the same rules: hybrid, one employeeId, a valid
    // personal email, and holds exactly that address.
    let dups = duplicate_employee_ids(&h.before);
    for id in methods.keys() {
        let before = &h.before[id];
        let email = personal_email(before).expect("a personal email");
        let eid = before["employeeId"]
            .as_str()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        assert!(
            is_hybrid(before) && !eid.is_empty() && !dups.contains(&eid),
            "{id}"
        );
        assert!(entra_core::AlternateEmail::parse(&email).is_ok(), "{id}");
        assert_eq!(
            h.sandbox.email_method(id).as_deref(),
            Some(email.trim()),
            "{id}"
        );
    }
    let records = entra_enrich::handlers::audit::read_run(h.ctx.state.as_ref(), &first.run_id)
        .await
        .expect("audit");
    let method_lines = records
        .iter()
        .filter(|r| r.property == "authenticationEmail")
        .count();
    assert_eq!(
        method_lines,
        methods.len(),
        "one audit line per method write"
    );

    h.sandbox.reset_requests();
    let second = run_backfill(
        &h.ctx,
        &BackfillOptions {
            fresh: true,
            ..BackfillOptions::default()
        },
        &NoProgress,
    )
    .await
    .expect("second backfill");
    assert_eq!(second.writes, 0, "{:?}", second.outcomes);
    assert!(successful_patches_per_user(&h.sandbox).is_empty());
    assert!(method_writes(&h).is_empty());
    assert_eq!(method_reads(&h), 0, "the markers spare every read");
}

#[tokio::test]
async fn a_user_registered_authentication_email_is_left_alone_and_reported() {
    let h = Harness::start(tenant(40, 6), &[("ENRICH_SSPR_EMAIL_TARGET", "both")]).await;
    let user = hybrid_user_with_valid_email(&h);
    h.sandbox
        .set_email_method(&user, Some("own.choice@private.example"));

    let summary = run_backfill(&h.ctx, &BackfillOptions::default(), &NoProgress)
        .await
        .expect("backfill");
    assert_eq!(
        h.sandbox.email_method(&user).as_deref(),
        Some("own.choice@private.example")
    );
    assert!(!method_writes(&h).contains_key(&user));
    // otherMails is still written; the method is reported with why and how to change that.
    assert_eq!(successful_patches_per_user(&h.sandbox).get(&user), Some(&1));
    let row = summary
        .report
        .iter()
        .find(|r| r.user_id == user)
        .expect("the user is in the report");
    assert_eq!(row.outcome, "UpdatedWithWarnings");
    assert!(row.detail.contains("authenticationEmail"), "{}", row.detail);
    assert!(
        row.detail.contains("ENRICH_SSPR_OVERWRITE_REGISTERED"),
        "{}",
        row.detail
    );
    assert!(
        !row.detail.contains("own.choice"),
        "no address in the detail: {}",
        row.detail
    );
}

#[tokio::test]
async fn rollback_restores_the_previous_method_address_and_removes_a_created_one() {
    let h = Harness::start(
        tenant(40, 7),
        &[
            ("ENRICH_SSPR_EMAIL_TARGET", "authenticationMethod"),
            ("ENRICH_SSPR_OVERWRITE_REGISTERED", "true"),
        ],
    )
    .await;
    let users = users_to_enrich(&h, 2);
    let (replaced, created) = (&users[0], &users[1]);
    h.sandbox
        .set_email_method(replaced, Some("previous@private.example"));

    let summary = run_backfill(&h.ctx, &BackfillOptions::default(), &NoProgress)
        .await
        .expect("backfill");
    // authenticationMethod only: otherMails is not written (usageLocation still is).
    assert!(patches(&h.sandbox)
        .iter()
        .all(|(_, body, _)| body.get("otherMails").is_none()));
    let personal = |id: &String| personal_email(&h.before[id]).expect("personal email");
    assert_eq!(h.sandbox.email_method(replaced), Some(personal(replaced)));
    assert_eq!(h.sandbox.email_method(created), Some(personal(created)));

    let rb = run_rollback(&h.ctx, &summary.run_id)
        .await
        .expect("rollback");
    assert_eq!(
        h.sandbox.email_method(replaced).as_deref(),
        Some("previous@private.example")
    );
    assert_eq!(h.sandbox.email_method(created), None);
    let line = |id: &String| rb.lines.iter().find(|l| &l.user_id == id).expect("line");
    assert_eq!(line(replaced).result, "restored");
    assert_eq!(line(replaced).properties, vec!["authenticationEmail"]);
    assert_eq!(line(created).result, "restored");

    // The rollback forgot our marker: enriching the user again writes its method again (a
    // single-user enrichment reads after claiming, so the rollback's fresh release is no matter).
    let run = RunId::new();
    let audit = AuditLog::new(h.ctx.state.clone(), run.clone(), "enrich");
    let claims = Claims::new(h.ctx.state.clone(), "enrich", run.as_str());
    let target = UserRef::Id(created.clone());
    let again = enrich_user(&h.ctx, &audit, &claims, &target, WhenBusy::Leave)
        .await
        .expect("enrich");
    assert_eq!(
        h.sandbox.email_method(created),
        Some(personal(created)),
        "{again:?}"
    );
}

#[tokio::test]
async fn a_rollback_refuses_a_method_changed_since_the_run() {
    let h = Harness::start(tenant(30, 8), &[("ENRICH_SSPR_EMAIL_TARGET", "both")]).await;
    let user = hybrid_user_with_valid_email(&h);
    let summary = run_backfill(&h.ctx, &BackfillOptions::default(), &NoProgress)
        .await
        .expect("backfill");
    h.sandbox
        .set_email_method(&user, Some("changed.later@private.example"));
    let rb = run_rollback(&h.ctx, &summary.run_id)
        .await
        .expect("rollback");
    let line = rb.lines.iter().find(|l| l.user_id == user).expect("line");
    assert_eq!(line.result, "refused", "{line:?}");
    assert_eq!(
        h.sandbox.email_method(&user).as_deref(),
        Some("changed.later@private.example")
    );
}

#[tokio::test]
async fn a_dry_run_reads_the_method_and_writes_nothing() {
    let h = Harness::start(
        tenant(30, 9),
        &[
            ("ENRICH_SSPR_EMAIL_TARGET", "both"),
            ("ENRICH_DRY_RUN", "true"),
        ],
    )
    .await;
    let user = hybrid_user_with_valid_email(&h);
    let summary = run_backfill(&h.ctx, &BackfillOptions::default(), &NoProgress)
        .await
        .expect("backfill");
    assert!(summary.dry_run);
    assert!(method_writes(&h).is_empty());
    assert!(successful_patches_per_user(&h.sandbox).is_empty());
    assert!(method_reads(&h) > 0, "a dry run says what it would do");
    assert_eq!(h.sandbox.email_method(&user), None);
}

#[tokio::test]
async fn two_handlers_on_one_new_hire_write_its_method_once() {
    let h = Harness::start(tenant(20, 10), &[("ENRICH_SSPR_EMAIL_TARGET", "both")]).await;
    let user = h.sandbox.upsert_user(new_hire(1)).expect("new hire");
    // Every Graph call is slow enough for both handlers to read the user before either writes.
    h.sandbox.set_faults(vec![FaultRule::new(
        "* /v1.0/**",
        FaultTrigger::EveryNth(1),
        FaultAction::Latency(std::time::Duration::from_millis(40)),
    )]);
    let run = |handler: &'static str| {
        let ctx = h.context();
        let user = user.clone();
        async move {
            let run = RunId::new();
            let audit = AuditLog::new(ctx.state.clone(), run.clone(), handler);
            let claims = Claims::new(ctx.state.clone(), handler, run.as_str());
            let wait = WhenBusy::Wait(std::time::Duration::from_secs(10));
            enrich_user(&ctx, &audit, &claims, &UserRef::Id(user), wait).await
        }
    };
    let (a, b) = tokio::join!(run("lcw-joiner"), run("new-hire-watch"));
    assert!(a.is_ok() && b.is_ok(), "{a:?} {b:?}");
    assert_eq!(
        method_writes(&h).get(&user).map(Vec::len),
        Some(1),
        "{:?}",
        method_writes(&h)
    );
    assert_eq!(successful_patches_per_user(&h.sandbox).get(&user), Some(&1));
    assert_eq!(
        h.sandbox.email_method(&user).as_deref(),
        Some("private.hire1@mail.example")
    );
}

#[tokio::test]
async fn a_privileged_user_is_denied_with_the_fix_and_nothing_else_breaks() {
    let h = Harness::start(
        tenant(30, 12),
        &[("ENRICH_SSPR_EMAIL_TARGET", "authenticationMethod")],
    )
    .await;
    let user = hybrid_user_with_valid_email(&h);
    h.sandbox.set_privileged(&user, true);
    let run = RunId::new();
    let audit = AuditLog::new(h.ctx.state.clone(), run.clone(), "enrich");
    let claims = Claims::new(h.ctx.state.clone(), "enrich", run.as_str());
    let result = enrich_user(
        &h.ctx,
        &audit,
        &claims,
        &UserRef::Id(user.clone()),
        WhenBusy::Leave,
    )
    .await
    .expect("enrich");
    assert_eq!(h.sandbox.email_method(&user), None);
    let issue = result
        .issues
        .iter()
        .find(|i| i.field == "authenticationEmail")
        .expect("an authenticationEmail issue");
    assert!(
        issue
            .reason
            .contains("Privileged Authentication Administrator"),
        "{}",
        issue.reason
    );
    assert_eq!(result.report_code(), "UpdatedWithWarnings");
}
