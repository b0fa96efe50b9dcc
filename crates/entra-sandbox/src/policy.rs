//! `GET /policies/authenticationMethodsPolicy`: the tenant's Authentication methods policy, which has
//! governed the methods of self-service password reset since the legacy SSPR and MFA method settings were
//! retired on 30 September 2025. The sandbox holds the Email OTP configuration only (the method SSPR's
//! email uses); the other configurations are answered as documented, disabled.
//!
//! - Route, permissions and response: <https://learn.microsoft.com/graph/api/authenticationmethodspolicy-get>
//!   (least privileged application permission `Policy.Read.All`; `Policy.ReadWrite.AuthenticationMethod`
//!   also reads it).
//! - The policy: <https://learn.microsoft.com/graph/api/resources/authenticationmethodspolicy>
//!   (`policyMigrationState`: `preMigration`, `migrationInProgress`, `migrationComplete`).
//! - Email OTP: <https://learn.microsoft.com/graph/api/resources/emailauthenticationmethodconfiguration>
//!   (`state`, `includeTargets` of `{targetType, id, isRegistrationRequired}`, `excludeTargets`).

use http::StatusCode;
use serde_json::{json, Value};

use crate::http::SandboxResponse;
use crate::state::{refuse_without_role, Ctx, State};

/// The group id Entra uses for "all users" in method targets.
pub const ALL_USERS: &str = "all_users";

/// The app roles that may read the policy.
const READ_ROLES: [&str; 2] = ["Policy.Read.All", "Policy.ReadWrite.AuthenticationMethod"];

/// The parts of the Authentication methods policy the sandbox models.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthenticationMethodsPolicy {
    /// `preMigration`, `migrationInProgress` or `migrationComplete`.
    pub migration_state: String,
    /// Whether the Email OTP method is `enabled`.
    pub email_enabled: bool,
    /// Group ids Email OTP targets ([`ALL_USERS`] for everyone).
    pub email_include_groups: Vec<String>,
    /// Group ids excluded from Email OTP.
    pub email_exclude_groups: Vec<String>,
}

impl Default for AuthenticationMethodsPolicy {
    /// A tenant ready for day-one reset by email: Email OTP on for all users, migration complete.
    fn default() -> Self {
        AuthenticationMethodsPolicy {
            migration_state: "migrationComplete".into(),
            email_enabled: true,
            email_include_groups: vec![ALL_USERS.into()],
            email_exclude_groups: Vec::new(),
        }
    }
}

impl AuthenticationMethodsPolicy {
    /// The policy as Graph returns it.
    fn to_json(&self, base_url: &str) -> Value {
        let group =
            |id: &String| json!({"targetType": "group", "id": id, "isRegistrationRequired": false});
        let exclude = |id: &String| json!({"targetType": "group", "id": id});
        json!({
            "@odata.context": format!("{base_url}/v1.0/$metadata#authenticationMethodsPolicy"),
            "id": "authenticationMethodsPolicy",
            "displayName": "Authentication Methods Policy",
            "description": "The tenant-wide policy that controls which authentication methods are allowed in the tenant, authentication method registration requirements, and self-service password reset settings",
            "lastModifiedDateTime": "2026-01-26T10:47:26.6044384Z",
            "policyVersion": "1.5",
            "policyMigrationState": self.migration_state,
            "authenticationMethodConfigurations": [
                {
                    "@odata.type": "#microsoft.graph.emailAuthenticationMethodConfiguration",
                    "id": "Email",
                    "state": if self.email_enabled { "enabled" } else { "disabled" },
                    "allowExternalIdToUseEmailOtp": "default",
                    "includeTargets": self.email_include_groups.iter().map(group).collect::<Vec<_>>(),
                    "excludeTargets": self.email_exclude_groups.iter().map(exclude).collect::<Vec<_>>(),
                },
                {
                    "@odata.type": "#microsoft.graph.smsAuthenticationMethodConfiguration",
                    "id": "Sms",
                    "state": "disabled",
                    "includeTargets": [],
                },
            ],
        })
    }
}

/// `GET /v1.0/policies/authenticationMethodsPolicy`: 403 `Authorization_RequestDenied` without a read role.
pub(crate) fn get(state: &State, ctx: &Ctx) -> SandboxResponse {
    if let Some(denied) = refuse_without_role(ctx, &READ_ROLES) {
        return denied;
    }
    let policy = state.lock().auth_methods_policy.clone();
    SandboxResponse::json(StatusCode::OK, &policy.to_json(&state.base_url))
}
