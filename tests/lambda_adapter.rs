//! The AWS Lambda adapter (`entra-enrich lambda`), run as AWS runs it: the built binary polls a Lambda
//! Runtime API, here cargo-lambda 1.9.2's emulator (`cargo lambda watch --only-lambda-apis`, which
//! serves the Runtime API and the invoke/Function URL front ends without compiling anything), and
//! events are sent with `cargo lambda invoke --data-file` or as real HTTP requests to the emulator's
//! Function URL (`/lambda-url/<function>/<path>`, which it turns into a payload-2.0 event). Graph and
//! Entra are the sandbox tenant; the binary reaches it with the real managed-identity credential
//! aimed at the sandbox, as in the other end-to-end tests.
//!
//! cargo-lambda is installed by `scripts/bootstrap.sh` into `.tools/venv/bin/cargo-lambda`
//! (`CARGO_LAMBDA` overrides the path).

mod support;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use entra_enrich::adapters::lambda::LambdaApp;
use entra_enrich::app::{App, Shell};
use entra_enrich::config::{Config, Env};
use entra_sandbox::identity::TokenSpec;
use entra_sandbox::SandboxOptions;
use serde_json::{json, Value};
use support::*;
use tokio::process::{Child, Command};

const AUDIENCE: &str = "api://entra-enrich-tests";
const RELAY_APP_ID: &str = "5b1a7c3e-2f4d-4e6a-9b8c-7d6e5f4a3b2c";
/// The emulator's function name when it does not start the function itself.
const FUNCTION: &str = "_";

fn cargo_lambda() -> PathBuf {
    let path = std::env::var_os("CARGO_LAMBDA")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join(".tools/venv/bin/cargo-lambda")
        });
    assert!(
        path.exists(),
        "cargo-lambda not found at {} (run scripts/bootstrap.sh to install it)",
        path.display()
    );
    path
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn fixture(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/lambda")
        .join(name);
    let text = std::fs::read_to_string(&path).expect("fixture");
    serde_json::from_str(&text).expect("fixture is JSON")
}

/// The emulator plus `entra-enrich lambda` polling it, against a sandbox tenant.
struct Lambda {
    h: Harness,
    port: u16,
    dir: tempfile::TempDir,
    _emulator: Child,
    _function: Child,
}

impl Lambda {
    async fn start(options: SandboxOptions, caller_check: bool) -> Lambda {
        let h = Harness::start(options, &[]).await;
        let mut extra: Vec<(&str, String)> = Vec::new();
        if caller_check {
            extra = vec![
                ("ENRICH_TENANT_ID", h.sandbox.tenant_id()),
                ("AZURE_AUTHORITY_HOST", h.sandbox.authority_url()),
                ("ENRICH_AUDIENCE", AUDIENCE.to_string()),
                ("ENRICH_ALLOWED_CALLERS", RELAY_APP_ID.to_string()),
            ];
        }
        let extra: Vec<(&str, &str)> = extra.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let env: Env = env_for(&h.sandbox, h.state_dir.path(), &extra);

        // The emulator reads a Cargo manifest (`cargo metadata`) even with --only-lambda-apis; an
        // empty package keeps that instant and compiles nothing.
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("src")).expect("src");
        std::fs::write(
            dir.path().join("Cargo.toml"),
            "[package]\nname = \"entra-enrich-lambda-emulator\"\nversion = \"0.0.0\"\nedition = \"2021\"\n",
        )
        .expect("manifest");
        std::fs::write(dir.path().join("src/main.rs"), "fn main() {}\n").expect("main.rs");
        let port = free_port();
        let emulator = Command::new(cargo_lambda())
            .args(["lambda", "watch", "--only-lambda-apis", "--invoke-address"])
            .arg("127.0.0.1")
            .arg("--invoke-port")
            .arg(port.to_string())
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("emulator.log")).expect("log"))
            .kill_on_drop(true)
            .spawn()
            .expect("cargo lambda watch starts");
        let started = Instant::now();
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the emulator did not listen on 127.0.0.1:{port}: {}",
                std::fs::read_to_string(dir.path().join("emulator.log")).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }

        // What the Lambda service sets for a custom runtime, plus the app settings. Nothing else is
        // inherited, so no setting of the machine running the tests leaks in.
        let function = Command::new(env!("CARGO_BIN_EXE_entra-enrich"))
            .arg("lambda")
            .env_clear()
            .envs(&env)
            .env(
                "AWS_LAMBDA_RUNTIME_API",
                format!("http://127.0.0.1:{port}/.rt"),
            )
            .env("AWS_LAMBDA_FUNCTION_NAME", FUNCTION)
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("RUST_LOG", "warn,entra_enrich=info")
            // As the README asks for on Lambda: plain log lines in CloudWatch.
            .env("NO_COLOR", "1")
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(dir.path().join("function.out")).expect("log"))
            .stderr(std::fs::File::create(dir.path().join("function.log")).expect("log"))
            .kill_on_drop(true)
            .spawn()
            .expect("entra-enrich lambda starts");
        Lambda {
            h,
            port,
            dir,
            _emulator: emulator,
            _function: function,
        }
    }

    /// What the function wrote to stdout and stderr.
    fn logs(&self) -> String {
        ["function.out", "function.log"]
            .iter()
            .map(|f| std::fs::read_to_string(self.dir.path().join(f)).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// `cargo lambda invoke --data-file`: Ok(the function's response) or Err(the invoke's stderr,
    /// which carries the function's error type and message, on one line).
    async fn invoke(&self, event: &Value) -> Result<Value, String> {
        let file = self
            .dir
            .path()
            .join(format!("event-{}.json", uuid::Uuid::new_v4()));
        std::fs::write(&file, event.to_string()).expect("event file");
        let out = tokio::time::timeout(
            Duration::from_secs(60),
            Command::new(cargo_lambda())
                .args(["lambda", "invoke", FUNCTION, "--data-file"])
                .arg(&file)
                .arg("--invoke-address")
                .arg("127.0.0.1")
                .arg("--invoke-port")
                .arg(self.port.to_string())
                .args(["--output-format", "json", "--color", "never"])
                .env("NO_COLOR", "1")
                .current_dir(self.dir.path())
                .stdin(Stdio::null())
                .kill_on_drop(true)
                .output(),
        )
        .await
        .unwrap_or_else(|_| panic!("invoke timed out; function logs:\n{}", self.logs()))
        .expect("cargo lambda invoke runs");
        if out.status.success() {
            serde_json::from_slice(&out.stdout)
                .map_err(|e| format!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
        } else {
            // cargo-lambda prints the error type, then the message wrapped in a box (`×`, `│`);
            // unwrap it so a message can be matched whatever the width.
            let text = String::from_utf8_lossy(&out.stderr).replace(['×', '│'], " ");
            Err(text.split_whitespace().collect::<Vec<_>>().join(" "))
        }
    }

    /// A real HTTP request to the emulator's Function URL for this function.
    async fn http(
        &self,
        method: reqwest::Method,
        path: &str,
        authorization: Option<&str>,
        body: Option<&Value>,
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        let url = format!("http://127.0.0.1:{}/lambda-url/{FUNCTION}{path}", self.port);
        let mut req = reqwest::Client::new()
            .request(method, url)
            .timeout(Duration::from_secs(60));
        if let Some(a) = authorization {
            req = req.header("Authorization", a);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let res = req.send().await.expect("the Function URL answers");
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let text = res.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, headers, body)
    }

    fn bearer(&self, spec: &TokenSpec) -> String {
        format!("Bearer {}", self.h.sandbox.identity().mint(spec))
    }

    fn token(&self) -> TokenSpec {
        TokenSpec::for_audience(
            self.h.sandbox.identity(),
            &self.h.sandbox.authority_url(),
            AUDIENCE,
            RELAY_APP_ID,
        )
    }
}

fn tenant() -> SandboxOptions {
    SandboxOptions {
        users: 60,
        seed: 31,
        ..SandboxOptions::default()
    }
}

/// The callout body of the fixture, for `subject` and task processing result `tpr`.
fn callout(subject: &str, tpr: &str) -> Value {
    let event = fixture("function-url-lcw-joiner.json");
    let mut body: Value =
        serde_json::from_str(event["body"].as_str().expect("string body")).expect("JSON body");
    let data = &mut body["data"];
    data["subject"]["id"] = json!(subject);
    data["taskProcessingResult"]["id"] = json!(tpr);
    data["callbackUriPath"] = json!(format!(
        "/identityGovernance/lifecycleWorkflows/workflows/{WORKFLOW}/tasks/{TASK}/taskProcessingResults/{tpr}/microsoft.graph.identityGovernance.resume"
    ));
    data["workflow"]["id"] = json!(WORKFLOW);
    data["task"]["id"] = json!(TASK);
    body
}

/// The Function URL event fixture (payload 2.0, as AWS documents it) carrying `callout`.
fn function_url_event(authorization: Option<&str>, callout: &Value) -> Value {
    let mut event = fixture("function-url-lcw-joiner.json");
    let body = callout.to_string();
    event["headers"]["content-length"] = json!(body.len().to_string());
    event["body"] = json!(body);
    match authorization {
        Some(a) => event["headers"]["authorization"] = json!(a),
        None => {
            event["headers"]
                .as_object_mut()
                .map(|h| h.remove("authorization"));
        }
    }
    event
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_new_hire_watch_initializes_then_enriches_a_newly_synced_user() {
    let l = Lambda::start(tenant(), false).await;

    // EventBridge Scheduler input: the first run takes a cursor "from now" and writes nothing.
    let first = l
        .invoke(&fixture("scheduler-new-hire-watch.json"))
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", l.logs()));
    assert_eq!(first["initialized"], true, "{first}");
    assert_eq!(first["writes"], 0, "{first}");
    assert_eq!(l.h.sandbox.counters().patches, 0);

    // Cloud Sync creates a hybrid user; the next tick (a legacy scheduled-rule event this time)
    // enriches exactly that user.
    let hire = new_hire(1);
    l.h.sandbox.upsert_user(hire.clone()).expect("new hire");
    let second = l
        .invoke(&fixture("scheduled-rule-new-hire-watch.json"))
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", l.logs()));
    assert_eq!(second["initialized"], false, "{second}");
    assert_eq!(second["writes"], 1, "{second}");
    let user =
        l.h.sandbox
            .user(hire["id"].as_str().expect("id"))
            .expect("user");
    assert_eq!(user["otherMails"], json!(["private.hire1@mail.example"]));
    assert_eq!(user["usageLocation"], "DE");
    assert_eq!(l.h.sandbox.counters().patches, 1);
    let logs = l.logs();
    assert!(logs.contains("scheduled job"), "no job log line: {logs}");
    assert!(
        !logs.contains("private.hire1@mail.example"),
        "a personal email in the logs: {logs}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_url_callout_with_a_valid_token_patches_and_resumes() {
    let l = Lambda::start(tenant(), true).await;
    let subject = hybrid_user_with_valid_email(&l.h);
    let tpr = "9e8d7c6b-5a4f-4e3d-2c1b-0a9f8e7d6c5b";
    l.h.sandbox.add_task_processing_result(WORKFLOW, TASK, tpr);
    let bearer = l.bearer(&l.token());

    // A real HTTP POST to the Function URL, as the relay sends it.
    let (status, _, body) = l
        .http(
            reqwest::Method::POST,
            "/lcw-joiner",
            Some(&bearer),
            Some(&callout(&subject, tpr)),
        )
        .await;
    assert_eq!(status, 200, "{body}\n{}", l.logs());
    assert_eq!(body["outcome"], "EntryExportUpdate", "{body}");
    assert_eq!(body["resume"], "Completed", "{body}");

    let expected = personal_email(&l.h.before[&subject]).expect("email");
    let user = l.h.sandbox.user(&subject).expect("user");
    assert_eq!(user["otherMails"], json!([expected.trim()]));
    let patched: Vec<String> = patches(&l.h.sandbox).into_iter().map(|p| p.0).collect();
    assert_eq!(
        patched,
        vec![subject.clone()],
        "exactly the subject is written"
    );
    let resumes = l.h.sandbox.resumes(WORKFLOW, TASK, tpr);
    assert_eq!(resumes.len(), 1);
    assert_eq!(
        resumes[0].operation_status.to_ascii_lowercase(),
        "completed"
    );
    assert!(!body.to_string().contains(expected.trim()));
    assert!(!l.logs().contains(expected.trim()), "{}", l.logs());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_token_gets_401_with_a_challenge_and_never_reaches_graph() {
    let l = Lambda::start(tenant(), true).await;
    let subject = hybrid_user_with_valid_email(&l.h);
    let tpr = "3b3b3b3b-0000-4000-8000-000000000001";
    l.h.sandbox.add_task_processing_result(WORKFLOW, TASK, tpr);
    let expired = l.bearer(&l.token().expired());
    let stranger = l.bearer(
        &l.token()
            .with_app_id("0badc0de-0000-4000-8000-000000000000"),
    );
    l.h.sandbox.reset_requests();
    for (case, auth) in [
        ("expired", Some(expired.as_str())),
        ("caller not on the list", Some(stranger.as_str())),
        ("no token", None),
    ] {
        // The Function URL event as AWS documents it, through `cargo lambda invoke`.
        let response = l
            .invoke(&function_url_event(auth, &callout(&subject, tpr)))
            .await
            .unwrap_or_else(|e| panic!("{case}: {e}\n{}", l.logs()));
        assert_eq!(response["statusCode"], 401, "{case}: {response}");
        assert!(
            response["headers"]["www-authenticate"]
                .as_str()
                .is_some_and(|c| c.starts_with("Bearer")),
            "{case}: no challenge: {response}"
        );
        let body: Value =
            serde_json::from_str(response["body"].as_str().unwrap_or_default()).expect("JSON");
        assert_eq!(body["error"], "unauthorized", "{case}: {body}");
        assert!(
            !response.to_string().contains("eyJ"),
            "{case}: token echoed"
        );
    }
    assert_eq!(
        graph_calls(&l.h.sandbox),
        0,
        "a refused caller reached Graph"
    );
    assert_eq!(l.h.sandbox.counters().patches, 0);
    assert!(l.h.sandbox.resumes(WORKFLOW, TASK, tpr).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_event_shape_gets_an_error_naming_the_accepted_shapes() {
    let l = Lambda::start(tenant(), true).await;
    let err = l
        .invoke(&fixture("sqs-message.json"))
        .await
        .expect_err("an SQS event is not ours");
    assert!(err.contains("UnsupportedEvent"), "{err}");
    assert!(err.contains("keys Records"), "{err}");
    assert!(err.contains("{\"job\": \"new-hire-watch\"}"), "{err}");
    assert!(err.contains("POST .../lcw-joiner"), "{err}");
    assert!(
        !err.contains("Test message."),
        "the event's values are echoed: {err}"
    );
    let err = l
        .invoke(&json!({"job": "rollback"}))
        .await
        .expect_err("rollback is not a scheduled job");
    assert!(err.contains("UnknownJob"), "{err}");
    assert_eq!(graph_calls(&l.h.sandbox), 0);

    // The function survives the errors: health answers, with no secret in it.
    let health = l
        .invoke(&fixture("function-url-health-get.json"))
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", l.logs()));
    assert_eq!(health["statusCode"], 200, "{health}");
    let body: Value =
        serde_json::from_str(health["body"].as_str().unwrap_or_default()).expect("JSON");
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(body["platform"], "aws-lambda");
    assert_eq!(body["config"]["valid"], true, "{body}");
    assert!(!body.to_string().contains(&l.h.sandbox.identity_header()));
}

/// In-process (no emulator): without the caller-check settings, lcw-joiner is refused before any
/// Graph call, because a Function URL with auth type NONE has no other gate.
#[tokio::test]
async fn lcw_joiner_fails_closed_without_the_caller_check() {
    let h = Harness::start(tenant(), &[]).await;
    let config: Config = h.config.clone();
    assert!(config.caller_check.is_none());
    let app = LambdaApp::new(Shell::started(App::from_parts(config, h.ctx.clone(), None)));
    let subject = hybrid_user_with_valid_email(&h);
    let tpr = "7f7f7f7f-0000-4000-8000-000000000001";
    h.sandbox.add_task_processing_result(WORKFLOW, TASK, tpr);
    h.sandbox.reset_requests();
    let response = app
        .handle(
            function_url_event(Some("Bearer anything"), &callout(&subject, tpr)),
            &lambda_runtime::Context::default(),
        )
        .await
        .expect("an HTTP answer");
    assert_eq!(response["statusCode"], 500, "{response}");
    assert!(
        response["body"]
            .as_str()
            .is_some_and(|b| b.contains("caller_check_required")),
        "{response}"
    );
    assert_eq!(graph_calls(&h.sandbox), 0);
    assert!(h.sandbox.resumes(WORKFLOW, TASK, tpr).is_empty());
}

/// A Lambda execution environment that starts while Key Vault is down fails each invocation as
/// `Unavailable` (transient: the scheduler's retry or the next tick tries again), does not ask the
/// vault again within the retry floor, and once the vault is back the same environment starts and
/// runs the job, with no cold start.
#[tokio::test]
async fn a_start_that_failed_on_key_vault_is_retried_by_a_later_invocation() {
    use support::vault::{client_secret_in_key_vault, VaultAndAuthority};
    let h = Harness::start(tenant(), &[]).await;
    let settings = client_secret_in_key_vault(&h.sandbox);
    let settings: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let env = env_for(&h.sandbox, h.state_dir.path(), &settings);
    let vault = VaultAndAuthority::down(&h.sandbox);
    let floor = Duration::from_millis(400);
    let options = vault.app_options(floor);
    let lambda = LambdaApp::new(Shell::new(env, options));
    let context = lambda_runtime::Context::default();
    let tick = fixture("scheduler-new-hire-watch.json");

    let failed = lambda.handle(tick.clone(), &context).await;
    let error = failed.expect_err("the vault is down");
    assert_eq!(error.kind(), "Unavailable", "{error}");
    assert!(error.to_string().contains("Key Vault"), "{error}");
    let asked = vault.requests();
    assert!(asked >= 1);
    // Within the floor: the remembered failure answers, the vault is not asked again.
    let again = lambda.handle(tick.clone(), &context).await;
    assert_eq!(again.expect_err("still down").kind(), "Unavailable");
    assert_eq!(vault.requests(), asked);
    assert_eq!(h.sandbox.counters().patches, 0);

    vault.restore();
    tokio::time::sleep(floor + Duration::from_millis(100)).await;
    let summary = lambda
        .handle(tick, &context)
        .await
        .expect("the same environment starts once the vault is back");
    assert_eq!(summary["initialized"], true, "{summary}");
    assert!(vault.requests() > asked);
}
