//! Builds the HR source the settings name (`ENRICH_SOURCE`): the directory, a CSV export, or
//! Workday with its secrets read from Key Vault on first use (cached, read again after a 401); and
//! the Workday writeback client (`ENRICH_WORKDAY_WRITEBACK`), with the same credentials.

use std::sync::Arc;

use entra_workday::{
    RaasClient, RaasOptions, Secret, SecretFetch, WorkdayAuth, WorkdayError, WorkdayErrorKind,
    WwsClient,
};

use super::build::{ambient_credential, AppOptions};
use super::error::{AppError, ErrorKind};
use crate::config::{
    Config, Env, SecretSource, SourceSetting, WorkdayAuthSetting, WorkdaySettings,
};
use crate::handlers::context::HrSource;
use crate::handlers::writeback::{Writeback, WritebackPolicy};
use crate::sources::workday::WorkdaySource;

/// The HR source of `config`.
pub fn build_hr_source(
    config: &Config,
    env: &Env,
    options: &AppOptions,
) -> Result<HrSource, AppError> {
    match &config.source {
        SourceSetting::Directory => Ok(HrSource::Directory),
        SourceSetting::Csv(path) => crate::sources::HrFile::open(path)
            .map(|f| HrSource::File(Arc::new(f)))
            .map_err(|e| {
                AppError::new(ErrorKind::Settings, e.to_string()).with_setting("ENRICH_SOURCE")
            }),
        SourceSetting::Workday(settings) => Ok(HrSource::Workday(Arc::new(workday(
            settings, env, options,
        )?))),
    }
}

fn workday(
    settings: &WorkdaySettings,
    env: &Env,
    options: &AppOptions,
) -> Result<WorkdaySource, AppError> {
    let auth = workday_auth(&settings.auth, env, options)?;
    let client = RaasClient::new(
        &settings.report_url,
        Arc::new(auth),
        settings.fields.clone(),
        settings.prompt.clone(),
        workday_http()?,
        RaasOptions {
            timeout: options.workday_timeout,
            idle_timeout: options.workday_timeout,
        },
    )
    .map_err(AppError::from)?;
    Ok(WorkdaySource::new(client, settings.cache_ttl))
}

/// The Workday writeback the settings ask for (`ENRICH_WORKDAY_WRITEBACK`), `None` when it is off.
pub fn build_writeback(
    config: &Config,
    env: &Env,
    options: &AppOptions,
) -> Result<Option<Arc<Writeback>>, AppError> {
    let Some(settings) = &config.writeback else {
        return Ok(None);
    };
    let auth = workday_auth(&settings.auth, env, options)?;
    let client = WwsClient::new(
        &settings.wws_url,
        Arc::new(auth),
        workday_http()?,
        options.workday_timeout,
    )
    .map_err(AppError::from)?;
    Ok(Some(Arc::new(Writeback::new(
        client,
        WritebackPolicy::from(settings),
    ))))
}

fn workday_http() -> Result<reqwest::Client, AppError> {
    reqwest::Client::builder().build().map_err(|e| {
        AppError::new(
            ErrorKind::Permanent,
            format!("the Workday HTTP client: {e}"),
        )
    })
}

fn workday_auth(
    setting: &WorkdayAuthSetting,
    env: &Env,
    options: &AppOptions,
) -> Result<WorkdayAuth, AppError> {
    let secret =
        |source: &SecretSource, setting: &'static str| secret(source, setting, env, options);
    Ok(match setting {
        WorkdayAuthSetting::Basic { username, password } => WorkdayAuth::basic(
            username,
            secret(password, "ENRICH_WORKDAY_PASSWORD_SECRET_NAME")?,
        ),
        WorkdayAuthSetting::OAuth {
            token_url,
            client_id,
            client_secret,
            refresh_token,
        } => WorkdayAuth::oauth(
            token_url.clone(),
            client_id,
            secret(client_secret, "ENRICH_WORKDAY_CLIENT_SECRET_NAME")?,
            secret(refresh_token, "ENRICH_WORKDAY_REFRESH_TOKEN_SECRET_NAME")?,
        ),
    })
}

/// A plain setting's value now, or a Key Vault secret read when first needed.
fn secret(
    source: &SecretSource,
    vault_setting: &'static str,
    env: &Env,
    options: &AppOptions,
) -> Result<Secret, AppError> {
    match source {
        SecretSource::Env(name) => env
            .get(*name)
            .map(|v| Secret::plain(v.trim(), name))
            .ok_or_else(|| {
                AppError::new(ErrorKind::Settings, format!("{name} is not set")).with_setting(name)
            }),
        SecretSource::KeyVault { vault_url, name } => Ok(Secret::fetched(
            Arc::new(VaultSecret {
                vault_url: vault_url.to_string(),
                name: name.clone(),
                options: options.clone(),
            }),
            vault_setting,
        )),
    }
}

/// A Key Vault secret, read with the app's ambient identity.
struct VaultSecret {
    vault_url: String,
    name: String,
    options: AppOptions,
}

#[async_trait::async_trait]
impl SecretFetch for VaultSecret {
    async fn fetch(&self) -> Result<String, WorkdayError> {
        let failed = |kind, message: String, status: Option<u16>| {
            let e = WorkdayError::new(kind, message);
            match status {
                Some(s) => e.with_status(s),
                None => e,
            }
        };
        let ambient = match &self.options.ambient_credential {
            Some(c) => c.clone(),
            None => ambient_credential(&self.options)
                .map_err(|e| failed(WorkdayErrorKind::Secret, e.to_string(), Some(401)))?,
        };
        let read = entra_graph::keyvault::fetch_secret(
            &self.vault_url,
            &self.name,
            ambient,
            self.options.transport.clone(),
        );
        match tokio::time::timeout(self.options.key_vault_timeout, read).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(failed(WorkdayErrorKind::Secret, e.to_string(), e.status())),
            Err(_) => Err(failed(
                WorkdayErrorKind::Secret,
                format!("Key Vault {} did not answer in time", self.vault_url),
                None,
            )),
        }
    }
}
