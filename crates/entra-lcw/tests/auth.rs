//! Caller token validation against the sandbox's Entra identity emulator
//! (`entra_sandbox::identity::Identity`), served from the workspace's shared loopback server, which records
//! the metadata and JWKS requests it answers.

use std::sync::Arc;
use std::time::Duration;

use entra_lcw::{AuthFailure, CallerValidator, ValidatorConfigError, ValidatorOptions};
use entra_sandbox::http::SandboxRequest;
use entra_sandbox::identity::{Identity, IdentityOptions, TokenSpec};
use entra_test_support::{Reply, Seen, TestServer};
use tokio::net::TcpListener;
use url::Url;

const AUDIENCE: &str = "api://entra-enrich-func";
const RELAY_APP: &str = "4e5f6a7b-8c9d-4e0f-a1b2-c3d4e5f6a7b8";
const OTHER_APP: &str = "0f0f0f0f-1e1e-4d2d-8c3c-4b4b4b4b4b4b";

struct Idp {
    base: String,
    identity: Arc<Identity>,
    server: TestServer,
}

impl Idp {
    /// (OpenID metadata requests, JWKS requests) answered so far.
    fn hits(&self) -> (usize, usize) {
        let seen = self.server.seen();
        let metadata = seen
            .iter()
            .filter(|s| s.path().ends_with("/openid-configuration"))
            .count();
        let keys = seen.iter().filter(|s| s.path().contains("/keys")).count();
        (metadata, keys)
    }

    fn token(&self) -> TokenSpec {
        TokenSpec::for_audience(&self.identity, &self.base, AUDIENCE, RELAY_APP)
    }

    fn mint(&self, spec: &TokenSpec) -> String {
        format!("Bearer {}", self.identity.mint(spec))
    }

    fn validator(&self, floor: Duration) -> CallerValidator {
        CallerValidator::new(
            ValidatorOptions::new(
                Url::parse(&self.base).unwrap(),
                self.identity.tenant_id(),
                AUDIENCE,
                vec![RELAY_APP.to_uppercase()],
            )
            .with_min_refresh_interval(floor),
        )
        .unwrap()
    }
}

async fn start_idp() -> Idp {
    let identity = Arc::new(Identity::new(IdentityOptions::default()).unwrap());
    let id = identity.clone();
    // The shared loopback server records every request; the hits are counted from what it saw.
    let server = TestServer::start_with(move |base| {
        let base = base.as_str().trim_end_matches('/').to_string();
        move |seen: &Seen, _| match id.handle(&SandboxRequest::from_http(seen.to_http()), &base) {
            Some(resp) => Reply::from_http(resp.into_http()),
            None => Reply::new(404),
        }
    })
    .await;
    Idp {
        base: server.base_url().as_str().trim_end_matches('/').to_string(),
        identity,
        server,
    }
}

const FLOOR: Duration = Duration::from_secs(300);

#[tokio::test]
async fn valid_v2_token_is_accepted_and_keys_are_cached() {
    let idp = start_idp().await;
    let v = idp.validator(FLOOR);
    let caller = v.validate(Some(&idp.mint(&idp.token()))).await.unwrap();
    assert_eq!(caller.app_id, RELAY_APP);
    assert_eq!(caller.tenant_id.as_deref(), Some(idp.identity.tenant_id()));
    assert_eq!(caller.issuer, idp.identity.issuer_v2(&idp.base));
    assert_eq!(caller.token_version.as_deref(), Some("2.0"));
    assert_eq!(idp.hits(), (1, 1));
    // Cached: more validations fetch nothing.
    for _ in 0..5 {
        v.validate(Some(&idp.mint(&idp.token()))).await.unwrap();
    }
    assert_eq!(idp.hits(), (1, 1));
}

#[tokio::test]
async fn v1_issuer_and_lowercase_bearer_are_accepted() {
    let idp = start_idp().await;
    let v = idp.validator(FLOOR);
    let token = idp
        .identity
        .mint(&idp.token().with_issuer(idp.identity.issuer_v1()));
    let caller = v.validate(Some(&format!("bearer {token}"))).await.unwrap();
    assert_eq!(caller.issuer, idp.identity.issuer_v1());
}

#[tokio::test]
async fn bad_tokens_are_refused_with_the_right_reason() {
    let idp = start_idp().await;
    let v = idp.validator(FLOOR);
    // Warm the cache so the unknown-kid case below cannot refresh (floor not elapsed).
    v.validate(Some(&idp.mint(&idp.token()))).await.unwrap();

    let cases: Vec<(&str, TokenSpec, AuthFailure)> = vec![
        (
            "wrong aud",
            idp.token().with_audience("api://someone-else"),
            AuthFailure::WrongAudience,
        ),
        (
            "wrong iss",
            idp.token()
                .with_issuer("https://sts.windows.net/72f988bf-86f1-41af-91ab-2d7cd011db47/"),
            AuthFailure::WrongIssuer,
        ),
        (
            "v2 issuer of another tenant",
            idp.token().with_issuer(format!(
                "{}/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0",
                idp.base
            )),
            AuthFailure::WrongIssuer,
        ),
        ("expired", idp.token().expired(), AuthFailure::Expired),
        (
            "not yet valid",
            idp.token().not_yet_valid(),
            AuthFailure::NotYetValid,
        ),
        (
            "alg none",
            idp.token().alg_none(),
            AuthFailure::UnsupportedAlgorithm("none".into()),
        ),
        (
            "unknown kid",
            idp.token().unknown_kid(),
            AuthFailure::UnknownKey("sandbox-unpublished-kid".into()),
        ),
        (
            "caller not allowed",
            idp.token().with_app_id(OTHER_APP),
            AuthFailure::CallerNotAllowed {
                app_id: OTHER_APP.into(),
            },
        ),
    ];
    for (name, spec, expected) in cases {
        let token = idp.identity.mint(&spec);
        let err = v
            .validate(Some(&format!("Bearer {token}")))
            .await
            .unwrap_err();
        assert_eq!(err, expected, "{name}");
        let www = err.www_authenticate();
        assert!(
            www.starts_with("Bearer realm=\"entra-enrich\", error=\"invalid_token\""),
            "{name}: {www}"
        );
        for text in [err.to_string(), err.reason().to_string(), www] {
            assert!(!text.contains(&token), "{name}: token echoed");
        }
        assert!(!err.is_transient(), "{name}");
    }
    // No refresh storm: the unknown kid did not refetch within the floor.
    assert_eq!(idp.hits(), (1, 1));

    assert_eq!(
        v.validate(None).await.unwrap_err(),
        AuthFailure::MissingToken
    );
    assert_eq!(
        v.validate(Some("  ")).await.unwrap_err(),
        AuthFailure::MissingToken
    );
    assert_eq!(
        v.validate(Some("Bearer ")).await.unwrap_err(),
        AuthFailure::MissingToken
    );
    let basic = v.validate(Some("Basic dXNlcjpwYXNz")).await.unwrap_err();
    assert_eq!(basic, AuthFailure::NotBearer);
    assert_eq!(basic.www_authenticate(), "Bearer realm=\"entra-enrich\"");
    let good = idp.identity.mint(&idp.token());
    assert_eq!(
        v.validate(Some(&good)).await.unwrap_err(),
        AuthFailure::NotBearer,
        "no scheme"
    );
    assert_eq!(
        v.validate(Some("Bearer not-a-jwt")).await.unwrap_err(),
        AuthFailure::Malformed
    );

    // A tampered payload keeps a valid header and kid but fails the signature.
    let mut parts: Vec<String> = good.split('.').map(String::from).collect();
    let other = idp.identity.mint(&idp.token().with_app_id(OTHER_APP));
    parts[1] = other.split('.').nth(1).unwrap().to_string();
    let forged = parts.join(".");
    assert_eq!(
        v.validate(Some(&format!("Bearer {forged}")))
            .await
            .unwrap_err(),
        AuthFailure::BadSignature
    );
}

#[tokio::test]
async fn non_rs256_is_refused_before_any_key_fetch() {
    let idp = start_idp().await;
    let v = idp.validator(FLOOR);
    // alg none from the emulator, and an HS256 token signed with a guessable secret.
    let none = idp.mint(&idp.token().alg_none());
    assert_eq!(
        v.validate(Some(&none)).await.unwrap_err(),
        AuthFailure::UnsupportedAlgorithm("none".into())
    );
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some(idp.identity.active_kid().to_string());
    let hs = jsonwebtoken::encode(
        &header,
        &idp.token().claims(),
        &jsonwebtoken::EncodingKey::from_secret(b"public-key-as-hmac-secret"),
    )
    .unwrap();
    assert_eq!(
        v.validate(Some(&format!("Bearer {hs}"))).await.unwrap_err(),
        AuthFailure::UnsupportedAlgorithm("HS256".into())
    );
    assert_eq!(
        idp.hits(),
        (0, 0),
        "no metadata or JWKS request for a non-RS256 token"
    );
}

#[tokio::test]
async fn unknown_kid_storm_causes_at_most_one_refresh() {
    let idp = start_idp().await;
    let v = idp.validator(FLOOR);
    let bad = idp.mint(&idp.token().unknown_kid());
    let mut tasks = Vec::new();
    for _ in 0..25 {
        let (v, bad) = (v.clone(), bad.clone());
        tasks.push(tokio::spawn(async move { v.validate(Some(&bad)).await }));
    }
    for t in tasks {
        assert!(matches!(t.await.unwrap(), Err(AuthFailure::UnknownKey(_))));
    }
    // One fetch of metadata+JWKS for the whole storm (the first cold lookup); none after.
    assert_eq!(idp.hits(), (1, 1));
    for _ in 0..10 {
        assert!(v.validate(Some(&bad)).await.is_err());
    }
    assert_eq!(idp.hits(), (1, 1));
    // Good tokens still validate from the cache.
    v.validate(Some(&idp.mint(&idp.token()))).await.unwrap();
    assert_eq!(idp.hits(), (1, 1));
}

#[tokio::test]
async fn key_rotation_is_picked_up_after_the_floor() {
    let idp = start_idp().await;
    let floor = Duration::from_millis(400);
    let v = idp.validator(floor);
    let old_kid = idp.identity.active_kid().to_string();
    let pre_rotation = idp.mint(&idp.token());
    v.validate(Some(&pre_rotation)).await.unwrap();
    assert_eq!(idp.hits(), (1, 1));

    idp.identity.rotate_signing_key();
    let new_kid = idp.identity.active_kid().to_string();
    assert_ne!(old_kid, new_kid);
    let rotated = idp.mint(&idp.token());

    // Within the floor: refused, nothing fetched.
    assert_eq!(
        v.validate(Some(&rotated)).await.unwrap_err(),
        AuthFailure::UnknownKey(new_kid.clone())
    );
    assert_eq!(idp.hits(), (1, 1));

    tokio::time::sleep(floor + Duration::from_millis(100)).await;
    let caller = v.validate(Some(&rotated)).await.unwrap();
    assert_eq!(caller.app_id, RELAY_APP);
    assert_eq!(idp.hits(), (2, 2));
    // The old key stays published during the rollover, so a token signed before it still validates
    // from the refreshed cache.
    assert!(idp.identity.published_kids().contains(&old_kid));
    v.validate(Some(&pre_rotation)).await.unwrap();
    assert_eq!(idp.hits(), (2, 2));
}

#[tokio::test]
async fn unreachable_authority_is_transient() {
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let v = CallerValidator::new(ValidatorOptions::new(
        Url::parse(&format!("http://{addr}")).unwrap(),
        "5a1dbe0c-7e57-4e11-9a11-5a4db0c7e2a1",
        AUDIENCE,
        vec![RELAY_APP.into()],
    ))
    .unwrap();
    let idp = start_idp().await;
    let err = v.validate(Some(&idp.mint(&idp.token()))).await.unwrap_err();
    assert!(matches!(err, AuthFailure::KeysUnavailable(_)), "{err:?}");
    assert!(err.is_transient());
}

#[tokio::test]
async fn plain_http_authority_must_be_loopback() {
    let err = CallerValidator::new(ValidatorOptions::new(
        Url::parse("http://login.microsoftonline.com").unwrap(),
        "5a1dbe0c-7e57-4e11-9a11-5a4db0c7e2a1",
        AUDIENCE,
        vec![RELAY_APP.into()],
    ))
    .unwrap_err();
    assert!(matches!(err, ValidatorConfigError::InsecureAuthority(_)));
    assert!(err.to_string().contains("must use https"));
}

#[tokio::test]
async fn unknown_kid_after_the_floor_refreshes_once_then_fails() {
    let idp = start_idp().await;
    let floor = Duration::from_millis(300);
    let v = idp.validator(floor);
    v.validate(Some(&idp.mint(&idp.token()))).await.unwrap();
    tokio::time::sleep(floor + Duration::from_millis(100)).await;
    let bad = idp.mint(&idp.token().unknown_kid());
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let (v, bad) = (v.clone(), bad.clone());
        tasks.push(tokio::spawn(async move { v.validate(Some(&bad)).await }));
    }
    for t in tasks {
        assert!(matches!(t.await.unwrap(), Err(AuthFailure::UnknownKey(_))));
    }
    assert_eq!(
        idp.hits(),
        (2, 2),
        "exactly one refresh for the whole burst"
    );
}
