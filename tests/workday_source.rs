//! Workday as the HR source (`ENRICH_SOURCE=workday`), against the sandbox's RaaS report: the
//! backfill writes exactly the users Workday vouches for, once; a joiner reads one row; duplicates on
//! either side are refused; a Workday outage loses nothing; a password rotated in Key Vault is picked
//! up after one 401; no secret or personal email reaches a message.

mod support;

use std::collections::HashMap;
use std::sync::Arc;

use entra_enrich::app::{build_hr_source, App, AppOptions, ErrorKind};
use entra_enrich::config::Config;
use entra_enrich::handlers::backfill::{run_backfill, BackfillOptions, NoProgress};
use entra_enrich::handlers::enrich::{UserRef, WhenBusy};
use entra_enrich::handlers::watch::run_watch;
use entra_sandbox::workday::{WORKDAY_PASSWORD, WORKDAY_PROMPT, WORKDAY_USERNAME};
use entra_sandbox::{FaultAction, FaultRule, FaultTrigger, Sandbox, SandboxOptions};
use entra_test_support::{FakeCredential, FakeKeyVault, Reply, TestServer};
use serde_json::Value;
use support::*;

const RAAS: &str = "GET /ccx/service/customreport2/*/*/*";
const VAULT_URL: &str = "https://entra-enrich-test.vault.azure.net/";

fn tenant(users: usize) -> SandboxOptions {
    let mut options = SandboxOptions {
        users,
        seed: 7,
        ..SandboxOptions::default()
    };
    options.workday.personal_email_only_in_workday = true;
    options
}

/// The Workday settings, with the password as a plain setting and `extra` on top.
fn workday_settings(sandbox: &Sandbox, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = vec![
        ("ENRICH_SOURCE".into(), "workday".into()),
        (
            "ENRICH_WORKDAY_REPORT_URL".into(),
            sandbox.workday_report_url(),
        ),
        ("ENRICH_WORKDAY_USERNAME".into(), WORKDAY_USERNAME.into()),
        ("ENRICH_WORKDAY_PASSWORD".into(), WORKDAY_PASSWORD.into()),
        ("ENRICH_WORKDAY_COUNTRY_FIELD".into(), "Country".into()),
    ];
    for (k, v) in extra {
        out.retain(|(key, _)| key != k);
        out.push((k.to_string(), v.to_string()));
    }
    out
}

/// Points `h` at Workday: the settings with `extra` on top, the source built with `options`.
fn read_workday(h: &mut Harness, extra: &[(&str, &str)], options: &AppOptions) {
    let settings = workday_settings(&h.sandbox, extra);
    let settings: Vec<(&str, &str)> = settings
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let env = env_for(&h.sandbox, h.state_dir.path(), &settings);
    h.config = Config::from_env(&env).expect("Workday settings");
    h.ctx = h.context();
    h.ctx.hr = build_hr_source(&h.config, &env, options).expect("Workday source");
}

/// App options whose Key Vault reads reach `vault` (read with a fake ambient identity).
fn vault_options(vault: &Arc<FakeKeyVault>) -> AppOptions {
    AppOptions {
        transport: Some(vault.transport()),
        ambient_credential: Some(Arc::new(FakeCredential::with_prefix("ambient"))),
        ..AppOptions::default()
    }
}

/// A harness whose context reads Workday.
async fn harness(options: SandboxOptions, extra: &[(&str, &str)]) -> Harness {
    let mut h = Harness::start(options, &[]).await;
    let options = app_options(&h.sandbox);
    read_workday(&mut h, extra, &options);
    h
}

fn raas_requests(sandbox: &Sandbox) -> Vec<entra_sandbox::RecordedRequest> {
    sandbox
        .requests()
        .into_iter()
        .filter(|r| r.path.starts_with("/ccx/service/customreport2/"))
        .collect()
}

/// Workday rows by employeeId key (trimmed, lower-cased), each with its personal emails.
fn workers(sandbox: &Sandbox) -> HashMap<String, Vec<Option<String>>> {
    let mut out: HashMap<String, Vec<Option<String>>> = HashMap::new();
    for row in sandbox.workday_rows() {
        if let Some(id) = row["Employee_ID"].as_str() {
            let email = row["Personal_Email"].as_str().map(str::to_string);
            out.entry(id.trim().to_lowercase()).or_default().push(email);
        }
    }
    out
}

/// Users that must be written: in scope, one employeeId shared with nobody in Entra and one
/// Workday row, whose email is a plain valid address.
fn must_write(h: &Harness) -> HashMap<String, String> {
    let rows = workers(&h.sandbox);
    let dups = duplicate_employee_ids(&h.before);
    let mut out = HashMap::new();
    for (id, user) in &h.before {
        let Some(eid) = user["employeeId"].as_str().map(|e| e.trim().to_lowercase()) else {
            continue;
        };
        if !is_hybrid(user)
            || dups.contains(&eid)
            || user["otherMails"].as_array().is_some_and(|a| !a.is_empty())
        {
            continue;
        }
        if let Some([Some(email)]) = rows.get(&eid).map(Vec::as_slice) {
            let plain = email.is_ascii() && email.split('@').count() == 2 && email.contains('.');
            if plain && !is_privileged(h, id) {
                out.insert(id.clone(), email.clone());
            }
        }
    }
    out
}

/// The watch takes its cursor; then Cloud Sync creates new hire `n` (employeeId `NH0000n`), with no
/// personal email in Entra. Returns the user's id.
async fn watched_hire(h: &Harness, n: usize) -> String {
    run_watch(&h.ctx, std::time::Duration::from_secs(30))
        .await
        .expect("watch init");
    let mut hire = new_hire(n);
    hire["onPremisesExtensionAttributes"]["extensionAttribute1"] = Value::Null;
    h.sandbox.upsert_user(hire).expect("new hire")
}

fn is_privileged(h: &Harness, id: &str) -> bool {
    h.sandbox.privileged_user_ids().iter().any(|p| p == id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backfill_writes_exactly_the_users_workday_vouches_for_once() {
    let h = harness(tenant(120), &[]).await;
    // Entra holds no personal email: only Workday can give it.
    assert!(h
        .before
        .values()
        .all(|u| u["onPremisesExtensionAttributes"]["extensionAttribute1"].is_null()));
    let expected = must_write(&h);
    assert!(
        expected.len() > 20,
        "the tenant has users to write: {}",
        expected.len()
    );
    h.sandbox.reset_requests();
    let summary = run_backfill(&h.ctx, &BackfillOptions::default(), &NoProgress)
        .await
        .expect("backfill");
    // One read of the whole report.
    assert_eq!(raas_requests(&h.sandbox).len(), 1);
    let written: HashMap<String, usize> = successful_patches_per_user(&h.sandbox);
    for (id, email) in &expected {
        let user = h.sandbox.user(id).expect("user");
        assert_eq!(user["otherMails"], serde_json::json!([email]), "{id}");
        assert_eq!(written.get(id), Some(&1), "{id} written once");
    }
    // Nobody else was given an address Workday did not vouch for.
    let rows = workers(&h.sandbox);
    for (id, body, _) in patches(&h.sandbox) {
        let Some(given) = body["otherMails"].as_array() else {
            continue; // usageLocation only (from Workday's Country)
        };
        let user = h.sandbox.user(&id).expect("user");
        let eid = user["employeeId"]
            .as_str()
            .expect("written users have an employeeId");
        let row = &rows[&eid.trim().to_lowercase()];
        assert_eq!(row.len(), 1, "{id}: one Workday row");
        assert_eq!(given.len(), 1, "{id}: {body}");
        assert_eq!(given[0].as_str(), row[0].as_deref(), "{id}");
    }
    // The report counts what Workday had that Entra did not.
    let text = serde_json::to_string(&summary).expect("summary");
    assert!(text.contains("\"unmatched\""), "{text}");
    // Refusals: a Workday duplicate and an Entra duplicate are both named.
    assert!(text.contains("DuplicateSourceEntries"), "{text}");
    assert!(text.contains("DuplicateTargetEntries"), "{text}");

    // A second run writes nothing.
    h.sandbox.reset_requests();
    run_backfill(
        &h.ctx,
        &BackfillOptions {
            fresh: true,
            ..Default::default()
        },
        &NoProgress,
    )
    .await
    .expect("second backfill");
    assert!(patches(&h.sandbox).is_empty(), "{:?}", patches(&h.sandbox));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_joiner_with_a_prompt_reads_one_workday_row() {
    let h = harness(tenant(40), &[("ENRICH_WORKDAY_PROMPT", WORKDAY_PROMPT)]).await;
    let (id, email) = must_write(&h).into_iter().next().expect("a user to write");
    let eid = h.before[&id]["employeeId"]
        .as_str()
        .expect("eid")
        .to_string();
    let app = App::from_parts(h.config.clone(), h.ctx.clone(), None);
    h.sandbox.reset_requests();
    let (result, _) = app
        .enrich(&UserRef::Id(id.clone()), WhenBusy::Leave)
        .await
        .expect("enrich");
    assert!(result.is_write(), "{result:?}");
    let reads = raas_requests(&h.sandbox);
    assert_eq!(reads.len(), 1, "one Workday call");
    assert!(
        reads[0].query.contains(&format!("{WORKDAY_PROMPT}={eid}")),
        "{}",
        reads[0].query
    );
    assert!(reads[0].query.contains("format=json"), "{}", reads[0].query);
    assert_eq!(
        h.sandbox.user(&id).expect("user")["otherMails"],
        serde_json::json!([email])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_without_employee_id_is_never_looked_up_or_written() {
    let h = harness(tenant(60), &[("ENRICH_WORKDAY_PROMPT", WORKDAY_PROMPT)]).await;
    let id = h
        .before
        .iter()
        .find(|(_, u)| is_hybrid(u) && u["employeeId"].is_null())
        .map(|(id, _)| id.clone())
        .expect("a hybrid user without employeeId");
    let app = App::from_parts(h.config.clone(), h.ctx.clone(), None);
    h.sandbox.reset_requests();
    let (result, _) = app
        .enrich(&UserRef::Id(id), WhenBusy::Leave)
        .await
        .expect("enrich");
    assert!(!result.is_write(), "{result:?}");
    assert!(raas_requests(&h.sandbox).is_empty());
    assert!(patches(&h.sandbox).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workday_outage_writes_nothing_and_the_watch_retries_the_user() {
    let h = harness(tenant(30), &[("ENRICH_WORKDAY_PROMPT", WORKDAY_PROMPT)]).await;
    let app = App::from_parts(h.config.clone(), h.ctx.clone(), None);
    let id = watched_hire(&h, 7).await;
    let email = "private.hire7@mail.example";
    h.sandbox.upsert_worker(serde_json::json!({
        "Employee_ID": "NH00007", "Personal_Email": email, "Country": "DE"
    }));
    h.sandbox.set_faults(vec![FaultRule::new(
        RAAS,
        FaultTrigger::EveryNth(1),
        FaultAction::Status {
            status: 503,
            retry_after: None,
        },
    )]);
    let error = app
        .enrich(&UserRef::Id(id.clone()), WhenBusy::Leave)
        .await
        .expect_err("Workday is down");
    assert_eq!(error.kind(), ErrorKind::Transient, "{error}");
    assert!(!error.to_string().contains(WORKDAY_PASSWORD), "{error}");
    assert!(patches(&h.sandbox).is_empty());

    // The watch: the round meets the outage and keeps the user for its next tick.
    let round = run_watch(&h.ctx, std::time::Duration::from_secs(30))
        .await
        .expect("watch");
    assert_eq!(round.retry_pending, 1, "{round:?}");
    assert!(h.sandbox.user(&id).expect("user")["otherMails"]
        .as_array()
        .is_none_or(Vec::is_empty));
    h.sandbox.set_faults(Vec::new());
    let round = run_watch(&h.ctx, std::time::Duration::from_secs(30))
        .await
        .expect("watch");
    assert_eq!(round.retried, 1, "{round:?}");
    assert_eq!(
        h.sandbox.user(&id).expect("user")["otherMails"],
        serde_json::json!([email])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_rotated_in_key_vault_is_read_again_after_one_401() {
    let mut h = Harness::start(tenant(30), &[]).await;
    let vault = Arc::new(
        FakeKeyVault::with_secret(WORKDAY_PASSWORD).with_others(Arc::new(h.sandbox.sdk_client())),
    );
    let options = vault_options(&vault);
    let secret = [
        ("ENRICH_WORKDAY_PROMPT", WORKDAY_PROMPT),
        ("ENRICH_WORKDAY_PASSWORD", ""),
        ("ENRICH_KEYVAULT_URL", VAULT_URL),
        (
            "ENRICH_WORKDAY_PASSWORD_SECRET_NAME",
            "workday-isu-password",
        ),
    ];
    read_workday(&mut h, &secret, &options);
    let mut users = must_write(&h).into_iter();
    let app = App::from_parts(h.config.clone(), h.ctx.clone(), None);
    let (first, _) = users.next().expect("a user");
    app.enrich(&UserRef::Id(first), WhenBusy::Leave)
        .await
        .expect("enrich");
    assert_eq!(
        vault
            .requests()
            .iter()
            .filter(|r| r.authorization.is_some())
            .count(),
        1
    );

    // The password is rotated in Workday and in the vault; the running app is not restarted.
    let rotated = "Rotated-Workday-Pa55word!";
    h.sandbox.set_workday_password(rotated);
    vault.set_secret(rotated);
    h.sandbox.reset_requests();
    let (second, email) = users.next().expect("another user");
    let (result, _) = app
        .enrich(&UserRef::Id(second.clone()), WhenBusy::Leave)
        .await
        .expect("enrich after the rotation");
    assert!(result.is_write(), "{result:?}");
    let statuses: Vec<u16> = raas_requests(&h.sandbox).iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![401, 200], "one 401, then the new password");
    assert_eq!(
        vault
            .requests()
            .iter()
            .filter(|r| r.authorization.is_some())
            .count(),
        2
    );
    assert_eq!(
        h.sandbox.user(&second).expect("user")["otherMails"],
        serde_json::json!([email])
    );

    // A wrong password everywhere: a settings error that names the settings, never the password.
    vault.set_secret("wrong");
    h.sandbox.set_workday_password("another-one");
    let (third, _) = users.next().expect("a third user");
    let error = app
        .enrich(&UserRef::Id(third), WhenBusy::Leave)
        .await
        .expect_err("refused");
    assert_eq!(error.kind(), ErrorKind::Settings, "{error}");
    let text = error.to_string();
    assert!(text.contains("ENRICH_WORKDAY_USERNAME"), "{text}");
    for secret in ["wrong", "another-one", rotated, WORKDAY_PASSWORD] {
        assert!(!text.contains(secret), "{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_that_is_not_json_or_has_no_rows_writes_nothing() {
    let h = harness(tenant(30), &[]).await;
    // Not a RaaS report: no Report_Entry anywhere.
    h.sandbox.set_workday_rows(Vec::new());
    let summary = run_backfill(&h.ctx, &BackfillOptions::default(), &NoProgress).await;
    // An empty report is a valid answer with zero rows: nothing matches, nothing is written.
    assert!(summary.is_ok(), "{summary:?}");
    assert!(patches(&h.sandbox).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth_with_a_refresh_token_from_key_vault_reads_the_report() {
    use entra_sandbox::workday::{WORKDAY_CLIENT_ID, WORKDAY_CLIENT_SECRET, WORKDAY_REFRESH_TOKEN};
    let mut h = Harness::start(tenant(30), &[]).await;
    let vault = Arc::new(
        FakeKeyVault::with_secret("unused")
            .with_named("workday-client-secret", WORKDAY_CLIENT_SECRET)
            .with_named("workday-refresh-token", WORKDAY_REFRESH_TOKEN)
            .with_others(Arc::new(h.sandbox.sdk_client())),
    );
    let token_url = h.sandbox.workday_token_url();
    let options = vault_options(&vault);
    read_workday(
        &mut h,
        &[
            ("ENRICH_WORKDAY_PROMPT", WORKDAY_PROMPT),
            ("ENRICH_WORKDAY_USERNAME", ""),
            ("ENRICH_WORKDAY_PASSWORD", ""),
            ("ENRICH_WORKDAY_TOKEN_URL", &token_url),
            ("ENRICH_WORKDAY_CLIENT_ID", WORKDAY_CLIENT_ID),
            ("ENRICH_KEYVAULT_URL", VAULT_URL),
            ("ENRICH_WORKDAY_CLIENT_SECRET_NAME", "workday-client-secret"),
            (
                "ENRICH_WORKDAY_REFRESH_TOKEN_SECRET_NAME",
                "workday-refresh-token",
            ),
        ],
        &options,
    );
    let app = App::from_parts(h.config.clone(), h.ctx.clone(), None);
    let mut users = must_write(&h).into_iter();
    h.sandbox.reset_requests();
    for _ in 0..2 {
        let (id, email) = users.next().expect("a user");
        let (result, _) = app
            .enrich(&UserRef::Id(id.clone()), WhenBusy::Leave)
            .await
            .expect("enrich");
        assert!(result.is_write(), "{result:?}");
        assert_eq!(
            h.sandbox.user(&id).expect("user")["otherMails"],
            serde_json::json!([email])
        );
    }
    // One grant serves both reads; each report read carried the bearer token.
    let grants = h
        .sandbox
        .requests()
        .into_iter()
        .filter(|r| r.path.starts_with("/ccx/oauth2/"))
        .count();
    assert_eq!(grants, 1);
    let reads = raas_requests(&h.sandbox);
    assert_eq!(reads.len(), 2);
    assert!(reads.iter().all(|r| r.status == 200));
}

/// A hire whose account exists before Workday's report lists them is `ImportSkipped`, kept by the
/// watch, and written on a later tick once Workday has the row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hire_workday_does_not_list_yet_is_retried_by_the_watch() {
    let h = harness(tenant(30), &[("ENRICH_WORKDAY_PROMPT", WORKDAY_PROMPT)]).await;
    let id = watched_hire(&h, 8).await;
    let round = run_watch(&h.ctx, std::time::Duration::from_secs(30))
        .await
        .expect("watch");
    let text = serde_json::to_string(&round).expect("summary");
    assert!(text.contains("ImportSkipped"), "{text}");
    assert_eq!(round.retry_pending, 1, "{round:?}");
    h.sandbox.upsert_worker(serde_json::json!({
        "Employee_ID": "NH00008", "Personal_Email": "private.hire8@mail.example"
    }));
    let round = run_watch(&h.ctx, std::time::Duration::from_secs(30))
        .await
        .expect("watch");
    assert_eq!(round.writes, 1, "{round:?}");
    assert_eq!(
        h.sandbox.user(&id).expect("user")["otherMails"],
        serde_json::json!(["private.hire8@mail.example"])
    );
}

/// A Workday that hangs: each call gives up at its limit, as a transient failure, and writes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workday_that_hangs_fails_transiently_at_its_limit() {
    let mut h = Harness::start(tenant(30), &[]).await;
    let options = AppOptions {
        workday_timeout: std::time::Duration::from_millis(500),
        ..app_options(&h.sandbox)
    };
    read_workday(
        &mut h,
        &[("ENRICH_WORKDAY_PROMPT", WORKDAY_PROMPT)],
        &options,
    );
    let (id, _) = must_write(&h).into_iter().next().expect("a user");
    h.sandbox.set_faults(vec![FaultRule::new(
        RAAS,
        FaultTrigger::EveryNth(1),
        FaultAction::Latency(std::time::Duration::from_secs(6)),
    )]);
    let app = App::from_parts(h.config.clone(), h.ctx.clone(), None);
    let started = std::time::Instant::now();
    let error = app
        .enrich(&UserRef::Id(id), WhenBusy::Leave)
        .await
        .expect_err("Workday hangs");
    assert_eq!(error.kind(), ErrorKind::Transient, "{error}");
    assert!(error.to_string().contains("did not answer"), "{error}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "it waited for the hang"
    );
    assert!(patches(&h.sandbox).is_empty());
}

/// A 404 names the report URL without its query; a body that is not a RaaS report (a sign-in page)
/// stops the backfill before any write, with an error that quotes none of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_url_or_a_body_that_is_not_a_report_writes_nothing() {
    let h = harness_with_url(|report| format!("{report}_Old?Run_As=someone")).await;
    let error = run_backfill(&h.ctx, &BackfillOptions::default(), &NoProgress)
        .await
        .map_err(entra_enrich::app::AppError::from)
        .expect_err("no such report");
    let text = error.to_string();
    assert_eq!(error.kind(), ErrorKind::Settings, "{text}");
    assert!(text.contains("Entra_Enrich_Workers_Old (404)"), "{text}");
    assert!(!text.contains("Run_As"), "{text}");
    assert_eq!(error.setting(), Some("ENRICH_WORKDAY_REPORT_URL"));
    assert!(patches(&h.sandbox).is_empty());

    let page = TestServer::start(|_, _| {
        Reply::new(200)
            .header("content-type", "text/html")
            .body("<html><body>Sign in to Workday: ada@example.org</body></html>")
    })
    .await;
    let page_url = format!(
        "{}ccx/service/customreport2/acme/isu/Workers",
        page.base_url()
    );
    let h = harness_with_url(|_| page_url).await;
    let error = run_backfill(&h.ctx, &BackfillOptions::default(), &NoProgress)
        .await
        .map_err(entra_enrich::app::AppError::from)
        .expect_err("not a report");
    let text = error.to_string();
    assert!(text.contains("not JSON"), "{text}");
    assert!(!text.contains("ada@"), "{text}");
    assert!(patches(&h.sandbox).is_empty());
}

/// A Workday harness whose report URL is `url(the sandbox's report URL)`.
async fn harness_with_url(url: impl FnOnce(&str) -> String) -> Harness {
    let mut h = Harness::start(tenant(30), &[]).await;
    let url = url(&h.sandbox.workday_report_url());
    let options = app_options(&h.sandbox);
    read_workday(&mut h, &[("ENRICH_WORKDAY_REPORT_URL", &url)], &options);
    h
}

/// No personal email from Workday, and no Workday secret, reaches a log line: a backfill, a joiner
/// with a prompt, a 401 and a rotation, logged at trace level.
#[tokio::test(flavor = "current_thread")]
async fn no_workday_secret_or_personal_email_reaches_a_log_line() {
    let buffer = support::logs::LogBuffer::default();
    let subscriber = buffer.subscriber(
        "entra_enrich=trace,entra_workday=trace,entra_graph=trace,entra_core=trace,entra_state=trace",
    );
    let _guard = tracing::subscriber::set_default(subscriber);
    let h = harness(tenant(80), &[("ENRICH_WORKDAY_PROMPT", WORKDAY_PROMPT)]).await;
    run_backfill(&h.ctx, &BackfillOptions::default(), &NoProgress)
        .await
        .expect("backfill");
    h.sandbox.set_workday_password("Changed-Pa55word!");
    let app = App::from_parts(h.config.clone(), h.ctx.clone(), None);
    let id = h.before.keys().next().expect("a user").clone();
    let _ = app.enrich(&UserRef::Id(id), WhenBusy::Leave).await;
    let text = buffer.text();
    assert!(
        text.contains("source=\"workday\"") || text.contains("source=workday"),
        "the run logged: {text}"
    );
    for secret in [WORKDAY_PASSWORD, "Changed-Pa55word!"] {
        assert!(
            !text.contains(secret),
            "a Workday secret reached a log line"
        );
    }
    let basic = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        format!("{WORKDAY_USERNAME}:{WORKDAY_PASSWORD}"),
    );
    assert!(!text.contains(&basic), "a Basic header reached a log line");
    for row in h.sandbox.workday_rows() {
        if let Some(email) = row["Personal_Email"].as_str().filter(|e| e.len() > 5) {
            assert!(
                !text.contains(email),
                "a personal email reached a log line: {}",
                entra_core::pii::mask_email(email)
            );
        }
    }
}
