//! From a decision to a result: performs the write (unless dry-run), records the audit line, and maps
//! Graph's answer onto the provisioning-log vocabulary.

use entra_core::{Decision, FieldIssue, Outcome, UserPatch, UserRecord};
use entra_graph::GraphError;
use serde::Serialize;

use super::audit::AuditLog;
use super::email_method::{with_method_step, MethodWriter};
use super::EnrichContext;

/// The report code of a write with warnings (see [`UserResult::report_code`]).
pub const UPDATED_WITH_WARNINGS: &str = "UpdatedWithWarnings";
/// The report code of a user left unchanged with warnings (an authentication email left alone).
pub const UNCHANGED_WITH_WARNINGS: &str = "NoChangeRequiredWithWarnings";

/// What happened to one user, ready for a report row or a handler's answer. Holds no personal email.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UserResult {
    pub user_id: String,
    pub user_principal_name: Option<String>,
    pub employee_id: Option<String>,
    pub outcome: Outcome,
    /// Fields skipped while another field was written (e.g. an invalid country next to a valid email).
    pub issues: Vec<FieldIssue>,
    /// True when the write was only planned (dry run).
    pub dry_run: bool,
}

impl UserResult {
    /// A result that involved no write.
    pub fn without_write(user: &UserRecord, outcome: Outcome, issues: Vec<FieldIssue>) -> Self {
        Self {
            user_id: user.id().to_string(),
            user_principal_name: user.user_principal_name().map(str::to_string),
            employee_id: user.employee_id().map(str::to_string),
            outcome,
            issues,
            dry_run: false,
        }
    }

    /// A result for a user known only by id (left to another handler before it was read).
    pub fn for_id(user_id: &str, outcome: Outcome) -> Self {
        Self {
            user_id: user_id.to_string(),
            user_principal_name: None,
            employee_id: None,
            outcome,
            issues: Vec::new(),
            dry_run: false,
        }
    }

    /// The code the outcome table, the reports and the summary count by: the outcome's own code,
    /// except that a write that left a field out (an invalid or missing value next to a valid one, a
    /// dropped existing value, a lost audit line) is `UpdatedWithWarnings`, so it is counted apart
    /// from clean updates and appears, with its warnings, in the report.
    pub fn report_code(&self) -> &'static str {
        match &self.outcome {
            Outcome::Updated { .. } if !self.issues.is_empty() => UPDATED_WITH_WARNINGS,
            Outcome::Unchanged if !self.issues.is_empty() => UNCHANGED_WITH_WARNINGS,
            o => o.code(),
        }
    }

    /// True when the user was written, or would have been in a dry run.
    pub fn is_write(&self) -> bool {
        matches!(self.outcome, Outcome::Updated { .. })
    }
}

/// Maps a failed write onto an outcome: a privileged target is `Denied` with the fix; everything else
/// is `Failed`, flagged transient when a later run may succeed.
pub fn outcome_for_write_error(error: &GraphError) -> Outcome {
    if error.is_privileged_denied() {
        Outcome::denied_privileged()
    } else {
        Outcome::Failed {
            reason: error.to_string(),
            transient: error.is_transient(),
        }
    }
}

/// Performs `decision` for `user`: one PATCH when the plan has one, then the audit record; then the
/// email authentication method when the policy writes it and the PATCH did not fail. Call it holding
/// the user's claim.
pub async fn apply_decision(
    ctx: &EnrichContext,
    audit: &AuditLog,
    user: &UserRecord,
    decision: Decision,
) -> UserResult {
    let sspr_email = decision.sspr_email.clone();
    let result = apply_patch(ctx, audit, user, decision).await;
    match sspr_email {
        Some(email)
            if !matches!(
                result.outcome,
                Outcome::Denied { .. } | Outcome::Failed { .. }
            ) =>
        {
            let step = MethodWriter::new(ctx)
                .ensure(audit, user, &email, None)
                .await;
            with_method_step(result, step)
        }
        _ => result,
    }
}

/// The PATCH part of [`apply_decision`].
async fn apply_patch(
    ctx: &EnrichContext,
    audit: &AuditLog,
    user: &UserRecord,
    decision: Decision,
) -> UserResult {
    let Decision {
        outcome,
        patch,
        issues,
        ..
    } = decision;
    let Some(patch) = patch else {
        return UserResult::without_write(user, outcome, issues);
    };
    if ctx.dry_run {
        let mut r = UserResult::without_write(user, outcome, issues);
        r.dry_run = true;
        return r;
    }
    let result = ctx.graph.patch_user(user.id(), &patch).await;
    finish_write(audit, user, &patch, outcome, issues, result).await
}

/// Turns the answer to a PATCH into a result, and records the audit line when Graph accepted it.
pub async fn finish_write(
    audit: &AuditLog,
    user: &UserRecord,
    patch: &UserPatch,
    planned: Outcome,
    mut issues: Vec<FieldIssue>,
    result: Result<(), GraphError>,
) -> UserResult {
    match result {
        Ok(()) => {
            if let Err(e) = audit.record(user, patch).await {
                // The write happened; losing its audit line must be loud, but it is not a failed write.
                tracing::error!(user_id = %user.id(), error = %e, "write succeeded but its audit record could not be stored");
                issues.push(FieldIssue {
                    field: "audit",
                    reason: format!("the audit record could not be stored: {e}"),
                });
            }
            UserResult::without_write(user, planned, issues)
        }
        Err(e) => {
            let outcome = outcome_for_write_error(&e);
            if matches!(outcome, Outcome::Denied { .. }) {
                // Expected for privileged admins; reported with the fix, not worth a warning each.
                tracing::debug!(user_id = %user.id(), error = %e, "write denied");
            } else {
                tracing::warn!(user_id = %user.id(), code = outcome.code(), error = %e, "write not applied");
            }
            UserResult::without_write(user, outcome, issues)
        }
    }
}
