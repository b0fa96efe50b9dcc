//! Builds the app's parts from the validated configuration: credential, Graph client, state store
//! and the lcw-joiner caller validator. Production and tests share this code; tests point the settings
//! at the sandbox and may hand in a transport or an ambient credential through [`AppOptions`], as the
//! Azure SDK's `ClientOptions` allow.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use azure_core::credentials::TokenCredential;
use azure_core::http::{ClientOptions, Transport};
use entra_core::{EnrichPolicy, SourceSpec};
use entra_graph::credential::CredentialOptions;
use entra_graph::credential::{build_credential as build_choice, CredentialChoice};
use entra_graph::{GraphClient, GraphClientOptions};
use entra_lcw::{CallerValidator, ValidatorOptions};
use entra_state::{BlobStore, BlobStoreOptions, FileStore, StateStore};

use super::error::{AppError, ErrorKind};
use crate::config::{Config, CredentialSetting, Env, SecretSource, StateSetting};
use crate::handlers::context::HrSource;
use crate::handlers::EnrichContext;

/// How long a failed start is remembered before the next invocation tries again: long enough that a
/// burst of invocations against a vault that is down does not hammer it, short enough that the app
/// recovers within one relay retry (`Retry-After`).
pub const START_RETRY_FLOOR: Duration = Duration::from_secs(10);

/// How long the start waits for Key Vault (the SDK retries a vault that is down with backoff for
/// longer than the joiner deadline); then the start fails as transient and a later invocation
/// tries again.
pub const KEY_VAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long one Workday call may take: a report of 100,000 workers answers within seconds, and a
/// joiner's deadline bounds it sooner anyway.
pub const WORKDAY_TIMEOUT: Duration = Duration::from_secs(30);

/// What the app is built with besides its settings.
#[derive(Clone)]
pub struct AppOptions {
    /// Replaces the HTTP client of the Azure SDK calls (credential and Key Vault), as
    /// `ClientOptions::transport` does. `None` in production.
    pub transport: Option<Transport>,
    /// The identity that reads Key Vault. `None` in production: the managed identity, then the
    /// developer tools.
    pub ambient_credential: Option<Arc<dyn TokenCredential>>,
    /// See [`START_RETRY_FLOOR`].
    pub start_retry_floor: Duration,
    /// See [`KEY_VAULT_TIMEOUT`].
    pub key_vault_timeout: Duration,
    /// The limit of each Workday call (and of the wait between two pieces of a report).
    pub workday_timeout: Duration,
}

impl Default for AppOptions {
    fn default() -> Self {
        Self {
            transport: None,
            ambient_credential: None,
            start_retry_floor: START_RETRY_FLOOR,
            key_vault_timeout: KEY_VAULT_TIMEOUT,
            workday_timeout: WORKDAY_TIMEOUT,
        }
    }
}

impl fmt::Debug for AppOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppOptions")
            .field("transport", &self.transport.is_some())
            .field("ambient_credential", &self.ambient_credential.is_some())
            .field("start_retry_floor", &self.start_retry_floor)
            .field("key_vault_timeout", &self.key_vault_timeout)
            .finish()
    }
}

impl AppOptions {
    fn credential_options(&self) -> CredentialOptions {
        CredentialOptions {
            client_options: ClientOptions {
                transport: self.transport.clone(),
                ..Default::default()
            },
        }
    }
}

/// Builds the credential the config asks for.
pub async fn build_credential(
    config: &Config,
    env: &Env,
    options: &AppOptions,
) -> Result<Arc<dyn TokenCredential>, AppError> {
    let build = |c: CredentialChoice| build_choice(c, options.credential_options());
    let choice = match &config.credential {
        CredentialSetting::ManagedIdentity { client_id } => CredentialChoice::ManagedIdentity {
            client_id: client_id.clone(),
        },
        CredentialSetting::WorkloadIdentity => CredentialChoice::WorkloadIdentity,
        CredentialSetting::DeveloperTools => CredentialChoice::DeveloperTools,
        CredentialSetting::ClientSecret {
            tenant_id,
            client_id,
            secret,
        } => CredentialChoice::ClientSecret {
            tenant_id: tenant_id.clone(),
            client_id: client_id.clone(),
            secret: read_secret(secret, env, options).await?,
        },
    };
    build(choice).map_err(|e| AppError::from(e).with_setting("ENRICH_CREDENTIAL"))
}

/// The client secret, from the environment or from Key Vault (read with the ambient identity).
async fn read_secret(
    secret: &SecretSource,
    env: &Env,
    options: &AppOptions,
) -> Result<String, AppError> {
    match secret {
        SecretSource::Env(name) => env.get(*name).cloned().ok_or_else(|| {
            AppError::new(
                ErrorKind::Settings,
                format!("{name} is not set or not valid UTF-8"),
            )
            .with_setting(name)
        }),
        SecretSource::KeyVault { vault_url, name } => {
            let ambient = match &options.ambient_credential {
                Some(c) => c.clone(),
                None => ambient_credential(options)?,
            };
            let read = entra_graph::keyvault::fetch_secret(
                vault_url.as_str(),
                name,
                ambient,
                options.transport.clone(),
            );
            match tokio::time::timeout(options.key_vault_timeout, read).await {
                Ok(secret) => secret.map_err(AppError::from),
                Err(_) => Err(AppError::new(
                    ErrorKind::Transient,
                    format!(
                        "Key Vault {vault_url} did not answer within {} s",
                        options.key_vault_timeout.as_secs_f32()
                    ),
                )),
            }
        }
    }
}

/// The managed identity in Azure, the developer tools (`az login`) at a terminal.
pub(super) fn ambient_credential(
    options: &AppOptions,
) -> Result<Arc<dyn TokenCredential>, AppError> {
    let build = |c: CredentialChoice| build_choice(c, options.credential_options());
    build(CredentialChoice::ManagedIdentity { client_id: None })
        .or_else(|_| build(CredentialChoice::DeveloperTools))
        .map_err(|e| AppError::from(e).with_setting("ENRICH_CREDENTIAL"))
}

/// Builds the state store the config asks for.
pub fn build_state(
    config: &Config,
    credential: Arc<dyn TokenCredential>,
) -> Result<Arc<dyn StateStore>, AppError> {
    Ok(match &config.state {
        StateSetting::Directory(dir) => Arc::new(FileStore::new(dir)?),
        StateSetting::Blob(url) => Arc::new(BlobStore::new(
            url.clone(),
            credential,
            BlobStoreOptions::default(),
        )?),
    })
}

/// Builds the Graph client.
pub fn build_graph(
    config: &Config,
    credential: Arc<dyn TokenCredential>,
) -> Result<GraphClient, AppError> {
    let mut options = GraphClientOptions::new(config.graph_base_url.clone(), credential);
    options.max_writes_per_minute = config.max_writes_per_minute;
    GraphClient::new(options).map_err(|e| AppError::from(e).with_setting("GRAPH_BASE_URL"))
}

/// Builds the whole handler context with the directory as the HR source.
pub async fn build_context(
    config: &Config,
    env: &Env,
    options: &AppOptions,
) -> Result<EnrichContext, AppError> {
    let credential = build_credential(config, env, options).await?;
    let graph = build_graph(config, credential.clone())?;
    let state = build_state(config, credential)?;
    let mut ctx = context_from_parts(config, graph, state);
    ctx.hr = super::hr::build_hr_source(config, env, options)?;
    ctx.writeback = super::hr::build_writeback(config, env, options)?;
    Ok(ctx)
}

/// Assembles a context from already-built clients.
pub fn context_from_parts(
    config: &Config,
    graph: GraphClient,
    state: Arc<dyn StateStore>,
) -> EnrichContext {
    EnrichContext {
        graph,
        policy: Arc::new(EnrichPolicy {
            scope: config.scope.clone(),
            mode: config.other_mails_mode,
            write_usage_location: config.usage_location_source.is_some()
                || config.source.writes_country(),
            sspr_target: config.sspr_target,
            sspr_overwrite_registered: config.sspr_overwrite_registered,
        }),
        sources: Arc::new(SourceSpec {
            other_mails: config.other_mails_source.clone(),
            usage_location: config.usage_location_source.clone(),
        }),
        hr: HrSource::Directory,
        state,
        dry_run: config.dry_run,
        joiner_deadline: config.joiner_deadline,
        writeback: None,
    }
}

/// Builds the lcw-joiner caller validator, when the caller check is configured.
pub fn build_validator(config: &Config) -> Result<Option<CallerValidator>, AppError> {
    let Some(check) = &config.caller_check else {
        return Ok(None);
    };
    let options = ValidatorOptions::new(
        check.authority_host.clone(),
        check.tenant_id.clone(),
        check.audience.clone(),
        check.allowed_callers.clone(),
    );
    CallerValidator::new(options).map(Some).map_err(|e| {
        AppError::new(ErrorKind::Settings, format!("caller validation: {e}"))
            .with_setting("ENRICH_TENANT_ID")
    })
}
