//! `ENRICH_SOURCE` and the Workday settings: which report, which columns, and how to sign in.

use std::path::PathBuf;
use std::time::Duration;

use entra_workday::{FieldPath, ReportFields};
use url::Url;

use super::{read_seconds, setting, Reader, SecretSource};

/// Where HR values come from (`ENRICH_SOURCE`).
#[derive(Debug, Clone)]
pub enum SourceSetting {
    /// The user's own directory properties (`ENRICH_OTHERMAILS_SOURCE`).
    Directory,
    /// A CSV export keyed by employeeId.
    Csv(PathBuf),
    Workday(Box<WorkdaySettings>),
}

/// The Workday report and its credentials.
#[derive(Debug, Clone)]
pub struct WorkdaySettings {
    pub report_url: String,
    pub fields: ReportFields,
    /// The report's prompt that selects one worker (`ENRICH_WORKDAY_PROMPT`).
    pub prompt: Option<String>,
    /// How long a cached copy of the full report serves joiners without a prompt.
    pub cache_ttl: Duration,
    pub auth: WorkdayAuthSetting,
}

/// How to sign in to Workday.
#[derive(Debug, Clone)]
pub enum WorkdayAuthSetting {
    Basic {
        username: String,
        password: SecretSource,
    },
    OAuth {
        token_url: Url,
        client_id: String,
        client_secret: SecretSource,
        refresh_token: SecretSource,
    },
}

impl SourceSetting {
    /// Whether the source gives a country for `usageLocation` by itself (Workday with
    /// `ENRICH_WORKDAY_COUNTRY_FIELD`).
    pub fn writes_country(&self) -> bool {
        matches!(self, SourceSetting::Workday(w) if w.fields.country.is_some())
    }
}

pub(super) fn read_source(r: &mut Reader<'_>) -> SourceSetting {
    let s = &setting::ENRICH_SOURCE;
    let raw = r.text(s);
    if raw.eq_ignore_ascii_case("directory") {
        return SourceSetting::Directory;
    }
    if let Some(path) = raw.strip_prefix("csv:").filter(|p| !p.trim().is_empty()) {
        return SourceSetting::Csv(PathBuf::from(path.trim()));
    }
    if raw.eq_ignore_ascii_case("workday") {
        return SourceSetting::Workday(Box::new(read_workday(r)));
    }
    r.problem(
        s.name,
        "must be `directory`, `workday` or `csv:PATH`.",
        "use directory (the user's own attributes), workday (a RaaS report) or csv:/path/to/export.csv.",
    );
    SourceSetting::Directory
}

fn read_workday(r: &mut Reader<'_>) -> WorkdaySettings {
    let report_url = match r.value(&setting::ENRICH_WORKDAY_REPORT_URL) {
        Some(u) => u.to_string(),
        None => {
            r.problem(
                setting::ENRICH_WORKDAY_REPORT_URL.name,
                "is required with ENRICH_SOURCE=workday.",
                "copy the report's URL from Workday (Actions > Web Service > View URLs): https://{host}/ccx/service/customreport2/{tenant}/{owner}/{report}.",
            );
            String::new()
        }
    };
    let id_field = &setting::ENRICH_WORKDAY_EMPLOYEE_ID_FIELD;
    let employee_id = field(r, id_field, r.text(id_field));
    let email_field = &setting::ENRICH_WORKDAY_PERSONAL_EMAIL_FIELD;
    let personal_email = field(r, email_field, r.text(email_field));
    let country_field = &setting::ENRICH_WORKDAY_COUNTRY_FIELD;
    let country = r
        .value(country_field)
        .map(|raw| field(r, country_field, raw));
    let prompt = r.value(&setting::ENRICH_WORKDAY_PROMPT).map(str::to_string);
    let cache_ttl = read_seconds(
        r,
        &setting::ENRICH_WORKDAY_CACHE_SECONDS,
        0..=86_400,
        "a joiner without a prompt reads the cached report when it is younger than this",
    );
    WorkdaySettings {
        report_url,
        fields: ReportFields {
            employee_id,
            personal_email,
            country,
        },
        prompt,
        cache_ttl,
        auth: read_auth(r),
    }
}

/// A field path setting's value, checked.
fn field(r: &mut Reader<'_>, s: &setting::Setting, raw: &str) -> FieldPath {
    FieldPath::parse(raw).unwrap_or_else(|e| {
        r.problem(
            s.name,
            format!("is not a field path: {}.", e.reason),
            "write Column, Column.Sub or Column[Key=VALUE].Sub, e.g. Email_Addresses[Usage=HOME].Email_Address.",
        );
        // Never used: the problem fails the configuration.
        FieldPath::key(raw)
    })
}

pub(super) fn read_auth(r: &mut Reader<'_>) -> WorkdayAuthSetting {
    if let Some(token_url) = r.value(&setting::ENRICH_WORKDAY_TOKEN_URL) {
        return read_oauth(r, token_url);
    }
    read_basic(
        r,
        "is required with ENRICH_SOURCE=workday (or set ENRICH_WORKDAY_TOKEN_URL for OAuth).",
    )
}

/// The ISU's user name and password; `required` says why when the user name is missing.
pub(super) fn read_basic(r: &mut Reader<'_>, required: &str) -> WorkdayAuthSetting {
    let username = r
        .value(&setting::ENRICH_WORKDAY_USERNAME)
        .unwrap_or_default();
    if username.is_empty() {
        r.problem(
            setting::ENRICH_WORKDAY_USERNAME.name,
            required,
            "set it to the Integration System User, e.g. ISU_Entra_Enrich@tenant.",
        );
    }
    let password = vault_or_plain(
        r,
        &setting::ENRICH_WORKDAY_PASSWORD,
        &setting::ENRICH_WORKDAY_PASSWORD_SECRET_NAME,
    );
    WorkdayAuthSetting::Basic {
        username: username.to_string(),
        password,
    }
}

fn read_oauth(r: &mut Reader<'_>, token_url: &str) -> WorkdayAuthSetting {
    let token_url = match Url::parse(token_url) {
        Ok(u) if u.scheme() == "https" || super::is_https_or_loopback(&u) => u,
        _ => {
            r.problem(
                setting::ENRICH_WORKDAY_TOKEN_URL.name,
                "is not an https URL.",
                "use https://{host}/ccx/oauth2/{tenant}/token (Workday: View API Clients).",
            );
            super::fallback_url("https://invalid.example/")
        }
    };
    let client_id = r
        .value(&setting::ENRICH_WORKDAY_CLIENT_ID)
        .unwrap_or_default();
    if client_id.is_empty() {
        r.problem(
            setting::ENRICH_WORKDAY_CLIENT_ID.name,
            "is required with ENRICH_WORKDAY_TOKEN_URL.",
            "set it to the API client's id (Workday: View API Clients).",
        );
    }
    let client_secret = vault_only(r, &setting::ENRICH_WORKDAY_CLIENT_SECRET_NAME);
    let refresh_token = vault_only(r, &setting::ENRICH_WORKDAY_REFRESH_TOKEN_SECRET_NAME);
    WorkdayAuthSetting::OAuth {
        token_url,
        client_id: client_id.to_string(),
        client_secret,
        refresh_token,
    }
}

/// The Key Vault URL, for a secret named by `named_by`.
fn vault_url(r: &mut Reader<'_>, named_by: &'static str) -> Option<Url> {
    let vault = &setting::ENRICH_KEYVAULT_URL;
    match r.value(vault).map(Url::parse) {
        Some(Ok(u)) if u.scheme() == "https" => Some(u),
        Some(_) => {
            r.problem(
                vault.name,
                "is not an https Key Vault URL.",
                "use https://<vault-name>.vault.azure.net/.",
            );
            None
        }
        None => {
            r.problem(
                vault.name,
                format!("is required: {named_by} names a Key Vault secret."),
                "set it to https://<vault-name>.vault.azure.net/.",
            );
            None
        }
    }
}

/// A secret kept in Key Vault (`name_setting`) or, failing that, in the plain setting `plain`.
fn vault_or_plain(
    r: &mut Reader<'_>,
    plain: &'static setting::Setting,
    name_setting: &'static setting::Setting,
) -> SecretSource {
    if let Some(name) = r.value(name_setting) {
        let name = name.to_string();
        return match vault_url(r, name_setting.name) {
            Some(vault_url) => SecretSource::KeyVault { vault_url, name },
            None => SecretSource::Env(plain.name),
        };
    }
    if r.value(plain).is_none() {
        r.problem(
            plain.name,
            format!(
                "is not set, and no Key Vault secret is named ({}).",
                name_setting.name
            ),
            format!(
                "store the password in Key Vault and set ENRICH_KEYVAULT_URL and {}.",
                name_setting.name
            ),
        );
    }
    SecretSource::Env(plain.name)
}

fn vault_only(r: &mut Reader<'_>, name_setting: &'static setting::Setting) -> SecretSource {
    let name = r.value(name_setting).unwrap_or_default().to_string();
    if name.is_empty() {
        r.problem(
            name_setting.name,
            "is required with ENRICH_WORKDAY_TOKEN_URL.",
            "store the value in Key Vault and set this to the secret's name (and ENRICH_KEYVAULT_URL).",
        );
    }
    match vault_url(r, name_setting.name) {
        Some(vault_url) => SecretSource::KeyVault { vault_url, name },
        None => SecretSource::Env(name_setting.name),
    }
}
