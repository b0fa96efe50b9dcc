//! No personal email reaches a log line: not even before masking. Every entra-enrich crate logs at
//! TRACE into an unmasked buffer while a backfill, a rollback and a watch round run on a tenant full
//! of personal emails (valid, invalid and accented); then the buffer is searched for each of them.

mod support;

use entra_enrich::handlers::backfill::{run_backfill, BackfillOptions, NoProgress};
use entra_enrich::handlers::rollback::run_rollback;
use entra_enrich::handlers::watch::run_watch;
use entra_sandbox::SandboxOptions;
use serde_json::json;
use support::*;

#[tokio::test(flavor = "current_thread")]
async fn no_personal_email_appears_in_any_log_line() {
    let buffer = support::logs::LogBuffer::default();
    let subscriber = buffer.subscriber(
        "entra_enrich=trace,entra_graph=trace,entra_core=trace,entra_state=trace,entra_lcw=trace",
    );
    let _guard = tracing::subscriber::set_default(subscriber);

    let h = Harness::start(
        SandboxOptions {
            users: 400,
            seed: 13,
            ..SandboxOptions::default()
        },
        &[],
    )
    .await;
    let summary = run_backfill(&h.ctx, &BackfillOptions::default(), &NoProgress)
        .await
        .expect("backfill");
    run_rollback(&h.ctx, &summary.run_id)
        .await
        .expect("rollback");
    // new-hire-watch: take the cursor, then a new hire with a personal email appears.
    run_watch(&h.ctx, std::time::Duration::from_secs(30))
        .await
        .expect("watch init");
    h.sandbox
        .upsert_user(json!({
            "id": "7d1c3a52-0000-4000-8000-00000000abcd",
            "userPrincipalName": "new.hire@contoso.example",
            "displayName": "New Hire",
            "employeeId": "NH-0001",
            "onPremisesSyncEnabled": true,
            "otherMails": [],
            "onPremisesExtensionAttributes": {"extensionAttribute1": "new.hire.private@gmail.example"}
        }))
        .expect("new hire");
    let watch = run_watch(&h.ctx, std::time::Duration::from_secs(30))
        .await
        .expect("watch");
    assert_eq!(watch.writes, 1, "{watch:?}");

    let text = buffer.text();
    assert!(
        text.lines().count() > 20,
        "the crates did log: {} lines",
        text.lines().count()
    );
    let mut emails: Vec<String> = h.before.values().filter_map(personal_email).collect();
    emails.push("new.hire.private@gmail.example".into());
    assert!(emails.len() > 300);
    for email in &emails {
        let needle = email.trim();
        if needle.len() < 6 {
            continue;
        }
        assert!(
            !text.contains(needle),
            "a personal email reached a log line: {}",
            entra_core::pii::mask_email(needle)
        );
    }
}
