//! One app behind three doors. [`App`] is built once from the settings; it owns the clients, the
//! caller validator and the state store, and exposes the jobs as typed calls. [`Shell`] starts it
//! lazily for the long-running adapters (Azure Functions, Lambda), retries a failed start on a later
//! invocation (not sooner than [`START_RETRY_FLOOR`]) and answers health. The adapters only translate
//! their transport to and from these calls; each maps [`AppError`] once.

mod build;
mod error;
mod functions;
mod hr;
mod readiness;
mod shell;

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::time::Instant;

pub use build::{
    build_context, build_credential, build_graph, build_state, build_validator, context_from_parts,
    AppOptions, KEY_VAULT_TIMEOUT, START_RETRY_FLOOR, WORKDAY_TIMEOUT,
};
pub use error::{AppError, ErrorKind};
pub use functions::{
    function_names, http_method, http_routes, job_names, Function, Job, Trigger, FUNCTIONS,
};
pub use hr::{build_hr_source, build_writeback};
pub use readiness::{Readiness, READINESS_WAIT};
pub use shell::{Health, Platform, Shell};

use crate::config::{Config, Env};
use crate::handlers::apply::UserResult;
use crate::handlers::audit::{read_run, AuditLog, AuditRecord};
use crate::handlers::backfill::{run_backfill, BackfillOptions, BackfillSummary, Progress};
use crate::handlers::claim::Claims;
use crate::handlers::context::HrSource;
use crate::handlers::doctor::{run_doctor, DoctorReport, Needs};
use crate::handlers::doctor_user::{run_doctor_user, UserDoctorOptions};
use crate::handlers::enrich::{enrich_user, UserRef, WhenBusy};
use crate::handlers::lcw_joiner::{handle_callout_by, JoinerRequest, JoinerResponse};
use crate::handlers::rollback::{run_rollback, RollbackSummary};
use crate::handlers::watch::{run_watch, WatchSummary};
use crate::handlers::{EnrichContext, RunId};
use entra_lcw::CallerValidator;

/// What guards lcw-joiner besides the bearer-token check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinerGate {
    /// The platform checks a key first (an Azure Functions function key); the bearer check is
    /// recommended but optional.
    FunctionKey,
    /// Nothing else (a Lambda Function URL with auth type `NONE`): without the caller check the
    /// joiner refuses to run (fail closed).
    BearerOnly,
}

/// The started app.
pub struct App {
    config: Config,
    ctx: EnrichContext,
    validator: Option<CallerValidator>,
    readiness: Arc<readiness::ReadinessCache>,
}

impl App {
    /// Reads and validates the settings, then builds the clients (a Key Vault read, when the
    /// client secret is kept there).
    pub async fn start(env: &Env, options: &AppOptions) -> Result<App, AppError> {
        let config = Config::from_env(env)?;
        let ctx = build_context(&config, env, options).await?;
        let validator = build_validator(&config)?;
        Ok(App::from_parts(config, ctx, validator))
    }

    /// An app from already-built parts (embedding and tests).
    pub fn from_parts(
        config: Config,
        ctx: EnrichContext,
        validator: Option<CallerValidator>,
    ) -> App {
        App {
            config,
            ctx,
            validator,
            readiness: Arc::default(),
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn context(&self) -> &EnrichContext {
        &self.ctx
    }

    /// The same app, planning and reporting only (`--dry-run`).
    pub fn dry_run(mut self, dry_run: bool) -> App {
        self.ctx.dry_run |= dry_run;
        self
    }

    /// The same app, with HR values from `hr` (`--source`).
    pub fn with_hr(mut self, hr: HrSource) -> App {
        self.ctx.hr = hr;
        self
    }

    /// lcw-joiner: enrich the callout's subject, then resume the workflow; answers by `deadline`.
    pub async fn joiner(
        &self,
        request: JoinerRequest,
        gate: JoinerGate,
        deadline: Instant,
    ) -> JoinerResponse {
        if gate == JoinerGate::BearerOnly && self.validator.is_none() {
            tracing::error!("lcw-joiner refused: the caller check is not configured");
            return JoinerResponse {
                status: 500,
                headers: Vec::new(),
                body: json!({
                    "error": "caller_check_required",
                    "message": "behind a Function URL the bearer-token check is the only gate: set ENRICH_TENANT_ID, ENRICH_AUDIENCE and ENRICH_ALLOWED_CALLERS",
                    "setting": "ENRICH_TENANT_ID",
                }),
            };
        }
        handle_callout_by(&self.ctx, self.validator.as_ref(), request, deadline).await
    }

    /// new-hire-watch: one Graph `users/delta` round within `budget`.
    pub async fn watch(&self, budget: Duration) -> Result<WatchSummary, AppError> {
        Ok(run_watch(&self.ctx, budget).await?)
    }

    /// backfill: reconcile every in-scope user.
    pub async fn backfill(
        &self,
        options: &BackfillOptions,
        progress: &dyn Progress,
    ) -> Result<BackfillSummary, AppError> {
        // A backfill writes Workday back only when asked (`--writeback`).
        let ctx = match (options.writeback, &self.ctx.writeback) {
            (false, _) => self.ctx.without_writeback(),
            (true, Some(_)) => self.ctx.clone(),
            (true, None) => {
                let message = "--writeback needs ENRICH_WORKDAY_WRITEBACK (email or email,username), ENRICH_WORKDAY_WWS_URL and the integration user's credentials";
                return Err(AppError::new(ErrorKind::Settings, message)
                    .with_setting("ENRICH_WORKDAY_WRITEBACK"));
            }
        };
        Ok(run_backfill(&ctx, options, progress).await?)
    }

    /// enrich: one user, claimed first; `when_busy` says whether to wait for a handler writing it.
    /// Returns the result and the run id its audit records (if any) are filed under.
    pub async fn enrich(
        &self,
        target: &UserRef,
        when_busy: WhenBusy,
    ) -> Result<(UserResult, RunId), AppError> {
        let run_id = RunId::new();
        let claims = Claims::new(self.ctx.state.clone(), "enrich", run_id.as_str());
        let audit = AuditLog::new(self.ctx.state.clone(), run_id.clone(), "enrich");
        // One user by hand is not a joiner: Workday is not written back.
        let ctx = self.ctx.without_writeback();
        let result = enrich_user(&ctx, &audit, &claims, target, when_busy).await?;
        Ok((result, run_id))
    }

    /// The runs that wrote something, oldest first (their audit logs' names).
    pub async fn runs(&self) -> Result<Vec<String>, AppError> {
        let keys = self.ctx.state.list("audit/").await?;
        let ids = keys.iter().map(|k| {
            let id = k.trim_start_matches("audit/").trim_end_matches(".jsonl");
            id.to_string()
        });
        let mut ids: Vec<String> = ids.collect();
        // Run ids start with their UTC start time, so this is chronological.
        ids.sort();
        Ok(ids)
    }

    /// One run's audit records: what it wrote, with the before-values an undo needs.
    pub async fn audit(&self, run: &RunId) -> Result<Vec<AuditRecord>, AppError> {
        let records = read_run(self.ctx.state.as_ref(), run).await?;
        if records.is_empty() {
            let message = format!("run {run} has no audit records (see `entra-enrich runs`)");
            return Err(AppError::new(ErrorKind::Input, message).with_setting("--run"));
        }
        Ok(records)
    }

    /// What the settings make the app write, which decides the permissions it needs.
    fn needs(&self) -> Needs {
        Needs {
            usage_location: self.config.usage_location_source.is_some(),
            other_mails: self.config.sspr_target.writes_other_mails(),
            email_method: self.config.sspr_target.writes_method(),
        }
    }

    /// doctor: will a new hire's day-one reset by email work in this tenant?
    pub async fn doctor(&self) -> DoctorReport {
        run_doctor(&self.ctx, self.needs()).await
    }

    /// Doctor's cheap tenant checks, as health shows them: cached for
    /// `ENRICH_HEALTH_CHECKS_SECONDS`, refreshed in the background, waited for at most
    /// [`READINESS_WAIT`]. `None` when the setting is 0.
    pub async fn tenant_checks(&self) -> Option<Readiness> {
        let ttl = self.config.health_checks_ttl;
        if ttl.is_zero() {
            return None;
        }
        Some(self.readiness.view(&self.ctx, self.needs(), ttl).await)
    }

    /// doctor --user: one user's side of day-one reset.
    pub async fn doctor_user(&self, id_or_upn: &str, show_pii: bool) -> DoctorReport {
        run_doctor_user(&self.ctx, id_or_upn, UserDoctorOptions { show_pii }).await
    }

    /// rollback: restore the before-values written by `run`.
    pub async fn rollback(&self, run: &RunId) -> Result<RollbackSummary, AppError> {
        Ok(run_rollback(&self.ctx, run).await?)
    }

    /// A scheduled job within `budget`, as the timers run it: the backfill also stores its report
    /// (`reports/<run id>.json`, emails masked) in the state store. Returns the job's summary.
    pub async fn scheduled(&self, job: Job, budget: Duration) -> Result<Value, AppError> {
        let failed = |e: AppError| e.context(job.name());
        let summary = match job {
            Job::NewHireWatch => to_json(&self.watch(budget).await.map_err(failed)?),
            Job::Backfill => {
                let options = BackfillOptions {
                    time_budget: Some(budget),
                    ..BackfillOptions::default()
                };
                let summary = self
                    .backfill(&options, &crate::handlers::backfill::NoProgress)
                    .await
                    .map_err(failed)?;
                self.store_report(&summary).await;
                to_json(&summary)
            }
        };
        Ok(summary)
    }

    async fn store_report(&self, summary: &BackfillSummary) {
        let key = format!("reports/{}.json", summary.run_id);
        let bytes = crate::handlers::report::render_json(&summary.report, false);
        let stored = self
            .ctx
            .state
            .put(&key, bytes.into(), entra_state::WriteCondition::Any)
            .await;
        if let Err(e) = stored {
            tracing::warn!(error = %e, "could not store the backfill report");
        }
        tracing::info!(
            run_id = %summary.run_id,
            writes = summary.writes,
            deferred = summary.deferred,
            complete = summary.complete,
            report = %key,
            "backfill invocation done"
        );
    }
}

fn to_json<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}
