//! Key Vault as the Azure SDK meets it, behind an `azure_core` transport (as `ClientOptions::transport`
//! allows). The Key Vault SDK refuses plain-http endpoints, so a transport, not a loopback server, is
//! how it is tested.
//!
//! The documented challenge flow: a request without a bearer token gets `401` with a
//! `WWW-Authenticate: Bearer authorization=…, resource=…` challenge; the retry with a token gets the
//! secret (<https://learn.microsoft.com/azure/key-vault/general/authentication-requests-and-responses>).
//! While the vault is "down" every request gets `503`.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use azure_core::http::headers::{HeaderName, Headers};
use azure_core::http::{AsyncRawResponse, HttpClient, Request, StatusCode, Transport};

/// One request the vault received.
#[derive(Debug, Clone)]
pub struct VaultRequest {
    pub method: String,
    pub url: String,
    pub authorization: Option<String>,
}

/// A vault that answers every `*.vault.azure.net` request with one secret body, and hands every
/// other request (e.g. the Entra token endpoint) to `others`.
pub struct FakeKeyVault {
    secret_body: Mutex<String>,
    /// Secrets with a value of their own, by name (the rest hold `secret_body`).
    named: Mutex<std::collections::HashMap<String, String>>,
    down: AtomicBool,
    seen: Mutex<Vec<VaultRequest>>,
    others: Option<Arc<dyn HttpClient>>,
}

impl fmt::Debug for FakeKeyVault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeKeyVault")
            .field("down", &self.is_down())
            .field("requests", &self.requests().len())
            .finish_non_exhaustive()
    }
}

impl FakeKeyVault {
    /// A vault whose secrets all hold `value` (the body Key Vault's "Get Secret" returns).
    pub fn with_secret(value: &str) -> Self {
        Self::with_body(&secret_body(value))
    }

    /// Gives the secret `name` a value of its own.
    pub fn with_named(self, name: &str, value: &str) -> Self {
        if let Ok(mut named) = self.named.lock() {
            named.insert(name.to_string(), secret_body(value));
        }
        self
    }

    /// Rotates the secret: from now on every read returns `value`.
    pub fn set_secret(&self, value: &str) {
        if let Ok(mut body) = self.secret_body.lock() {
            *body = secret_body(value);
        }
    }

    /// A vault that answers authorised reads with `body` exactly (e.g. one with no `value`).
    pub fn with_body(body: &str) -> Self {
        FakeKeyVault {
            secret_body: Mutex::new(body.to_string()),
            named: Mutex::new(std::collections::HashMap::new()),
            down: AtomicBool::new(false),
            seen: Mutex::new(Vec::new()),
            others: None,
        }
    }

    /// Sends requests for any other host to `client`.
    pub fn with_others(mut self, client: Arc<dyn HttpClient>) -> Self {
        self.others = Some(client);
        self
    }

    /// Takes the vault down (`503`) or brings it back.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    pub fn is_down(&self) -> bool {
        self.down.load(Ordering::SeqCst)
    }

    /// The vault requests received so far.
    pub fn requests(&self) -> Vec<VaultRequest> {
        self.seen.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// This vault as an `azure_core` transport.
    pub fn transport(self: &Arc<Self>) -> Transport {
        Transport::new(self.clone())
    }

    fn answer(&self, authorized: bool, name: &str) -> AsyncRawResponse {
        let mut headers = Headers::new();
        headers.insert("content-type", "application/json");
        if self.is_down() {
            return AsyncRawResponse::from_bytes(
                StatusCode::ServiceUnavailable,
                headers,
                r#"{"error":{"code":"ServiceUnavailable","message":"The service is unavailable."}}"#,
            );
        }
        if !authorized {
            headers.insert(
                "www-authenticate",
                "Bearer authorization=\"https://login.microsoftonline.com/tenant\", resource=\"https://vault.azure.net\"",
            );
            return AsyncRawResponse::from_bytes(
                StatusCode::Unauthorized,
                headers,
                r#"{"error":{"code":"Unauthorized","message":"AKV10000: Request is missing a Bearer or PoP token."}}"#,
            );
        }
        let own = self.named.lock().ok().and_then(|n| n.get(name).cloned());
        let body = own.unwrap_or_else(|| {
            self.secret_body
                .lock()
                .map(|b| b.clone())
                .unwrap_or_default()
        });
        AsyncRawResponse::from_bytes(StatusCode::Ok, headers, body)
    }
}

/// The body Key Vault's "Get Secret" returns for a secret holding `value`.
fn secret_body(value: &str) -> String {
    serde_json::json!({
        "value": value,
        "id": "https://entra-enrich-test.vault.azure.net/secrets/graph-client-secret/0123456789abcdef",
        "attributes": {"enabled": true},
    })
    .to_string()
}

#[async_trait::async_trait]
impl HttpClient for FakeKeyVault {
    async fn execute_request(&self, request: &Request) -> azure_core::Result<AsyncRawResponse> {
        let host = request
            .url()
            .host_str()
            .unwrap_or_default()
            .to_ascii_lowercase();
        if !host.ends_with(".vault.azure.net") {
            return match &self.others {
                Some(client) => client.execute_request(request).await,
                None => Err(azure_core::Error::with_message(
                    azure_core::error::ErrorKind::Io,
                    format!("the fake Key Vault has no route to {host}"),
                )),
            };
        }
        let authorization = request
            .headers()
            .get_optional_str(&HeaderName::from_static("authorization"))
            .map(str::to_string);
        // `GET {vault}/secrets/{name}[/{version}]`
        let name = request
            .url()
            .path_segments()
            .and_then(|mut s| {
                s.next()?;
                s.next()
            })
            .unwrap_or_default()
            .to_string();
        let answer = self.answer(authorization.is_some(), &name);
        if let Ok(mut seen) = self.seen.lock() {
            seen.push(VaultRequest {
                method: format!("{:?}", request.method()),
                url: request.url().to_string(),
                authorization,
            });
        }
        Ok(answer)
    }
}
