//! new-hire-watch against partial delta records, as Graph documents them: "updated instances are
//! represented by their id with at least the properties that have been updated"
//! (<https://learn.microsoft.com/graph/delta-query-overview>). The sandbox answers so by default.
//!
//! What went wrong for a user: the account appeared without a personal email; a later Cloud Sync
//! cycle set `extensionAttribute1`; that record came back as the id plus
//! `onPremisesExtensionAttributes`, looked out of scope, and the hire was never enriched by the watch.

mod support;

use std::time::Duration;

use entra_enrich::handlers::watch::run_watch;
use entra_sandbox::SandboxOptions;
use serde_json::{json, Value};
use support::*;

const BUDGET: Duration = Duration::from_secs(30);

fn tenant(full_delta_records: bool) -> SandboxOptions {
    SandboxOptions {
        users: 20,
        seed: 5,
        full_delta_records,
        ..SandboxOptions::default()
    }
}

/// Cloud Sync creates hire `n` without a personal email yet. Returns its id and the email HR has.
fn hire_without_email(h: &Harness, n: usize) -> (String, String) {
    let mut hire = new_hire(n);
    let email = hire["onPremisesExtensionAttributes"]["extensionAttribute1"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    hire["onPremisesExtensionAttributes"]["extensionAttribute1"] = Value::Null;
    (h.sandbox.upsert_user(hire).expect("hire"), email)
}

/// The next Cloud Sync cycle sets the personal email: only `onPremisesExtensionAttributes` changes.
fn sync_email(h: &Harness, id: &str, email: &str) {
    let mut user = h.sandbox.user(id).expect("user");
    user["onPremisesExtensionAttributes"]["extensionAttribute1"] = json!(email);
    h.sandbox.upsert_user(user).expect("sync");
}

/// Successful PATCHes of `id` that set `otherMails`.
fn other_mails_writes(h: &Harness, id: &str) -> usize {
    patches(&h.sandbox)
        .into_iter()
        .filter(|(user, body, status)| {
            user == id && (200..300).contains(status) && body.get("otherMails").is_some()
        })
        .count()
}

#[tokio::test]
async fn a_hire_whose_personal_email_arrives_a_sync_later_is_enriched_by_the_next_tick_once() {
    let h = Harness::start(tenant(false), &[]).await;
    run_watch(&h.ctx, BUDGET).await.expect("watch init");
    let (id, email) = hire_without_email(&h, 1);
    let first = run_watch(&h.ctx, BUDGET).await.expect("watch");
    assert!(first.users_in_scope >= 1, "{first:?}");
    assert_eq!(other_mails_writes(&h, &id), 0);

    sync_email(&h, &id, &email);
    let second = run_watch(&h.ctx, BUDGET).await.expect("watch");
    // The record was partial (the sandbox answers as Graph documents), and was read whole.
    assert!(second.read_whole >= 1, "{second:?}");
    assert_eq!(other_mails_writes(&h, &id), 1, "{second:?}");
    let user = h.sandbox.user(&id).expect("user");
    assert_eq!(user["otherMails"], json!([email]));
    // Read 20 to a $batch, not one request each.
    assert!(h
        .sandbox
        .requests()
        .iter()
        .any(|r| r.batch_item && r.method == "GET" && r.path.ends_with(&id)));

    // Our own PATCH comes back as an otherMails-only record: read whole, unchanged, not written.
    let third = run_watch(&h.ctx, BUDGET).await.expect("watch");
    assert!(third.read_whole >= 1, "{third:?}");
    assert_eq!(third.writes, 0, "{third:?}");
    assert_eq!(other_mails_writes(&h, &id), 1);
}

#[tokio::test]
async fn unrelated_changes_cause_no_write() {
    let h = Harness::start(tenant(false), &[]).await;
    run_watch(&h.ctx, BUDGET).await.expect("watch init");
    let id = h.sandbox.upsert_user(new_hire(2)).expect("hire");
    run_watch(&h.ctx, BUDGET).await.expect("watch");
    assert_eq!(other_mails_writes(&h, &id), 1);
    run_watch(&h.ctx, BUDGET)
        .await
        .expect("watch: our own PATCH comes back");
    let writes_before = patches(&h.sandbox).len();

    // A department (not selected) and a display name change; then a selected property that does
    // not change the plan (mail).
    let mut user = h.sandbox.user(&id).expect("user");
    user["department"] = json!("Finance");
    user["displayName"] = json!("New Hire Two");
    h.sandbox.upsert_user(user.clone()).expect("department");
    let quiet = run_watch(&h.ctx, BUDGET).await.expect("watch");
    assert_eq!(quiet.writes, 0, "{quiet:?}");
    user["mail"] = json!("new.hire2@contoso.example");
    h.sandbox.upsert_user(user).expect("mail");
    let mail = run_watch(&h.ctx, BUDGET).await.expect("watch");
    assert_eq!(mail.writes, 0, "{mail:?}");
    assert!(mail.read_whole >= 1, "{mail:?}");
    assert_eq!(patches(&h.sandbox).len(), writes_before);
}

#[tokio::test]
async fn whole_records_need_no_read() {
    let h = Harness::start(tenant(true), &[]).await;
    run_watch(&h.ctx, BUDGET).await.expect("watch init");
    let (id, email) = hire_without_email(&h, 3);
    run_watch(&h.ctx, BUDGET).await.expect("watch");
    sync_email(&h, &id, &email);
    let round = run_watch(&h.ctx, BUDGET).await.expect("watch");
    assert_eq!(round.read_whole, 0, "{round:?}");
    assert_eq!(other_mails_writes(&h, &id), 1);
}
