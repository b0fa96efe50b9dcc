//! The Azure Functions custom handler, driven exactly as the Functions host drives it: `POST
//! /{FunctionName}` on loopback with the host's `{Data, Metadata}` payloads and headers
//! (<https://learn.microsoft.com/azure/azure-functions/functions-custom-handlers>), against the
//! sandbox tenant, with checkpoints in Azurite's blob service.

mod support;

use std::sync::Arc;
use std::time::Duration;

use entra_enrich::adapters::azure_functions::EnrichFunctions;
use entra_enrich::app::{build_graph, build_validator, context_from_parts};
use entra_enrich::app::{App, AppOptions, Shell};
use entra_enrich::config::Config;
use entra_enrich::handlers::EnrichContext;
use entra_sandbox::identity::TokenSpec;
use entra_sandbox::{FaultAction, FaultRule, FaultTrigger, Sandbox, SandboxOptions};
use serde_json::{json, Value};
use support::vault::{client_secret_in_key_vault, VaultAndAuthority};
use support::*;

const AUDIENCE: &str = "api://entra-enrich-tests";
const RELAY_APP_ID: &str = "5b1a7c3e-2f4d-4e6a-9b8c-7d6e5f4a3b2c";

/// The tests that start two tenants (or time a resume) take turns, so that none of them runs on a
/// machine the others saturate.
static HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A running custom handler plus the tenant behind it.
struct Host {
    h: Harness,
    url: String,
    client: reqwest::Client,
    invocations: u32,
    _server: tokio::task::JoinHandle<()>,
}

fn caller_settings(sandbox: &Sandbox) -> Vec<(&'static str, String)> {
    vec![
        ("ENRICH_TENANT_ID", sandbox.tenant_id()),
        ("AZURE_AUTHORITY_HOST", sandbox.authority_url()),
        ("ENRICH_AUDIENCE", AUDIENCE.to_string()),
        ("ENRICH_ALLOWED_CALLERS", RELAY_APP_ID.to_string()),
    ]
}

async fn serve(ctx: EnrichContext, config: Config) -> (String, tokio::task::JoinHandle<()>) {
    let validator = build_validator(&config).expect("validator");
    serve_shell(Shell::started(App::from_parts(config, ctx, validator))).await
}

/// The custom handler serving `shell` on loopback, as the Functions host would reach it: its URL.
async fn serve_shell(shell: Shell) -> (String, tokio::task::JoinHandle<()>) {
    let app = Arc::new(EnrichFunctions::new(shell));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let server = tokio::spawn(async move {
        let _ = functions_custom_handler::serve(listener, app).await;
    });
    (url, server)
}

impl Host {
    async fn start(options: SandboxOptions) -> Host {
        // The caller-check settings name the sandbox, which only exists once started: start it,
        // then rebuild the harness's config with them.
        let mut h = Harness::start(options, &[]).await;
        let extra: Vec<(&str, String)> = caller_settings(&h.sandbox);
        let extra: Vec<(&str, &str)> = extra.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let env = env_for(&h.sandbox, h.state_dir.path(), &extra);
        h.config = Config::from_env(&env).expect("settings");
        let (url, server) = serve(h.ctx.clone(), h.config.clone()).await;
        Host {
            h,
            url,
            client: reqwest::Client::new(),
            invocations: 0,
            _server: server,
        }
    }

    /// POSTs a host-shaped invocation to `/{function}` and returns the `{Outputs, Logs, ReturnValue}`.
    async fn invoke(&mut self, function: &str, payload: Value) -> Value {
        self.invocations += 1;
        let res = self
            .client
            .post(format!("{}/{function}", self.url))
            .header(
                "X-Azure-Functions-InvocationId",
                format!("6c1b7f0e-0000-4000-8000-{:012}", self.invocations),
            )
            .header("X-Azure-Functions-HostVersion", "4.1037.0")
            .header("User-Agent", "Azure-Functions-Host/4.1037.0")
            .header(
                "traceparent",
                "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            )
            .header("Content-Type", "application/json; charset=utf-8")
            .json(&payload)
            .send()
            .await
            .expect("handler answers");
        assert!(
            res.status().is_success(),
            "the host fails a non-2xx invocation: {}",
            res.status()
        );
        res.json().await.expect("JSON answer")
    }

    /// One lcw-joiner callout for `subject` with `bearer`: (status, body, headers).
    async fn callout(&mut self, bearer: &str, subject: &str, tpr: &str) -> (u16, Value, Value) {
        let answer = self
            .invoke("lcw-joiner", callout_invocation(Some(bearer), subject, tpr))
            .await;
        res(&answer)
    }

    fn token(&self) -> TokenSpec {
        TokenSpec::for_audience(
            self.h.sandbox.identity(),
            &self.h.sandbox.authority_url(),
            AUDIENCE,
            RELAY_APP_ID,
        )
    }

    fn mint(&self, spec: &TokenSpec) -> String {
        self.h.sandbox.identity().mint(spec)
    }
}

/// The host's payload for an HTTP trigger with the relay's request, the callout as a JSON object body
/// (the fixture captured from the documented shape), for `subject` and task processing result `tpr`.
fn callout_invocation(authorization: Option<&str>, subject: &str, tpr: &str) -> Value {
    let mut payload: Value = serde_json::from_str(include_str!(
        "fixtures/functions/http-lcw-joiner-object-body.json"
    ))
    .expect("fixture");
    let req = &mut payload["Data"]["req"];
    match authorization {
        Some(a) => req["Headers"]["Authorization"] = json!([a]),
        None => {
            req["Headers"]
                .as_object_mut()
                .map(|h| h.remove("Authorization"));
        }
    }
    let data = &mut req["Body"]["data"];
    data["subject"]["id"] = json!(subject);
    data["taskProcessingResult"]["id"] = json!(tpr);
    data["workflow"]["id"] = json!(WORKFLOW);
    data["task"]["id"] = json!(TASK);
    payload
}

fn res(answer: &Value) -> (u16, Value, Value) {
    let res = &answer["Outputs"]["res"];
    let status = match &res["statusCode"] {
        Value::String(s) => s.parse().unwrap_or(0),
        Value::Number(n) => n.as_u64().unwrap_or(0) as u16,
        _ => 0,
    };
    let body = match &res["body"] {
        Value::String(s) => serde_json::from_str(s).unwrap_or(Value::String(s.clone())),
        other => other.clone(),
    };
    (status, body, res["headers"].clone())
}

fn tenant() -> SandboxOptions {
    SandboxOptions {
        users: 200,
        seed: 31,
        ..SandboxOptions::default()
    }
}

#[tokio::test]
async fn a_valid_callout_patches_other_mails_and_resumes_completed_and_a_replay_writes_nothing() {
    let mut host = Host::start(tenant()).await;
    let subject = hybrid_user_with_valid_email(&host.h);
    let tpr = "9e8d7c6b-5a4f-4e3d-2c1b-0a9f8e7d6c5b";
    host.h
        .sandbox
        .add_task_processing_result(WORKFLOW, TASK, tpr);
    let bearer = format!("Bearer {}", host.mint(&host.token()));

    let answer = host
        .invoke(
            "lcw-joiner",
            callout_invocation(Some(&bearer), &subject, tpr),
        )
        .await;
    let (status, body, _) = res(&answer);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(body["outcome"], "EntryExportUpdate", "{body}");
    assert_eq!(body["resume"], "Completed");

    let user = host.h.sandbox.user(&subject).expect("user");
    let expected = personal_email(&host.h.before[&subject]).expect("email");
    assert_eq!(user["otherMails"], json!([expected.trim()]));
    let resumes = host.h.sandbox.resumes(WORKFLOW, TASK, tpr);
    assert_eq!(resumes.len(), 1);
    assert_eq!(
        resumes[0].operation_status.to_ascii_lowercase(),
        "completed"
    );
    // The answer and the logs hold no personal email.
    assert!(!answer.to_string().contains(expected.trim()));

    // A replay of the same callout: no Graph call at all, no second write, no second resume.
    let calls = graph_calls(&host.h.sandbox);
    let patches_before = host.h.sandbox.counters().patches;
    let again = host
        .invoke(
            "lcw-joiner",
            callout_invocation(Some(&bearer), &subject, tpr),
        )
        .await;
    let (status, body, _) = res(&again);
    assert_eq!(status, 200);
    assert_eq!(body["replayed"], true, "{body}");
    assert_eq!(host.h.sandbox.counters().patches, patches_before);
    assert_eq!(graph_calls(&host.h.sandbox), calls);
    assert_eq!(host.h.sandbox.resumes(WORKFLOW, TASK, tpr).len(), 1);
}

#[tokio::test]
async fn a_cloud_only_subject_is_untouched_and_resumes_completed() {
    let mut host = Host::start(tenant()).await;
    let subject = host
        .h
        .before
        .iter()
        .find(|(_, u)| !is_hybrid(u))
        .map(|(id, _)| id.clone())
        .expect("a cloud-only user");
    let tpr = "2a2a2a2a-0000-4000-8000-000000000001";
    host.h
        .sandbox
        .add_task_processing_result(WORKFLOW, TASK, tpr);
    let bearer = format!("Bearer {}", host.mint(&host.token()));
    let answer = host
        .invoke(
            "lcw-joiner",
            callout_invocation(Some(&bearer), &subject, tpr),
        )
        .await;
    let (status, body, _) = res(&answer);
    assert_eq!(status, 200);
    assert_eq!(body["outcome"], "EntrySynchronizationSkipped", "{body}");
    assert_eq!(host.h.sandbox.counters().patches, 0);
    assert_eq!(
        host.h.sandbox.user(&subject),
        Some(host.h.before[&subject].clone())
    );
    let resumes = host.h.sandbox.resumes(WORKFLOW, TASK, tpr);
    assert_eq!(resumes.len(), 1);
    assert_eq!(
        resumes[0].operation_status.to_ascii_lowercase(),
        "completed"
    );
}

#[tokio::test]
async fn every_bad_token_is_refused_with_401_and_no_graph_call() {
    let mut host = Host::start(tenant()).await;
    let subject = hybrid_user_with_valid_email(&host.h);
    let tpr = "3b3b3b3b-0000-4000-8000-000000000001";
    host.h
        .sandbox
        .add_task_processing_result(WORKFLOW, TASK, tpr);
    let base = host.token();
    let cases: Vec<(&str, Option<String>)> =
        vec![
            (
                "wrong aud",
                Some(host.mint(&base.clone().with_audience("api://someone-else"))),
            ),
            (
                "wrong iss",
                Some(host.mint(
                    &base.clone().with_issuer(
                        "https://sts.windows.net/00000000-0000-0000-0000-000000000000/",
                    ),
                )),
            ),
            ("expired", Some(host.mint(&base.clone().expired()))),
            ("alg none", Some(host.mint(&base.clone().alg_none()))),
            ("unknown kid", Some(host.mint(&base.clone().unknown_kid()))),
            (
                "caller not on the list",
                Some(
                    host.mint(
                        &base
                            .clone()
                            .with_app_id("0badc0de-0000-4000-8000-000000000000"),
                    ),
                ),
            ),
            ("no token", None),
        ];
    host.h.sandbox.reset_requests();
    for (case, token) in cases {
        let auth = token.map(|t| format!("Bearer {t}"));
        let answer = host
            .invoke(
                "lcw-joiner",
                callout_invocation(auth.as_deref(), &subject, tpr),
            )
            .await;
        let (status, body, headers) = res(&answer);
        assert_eq!(status, 401, "{case}: {answer}");
        let challenge = headers
            .as_object()
            .and_then(|h| {
                h.iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("www-authenticate"))
            })
            .map(|(_, v)| v.as_str().unwrap_or_default().to_string())
            .unwrap_or_default();
        assert!(
            challenge.starts_with("Bearer"),
            "{case}: WWW-Authenticate missing: {headers}"
        );
        assert!(
            !body.to_string().contains("eyJ"),
            "{case}: the token is echoed"
        );
    }
    assert_eq!(
        graph_calls(&host.h.sandbox),
        0,
        "a refused caller reached Graph"
    );
    assert_eq!(host.h.sandbox.counters().patches, 0);
    assert!(host.h.sandbox.resumes(WORKFLOW, TASK, tpr).is_empty());
}

#[tokio::test]
async fn a_malformed_body_answers_400_naming_the_field() {
    let mut host = Host::start(tenant()).await;
    let bearer = format!("Bearer {}", host.mint(&host.token()));
    let mut payload = callout_invocation(
        Some(&bearer),
        "00aa00aa-bb11-cc22-dd33-44ee44ee44ee",
        "4c4c4c4c-0000-4000-8000-000000000001",
    );
    payload["Data"]["req"]["Body"]["data"]["subject"]
        .as_object_mut()
        .map(|s| s.remove("id"));
    let (status, body, _) = res(&host.invoke("lcw-joiner", payload).await);
    assert_eq!(status, 400);
    assert_eq!(body["field"], "data.subject.id", "{body}");

    // A string body that is not JSON at all.
    let mut payload = callout_invocation(Some(&bearer), "x", "y");
    payload["Data"]["req"]["Body"] = json!("{not json");
    let (status, body, _) = res(&host.invoke("lcw-joiner", payload).await);
    assert_eq!(status, 400, "{body}");
    assert_eq!(host.h.sandbox.counters().patches, 0);
}

#[tokio::test]
async fn a_callout_body_over_the_limit_answers_413_and_the_next_one_is_served() {
    let mut host = Host::start(tenant()).await;
    let subject = hybrid_user_with_valid_email(&host.h);
    let bearer = format!("Bearer {}", host.mint(&host.token()));
    let tpr = "4d4d4d4d-0000-4000-8000-000000000001";
    host.h
        .sandbox
        .add_task_processing_result(WORKFLOW, TASK, tpr);
    // Inside the host envelope's limit, over the callout's: a few KB is what LCW sends.
    let mut payload = callout_invocation(Some(&bearer), &subject, tpr);
    payload["Data"]["req"]["Body"]["data"]["padding"] = json!("x".repeat(100 * 1024));
    host.h.sandbox.reset_requests();
    let (status, body, _) = res(&host.invoke("lcw-joiner", payload).await);
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["field"], "body");
    assert_eq!(graph_calls(&host.h.sandbox), 0, "nothing reached Graph");
    let (status, body, _) = res(&host
        .invoke(
            "lcw-joiner",
            callout_invocation(Some(&bearer), &subject, tpr),
        )
        .await);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["resume"], "Completed");
}

#[tokio::test]
async fn a_privileged_admin_subject_resumes_failed_with_the_fix_in_the_reason() {
    let mut host = Host::start(tenant()).await;
    let admins = host.h.sandbox.privileged_user_ids();
    let dups = duplicate_employee_ids(&host.h.before);
    let subject = admins
        .iter()
        .find(|id| {
            let u = &host.h.before[*id];
            is_hybrid(u)
                && u["employeeId"]
                    .as_str()
                    .is_some_and(|e| !dups.contains(&e.trim().to_ascii_lowercase()))
                && personal_email(u).is_some_and(|e| entra_core::AlternateEmail::parse(&e).is_ok())
        })
        .cloned()
        .expect("a hybrid privileged admin");
    let tpr = "5d5d5d5d-0000-4000-8000-000000000001";
    host.h
        .sandbox
        .add_task_processing_result(WORKFLOW, TASK, tpr);
    let bearer = format!("Bearer {}", host.mint(&host.token()));
    let (status, body, _) = res(&host
        .invoke(
            "lcw-joiner",
            callout_invocation(Some(&bearer), &subject, tpr),
        )
        .await);
    assert_eq!(status, 200);
    assert_eq!(body["resume"], "Failed", "{body}");
    let resumes = host.h.sandbox.resumes(WORKFLOW, TASK, tpr);
    assert_eq!(resumes.len(), 1);
    assert_eq!(resumes[0].operation_status.to_ascii_lowercase(), "failed");
    let reasons = resumes[0]
        .status_reasons
        .clone()
        .unwrap_or_default()
        .join(" ");
    assert!(
        reasons.contains("Privileged Authentication Administrator"),
        "the fix is in the reason: {reasons}"
    );
    assert_eq!(
        host.h
            .sandbox
            .user(&subject)
            .map(|u| u["otherMails"].clone()),
        Some(host.h.before[&subject]["otherMails"].clone())
    );
}

#[tokio::test]
async fn a_graph_503_answers_503_with_retry_after_and_does_not_resume() {
    let sandbox_options = SandboxOptions {
        faults: vec![FaultRule::new(
            "GET /v1.0/users/*",
            FaultTrigger::EveryNth(1),
            FaultAction::Status {
                status: 503,
                retry_after: None,
            },
        )],
        ..tenant()
    };
    let mut host = Host::start(sandbox_options).await;
    // Fail fast: three attempts, short backoff (production uses the default policy).
    let mut options = entra_graph::GraphClientOptions::new(
        host.h.config.graph_base_url.clone(),
        managed_identity(&host.h.sandbox),
    );
    options.retry = entra_graph::RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
        deadline: Duration::from_secs(5),
    };
    let graph = entra_graph::GraphClient::new(options).expect("graph");
    let ctx = context_from_parts(&host.h.config, graph, host.h.ctx.state.clone());
    let (url, _server) = serve(ctx, host.h.config.clone()).await;
    host.url = url;

    let subject = hybrid_user_with_valid_email(&host.h);
    let tpr = "6e6e6e6e-0000-4000-8000-000000000001";
    host.h
        .sandbox
        .add_task_processing_result(WORKFLOW, TASK, tpr);
    let bearer = format!("Bearer {}", host.mint(&host.token()));
    let (status, _body, headers) = res(&host
        .invoke(
            "lcw-joiner",
            callout_invocation(Some(&bearer), &subject, tpr),
        )
        .await);
    assert_eq!(status, 503);
    let retry_after = headers
        .as_object()
        .and_then(|h| {
            h.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("retry-after"))
        })
        .and_then(|(_, v)| v.as_str().and_then(|s| s.parse::<u64>().ok()));
    assert!(
        retry_after.is_some_and(|s| s > 0),
        "Retry-After missing: {headers}"
    );
    assert!(
        host.h.sandbox.resumes(WORKFLOW, TASK, tpr).is_empty(),
        "resumed despite a transient failure"
    );
    assert_eq!(host.h.sandbox.counters().patches, 0);
}

/// `ENRICH_SOURCE=workday` and Workday down: lcw-joiner answers 503 with `Retry-After`, does not
/// resume and writes nothing; once Workday is back, the relay's retry enriches and resumes.
#[tokio::test]
async fn a_workday_outage_answers_503_and_the_retry_enriches() {
    let mut options = tenant();
    options.workday.personal_email_only_in_workday = true;
    let mut host = Host::start(options).await;
    let settings = [
        ("ENRICH_SOURCE", "workday".to_string()),
        (
            "ENRICH_WORKDAY_REPORT_URL",
            host.h.sandbox.workday_report_url(),
        ),
        (
            "ENRICH_WORKDAY_USERNAME",
            entra_sandbox::workday::WORKDAY_USERNAME.to_string(),
        ),
        (
            "ENRICH_WORKDAY_PASSWORD",
            entra_sandbox::workday::WORKDAY_PASSWORD.to_string(),
        ),
        (
            "ENRICH_WORKDAY_PROMPT",
            entra_sandbox::workday::WORKDAY_PROMPT.to_string(),
        ),
    ];
    let mut extra: Vec<(&str, String)> = caller_settings(&host.h.sandbox);
    extra.extend(settings);
    let extra: Vec<(&str, &str)> = extra.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let env = env_for(&host.h.sandbox, host.h.state_dir.path(), &extra);
    let config = Config::from_env(&env).expect("settings");
    let mut ctx = host.h.ctx.clone();
    ctx.hr = entra_enrich::app::build_hr_source(&config, &env, &app_options(&host.h.sandbox))
        .expect("Workday source");
    let (url, _server) = serve(ctx, config).await;
    host.url = url;
    // A hybrid user whose employeeId is unique in Entra and has one Workday row with a plain address.
    let rows = host.h.sandbox.workday_rows();
    let dups = duplicate_employee_ids(&host.h.before);
    let privileged = host.h.sandbox.privileged_user_ids();
    let (subject, email) = host
        .h
        .before
        .iter()
        .filter(|(id, u)| is_hybrid(u) && !privileged.contains(id))
        .find_map(|(id, u)| {
            let eid = u["employeeId"].as_str()?;
            if dups.contains(&eid.trim().to_lowercase()) {
                return None;
            }
            let mine: Vec<&Value> = rows.iter().filter(|r| r["Employee_ID"] == eid).collect();
            let email = mine.first()?["Personal_Email"].as_str()?;
            (mine.len() == 1 && email.is_ascii() && email.contains('@'))
                .then(|| (id.clone(), email.to_string()))
        })
        .expect("a hybrid user Workday vouches for");
    let tpr = "6f6f6f6f-0000-4000-8000-000000000001";
    host.h
        .sandbox
        .add_task_processing_result(WORKFLOW, TASK, tpr);
    let bearer = format!("Bearer {}", host.mint(&host.token()));
    host.h.sandbox.set_faults(vec![FaultRule::new(
        "GET /ccx/service/customreport2/*/*/*",
        FaultTrigger::EveryNth(1),
        FaultAction::Status {
            status: 503,
            retry_after: None,
        },
    )]);
    let (status, body, headers) = host.callout(&bearer, &subject, tpr).await;
    assert_eq!(status, 503, "{body}");
    assert!(
        headers
            .to_string()
            .to_ascii_lowercase()
            .contains("retry-after"),
        "{headers}"
    );
    assert!(!body
        .to_string()
        .contains(entra_sandbox::workday::WORKDAY_PASSWORD));
    assert!(host.h.sandbox.resumes(WORKFLOW, TASK, tpr).is_empty());
    assert_eq!(host.h.sandbox.counters().patches, 0);

    host.h.sandbox.set_faults(Vec::new());
    let (status, body, _) = host.callout(&bearer, &subject, tpr).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        host.h.sandbox.user(&subject).expect("user")["otherMails"],
        json!([email])
    );
}

#[tokio::test]
async fn health_reports_version_functions_and_config_validity_without_secrets() {
    let mut host = Host::start(tenant()).await;
    let payload: Value =
        serde_json::from_str(include_str!("fixtures/functions/http-health-get.json"))
            .expect("fixture");
    let (status, body, _) = res(&host.invoke("health", payload).await);
    assert_eq!(status, 200);
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    let functions: Vec<&str> = body["functions"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(
        functions,
        ["lcw-joiner", "new-hire-watch", "backfill", "health"]
    );
    assert_eq!(body["config"]["valid"], true, "{body}");
    let text = body.to_string();
    assert!(
        !text.contains(&host.h.sandbox.identity_header()),
        "the identity header leaked"
    );
}

/// The timer payload the host sends (a real capture shape: `ScheduleStatus: null`).
fn timer_invocation() -> Value {
    serde_json::from_str(include_str!(
        "fixtures/functions/timer-new-hire-watch-status-null.json"
    ))
    .expect("fixture")
}

/// A handler whose state store is a blob container in Azurite (as in Azure: the function app's
/// storage account), reached over HTTPS with a bearer token.
async fn host_with_blob_state(options: SandboxOptions) -> (Host, entra_state::testing::Azurite) {
    let azurite = tokio::task::spawn_blocking(entra_state::testing::Azurite::start)
        .await
        .expect("join")
        .expect("Azurite starts (run scripts/bootstrap.sh to install it)");
    let mut host = Host::start(options).await;
    let container = entra_state::testing::unique_container("watch");
    let store = azurite.blob_store(&container, None).expect("blob store");
    let graph = build_graph(&host.h.config, managed_identity(&host.h.sandbox)).expect("graph");
    let ctx = context_from_parts(&host.h.config, graph, Arc::new(store));
    host.h.ctx = ctx.clone();
    let (url, server) = serve(ctx, host.h.config.clone()).await;
    host.url = url;
    host._server = server;
    (host, azurite)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newly_synced_user_is_enriched_by_the_next_watch_invocation() {
    let (mut host, _azurite) = host_with_blob_state(tenant()).await;
    // First invocation: no cursor yet, it starts from now and writes nothing.
    let first = host.invoke("new-hire-watch", timer_invocation()).await;
    assert_eq!(first["ReturnValue"]["initialized"], true, "{first}");
    assert_eq!(host.h.sandbox.counters().patches, 0);

    // Cloud Sync creates a hybrid user; the next tick enriches exactly that user.
    let hire = new_hire(1);
    host.h.sandbox.upsert_user(hire.clone()).expect("new hire");
    let second = host.invoke("new-hire-watch", timer_invocation()).await;
    assert_eq!(second["ReturnValue"]["writes"], 1, "{second}");
    let user = host
        .h
        .sandbox
        .user(hire["id"].as_str().expect("id"))
        .expect("user");
    assert_eq!(user["otherMails"], json!(["private.hire1@mail.example"]));
    assert_eq!(user["usageLocation"], "DE");
    let logs = second["Logs"].to_string();
    assert!(
        !logs.contains("private.hire1@mail.example"),
        "a personal email in Logs: {logs}"
    );

    // Our own write comes back as a change; the next tick plans it as unchanged and writes nothing.
    let third = host.invoke("new-hire-watch", timer_invocation()).await;
    assert_eq!(third["ReturnValue"]["writes"], 0, "{third}");
    assert_eq!(host.h.sandbox.counters().patches, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_interrupted_mid_round_resumes_from_its_checkpoint() {
    let _turn = HEAVY.lock().await;
    let (host, _azurite) = host_with_blob_state(tenant()).await;
    let ctx = &host.h.ctx;
    entra_enrich::handlers::watch::run_watch(ctx, Duration::from_secs(30))
        .await
        .expect("init");
    for n in 0..250 {
        host.h.sandbox.upsert_user(new_hire(n)).expect("new hire");
    }
    // A budget of zero stops after the first page: the invocation checkpoints its nextLink.
    let first = entra_enrich::handlers::watch::run_watch(ctx, Duration::ZERO)
        .await
        .expect("first");
    assert!(!first.round_complete, "{first:?}");
    assert!(first.writes > 0 && first.writes < 250, "{first:?}");
    let cursor = ctx
        .state
        .get(entra_enrich::handlers::watch::CURSOR_KEY)
        .await
        .expect("get")
        .expect("cursor");
    let cursor: Value = serde_json::from_slice(&cursor.bytes).expect("json");
    assert_eq!(cursor["midRound"], true, "{cursor}");

    // The next invocations continue from there until the round is done.
    let mut total = first.writes;
    for _ in 0..20 {
        let next = entra_enrich::handlers::watch::run_watch(ctx, Duration::ZERO)
            .await
            .expect("next");
        total += next.writes;
        if next.round_complete {
            break;
        }
    }
    // A write cut off by a zero budget's grace on a loaded machine waits in the retry list, which
    // only an invocation with a budget works through: one such tick settles them.
    let settle = entra_enrich::handlers::watch::run_watch(ctx, Duration::from_secs(30))
        .await
        .expect("settle");
    total += settle.writes;
    assert_eq!(settle.retry_pending, 0, "{settle:?}");
    assert_eq!(total, 250);
    for n in 0..250 {
        let u = host
            .h
            .sandbox
            .user(new_hire(n)["id"].as_str().expect("id"))
            .expect("user");
        assert_eq!(
            u["otherMails"],
            json!([format!("private.hire{n}@mail.example")])
        );
    }
    let mut per_user = std::collections::HashMap::new();
    for (id, _, status) in patches(&host.h.sandbox) {
        if (200..300).contains(&status) {
            *per_user.entry(id).or_insert(0) += 1;
        }
    }
    assert!(
        per_user.values().all(|n| *n == 1),
        "a user was written twice across the invocations"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_delta_token_starts_a_new_round() {
    let (host, _azurite) = host_with_blob_state(tenant()).await;
    let ctx = &host.h.ctx;
    entra_enrich::handlers::watch::run_watch(ctx, Duration::from_secs(30))
        .await
        .expect("init");
    host.h.sandbox.upsert_user(new_hire(7)).expect("new hire");
    host.h.sandbox.expire_delta_tokens();
    let summary = entra_enrich::handlers::watch::run_watch(ctx, Duration::from_secs(60))
        .await
        .expect("watch");
    assert!(summary.reset, "{summary:?}");
    assert!(summary.round_complete);
    let u = host
        .h
        .sandbox
        .user(new_hire(7)["id"].as_str().expect("id"))
        .expect("user");
    assert_eq!(u["otherMails"], json!(["private.hire7@mail.example"]));
}

#[tokio::test]
async fn health_names_every_invalid_setting_without_echoing_values() {
    let env: entra_enrich::config::Env = [
        ("ENRICH_MAX_WRITES_PER_MINUTE", "5000"),
        ("ENRICH_CREDENTIAL", "client-secret"),
        ("AZURE_CLIENT_SECRET", "s3cr3t-do-not-show"),
        ("ENRICH_OTHERMAILS_MODE", "sometimes"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let (url, _server) = serve_shell(Shell::new(env, AppOptions::default())).await;
    let payload: Value =
        serde_json::from_str(include_str!("fixtures/functions/http-health-get.json"))
            .expect("fixture");
    let answer: Value = reqwest::Client::new()
        .post(format!("{url}/health"))
        .header(
            "X-Azure-Functions-InvocationId",
            "0d9e8f7a-0000-4000-8000-000000000001",
        )
        .json(&payload)
        .send()
        .await
        .expect("answer")
        .json()
        .await
        .expect("json");
    let (status, body, _) = res(&answer);
    assert_eq!(status, 200);
    assert_eq!(body["config"]["valid"], false, "{body}");
    let settings: Vec<&str> = body["config"]["problems"]
        .as_array()
        .expect("problems")
        .iter()
        .filter_map(|p| p["setting"].as_str())
        .collect();
    for s in [
        "ENRICH_MAX_WRITES_PER_MINUTE",
        "ENRICH_OTHERMAILS_MODE",
        "ENRICH_CREDENTIAL",
    ] {
        assert!(settings.contains(&s), "{s} not named: {settings:?}");
    }
    assert!(!answer.to_string().contains("s3cr3t-do-not-show"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_backfill_timer_runs_the_backfill_and_stores_its_report() {
    let (mut host, _azurite) = host_with_blob_state(tenant()).await;
    let payload: Value = serde_json::from_str(include_str!(
        "fixtures/functions/timer-backfill-status-populated.json"
    ))
    .expect("fixture");
    let answer = host.invoke("backfill", payload.clone()).await;
    let summary = &answer["ReturnValue"];
    assert_eq!(summary["complete"], true, "{answer}");
    assert!(
        summary["writes"].as_u64().is_some_and(|w| w > 0),
        "{answer}"
    );
    let run_id = summary["runId"].as_str().expect("runId");
    let report = host
        .h
        .ctx
        .state
        .get(&format!("reports/{run_id}.json"))
        .await
        .expect("state")
        .expect("the report is stored beside the checkpoints");
    let rows: Value = serde_json::from_slice(&report.bytes).expect("report JSON");
    assert!(rows.as_array().is_some_and(|r| !r.is_empty()));
    // The next tick has nothing left to write.
    let again = host.invoke("backfill", payload).await;
    assert_eq!(again["ReturnValue"]["writes"], 0, "{again}");
}

/// The worker starts while Key Vault is down: every function answers (503 with `Retry-After` for the
/// joiner, a transient error for the timer, the failure in health), nothing is written, the vault is
/// not hammered within the retry floor, and once the vault is back the same worker starts and works,
/// with no restart. (Before, the first failure was cached for the life of the worker.)
#[tokio::test]
async fn the_worker_recovers_from_a_key_vault_outage_without_a_restart() {
    let _turn = HEAVY.lock().await;
    let h = Harness::start(tenant(), &[]).await;
    let mut settings = caller_settings(&h.sandbox);
    settings.extend(client_secret_in_key_vault(&h.sandbox));
    let settings: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let env = env_for(&h.sandbox, h.state_dir.path(), &settings);
    let vault = VaultAndAuthority::down(&h.sandbox);
    let floor = Duration::from_millis(400);
    let options = vault.app_options(floor);
    let (url, server) = serve_shell(Shell::new(env, options)).await;
    let mut host = Host {
        h,
        url,
        client: reqwest::Client::new(),
        invocations: 0,
        _server: server,
    };
    let subject = hybrid_user_with_valid_email(&host.h);
    let tpr = "3b3b3b3b-0000-4000-8000-000000000001";
    host.h
        .sandbox
        .add_task_processing_result(WORKFLOW, TASK, tpr);
    let bearer = format!("Bearer {}", host.mint(&host.token()));
    host.h.sandbox.reset_requests();

    // The vault is down: the relay is told to retry, nothing is written or resumed.
    let answer = host
        .invoke(
            "lcw-joiner",
            callout_invocation(Some(&bearer), &subject, tpr),
        )
        .await;
    let (status, body, headers) = res(&answer);
    assert_eq!(status, 503, "{answer}");
    assert_eq!(body["error"], "temporarily_unavailable", "{body}");
    assert!(headers["Retry-After"].is_string(), "{headers}");
    let vault_calls = vault.requests();
    assert!(vault_calls >= 1);
    // Within the floor: answered from the remembered failure, the vault is not asked again.
    let timer: Value = serde_json::from_str(include_str!(
        "fixtures/functions/timer-new-hire-watch-status-null.json"
    ))
    .expect("fixture");
    let tick = host.invoke("new-hire-watch", timer.clone()).await;
    assert_eq!(tick["ReturnValue"]["kind"], "transient", "{tick}");
    assert_eq!(vault.requests(), vault_calls);
    let health = host
        .invoke(
            "health",
            serde_json::from_str(include_str!("fixtures/functions/http-health-get.json"))
                .expect("fixture"),
        )
        .await;
    let (_, health, _) = res(&health);
    assert_eq!(health["initialized"], false, "{health}");
    assert!(
        health["initError"]
            .as_str()
            .is_some_and(|e| e.contains("Key Vault")),
        "{health}"
    );
    assert_eq!(graph_calls(&host.h.sandbox), 0);
    assert!(host.h.sandbox.resumes(WORKFLOW, TASK, tpr).is_empty());

    // The vault is back; after the floor the same worker starts and works.
    vault.restore();
    tokio::time::sleep(floor + Duration::from_millis(100)).await;
    let tick = host.invoke("new-hire-watch", timer).await;
    assert!(tick["ReturnValue"]["error"].is_null(), "{tick}");
    let answer = host
        .invoke(
            "lcw-joiner",
            callout_invocation(Some(&bearer), &subject, tpr),
        )
        .await;
    let (status, body, _) = res(&answer);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(body["resume"], "Completed", "{body}");
    let expected = personal_email(&host.h.before[&subject]).expect("email");
    let user = host.h.sandbox.user(&subject).expect("user");
    assert_eq!(user["otherMails"], json!([expected.trim()]));
    // Written with the client secret read from the vault. (The sandbox's default app registration
    // has no LifecycleWorkflows permission, so its resume is refused: that is the sandbox's
    // permission model, not this test's subject.)
    assert_eq!(body["outcome"], "EntryExportUpdate", "{body}");
    let health = host
        .invoke(
            "health",
            serde_json::from_str(include_str!("fixtures/functions/http-health-get.json"))
                .expect("fixture"),
        )
        .await;
    let (_, health, _) = res(&health);
    assert_eq!(health["initialized"], true, "{health}");
    assert!(health["initError"].is_null(), "{health}");
}

/// One input, as each door receives it.
enum Case {
    /// A callout with this Authorization header (or none) for the test's subject; `replay` reuses
    /// the previous case's task processing result.
    Joiner {
        authorization: Auth,
        body: CaseBody,
    },
    Watch,
    Health,
}

#[derive(Clone, Copy)]
enum Auth {
    None,
    Valid,
}

#[derive(Clone, Copy)]
enum CaseBody {
    Callout,
    NotJson,
}

/// The comparable part of an answer: status, and the body fields both doors must agree on.
fn comparable(status: u16, body: &Value) -> Value {
    json!({
        "status": status,
        "error": body["error"],
        "outcome": body["outcome"],
        "resume": body["resume"],
        "replayed": body["replayed"],
        "configValid": body["config"]["valid"],
        "initialized": body["initialized"],
        "version": body["version"],
        "functions": body["functions"],
        "changes": body["changes"],
        "written": body["written"],
    })
}

/// Lambda (a Function URL event, in process) and Azure Functions (the host's payload over loopback)
/// give the same answers to the same joiner, watch and health inputs, each against its own copy of
/// the same tenant (same seed).
#[tokio::test]
async fn lambda_and_functions_give_the_same_answers_to_the_same_inputs() {
    let _turn = HEAVY.lock().await;
    use entra_enrich::adapters::lambda::LambdaApp;
    let cases = [
        Case::Health,
        Case::Joiner {
            authorization: Auth::None,
            body: CaseBody::Callout,
        },
        Case::Joiner {
            authorization: Auth::Valid,
            body: CaseBody::NotJson,
        },
        Case::Joiner {
            authorization: Auth::Valid,
            body: CaseBody::Callout,
        },
        // The same callout again: a replay.
        Case::Joiner {
            authorization: Auth::Valid,
            body: CaseBody::Callout,
        },
        Case::Watch,
        Case::Watch,
        Case::Health,
    ];
    let tpr = "4c4c4c4c-0000-4000-8000-000000000001";
    let timer: Value = serde_json::from_str(include_str!(
        "fixtures/functions/timer-new-hire-watch-status-null.json"
    ))
    .expect("fixture");
    let health_payload: Value =
        serde_json::from_str(include_str!("fixtures/functions/http-health-get.json"))
            .expect("fixture");

    // Azure Functions.
    let mut host = Host::start(tenant()).await;
    host.h
        .sandbox
        .add_task_processing_result(WORKFLOW, TASK, tpr);
    let subject = hybrid_user_with_valid_email(&host.h);
    let bearer = format!("Bearer {}", host.mint(&host.token()));
    let mut functions = Vec::new();
    for case in &cases {
        let answer = match case {
            Case::Health => res(&host.invoke("health", health_payload.clone()).await),
            Case::Watch => {
                let tick = host.invoke("new-hire-watch", timer.clone()).await;
                (200, tick["ReturnValue"].clone(), Value::Null)
            }
            Case::Joiner {
                authorization,
                body,
            } => {
                let auth = match authorization {
                    Auth::None => None,
                    Auth::Valid => Some(bearer.as_str()),
                };
                let mut payload = callout_invocation(auth, &subject, tpr);
                if let CaseBody::NotJson = body {
                    payload["Data"]["req"]["Body"] = json!("{not json");
                }
                res(&host.invoke("lcw-joiner", payload).await)
            }
        };
        functions.push(comparable(answer.0, &answer.1));
    }

    // AWS Lambda, against a second copy of the tenant.
    let other = Host::start(tenant()).await;
    other
        .h
        .sandbox
        .add_task_processing_result(WORKFLOW, TASK, tpr);
    assert_eq!(
        hybrid_user_with_valid_email(&other.h),
        subject,
        "same seed, same tenant"
    );
    let validator = build_validator(&other.h.config).expect("validator");
    let lambda = LambdaApp::new(Shell::started(App::from_parts(
        other.h.config.clone(),
        other.h.ctx.clone(),
        validator,
    )));
    let bearer = format!("Bearer {}", other.mint(&other.token()));
    let ctx = lambda_runtime::Context::default();
    let mut lambdas = Vec::new();
    for case in &cases {
        let (status, body) = match case {
            Case::Health => http_answer(
                &lambda
                    .handle(url_event("GET", "/health", None, None), &ctx)
                    .await,
            ),
            Case::Watch => {
                let summary = lambda
                    .handle(json!({"job": "new-hire-watch"}), &ctx)
                    .await
                    .expect("a summary");
                (200, summary)
            }
            Case::Joiner {
                authorization,
                body,
            } => {
                let auth = match authorization {
                    Auth::None => None,
                    Auth::Valid => Some(bearer.as_str()),
                };
                let text = match body {
                    CaseBody::Callout => {
                        let payload = callout_invocation(None, &subject, tpr);
                        payload["Data"]["req"]["Body"].to_string()
                    }
                    CaseBody::NotJson => "{not json".to_string(),
                };
                let event = url_event("POST", "/lcw-joiner", auth, Some(text));
                http_answer(&lambda.handle(event, &ctx).await)
            }
        };
        lambdas.push(comparable(status, &body));
    }
    for (i, (f, l)) in functions.iter().zip(&lambdas).enumerate() {
        assert_eq!(f, l, "case {i}: Functions and Lambda differ");
    }
    // The table is not vacuous: it saw a write, a refusal and a replay.
    assert!(functions
        .iter()
        .any(|a| a["outcome"] == "EntryExportUpdate"));
    assert!(functions.iter().any(|a| a["status"] == 401));
    assert!(functions.iter().any(|a| a["replayed"] == true));
}

/// A Function URL request (payload 2.0).
fn url_event(method: &str, path: &str, authorization: Option<&str>, body: Option<String>) -> Value {
    let mut headers = json!({"content-type": "application/json"});
    if let Some(a) = authorization {
        headers["authorization"] = json!(a);
    }
    json!({
        "version": "2.0",
        "rawPath": path,
        "headers": headers,
        "requestContext": {"http": {"method": method, "path": path}},
        "body": body,
        "isBase64Encoded": false,
    })
}

fn http_answer(
    answer: &Result<Value, entra_enrich::adapters::lambda::LambdaError>,
) -> (u16, Value) {
    let Ok(answer) = answer else {
        panic!("an HTTP answer: {answer:?}")
    };
    let status = answer["statusCode"].as_u64().unwrap_or(0) as u16;
    let body =
        serde_json::from_str(answer["body"].as_str().unwrap_or_default()).unwrap_or(Value::Null);
    (status, body)
}
