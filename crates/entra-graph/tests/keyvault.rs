//! Key Vault secret fetch through an injected transport: the fake vault answers the unauthenticated
//! first request with the documented 401 challenge, then the bearer-authorized retry with the secret.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};
use azure_core::http::headers::{HeaderName, Headers};
use azure_core::http::{AsyncRawResponse, HttpClient, Request, StatusCode, Transport};
use entra_graph::{fetch_secret, GraphErrorKind};
use time::OffsetDateTime;

#[derive(Debug, Default)]
struct KvCredential {
    scopes: Mutex<Vec<String>>,
}

#[async_trait]
impl TokenCredential for KvCredential {
    async fn get_token(
        &self,
        scopes: &[&str],
        _options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        if let Ok(mut s) = self.scopes.lock() {
            s.extend(scopes.iter().map(|s| s.to_string()));
        }
        Ok(AccessToken::new(
            "kv-token",
            OffsetDateTime::now_utc() + time::Duration::hours(1),
        ))
    }
}

#[derive(Debug, Clone)]
struct Seen {
    method: String,
    url: String,
    authorization: Option<String>,
}

#[derive(Debug)]
struct FakeVault {
    seen: Mutex<Vec<Seen>>,
    secret_body: &'static str,
}

#[async_trait]
impl HttpClient for FakeVault {
    async fn execute_request(&self, request: &Request) -> azure_core::Result<AsyncRawResponse> {
        let authorization = request
            .headers()
            .get_optional_str(&HeaderName::from_static("authorization"))
            .map(str::to_string);
        if let Ok(mut s) = self.seen.lock() {
            s.push(Seen {
                method: format!("{:?}", request.method()),
                url: request.url().to_string(),
                authorization: authorization.clone(),
            });
        }
        let mut headers = Headers::new();
        headers.insert("content-type", "application/json");
        if authorization.is_none() {
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
        Ok(AsyncRawResponse::from_bytes(
            StatusCode::Ok,
            headers,
            self.secret_body,
        ))
    }
}

#[tokio::test]
async fn fetches_a_secret_after_the_challenge_with_a_bearer_token() {
    let fake = Arc::new(FakeVault {
        seen: Mutex::new(Vec::new()),
        secret_body: r#"{"value":"s3cr3t","id":"https://myvault.vault.azure.net/secrets/graph-secret/abc","attributes":{"enabled":true}}"#,
    });
    let cred = Arc::new(KvCredential::default());
    let value = fetch_secret(
        "https://myvault.vault.azure.net/",
        "graph-secret",
        cred.clone(),
        Some(Transport::new(fake.clone())),
    )
    .await;
    assert_eq!(value.ok().as_deref(), Some("s3cr3t"));

    let seen = fake.seen.lock().map(|s| s.clone()).unwrap_or_default();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(
        seen[0].authorization, None,
        "first request must be unauthenticated"
    );
    assert_eq!(seen[1].authorization.as_deref(), Some("Bearer kv-token"));
    assert!(
        seen[1].method.to_ascii_uppercase().contains("GET"),
        "{seen:?}"
    );
    assert!(
        seen[1]
            .url
            .starts_with("https://myvault.vault.azure.net/secrets/graph-secret"),
        "{seen:?}"
    );
    let scopes = cred.scopes.lock().map(|s| s.clone()).unwrap_or_default();
    assert_eq!(scopes, vec!["https://vault.azure.net/.default".to_string()]);
}

#[tokio::test]
async fn a_secret_without_value_is_an_error_that_does_not_leak() {
    let fake = Arc::new(FakeVault {
        seen: Mutex::new(Vec::new()),
        secret_body: r#"{"id":"https://myvault.vault.azure.net/secrets/graph-secret/abc"}"#,
    });
    let err = fetch_secret(
        "https://myvault.vault.azure.net/",
        "graph-secret",
        Arc::new(KvCredential::default()),
        Some(Transport::new(fake)),
    )
    .await
    .err();
    assert_eq!(
        err.as_ref().map(|e| e.kind().clone()),
        Some(GraphErrorKind::KeyVault)
    );
}

#[tokio::test]
async fn an_invalid_secret_name_is_refused_without_a_request() {
    let fake = Arc::new(FakeVault {
        seen: Mutex::new(Vec::new()),
        secret_body: "{}",
    });
    let err = fetch_secret(
        "https://myvault.vault.azure.net/",
        "../keys/x",
        Arc::new(KvCredential::default()),
        Some(Transport::new(fake.clone())),
    )
    .await
    .err();
    assert!(matches!(
        err.map(|e| e.kind().clone()),
        Some(GraphErrorKind::InvalidRequest(_))
    ));
    assert_eq!(fake.seen.lock().map(|s| s.len()).unwrap_or(99), 0);
}
