//! The AWS Lambda adapter: `entra-enrich lambda`.
//!
//! One more way of being invoked, over the same [`Shell`] and [`crate::app::App`] as the Azure
//! Functions adapter. The binary is the function's bootstrap (custom runtime `provided.al2023`); it
//! polls the [Lambda Runtime API](https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html)
//! through the `lambda_runtime` crate and routes each event by its shape, typed with
//! `aws_lambda_events`:
//!
//! | event | shape | app call |
//! |-------|-------|----------|
//! | EventBridge Scheduler | the schedule's input `{"job": "new-hire-watch"}` / `{"job": "backfill"}` | [`crate::app::App::scheduled`] |
//! | EventBridge scheduled rule (legacy) | [`EventBridgeEvent`] with `detail-type` `Scheduled Event` and `detail.job` | same |
//! | Function URL / API Gateway HTTP API, payload 2.0 | [`ApiGatewayV2httpRequest`] | `POST …/lcw-joiner` → [`Shell::joiner`]; `GET …/health` → [`Shell::health`] |
//!
//! Anything else is an error naming the accepted shapes. A job works within
//! `ENRICH_TIME_BUDGET_SECONDS`, capped by the invocation's deadline minus [`DEADLINE_MARGIN`], then
//! checkpoints and returns its summary. Errors become a [`Diagnostic`] once, in `From<LambdaError>`.
//!
//! Behind a Function URL with auth type `NONE` the bearer-token check is the only gate, so
//! `lcw-joiner` refuses to run without the caller-check settings ([`JoinerGate::BearerOnly`]).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::encodings::Body;
use aws_lambda_events::eventbridge::EventBridgeEvent;
use base64::Engine as _;
use http::{HeaderMap, HeaderName, HeaderValue};
use lambda_runtime::{service_fn, Context, Diagnostic, LambdaEvent};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::app::{http_method, http_routes, AppError, AppOptions, Job};
use crate::app::{JoinerGate, Platform, Shell};
use crate::config::process_env;
use crate::handlers::lcw_joiner::{JoinerRequest, JoinerResponse};

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
/// (`errorType` = [`LambdaError::kind`], `errorMessage` = the text, personal emails masked).
#[derive(Debug, thiserror::Error)]
pub enum LambdaError {
    #[error("unsupported event ({found}). {ACCEPTED_EVENTS}")]
    UnsupportedEvent { found: String },
    #[error("unknown job {job:?}; the job must be one of: new-hire-watch, backfill")]
    UnknownJob { job: String },
    #[error("the scheduled-rule event has no job: set the rule's input (or the detail) to {{\"job\": \"new-hire-watch\"}} or {{\"job\": \"backfill\"}}")]
    MissingJob,
    /// The app could not start: `Unavailable` when a dependency was down (a later invocation tries
    /// again), `Misconfigured` when a setting must be fixed.
    #[error("the function's settings are invalid or its clients could not start: {0}")]
    Start(AppError),
    #[error("{job} failed ({}): {error} (the next scheduled invocation resumes from the checkpoint)", error.kind().name())]
    JobFailed { job: &'static str, error: AppError },
    #[error("{0} is not set: `entra-enrich lambda` runs only as an AWS Lambda function (or under a Lambda Runtime API emulator)")]
    NotOnLambda(&'static str),
    #[error("AWS_LAMBDA_FUNCTION_MEMORY_SIZE is not a whole number of MB")]
    BadMemorySize,
    #[error("Lambda runtime: {0}")]
    Runtime(String),
}

impl LambdaError {
    /// The `errorType`.
    pub fn kind(&self) -> &'static str {
        match self {
            LambdaError::UnsupportedEvent { .. } => "UnsupportedEvent",
            LambdaError::UnknownJob { .. } => "UnknownJob",
            LambdaError::MissingJob => "MissingJob",
            LambdaError::Start(e) if e.is_transient() => "Unavailable",
            LambdaError::Start(_) => "Misconfigured",
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

/// The EventBridge Scheduler target input (our own shape) and a scheduled rule's `detail`.
#[derive(Debug, Deserialize)]
struct JobInput {
    job: Option<Value>,
}

/// Routes an event by its shape (see the module table).
pub fn classify(event: &Value) -> Result<Event, LambdaError> {
    let Some(obj) = event.as_object() else {
        return Err(LambdaError::UnsupportedEvent {
            found: describe(event),
        });
    };
    if event.pointer("/requestContext/http/method").is_some() {
        let request = ApiGatewayV2httpRequest::deserialize(event).map_err(|_| {
            LambdaError::UnsupportedEvent {
                found: "a payload-2.0 request whose fields do not have the documented types".into(),
            }
        })?;
        return Ok(Event::Http(http_request(request)));
    }
    if obj.contains_key("job") {
        return job_from(event);
    }
    if obj.get("detail-type").and_then(Value::as_str) == Some("Scheduled Event") {
        let rule = EventBridgeEvent::<Value>::deserialize(event).map_err(|_| {
            LambdaError::UnsupportedEvent {
                found: "an EventBridge event without its documented fields (source, detail)".into(),
            }
        })?;
        return job_from(&rule.detail);
    }
    Err(LambdaError::UnsupportedEvent {
        found: describe(event),
    })
}

/// The job named by `{"job": ...}` (a Scheduler input, or a scheduled rule's detail).
fn job_from(input: &Value) -> Result<Event, LambdaError> {
    let job = JobInput::deserialize(input).ok().and_then(|i| i.job);
    let unknown = |raw: String| LambdaError::UnknownJob {
        job: raw.chars().take(64).collect(),
    };
    match job {
        None | Some(Value::Null) => Err(LambdaError::MissingJob),
        Some(Value::String(name)) => Job::from_name(&name)
            .map(Event::Job)
            .ok_or_else(|| unknown(name)),
        Some(other) => Err(unknown(other.to_string())),
    }
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

fn http_request(request: ApiGatewayV2httpRequest) -> HttpRequest {
    let context = request.request_context.http;
    let path = request
        .raw_path
        .or(context.path)
        .unwrap_or_else(|| "/".to_string());
    let headers = request
        .headers
        .iter()
        .filter_map(|(k, v)| {
            Some((
                k.as_str().to_ascii_lowercase(),
                v.to_str().ok()?.to_string(),
            ))
        })
        .collect();
    HttpRequest {
        method: context.method.as_str().to_ascii_uppercase(),
        path,
        headers,
        body: body_json(request.body.as_deref(), request.is_base64_encoded),
    }
}

fn body_json(body: Option<&str>, base64: bool) -> Result<Value, String> {
    let text = match body {
        None => return Err("the request has no body".into()),
        Some(s) if base64 => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(s.trim())
                .map_err(|e| format!("the body is not valid base64: {e}"))?;
            String::from_utf8(bytes).map_err(|_| "the body is not UTF-8".to_string())?
        }
        Some(s) => s.to_string(),
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

/// The entra-enrich Lambda function.
pub struct LambdaApp {
    shell: Shell,
}

impl LambdaApp {
    /// Serves the app a [`Shell`] starts: `Shell::new(env, options)` reads the settings on first
    /// use, `Shell::started(app)` wraps an app already built (embedding and tests).
    pub fn new(shell: Shell) -> Self {
        Self { shell }
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
        let app = self.shell.app().await.map_err(LambdaError::Start)?;
        let budget = effective_budget(
            app.config().time_budget,
            context.deadline,
            SystemTime::now(),
        );
        tracing::info!(
            job = job.name(),
            budget_ms = budget.as_millis() as u64,
            request_id = %context.request_id,
            "scheduled job"
        );
        let failed = |error| LambdaError::JobFailed {
            job: job.name(),
            error,
        };
        app.scheduled(job, budget).await.map_err(failed)
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
        let Some(method) = http_method(&route) else {
            let body =
                json!({"error": "not_found", "message": "no such route", "routes": http_routes()});
            return http_response(404, &[], &body);
        };
        if req.method != method {
            return method_not_allowed(method);
        }
        match route.as_str() {
            "lcw-joiner" => {
                let answer = self.lcw_joiner(req, context, started).await;
                http_response(answer.status, &answer.headers, &answer.body)
            }
            _ => {
                let health = self.shell.health(Platform::AwsLambda).await;
                http_response(
                    200,
                    &[],
                    &serde_json::to_value(&health).unwrap_or(Value::Null),
                )
            }
        }
    }

    async fn lcw_joiner(
        &self,
        req: HttpRequest,
        context: &Context,
        started: tokio::time::Instant,
    ) -> JoinerResponse {
        let left = effective_budget(Duration::MAX, context.deadline, SystemTime::now());
        let platform_left = (left != Duration::MAX).then_some(left);
        let request = JoinerRequest {
            authorization: req.header("authorization").map(str::to_string),
            body: req.body,
        };
        self.shell
            .joiner(request, JoinerGate::BearerOnly, started, platform_left)
            .await
    }
}

/// The payload-2.0 response. `cookies` is always serialized (empty), which cargo-lambda's emulator
/// requires and AWS accepts.
fn http_response(status: u16, headers: &[(String, String)], body: &Value) -> Value {
    let mut response = ApiGatewayV2httpResponse::default();
    response.status_code = i64::from(status);
    response.headers = response_headers(headers);
    response.body = Some(Body::Text(body.to_string()));
    serde_json::to_value(&response).unwrap_or(Value::Null)
}

fn response_headers(extra: &[(String, String)]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    for (k, v) in extra {
        let name = HeaderName::from_bytes(k.to_ascii_lowercase().as_bytes());
        if let (Ok(name), Ok(value)) = (name, HeaderValue::from_str(v)) {
            headers.insert(name, value);
        }
    }
    headers
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
    let app = Arc::new(LambdaApp::new(Shell::new(
        process_env(),
        AppOptions::default(),
    )));
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
        let app = LambdaApp::new(Shell::new(crate::config::Env::new(), AppOptions::default()));
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
            error: AppError::new(
                crate::app::ErrorKind::Permanent,
                "user jane.doe@example.com",
            ),
        }
        .into();
        assert_eq!(d.error_type, "JobFailed");
        assert!(!d.error_message.contains("jane.doe@example.com"), "{d:?}");
    }
}
