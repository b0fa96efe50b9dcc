//! Key Vault, as the Azure SDK meets it, for the start-up tests of every door.

use std::sync::Arc;

use entra_sandbox::Sandbox;
use serde_json::json;

/// The settings of an app whose Graph credential is a client secret kept in Key Vault.
pub(crate) fn client_secret_in_key_vault(sandbox: &Sandbox) -> Vec<(&'static str, String)> {
    vec![
        ("ENRICH_CREDENTIAL", "client-secret".to_string()),
        ("AZURE_TENANT_ID", sandbox.tenant_id()),
        (
            "AZURE_CLIENT_ID",
            entra_sandbox::identity::DEFAULT_CLIENT_ID.to_string(),
        ),
        (
            "ENRICH_KEYVAULT_URL",
            "https://entra-enrich-test.vault.azure.net/".to_string(),
        ),
        (
            "ENRICH_CLIENT_SECRET_NAME",
            "graph-client-secret".to_string(),
        ),
    ]
}

/// The Azure SDK's side of Key Vault and the Entra token endpoint, on loopback: an `azure_core`
/// transport (as `ClientOptions::transport` allows) that answers Key Vault's documented challenge
/// flow itself (401 with `WWW-Authenticate`, then the secret; or 503 while the vault is "down") and
/// forwards token requests for `login.microsoftonline.com` to the sandbox's real token endpoint.
/// The Key Vault SDK refuses plain-http endpoints, so a transport is how it is tested
/// (<https://learn.microsoft.com/azure/key-vault/general/authentication-requests-and-responses>).
#[derive(Debug)]
pub(crate) struct VaultAndAuthority {
    authority: String,
    pub(crate) vault_down: std::sync::atomic::AtomicBool,
    pub(crate) vault_requests: std::sync::atomic::AtomicU32,
    http: reqwest::Client,
}

#[async_trait::async_trait]
impl azure_core::http::HttpClient for VaultAndAuthority {
    async fn execute_request(
        &self,
        request: &azure_core::http::Request,
    ) -> azure_core::Result<azure_core::http::AsyncRawResponse> {
        use azure_core::http::{headers::Headers, AsyncRawResponse, StatusCode};
        use std::sync::atomic::Ordering;
        let mut headers = Headers::new();
        headers.insert("content-type", "application/json");
        let url = request.url().clone();
        if url.host_str() == Some("login.microsoftonline.com") {
            return self.forward_token_request(request).await;
        }
        self.vault_requests.fetch_add(1, Ordering::SeqCst);
        let authorized = request
            .headers()
            .get_optional_str(&azure_core::http::headers::HeaderName::from_static(
                "authorization",
            ))
            .is_some();
        if self.vault_down.load(Ordering::SeqCst) {
            return Ok(AsyncRawResponse::from_bytes(
                StatusCode::ServiceUnavailable,
                headers,
                r#"{"error":{"code":"ServiceUnavailable","message":"The service is unavailable."}}"#,
            ));
        }
        if !authorized {
            headers.insert(
                "www-authenticate",
                "Bearer authorization=\"https://login.microsoftonline.com/tenant\", resource=\"https://vault.azure.net\"",
            );
            return Ok(AsyncRawResponse::from_bytes(
                StatusCode::Unauthorized,
                headers,
                r#"{"error":{"code":"Unauthorized","message":"AKV10000: Request is missing a Bearer or PoP token."}}"#,
            ));
        }
        let body = json!({
            "value": entra_sandbox::identity::DEFAULT_CLIENT_SECRET,
            "id": "https://entra-enrich-test.vault.azure.net/secrets/graph-client-secret/0123456789abcdef",
            "attributes": {"enabled": true},
        });
        Ok(AsyncRawResponse::from_bytes(
            StatusCode::Ok,
            headers,
            body.to_string(),
        ))
    }
}

impl VaultAndAuthority {
    /// The vault, down until `vault_down` is cleared; tokens come from `sandbox`.
    pub(crate) fn down(sandbox: &Sandbox) -> Arc<Self> {
        Arc::new(VaultAndAuthority {
            authority: sandbox.authority_url(),
            vault_down: true.into(),
            vault_requests: 0.into(),
            http: reqwest::Client::new(),
        })
    }

    /// App options whose Azure SDK calls reach this vault (the ambient identity is [`AmbientIdentity`]),
    /// a failed start retried after `floor`.
    pub(crate) fn app_options(
        self: &Arc<Self>,
        floor: std::time::Duration,
    ) -> entra_enrich::app::AppOptions {
        entra_enrich::app::AppOptions {
            transport: Some(azure_core::http::Transport::new(self.clone())),
            ambient_credential: Some(Arc::new(AmbientIdentity)),
            start_retry_floor: floor,
            key_vault_timeout: std::time::Duration::from_secs(2),
        }
    }

    /// Key Vault requests received so far.
    pub(crate) fn requests(&self) -> u32 {
        self.vault_requests
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Brings the vault back.
    pub(crate) fn restore(&self) {
        self.vault_down
            .store(false, std::sync::atomic::Ordering::SeqCst);
    }

    async fn forward_token_request(
        &self,
        request: &azure_core::http::Request,
    ) -> azure_core::Result<azure_core::http::AsyncRawResponse> {
        use azure_core::http::{headers::Headers, AsyncRawResponse, StatusCode};
        let body = match request.body() {
            azure_core::http::Body::Bytes(b) => b.to_vec(),
            _ => Vec::new(),
        };
        let target = format!(
            "{}{}",
            self.authority.trim_end_matches('/'),
            request.url().path()
        );
        let res = self
            .http
            .post(target)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .map_err(|e| azure_core::Error::new(azure_core::error::ErrorKind::Io, e))?;
        let status = StatusCode::from(res.status().as_u16());
        let bytes = res
            .bytes()
            .await
            .map_err(|e| azure_core::Error::new(azure_core::error::ErrorKind::Io, e))?;
        let mut headers = Headers::new();
        headers.insert("content-type", "application/json");
        Ok(AsyncRawResponse::from_bytes(status, headers, bytes))
    }
}

/// An ambient identity that always has a token (the vault above only checks that one is sent).
#[derive(Debug)]
pub(crate) struct AmbientIdentity;

#[async_trait::async_trait]
impl azure_core::credentials::TokenCredential for AmbientIdentity {
    async fn get_token(
        &self,
        _scopes: &[&str],
        _options: Option<azure_core::credentials::TokenRequestOptions<'_>>,
    ) -> azure_core::Result<azure_core::credentials::AccessToken> {
        Ok(azure_core::credentials::AccessToken::new(
            "ambient-token",
            time::OffsetDateTime::now_utc() + time::Duration::hours(1),
        ))
    }
}
