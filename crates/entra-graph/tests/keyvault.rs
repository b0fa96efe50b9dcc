//! Key Vault secret fetch through an injected transport: the fake vault answers the unauthenticated
//! first request with the documented 401 challenge, then the bearer-authorized retry with the secret.

use std::sync::Arc;

use entra_graph::{fetch_secret, GraphErrorKind};
use entra_test_support::{FakeCredential, FakeKeyVault};

#[tokio::test]
async fn fetches_a_secret_after_the_challenge_with_a_bearer_token() {
    let fake = Arc::new(FakeKeyVault::with_body(
        r#"{"value":"s3cr3t","id":"https://myvault.vault.azure.net/secrets/graph-secret/abc","attributes":{"enabled":true}}"#,
    ));
    let cred = Arc::new(FakeCredential::fixed("kv-token"));
    let value = fetch_secret(
        "https://myvault.vault.azure.net/",
        "graph-secret",
        cred.clone(),
        Some(fake.transport()),
    )
    .await;
    assert_eq!(value.ok().as_deref(), Some("s3cr3t"));

    let seen = fake.requests();
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
    let scopes = cred.scopes();
    assert_eq!(scopes, vec!["https://vault.azure.net/.default".to_string()]);
}

#[tokio::test]
async fn a_secret_without_value_is_an_error_that_does_not_leak() {
    let fake = Arc::new(FakeKeyVault::with_body(
        r#"{"id":"https://myvault.vault.azure.net/secrets/graph-secret/abc"}"#,
    ));
    let err = fetch_secret(
        "https://myvault.vault.azure.net/",
        "graph-secret",
        Arc::new(FakeCredential::default()),
        Some(fake.transport()),
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
    let fake = Arc::new(FakeKeyVault::with_body("{}"));
    let err = fetch_secret(
        "https://myvault.vault.azure.net/",
        "../keys/x",
        Arc::new(FakeCredential::default()),
        Some(fake.transport()),
    )
    .await
    .err();
    assert!(matches!(
        err.map(|e| e.kind().clone()),
        Some(GraphErrorKind::InvalidRequest(_))
    ));
    assert_eq!(fake.requests().len(), 0);
}
