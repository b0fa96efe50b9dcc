//! The Workday Web Services client against the sandbox's Human_Resources service: a worker's work
//! email and username read, written, and read back; faults turned into clear errors with no address.

use std::sync::Arc;
use std::time::Duration;

use entra_sandbox::workday::{WORKDAY_PASSWORD, WORKDAY_USERNAME};
use entra_sandbox::{FaultAction, FaultRule, FaultTrigger, Sandbox, SandboxOptions};
use entra_workday::{Secret, WorkdayAuth, WorkdayErrorKind, WwsClient};

async fn tenant() -> Sandbox {
    Sandbox::start(SandboxOptions {
        users: 40,
        seed: 5,
        ..SandboxOptions::default()
    })
    .await
    .expect("sandbox")
}

fn client(sb: &Sandbox, password: &str) -> WwsClient {
    let auth = WorkdayAuth::basic(
        WORKDAY_USERNAME,
        Secret::plain(password, "ENRICH_WORKDAY_PASSWORD"),
    );
    WwsClient::new(
        &sb.wws_url(),
        Arc::new(auth),
        reqwest::Client::new(),
        Duration::from_secs(5),
    )
    .expect("client")
}

/// A worker of the seeded tenant with a HOME address.
fn worker_id(sb: &Sandbox) -> String {
    sb.workday_rows()
        .into_iter()
        .find_map(|r| {
            let id = r["Employee_ID"].as_str()?.to_string();
            let w = sb.worker(&id)?;
            let has_home = w["emails"].as_array()?.iter().any(|e| e["usage"] == "HOME");
            has_home.then_some(id)
        })
        .expect("a worker with a HOME address")
}

#[tokio::test]
async fn the_work_email_and_username_are_written_and_read_back_and_home_stays() {
    let sb = tenant().await;
    let wws = client(&sb, WORKDAY_PASSWORD);
    let id = worker_id(&sb);
    let before = wws.worker(&id).await.expect("Get_Workers");
    assert_eq!(before.employee_id, id);
    let homes: Vec<_> = before
        .emails
        .iter()
        .filter(|e| e.usage == "HOME")
        .cloned()
        .collect();
    assert!(!homes.is_empty());

    wws.set_work_email(&id, "ada.lovelace@contoso.example", "2026-12-03")
        .await
        .expect("Change_Work_Contact_Information");
    wws.set_user_name(&id, "ada.lovelace@contoso.example")
        .await
        .expect("Workday_Account_for_Worker_Update");
    let after = wws.worker(&id).await.expect("Get_Workers");
    assert_eq!(after.work_email(), Some("ada.lovelace@contoso.example"));
    assert_eq!(
        after.user_name.as_deref(),
        Some("ada.lovelace@contoso.example")
    );
    for home in &homes {
        assert!(after.emails.contains(home), "a HOME address was lost");
    }
    // The sandbox's own view agrees.
    let seen = sb.worker(&id).expect("worker");
    assert_eq!(seen["userName"], "ada.lovelace@contoso.example");
}

#[tokio::test]
async fn faults_are_clear_errors_of_the_right_kind_without_the_address() {
    let sb = tenant().await;
    let id = worker_id(&sb);
    // A value Workday refuses: permanent, Workday's words, the address masked.
    let e = client(&sb, WORKDAY_PASSWORD)
        .set_work_email(&id, "not an@address example.org", "2026-12-03")
        .await
        .expect_err("refused");
    assert_eq!(e.kind, WorkdayErrorKind::Refused, "{e}");
    assert!(
        e.to_string().contains("Change_Work_Contact_Information"),
        "{e}"
    );
    assert!(!e.to_string().contains("an@address"), "{e}");
    // An unknown worker.
    let e = client(&sb, WORKDAY_PASSWORD)
        .worker("NO-SUCH-WORKER")
        .await
        .expect_err("unknown");
    assert_eq!(e.kind, WorkdayErrorKind::Refused, "{e}");
    // A wrong password: the settings to check, never the password.
    let e = client(&sb, "wrong-password")
        .worker(&id)
        .await
        .expect_err("refused");
    assert_eq!(e.kind, WorkdayErrorKind::Auth, "{e}");
    assert!(e.to_string().contains("ENRICH_WORKDAY_USERNAME"), "{e}");
    assert!(!e.to_string().contains("wrong-password"), "{e}");
    // A 503 without a fault: transient.
    sb.set_faults(vec![FaultRule::new(
        "POST /ccx/service/*/Human_Resources/*",
        FaultTrigger::EveryNth(1),
        FaultAction::Status {
            status: 503,
            retry_after: None,
        },
    )]);
    let e = client(&sb, WORKDAY_PASSWORD)
        .worker(&id)
        .await
        .expect_err("down");
    assert!(e.is_transient(), "{e}");
}

#[tokio::test]
async fn every_value_is_escaped_in_the_request() {
    let sb = tenant().await;
    let id = worker_id(&sb);
    let wws = client(&sb, WORKDAY_PASSWORD);
    // Markup in a value is data, not XML: Workday sees one user name, with the characters in it.
    wws.set_user_name(&id, "a<b>&\"c'</bsvc:User_Name>")
        .await
        .expect("written");
    let after = wws.worker(&id).await.expect("read");
    assert_eq!(
        after.user_name.as_deref(),
        Some("a<b>&\"c'</bsvc:User_Name>")
    );
}
