//! Starts the [`App`] on first use, for the adapters that live across invocations (an Azure Functions
//! worker, a Lambda execution environment). The port is bound and the runtime polled before anything
//! slow; the settings, credential (maybe a Key Vault read) and clients are built by the first
//! invocation that needs them and shared afterwards.
//!
//! A failed start is not cached for the life of the process: it is remembered for
//! [`AppOptions::start_retry_floor`] (so a burst of invocations against a vault that is down does not
//! hammer it), and the first invocation after that tries again. Health reports the failure meanwhile.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use serde_json::{json, Value};
use tokio::sync::OnceCell;
use tokio::time::Instant;

use super::JoinerGate;
use super::{function_names, http_routes, job_names, App, AppError, AppOptions, ErrorKind};
use crate::config::{settings_report, Config, Env, DEFAULT_JOINER_DEADLINE};
use crate::handlers::lcw_joiner::{JoinerRequest, JoinerResponse, RETRY_AFTER_SECONDS};

/// Which platform answers; health names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Platform {
    AzureFunctions,
    AwsLambda,
}

impl Platform {
    fn name(self) -> &'static str {
        match self {
            Platform::AzureFunctions => "azure-functions",
            Platform::AwsLambda => "aws-lambda",
        }
    }
}

/// The health answer: version, functions, settings validity and whether the app has started.
/// Problems name the setting and the fix; values are never shown.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Health {
    pub name: &'static str,
    pub version: &'static str,
    pub platform: &'static str,
    pub functions: Vec<&'static str>,
    pub routes: Vec<String>,
    pub jobs: Vec<&'static str>,
    pub config: Value,
    pub initialized: bool,
    /// The last start failure (first line, emails masked), while it is not yet retried.
    pub init_error: Option<String>,
    pub init_error_kind: Option<ErrorKind>,
    /// Doctor's cheap tenant checks (permissions, Email OTP, policy migration), cached; `null`
    /// before the app has started, or with `ENRICH_HEALTH_CHECKS_SECONDS=0`.
    pub tenant_checks: Option<super::Readiness>,
}

struct StartFailure {
    at: Instant,
    error: AppError,
}

/// The lazily started app.
pub struct Shell {
    env: Env,
    options: AppOptions,
    app: OnceCell<Arc<App>>,
    failure: Mutex<Option<StartFailure>>,
}

impl Shell {
    /// A shell that starts the app from `env` on first use.
    pub fn new(env: Env, options: AppOptions) -> Self {
        Self {
            env,
            options,
            app: OnceCell::new(),
            failure: Mutex::new(None),
        }
    }

    /// A shell around an app that is already started (embedding and tests).
    pub fn started(app: App) -> Self {
        Self {
            env: Env::new(),
            options: AppOptions::default(),
            app: OnceCell::new_with(Some(Arc::new(app))),
            failure: Mutex::new(None),
        }
    }

    /// The app, started now if it has not been (or if its last failed start is older than the
    /// retry floor).
    pub async fn app(&self) -> Result<Arc<App>, AppError> {
        if let Some(app) = self.app.get() {
            return Ok(app.clone());
        }
        self.app
            .get_or_try_init(|| self.start())
            .await
            .map(Arc::clone)
    }

    async fn start(&self) -> Result<Arc<App>, AppError> {
        if let Some(error) = self.recent_failure() {
            return Err(error);
        }
        match App::start(&self.env, &self.options).await {
            Ok(app) => {
                self.set_failure(None);
                tracing::info!("entra-enrich started");
                Ok(Arc::new(app))
            }
            Err(error) => {
                tracing::error!(
                    kind = error.kind().name(),
                    setting = error.setting().unwrap_or_default(),
                    error = %error,
                    retry_after_seconds = self.options.start_retry_floor.as_secs(),
                    "entra-enrich cannot start; a later invocation tries again"
                );
                self.set_failure(Some(error.clone()));
                Err(error)
            }
        }
    }

    fn recent_failure(&self) -> Option<AppError> {
        let failure = self.failure.lock().ok()?;
        let failure = failure.as_ref()?;
        (failure.at.elapsed() < self.options.start_retry_floor).then(|| failure.error.clone())
    }

    fn set_failure(&self, error: Option<AppError>) {
        if let Ok(mut slot) = self.failure.lock() {
            *slot = error.map(|error| StartFailure {
                at: Instant::now(),
                error,
            });
        }
    }

    /// `ENRICH_JOINER_DEADLINE_SECONDS`, known before the clients exist (their start counts too).
    pub fn joiner_deadline(&self) -> Duration {
        match self.app.get() {
            Some(app) => app.context().joiner_deadline,
            None => Config::from_env(&self.env)
                .map(|c| c.joiner_deadline)
                .unwrap_or(DEFAULT_JOINER_DEADLINE),
        }
    }

    /// lcw-joiner through the shell: the start counts against the deadline, which is the joiner
    /// deadline from `started`, or `platform_left` (the platform's own deadline) when that is sooner.
    pub async fn joiner(
        &self,
        request: JoinerRequest,
        gate: JoinerGate,
        started: Instant,
        platform_left: Option<Duration>,
    ) -> JoinerResponse {
        let allowed = platform_left.map_or(self.joiner_deadline(), |left| {
            left.min(self.joiner_deadline())
        });
        let deadline = started + allowed;
        match tokio::time::timeout_at(deadline, self.app()).await {
            Err(_) => unavailable("the app did not start within the joiner deadline"),
            Ok(Err(error)) => start_failed(&error),
            Ok(Ok(app)) => app.joiner(request, gate, deadline).await,
        }
    }

    /// The health answer. It never starts the app, and waits for Graph at most
    /// [`READINESS_WAIT`](super::READINESS_WAIT) (the tenant checks, once the app runs).
    pub async fn health(&self, platform: Platform) -> Health {
        let app = self.app.get();
        let tenant_checks = match app {
            Some(app) => app.tenant_checks().await,
            None => None,
        };
        let failure = self.failure.lock().ok().and_then(|f| {
            f.as_ref()
                .map(|f| (f.error.summary().to_string(), f.error.kind()))
        });
        Health {
            name: "entra-enrich",
            version: env!("CARGO_PKG_VERSION"),
            platform: platform.name(),
            functions: function_names(),
            routes: http_routes(),
            jobs: job_names(),
            config: settings_report(app.map(|a| a.config()), &self.env),
            initialized: app.is_some(),
            init_error_kind: failure.as_ref().map(|f| f.1),
            init_error: failure.map(|f| f.0),
            tenant_checks,
        }
    }
}

/// 503 with `Retry-After`: the relay tries again.
fn unavailable(why: &str) -> JoinerResponse {
    JoinerResponse {
        status: 503,
        headers: vec![("Retry-After".into(), RETRY_AFTER_SECONDS.to_string())],
        body: json!({"error": "temporarily_unavailable", "message": format!("{why}; the relay retries")}),
    }
}

/// A failed start: 503 when a dependency was down (the next attempt may work), 500 when a setting
/// must be fixed first. The answer names the setting, never its value.
fn start_failed(error: &AppError) -> JoinerResponse {
    if error.is_transient() {
        return unavailable("the app could not start (a dependency did not answer)");
    }
    JoinerResponse {
        status: 500,
        headers: Vec::new(),
        body: json!({
            "error": "misconfigured",
            "message": "the app's settings are invalid; see the health function",
            "setting": error.setting(),
        }),
    }
}
