//! Rollback: restore the before-values a run wrote, user by user, from the run's audit log.
//!
//! A user is restored only when its current value is still the run's after-value; if someone (or a later
//! run) changed it since, the user is refused and reported, never overwritten. The rollback is itself a
//! run, with its own audit log, so it can be rolled back too.

use std::collections::BTreeMap;

use entra_core::{plan_rollback, RecordedValues, UserRecord};
use serde::Serialize;
use serde_json::Value;

use super::apply::outcome_for_write_error;
use super::audit::{read_run, AuditError, AuditLog, AuditRecord};
use super::{EnrichContext, RunId};

/// What happened to one user of the rolled-back run.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RollbackLine {
    pub user_id: String,
    /// `restored`, `would-restore`, `already-restored`, `partly-restored` (nothing restorable),
    /// `refused`, `missing`, `denied`, `failed`.
    pub result: &'static str,
    pub properties: Vec<String>,
    pub detail: Option<String>,
}

/// The rollback of one run.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RollbackSummary {
    pub rolled_back_run: RunId,
    /// The rollback's own run id (its audit log), absent in a dry run.
    pub run_id: Option<RunId>,
    pub dry_run: bool,
    pub users: usize,
    pub restored: usize,
    pub refused: usize,
    pub lines: Vec<RollbackLine>,
}

#[derive(Debug, thiserror::Error)]
pub enum RollbackError {
    #[error(transparent)]
    Audit(#[from] AuditError),
    #[error("run {0} has no audit records: nothing to roll back (check the run id with `entra-enrich runs`)")]
    EmptyRun(RunId),
}

/// Groups a run's records per user into before/after values (first before, last after).
fn per_user(records: Vec<AuditRecord>) -> BTreeMap<String, (RecordedValues, RecordedValues)> {
    let mut out: BTreeMap<String, (RecordedValues, RecordedValues)> = BTreeMap::new();
    for r in records {
        let entry = out.entry(r.user_id.clone()).or_default();
        match r.property.as_str() {
            "otherMails" => {
                if entry.0.other_mails.is_none() {
                    entry.0.other_mails = Some(strings(&r.before));
                }
                entry.1.other_mails = Some(strings(&r.after));
            }
            "usageLocation" => {
                if entry.0.usage_location.is_none() {
                    entry.0.usage_location = Some(r.before.as_str().map(str::to_string));
                }
                entry.1.usage_location = Some(r.after.as_str().map(str::to_string));
            }
            other => tracing::warn!(
                property = other,
                "audit record for a property entra-enrich never writes; ignored"
            ),
        }
    }
    out
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Rolls back `run`.
pub async fn run_rollback(
    ctx: &EnrichContext,
    run: &RunId,
) -> Result<RollbackSummary, RollbackError> {
    let records = read_run(ctx.state.as_ref(), run).await?;
    if records.is_empty() {
        return Err(RollbackError::EmptyRun(run.clone()));
    }
    let users = per_user(records);
    let own_run = RunId::new();
    let audit = AuditLog::new(ctx.state.clone(), own_run.clone(), "rollback");
    let select = [
        "id",
        "userPrincipalName",
        "employeeId",
        "otherMails",
        "usageLocation",
    ];
    let mut lines = Vec::with_capacity(users.len());
    for (user_id, (before, after)) in &users {
        let mut line = RollbackLine {
            user_id: user_id.clone(),
            result: "failed",
            properties: Vec::new(),
            detail: None,
        };
        let current = match ctx.graph.get_user(user_id, &select).await {
            Ok(Some(json)) => match UserRecord::from_json(json) {
                Ok(u) => u,
                Err(_) => {
                    line.detail = Some("Graph returned a user without an id".into());
                    lines.push(line);
                    continue;
                }
            },
            Ok(None) => {
                line.result = "missing";
                line.detail = Some("the user no longer exists".into());
                lines.push(line);
                continue;
            }
            Err(e) => {
                line.detail = Some(e.to_string());
                lines.push(line);
                continue;
            }
        };
        // `usageLocation` is "Not nullable" (https://learn.microsoft.com/graph/api/resources/user):
        // a value the run set where there was none cannot be cleared again. Restore the rest and say so.
        let mut before = before.clone();
        let mut after = after.clone();
        let mut notes = Vec::new();
        if matches!(before.usage_location, Some(None)) {
            before.usage_location = None;
            after.usage_location = None;
            notes.push("usageLocation was unset before the run and Graph cannot clear it (not nullable): left as the run wrote it".to_string());
        }
        line.detail = (!notes.is_empty()).then(|| notes.join("; "));
        match plan_rollback(&current, &before, &after) {
            Err(refusal) => {
                line.result = "refused";
                line.detail = Some(refusal.to_string());
            }
            Ok(None) if notes.is_empty() => {
                line.result = "already-restored";
            }
            Ok(None) => {
                line.result = "partly-restored";
            }
            Ok(Some(patch)) => {
                line.properties = patch
                    .property_names()
                    .iter()
                    .map(|p| p.to_string())
                    .collect();
                if ctx.dry_run {
                    line.result = "would-restore";
                } else {
                    match ctx.graph.patch_user(user_id, &patch).await {
                        Ok(()) => {
                            line.result = "restored";
                            if let Err(e) = audit.record(&current, &patch).await {
                                tracing::error!(error = %e, "rollback write succeeded but its audit record could not be stored");
                            }
                        }
                        Err(e) => {
                            let o = outcome_for_write_error(&e);
                            line.result = if matches!(o, entra_core::Outcome::Denied { .. }) {
                                "denied"
                            } else {
                                "failed"
                            };
                            line.detail = Some(o.describe());
                        }
                    }
                }
            }
        }
        lines.push(line);
    }
    let restored = lines.iter().filter(|l| l.result == "restored").count();
    let refused = lines.iter().filter(|l| l.result == "refused").count();
    Ok(RollbackSummary {
        rolled_back_run: run.clone(),
        run_id: (!ctx.dry_run).then_some(own_run),
        dry_run: ctx.dry_run,
        users: users.len(),
        restored,
        refused,
        lines,
    })
}
