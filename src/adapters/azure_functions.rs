//! The Azure Functions custom handler: `entra-enrich serve`.
//!
//! The host starts the binary, polls `127.0.0.1:$FUNCTIONS_CUSTOMHANDLER_PORT` until it answers, then
//! forwards each invocation as `POST /{FunctionName}` with `{Data, Metadata}`
//! (<https://learn.microsoft.com/azure/azure-functions/functions-custom-handlers>). The port is bound
//! before anything slow; the [`Shell`] starts the app on the first invocation and retries a failed
//! start later. This module only translates the host's payloads to and from the app's calls:
//!
//! | function         | trigger                               | app call |
//! |------------------|---------------------------------------|----------|
//! | `lcw-joiner`     | HTTP POST (function key), via the LCW relay | [`Shell::joiner`] |
//! | `new-hire-watch` | timer `%NEW_HIRE_WATCH_SCHEDULE%`     | [`crate::app::App::scheduled`] |
//! | `backfill`       | timer `%BACKFILL_SCHEDULE%`           | [`crate::app::App::scheduled`] with a time budget |
//! | `health`         | HTTP GET (function key)               | [`Shell::health`] |

use std::sync::Arc;

use functions_custom_handler::{
    bind_from_env, init_tracing, serve, FunctionApp, HttpOutput, Invocation, InvokeResponse,
};
use serde_json::{json, Value};

use crate::app::{function_names, AppError, AppOptions, Job, JoinerGate, Platform, Shell};
use crate::config::process_env;
use crate::handlers::lcw_joiner::{JoinerRequest, JoinerResponse};

/// The entra-enrich function app.
pub struct EnrichFunctions {
    shell: Shell,
}

impl EnrichFunctions {
    /// Serves the app a [`Shell`] starts: `Shell::new(env, options)` reads the settings on first
    /// use, `Shell::started(app)` wraps an app already built (embedding and tests).
    pub fn new(shell: Shell) -> Self {
        Self { shell }
    }

    async fn lcw_joiner(&self, invocation: &Invocation) -> InvokeResponse {
        let started = tokio::time::Instant::now();
        let req = match invocation.request.http_trigger("req") {
            Ok(r) => r,
            Err(e) => {
                let body = json!({"error": "invalid_request", "message": e.to_string()});
                return http(JoinerResponse {
                    status: 400,
                    headers: Vec::new(),
                    body,
                });
            }
        };
        let request = JoinerRequest {
            authorization: req.header("authorization").map(str::to_string),
            body: req.body_json().map_err(|e| e.to_string()),
        };
        let answer = self
            .shell
            .joiner(request, JoinerGate::FunctionKey, started, None)
            .await;
        http(answer)
    }

    async fn timer(&self, job: Job) -> InvokeResponse {
        let app = match self.shell.app().await {
            Ok(app) => app,
            Err(e) => return timer_failure(job, &e),
        };
        match app.scheduled(job, app.config().time_budget).await {
            Ok(summary) => timer_success(summary),
            Err(e) => timer_failure(job, &e),
        }
    }
}

#[async_trait::async_trait]
impl FunctionApp for EnrichFunctions {
    async fn invoke(&self, function_name: &str, invocation: Invocation) -> InvokeResponse {
        match function_name {
            "health" => {
                let health = self.shell.health(Platform::AzureFunctions).await;
                let body = serde_json::to_value(&health).unwrap_or(Value::Null);
                InvokeResponse::http("res", HttpOutput::json(200, &body))
            }
            "lcw-joiner" => self.lcw_joiner(&invocation).await,
            other => match Job::from_name(other) {
                Some(job) => self.timer(job).await,
                None => InvokeResponse::new().with_log(format!("unknown function {other}")),
            },
        }
    }

    fn function_names(&self) -> Vec<String> {
        function_names().into_iter().map(str::to_string).collect()
    }
}

/// The HTTP output binding `res`.
fn http(answer: JoinerResponse) -> InvokeResponse {
    let mut out = HttpOutput::json(answer.status, &answer.body);
    for (k, v) in answer.headers {
        out = out.with_header(k, v);
    }
    InvokeResponse::http("res", out)
}

fn timer_success(summary: Value) -> InvokeResponse {
    let mut r = InvokeResponse::new();
    r.return_value = Some(summary);
    r
}

/// A timer failure is logged and returned; the next tick retries from the checkpoint.
fn timer_failure(job: Job, error: &AppError) -> InvokeResponse {
    tracing::error!(
        function = job.name(),
        kind = error.kind().name(),
        setting = error.setting().unwrap_or_default(),
        error = %error,
        "timer invocation failed; the next tick retries from the checkpoint"
    );
    let mut r = InvokeResponse::new();
    r.return_value = Some(json!({
        "error": error.to_string(),
        "kind": error.kind(),
        "setting": error.setting(),
    }));
    r
}

/// `entra-enrich serve`: bind first, then serve; the app starts on the first invocation.
pub async fn serve_from_env() -> Result<(), AppError> {
    let listener = bind_from_env().await.map_err(|e| {
        AppError::new(crate::app::ErrorKind::Settings, e.to_string())
            .with_setting("FUNCTIONS_CUSTOMHANDLER_PORT")
    })?;
    let _ = init_tracing(entra_core::pii::mask_emails_in);
    let app = Arc::new(EnrichFunctions::new(Shell::new(
        process_env(),
        AppOptions::default(),
    )));
    tracing::info!(address = ?listener.local_addr().ok(), "entra-enrich custom handler listening");
    serve(listener, app)
        .await
        .map_err(|e| AppError::new(crate::app::ErrorKind::Transient, e.to_string()))
}
