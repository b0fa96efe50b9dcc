//! Builds the handler context from the validated configuration: credential, Graph client, state store
//! and, for lcw-joiner, the caller validator. Used by every adapter, so production and tests share one
//! code path; tests only point the settings at the sandbox.

use std::sync::Arc;

use azure_core::credentials::TokenCredential;
use entra_core::{EnrichPolicy, SourceSpec};
use entra_graph::{GraphClient, GraphClientOptions};
use entra_lcw::{CallerValidator, ValidatorOptions};
use entra_state::{BlobStore, BlobStoreOptions, FileStore, StateStore};

use crate::config::{Config, CredentialSetting, SecretSource, StateSetting};
use crate::handlers::context::HrSource;
use crate::handlers::EnrichContext;

/// Why the app could not start its clients.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("credential: {0}")]
    Credential(String),
    #[error("Graph client: {0}")]
    Graph(#[from] entra_graph::GraphError),
    #[error("state store: {0}")]
    State(#[from] entra_state::StateError),
    #[error("caller validation: {0}")]
    Validator(String),
}

/// Builds the credential the config asks for.
pub async fn build_credential(config: &Config) -> Result<Arc<dyn TokenCredential>, AppError> {
    use entra_graph::credential::{build_credential, CredentialChoice, CredentialOptions};
    let build = |c: CredentialChoice| build_credential(c, CredentialOptions::default());
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
        } => {
            let value = match secret {
                SecretSource::Env(name) => std::env::var(name).map_err(|_| {
                    AppError::Credential(format!("{name} is not set or not valid UTF-8"))
                })?,
                SecretSource::KeyVault { vault_url, name } => {
                    // The vault is read with the ambient identity (managed identity in Azure).
                    let ambient = build(CredentialChoice::ManagedIdentity { client_id: None })
                        .or_else(|_| build(CredentialChoice::DeveloperTools))
                        .map_err(|e| AppError::Credential(e.to_string()))?;
                    entra_graph::keyvault::fetch_secret(vault_url.as_str(), name, ambient, None)
                        .await
                        .map_err(|e| AppError::Credential(e.to_string()))?
                }
            };
            CredentialChoice::ClientSecret {
                tenant_id: tenant_id.clone(),
                client_id: client_id.clone(),
                secret: value,
            }
        }
    };
    build(choice).map_err(|e| AppError::Credential(e.to_string()))
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
    Ok(GraphClient::new(options)?)
}

/// Builds the whole handler context with the directory as the HR source.
pub async fn build_context(config: &Config) -> Result<EnrichContext, AppError> {
    let credential = build_credential(config).await?;
    let graph = build_graph(config, credential.clone())?;
    let state = build_state(config, credential)?;
    Ok(context_from_parts(config, graph, state))
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
            write_usage_location: config.usage_location_source.is_some(),
        }),
        sources: Arc::new(SourceSpec {
            other_mails: config.other_mails_source.clone(),
            usage_location: config.usage_location_source.clone(),
        }),
        hr: HrSource::Directory,
        state,
        dry_run: config.dry_run,
        joiner_deadline: config.joiner_deadline,
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
    CallerValidator::new(options)
        .map(Some)
        .map_err(|e| AppError::Validator(e.to_string()))
}
