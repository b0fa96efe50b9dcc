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

/// Every app setting entra-enrich reads (documented in the README and `local.settings.example.json`).
pub const SETTINGS: &[&str] = &[
    "GRAPH_BASE_URL",
    "ENRICH_ALLOW_CUSTOM_GRAPH_HOST",
    "ENRICH_CREDENTIAL",
    "AZURE_CLIENT_ID",
    "AZURE_TENANT_ID",
    "ENRICH_KEYVAULT_URL",
    "ENRICH_CLIENT_SECRET_NAME",
    "ENRICH_SCOPE",
    "ENRICH_OTHERMAILS_SOURCE",
    "ENRICH_USAGELOCATION_SOURCE",
    "ENRICH_OTHERMAILS_MODE",
    "ENRICH_DRY_RUN",
    "ENRICH_MAX_WRITES_PER_MINUTE",
    "ENRICH_TIME_BUDGET_SECONDS",
    "ENRICH_JOINER_DEADLINE_SECONDS",
    "ENRICH_TENANT_ID",
    "AZURE_AUTHORITY_HOST",
    "ENRICH_AUDIENCE",
    "ENRICH_ALLOWED_CALLERS",
    "NEW_HIRE_WATCH_SCHEDULE",
    "BACKFILL_SCHEDULE",
    "ENRICH_STATE_BLOB_URL",
    "ENRICH_STATE_DIR",
];

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
    fn get(&self, name: &str) -> Option<&'a str> {
        self.env
            .get(name)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
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

    fn bool(&mut self, name: &'static str, default: bool) -> bool {
        match self.get(name).map(|v| v.to_ascii_lowercase()) {
            None => default,
            Some(v) if ["true", "1", "yes", "on"].contains(&v.as_str()) => true,
            Some(v) if ["false", "0", "no", "off"].contains(&v.as_str()) => false,
            Some(_) => {
                self.problem(name, "is not a boolean.", "set it to true or false.");
                default
            }
        }
    }

    fn url(&mut self, name: &'static str, default: &str) -> Url {
        let raw = self.get(name).unwrap_or(default);
        match Url::parse(raw) {
            // Never echoed: the value would carry the credentials.
            Ok(u) if !u.username().is_empty() || u.password().is_some() => {
                self.problem(
                    name,
                    "holds a user name or password (user:pass@host); credentials never go in a URL setting.",
                    format!("remove the part before @, e.g. {default}."),
                );
                fallback_url(default)
            }
            Ok(u) if is_https_or_loopback(&u) => u,
            Ok(_) => {
                self.problem(
                    name,
                    "must use https (plain http is accepted only for a loopback host such as 127.0.0.1).",
                    format!("use an https URL, e.g. {default}."),
                );
                fallback_url(default)
            }
            Err(e) => {
                self.problem(
                    name,
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

        let mut graph_base_url = r.url("GRAPH_BASE_URL", DEFAULT_GRAPH_BASE_URL);
        // Calls go to {GRAPH_BASE_URL}/v1.0/...: a trailing /v1.0 would double it.
        if graph_base_url
            .path()
            .trim_end_matches('/')
            .ends_with("/v1.0")
        {
            r.problem(
                "GRAPH_BASE_URL",
                "must be the host only; entra-enrich appends /v1.0 itself.",
                "remove the /v1.0 suffix, e.g. https://graph.microsoft.com.",
            );
        }
        graph_base_url.set_query(None);
        let custom_graph_host = r.bool("ENRICH_ALLOW_CUSTOM_GRAPH_HOST", false);
        let graph_host_is_documented = is_loopback(&graph_base_url)
            || graph_base_url
                .host_str()
                .is_some_and(|h| GRAPH_HOSTS.iter().any(|g| h.eq_ignore_ascii_case(g)));
        if !graph_host_is_documented && !custom_graph_host {
            r.problem(
                "GRAPH_BASE_URL",
                format!(
                    "is not a Microsoft Graph host ({}) nor loopback; the app's Graph access token would be sent to it.",
                    GRAPH_HOSTS.join(", ")
                ),
                "use your cloud's Graph host (https://learn.microsoft.com/graph/deployments), or set ENRICH_ALLOW_CUSTOM_GRAPH_HOST=true for a proxy you control.",
            );
        }

        let credential = read_credential(&mut r);

        let other_mails_source = match PropertyPath::parse(
            r.get("ENRICH_OTHERMAILS_SOURCE")
                .unwrap_or(DEFAULT_OTHERMAILS_SOURCE),
        ) {
            Ok(p) => p,
            Err(e) => {
                r.problem(
                    "ENRICH_OTHERMAILS_SOURCE",
                    format!("is not a user property path ({e})."),
                    format!("use a path such as {DEFAULT_OTHERMAILS_SOURCE}."),
                );
                PropertyPath::parse(DEFAULT_OTHERMAILS_SOURCE).expect("static path")
            }
        };
        let usage_location_source = match r.get("ENRICH_USAGELOCATION_SOURCE") {
            None => None,
            Some(raw) => match PropertyPath::parse(raw) {
                Ok(p) => Some(p),
                Err(e) => {
                    r.problem(
                        "ENRICH_USAGELOCATION_SOURCE",
                        format!("is not a user property path ({e})."),
                        "use a path such as onPremisesExtensionAttributes.extensionAttribute2, or unset it to never write usageLocation.",
                    );
                    None
                }
            },
        };

        let scope = match ScopeFilter::parse(r.get("ENRICH_SCOPE").unwrap_or(DEFAULT_SCOPE)) {
            Ok(s) => s,
            Err(e) => {
                r.problem(
                    "ENRICH_SCOPE",
                    format!("is not a valid scoping filter: {e}."),
                    format!("see README › Scope syntax; the default is `{DEFAULT_SCOPE}`."),
                );
                ScopeFilter::default()
            }
        };
        check_scope_properties(&mut r, &scope);

        let other_mails_mode = match r
            .get("ENRICH_OTHERMAILS_MODE")
            .map(|v| v.to_ascii_lowercase())
            .as_deref()
        {
            None | Some("replace") => OtherMailsMode::Replace,
            Some("merge") => OtherMailsMode::Merge,
            Some(_) => {
                r.problem(
                    "ENRICH_OTHERMAILS_MODE",
                    "must be `replace` or `merge`.",
                    "use replace (the alternate email becomes exactly the HR value) or merge (keep existing values and add the HR value).",
                );
                OtherMailsMode::Replace
            }
        };

        let dry_run = r.bool("ENRICH_DRY_RUN", false);

        // Real Graph caps the rate at its quota; a loopback sandbox may run a time-scaled quota, so the
        // cap does not apply there (benchmarks and the demo).
        let sandbox = graph_base_url.scheme() == "http";
        let max_writes_per_minute = match r.get("ENRICH_MAX_WRITES_PER_MINUTE") {
            None => DEFAULT_MAX_WRITES_PER_MINUTE,
            Some(raw) => match raw.parse::<u32>() {
                Ok(n) if (1..=GRAPH_WRITE_QUOTA_PER_MINUTE).contains(&n) || (sandbox && n >= 1) => {
                    n
                }
                Ok(_) | Err(_) => {
                    r.problem(
                        "ENRICH_MAX_WRITES_PER_MINUTE",
                        format!(
                            "must be a whole number from 1 to {GRAPH_WRITE_QUOTA_PER_MINUTE} (Graph's write quota is 3,000 per 150 s per app and tenant)."
                        ),
                        format!("use {DEFAULT_MAX_WRITES_PER_MINUTE}, which leaves headroom for the app's other handlers."),
                    );
                    DEFAULT_MAX_WRITES_PER_MINUTE
                }
            },
        };

        let caller_check = read_caller_check(&mut r);
        let state = read_state(&mut r);

        let new_hire_watch_schedule = read_schedule(
            &mut r,
            "NEW_HIRE_WATCH_SCHEDULE",
            DEFAULT_NEW_HIRE_WATCH_SCHEDULE,
        );
        let backfill_schedule =
            read_schedule(&mut r, "BACKFILL_SCHEDULE", DEFAULT_BACKFILL_SCHEDULE);

        let time_budget = read_seconds(
            &mut r,
            "ENRICH_TIME_BUDGET_SECONDS",
            DEFAULT_TIME_BUDGET,
            5..=3_600,
            "keep it below the host's functionTimeout (host.json) less a minute; 240 is the default.",
        );
        let joiner_deadline = read_seconds(
            &mut r,
            "ENRICH_JOINER_DEADLINE_SECONDS",
            DEFAULT_JOINER_DEADLINE,
            2..=230,
            "keep it inside the relay's 60 s HTTP action timeout (infra/relay-logicapp.bicep); 40 is the default.",
        );

        if r.problems.is_empty() {
            Ok(Config {
                graph_base_url,
                credential,
                other_mails_source,
                usage_location_source,
                scope,
                other_mails_mode,
                dry_run,
                max_writes_per_minute,
                caller_check,
                state,
                new_hire_watch_schedule,
                backfill_schedule,
                time_budget,
                joiner_deadline,
                custom_graph_host: custom_graph_host && !graph_host_is_documented,
            })
        } else {
            Err(ConfigError {
                problems: r.problems,
            })
        }
    }
}

fn read_credential(r: &mut Reader<'_>) -> CredentialSetting {
    let client_id = r.get("AZURE_CLIENT_ID").map(str::to_string);
    let tenant_id = r.get("AZURE_TENANT_ID").map(str::to_string);
    let has_mi = r.get("IDENTITY_ENDPOINT").is_some() && r.get("IDENTITY_HEADER").is_some();
    let choice = r.get("ENRICH_CREDENTIAL").map(|v| v.to_ascii_lowercase());
    match choice.as_deref() {
        None if has_mi => CredentialSetting::ManagedIdentity { client_id },
        None if r.get("AZURE_FEDERATED_TOKEN_FILE").is_some() => {
            CredentialSetting::WorkloadIdentity
        }
        None => CredentialSetting::DeveloperTools,
        Some("managed-identity") | Some("managedidentity") => {
            if !has_mi {
                r.problem(
                    "ENRICH_CREDENTIAL",
                    "is managed-identity, but IDENTITY_ENDPOINT and IDENTITY_HEADER are not set.",
                    "enable a managed identity on the function app (the platform sets both), or choose another credential.",
                );
            }
            CredentialSetting::ManagedIdentity { client_id }
        }
        Some("workload-identity") => {
            for name in [
                "AZURE_TENANT_ID",
                "AZURE_CLIENT_ID",
                "AZURE_FEDERATED_TOKEN_FILE",
            ] {
                if r.get(name).is_none() {
                    r.problem(
                        "ENRICH_CREDENTIAL",
                        format!("is workload-identity, but {name} is not set."),
                        format!(
                            "set {name} (the workload identity webhook sets it in Kubernetes)."
                        ),
                    );
                }
            }
            CredentialSetting::WorkloadIdentity
        }
        Some("client-secret") => {
            let secret = match (
                r.get("AZURE_CLIENT_SECRET"),
                r.get("ENRICH_KEYVAULT_URL"),
                r.get("ENRICH_CLIENT_SECRET_NAME"),
            ) {
                (Some(_), _, _) => SecretSource::Env("AZURE_CLIENT_SECRET"),
                (None, Some(vault), Some(name)) => match Url::parse(vault) {
                    Ok(vault_url) if vault_url.scheme() == "https" => SecretSource::KeyVault {
                        vault_url,
                        name: name.to_string(),
                    },
                    _ => {
                        r.problem(
                            "ENRICH_KEYVAULT_URL",
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
            };
            if tenant_id.is_none() || client_id.is_none() {
                r.problem(
                    "ENRICH_CREDENTIAL",
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
        Some("developer-tools") | Some("azure-cli") => CredentialSetting::DeveloperTools,
        Some(_) => {
            r.problem(
                "ENRICH_CREDENTIAL",
                "is not a known credential.",
                "use managed-identity, workload-identity, client-secret or developer-tools (or leave it unset to choose automatically).",
            );
            CredentialSetting::DeveloperTools
        }
    }
}

fn read_caller_check(r: &mut Reader<'_>) -> Option<CallerCheck> {
    let tenant = r.get("ENRICH_TENANT_ID");
    let audience = r.get("ENRICH_AUDIENCE");
    let callers = r.get("ENRICH_ALLOWED_CALLERS");
    if tenant.is_none() && audience.is_none() && callers.is_none() {
        return None;
    }
    let authority_host = r.url("AZURE_AUTHORITY_HOST", DEFAULT_AUTHORITY_HOST);
    let missing = |r: &mut Reader<'_>, name: &'static str, fix: &str| {
        r.problem(
            name,
            "is required when the lcw-joiner caller check is configured.",
            fix.to_string(),
        );
    };
    if tenant.is_none() {
        missing(
            r,
            "ENRICH_TENANT_ID",
            "set it to your Entra tenant id (a GUID).",
        );
    }
    if audience.is_none() {
        missing(
            r,
            "ENRICH_AUDIENCE",
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
        missing(
            r,
            "ENRICH_ALLOWED_CALLERS",
            "set it to the relay Logic App's managed identity app id (comma-separated list).",
        );
    }
    if let Some(t) = tenant {
        if !t
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        {
            r.problem(
                "ENRICH_TENANT_ID",
                "must be a tenant GUID or a verified domain name.",
                "copy the Directory (tenant) ID from the Entra admin center.",
            );
        }
    }
    Some(CallerCheck {
        authority_host,
        tenant_id: tenant.unwrap_or_default().to_string(),
        audience: audience.unwrap_or_default().to_string(),
        allowed_callers,
    })
}

fn read_state(r: &mut Reader<'_>) -> StateSetting {
    if let Some(dir) = r.get("ENRICH_STATE_DIR") {
        return StateSetting::Directory(PathBuf::from(dir));
    }
    if let Some(raw) = r.get("ENRICH_STATE_BLOB_URL") {
        return match Url::parse(raw) {
            Ok(u) if is_https_or_loopback(&u) && u.path().trim_matches('/').contains('/') => {
                StateSetting::Blob(u)
            }
            _ => {
                r.problem(
                    "ENRICH_STATE_BLOB_URL",
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

/// `./.entra-enrich`, the default local state directory.
pub fn default_state_dir() -> PathBuf {
    PathBuf::from(".entra-enrich")
}

/// A whole number of seconds within `range`, or `default` (and a problem naming `name`).
fn read_seconds(
    r: &mut Reader<'_>,
    name: &'static str,
    default: Duration,
    range: std::ops::RangeInclusive<u64>,
    fix: &str,
) -> Duration {
    let Some(raw) = r.get(name) else {
        return default;
    };
    match raw.parse::<u64>() {
        Ok(n) if range.contains(&n) => Duration::from_secs(n),
        _ => {
            r.problem(
                name,
                format!(
                    "must be a whole number of seconds from {} to {}.",
                    range.start(),
                    range.end()
                ),
                fix.to_string(),
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
                "ENRICH_SCOPE",
                format!("names `{name}`, which is not a Microsoft Graph user property."),
                fix,
            );
        }
    }
}

fn read_schedule(r: &mut Reader<'_>, name: &'static str, default: &str) -> String {
    let value = r.get(name).unwrap_or(default).to_string();
    let fields = value.split_whitespace().count();
    if fields != 6 && !value.starts_with("%") {
        r.problem(
            name,
            format!("has {fields} fields; Azure Functions timers use six-field NCRONTAB (second minute hour day month day-of-week), in UTC."),
            format!("use e.g. `{default}`."),
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

    #[test]
    fn local_settings_example_lists_every_setting() {
        let text = include_str!("../local.settings.example.json");
        let json: serde_json::Value = serde_json::from_str(text).expect("valid JSON");
        let values = json["Values"].as_object().expect("Values object");
        for s in SETTINGS {
            assert!(
                values.contains_key(*s),
                "{s} missing from local.settings.example.json"
            );
        }
        assert_eq!(values["FUNCTIONS_WORKER_RUNTIME"], "custom");
        let readme = include_str!("../README.md");
        for s in SETTINGS {
            assert!(
                readme.contains(&format!("`{s}`")),
                "{s} missing from README"
            );
        }
    }

    #[test]
    fn loopback_http_is_accepted_for_the_sandbox() {
        let c = Config::from_env(&env(&[("GRAPH_BASE_URL", "http://127.0.0.1:8080")])).expect("ok");
        assert_eq!(c.graph_base_url.host_str(), Some("127.0.0.1"));
    }
}
