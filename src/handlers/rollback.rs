//! Rollback: restore the before-values a run wrote, user by user, from the run's audit log.
//!
//! A user is restored only when its current value is still the run's after-value; if someone (or a later
//! run) changed it since, the user is refused and reported, never overwritten. The rollback is itself a
//! run, with its own audit log, so it can be rolled back too.

use std::collections::{BTreeMap, BTreeSet};

use entra_core::{plan_rollback, RecordedValues, UserRecord};
use serde::Serialize;
use serde_json::Value;

use super::apply::outcome_for_write_error;
use super::audit::{read_run, AuditError, AuditLog, AuditRecord};
use super::claim::Claims;
use super::email_method::{forget_marker, AUTHENTICATION_EMAIL};
use super::enrich::{claim_user, WhenBusy};
use super::writeback;
use super::{EnrichContext, RunId};

/// What happened to one user of the rolled-back run.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RollbackLine {
    pub user_id: String,
    /// `restored`, `would-restore`, `already-restored`, `partly-restored` (nothing restorable),
    /// `refused`, `busy` (another handler was writing the user), `missing`, `denied`, `failed`.
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

/// How long a rollback waits for a handler writing the same user before it reports it `busy`.
const BUSY_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// A run's email method writes per user: (first before, last after); `None` is "no method".
type MethodWrites = BTreeMap<String, (Option<String>, Option<String>)>;

/// Groups a run's records per user into before/after values (first before, last after), the user
/// properties apart from the email methods and the Workday writes.
fn per_user(
    records: Vec<AuditRecord>,
) -> (
    BTreeMap<String, (RecordedValues, RecordedValues)>,
    MethodWrites,
    WorkdayWrites,
) {
    let mut out: BTreeMap<String, (RecordedValues, RecordedValues)> = BTreeMap::new();
    let mut methods = MethodWrites::new();
    let mut workday = WorkdayWrites::new();
    for r in records {
        if r.target.as_deref() == Some(writeback::TARGET) {
            workday_write(&mut workday, &r);
            continue;
        }
        if r.property == AUTHENTICATION_EMAIL {
            let text = |v: &Value| v.as_str().map(str::to_string);
            let entry = methods
                .entry(r.user_id.clone())
                .or_insert_with(|| (text(&r.before), None));
            entry.1 = text(&r.after);
            continue;
        }
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
    (out, methods, workday)
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

/// Restores one user under its claim, so a handler writing the same user at the same moment is not
/// overwritten (the user is reported `busy` instead; run the rollback again).
async fn rollback_claimed(
    ctx: &EnrichContext,
    audit: &AuditLog,
    claims: &Claims,
    user_id: &str,
    before: &RecordedValues,
    after: &RecordedValues,
) -> RollbackLine {
    if ctx.dry_run {
        return rollback_user(ctx, audit, user_id, before, after).await;
    }
    let line = |result, detail: String| RollbackLine {
        user_id: user_id.to_string(),
        result,
        properties: Vec::new(),
        detail: Some(detail),
    };
    match claim_user(claims, user_id, WhenBusy::Wait(BUSY_WAIT)).await {
        Ok(Ok(guard)) => {
            let l = rollback_user(ctx, audit, user_id, before, after).await;
            guard.release().await;
            l
        }
        Ok(Err(holder)) => line(
            "busy",
            format!("{holder} is writing this user right now; run the rollback again"),
        ),
        Err(e) => line("failed", e.to_string()),
    }
}

/// Reads one user, and restores its before-values when it still holds the run's after-values.
async fn rollback_user(
    ctx: &EnrichContext,
    audit: &AuditLog,
    user_id: &str,
    before: &RecordedValues,
    after: &RecordedValues,
) -> RollbackLine {
    let select = [
        "id",
        "userPrincipalName",
        "employeeId",
        "otherMails",
        "usageLocation",
    ];
    let mut line = RollbackLine {
        user_id: user_id.to_string(),
        result: "failed",
        properties: Vec::new(),
        detail: None,
    };
    let current = match ctx.graph.get_user(user_id, &select).await {
        Ok(Some(json)) => match UserRecord::from_json(json) {
            Ok(u) => u,
            Err(_) => {
                line.detail = Some("Graph returned a user without an id".into());
                return line;
            }
        },
        Ok(None) => {
            line.result = "missing";
            line.detail = Some("the user no longer exists".into());
            return line;
        }
        Err(e) => {
            line.detail = Some(e.to_string());
            return line;
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
    let patch = match plan_rollback(&current, &before, &after) {
        Err(refusal) => {
            line.result = "refused";
            line.detail = Some(refusal.to_string());
            return line;
        }
        Ok(None) => {
            line.result = if notes.is_empty() {
                "already-restored"
            } else {
                "partly-restored"
            };
            return line;
        }
        Ok(Some(patch)) => patch,
    };
    line.properties = patch
        .property_names()
        .iter()
        .map(|p| p.to_string())
        .collect();
    if ctx.dry_run {
        line.result = "would-restore";
        return line;
    }
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
    line
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
    let (users, methods, workday) = per_user(records);
    let own_run = RunId::new();
    let audit = AuditLog::new(ctx.state.clone(), own_run.clone(), "rollback");
    let claims = Claims::new(ctx.state.clone(), "rollback", own_run.as_str());
    let ids: BTreeSet<&String> = users
        .keys()
        .chain(methods.keys())
        .chain(workday.keys())
        .collect();
    let mut lines = Vec::with_capacity(ids.len());
    for user_id in ids {
        let properties = match users.get(user_id) {
            Some((before, after)) => {
                Some(rollback_claimed(ctx, &audit, &claims, user_id, before, after).await)
            }
            None => None,
        };
        let method = match methods.get(user_id) {
            Some((before, after)) => {
                let writes = (before.as_deref(), after.as_deref());
                Some(rollback_method_claimed(ctx, &audit, &claims, user_id, writes).await)
            }
            None => None,
        };
        let workday = match workday.get(user_id) {
            Some(writes) => Some(rollback_workday(ctx, &audit, &claims, user_id, writes).await),
            None => None,
        };
        lines.extend(merge_lines(merge_lines(properties, method), workday));
    }
    let restored = lines.iter().filter(|l| l.result == "restored").count();
    let refused = lines.iter().filter(|l| l.result == "refused").count();
    Ok(RollbackSummary {
        rolled_back_run: run.clone(),
        run_id: (!ctx.dry_run).then_some(own_run),
        dry_run: ctx.dry_run,
        users: lines.len(),
        restored,
        refused,
        lines,
    })
}

/// One line per user: the properties' and the email method's results together, the worse result
/// winning (a refusal over a failure over a restore).
fn merge_lines(a: Option<RollbackLine>, b: Option<RollbackLine>) -> Option<RollbackLine> {
    const RANK: [&str; 10] = [
        "refused",
        "unrestorable",
        "busy",
        "denied",
        "failed",
        "missing",
        "restored",
        "would-restore",
        "partly-restored",
        "already-restored",
    ];
    let rank = |r: &str| RANK.iter().position(|x| *x == r).unwrap_or(0);
    match (a, b) {
        (Some(mut a), Some(b)) => {
            if rank(b.result) < rank(a.result) {
                a.result = b.result;
            }
            a.properties.extend(b.properties);
            a.detail = match (a.detail, b.detail) {
                (Some(x), Some(y)) => Some(format!("{x}; {y}")),
                (x, y) => x.or(y),
            };
            Some(a)
        }
        (a, b) => a.or(b),
    }
}

/// Restores one user's email method under its claim (see [`rollback_claimed`]).
async fn rollback_method_claimed(
    ctx: &EnrichContext,
    audit: &AuditLog,
    claims: &Claims,
    user_id: &str,
    writes: (Option<&str>, Option<&str>),
) -> RollbackLine {
    if ctx.dry_run {
        return rollback_method(ctx, audit, user_id, writes).await;
    }
    match claim_user(claims, user_id, WhenBusy::Wait(BUSY_WAIT)).await {
        Ok(Ok(guard)) => {
            let l = rollback_method(ctx, audit, user_id, writes).await;
            guard.release().await;
            l
        }
        Ok(Err(holder)) => method_line(
            user_id,
            "busy",
            format!("{holder} is writing this user right now; run the rollback again"),
        ),
        Err(e) => method_line(user_id, "failed", e.to_string()),
    }
}

fn method_line(user_id: &str, result: &'static str, detail: String) -> RollbackLine {
    RollbackLine {
        user_id: user_id.to_string(),
        result,
        properties: Vec::new(),
        detail: Some(detail),
    }
}

/// Puts back the method address the run replaced (or removes the method it created), when the
/// method still holds what the run wrote.
async fn rollback_method(
    ctx: &EnrichContext,
    audit: &AuditLog,
    user_id: &str,
    (before, after): (Option<&str>, Option<&str>),
) -> RollbackLine {
    let same = |x: Option<&str>, y: Option<&str>| match (x, y) {
        (Some(x), Some(y)) => x.trim().eq_ignore_ascii_case(y.trim()),
        (x, y) => x.is_none() && y.is_none(),
    };
    let current = match ctx.graph.email_method(user_id).await {
        Ok(c) => c,
        Err(e) => return method_line(user_id, "failed", e.to_string()),
    };
    if same(current.as_deref(), before) {
        return method_line(
            user_id,
            "already-restored",
            "the authentication email is back".into(),
        );
    }
    if !same(current.as_deref(), after) {
        let why = "the authentication email changed since the run wrote it; left as it is";
        return method_line(user_id, "refused", why.into());
    }
    let mut line = method_line(user_id, "would-restore", String::new());
    line.detail = None;
    line.properties.push(AUTHENTICATION_EMAIL.to_string());
    if ctx.dry_run {
        return line;
    }
    let restored = match before.map(entra_core::AlternateEmail::from_existing) {
        None => ctx.graph.delete_email_method(user_id).await,
        Some(Ok(address)) => ctx.graph.put_email_method(user_id, &address, true).await,
        Some(Err(e)) => {
            return method_line(
                user_id,
                "refused",
                format!("the earlier address {e}; not restored"),
            )
        }
    };
    if let Err(e) = restored {
        let o = outcome_for_write_error(&e);
        let result = if matches!(o, entra_core::Outcome::Denied { .. }) {
            "denied"
        } else {
            "failed"
        };
        return method_line(user_id, result, o.describe());
    }
    line.result = "restored";
    if let Ok(user) = UserRecord::from_json(serde_json::json!({"id": user_id})) {
        if let Err(e) = audit
            .record_value(&user, AUTHENTICATION_EMAIL, after, before)
            .await
        {
            tracing::error!(error = %e, "method restored but its audit record could not be stored");
        }
    }
    if let Err(e) = forget_marker(ctx.state.as_ref(), user_id).await {
        tracing::warn!(user_id = %user_id, error = %e, "the method marker could not be removed");
    }
    line
}

/// A run's Workday writes per user: the employeeId, and per property (first before, last after).
type WorkdayWrites = BTreeMap<String, WorkdayWrite>;

#[derive(Debug, Default)]
struct WorkdayWrite {
    employee_id: String,
    work_email: Option<(Option<String>, Option<String>)>,
    user_name: Option<(Option<String>, Option<String>)>,
}

fn workday_write(writes: &mut WorkdayWrites, r: &AuditRecord) {
    let text = |v: &Value| v.as_str().map(str::to_string);
    let entry = writes.entry(r.user_id.clone()).or_default();
    if let Some(eid) = &r.employee_id {
        entry.employee_id = eid.clone();
    }
    let slot = match r.property.as_str() {
        writeback::WORK_EMAIL => &mut entry.work_email,
        writeback::USER_NAME => &mut entry.user_name,
        other => {
            tracing::warn!(
                property = other,
                "a Workday audit record for a property entra-enrich never writes; ignored"
            );
            return;
        }
    };
    let first_before = slot.take().map_or_else(|| text(&r.before), |(b, _)| b);
    *slot = Some((first_before, text(&r.after)));
}

/// Restores the Workday values a run wrote for one user, under its writeback claim: each one that
/// still holds the run's value gets its before-value back. One Workday had no value for before
/// (a first work email, a first username) cannot be removed by these operations: it is reported
/// `unrestorable`, and left as the run wrote it.
async fn rollback_workday(
    ctx: &EnrichContext,
    audit: &AuditLog,
    claims: &Claims,
    user_id: &str,
    writes: &WorkdayWrite,
) -> RollbackLine {
    let Some(writeback) = ctx.writeback.as_deref() else {
        return method_line(
            user_id,
            "failed",
            "the run wrote Workday, and ENRICH_WORKDAY_WRITEBACK is off here: set it (with ENRICH_WORKDAY_WWS_URL and the integration user) and run the rollback again".into(),
        );
    };
    if ctx.dry_run {
        return restore_workday(ctx, writeback, audit, user_id, writes).await;
    }
    let key = writeback::writeback_claim_key(user_id);
    match claims.acquire(&key, None).await {
        Ok(super::claim::Claimed::Held(guard)) => {
            let line = restore_workday(ctx, writeback, audit, user_id, writes).await;
            guard.release().await;
            line
        }
        Ok(
            super::claim::Claimed::Busy { handler, .. } | super::claim::Claimed::Stale { handler },
        ) => method_line(
            user_id,
            "busy",
            format!(
                "{handler} is writing this user back to Workday right now; run the rollback again"
            ),
        ),
        Err(e) => method_line(user_id, "failed", e.to_string()),
    }
}

async fn restore_workday(
    ctx: &EnrichContext,
    writeback: &writeback::Writeback,
    audit: &AuditLog,
    user_id: &str,
    writes: &WorkdayWrite,
) -> RollbackLine {
    let client = writeback.client();
    let eid = writes.employee_id.as_str();
    let current = match client.worker(eid).await {
        Ok(c) => c,
        Err(e) => return method_line(user_id, "failed", e.to_string()),
    };
    let same = |x: Option<&str>, y: Option<&str>| match (x, y) {
        (Some(x), Some(y)) => x.trim().eq_ignore_ascii_case(y.trim()),
        (x, y) => x.is_none() && y.is_none(),
    };
    let mut line = method_line(user_id, "already-restored", String::new());
    let mut notes = Vec::new();
    let mut worst = "already-restored";
    let fields = [
        (
            writeback::WORK_EMAIL,
            &writes.work_email,
            current.work_email(),
        ),
        (
            writeback::USER_NAME,
            &writes.user_name,
            current.user_name.as_deref(),
        ),
    ];
    let user = UserRecord::from_json(serde_json::json!({"id": user_id, "employeeId": eid})).ok();
    for (property, write, now) in fields {
        let Some((before, after)) = write else {
            continue;
        };
        let name = format!("workday.{property}");
        let result = if same(now, before.as_deref()) {
            "already-restored"
        } else if !same(now, after.as_deref()) {
            notes.push(format!(
                "{name} changed in Workday since the run wrote it; left as it is"
            ));
            "refused"
        } else if let Some(before) = before {
            line.properties.push(name.clone());
            if ctx.dry_run {
                "would-restore"
            } else {
                let put = match property {
                    writeback::WORK_EMAIL => {
                        client
                            .set_work_email(eid, before, &writeback::today())
                            .await
                    }
                    _ => client.set_user_name(eid, before).await,
                };
                match put {
                    Ok(()) => {
                        if let Some(user) = &user {
                            let recorded = audit
                                .record_target(
                                    user,
                                    writeback::TARGET,
                                    property,
                                    after.as_deref(),
                                    Some(before),
                                )
                                .await;
                            if let Err(e) = recorded {
                                tracing::error!(error = %e, "Workday restored but its audit record could not be stored");
                            }
                        }
                        "restored"
                    }
                    Err(e) => {
                        notes.push(format!("{name}: {e}"));
                        "failed"
                    }
                }
            }
        } else {
            notes.push(format!("{name} was empty in Workday before the run; these operations cannot empty it again: left as the run wrote it"));
            "unrestorable"
        };
        worst = worse(worst, result);
    }
    line.result = worst;
    line.detail = (!notes.is_empty()).then(|| entra_core::pii::mask_emails_in(&notes.join("; ")));
    line
}

/// The worse of two results of one user's properties.
fn worse(a: &'static str, b: &'static str) -> &'static str {
    let merged = merge_lines(
        Some(method_line("", a, String::new())),
        Some(method_line("", b, String::new())),
    );
    merged.map_or(a, |l| l.result)
}
