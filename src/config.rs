//! Application settings: environment variables with the same names locally (`local.settings.json`,
//! the shell) and in Azure (app settings). Everything is validated once, at start-up, and every problem
//! is reported together, each naming the setting and the fix. Values are never echoed when they may be
//! secret or personal.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use entra_core::{OtherMailsMode, PropertyPath, ScopeFilter};
use url::Url;

/// The default Microsoft Graph host (global cloud), defined by the Graph client. Sovereign clouds set
/// `GRAPH_BASE_URL`.
pub use entra_graph::DEFAULT_BASE_URL as DEFAULT_GRAPH_BASE_URL;
/// The documented Microsoft Graph service roots: global, US Government L4 (GCC High), US Government
/// L5 (DoD), China (21Vianet) (<https://learn.microsoft.com/graph/deployments>). Our Graph access token
/// goes to this host, so any other needs `ENRICH_ALLOW_CUSTOM_GRAPH_HOST=true`.
pub const GRAPH_HOSTS: [&str; 4] = [
    "graph.microsoft.com",
    "graph.microsoft.us",
    "dod-graph.microsoft.us",
    "microsoftgraph.chinacloudapi.cn",
];
/// The default Entra authority host, defined by the caller check.
pub use entra_lcw::DEFAULT_AUTHORITY_HOST;
/// The default source of `otherMails`: the HR personal email, synced into the user's extension attribute.
pub const DEFAULT_OTHERMAILS_SOURCE: &str = "onPremisesExtensionAttributes.extensionAttribute1";
/// The default scope: hybrid (synced) users only, defined by the engine.
pub use entra_core::DEFAULT_SCOPE;
/// Graph's per app+tenant write quota is 3,000 requests per 150 s = 1,200 per minute
/// (<https://learn.microsoft.com/graph/throttling-limits#identity-and-access-service-limits>).
pub const GRAPH_WRITE_QUOTA_PER_MINUTE: u32 = 1_200;
/// Our default: 1,000 writes a minute, leaving ~17 % headroom for the app's other handlers; defined by
/// the Graph client's write limiter.
pub use entra_graph::DEFAULT_MAX_WRITES_PER_MINUTE;
/// Default new-hire-watch schedule: every 2 minutes, UTC (NCRONTAB, six fields).
pub const DEFAULT_NEW_HIRE_WATCH_SCHEDULE: &str = "0 */2 * * * *";
/// Default backfill schedule: daily at 02:00 UTC.
pub const DEFAULT_BACKFILL_SCHEDULE: &str = "0 0 2 * * *";

/// Default time budget of one timer invocation.
pub const DEFAULT_TIME_BUDGET: Duration = Duration::from_secs(240);
/// Default lcw-joiner deadline: inside the relay's 60 s HTTP action timeout, with room for its answer.
pub const DEFAULT_JOINER_DEADLINE: Duration = Duration::from_secs(40);
/// How long health reuses its tenant checks.
pub const DEFAULT_HEALTH_CHECKS_TTL: Duration = Duration::from_secs(600);

/// `ENRICH_OTHERMAILS_MODE` when unset.
pub const DEFAULT_OTHERMAILS_MODE: &str = "replace";
/// `ENRICH_STATE_DIR` when no state setting is set (see [`default_state_dir`]).
pub const DEFAULT_STATE_DIR: &str = ".entra-enrich";

pub mod setting;
mod workday;
mod writeback;

pub use setting::{Setting, SettingDefault, SettingGroup, SETTINGS};
pub use workday::{SourceSetting, WorkdayAuthSetting, WorkdaySettings};
pub use writeback::{UserNameForm, WorkEmailFrom, WritebackFrom, WritebackSettings};

/// How the app authenticates to Graph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialSetting {
    /// App Service / Functions managed identity (`IDENTITY_ENDPOINT` + `IDENTITY_HEADER`);
    /// `AZURE_CLIENT_ID` selects a user-assigned identity.
    ManagedIdentity { client_id: Option<String> },
    /// Workload identity federation (`AZURE_TENANT_ID`, `AZURE_CLIENT_ID`, `AZURE_FEDERATED_TOKEN_FILE`).
    WorkloadIdentity,
    /// An app registration with a client secret (`AZURE_TENANT_ID`, `AZURE_CLIENT_ID`, and
    /// `AZURE_CLIENT_SECRET` or a Key Vault reference).
    ClientSecret {
        tenant_id: String,
        client_id: String,
        secret: SecretSource,
    },
    /// Azure CLI, then Azure Developer CLI (`az login`): for engineers at a terminal.
    DeveloperTools,
}

/// Where a client secret comes from. The secret itself is never kept in the config.
#[derive(Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// The value of an environment variable (read when the credential is built).
    Env(&'static str),
    /// A Key Vault secret, read with the ambient credential.
    KeyVault { vault_url: Url, name: String },
}

impl fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretSource::Env(name) => write!(f, "Env({name})"),
            SecretSource::KeyVault { vault_url, name } => {
                write!(f, "KeyVault({vault_url}, {name})")
            }
        }
    }
}

/// Where checkpoints, cursors and the audit log live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateSetting {
    /// A local directory (`ENRICH_STATE_DIR`), for command-line use.
    Directory(PathBuf),
    /// A blob container URL (`ENRICH_STATE_BLOB_URL`, or `AzureWebJobsStorage__blobServiceUri` plus
    /// the container `entra-enrich`), reached with the app's credential.
    Blob(Url),
}

/// Settings of the lcw-joiner caller check (defence in depth behind the function key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallerCheck {
    pub authority_host: Url,
    pub tenant_id: String,
    pub audience: String,
    pub allowed_callers: Vec<String>,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub graph_base_url: Url,
    pub credential: CredentialSetting,
    pub other_mails_source: PropertyPath,
    pub usage_location_source: Option<PropertyPath>,
    pub scope: ScopeFilter,
    pub other_mails_mode: OtherMailsMode,
    /// `ENRICH_SSPR_EMAIL_TARGET`.
    pub sspr_target: entra_core::SsprEmailTarget,
    /// `ENRICH_SSPR_OVERWRITE_REGISTERED`.
    pub sspr_overwrite_registered: bool,
    pub dry_run: bool,
    pub max_writes_per_minute: u32,
    pub caller_check: Option<CallerCheck>,
    pub state: StateSetting,
    pub new_hire_watch_schedule: String,
    pub backfill_schedule: String,
    /// How long one timer invocation may start new work before it checkpoints and returns.
    pub time_budget: Duration,
    /// How long lcw-joiner may take before it answers 503 (`ENRICH_JOINER_DEADLINE_SECONDS`).
    pub joiner_deadline: Duration,
    /// How long health reuses its tenant checks; zero leaves them out (`ENRICH_HEALTH_CHECKS_SECONDS`).
    pub health_checks_ttl: Duration,
    /// Where HR values come from (`ENRICH_SOURCE`).
    pub source: SourceSetting,
    /// Workday writeback (`ENRICH_WORKDAY_WRITEBACK`); `None` when off.
    pub writeback: Option<WritebackSettings>,
    /// `GRAPH_BASE_URL` is not a documented Graph host, allowed by `ENRICH_ALLOW_CUSTOM_GRAPH_HOST`.
    pub custom_graph_host: bool,
}

/// The `config` part of a health answer: validity, every problem (setting, problem, fix) and every
/// warning. `built` is the configuration already in use, if any; otherwise `env` is validated now.
/// Values are never shown.
pub fn settings_report(built: Option<&Config>, env: &Env) -> serde_json::Value {
    let parsed;
    let (config, problems) = match built {
        Some(c) => (Some(c), Vec::new()),
        None => match Config::from_env(env) {
            Ok(c) => {
                parsed = c;
                (Some(&parsed), Vec::new())
            }
            Err(e) => (None, e.problems),
        },
    };
    let problems: Vec<serde_json::Value> = problems
        .iter()
        .map(|p| serde_json::json!({"setting": p.setting, "problem": p.problem, "fix": p.fix}))
        .collect();
    serde_json::json!({
        "valid": problems.is_empty(),
        "problems": problems,
        "warnings": config.map(Config::warnings).unwrap_or_default(),
    })
}

impl Config {
    /// Settings that are valid but deserve a second look; `config` and health show them.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.custom_graph_host {
            out.push(format!(
                "GRAPH_BASE_URL points at {}, not a documented Microsoft Graph host (ENRICH_ALLOW_CUSTOM_GRAPH_HOST=true): the app's Graph access token is sent there",
                self.graph_base_url.host_str().unwrap_or("(no host)")
            ));
        }
        out
    }
}

/// One invalid setting: which one, what is wrong, how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingProblem {
    pub setting: &'static str,
    pub problem: String,
    pub fix: String,
}

impl fmt::Display for SettingProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} Fix: {}", self.setting, self.problem, self.fix)
    }
}

/// Every problem found in the settings.
#[derive(Debug, Clone, thiserror::Error)]
pub struct ConfigError {
    pub problems: Vec<SettingProblem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} invalid setting(s) (see README › Configuration):",
            self.problems.len()
        )?;
        for p in &self.problems {
            writeln!(f, "  - {p}")?;
        }
        Ok(())
    }
}

/// A read-only view of the environment, so tests pass a map and production passes `std::env`.
pub type Env = BTreeMap<String, String>;

/// Reads the process environment into an [`Env`] (non-UTF-8 values are ignored).
pub fn process_env() -> Env {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect()
}

struct Reader<'a> {
    env: &'a Env,
    problems: Vec<SettingProblem>,
}

impl<'a> Reader<'a> {
    /// The trimmed value of any variable (the table's or the platform's), `None` when unset or empty.
    fn get(&self, name: &str) -> Option<&'a str> {
        self.env
            .get(name)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    }

    /// The value of a setting of the table, `None` when unset or empty.
    fn value(&self, s: &Setting) -> Option<&'a str> {
        self.get(s.name)
    }

    /// The value of a setting with a text default, or that default.
    fn text(&self, s: &Setting) -> &'a str {
        self.value(s).unwrap_or(s.text_default())
    }

    fn problem(
        &mut self,
        setting: &'static str,
        problem: impl Into<String>,
        fix: impl Into<String>,
    ) {
        self.problems.push(SettingProblem {
            setting,
            problem: problem.into(),
            fix: fix.into(),
        });
    }

    fn bool(&mut self, s: &Setting) -> bool {
        let default = s.flag_default();
        match self.value(s).map(|v| v.to_ascii_lowercase()) {
            None => default,
            Some(v) if ["true", "1", "yes", "on"].contains(&v.as_str()) => true,
            Some(v) if ["false", "0", "no", "off"].contains(&v.as_str()) => false,
            Some(_) => {
                self.problem(s.name, "is not a boolean.", "set it to true or false.");
                default
            }
        }
    }

    fn url(&mut self, s: &Setting) -> Url {
        let default = s.text_default();
        match Url::parse(self.text(s)) {
            // Never echoed: the value would carry the credentials.
            Ok(u) if !u.username().is_empty() || u.password().is_some() => {
                self.problem(
                    s.name,
                    "holds a user name or password (user:pass@host); credentials never go in a URL setting.",
                    format!("remove the part before @, e.g. {default}."),
                );
                fallback_url(default)
            }
            Ok(u) if is_https_or_loopback(&u) => u,
            Ok(_) => {
                self.problem(
                    s.name,
                    "must use https (plain http is accepted only for a loopback host such as 127.0.0.1).",
                    format!("use an https URL, e.g. {default}."),
                );
                fallback_url(default)
            }
            Err(e) => {
                self.problem(
                    s.name,
                    format!("is not a valid URL ({e})."),
                    format!("use an absolute URL, e.g. {default}."),
                );
                fallback_url(default)
            }
        }
    }
}

fn fallback_url(default: &str) -> Url {
    Url::parse(default)
        .unwrap_or_else(|_| Url::parse("https://invalid.example").expect("static URL"))
}

/// True when the URL is https, or plain http to a loopback host (the local sandbox).
pub fn is_https_or_loopback(url: &Url) -> bool {
    match url.scheme() {
        "https" => true,
        "http" => is_loopback(url),
        _ => false,
    }
}

/// True when the URL's host is loopback (127.0.0.0/8, ::1, localhost).
pub fn is_loopback(url: &Url) -> bool {
    matches!(url.host(), Some(url::Host::Ipv4(ip)) if ip.is_loopback())
        || matches!(url.host(), Some(url::Host::Ipv6(ip)) if ip.is_loopback())
        || url.host_str() == Some("localhost")
}

impl Config {
    /// Validates the settings in `env`. All problems are collected and returned together.
    pub fn from_env(env: &Env) -> Result<Config, ConfigError> {
        let mut r = Reader {
            env,
            problems: Vec::new(),
        };
        let (graph_base_url, custom_graph_host) = read_graph(&mut r);
        let credential = read_credential(&mut r);
        let (other_mails_source, usage_location_source) = read_sources(&mut r);
        let scope = read_scope(&mut r);
        let other_mails_mode = read_other_mails_mode(&mut r);
        let sspr_target = read_sspr_target(&mut r);
        let sspr_overwrite_registered = r.bool(&setting::ENRICH_SSPR_OVERWRITE_REGISTERED);
        let dry_run = r.bool(&setting::ENRICH_DRY_RUN);
        // Real Graph caps the rate at its quota; a loopback sandbox may run a time-scaled quota, so the
        // cap does not apply there (benchmarks and the demo).
        let max_writes_per_minute = read_max_writes(&mut r, graph_base_url.scheme() == "http");
        let caller_check = read_caller_check(&mut r);
        let state = read_state(&mut r);
        let new_hire_watch_schedule = read_schedule(&mut r, &setting::NEW_HIRE_WATCH_SCHEDULE);
        let backfill_schedule = read_schedule(&mut r, &setting::BACKFILL_SCHEDULE);
        let time_budget = read_seconds(
            &mut r,
            &setting::ENRICH_TIME_BUDGET_SECONDS,
            5..=3_600,
            "keep it below the host's functionTimeout (host.json) less a minute",
        );
        let joiner_deadline = read_seconds(
            &mut r,
            &setting::ENRICH_JOINER_DEADLINE_SECONDS,
            2..=230,
            "keep it inside the relay's 60 s HTTP action timeout (infra/relay-logicapp.bicep)",
        );
        let source = workday::read_source(&mut r);
        let writeback = writeback::read_writeback(&mut r);
        let health_checks_ttl = read_seconds(
            &mut r,
            &setting::ENRICH_HEALTH_CHECKS_SECONDS,
            0..=86_400,
            "0 leaves the tenant checks out of health; 600 reads Graph once per ten minutes",
        );
        if !r.problems.is_empty() {
            return Err(ConfigError {
                problems: r.problems,
            });
        }
        Ok(Config {
            graph_base_url,
            credential,
            other_mails_source,
            usage_location_source,
            scope,
            other_mails_mode,
            sspr_target,
            sspr_overwrite_registered,
            dry_run,
            max_writes_per_minute,
            caller_check,
            state,
            new_hire_watch_schedule,
            backfill_schedule,
            time_budget,
            joiner_deadline,
            health_checks_ttl,
            source,
            writeback,
            custom_graph_host,
        })
    }
}

/// `GRAPH_BASE_URL` (query removed) and whether it is a host outside [`GRAPH_HOSTS`] allowed by
/// `ENRICH_ALLOW_CUSTOM_GRAPH_HOST`.
fn read_graph(r: &mut Reader<'_>) -> (Url, bool) {
    let s = &setting::GRAPH_BASE_URL;
    let mut url = r.url(s);
    // Calls go to {GRAPH_BASE_URL}/v1.0/...: a trailing /v1.0 would double it.
    if url.path().trim_end_matches('/').ends_with("/v1.0") {
        r.problem(
            s.name,
            "must be the host only; entra-enrich appends /v1.0 itself.",
            format!("remove the /v1.0 suffix, e.g. {}.", s.text_default()),
        );
    }
    url.set_query(None);
    let allow_custom = r.bool(&setting::ENRICH_ALLOW_CUSTOM_GRAPH_HOST);
    let documented = is_loopback(&url)
        || url
            .host_str()
            .is_some_and(|h| GRAPH_HOSTS.iter().any(|g| h.eq_ignore_ascii_case(g)));
    if !documented && !allow_custom {
        r.problem(
            s.name,
            format!(
                "is not a Microsoft Graph host ({}) nor loopback; the app's Graph access token would be sent to it.",
                GRAPH_HOSTS.join(", ")
            ),
            format!("use your cloud's Graph host (https://learn.microsoft.com/graph/deployments), or set {}=true for a proxy you control.", setting::ENRICH_ALLOW_CUSTOM_GRAPH_HOST.name),
        );
    }
    (url, allow_custom && !documented)
}

/// `ENRICH_OTHERMAILS_SOURCE` and `ENRICH_USAGELOCATION_SOURCE` (unset: never write `usageLocation`).
fn read_sources(r: &mut Reader<'_>) -> (PropertyPath, Option<PropertyPath>) {
    let s = &setting::ENRICH_OTHERMAILS_SOURCE;
    let other_mails = match PropertyPath::parse(r.text(s)) {
        Ok(p) => p,
        Err(e) => {
            r.problem(
                s.name,
                format!("is not a user property path ({e})."),
                format!("use a path such as {}.", s.text_default()),
            );
            PropertyPath::parse(s.text_default()).expect("static path")
        }
    };
    let s = &setting::ENRICH_USAGELOCATION_SOURCE;
    let usage_location = match r.value(s).map(PropertyPath::parse) {
        None => None,
        Some(Ok(p)) => Some(p),
        Some(Err(e)) => {
            r.problem(
                s.name,
                format!("is not a user property path ({e})."),
                "use a path such as onPremisesExtensionAttributes.extensionAttribute2, or unset it to never write usageLocation.",
            );
            None
        }
    };
    (other_mails, usage_location)
}

/// `ENRICH_SCOPE`: the filter parses, and every property it names is a Graph user property.
fn read_scope(r: &mut Reader<'_>) -> ScopeFilter {
    let s = &setting::ENRICH_SCOPE;
    let scope = match ScopeFilter::parse(r.text(s)) {
        Ok(scope) => scope,
        Err(e) => {
            r.problem(
                s.name,
                format!("is not a valid scoping filter: {e}."),
                format!(
                    "see README › Scope syntax; the default is `{}`.",
                    s.text_default()
                ),
            );
            ScopeFilter::default()
        }
    };
    check_scope_properties(r, &scope);
    scope
}

fn read_sspr_target(r: &mut Reader<'_>) -> entra_core::SsprEmailTarget {
    let s = &setting::ENRICH_SSPR_EMAIL_TARGET;
    entra_core::SsprEmailTarget::parse(r.text(s)).unwrap_or_else(|| {
        r.problem(
            s.name,
            "must be `otherMails`, `authenticationMethod` or `both`.",
            "use otherMails (the Alternate email), authenticationMethod (the Authentication email) or both.",
        );
        entra_core::SsprEmailTarget::OtherMails
    })
}

fn read_other_mails_mode(r: &mut Reader<'_>) -> OtherMailsMode {
    let s = &setting::ENRICH_OTHERMAILS_MODE;
    match r.text(s).to_ascii_lowercase().as_str() {
        "replace" => OtherMailsMode::Replace,
        "merge" => OtherMailsMode::Merge,
        _ => {
            r.problem(
                s.name,
                "must be `replace` or `merge`.",
                "use replace (the alternate email becomes exactly the HR value) or merge (keep existing values and add the HR value).",
            );
            OtherMailsMode::Replace
        }
    }
}

/// `ENRICH_MAX_WRITES_PER_MINUTE`: 1 to Graph's quota, or any positive number against a `sandbox`.
fn read_max_writes(r: &mut Reader<'_>, sandbox: bool) -> u32 {
    let s = &setting::ENRICH_MAX_WRITES_PER_MINUTE;
    let default = s.number_default();
    let Some(raw) = r.value(s) else {
        return default;
    };
    match raw.parse::<u32>() {
        Ok(n) if (1..=GRAPH_WRITE_QUOTA_PER_MINUTE).contains(&n) || (sandbox && n >= 1) => n,
        Ok(_) | Err(_) => {
            r.problem(
                s.name,
                format!(
                    "must be a whole number from 1 to {GRAPH_WRITE_QUOTA_PER_MINUTE} (Graph's write quota is 3,000 per 150 s per app and tenant)."
                ),
                format!("use {default}, which leaves headroom for the app's other handlers."),
            );
            default
        }
    }
}

fn read_credential(r: &mut Reader<'_>) -> CredentialSetting {
    let client_id = r.value(&setting::AZURE_CLIENT_ID).map(str::to_string);
    let tenant_id = r.value(&setting::AZURE_TENANT_ID).map(str::to_string);
    let has_mi = r.get("IDENTITY_ENDPOINT").is_some() && r.get("IDENTITY_HEADER").is_some();
    let s = &setting::ENRICH_CREDENTIAL;
    let choice = r.value(s).map(|v| v.to_ascii_lowercase());
    match choice.as_deref() {
        None if has_mi => CredentialSetting::ManagedIdentity { client_id },
        None if r.get("AZURE_FEDERATED_TOKEN_FILE").is_some() => {
            CredentialSetting::WorkloadIdentity
        }
        None => CredentialSetting::DeveloperTools,
        Some("managed-identity") | Some("managedidentity") => {
            if !has_mi {
                r.problem(
                    s.name,
                    "is managed-identity, but IDENTITY_ENDPOINT and IDENTITY_HEADER are not set.",
                    "enable a managed identity on the function app (the platform sets both), or choose another credential.",
                );
            }
            CredentialSetting::ManagedIdentity { client_id }
        }
        Some("workload-identity") => {
            check_workload_identity(r);
            CredentialSetting::WorkloadIdentity
        }
        Some("client-secret") => read_client_secret(r, tenant_id, client_id),
        Some("developer-tools") | Some("azure-cli") => CredentialSetting::DeveloperTools,
        Some(_) => {
            r.problem(
                s.name,
                "is not a known credential.",
                "use managed-identity, workload-identity, client-secret or developer-tools (or leave it unset to choose automatically).",
            );
            CredentialSetting::DeveloperTools
        }
    }
}

fn check_workload_identity(r: &mut Reader<'_>) {
    for name in [
        setting::AZURE_TENANT_ID.name,
        setting::AZURE_CLIENT_ID.name,
        "AZURE_FEDERATED_TOKEN_FILE",
    ] {
        if r.get(name).is_none() {
            r.problem(
                setting::ENRICH_CREDENTIAL.name,
                format!("is workload-identity, but {name} is not set."),
                format!("set {name} (the workload identity webhook sets it in Kubernetes)."),
            );
        }
    }
}

/// `ENRICH_CREDENTIAL=client-secret`: the app registration and where its secret is (never the secret).
fn read_client_secret(
    r: &mut Reader<'_>,
    tenant_id: Option<String>,
    client_id: Option<String>,
) -> CredentialSetting {
    let secret = read_secret_source(r);
    if tenant_id.is_none() || client_id.is_none() {
        r.problem(
            setting::ENRICH_CREDENTIAL.name,
            "is client-secret, but AZURE_TENANT_ID or AZURE_CLIENT_ID is not set.",
            "set both to the app registration's tenant and application (client) id.",
        );
    }
    CredentialSetting::ClientSecret {
        tenant_id: tenant_id.unwrap_or_default(),
        client_id: client_id.unwrap_or_default(),
        secret,
    }
}

/// `AZURE_CLIENT_SECRET` if set, else the Key Vault secret `ENRICH_KEYVAULT_URL` +
/// `ENRICH_CLIENT_SECRET_NAME`.
fn read_secret_source(r: &mut Reader<'_>) -> SecretSource {
    let vault = &setting::ENRICH_KEYVAULT_URL;
    let (env_secret, vault_url, name) = (
        r.get("AZURE_CLIENT_SECRET"),
        r.value(vault),
        r.value(&setting::ENRICH_CLIENT_SECRET_NAME),
    );
    match (env_secret, vault_url, name) {
        (Some(_), _, _) => SecretSource::Env("AZURE_CLIENT_SECRET"),
        (None, Some(raw), Some(name)) => match Url::parse(raw) {
            Ok(vault_url) if vault_url.scheme() == "https" => SecretSource::KeyVault {
                vault_url,
                name: name.to_string(),
            },
            _ => {
                r.problem(
                    vault.name,
                    "is not an https Key Vault URL.",
                    "use https://<vault-name>.vault.azure.net/.",
                );
                SecretSource::Env("AZURE_CLIENT_SECRET")
            }
        },
        _ => {
            r.problem(
                "AZURE_CLIENT_SECRET",
                "is not set, and no Key Vault secret is named (ENRICH_KEYVAULT_URL + ENRICH_CLIENT_SECRET_NAME).",
                "prefer a managed identity; otherwise store the secret in Key Vault and set ENRICH_KEYVAULT_URL and ENRICH_CLIENT_SECRET_NAME.",
            );
            SecretSource::Env("AZURE_CLIENT_SECRET")
        }
    }
}

/// The lcw-joiner caller check: off unless one of `ENRICH_TENANT_ID`, `ENRICH_AUDIENCE`,
/// `ENRICH_ALLOWED_CALLERS` is set, and then all three are required.
fn read_caller_check(r: &mut Reader<'_>) -> Option<CallerCheck> {
    let tenant = r.value(&setting::ENRICH_TENANT_ID);
    let audience = r.value(&setting::ENRICH_AUDIENCE);
    let callers = r.value(&setting::ENRICH_ALLOWED_CALLERS);
    if tenant.is_none() && audience.is_none() && callers.is_none() {
        return None;
    }
    let authority_host = r.url(&setting::AZURE_AUTHORITY_HOST);
    if tenant.is_none() {
        missing_for_caller_check(
            r,
            &setting::ENRICH_TENANT_ID,
            "set it to your Entra tenant id (a GUID).",
        );
    }
    if audience.is_none() {
        missing_for_caller_check(
            r,
            &setting::ENRICH_AUDIENCE,
            "set it to the application ID URI or client id the relay requests its token for.",
        );
    }
    let allowed_callers: Vec<String> = callers
        .unwrap_or_default()
        .split([',', ';', ' '])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    if allowed_callers.is_empty() {
        missing_for_caller_check(
            r,
            &setting::ENRICH_ALLOWED_CALLERS,
            "set it to the relay Logic App's managed identity app id (comma-separated list).",
        );
    }
    if let Some(t) = tenant {
        check_tenant(r, t);
    }
    Some(CallerCheck {
        authority_host,
        tenant_id: tenant.unwrap_or_default().to_string(),
        audience: audience.unwrap_or_default().to_string(),
        allowed_callers,
    })
}

fn missing_for_caller_check(r: &mut Reader<'_>, s: &Setting, fix: &str) {
    r.problem(
        s.name,
        "is required when the lcw-joiner caller check is configured.",
        fix.to_string(),
    );
}

/// `ENRICH_TENANT_ID` is a GUID or a domain name (it goes into the authority URL's path).
fn check_tenant(r: &mut Reader<'_>, tenant: &str) {
    if !tenant
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
    {
        r.problem(
            setting::ENRICH_TENANT_ID.name,
            "must be a tenant GUID or a verified domain name.",
            "copy the Directory (tenant) ID from the Entra admin center.",
        );
    }
}

/// `ENRICH_STATE_DIR`, else `ENRICH_STATE_BLOB_URL`, else the Functions host's blob service plus
/// [`entra_state::DEFAULT_CONTAINER`], else [`default_state_dir`].
fn read_state(r: &mut Reader<'_>) -> StateSetting {
    if let Some(dir) = r.value(&setting::ENRICH_STATE_DIR) {
        return StateSetting::Directory(PathBuf::from(dir));
    }
    let s = &setting::ENRICH_STATE_BLOB_URL;
    if let Some(raw) = r.value(s) {
        return match Url::parse(raw) {
            Ok(u) if is_https_or_loopback(&u) && names_a_container(&u) => StateSetting::Blob(u),
            _ => {
                r.problem(
                    s.name,
                    "is not a blob container URL.",
                    "use https://<account>.blob.core.windows.net/<container>.",
                );
                StateSetting::Directory(default_state_dir())
            }
        };
    }
    if let Some(raw) = r.get("AzureWebJobsStorage__blobServiceUri") {
        return match Url::parse(raw).and_then(|u| u.join(entra_state::DEFAULT_CONTAINER)) {
            Ok(u) if u.scheme() == "https" => StateSetting::Blob(u),
            _ => {
                r.problem(
                    "AzureWebJobsStorage__blobServiceUri",
                    "is not an https blob service URL.",
                    "use https://<account>.blob.core.windows.net.",
                );
                StateSetting::Directory(default_state_dir())
            }
        };
    }
    StateSetting::Directory(default_state_dir())
}

/// The URL's path names a container: `/<container>` on an account's own host
/// (`<account>.blob.core.windows.net`), `/<account>/<container>` on a loopback emulator (Azurite).
fn names_a_container(url: &Url) -> bool {
    let segments = url
        .path_segments()
        .map_or(0, |s| s.filter(|x| !x.is_empty()).count());
    segments >= if is_loopback(url) { 2 } else { 1 }
}

/// `./.entra-enrich`, the default local state directory.
pub fn default_state_dir() -> PathBuf {
    PathBuf::from(setting::ENRICH_STATE_DIR.text_default())
}

/// A whole number of seconds within `range`, or the setting's default (and a problem naming it).
fn read_seconds(
    r: &mut Reader<'_>,
    s: &Setting,
    range: std::ops::RangeInclusive<u64>,
    fix: &str,
) -> Duration {
    let default = s.seconds_default();
    let Some(raw) = r.value(s) else {
        return default;
    };
    match raw.parse::<u64>() {
        Ok(n) if range.contains(&n) => Duration::from_secs(n),
        _ => {
            r.problem(
                s.name,
                format!(
                    "must be a whole number of seconds from {} to {}.",
                    range.start(),
                    range.end()
                ),
                format!("{fix}; {} is the default.", default.as_secs()),
            );
            default
        }
    }
}

/// Every property `ENRICH_SCOPE` names must be a Graph user property (a misspelling would otherwise
/// fail later, at Graph, without naming the setting).
fn check_scope_properties(r: &mut Reader<'_>, scope: &ScopeFilter) {
    for name in scope.properties() {
        if let Err(suggestion) = entra_core::properties::check_user_property(&name) {
            let fix = match suggestion {
                Some(p) => format!("did you mean `{p}`? (Graph user properties: https://learn.microsoft.com/graph/api/resources/user#properties)"),
                None => "use a Graph user property (https://learn.microsoft.com/graph/api/resources/user#properties) or a directory extension attribute (extension_{appId}_{name}).".to_string(),
            };
            r.problem(
                setting::ENRICH_SCOPE.name,
                format!("names `{name}`, which is not a Microsoft Graph user property."),
                fix,
            );
        }
    }
}

/// A six-field NCRONTAB schedule (or a `%app setting%` reference), else a problem naming it.
fn read_schedule(r: &mut Reader<'_>, s: &Setting) -> String {
    let value = r.text(s).to_string();
    let fields = value.split_whitespace().count();
    if fields != 6 && !value.starts_with("%") {
        r.problem(
            s.name,
            format!("has {fields} fields; Azure Functions timers use six-field NCRONTAB (second minute hour day month day-of-week), in UTC."),
            format!("use e.g. `{}`.", s.text_default()),
        );
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_are_valid() {
        let c = Config::from_env(&env(&[])).expect("defaults");
        assert_eq!(c.graph_base_url.as_str(), "https://graph.microsoft.com/");
        assert_eq!(c.max_writes_per_minute, 1_000);
        assert_eq!(c.other_mails_mode, OtherMailsMode::Replace);
        assert!(c.usage_location_source.is_none());
        assert!(!c.dry_run);
        assert_eq!(c.credential, CredentialSetting::DeveloperTools);
        assert!(c.caller_check.is_none());
    }

    #[test]
    fn managed_identity_is_chosen_when_the_platform_sets_it() {
        let c = Config::from_env(&env(&[
            ("IDENTITY_ENDPOINT", "http://127.0.0.1:1/msi/token"),
            ("IDENTITY_HEADER", "x"),
            ("AZURE_CLIENT_ID", "abc"),
        ]))
        .expect("valid");
        assert_eq!(
            c.credential,
            CredentialSetting::ManagedIdentity {
                client_id: Some("abc".into())
            }
        );
    }

    #[test]
    fn every_problem_is_reported_together_and_names_the_setting() {
        let err = Config::from_env(&env(&[
            ("GRAPH_BASE_URL", "http://graph.example.com"),
            ("ENRICH_MAX_WRITES_PER_MINUTE", "5000"),
            ("ENRICH_OTHERMAILS_MODE", "append"),
            ("ENRICH_DRY_RUN", "maybe"),
            ("ENRICH_SCOPE", "onPremisesSyncEnabled IS NOT"),
            ("ENRICH_CREDENTIAL", "password"),
        ]))
        .expect_err("invalid");
        let settings: Vec<&str> = err.problems.iter().map(|p| p.setting).collect();
        for s in [
            "GRAPH_BASE_URL",
            "ENRICH_MAX_WRITES_PER_MINUTE",
            "ENRICH_OTHERMAILS_MODE",
            "ENRICH_DRY_RUN",
            "ENRICH_SCOPE",
            "ENRICH_CREDENTIAL",
        ] {
            assert!(settings.contains(&s), "{s} missing from {settings:?}");
        }
        let text = err.to_string();
        assert!(text.contains("Fix:"), "{text}");
    }

    #[test]
    fn a_secret_value_is_never_echoed() {
        let err = Config::from_env(&env(&[
            ("ENRICH_CREDENTIAL", "client-secret"),
            ("AZURE_CLIENT_SECRET", "s3cr3t-value"),
        ]))
        .expect_err("tenant and client id missing");
        assert!(!err.to_string().contains("s3cr3t-value"));
    }

    #[test]
    fn caller_check_needs_all_three_settings() {
        let err = Config::from_env(&env(&[("ENRICH_AUDIENCE", "api://x")])).expect_err("partial");
        let settings: Vec<&str> = err.problems.iter().map(|p| p.setting).collect();
        assert!(settings.contains(&"ENRICH_TENANT_ID"));
        assert!(settings.contains(&"ENRICH_ALLOWED_CALLERS"));
    }

    #[test]
    fn a_misspelled_scope_property_fails_with_a_hint() {
        let err = Config::from_env(&env(&[("ENRICH_SCOPE", "onPremiseSyncEnabled IS TRUE")]))
            .expect_err("misspelled");
        assert_eq!(err.problems[0].setting, "ENRICH_SCOPE");
        assert!(
            err.problems[0]
                .fix
                .contains("did you mean `onPremisesSyncEnabled`"),
            "{err}"
        );
    }

    #[test]
    fn graph_base_url_must_be_a_documented_graph_host_or_loopback() {
        let err = Config::from_env(&env(&[("GRAPH_BASE_URL", "https://graph.evil.example")]))
            .expect_err("an unknown host would receive the token");
        assert_eq!(err.problems[0].setting, "GRAPH_BASE_URL");
        assert!(
            err.to_string().contains("ENRICH_ALLOW_CUSTOM_GRAPH_HOST"),
            "{err}"
        );
        for ok in [
            "https://graph.microsoft.com",
            "https://graph.microsoft.us",
            "https://dod-graph.microsoft.us",
            "https://microsoftgraph.chinacloudapi.cn",
            "http://127.0.0.1:8080",
        ] {
            let c = Config::from_env(&env(&[("GRAPH_BASE_URL", ok)])).expect(ok);
            assert!(c.warnings().is_empty(), "{ok}");
        }
        // Allowed on purpose: valid, and warned about.
        let c = Config::from_env(&env(&[
            ("GRAPH_BASE_URL", "https://graph-proxy.contoso.example"),
            ("ENRICH_ALLOW_CUSTOM_GRAPH_HOST", "true"),
        ]))
        .expect("allowed");
        assert!(c.warnings()[0].contains("graph-proxy.contoso.example"));
    }

    #[test]
    fn a_url_with_credentials_is_refused_without_being_echoed() {
        let err = Config::from_env(&env(&[(
            "GRAPH_BASE_URL",
            "https://admin:hunter2@graph.microsoft.com",
        )]))
        .expect_err("userinfo");
        let text = err.to_string();
        assert!(text.contains("GRAPH_BASE_URL"), "{text}");
        assert!(
            !text.contains("hunter2") && !text.contains("admin:"),
            "{text}"
        );
    }

    #[test]
    fn graph_base_url_with_version_is_refused() {
        let err = Config::from_env(&env(&[(
            "GRAPH_BASE_URL",
            "https://graph.microsoft.com/v1.0",
        )]))
        .expect_err("v1.0 suffix");
        assert_eq!(err.problems[0].setting, "GRAPH_BASE_URL");
    }

    #[test]
    fn the_write_cap_is_graphs_quota_except_on_a_loopback_sandbox() {
        let err =
            Config::from_env(&env(&[("ENRICH_MAX_WRITES_PER_MINUTE", "1201")])).expect_err("cap");
        assert_eq!(err.problems[0].setting, "ENRICH_MAX_WRITES_PER_MINUTE");
        let c = Config::from_env(&env(&[
            ("GRAPH_BASE_URL", "http://127.0.0.1:9"),
            ("ENRICH_MAX_WRITES_PER_MINUTE", "100000"),
        ]))
        .expect("sandbox");
        assert_eq!(c.max_writes_per_minute, 100_000);
    }

    /// The README's settings table sits between these (the begin line may say more before `-->`).
    const README_BEGIN: &str = "<!-- settings:begin";
    const README_END: &str = "<!-- settings:end -->";
    /// The keys of `local.settings.example.json` that are the Functions host's own, with their values.
    const HOST_KEYS: &[(&str, &str)] = &[
        ("FUNCTIONS_WORKER_RUNTIME", "custom"),
        ("AzureWebJobsStorage", "UseDevelopmentStorage=true"),
    ];
    const BLESS_HINT: &str =
        "run `ENRICH_BLESS=1 cargo test -p entra-enrich --lib config::` to rewrite it from src/config/setting.rs";

    fn repo_file(name: &str) -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(name)
    }

    /// `ENRICH_BLESS=1`: rewrite the generated parts of the README and the example settings.
    fn bless() -> bool {
        std::env::var_os("ENRICH_BLESS").is_some_and(|v| v == "1")
    }

    #[test]
    fn the_readme_settings_table_is_rendered_from_the_table() {
        let path = repo_file("README.md");
        let readme = std::fs::read_to_string(&path).expect("README.md");
        let begin = readme
            .find(README_BEGIN)
            .expect("README lacks <!-- settings:begin -->");
        let start = begin + readme[begin..].find("-->\n").expect("begin marker ends") + 4;
        let end = readme
            .find(README_END)
            .expect("README lacks <!-- settings:end -->");
        assert!(start <= end, "the settings markers are out of order");
        let expected = format!("\n{}\n", setting::readme_table());
        if readme[start..end] == expected {
            return;
        }
        if bless() {
            let blessed = format!("{}{expected}{}", &readme[..start], &readme[end..]);
            std::fs::write(&path, blessed).expect("rewrite README.md");
            return;
        }
        panic!(
            "README.md's settings table is not what SETTINGS renders; {BLESS_HINT}, or paste this between the markers:\n{expected}"
        );
    }

    #[test]
    fn local_settings_example_is_rendered_from_the_table() {
        let path = repo_file("local.settings.example.json");
        let text = std::fs::read_to_string(&path).expect("local.settings.example.json");
        let json: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
        let expected = render_local_settings_example(&json);
        if text == expected {
            return;
        }
        if bless() {
            std::fs::write(&path, &expected).expect("rewrite local.settings.example.json");
            return;
        }
        let values = json["Values"].as_object().expect("Values object");
        let mut wrong = Vec::new();
        for (name, value) in example_values() {
            match values.get(name) {
                None => wrong.push(format!("{name} is missing")),
                Some(v) if v != &value => wrong.push(format!("{name} is {v}, not \"{value}\"")),
                Some(_) => {}
            }
        }
        for name in values.keys() {
            if !example_values().iter().any(|(n, _)| n == name) {
                wrong.push(format!("{name} is neither a setting nor a host key"));
            }
        }
        panic!(
            "local.settings.example.json is not what SETTINGS renders ({}); {BLESS_HINT}, or replace it with:\n{expected}",
            if wrong.is_empty() { "order or layout".to_string() } else { wrong.join("; ") }
        );
    }

    /// The host's keys, then every setting with its example value.
    fn example_values() -> Vec<(&'static str, String)> {
        let host = HOST_KEYS.iter().map(|(k, v)| (*k, v.to_string()));
        host.chain(SETTINGS.iter().map(|s| (s.name, s.example_value())))
            .collect()
    }

    /// `local.settings.example.json`: `Values` from the table (a blank line between groups), and the
    /// file's other members (`IsEncrypted`, `Host`) as they are.
    fn render_local_settings_example(current: &serde_json::Value) -> String {
        let quote = |s: &str| serde_json::to_string(s).expect("a string serialises");
        let mut lines: Vec<String> = HOST_KEYS
            .iter()
            .map(|(k, v)| format!("    {}: {}", quote(k), quote(v)))
            .collect();
        let mut group = None;
        for s in SETTINGS {
            if group != Some(s.group) {
                lines.push(String::new());
                group = Some(s.group);
            }
            lines.push(format!(
                "    {}: {}",
                quote(s.name),
                quote(&s.example_value())
            ));
        }
        let mut values = String::new();
        for (i, line) in lines.iter().enumerate() {
            let next_is_value = lines[i + 1..].iter().any(|l| !l.is_empty());
            let comma = if !line.is_empty() && next_is_value {
                ","
            } else {
                ""
            };
            values.push_str(&format!("{line}{comma}\n"));
        }
        let mut out = String::from("{\n");
        let current = current.as_object().expect("a JSON object");
        // The host's order: IsEncrypted, Values, then the rest (Host, ...).
        let mut keys: Vec<&str> = current.keys().map(String::as_str).collect();
        keys.retain(|k| *k != "Values");
        keys.sort_by_key(|k| *k != "IsEncrypted");
        keys.insert(keys.len().min(1), "Values");
        for key in keys {
            if key == "Values" {
                out.push_str(&format!("  \"Values\": {{\n{values}  }},\n"));
            } else {
                let pretty = serde_json::to_string_pretty(&current[key]).expect("serialises");
                out.push_str(&format!(
                    "  {}: {},\n",
                    quote(key),
                    pretty.replace('\n', "\n  ")
                ));
            }
        }
        out.truncate(out.len() - 2);
        out.push_str("\n}\n");
        out
    }

    #[test]
    fn setting_names_are_unique_and_groups_contiguous() {
        let mut names: Vec<&str> = SETTINGS.iter().map(|s| s.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), SETTINGS.len(), "a setting is listed twice");
        assert!(
            SETTINGS.windows(2).all(|w| w[0].group <= w[1].group),
            "SETTINGS must list each group's settings together, in group order"
        );
        for (host, _) in HOST_KEYS {
            assert!(!names.contains(host), "{host} is the host's, not a setting");
        }
    }

    #[test]
    fn the_table_defaults_are_the_ones_in_use() {
        let c = Config::from_env(&env(&[])).expect("defaults");
        assert_eq!(
            c.graph_base_url,
            Url::parse(setting::GRAPH_BASE_URL.text_default()).unwrap()
        );
        assert_eq!(
            setting::GRAPH_BASE_URL.text_default(),
            DEFAULT_GRAPH_BASE_URL
        );
        assert_eq!(
            c.max_writes_per_minute,
            entra_graph::DEFAULT_MAX_WRITES_PER_MINUTE
        );
        assert_eq!(
            c.scope,
            ScopeFilter::parse(entra_core::DEFAULT_SCOPE).unwrap()
        );
        assert_eq!(c.time_budget, DEFAULT_TIME_BUDGET);
        assert_eq!(c.joiner_deadline, DEFAULT_JOINER_DEADLINE);
        assert_eq!(c.new_hire_watch_schedule, DEFAULT_NEW_HIRE_WATCH_SCHEDULE);
        assert_eq!(c.backfill_schedule, DEFAULT_BACKFILL_SCHEDULE);
        assert_eq!(c.state, StateSetting::Directory(DEFAULT_STATE_DIR.into()));
        assert_eq!(
            c.other_mails_source,
            PropertyPath::parse(DEFAULT_OTHERMAILS_SOURCE).unwrap()
        );
        let c = Config::from_env(&env(&[
            ("ENRICH_AUDIENCE", "api://x"),
            ("ENRICH_TENANT_ID", "t"),
            ("ENRICH_ALLOWED_CALLERS", "a"),
        ]))
        .expect("caller check");
        assert_eq!(
            c.caller_check.expect("on").authority_host,
            Url::parse(entra_lcw::DEFAULT_AUTHORITY_HOST).unwrap()
        );
    }

    #[test]
    fn the_state_blob_url_names_a_container() {
        // What infra/main.bicep sets (host-style account URL), and Azurite's path-style one.
        for ok in [
            "https://acct.blob.core.windows.net/entra-enrich-state",
            "https://127.0.0.1:10000/devstoreaccount1/entra-enrich-state",
        ] {
            let c = Config::from_env(&env(&[("ENRICH_STATE_BLOB_URL", ok)])).expect(ok);
            assert_eq!(c.state, StateSetting::Blob(Url::parse(ok).unwrap()), "{ok}");
        }
        for bad in [
            "https://acct.blob.core.windows.net/",
            "https://127.0.0.1:10000/devstoreaccount1",
            "http://acct.blob.core.windows.net/entra-enrich-state",
            "not a url",
        ] {
            let err = Config::from_env(&env(&[("ENRICH_STATE_BLOB_URL", bad)])).expect_err(bad);
            assert_eq!(err.problems[0].setting, "ENRICH_STATE_BLOB_URL", "{bad}");
            assert!(!err.to_string().contains(bad), "{bad} echoed");
        }
        let c = Config::from_env(&env(&[(
            "AzureWebJobsStorage__blobServiceUri",
            "https://acct.blob.core.windows.net",
        )]))
        .expect("host storage");
        assert_eq!(
            c.state,
            StateSetting::Blob(
                Url::parse("https://acct.blob.core.windows.net/entra-enrich-state").unwrap()
            )
        );
    }

    #[test]
    fn loopback_http_is_accepted_for_the_sandbox() {
        let c = Config::from_env(&env(&[("GRAPH_BASE_URL", "http://127.0.0.1:8080")])).expect("ok");
        assert_eq!(c.graph_base_url.host_str(), Some("127.0.0.1"));
    }
}
