//! The Azure Functions custom handler: `entra-enrich serve`.
//!
//! The host starts the binary, polls `127.0.0.1:$FUNCTIONS_CUSTOMHANDLER_PORT` until it answers, then
//! forwards each invocation as `POST /{FunctionName}` with `{Data, Metadata}`
//! (<https://learn.microsoft.com/azure/azure-functions/functions-custom-handlers>). The port is bound
//! before anything slow: configuration, credential, clients and the caller validator are built on the
//! first invocation and shared afterwards.
//!
//! | function         | trigger                               | handler |
//! |------------------|---------------------------------------|---------|
//! | `lcw-joiner`     | HTTP POST (function key), via the LCW relay | [`handle_callout`] |
//! | `new-hire-watch` | timer `%NEW_HIRE_WATCH_SCHEDULE%`     | [`run_watch`] |
//! | `backfill`       | timer `%BACKFILL_SCHEDULE%`           | [`run_backfill`] with a time budget |
//! | `health`         | HTTP GET (function key)               | version, functions, config validity |

use std::sync::Arc;

use functions_custom_handler::{
    bind_from_env, init_tracing, serve, FunctionApp, HttpOutput, Invocation, InvokeResponse,
};
use serde_json::{json, Value};
use tokio::sync::OnceCell;

use crate::app::{build_context, build_validator};
use crate::config::{process_env, Config, Env};
use crate::handlers::backfill::{run_backfill, BackfillOptions, NoProgress};
use crate::handlers::lcw_joiner::{handle_callout_by, JoinerRequest, RETRY_AFTER_SECONDS};
use crate::handlers::watch::run_watch;
use crate::handlers::EnrichContext;
use entra_lcw::CallerValidator;

/// The function names, as the folders under `functions/` name them.
pub const FUNCTIONS: [&str; 4] = ["lcw-joiner", "new-hire-watch", "backfill", "health"];

/// Everything built on the first invocation.
pub struct Ready {
    pub config: Config,
    pub ctx: EnrichContext,
    pub validator: Option<CallerValidator>,
}

/// The entra-enrich function app.
pub struct EnrichFunctions {
    env: Env,
    ready: OnceCell<Result<Arc<Ready>, String>>,
}

impl EnrichFunctions {
    /// An app that reads its settings from `env` on first use.
    pub fn from_env(env: Env) -> Self {
        Self {
            env,
            ready: OnceCell::new(),
        }
    }

    /// An app with already-built parts (embedding and tests).
    pub fn with_parts(ready: Ready) -> Self {
        Self {
            env: Env::new(),
            ready: OnceCell::new_with(Some(Ok(Arc::new(ready)))),
        }
    }

    async fn ready(&self) -> Result<Arc<Ready>, String> {
        self.ready
            .get_or_init(|| async {
                let config = Config::from_env(&self.env).map_err(|e| e.to_string())?;
                let ctx = build_context(&config).await.map_err(|e| e.to_string())?;
                let validator = build_validator(&config).map_err(|e| e.to_string())?;
                Ok(Arc::new(Ready {
                    config,
                    ctx,
                    validator,
                }))
            })
            .await
            .clone()
    }

    /// `ENRICH_JOINER_DEADLINE_SECONDS`, read before the clients exist (their start-up counts too).
    fn joiner_deadline(&self) -> std::time::Duration {
        match self.ready.get() {
            Some(Ok(ready)) => ready.ctx.joiner_deadline,
            _ => Config::from_env(&self.env)
                .map(|c| c.joiner_deadline)
                .unwrap_or(crate::config::DEFAULT_JOINER_DEADLINE),
        }
    }

    /// Version, functions and settings validity. Problems name the setting and the fix; values are
    /// never shown.
    fn health(&self) -> InvokeResponse {
        let ready = self.ready.get();
        let built = ready.and_then(|r| r.as_ref().ok()).map(|r| &r.config);
        let settings = crate::config::settings_report(built, &self.env);
        let init_error = ready
            .and_then(|r| r.as_ref().err())
            .map(|e| e.lines().next().unwrap_or_default().to_string());
        let body = json!({
            "name": "entra-enrich",
            "version": env!("CARGO_PKG_VERSION"),
            "functions": FUNCTIONS,
            "config": settings,
            "initialized": ready.is_some(),
            "initError": init_error,
        });
        InvokeResponse::http("res", HttpOutput::json(200, &body))
    }
}

#[async_trait::async_trait]
impl FunctionApp for EnrichFunctions {
    async fn invoke(&self, function_name: &str, invocation: Invocation) -> InvokeResponse {
        match function_name {
            "health" => self.health(),
            "lcw-joiner" => {
                let started = tokio::time::Instant::now();
                let req = match invocation.request.http_trigger("req") {
                    Ok(r) => r,
                    Err(e) => {
                        return InvokeResponse::http(
                            "res",
                            HttpOutput::json(
                                400,
                                &json!({"error": "invalid_request", "message": e.to_string()}),
                            ),
                        )
                    }
                };
                // The first invocation builds the clients (a Key Vault read): that counts too.
                let deadline = started + self.joiner_deadline();
                let Ok(ready) = tokio::time::timeout_at(deadline, self.ready()).await else {
                    return InvokeResponse::http(
                        "res",
                        HttpOutput::json(
                            503,
                            &json!({"error": "temporarily_unavailable", "message": "the function app did not start within the joiner deadline; the relay retries"}),
                        )
                        .with_header("Retry-After", RETRY_AFTER_SECONDS.to_string()),
                    );
                };
                let ready = match ready {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::error!(error = %e, "lcw-joiner cannot start: invalid settings");
                        return InvokeResponse::http(
                            "res",
                            HttpOutput::json(
                                500,
                                &json!({"error": "misconfigured", "message": "the function app's settings are invalid; see the health function"}),
                            ),
                        );
                    }
                };
                let request = JoinerRequest {
                    authorization: req.header("authorization").map(str::to_string),
                    body: req.body_json().map_err(|e| e.to_string()),
                };
                let answer =
                    handle_callout_by(&ready.ctx, ready.validator.as_ref(), request, deadline)
                        .await;
                let mut out = HttpOutput::json(answer.status, &answer.body);
                for (k, v) in answer.headers {
                    out = out.with_header(k, v);
                }
                InvokeResponse::http("res", out)
            }
            "new-hire-watch" => {
                let ready = match self.ready().await {
                    Ok(r) => r,
                    Err(e) => return timer_failure("new-hire-watch", &e),
                };
                match run_watch(&ready.ctx, ready.config.time_budget).await {
                    Ok(summary) => {
                        timer_success(serde_json::to_value(&summary).unwrap_or(Value::Null))
                    }
                    Err(e) => timer_failure("new-hire-watch", &e.to_string()),
                }
            }
            "backfill" => {
                let ready = match self.ready().await {
                    Ok(r) => r,
                    Err(e) => return timer_failure("backfill", &e),
                };
                let options = BackfillOptions {
                    time_budget: Some(ready.config.time_budget),
                    ..BackfillOptions::default()
                };
                match run_backfill(&ready.ctx, &options, &NoProgress).await {
                    Ok(summary) => {
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
                        timer_success(serde_json::to_value(&summary).unwrap_or(Value::Null))
                    }
                    Err(e) => timer_failure("backfill", &e.to_string()),
                }
            }
            other => InvokeResponse::new().with_log(format!("unknown function {other}")),
        }
    }

    fn function_names(&self) -> Vec<String> {
        FUNCTIONS.iter().map(|s| s.to_string()).collect()
    }
}

fn timer_success(summary: Value) -> InvokeResponse {
    let mut r = InvokeResponse::new();
    r.return_value = Some(summary);
    r
}

fn timer_failure(function: &str, error: &str) -> InvokeResponse {
    tracing::error!(
        function,
        error,
        "timer invocation failed; the next tick retries from the checkpoint"
    );
    let mut r = InvokeResponse::new();
    r.return_value = Some(json!({"error": entra_core::pii::mask_emails_in(error)}));
    r
}

/// `entra-enrich serve`: bind first, then serve; the app initialises on the first invocation.
pub async fn serve_from_env() -> Result<(), String> {
    let listener = bind_from_env().await.map_err(|e| e.to_string())?;
    let _ = init_tracing(entra_core::pii::mask_emails_in);
    let app = Arc::new(EnrichFunctions::from_env(process_env()));
    tracing::info!(address = ?listener.local_addr().ok(), "entra-enrich custom handler listening");
    serve(listener, app).await.map_err(|e| e.to_string())
}
