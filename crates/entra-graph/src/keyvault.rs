//! Reading one secret from Azure Key Vault with `azure_security_keyvault_secrets` 1.0.1.
//!
//! `SecretClient` uses challenge-based auth: the first request goes out without a token, the vault
//! answers `401` with `WWW-Authenticate: Bearer authorization="…", resource="https://vault.azure.net"`,
//! and the request is repeated with `Authorization: Bearer …`
//! (<https://learn.microsoft.com/azure/key-vault/general/authentication-requests-and-responses#authentication>).
//! The bearer policy refuses non-TLS endpoints, so tests inject an `HttpClient` transport instead of
//! pointing at a loopback http server. The secret value is never logged or put in an error.

use std::sync::Arc;

use azure_core::credentials::TokenCredential;
use azure_core::http::{ClientOptions, Transport};
use azure_security_keyvault_secrets::{SecretClient, SecretClientOptions};
use entra_core::pii::mask_emails_in;

use crate::error::{GraphError, GraphErrorKind};

/// Fetches the current version of secret `name` from the vault at `vault_url`
/// (e.g. `https://myvault.vault.azure.net/`). `transport` replaces the HTTP client (tests).
pub async fn fetch_secret(
    vault_url: &str,
    name: &str,
    credential: Arc<dyn TokenCredential>,
    transport: Option<Transport>,
) -> Result<String, GraphError> {
    let op = format!("Key Vault get secret {name:?}");
    let valid_name = !name.is_empty()
        && name.len() <= 127
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if !valid_name {
        // Secret names are 1-127 alphanumerics and dashes
        // (<https://learn.microsoft.com/azure/key-vault/general/about-keys-secrets-certificates#objects-identifiers-and-versioning>).
        return Err(GraphError::invalid_request(op, "invalid secret name"));
    }
    let options = SecretClientOptions {
        client_options: ClientOptions {
            transport,
            ..Default::default()
        },
        ..Default::default()
    };
    // The vault's HTTP status, when it answered, tells a missing secret or a refused identity (a
    // setting to fix) from a vault that is down (try again).
    let fail = |e: azure_core::Error| {
        let error = GraphError::new(GraphErrorKind::KeyVault, op.clone())
            .with_message(Some(&mask_emails_in(&e.to_string())));
        match e.http_status() {
            Some(status) => error.with_status(u16::from(status)),
            None => error,
        }
    };
    let client = SecretClient::new(vault_url, credential, Some(options)).map_err(fail)?;
    let response = client.get_secret(name, None).await.map_err(fail)?;
    let secret = response.into_model().map_err(fail)?;
    secret.value.ok_or_else(|| {
        GraphError::new(GraphErrorKind::KeyVault, op.clone())
            .with_message(Some("the secret has no value"))
    })
}
