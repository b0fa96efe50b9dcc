//! The AWS Lambda adapter: `entra-enrich lambda`.
//!
//! One more way of being invoked, over the same handlers as the Azure Functions adapter. The binary
//! is the function's bootstrap (custom runtime `provided.al2023`); it polls the
//! [Lambda Runtime API](https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html) through the
//! `lambda_runtime` crate and takes every event as raw JSON, routed by its shape:
//!
//! | event | shape | handler |
//! |-------|-------|---------|
//! | EventBridge Scheduler | the schedule's input `{"job": "new-hire-watch"}` / `{"job": "backfill"}` | [`run_watch`] / [`run_backfill`] |
//! | EventBridge scheduled rule (legacy) | `{"detail-type": "Scheduled Event", "detail": {"job": ...}}` | same |
//! | Function URL / API Gateway HTTP API, payload 2.0 | `requestContext.http.method`, `rawPath`, `headers`, `body`, `isBase64Encoded` | `POST …/lcw-joiner` → [`handle_callout`]; `GET …/health` → health |
//!
//! Anything else is an error naming the accepted shapes. Settings, credential, clients and the caller
//! validator are built from the same environment variables as everywhere else, on the first
//! invocation that needs them (once per cold start; a failed start is retried by the next
//! invocation, not cached). A job works within `ENRICH_TIME_BUDGET_SECONDS`, capped by the
//! invocation's deadline minus [`DEADLINE_MARGIN`], then checkpoints and returns its summary.
//!
//! Behind a Function URL with auth type `NONE` the bearer-token check is the only gate, so
//! `lcw-joiner` refuses to run without the caller-check settings (fail closed), where the Functions
//! adapter also has the function key.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use lambda_runtime::{service_fn, Context, Diagnostic, LambdaEvent};
use serde_json::{json, Map, Value};
use tokio::sync::OnceCell;

use crate::app::{build_context, build_validator};
use crate::config::{process_env, Config, Env};
use crate::handlers::backfill::{run_backfill, BackfillOptions, NoProgress};
use crate::handlers::lcw_joiner::{
    handle_callout_by, JoinerRequest, JoinerResponse, RETRY_AFTER_SECONDS,
};
use crate::handlers::watch::run_watch;
use crate::handlers::EnrichContext;
use entra_lcw::CallerValidator;

/// The scheduled jobs, as the `job` field of a schedule's input names them.
pub const JOBS: [&str; 2] = ["new-hire-watch", "backfill"];

/// The HTTP routes, matched on the last segment of the path (so `/lcw-joiner`, `/api/lcw-joiner` and
/// an API Gateway stage prefix like `/prod/lcw-joiner` all work).
pub const ROUTES: [&str; 2] = ["POST /lcw-joiner", "GET /health"];

/// Time left unused before the invocation's deadline, to checkpoint and answer.
pub const DEADLINE_MARGIN: Duration = Duration::from_secs(10);

/// The variables the Lambda service sets for a custom runtime; `lambda_runtime` panics without them,
/// so they are checked first.
const LAMBDA_ENV: [&str; 4] = [
    "AWS_LAMBDA_RUNTIME_API",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
];

const ACCEPTED_EVENTS: &str = "entra-enrich accepts (1) a scheduled job: {\"job\": \"new-hire-watch\"} or {\"job\": \"backfill\"} (the EventBridge Scheduler target input), or an EventBridge scheduled-rule event {\"detail-type\": \"Scheduled Event\", \"detail\": {\"job\": ...}}; (2) a Lambda Function URL or API Gateway HTTP API request, payload format 2.0: POST .../lcw-joiner or GET .../health";

/// Why an invocation failed. Returned to the Lambda service as the invocation error
/// (`errorType` = the variant name, `errorMessage` = the text, personal emails masked).
#[derive(Debug, thiserror::Error)]
pub enum LambdaError {
    #[error("unsupported event ({found}). {ACCEPTED_EVENTS}")]
    UnsupportedEvent { found: String },
    #[error("unknown job {job:?}; the job must be one of: new-hire-watch, backfill")]
    UnknownJob { job: String },
    #[error("the scheduled-rule event has no job: set the rule's input (or the detail) to {{\"job\": \"new-hire-watch\"}} or {{\"job\": \"backfill\"}}")]
    MissingJob,
    #[error("the function's settings are invalid or its clients could not start: {0}")]
    Misconfigured(String),
    #[error("{job} failed: {message} (the next scheduled invocation resumes from the checkpoint)")]
    JobFailed { job: &'static str, message: String },
    #[error("{0} is not set: `entra-enrich lambda` runs only as an AWS Lambda function (or under a Lambda Runtime API emulator)")]
    NotOnLambda(&'static str),
    #[error("AWS_LAMBDA_FUNCTION_MEMORY_SIZE is not a whole number of MB")]
    BadMemorySize,
    #[error("Lambda runtime: {0}")]
    Runtime(String),
}

impl LambdaError {
    fn kind(&self) -> &'static str {
        match self {
            LambdaError::UnsupportedEvent { .. } => "UnsupportedEvent",
            LambdaError::UnknownJob { .. } => "UnknownJob",
            LambdaError::MissingJob => "MissingJob",
            LambdaError::Misconfigured(_) => "Misconfigured",
            LambdaError::JobFailed { .. } => "JobFailed",
            LambdaError::NotOnLambda(_) | LambdaError::BadMemorySize => "NotOnLambda",
            LambdaError::Runtime(_) => "Runtime",
        }
    }
}

impl From<LambdaError> for Diagnostic {
    fn from(e: LambdaError) -> Diagnostic {
        Diagnostic {
            error_type: e.kind().to_string(),
            error_message: entra_core::pii::mask_emails_in(&e.to_string()),
        }
    }
}

/// A scheduled job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Job {
    NewHireWatch,
    Backfill,
}

impl Job {
    pub fn name(self) -> &'static str {
        match self {
            Job::NewHireWatch => "new-hire-watch",
            Job::Backfill => "backfill",
        }
    }

    fn parse(raw: &str) -> Result<Job, LambdaError> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "new-hire-watch" => Ok(Job::NewHireWatch),
            "backfill" => Ok(Job::Backfill),
            _ => Err(LambdaError::UnknownJob {
                job: raw.chars().take(64).collect(),
            }),
        }
    }
}

/// An HTTP request from a payload-2.0 event.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpRequest {
    pub method: String,
    pub path: String,
    /// Header names lower-cased (payload 2.0 already does; multiple values are comma-joined).
    pub headers: Vec<(String, String)>,
    /// The body as JSON, or why it is not.
    pub body: Result<Value, String>,
}

impl HttpRequest {
    /// A header's value, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What an event is.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Job(Job),
    Http(HttpRequest),
}

/// Routes an event by its shape (see the module table).
pub fn classify(event: &Value) -> Result<Event, LambdaError> {
    let Some(obj) = event.as_object() else {
        return Err(LambdaError::UnsupportedEvent {
            found: describe(event),
        });
    };
    if let Some(method) = event
        .pointer("/requestContext/http/method")
        .and_then(Value::as_str)
    {
        return Ok(Event::Http(http_request(obj, method)));
    }
    if let Some(job) = obj.get("job") {
        return match job.as_str() {
            Some(j) => Job::parse(j).map(Event::Job),
            None => Err(LambdaError::UnknownJob {
                job: job.to_string().chars().take(64).collect(),
            }),
        };
    }
    if obj.get("detail-type").and_then(Value::as_str) == Some("Scheduled Event") {
        return match obj.get("detail").and_then(|d| d.get("job")) {
            Some(Value::String(j)) => Job::parse(j).map(Event::Job),
            Some(other) => Err(LambdaError::UnknownJob {
                job: other.to_string().chars().take(64).collect(),
            }),
            None => Err(LambdaError::MissingJob),
        };
    }
    Err(LambdaError::UnsupportedEvent {
        found: describe(event),
    })
}

/// A short description of an unsupported event: its type and top-level keys, never its values.
fn describe(event: &Value) -> String {
    match event {
        Value::Object(m) if m.is_empty() => "an empty object".to_string(),
        Value::Object(m) => {
            let keys: Vec<&str> = m.keys().take(12).map(String::as_str).collect();
            let more = if m.len() > keys.len() { ", …" } else { "" };
            format!("an object with keys {}{more}", keys.join(", "))
        }
        Value::Array(_) => "an array".to_string(),
        Value::String(_) => "a string".to_string(),
        Value::Number(_) => "a number".to_string(),
        Value::Bool(_) => "a boolean".to_string(),
        Value::Null => "null".to_string(),
    }
}

fn http_request(obj: &Map<String, Value>, method: &str) -> HttpRequest {
    let path = obj
        .get("rawPath")
        .and_then(Value::as_str)
        .or_else(|| {
            obj.get("requestContext")
                .and_then(|c| c.pointer("/http/path"))
                .and_then(Value::as_str)
        })
        .unwrap_or("/")
        .to_string();
    let headers = obj
        .get("headers")
        .and_then(Value::as_object)
        .map(|h| {
            h.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.to_ascii_lowercase(), v.to_string())))
                .collect()
        })
        .unwrap_or_default();
    let base64 = obj.get("isBase64Encoded").and_then(Value::as_bool) == Some(true);
    HttpRequest {
        method: method.to_ascii_uppercase(),
        path,
        headers,
        body: body_json(obj.get("body"), base64),
    }
}

fn body_json(body: Option<&Value>, base64: bool) -> Result<Value, String> {
    let text = match body {
        None | Some(Value::Null) => return Err("the request has no body".into()),
        Some(Value::String(s)) if base64 => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(s.trim())
                .map_err(|e| format!("the body is not valid base64: {e}"))?;
            String::from_utf8(bytes).map_err(|_| "the body is not UTF-8".to_string())?
        }
        Some(Value::String(s)) => s.clone(),
        // Not payload 2.0 (its body is always a string), but unambiguous.
        Some(other) => return Ok(other.clone()),
    };
    if text.trim().is_empty() {
        return Err("the request has no body".into());
    }
    serde_json::from_str(&text).map_err(|e| format!("the body is not JSON: {e}"))
}

/// The time a job may work: the configured budget, capped by the invocation's deadline less
/// [`DEADLINE_MARGIN`]. `deadline_ms` is the Runtime API's `Lambda-Runtime-Deadline-Ms` (Unix epoch
/// milliseconds); 0 or a value over a minute in the past is not a usable deadline (an emulator's
/// placeholder) and leaves the configured budget.
pub fn effective_budget(configured: Duration, deadline_ms: u64, now: SystemTime) -> Duration {
    if deadline_ms == 0 {
        return configured;
    }
    let deadline = SystemTime::UNIX_EPOCH + Duration::from_millis(deadline_ms);
    match deadline.duration_since(now) {
        Ok(left) => configured.min(left.saturating_sub(DEADLINE_MARGIN)),
        Err(e) if e.duration() <= Duration::from_secs(60) => Duration::ZERO,
        Err(_) => {
            tracing::warn!(
                deadline_ms,
                "the invocation deadline is not a plausible time; using ENRICH_TIME_BUDGET_SECONDS alone"
            );
            configured
        }
    }
}

/// Everything built on the first invocation that needs it.
pub struct Ready {
    pub config: Config,
    pub ctx: EnrichContext,
    pub validator: Option<CallerValidator>,
}

/// The entra-enrich Lambda function.
pub struct LambdaApp {
    env: Env,
    ready: OnceCell<Arc<Ready>>,
    /// The last start-up failure, for health (first line only).
    init_error: Mutex<Option<String>>,
}

impl LambdaApp {
    /// A function that reads its settings from `env` on first use.
    pub fn from_env(env: Env) -> Self {
        Self {
            env,
            ready: OnceCell::new(),
            init_error: Mutex::new(None),
        }
    }

    /// A function with already-built parts (embedding and tests).
    pub fn with_parts(ready: Ready) -> Self {
        Self {
            env: Env::new(),
            ready: OnceCell::new_with(Some(Arc::new(ready))),
            init_error: Mutex::new(None),
        }
    }

    async fn ready(&self) -> Result<Arc<Ready>, LambdaError> {
        let result = self
            .ready
            .get_or_try_init(|| async {
                let config = Config::from_env(&self.env).map_err(|e| e.to_string())?;
                let ctx = build_context(&config).await.map_err(|e| e.to_string())?;
                let validator = build_validator(&config).map_err(|e| e.to_string())?;
                tracing::info!("entra-enrich initialised");
                Ok::<_, String>(Arc::new(Ready {
                    config,
                    ctx,
                    validator,
                }))
            })
            .await
            .cloned();
        if let Ok(mut last) = self.init_error.lock() {
            *last = result.as_ref().err().cloned();
        }
        result.map_err(|e| {
            let e = entra_core::pii::mask_emails_in(&e);
            tracing::error!(error = %e, "entra-enrich cannot start");
            LambdaError::Misconfigured(e)
        })
    }

    /// Handles one invocation: the event's payload and the invocation's context.
    pub async fn handle(&self, event: Value, context: &Context) -> Result<Value, LambdaError> {
        let started = tokio::time::Instant::now();
        // Nothing this invocation calls may outlive the invocation's own deadline.
        let left = effective_budget(Duration::MAX, context.deadline, SystemTime::now());
        let work = async {
            match classify(&event)? {
                Event::Job(job) => self.job(job, context).await,
                Event::Http(req) => Ok(self.http(req, context, started).await),
            }
        };
        match started.checked_add(left) {
            Some(hard) => entra_graph::deadline::within(hard, work).await,
            // No usable invocation deadline (an emulator's placeholder): the handlers' own apply.
            None => work.await,
        }
    }

    async fn job(&self, job: Job, context: &Context) -> Result<Value, LambdaError> {
        let ready = self.ready().await?;
        let budget = effective_budget(
            ready.config.time_budget,
            context.deadline,
            SystemTime::now(),
        );
        tracing::info!(
            job = job.name(),
            budget_ms = budget.as_millis() as u64,
            request_id = %context.request_id,
            "scheduled job"
        );
        let failed = |e: String| LambdaError::JobFailed {
            job: job.name(),
            message: entra_core::pii::mask_emails_in(&e),
        };
        match job {
            Job::NewHireWatch => {
                let summary = run_watch(&ready.ctx, budget)
                    .await
                    .map_err(|e| failed(e.to_string()))?;
                serde_json::to_value(&summary).map_err(|e| failed(e.to_string()))
            }
            Job::Backfill => {
                let options = BackfillOptions {
                    time_budget: Some(budget),
                    ..BackfillOptions::default()
                };
                let summary = run_backfill(&ready.ctx, &options, &NoProgress)
                    .await
                    .map_err(|e| failed(e.to_string()))?;
                let report_key = format!("reports/{}.json", summary.run_id);
                let bytes = crate::handlers::report::render_json(&summary.report, false);
                if let Err(e) = ready
                    .ctx
                    .state
                    .put(&report_key, bytes.into(), entra_state::WriteCondition::Any)
                    .await
                {
                    tracing::warn!(error = %e, "could not store the backfill report");
                }
                tracing::info!(
                    run_id = %summary.run_id,
                    writes = summary.writes,
                    deferred = summary.deferred,
                    complete = summary.complete,
                    report = %report_key,
                    "backfill invocation done"
                );
                serde_json::to_value(&summary).map_err(|e| failed(e.to_string()))
            }
        }
    }

    async fn http(
        &self,
        req: HttpRequest,
        context: &Context,
        started: tokio::time::Instant,
    ) -> Value {
        let route = req
            .path
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        match (route.as_str(), req.method.as_str()) {
            ("health", "GET") => http_response(200, &[], &self.health()),
            ("lcw-joiner", "POST") => {
                let answer = self.lcw_joiner(req, context, started).await;
                http_response(answer.status, &answer.headers, &answer.body)
            }
            ("health", _) => method_not_allowed("GET"),
            ("lcw-joiner", _) => method_not_allowed("POST"),
            _ => http_response(
                404,
                &[],
                &json!({"error": "not_found", "message": "no such route", "routes": ROUTES}),
            ),
        }
    }

    async fn lcw_joiner(
        &self,
        req: HttpRequest,
        context: &Context,
        started: tokio::time::Instant,
    ) -> JoinerResponse {
        // The first invocation builds the clients (a Key Vault read): that counts too.
        let configured = match self.ready.get() {
            Some(ready) => ready.ctx.joiner_deadline,
            None => Config::from_env(&self.env)
                .map(|c| c.joiner_deadline)
                .unwrap_or(crate::config::DEFAULT_JOINER_DEADLINE),
        };
        let deadline = started + effective_budget(configured, context.deadline, SystemTime::now());
        let Ok(ready) = tokio::time::timeout_at(deadline, self.ready()).await else {
            return JoinerResponse {
                status: 503,
                headers: vec![("Retry-After".into(), RETRY_AFTER_SECONDS.to_string())],
                body: json!({"error": "temporarily_unavailable", "message": "the function did not start within the joiner deadline; the relay retries"}),
            };
        };
        let ready = match ready {
            Ok(r) => r,
            Err(_) => {
                return JoinerResponse {
                    status: 500,
                    headers: Vec::new(),
                    body: json!({"error": "misconfigured", "message": "the function's settings are invalid; see GET /health"}),
                }
            }
        };
        let Some(validator) = ready.validator.as_ref() else {
            tracing::error!("lcw-joiner refused: the caller check is not configured");
            return JoinerResponse {
                status: 500,
                headers: Vec::new(),
                body: json!({
                    "error": "caller_check_required",
                    "message": "on AWS Lambda the bearer-token check is the only gate: set ENRICH_TENANT_ID, ENRICH_AUDIENCE and ENRICH_ALLOWED_CALLERS",
                }),
            };
        };
        let request = JoinerRequest {
            authorization: req.header("authorization").map(str::to_string),
            body: req.body,
        };
        handle_callout_by(&ready.ctx, Some(validator), request, deadline).await
    }

    /// Version, routes, jobs and settings validity. Problems name the setting and the fix; values
    /// are never shown.
    fn health(&self) -> Value {
        let ready = self.ready.get();
        let settings = crate::config::settings_report(ready.map(|r| &r.config), &self.env);
        let init_error = self
            .init_error
            .lock()
            .ok()
            .and_then(|e| e.clone())
            .map(|e| entra_core::pii::mask_emails_in(e.lines().next().unwrap_or_default()));
        json!({
            "name": "entra-enrich",
            "version": env!("CARGO_PKG_VERSION"),
            "platform": "aws-lambda",
            "routes": ROUTES,
            "jobs": JOBS,
            "config": settings,
            "initialized": ready.is_some(),
            "initError": init_error,
        })
    }
}

/// The payload-2.0 response shape. `cookies` is included (empty) because cargo-lambda's emulator
/// requires it; AWS accepts it.
fn http_response(status: u16, headers: &[(String, String)], body: &Value) -> Value {
    let mut h = Map::new();
    h.insert("content-type".into(), json!("application/json"));
    for (k, v) in headers {
        h.insert(k.to_ascii_lowercase(), json!(v));
    }
    json!({
        "statusCode": status,
        "headers": h,
        "body": body.to_string(),
        "isBase64Encoded": false,
        "cookies": [],
    })
}

fn method_not_allowed(allow: &str) -> Value {
    http_response(
        405,
        &[("allow".to_string(), allow.to_string())],
        &json!({"error": "method_not_allowed", "message": format!("use {allow}")}),
    )
}

/// `entra-enrich lambda`: serve invocations from the Lambda Runtime API until the environment is
/// shut down.
pub async fn run_from_env() -> Result<(), LambdaError> {
    for name in LAMBDA_ENV {
        if std::env::var_os(name).is_none_or(|v| v.is_empty()) {
            return Err(LambdaError::NotOnLambda(name));
        }
    }
    if std::env::var("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        .ok()
        .and_then(|m| m.trim().parse::<i32>().ok())
        .is_none()
    {
        return Err(LambdaError::BadMemorySize);
    }
    let app = Arc::new(LambdaApp::from_env(process_env()));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let app = app.clone();
        async move { app.handle(event.payload, &event.context).await }
    }))
    .await
    .map_err(|e| LambdaError::Runtime(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http(method: &str, path: &str, body: Value, base64: bool) -> Value {
        json!({
            "version": "2.0",
            "rawPath": path,
            "headers": {"Authorization": "Bearer x", "content-type": "application/json"},
            "requestContext": {"http": {"method": method, "path": path}},
            "body": body,
            "isBase64Encoded": base64,
        })
    }

    #[test]
    fn scheduler_input_and_scheduled_rule_events_name_the_job() {
        assert_eq!(
            classify(&json!({"job": "new-hire-watch", "scheduledTime": "2026-11-25T05:00:00Z"}))
                .ok(),
            Some(Event::Job(Job::NewHireWatch))
        );
        let rule = json!({"version": "0", "detail-type": "Scheduled Event", "source": "aws.events", "detail": {"job": "backfill"}});
        assert_eq!(classify(&rule).ok(), Some(Event::Job(Job::Backfill)));
        let no_job =
            json!({"detail-type": "Scheduled Event", "source": "aws.events", "detail": {}});
        assert!(matches!(classify(&no_job), Err(LambdaError::MissingJob)));
        let e = classify(&json!({"job": "rollback"}))
            .err()
            .map(|e| e.to_string());
        assert!(
            e.as_deref().is_some_and(
                |e| e.contains("\"rollback\"") && e.contains("new-hire-watch, backfill")
            ),
            "{e:?}"
        );
    }

    #[test]
    fn an_unknown_shape_names_the_accepted_shapes_and_not_the_values() {
        let e =
            classify(&json!({"Records": [{"eventSource": "aws:sqs", "body": "jane@example.com"}]}))
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
        assert!(e.contains("keys Records"), "{e}");
        assert!(e.contains("{\"job\": \"new-hire-watch\"}"), "{e}");
        assert!(e.contains("POST .../lcw-joiner"), "{e}");
        assert!(!e.contains("jane@example.com"), "{e}");
        assert!(matches!(
            classify(&json!("hello")),
            Err(LambdaError::UnsupportedEvent { .. })
        ));
    }

    #[test]
    fn http_events_carry_method_path_headers_and_a_decoded_body() {
        let Ok(Event::Http(req)) =
            classify(&http("post", "/lcw-joiner", json!("{\"a\":1}"), false))
        else {
            panic!("not an HTTP event")
        };
        assert_eq!(req.method, "POST");
        assert_eq!(req.header("AUTHORIZATION"), Some("Bearer x"));
        assert_eq!(req.body, Ok(json!({"a": 1})));

        let encoded = base64::engine::general_purpose::STANDARD.encode("{\"b\":2}");
        let Ok(Event::Http(req)) = classify(&http("POST", "/x", json!(encoded), true)) else {
            panic!("not an HTTP event")
        };
        assert_eq!(req.body, Ok(json!({"b": 2})));

        for (body, base64) in [
            (json!("{nope"), false),
            (json!("%%%"), true),
            (Value::Null, false),
            (json!("  "), false),
        ] {
            let Ok(Event::Http(req)) = classify(&http("POST", "/x", body.clone(), base64)) else {
                panic!("not an HTTP event")
            };
            assert!(req.body.is_err(), "{body} accepted");
        }
    }

    #[test]
    fn the_budget_is_capped_by_the_deadline_less_the_margin() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let ms = |t: SystemTime| {
            t.duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0)
        };
        let configured = Duration::from_secs(240);
        // 15 minutes left: the configured budget.
        assert_eq!(
            effective_budget(configured, ms(now + Duration::from_secs(900)), now),
            configured
        );
        // 60 s left: 50 s.
        assert_eq!(
            effective_budget(configured, ms(now + Duration::from_secs(60)), now),
            Duration::from_secs(50)
        );
        // Less than the margin, or just past: nothing.
        assert_eq!(
            effective_budget(configured, ms(now + Duration::from_secs(5)), now),
            Duration::ZERO
        );
        assert_eq!(
            effective_budget(configured, ms(now - Duration::from_secs(2)), now),
            Duration::ZERO
        );
        // No deadline, or a placeholder that is not an epoch time.
        assert_eq!(effective_budget(configured, 0, now), configured);
        assert_eq!(effective_budget(configured, 600_000, now), configured);
    }

    #[tokio::test]
    async fn routes_match_the_last_path_segment_and_the_method() {
        // Nothing here needs the clients: health and the route errors answer without starting them.
        let app = LambdaApp::from_env(Env::new());
        let ctx = Context::default();
        let status = |v: &Value| v["statusCode"].as_u64().unwrap_or(0);
        let r = app
            .handle(http("GET", "/prod/health", Value::Null, false), &ctx)
            .await
            .unwrap_or_default();
        assert_eq!(status(&r), 200, "{r}");
        let health: Value =
            serde_json::from_str(r["body"].as_str().unwrap_or_default()).unwrap_or_default();
        assert_eq!(health["initialized"], false, "{health}");
        assert_eq!(r["cookies"], json!([]));
        let r = app
            .handle(http("GET", "/lcw-joiner/", Value::Null, false), &ctx)
            .await
            .unwrap_or_default();
        assert_eq!(status(&r), 405, "{r}");
        assert_eq!(r["headers"]["allow"], "POST");
        let r = app
            .handle(http("GET", "/", Value::Null, false), &ctx)
            .await
            .unwrap_or_default();
        assert_eq!(status(&r), 404, "{r}");
    }

    #[test]
    fn errors_become_diagnostics_with_a_type_and_masked_message() {
        let d: Diagnostic = LambdaError::JobFailed {
            job: "backfill",
            message: "user jane.doe@example.com".into(),
        }
        .into();
        assert_eq!(d.error_type, "JobFailed");
        assert!(!d.error_message.contains("jane.doe@example.com"), "{d:?}");
    }
}
