//! The real SDK (`azure_identity` 1.0 `ManagedIdentityCredential`) against the sandbox's two managed identity
//! endpoints, without touching this process's environment:
//! - IMDS, which the credential picks when no variable is set, reached through `SandboxTransport`;
//! - App Service (`IDENTITY_ENDPOINT` + `IDENTITY_HEADER`, read in `new()`), in a child process of this
//!   test binary that is given those variables, the way the Functions host gives them to a worker.

mod identity_support;

use std::sync::Arc;

use azure_core::credentials::TokenCredential;
use azure_core::http::ClientOptions;
use azure_identity::{ManagedIdentityCredential, ManagedIdentityCredentialOptions, UserAssignedId};
use entra_sandbox::identity::{
    Identity, IdentityOptions, DEFAULT_USER_ASSIGNED_CLIENT_ID, DEFAULT_USER_ASSIGNED_OBJECT_ID,
    IMDS_TOKEN_PATH,
};
use entra_sandbox::sdk::SandboxTransport;

const GRAPH_SCOPE: &str = "https://graph.microsoft.com/.default";
const GRAPH: &str = "https://graph.microsoft.com";
/// Set only in the child process: what the App Service test expects of the endpoint.
const CHILD_EXPECT: &str = "ENTRA_SANDBOX_TEST_CHILD_EXPECT";

fn no_managed_identity_variables() {
    for name in [
        "IDENTITY_ENDPOINT",
        "IDENTITY_HEADER",
        "MSI_ENDPOINT",
        "IMDS_ENDPOINT",
    ] {
        assert!(
            std::env::var_os(name).is_none(),
            "{name} is set in the test environment; unset it, these tests expect the IMDS default"
        );
    }
}

fn imds_credential(
    server: &identity_support::TestServer,
    id: Option<UserAssignedId>,
) -> Arc<ManagedIdentityCredential> {
    let base = url::Url::parse(&server.base_url).expect("url");
    ManagedIdentityCredential::new(Some(ManagedIdentityCredentialOptions {
        user_assigned_id: id,
        client_options: ClientOptions {
            transport: Some(SandboxTransport::new(&base).into_transport()),
            ..Default::default()
        },
    }))
    .expect("credential")
}

async fn caller_of(
    cred: &ManagedIdentityCredential,
    id: &Identity,
) -> entra_sandbox::identity::Caller {
    let token = cred.get_token(&[GRAPH_SCOPE], None).await.expect("token");
    id.verify(Some(&format!("Bearer {}", token.token.secret())), GRAPH)
        .expect("sandbox accepts the SDK's token")
}

#[tokio::test]
async fn imds_gives_the_sdk_tokens_the_sandbox_verifies() {
    no_managed_identity_variables();
    let mut opts = IdentityOptions::default();
    opts.managed_identity_roles
        .push("LifecycleWorkflows.Read.All".into());
    let server = identity_support::start_with(opts).await;
    let id = server.identity.clone();

    // System-assigned identity.
    let cred = imds_credential(&server, None);
    let token = cred.get_token(&[GRAPH_SCOPE], None).await.expect("token");
    let caller = id
        .verify(Some(&format!("Bearer {}", token.token.secret())), GRAPH)
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
    assert!(id
        .verify(
            Some(&format!("Bearer {}", token.token.secret())),
            "api://other"
        )
        .is_err());
    let seen = server.server.seen();
    assert_eq!(seen.len(), 1, "one IMDS request, then the cached token");
    assert_eq!(seen[0].path(), IMDS_TOKEN_PATH);
    assert_eq!(seen[0].header("metadata"), Some("true"));

    // User-assigned by client id, then by object id: the token's appid is that client id.
    let by_client = UserAssignedId::ClientId(DEFAULT_USER_ASSIGNED_CLIENT_ID.to_string());
    let caller = caller_of(&imds_credential(&server, Some(by_client)), &id).await;
    assert_eq!(caller.app_id, DEFAULT_USER_ASSIGNED_CLIENT_ID);
    assert_eq!(caller.claims["oid"], DEFAULT_USER_ASSIGNED_OBJECT_ID);
    let by_object = UserAssignedId::ObjectId(DEFAULT_USER_ASSIGNED_OBJECT_ID.to_string());
    let caller = caller_of(&imds_credential(&server, Some(by_object)), &id).await;
    assert_eq!(caller.app_id, DEFAULT_USER_ASSIGNED_CLIENT_ID);
    // And by resource id, which IMDS takes as `msi_res_id` (App Service's SDK path refuses it).
    let resource_id = id.options().user_assigned_identities[0].resource_id.clone();
    let by_resource = UserAssignedId::ResourceId(resource_id);
    let caller = caller_of(&imds_credential(&server, Some(by_resource)), &id).await;
    assert_eq!(caller.app_id, DEFAULT_USER_ASSIGNED_CLIENT_ID);
    assert!(server
        .server
        .seen()
        .iter()
        .any(|s| s.query_value("msi_res_id").is_some()));

    // A user-assigned identity that is not attached: IMDS answers 400, which the SDK reports.
    let unknown = UserAssignedId::ClientId("11111111-2222-3333-4444-555555555555".to_string());
    let err = imds_credential(&server, Some(unknown))
        .get_token(&[GRAPH_SCOPE], None)
        .await
        .expect_err("unknown identity must fail");
    assert!(err.to_string().contains("not been assigned"), "{err}");
}

/// Runs `app_service_child` in a child process of this binary with the App Service variables.
fn run_child(endpoint: &str, header: &str, expect: &str) -> String {
    let out = std::process::Command::new(std::env::current_exe().expect("test binary"))
        .args(["app_service_child", "--exact", "--ignored", "--nocapture"])
        .env("IDENTITY_ENDPOINT", endpoint)
        .env("IDENTITY_HEADER", header)
        .env(CHILD_EXPECT, expect)
        .env_remove("IDENTITY_SERVER_THUMBPRINT")
        .env_remove("IMDS_ENDPOINT")
        .env_remove("MSI_ENDPOINT")
        .output()
        .expect("the test binary runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "child failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_service_endpoint_gives_the_sdk_tokens_and_refuses_a_wrong_header() {
    let server = identity_support::start().await;
    let id = server.identity.clone();
    let endpoint = format!("{}/msi/token", server.base_url);

    let header = id.identity_header().to_string();
    let (ep, h) = (endpoint.clone(), header.clone());
    let stdout = tokio::task::spawn_blocking(move || run_child(&ep, &h, "token"))
        .await
        .expect("child");
    let token = stdout
        .lines()
        .find_map(|l| l.strip_prefix("TOKEN="))
        .expect("the child printed its token");
    let caller = id
        .verify(Some(&format!("Bearer {token}")), GRAPH)
        .expect("sandbox accepts the SDK's App Service token");
    assert_eq!(caller.app_id, id.managed_identity_app_id());
    let seen = server.server.seen();
    assert!(seen.iter().all(|s| s.path() == "/msi/token"), "{seen:?}");
    assert_eq!(seen[0].header("x-identity-header"), Some(header.as_str()));

    let ep = endpoint.clone();
    tokio::task::spawn_blocking(move || run_child(&ep, "not-the-header", "refused"))
        .await
        .expect("child");
}

/// The child side of the App Service test; it does nothing unless that test started it.
#[tokio::test]
#[ignore = "run by app_service_endpoint_gives_the_sdk_tokens_and_refuses_a_wrong_header in a child process"]
async fn app_service_child() {
    let expect = std::env::var(CHILD_EXPECT).expect("started by the parent test");
    let cred = ManagedIdentityCredential::new(None).expect("credential");
    let got = cred.get_token(&[GRAPH_SCOPE], None).await;
    match expect.as_str() {
        "token" => println!("TOKEN={}", got.expect("token").token.secret()),
        _ => {
            let err = got.expect_err("a wrong header must fail");
            assert!(
                err.to_string().contains("401") || err.to_string().contains("X-IDENTITY-HEADER"),
                "{err}"
            );
        }
    }
}
