//! `entra-enrich doctor`: will a new hire's day-one password reset by email work in this tenant?
//!
//! Writing `otherMails` is necessary, not sufficient. Self-service password reset also needs the Email
//! OTP method on and aimed at the new hires (the Authentication methods policy has governed SSPR methods
//! since the legacy settings were retired on 30 September 2025), password writeback for synced users,
//! and a legacy "number of methods required" of 1. Each check is `pass`, `fail` (with the fix) or
//! `unknown` (Graph cannot tell an app; with where to look by hand).
//!
//! Sources: <https://learn.microsoft.com/entra/identity/authentication/concept-sspr-howitworks>,
//! <https://learn.microsoft.com/entra/identity/authentication/how-to-authentication-methods-manage>,
//! <https://learn.microsoft.com/graph/api/resources/authenticationmethodspolicy>.
//!
//! Nothing here prints an address: the tenant checks read policies, roles and counts only.

use entra_core::UserRecord;
use serde::Serialize;
use serde_json::Value;

use super::EnrichContext;

/// A check's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Pass,
    Fail,
    Unknown,
}

impl Verdict {
    /// The mark printed before the check.
    pub fn mark(self) -> &'static str {
        match self {
            Verdict::Pass => "✔",
            Verdict::Fail => "✘",
            Verdict::Unknown => "?",
        }
    }
}

/// One check of the tenant.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Check {
    /// Stable id, e.g. `email-otp`.
    pub id: &'static str,
    pub verdict: Verdict,
    /// What was found.
    pub detail: String,
    /// What to do (a fail), or where to look by hand (an unknown).
    pub fix: Option<String>,
}

impl Check {
    pub(crate) fn pass(id: &'static str, detail: impl Into<String>) -> Check {
        Check {
            id,
            verdict: Verdict::Pass,
            detail: detail.into(),
            fix: None,
        }
    }
    pub(crate) fn fail(
        id: &'static str,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) -> Check {
        Check {
            id,
            verdict: Verdict::Fail,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }
    pub(crate) fn unknown(
        id: &'static str,
        detail: impl Into<String>,
        look: impl Into<String>,
    ) -> Check {
        Check {
            id,
            verdict: Verdict::Unknown,
            detail: detail.into(),
            fix: Some(look.into()),
        }
    }
}

/// Every check, in the order printed.
#[derive(Debug, Clone, Serialize)]
pub struct DoctorReport {
    pub checks: Vec<Check>,
}

impl DoctorReport {
    /// How many checks failed.
    pub fn failures(&self) -> usize {
        self.checks
            .iter()
            .filter(|c| c.verdict == Verdict::Fail)
            .count()
    }

    /// One line per check (`✔ id: detail`), and the fix indented under a fail or an unknown.
    pub fn render_text(&self) -> String {
        let mut out = String::new();
        for c in &self.checks {
            out.push_str(&format!("{} {}: {}\n", c.verdict.mark(), c.id, c.detail));
            if let Some(fix) = &c.fix {
                let label = if c.verdict == Verdict::Fail {
                    "fix"
                } else {
                    "check"
                };
                out.push_str(&format!("    {label}: {fix}\n"));
            }
        }
        out
    }
}

/// What the settings make the app do, which decides the permissions it needs.
#[derive(Debug, Clone, Copy)]
pub struct Needs {
    /// `usageLocation` is written (`ENRICH_USAGELOCATION_SOURCE` is set).
    pub usage_location: bool,
    /// `otherMails` is written (`ENRICH_SSPR_EMAIL_TARGET` is `otherMails` or `both`).
    pub other_mails: bool,
    /// The email authentication method is written (`authenticationMethod` or `both`).
    pub email_method: bool,
}

/// Application permissions, each need satisfied by any one of its roles (least privileged first).
fn required_roles(needs: Needs) -> Vec<(&'static str, &'static [&'static str], &'static str)> {
    let mut out: Vec<(&'static str, &'static [&'static str], &'static str)> = vec![(
        "read users and users/delta",
        &["User.Read.All", "User.ReadWrite.All", "Directory.Read.All"],
        "",
    )];
    if needs.other_mails {
        out.push((
            "write otherMails",
            &["User-Mail.ReadWrite.All", "User.ReadWrite.All"],
            "",
        ));
    }
    if needs.email_method {
        out.push((
            "write the authentication email",
            &[
                "UserAuthenticationMethod.ReadWrite.All",
                "UserAuthMethod-Email.ReadWrite.All",
            ],
            " --email-method",
        ));
    }
    if needs.usage_location {
        out.push((
            "write usageLocation",
            &["User.ReadWrite.All"],
            " --usage-location",
        ));
    }
    out
}

/// The app roles in the token against what the settings need.
pub fn permissions_check(roles: &[String], needs: Needs, principal: &str) -> Check {
    let has = |r: &str| roles.iter().any(|g| g.eq_ignore_ascii_case(r));
    let missing: Vec<_> = required_roles(needs)
        .into_iter()
        .filter(|(_, any_of, _)| !any_of.iter().any(|r| has(r)))
        .collect();
    if missing.is_empty() {
        return Check::pass(
            "graph-permissions",
            format!(
                "the app holds what the settings need ({})",
                roles.join(", ")
            ),
        );
    }
    let what: Vec<String> = missing
        .iter()
        .map(|(need, any_of, _)| format!("{need} needs {}", any_of[0]))
        .collect();
    let flags: String = missing.iter().map(|(_, _, flag)| *flag).collect();
    Check::fail(
        "graph-permissions",
        format!("missing application permissions: {}", what.join("; ")),
        format!("infra/grant-graph-permissions.sh --principal-id {principal}{flags}"),
    )
}

/// Where Email OTP is set in the portal.
pub(crate) const EMAIL_OTP_PORTAL: &str =
    "Entra admin center > Protection > Authentication methods > Policies > Email OTP";

/// The Email OTP entry (`id` "Email") of the policy's `authenticationMethodConfigurations`
/// (<https://learn.microsoft.com/graph/api/resources/emailauthenticationmethodconfiguration>).
pub(crate) fn email_otp_configuration(policy: &Value) -> Option<&Value> {
    policy["authenticationMethodConfigurations"]
        .as_array()
        .and_then(|all| all.iter().find(|c| c["id"] == "Email"))
}

/// The Email OTP configuration of the Authentication methods policy.
pub fn email_otp_check(policy: &Result<Value, u16>, principal: &str) -> Check {
    let id = "email-otp";
    let policy = match policy {
        Ok(p) => p,
        Err(403) => {
            return Check::unknown(
                id,
                "the app may not read the Authentication methods policy",
                format!("{EMAIL_OTP_PORTAL}, or grant Policy.Read.All: infra/grant-graph-permissions.sh --principal-id {principal} --doctor"),
            )
        }
        Err(status) => {
            return Check::unknown(
                id,
                format!("Graph answered {status} for the Authentication methods policy"),
                EMAIL_OTP_PORTAL,
            )
        }
    };
    let Some(email) = email_otp_configuration(policy) else {
        return Check::fail(
            id,
            "the policy has no Email OTP configuration",
            format!("enable Email OTP: {EMAIL_OTP_PORTAL}"),
        );
    };
    if email["state"] != "enabled" {
        return Check::fail(
            id,
            "Email OTP is disabled, so no reset by email works, whatever otherMails holds",
            format!("enable it and target the new hires: {EMAIL_OTP_PORTAL}"),
        );
    }
    let groups = target_ids(&email["includeTargets"]);
    if groups.is_empty() {
        return Check::fail(
            id,
            "Email OTP is enabled but targets nobody",
            format!(
                "target all users or the new hires' group: {EMAIL_OTP_PORTAL} > Enable and target"
            ),
        );
    }
    let excluded = target_ids(&email["excludeTargets"]);
    let who = if groups.iter().any(|g| g == "all_users") {
        "all users".to_string()
    } else {
        format!("the groups {}", groups.join(", "))
    };
    let except = if excluded.is_empty() {
        String::new()
    } else {
        format!(", except the groups {}", excluded.join(", "))
    };
    Check::pass(id, format!("Email OTP is enabled for {who}{except}"))
}

pub(crate) fn target_ids(targets: &Value) -> Vec<String> {
    targets
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|t| t["id"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The migration state of the Authentication methods policy.
pub fn migration_check(policy: &Result<Value, u16>) -> Check {
    let id = "methods-policy-migration";
    let look =
        "Entra admin center > Protection > Authentication methods > Policies > Manage migration";
    match policy.as_ref().ok().and_then(|p| p["policyMigrationState"].as_str()) {
        Some("migrationComplete") => Check::pass(
            id,
            "migration complete: the Authentication methods policy alone decides the reset methods",
        ),
        Some(state) => Check::unknown(
            id,
            format!("migration state is {state}: the legacy SSPR method settings were retired on 30 September 2025, so the Email OTP setting above is the one that applies"),
            format!("finish the migration so the portal shows one truth: {look}"),
        ),
        None => Check::unknown(id, "the migration state could not be read", look),
    }
}

/// Users read for the scope check.
#[derive(Debug, Clone, Copy, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScopeCounts {
    pub users: u64,
    pub in_scope: u64,
    pub in_scope_without_employee_id: u64,
    pub in_scope_synced: u64,
}

/// How many users the settings put in scope, and how many of those entra-enrich can never write.
pub fn scope_check(counts: ScopeCounts) -> Check {
    let id = "scope";
    if counts.in_scope == 0 {
        return Check::fail(
            id,
            format!("none of the {} users is in scope", counts.users),
            "check ENRICH_SCOPE (entra-enrich config shows the effective filter)",
        );
    }
    let detail = format!(
        "{} of {} users in scope; {} of them have no employeeId and are never written",
        counts.in_scope, counts.users, counts.in_scope_without_employee_id
    );
    if counts.in_scope_without_employee_id > 0 {
        return Check::fail(
            id,
            detail,
            "fill employeeId for those users in the HR source; Cloud Sync carries it to Entra",
        );
    }
    Check::pass(id, detail)
}

/// Password writeback, which a synced user's reset needs. Graph tells no app whether it is on:
/// `GET /directory/onPremisesSynchronization` supports no application permission, and its
/// `passwordWritebackEnabled` "isn't in use"
/// (<https://learn.microsoft.com/graph/api/onpremisesdirectorysynchronization-get>,
/// <https://learn.microsoft.com/graph/api/resources/onpremisesdirectorysynchronizationfeature>).
pub fn writeback_check(in_scope_synced: u64) -> Check {
    let id = "password-writeback";
    if in_scope_synced == 0 {
        return Check::pass(id, "no synced user is in scope, so none needs writeback");
    }
    let who = if in_scope_synced == u64::MAX {
        "users in scope synced from AD:".to_string()
    } else {
        format!("{in_scope_synced} users in scope are synced from AD:")
    };
    Check::unknown(
        id,
        format!("{who} their reset needs password writeback, which Graph does not report to apps"),
        "Entra admin center > Protection > Password reset > On-premises integration (\"Enable password write back for synced users\"), and the writeback option of Cloud Sync or Connect",
    )
}

/// The legacy "Number of methods required to reset", which Graph does not expose: at 2, one email
/// is never enough (concept-sspr-howitworks).
pub fn methods_required_check() -> Check {
    Check::unknown(
        "methods-required",
        "Graph does not expose how many methods a reset requires; at 2, one email is never enough",
        "Entra admin center > Protection > Password reset > Authentication methods > Number of methods required to reset: 1",
    )
}

/// Whether Lifecycle Workflows accepts our `resume`: it does for an app in the custom task
/// extension's `authorizedApps`, which only an admin with the workflow can see.
pub fn lcw_resume_check(app_id: &str) -> Check {
    Check::unknown(
        "lcw-resume",
        format!("lcw-joiner resumes the workflow as app {app_id}"),
        format!("Entra admin center > Identity governance > Lifecycle workflows > Custom extensions > (ours) > Behavior: the authorized apps include {app_id}"),
    )
}

/// Lists every user once and counts the scope.
async fn count_scope(ctx: &EnrichContext) -> Result<ScopeCounts, entra_graph::GraphError> {
    let select = ctx.select();
    let select: Vec<&str> = select.iter().map(String::as_str).collect();
    let mut pager = ctx.graph.list_users(None, &select, 999);
    let mut counts = ScopeCounts::default();
    while let Some(page) = pager.next_page().await? {
        for user in page
            .into_iter()
            .filter_map(|j| UserRecord::from_json(j).ok())
        {
            counts.users += 1;
            if !ctx.policy.scope.matches(&user) {
                continue;
            }
            counts.in_scope += 1;
            if user.employee_id().is_none() {
                counts.in_scope_without_employee_id += 1;
            }
            if user.as_json()["onPremisesSyncEnabled"] == Value::Bool(true) {
                counts.in_scope_synced += 1;
            }
        }
    }
    Ok(counts)
}

/// Who the app is, from its own token's claims.
struct AppIdentity {
    roles: Vec<String>,
    principal: String,
    app_id: String,
}

async fn app_identity(ctx: &EnrichContext) -> AppIdentity {
    let claims = ctx.graph.token_claims().await.unwrap_or(Value::Null);
    let roles = claims["roles"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|r| r.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let text = |v: &Value, or: &str| v.as_str().unwrap_or(or).to_string();
    AppIdentity {
        roles,
        principal: text(&claims["oid"], "<the app's object id>"),
        app_id: text(
            claims.get("appid").unwrap_or(&claims["azp"]),
            "<the app's client id>",
        ),
    }
}

/// The checks cheap enough for health: the app's permissions (from its token, which the credential
/// caches) and one read of the Authentication methods policy (Email OTP and its migration state).
pub async fn cheap_tenant_checks(ctx: &EnrichContext, needs: Needs) -> Vec<Check> {
    let me = app_identity(ctx).await;
    cheap_checks_for(ctx, needs, &me).await
}

async fn cheap_checks_for(ctx: &EnrichContext, needs: Needs, me: &AppIdentity) -> Vec<Check> {
    let policy = ctx
        .graph
        .authentication_methods_policy()
        .await
        .map_err(|e| e.status().unwrap_or(0));
    vec![
        permissions_check(&me.roles, needs, &me.principal),
        email_otp_check(&policy, &me.principal),
        migration_check(&policy),
    ]
}

/// Runs every tenant check. A check whose Graph read fails is `unknown` with the error, never a
/// made-up pass.
pub async fn run_doctor(ctx: &EnrichContext, needs: Needs) -> DoctorReport {
    let me = app_identity(ctx).await;
    let mut checks = cheap_checks_for(ctx, needs, &me).await;
    let (scope, writeback) = match count_scope(ctx).await {
        Ok(counts) => (scope_check(counts), writeback_check(counts.in_scope_synced)),
        Err(e) => {
            let detail = format!("listing users failed: {e}");
            (
                Check::unknown("scope", detail, "run doctor again once Graph answers"),
                // Synced users may be in scope: say what they need.
                writeback_check(u64::MAX),
            )
        }
    };
    checks.extend([
        methods_required_check(),
        writeback,
        scope,
        lcw_resume_check(&me.app_id),
    ]);
    if let Some(w) = &ctx.writeback {
        checks.push(workday_writeback_check(w).await);
    }
    DoctorReport { checks }
}

/// The `Employee_ID` doctor asks Workday Web Services for: no worker has it, so a validation fault
/// ("Invalid ID value") proves the endpoint answers and the integration user is accepted.
const PROBE_EMPLOYEE_ID: &str = "entra-enrich-doctor-probe";

/// Workday writeback (`ENRICH_WORKDAY_WRITEBACK`): do Workday Web Services answer, and take the
/// integration user's credentials?
pub async fn workday_writeback_check(writeback: &super::writeback::Writeback) -> Check {
    use entra_workday::WorkdayErrorKind as Kind;
    const ID: &str = "workday-writeback";
    match writeback.client().worker(PROBE_EMPLOYEE_ID).await {
        Ok(_) | Err(entra_workday::WorkdayError { kind: Kind::Refused, status: Some(500), .. }) => {
            Check::pass(ID, "Workday Web Services answer Get_Workers and accept the integration user")
        }
        Err(e) if e.kind == Kind::Transient => Check::unknown(
            ID,
            format!("Workday Web Services did not answer: {e}"),
            "run doctor again; queued writebacks wait in writeback/queue/ meanwhile",
        ),
        Err(e) => Check::fail(
            ID,
            e.to_string(),
            match e.setting {
                Some(setting) => format!("check {setting} (README › Workday writeback)"),
                None => "check ENRICH_WORKDAY_WWS_URL and the integration user (README › Workday writeback)".into(),
            },
        ),
    }
}
