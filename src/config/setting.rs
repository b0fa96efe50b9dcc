//! The app settings, one definition each: name, default, the value in `local.settings.example.json`
//! and the README's row. [`Config::from_env`](super::Config::from_env) takes its defaults from here,
//! and the unit tests in `config.rs` check that the README table (between `<!-- settings:begin -->`
//! and `<!-- settings:end -->`) and `local.settings.example.json` are exactly what this table renders
//! (`ENRICH_BLESS=1 cargo test -p entra-enrich --lib config::` rewrites both).

use std::time::Duration;

use super::{
    DEFAULT_AUTHORITY_HOST, DEFAULT_BACKFILL_SCHEDULE, DEFAULT_GRAPH_BASE_URL,
    DEFAULT_HEALTH_CHECKS_TTL, DEFAULT_JOINER_DEADLINE, DEFAULT_MAX_WRITES_PER_MINUTE,
    DEFAULT_NEW_HIRE_WATCH_SCHEDULE, DEFAULT_OTHERMAILS_MODE, DEFAULT_OTHERMAILS_SOURCE,
    DEFAULT_SCOPE, DEFAULT_STATE_DIR, DEFAULT_TIME_BUDGET,
};
use SettingDefault::{Flag, Number, Seconds, Text, Unset};
use SettingGroup::{Access, CallerCheck, Enrichment, TimersAndState, Workday};

/// One app setting (an environment variable locally, an app setting in Azure).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting {
    /// The variable's name.
    pub name: &'static str,
    /// The value used when it is unset or empty, or what unset means.
    pub default: SettingDefault,
    /// Its value in `local.settings.example.json`; `None`: the default's value (empty without one).
    pub example: Option<&'static str>,
    /// Its block in `local.settings.example.json`.
    pub group: SettingGroup,
    /// The README's "meaning" cell (Markdown, one line).
    pub doc: &'static str,
}

/// The value of a setting that is unset or empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettingDefault {
    Text(&'static str),
    Flag(bool),
    Number(u32),
    /// A whole number of seconds.
    Seconds(Duration),
    /// No value: the text says what unset means (`–`: the feature is off, or nothing is needed).
    Unset(&'static str),
}

/// The blocks of `local.settings.example.json`, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SettingGroup {
    /// Where Graph is and how the app authenticates to it.
    Access,
    /// Which users, which attributes, and how fast.
    Enrichment,
    /// The lcw-joiner caller check.
    CallerCheck,
    /// The timers and the state store.
    TimersAndState,
    /// Workday as the HR source (`ENRICH_SOURCE=workday`).
    Workday,
}

impl SettingDefault {
    /// The default as the setting's value would spell it; `None` when there is no default.
    pub fn value(&self) -> Option<String> {
        match *self {
            Text(t) => Some(t.to_string()),
            Flag(b) => Some(b.to_string()),
            Number(n) => Some(n.to_string()),
            Seconds(d) => Some(d.as_secs().to_string()),
            Unset(_) => None,
        }
    }
}

impl Setting {
    /// The text default. Panics if the table gives another kind: [`super::Config::from_env`] reads
    /// every setting as the kind its default has (the unit tests read every default).
    pub fn text_default(&self) -> &'static str {
        match self.default {
            Text(t) => t,
            other => panic!("{} has no text default ({other:?})", self.name),
        }
    }

    /// The boolean default (see [`Self::text_default`]).
    pub fn flag_default(&self) -> bool {
        match self.default {
            Flag(b) => b,
            other => panic!("{} has no boolean default ({other:?})", self.name),
        }
    }

    /// The numeric default (see [`Self::text_default`]).
    pub fn number_default(&self) -> u32 {
        match self.default {
            Number(n) => n,
            other => panic!("{} has no numeric default ({other:?})", self.name),
        }
    }

    /// The duration default (see [`Self::text_default`]).
    pub fn seconds_default(&self) -> Duration {
        match self.default {
            Seconds(d) => d,
            other => panic!("{} has no duration default ({other:?})", self.name),
        }
    }

    /// Its value in `local.settings.example.json`.
    pub fn example_value(&self) -> String {
        match self.example {
            Some(e) => e.to_string(),
            None => self.default.value().unwrap_or_default(),
        }
    }

    /// Its row of the README's settings table.
    pub fn readme_row(&self) -> String {
        let default = match self.default {
            Unset(meaning) => meaning.to_string(),
            _ => format!("`{}`", self.default.value().unwrap_or_default()),
        };
        format!("| `{}` | {default} | {} |", self.name, self.doc)
    }
}

/// The README's settings table (header and one row per setting, each line ending in a newline).
pub fn readme_table() -> String {
    let mut out = String::from("| setting | default | meaning |\n|---|---|---|\n");
    for s in SETTINGS {
        out.push_str(&s.readme_row());
        out.push('\n');
    }
    out
}

/// Defines each setting as a constant named like it, and [`SETTINGS`] listing them all in order.
macro_rules! settings {
    ($($name:ident {
        default: $default:expr,
        example: $example:expr,
        group: $group:expr,
        doc: $doc:literal,
    })*) => {
        $(
            #[doc = concat!("`", stringify!($name), "`: ", $doc)]
            pub const $name: Setting = Setting {
                name: stringify!($name),
                default: $default,
                example: $example,
                group: $group,
                doc: $doc,
            };
        )*

        /// Every app setting entra-enrich reads, in the README's order.
        pub const SETTINGS: &[Setting] = &[$($name),*];
    };
}

settings! {
    GRAPH_BASE_URL {
        default: Text(DEFAULT_GRAPH_BASE_URL),
        example: None,
        group: Access,
        doc: "Graph host: one of the [documented service roots](https://learn.microsoft.com/graph/deployments) (`graph.microsoft.com`, `graph.microsoft.us` for US Gov L4, `dod-graph.microsoft.us` for L5/DoD, `microsoftgraph.chinacloudapi.cn` for 21Vianet), or loopback for the sandbox, because the app's Graph access token is sent there. Calls go to `{GRAPH_BASE_URL}/v1.0/...`. https only, except a loopback sandbox; a URL with `user:pass@` is refused without being echoed.",
    }
    ENRICH_ALLOW_CUSTOM_GRAPH_HOST {
        default: Flag(false),
        example: None,
        group: Access,
        doc: "`true` lets `GRAPH_BASE_URL` name another host (a proxy you control); `config` and health then warn about it.",
    }
    ENRICH_CREDENTIAL {
        default: Unset("automatic"),
        example: None,
        group: Access,
        doc: "`managed-identity` (chosen automatically when the platform sets `IDENTITY_ENDPOINT` and `IDENTITY_HEADER`), `workload-identity` (automatic when `AZURE_FEDERATED_TOKEN_FILE` is set), `client-secret`, or `developer-tools` (Azure CLI then azd; the default at a terminal).",
    }
    AZURE_CLIENT_ID {
        default: Unset("–"),
        example: Some("<user-assigned managed identity client id, or empty for system-assigned>"),
        group: Access,
        doc: "selects a user-assigned managed identity; the app's client id for workload identity or a client secret.",
    }
    AZURE_TENANT_ID {
        default: Unset("–"),
        example: Some("<tenant id, only for workload-identity or client-secret>"),
        group: Access,
        doc: "tenant for workload identity or a client secret.",
    }
    ENRICH_KEYVAULT_URL {
        default: Unset("–"),
        example: None,
        group: Access,
        doc: "with `ENRICH_CLIENT_SECRET_NAME`: read the client secret from Key Vault (with the ambient managed identity) instead of `AZURE_CLIENT_SECRET`.",
    }
    ENRICH_CLIENT_SECRET_NAME {
        default: Unset("–"),
        example: None,
        group: Access,
        doc: "the Key Vault secret's name.",
    }
    ENRICH_SCOPE {
        default: Text(DEFAULT_SCOPE),
        example: None,
        group: Enrichment,
        doc: "which users may be touched; see [Scope syntax](#scope-syntax).",
    }
    ENRICH_SOURCE {
        default: Text("directory"),
        example: None,
        group: Enrichment,
        doc: "where HR values come from: `directory` (the user's own attributes, `ENRICH_OTHERMAILS_SOURCE`), `workday` (a RaaS report, matched by employeeId) or `csv:PATH`. The command line's `--source` overrides it.",
    }
    ENRICH_OTHERMAILS_SOURCE {
        default: Text(DEFAULT_OTHERMAILS_SOURCE),
        example: None,
        group: Enrichment,
        doc: "user property path holding the HR personal email.",
    }
    ENRICH_USAGELOCATION_SOURCE {
        default: Unset("unset: never write `usageLocation`"),
        example: None,
        group: Enrichment,
        doc: "user property path holding the HR country: an ISO code or a country name (\"Germany\", \"United States\"), mapped with the `celes` crate.",
    }
    ENRICH_OTHERMAILS_MODE {
        default: Text(DEFAULT_OTHERMAILS_MODE),
        example: None,
        group: Enrichment,
        doc: "`replace`: the alternate email becomes exactly the HR value, so a former personal address can no longer reset the password. `merge`: keep existing values and add the HR value (250 at most).",
    }
    ENRICH_SSPR_EMAIL_TARGET {
        default: Text("otherMails"),
        example: None,
        group: Enrichment,
        doc: "where the HR personal email goes: `otherMails` (the SSPR \"Alternate email\"; needs `User-Mail.ReadWrite.All`), `authenticationMethod` (the \"Authentication email\", `/authentication/emailMethods`; needs `UserAuthenticationMethod.ReadWrite.All`: `grant-graph-permissions.sh --email-method`), or `both`.",
    }
    ENRICH_SSPR_OVERWRITE_REGISTERED {
        default: Flag(false),
        example: None,
        group: Enrichment,
        doc: "replace an authentication email that entra-enrich did not write (the user registered it, or an admin set it). Off: such a method is left alone and reported.",
    }
    ENRICH_DRY_RUN {
        default: Flag(false),
        example: Some("true"),
        group: Enrichment,
        doc: "plan and report, write nothing.",
    }
    ENRICH_MAX_WRITES_PER_MINUTE {
        default: Number(DEFAULT_MAX_WRITES_PER_MINUTE),
        example: None,
        group: Enrichment,
        doc: "client-side write rate, shared by all writes of one process. Graph's quota is 3,000 per 150 s (1,200/min) per app and tenant, shared by all of this app's handlers: the default leaves headroom. Capped at 1,200 (except against a loopback sandbox with a time-scaled quota).",
    }
    ENRICH_TIME_BUDGET_SECONDS {
        default: Seconds(DEFAULT_TIME_BUDGET),
        example: None,
        group: Enrichment,
        doc: "how long one timer invocation starts new work before it checkpoints and returns; every call it makes stops a quarter of it later (5 to 60 s), so keep it a minute under `functionTimeout`.",
    }
    ENRICH_JOINER_DEADLINE_SECONDS {
        default: Seconds(DEFAULT_JOINER_DEADLINE),
        example: None,
        group: Enrichment,
        doc: "lcw-joiner answers within this: every Graph, token and state call runs under it, and past it the answer is 503 + `Retry-After` with no resume. Keep it inside the relay's 60 s HTTP action timeout.",
    }
    ENRICH_HEALTH_CHECKS_SECONDS {
        default: Seconds(DEFAULT_HEALTH_CHECKS_TTL),
        example: None,
        group: Enrichment,
        doc: "health shows doctor's cheap tenant checks (permissions, Email OTP, policy migration) under `tenantChecks`, read at most this often (one token and one policy read); 0 leaves them out. `entra-enrich doctor` runs every check.",
    }
    ENRICH_TENANT_ID {
        default: Unset("–"),
        example: Some("<tenant id>"),
        group: CallerCheck,
        doc: "lcw-joiner caller check: the tenant whose tokens are accepted.",
    }
    AZURE_AUTHORITY_HOST {
        default: Text(DEFAULT_AUTHORITY_HOST),
        example: None,
        group: CallerCheck,
        doc: "lcw-joiner caller check: where OpenID metadata and keys are read (`{host}/{tenant}/v2.0/.well-known/openid-configuration`).",
    }
    ENRICH_AUDIENCE {
        default: Unset("–"),
        example: Some("<application ID URI or client id the relay requests its token for>"),
        group: CallerCheck,
        doc: "lcw-joiner caller check: the required `aud`.",
    }
    ENRICH_ALLOWED_CALLERS {
        default: Unset("–"),
        example: Some("<relay Logic App managed identity app id>"),
        group: CallerCheck,
        doc: "lcw-joiner caller check: comma-separated app ids accepted in `appid`/`azp` (the relay's managed identity, optionally LCW's own `ce79fdc4-cd1d-4ea5-8139-e74d7dbe0bb7`).",
    }
    NEW_HIRE_WATCH_SCHEDULE {
        default: Text(DEFAULT_NEW_HIRE_WATCH_SCHEDULE),
        example: None,
        group: TimersAndState,
        doc: "new-hire-watch timer (six-field NCRONTAB, UTC).",
    }
    BACKFILL_SCHEDULE {
        default: Text(DEFAULT_BACKFILL_SCHEDULE),
        example: None,
        group: TimersAndState,
        doc: "backfill timer (six-field NCRONTAB, UTC).",
    }
    ENRICH_STATE_BLOB_URL {
        default: Unset("–"),
        example: Some("<https://<account>.blob.core.windows.net/entra-enrich-state>"),
        group: TimersAndState,
        doc: "blob container for checkpoints and the audit log (`https://<account>.blob.core.windows.net/<container>`), reached with the app's credential. In Azure, `AzureWebJobsStorage__blobServiceUri` + container `entra-enrich-state` is used when this is unset.",
    }
    ENRICH_STATE_DIR {
        default: Text(DEFAULT_STATE_DIR),
        example: Some(""),
        group: TimersAndState,
        doc: "local directory for checkpoints and the audit log (command-line use); wins over the blob settings.",
    }
    ENRICH_WORKDAY_REPORT_URL {
        default: Unset("–"),
        example: Some(""),
        group: Workday,
        doc: "the RaaS report, `https://{host}/ccx/service/customreport2/{tenant}/{owner}/{report}` (Actions > Web Service > View URLs); `format=json` is added.",
    }
    ENRICH_WORKDAY_EMPLOYEE_ID_FIELD {
        default: Text("Employee_ID"),
        example: None,
        group: Workday,
        doc: "the report column (or field path) matched against Entra `employeeId`.",
    }
    ENRICH_WORKDAY_PERSONAL_EMAIL_FIELD {
        default: Text("Personal_Email"),
        example: None,
        group: Workday,
        doc: "the column or field path of the personal email, e.g. `Email_Addresses[Usage=HOME].Email_Address`; two values are refused, never one picked.",
    }
    ENRICH_WORKDAY_COUNTRY_FIELD {
        default: Unset("– (no `usageLocation` from Workday)"),
        example: None,
        group: Workday,
        doc: "the column or field path of the country (ISO code or name) for `usageLocation`.",
    }
    ENRICH_WORKDAY_PROMPT {
        default: Unset("– (joiners read the cached report)"),
        example: None,
        group: Workday,
        doc: "the report's prompt that selects one worker by employee id (e.g. `Employee_ID`): lcw-joiner and new-hire-watch then read one row per user.",
    }
    ENRICH_WORKDAY_CACHE_SECONDS {
        default: Seconds(Duration::from_secs(900)),
        example: None,
        group: Workday,
        doc: "without a prompt, joiners use a copy of the full report kept in the state store and read again when older than this.",
    }
    ENRICH_WORKDAY_USERNAME {
        default: Unset("–"),
        example: Some(""),
        group: Workday,
        doc: "Basic authentication: the Integration System User (`ISU_…@tenant`).",
    }
    ENRICH_WORKDAY_PASSWORD {
        default: Unset("–"),
        example: None,
        group: Workday,
        doc: "the ISU's password, as a plain setting (a Key Vault reference `@Microsoft.KeyVault(...)` works); prefer `ENRICH_WORKDAY_PASSWORD_SECRET_NAME`.",
    }
    ENRICH_WORKDAY_PASSWORD_SECRET_NAME {
        default: Unset("–"),
        example: None,
        group: Workday,
        doc: "the Key Vault secret (in `ENRICH_KEYVAULT_URL`) holding the ISU's password: read with the managed identity, cached, read again once after a Workday 401 (rotation).",
    }
    ENRICH_WORKDAY_TOKEN_URL {
        default: Unset("– (Basic authentication)"),
        example: None,
        group: Workday,
        doc: "OAuth 2.0 instead of Basic: `https://{host}/ccx/oauth2/{tenant}/token`, with the refresh-token grant.",
    }
    ENRICH_WORKDAY_CLIENT_ID {
        default: Unset("–"),
        example: None,
        group: Workday,
        doc: "OAuth: the API client's id.",
    }
    ENRICH_WORKDAY_CLIENT_SECRET_NAME {
        default: Unset("–"),
        example: None,
        group: Workday,
        doc: "OAuth: the Key Vault secret holding the API client's secret.",
    }
    ENRICH_WORKDAY_REFRESH_TOKEN_SECRET_NAME {
        default: Unset("–"),
        example: None,
        group: Workday,
        doc: "OAuth: the Key Vault secret holding the refresh token.",
    }
    ENRICH_WORKDAY_WRITEBACK {
        default: Text("off"),
        example: None,
        group: Workday,
        doc: "write the joiner's work email (`email`) and username (`email,username`) back to Workday at once, from lcw-joiner and new-hire-watch (a backfill only with `--writeback`); `off` writes nothing to Workday.",
    }
    ENRICH_WORKDAY_WWS_URL {
        default: Unset("– (required with writeback)"),
        example: None,
        group: Workday,
        doc: "Workday Web Services, `https://{host}/ccx/service/{tenant}/Human_Resources/v{NN.N}` (the version is the URL's last part); signs in with a WS-Security UsernameToken for `ENRICH_WORKDAY_USERNAME` and its password.",
    }
    ENRICH_WORKDAY_WRITEBACK_EMAIL {
        default: Text("mail"),
        example: None,
        group: Workday,
        doc: "the work email written back: `mail` (the UPN when `mail` is empty) or `userPrincipalName`; it becomes the worker's primary WORK email, other addresses kept.",
    }
    ENRICH_WORKDAY_WRITEBACK_USERNAME {
        default: Text("upn"),
        example: None,
        group: Workday,
        doc: "the Workday username written back: `upn`, or `local-part` (the UPN before its `@`).",
    }
    ENRICH_WORKDAY_WRITEBACK_FROM {
        default: Text("created"),
        example: None,
        group: Workday,
        doc: "`created` writes back as soon as the account exists; `hire-date` waits (queued in the state store) until the user's `employeeHireDate`.",
    }
}
