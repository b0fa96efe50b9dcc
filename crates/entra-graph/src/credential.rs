//! Building the token credential for Graph (and Key Vault) with `azure_identity` 1.0.0.
//!
//! `azure_identity` 1.0.0 has no `DefaultAzureCredential`; production code picks one explicitly
//! (managed identity on Azure Functions: `IDENTITY_ENDPOINT`/`IDENTITY_HEADER`,
//! <https://learn.microsoft.com/azure/app-service/overview-managed-identity#rest-endpoint-reference>).

use std::fmt;
use std::sync::Arc;

use azure_core::credentials::{Secret, TokenCredential};

use azure_core::http::ClientOptions;
use azure_identity::{
    ClientAssertionCredentialOptions, ClientSecretCredential, ClientSecretCredentialOptions,
    DeveloperToolsCredential, ManagedIdentityCredential, ManagedIdentityCredentialOptions,
    UserAssignedId, WorkloadIdentityCredential, WorkloadIdentityCredentialOptions,
};

use crate::error::{GraphError, GraphErrorKind};

/// Which identity the app runs as.
#[derive(Clone)]
pub enum CredentialChoice {
    /// Azure managed identity: system-assigned when `client_id` is `None`, else the
    /// user-assigned identity with that client id.
    ManagedIdentity { client_id: Option<String> },
    /// AKS workload identity (`AZURE_CLIENT_ID`, `AZURE_TENANT_ID`, `AZURE_FEDERATED_TOKEN_FILE`).
    WorkloadIdentity,
    /// An app registration secret (prefer a managed identity in production).
    ClientSecret {
        tenant_id: String,
        client_id: String,
        /// The secret value; redacted from `Debug`, never logged.
        secret: String,
    },
    /// Azure CLI, then Azure Developer CLI (local development only).
    DeveloperTools,
}

impl fmt::Debug for CredentialChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ManagedIdentity { client_id } => f
                .debug_struct("ManagedIdentity")
                .field("client_id", client_id)
                .finish(),
            Self::WorkloadIdentity => f.write_str("WorkloadIdentity"),
            Self::ClientSecret {
                tenant_id,
                client_id,
                ..
            } => f
                .debug_struct("ClientSecret")
                .field("tenant_id", tenant_id)
                .field("client_id", client_id)
                .field("secret", &"<redacted>")
                .finish(),
            Self::DeveloperTools => f.write_str("DeveloperTools"),
        }
    }
}

/// Options passed to the credential's own HTTP pipeline (e.g. an injected transport in tests).
#[derive(Debug, Clone, Default)]
pub struct CredentialOptions {
    pub client_options: ClientOptions,
}

/// Builds the chosen credential. Errors are [`GraphErrorKind::Credential`].
pub fn build_credential(
    choice: CredentialChoice,
    options: CredentialOptions,
) -> Result<Arc<dyn TokenCredential>, GraphError> {
    let op = "build credential";
    let fail = |e: azure_core::Error| {
        GraphError::new(GraphErrorKind::Credential, op).with_message(Some(&e.to_string()))
    };
    match choice {
        CredentialChoice::ManagedIdentity { client_id } => {
            if client_id.as_deref().is_some_and(|c| c.trim().is_empty()) {
                return Err(GraphError::invalid_request(
                    op,
                    "empty managed identity client id",
                ));
            }
            let cred = ManagedIdentityCredential::new(Some(ManagedIdentityCredentialOptions {
                user_assigned_id: client_id.map(UserAssignedId::ClientId),
                client_options: options.client_options,
            }))
            .map_err(fail)?;
            Ok(cred)
        }
        CredentialChoice::WorkloadIdentity => {
            let cred = WorkloadIdentityCredential::new(Some(WorkloadIdentityCredentialOptions {
                credential_options: ClientAssertionCredentialOptions {
                    client_options: options.client_options,
                },
                ..Default::default()
            }))
            .map_err(fail)?;
            Ok(cred)
        }
        CredentialChoice::ClientSecret {
            tenant_id,
            client_id,
            secret,
        } => {
            let cred = ClientSecretCredential::new(
                &tenant_id,
                client_id,
                Secret::new(secret),
                Some(ClientSecretCredentialOptions {
                    client_options: options.client_options,
                }),
            )
            .map_err(fail)?;
            Ok(cred)
        }
        CredentialChoice::DeveloperTools => {
            let cred = DeveloperToolsCredential::new(None).map_err(fail)?;
            Ok(cred)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_secret_debug_redacts_the_secret() {
        let c = CredentialChoice::ClientSecret {
            tenant_id: "t".into(),
            client_id: "c".into(),
            secret: "hunter2-very-secret".into(),
        };
        let s = format!("{c:?}");
        assert!(!s.contains("hunter2"), "{s}");
    }

    #[test]
    fn invalid_client_secret_input_is_a_typed_error() {
        let r = build_credential(
            CredentialChoice::ClientSecret {
                tenant_id: "not a tenant!".into(),
                client_id: "c".into(),
                secret: "s".into(),
            },
            CredentialOptions::default(),
        );
        assert!(matches!(
            r.err().map(|e| e.kind().clone()),
            Some(GraphErrorKind::Credential)
        ));
    }

    #[test]
    fn empty_managed_identity_client_id_is_refused() {
        let r = build_credential(
            CredentialChoice::ManagedIdentity {
                client_id: Some(" ".into()),
            },
            CredentialOptions::default(),
        );
        assert!(matches!(
            r.err().map(|e| e.kind().clone()),
            Some(GraphErrorKind::InvalidRequest(_))
        ));
    }
}
