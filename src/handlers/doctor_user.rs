//! `entra-enrich doctor --user <id|UPN>`: "a new hire says the reset email never came". One user's
//! side of day-one reset: in scope and matched, what entra-enrich wrote and when (from the audit
//! log), what the user holds now (masked unless `--show-pii`), whether Email OTP targets the user,
//! whether Graph refused the user as privileged, and whether the user's reset needs writeback.

use entra_core::pii::mask_email;
use entra_core::{Outcome, UserRecord};
use serde_json::Value;

use super::audit::{read_run, AuditRecord};
use super::backfill::load_denied;
use super::doctor::{email_otp_configuration, target_ids, Check, DoctorReport, EMAIL_OTP_PORTAL};
use super::enrich::{plan_record, read_user, with_hr_of};
use super::EnrichContext;

/// What `doctor --user` shows of addresses.
#[derive(Debug, Clone, Copy)]
pub struct UserDoctorOptions {
    /// Print addresses unmasked (`--show-pii`).
    pub show_pii: bool,
}

/// The checks for one user; a user Graph does not know is the one failed check.
pub async fn run_doctor_user(
    ctx: &EnrichContext,
    id_or_upn: &str,
    options: UserDoctorOptions,
) -> DoctorReport {
    let user = match read_user(ctx, id_or_upn).await {
        Ok(u) => u,
        Err(e) => {
            let fix = "give the user's object id or userPrincipalName as Entra shows it";
            return DoctorReport {
                checks: vec![Check::fail(
                    "user",
                    format!("the user could not be read: {e}"),
                    fix,
                )],
            };
        }
    };
    let show = |a: &str| {
        if options.show_pii {
            a.to_string()
        } else {
            mask_email(a)
        }
    };
    let mut checks = vec![Check::pass(
        "user",
        format!(
            "{} ({})",
            user.user_principal_name().unwrap_or("no userPrincipalName"),
            user.id()
        ),
    )];
    checks.push(match_check(ctx, &user).await);
    checks.push(written_check(ctx, &user).await);
    checks.push(current_values_check(ctx, &user, &show).await);
    checks.push(email_otp_for_user(ctx, &user).await);
    checks.push(privileged_check(ctx, &user).await);
    checks.push(writeback_for_user(&user));
    DoctorReport { checks }
}

/// In scope, one match by employeeId, a valid personal email: the engine's own plan.
async fn match_check(ctx: &EnrichContext, user: &UserRecord) -> Check {
    let id = "scope-and-match";
    let ctx = match with_hr_of(ctx, user).await {
        Ok(ctx) => ctx,
        Err(e) => {
            return Check::unknown(
                id,
                format!("the HR record could not be read: {e}"),
                "run doctor again once the HR source answers",
            )
        }
    };
    match plan_record(&ctx, user).await {
        Ok(d) => match &d.outcome {
            Outcome::Updated { properties } => Check::pass(
                id,
                format!("in scope and matched; a run would write {}", properties.join(", ")),
            ),
            Outcome::Unchanged => Check::pass(id, "in scope and matched; it holds the HR values"),
            other => Check::fail(
                id,
                format!("{}: {}", other.code(), other.describe()),
                "fix what the reason names (the HR record, employeeId, ENRICH_SCOPE); entra-enrich writes nothing until then",
            ),
        },
        Err(e) => Check::unknown(id, format!("the plan could not be made: {e}"), "run doctor again"),
    }
}

/// The audit records of this user, oldest first, across every run.
async fn audit_of(ctx: &EnrichContext, user_id: &str) -> Result<Vec<AuditRecord>, String> {
    let keys = ctx.state.list("audit/").await.map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for key in keys {
        let run = key.trim_start_matches("audit/").trim_end_matches(".jsonl");
        let Ok(run) = super::RunId::parse(run) else {
            continue;
        };
        let records = read_run(ctx.state.as_ref(), &run)
            .await
            .map_err(|e| e.to_string())?;
        out.extend(records.into_iter().filter(|r| r.user_id == user_id));
    }
    out.sort_by(|a, b| a.time.cmp(&b.time));
    Ok(out)
}

async fn written_check(ctx: &EnrichContext, user: &UserRecord) -> Check {
    let id = "written";
    let records = match audit_of(ctx, user.id()).await {
        Ok(r) => r,
        Err(e) => {
            return Check::unknown(
                id,
                format!("the audit log could not be read: {e}"),
                "run doctor again",
            )
        }
    };
    let Some(last) = records.last() else {
        return Check::unknown(
            id,
            "entra-enrich has never written this user",
            "see scope-and-match above; a new hire is written by the watch within minutes of appearing",
        );
    };
    let mut properties: Vec<&str> = records.iter().map(|r| r.property.as_str()).collect();
    properties.sort_unstable();
    properties.dedup();
    Check::pass(
        id,
        format!(
            "last written {} by {} (run {}); properties written: {}",
            last.time,
            last.handler,
            last.run_id,
            properties.join(", ")
        ),
    )
}

async fn current_values_check(
    ctx: &EnrichContext,
    user: &UserRecord,
    show: &dyn Fn(&str) -> String,
) -> Check {
    let id = "current-values";
    let mails: Vec<String> = user.other_mails().iter().map(|m| show(m)).collect();
    let no_mails = mails.is_empty();
    let mails = if no_mails {
        "none".to_string()
    } else {
        mails.join(", ")
    };
    // `None`: Graph would not say.
    let (method, has_method) = match ctx.graph.email_method(user.id()).await {
        Ok(Some(a)) => (show(&a), Some(true)),
        Ok(None) => ("none".to_string(), Some(false)),
        Err(e) if e.status() == Some(403) => (
            "unknown (grant UserAuthenticationMethod.Read.All to see it)".to_string(),
            None,
        ),
        Err(e) => (format!("unknown ({e})"), None),
    };
    let detail = format!("otherMails: {mails}; authentication email: {method}");
    let fix =
        "no email for a reset: see scope-and-match, or run `entra-enrich enrich --user-id <id>`";
    match (no_mails, has_method) {
        (true, Some(false)) => Check::fail(id, detail, fix),
        (true, None) => Check::unknown(
            id,
            detail,
            "Entra admin center > Users > (the user) > Authentication methods",
        ),
        _ => Check::pass(id, detail),
    }
}

/// Whether the Email OTP configuration includes the user: all users or one of the user's groups,
/// and none of the excluded groups.
async fn email_otp_for_user(ctx: &EnrichContext, user: &UserRecord) -> Check {
    let id = "email-otp-for-user";
    let policy = match ctx.graph.authentication_methods_policy().await {
        Ok(p) => p,
        Err(e) => {
            return Check::unknown(
                id,
                format!("the policy could not be read: {e}"),
                EMAIL_OTP_PORTAL,
            )
        }
    };
    let email = email_otp_configuration(&policy)
        .cloned()
        .unwrap_or(Value::Null);
    if email["state"] != "enabled" {
        return Check::fail(
            id,
            "Email OTP is disabled for everyone",
            format!("enable it: {EMAIL_OTP_PORTAL}"),
        );
    }
    let include = target_ids(&email["includeTargets"]);
    let exclude = target_ids(&email["excludeTargets"]);
    let everyone = include.iter().any(|g| g == "all_users");
    if everyone && exclude.is_empty() {
        return Check::pass(id, "Email OTP targets all users");
    }
    let groups = match ctx.graph.group_ids_of(user.id()).await {
        Ok(g) => g,
        Err(e) => {
            return Check::unknown(
                id,
                format!("the user's groups could not be read ({e})"),
                format!("compare the user's groups with {EMAIL_OTP_PORTAL} > Enable and target, or grant GroupMember.Read.All"),
            )
        }
    };
    if let Some(g) = exclude.iter().find(|g| groups.contains(g)) {
        return Check::fail(
            id,
            format!("the user is in the group {g}, which Email OTP excludes"),
            format!("remove the user from {g}, or the group from the exclusions: {EMAIL_OTP_PORTAL} > Exclude"),
        );
    }
    match include.iter().find(|g| *g == "all_users" || groups.contains(g)) {
        Some(g) => Check::pass(id, format!("Email OTP targets the user (through {g})")),
        None => Check::fail(
            id,
            format!("Email OTP targets only the groups {}, and the user is in none", include.join(", ")),
            format!("add the user to one of them, or target the new hires' group: {EMAIL_OTP_PORTAL} > Enable and target"),
        ),
    }
}

async fn privileged_check(ctx: &EnrichContext, user: &UserRecord) -> Check {
    let id = "privileged";
    match load_denied(ctx.state.as_ref()).await {
        Ok(denied) if denied.contains(user.id()) => Check::fail(
            id,
            "Graph refused writing this user as privileged (an admin role); SSPR asks admins for two methods anyway",
            "grant the app Privileged Authentication Administrator (grant-graph-permissions.sh --privileged-admins) and run backfill --retry-denied, or register the admin's methods by hand",
        ),
        Ok(_) => Check::pass(id, "Graph has not refused this user as privileged"),
        Err(e) => Check::unknown(id, format!("the denied list could not be read: {e}"), "run doctor again"),
    }
}

fn writeback_for_user(user: &UserRecord) -> Check {
    if user.as_json()["onPremisesSyncEnabled"] == Value::Bool(true) {
        return Check::unknown(
            "password-writeback",
            "the user is synced from AD: the reset needs password writeback, which Graph does not report to apps",
            "Entra admin center > Protection > Password reset > On-premises integration",
        );
    }
    Check::pass("password-writeback", "a cloud user: no writeback needed")
}
