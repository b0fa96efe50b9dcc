//! The real SDK against the sandbox's App Service managed identity endpoint: `azure_identity` 1.0.0
//! `ManagedIdentityCredential` reads `IDENTITY_ENDPOINT`/`IDENTITY_HEADER` in `new()`, so this binary holds a
//! single test that sets the environment step by step (no other test can race on it).

mod identity_support;

use azure_core::credentials::TokenCredential;
use azure_identity::{ManagedIdentityCredential, ManagedIdentityCredentialOptions, UserAssignedId};
use entra_sandbox::identity::{
    IdentityOptions, DEFAULT_USER_ASSIGNED_CLIENT_ID, DEFAULT_USER_ASSIGNED_OBJECT_ID,
};

const GRAPH_SCOPE: &str = "https://graph.microsoft.com/.default";

fn set_env(endpoint: &str, header: &str) {
    // SAFETY-free: edition 2021, and this binary has exactly one test, so nothing reads the env concurrently.
    std::env::set_var("IDENTITY_ENDPOINT", endpoint);
    std::env::set_var("IDENTITY_HEADER", header);
    std::env::remove_var("IDENTITY_SERVER_THUMBPRINT");
    std::env::remove_var("IMDS_ENDPOINT");
    std::env::remove_var("MSI_ENDPOINT");
}

#[tokio::test]
async fn managed_identity_credential_gets_tokens_the_sandbox_verifies() {
    let mut opts = IdentityOptions::default();
    opts.managed_identity_roles
        .push("LifecycleWorkflows.Read.All".into());
    let server = identity_support::start_with(opts).await;
    let id = server.identity.clone();
    let endpoint = format!("{}/msi/token", server.base_url);

    // System-assigned identity.
    set_env(&endpoint, id.identity_header());
    let cred = ManagedIdentityCredential::new(None).expect("credential");
    let token = cred.get_token(&[GRAPH_SCOPE], None).await.expect("token");
    let auth = format!("Bearer {}", token.token.secret());
    let caller = id
        .verify(Some(&auth), "https://graph.microsoft.com")
        .expect("sandbox accepts the SDK's token");
    assert_eq!(caller.app_id, id.managed_identity_app_id());
    assert_eq!(
        caller.roles,
        vec![
            "User.Read.All",
            "User-Mail.ReadWrite.All",
            "User.ReadWrite.All",
            "LifecycleWorkflows.Read.All"
        ]
    );
    assert_eq!(caller.claims["iss"], id.issuer_v1());
    let remaining = token.expires_on - time::OffsetDateTime::now_utc();
    assert!(
        remaining > time::Duration::minutes(55) && remaining <= time::Duration::minutes(60),
        "expires_on parsed from the string form: {remaining}"
    );
    // The token is for Graph only.
    assert!(id.verify(Some(&auth), "api://other").is_err());

    // User-assigned identity by client id: the token's appid is that client id.
    let cred = ManagedIdentityCredential::new(Some(ManagedIdentityCredentialOptions {
        user_assigned_id: Some(UserAssignedId::ClientId(
            DEFAULT_USER_ASSIGNED_CLIENT_ID.to_string(),
        )),
        ..Default::default()
    }))
    .expect("credential");
    let token = cred.get_token(&[GRAPH_SCOPE], None).await.expect("token");
    let caller = id
        .verify(
            Some(&format!("Bearer {}", token.token.secret())),
            "https://graph.microsoft.com",
        )
        .expect("verified");
    assert_eq!(caller.app_id, DEFAULT_USER_ASSIGNED_CLIENT_ID);
    assert_eq!(caller.claims["oid"], DEFAULT_USER_ASSIGNED_OBJECT_ID);

    // By object id (sent as `object_id`, the documented alias of `principal_id`).
    let cred = ManagedIdentityCredential::new(Some(ManagedIdentityCredentialOptions {
        user_assigned_id: Some(UserAssignedId::ObjectId(
            DEFAULT_USER_ASSIGNED_OBJECT_ID.to_string(),
        )),
        ..Default::default()
    }))
    .expect("credential");
    let token = cred.get_token(&[GRAPH_SCOPE], None).await.expect("token");
    let caller = id
        .verify(
            Some(&format!("Bearer {}", token.token.secret())),
            "https://graph.microsoft.com",
        )
        .expect("verified");
    assert_eq!(caller.app_id, DEFAULT_USER_ASSIGNED_CLIENT_ID);

    // A user-assigned identity that is not attached: App Service answers 400, which the SDK reports as an error.
    let cred = ManagedIdentityCredential::new(Some(ManagedIdentityCredentialOptions {
        user_assigned_id: Some(UserAssignedId::ClientId(
            "11111111-2222-3333-4444-555555555555".to_string(),
        )),
        ..Default::default()
    }))
    .expect("credential");
    let err = cred
        .get_token(&[GRAPH_SCOPE], None)
        .await
        .expect_err("unknown identity must fail");
    assert!(
        err.to_string().contains("not been assigned"),
        "unexpected error: {err}"
    );

    // A wrong IDENTITY_HEADER: the endpoint refuses and get_token fails.
    set_env(&endpoint, "not-the-header");
    let cred = ManagedIdentityCredential::new(None).expect("credential");
    let err = cred
        .get_token(&[GRAPH_SCOPE], None)
        .await
        .expect_err("wrong header must fail");
    assert!(
        err.to_string().contains("401") || err.to_string().contains("X-IDENTITY-HEADER"),
        "{err}"
    );
}
