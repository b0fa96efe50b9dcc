//! The SSPR "Authentication email" (the email authentication method), written beside `otherMails` when
//! `ENRICH_SSPR_EMAIL_TARGET` asks for it, with the same rules: only the address the planner vetted
//! ([`entra_core::Decision::sspr_email`]), under the user's claim, audited (`"property":
//! "authenticationEmail"`), undone by rollback, planned only in a dry run, through the write limiter.
//!
//! Idempotent and cheap: after a write, a marker `email-methods/<user id>/<fingerprint>` records a
//! SHA-256 of the address (never the address). When the marker already matches the wanted address,
//! nothing is read; otherwise the method is read (`GET …/emailMethods`) and planned by
//! [`entra_core::plan_email_method`]: created, replaced when we wrote the current one, or left alone
//! when the user registered another one (unless `ENRICH_SSPR_OVERWRITE_REGISTERED=true`).

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use entra_core::{
    address_fingerprint, plan_email_method, AlternateEmail, EmailMethodPlan, FieldIssue, Outcome,
    UserRecord,
};
use entra_graph::{GraphClient, GraphError};
use entra_state::{StateError, StateStore, WriteCondition};

use super::apply::{outcome_for_write_error, UserResult};
use super::audit::AuditLog;
use super::EnrichContext;

/// The audit and report name of the email authentication method.
pub const AUTHENTICATION_EMAIL: &str = "authenticationEmail";

const MARKERS: &str = "email-methods/";

/// What the method step did for one user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MethodStep {
    /// The method already holds the address.
    Unchanged,
    /// Created (`created`) or replaced.
    Written { created: bool },
    /// A dry run: it would be created or replaced.
    WouldWrite,
    /// The user registered another address; left alone.
    KeptRegistered,
    /// Graph refused (a privileged user without the role, a missing permission): the reason with the fix.
    Denied(String),
    /// Anything else; `transient` when a later run may succeed.
    Failed { reason: String, transient: bool },
}

/// Everything the method step needs, cheap to clone into a `$batch` task.
#[derive(Clone)]
pub struct MethodWriter {
    graph: GraphClient,
    state: Arc<dyn StateStore>,
    overwrite_registered: bool,
    dry_run: bool,
}

impl MethodWriter {
    pub fn new(ctx: &EnrichContext) -> Self {
        MethodWriter {
            graph: ctx.graph.clone(),
            state: ctx.state.clone(),
            overwrite_registered: ctx.policy.sspr_overwrite_registered,
            dry_run: ctx.dry_run,
        }
    }

    /// Brings `user`'s email method to `wanted`. `ours` is the marker's fingerprint when the caller
    /// already knows it (a backfill lists every marker once); `None` reads it.
    pub async fn ensure(
        &self,
        audit: &AuditLog,
        user: &UserRecord,
        wanted: &AlternateEmail,
        ours: Option<Option<String>>,
    ) -> MethodStep {
        let ours = match ours {
            Some(known) => known,
            None => match marker(self.state.as_ref(), user.id()).await {
                Ok(m) => m,
                Err(e) => return failed(format!("the method marker could not be read: {e}"), true),
            },
        };
        let fingerprint = address_fingerprint(wanted.as_str());
        if ours.as_deref() == Some(fingerprint.as_str()) {
            return MethodStep::Unchanged;
        }
        let current = match self.graph.email_method(user.id()).await {
            Ok(c) => c,
            Err(e) => return from_graph_error(&e),
        };
        let plan = plan_email_method(
            wanted,
            current.as_deref(),
            ours.as_deref(),
            self.overwrite_registered,
        );
        match plan {
            EmailMethodPlan::KeepRegistered => MethodStep::KeptRegistered,
            EmailMethodPlan::Unchanged => {
                // It holds the HR address already: remember it, so later runs skip the read.
                if !self.dry_run {
                    self.remember(user.id(), &fingerprint, audit).await;
                }
                MethodStep::Unchanged
            }
            _ if self.dry_run => MethodStep::WouldWrite,
            plan => self.write(audit, user, wanted, current, plan).await,
        }
    }

    async fn write(
        &self,
        audit: &AuditLog,
        user: &UserRecord,
        wanted: &AlternateEmail,
        current: Option<String>,
        plan: EmailMethodPlan,
    ) -> MethodStep {
        let exists = matches!(plan, EmailMethodPlan::Update { .. });
        if let Err(e) = self.graph.put_email_method(user.id(), wanted, exists).await {
            return from_graph_error(&e);
        }
        let fingerprint = address_fingerprint(wanted.as_str());
        if let Err(e) = audit
            .record_value(
                user,
                AUTHENTICATION_EMAIL,
                current.as_deref(),
                Some(wanted.as_str()),
            )
            .await
        {
            tracing::error!(user_id = %user.id(), error = %e, "method written but its audit record could not be stored");
        }
        self.remember(user.id(), &fingerprint, audit).await;
        MethodStep::Written { created: !exists }
    }

    /// Replaces the user's marker with `fingerprint`.
    async fn remember(&self, user_id: &str, fingerprint: &str, audit: &AuditLog) {
        if let Err(e) = save_marker(self.state.as_ref(), user_id, fingerprint, audit).await {
            // The method is right; without its marker the next run reads it once more.
            tracing::warn!(user_id = %user_id, error = %e, "the method marker could not be stored");
        }
    }
}

fn failed(reason: String, transient: bool) -> MethodStep {
    MethodStep::Failed { reason, transient }
}

fn from_graph_error(e: &GraphError) -> MethodStep {
    match outcome_for_write_error(e) {
        Outcome::Denied { .. } => MethodStep::Denied(format!(
            "Graph refused it ({e}); the app needs UserAuthenticationMethod.ReadWrite.All (infra/grant-graph-permissions.sh --email-method), and for admins the Privileged Authentication Administrator role"
        )),
        _ if e.status() == Some(403) => MethodStep::Denied(format!(
            "Graph refused it ({e}); grant UserAuthenticationMethod.ReadWrite.All: infra/grant-graph-permissions.sh --email-method"
        )),
        _ => failed(e.to_string(), e.is_transient()),
    }
}

fn marker_prefix(user_id: &str) -> String {
    format!("{MARKERS}{user_id}/")
}

/// The fingerprint of the address we last wrote to `user_id`'s method, if any.
pub async fn marker(state: &dyn StateStore, user_id: &str) -> Result<Option<String>, StateError> {
    let keys = state.list(&marker_prefix(user_id)).await?;
    Ok(keys
        .last()
        .and_then(|k| k.rsplit('/').next())
        .map(str::to_string))
}

/// Every marker: user id → fingerprint (one listing, for a backfill).
pub async fn all_markers(state: &dyn StateStore) -> Result<HashMap<String, String>, StateError> {
    let keys = state.list(MARKERS).await?;
    Ok(keys
        .iter()
        .filter_map(|k| {
            let mut parts = k.trim_start_matches(MARKERS).split('/');
            Some((parts.next()?.to_string(), parts.next()?.to_string()))
        })
        .collect())
}

async fn save_marker(
    state: &dyn StateStore,
    user_id: &str,
    fingerprint: &str,
    audit: &AuditLog,
) -> Result<(), StateError> {
    let prefix = marker_prefix(user_id);
    let key = format!("{prefix}{fingerprint}");
    let body =
        serde_json::json!({"runId": audit.run_id().as_str(), "time": super::audit::now_rfc3339()});
    state
        .put(&key, Bytes::from(body.to_string()), WriteCondition::Any)
        .await?;
    for old in state.list(&prefix).await? {
        if old != key {
            state.delete(&old).await?;
        }
    }
    Ok(())
}

/// Forgets the marker (a rollback restored another address or removed the method).
pub async fn forget_marker(state: &dyn StateStore, user_id: &str) -> Result<(), StateError> {
    for key in state.list(&marker_prefix(user_id)).await? {
        state.delete(&key).await?;
    }
    Ok(())
}

/// `result` with the method step folded in: a write adds `authenticationEmail` to the written
/// properties (an unchanged user becomes updated), anything left undone becomes an issue.
pub fn with_method_step(mut result: UserResult, step: MethodStep) -> UserResult {
    // Graph's messages may quote an address: masked, like every reason in a report.
    let issue = |reason: String| FieldIssue {
        field: AUTHENTICATION_EMAIL,
        reason: entra_core::pii::mask_emails_in(&reason),
    };
    match step {
        MethodStep::Unchanged => {}
        MethodStep::Written { .. } | MethodStep::WouldWrite => {
            result.dry_run |= step == MethodStep::WouldWrite;
            result.outcome = match std::mem::replace(&mut result.outcome, Outcome::Unchanged) {
                Outcome::Updated { mut properties } => {
                    properties.push(AUTHENTICATION_EMAIL);
                    Outcome::Updated { properties }
                }
                other => {
                    // A field the planner left out (an invalid country beside a valid email).
                    if let Outcome::InvalidValue { field, .. } | Outcome::SourceValueMissing { field } = &other {
                        result.issues.push(FieldIssue {
                            field,
                            reason: other.describe(),
                        });
                    }
                    Outcome::Updated {
                        properties: vec![AUTHENTICATION_EMAIL],
                    }
                }
            };
        }
        MethodStep::KeptRegistered => result.issues.push(issue(
            "holds an address entra-enrich did not write (the user registered it, or an admin set it): left alone; ENRICH_SSPR_OVERWRITE_REGISTERED=true replaces it".into(),
        )),
        MethodStep::Denied(reason) => result.issues.push(issue(reason)),
        MethodStep::Failed { reason, transient } => {
            let later = if transient { " (a later run retries)" } else { "" };
            result.issues.push(issue(format!("not written: {reason}{later}")));
        }
    }
    result
}
