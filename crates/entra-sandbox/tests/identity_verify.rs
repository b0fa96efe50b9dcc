//! `Identity::mint` / `Identity::verify`: every kind of bad token is refused with Graph's 401, good ones are
//! accepted, the JWKS really describes the signing keys, and key rotation keeps old keys published.

use entra_sandbox::identity::{
    Identity, IdentityOptions, TokenRejection, TokenSpec, CLOCK_SKEW_SECS,
    DEFAULT_MANAGED_IDENTITY_APP_ID,
};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;

const GRAPH: &str = "https://graph.microsoft.com";
const BASE: &str = "http://127.0.0.1:40000";
const LCW_APP: &str = "ce79fdc4-cd1d-4ea5-8139-e74d7dbe0bb7";
const FUNCTION_APP: &str = "4f0e2a9c-1d3b-4c5e-8f7a-9b0c1d2e3f4a";

fn identity() -> Identity {
    Identity::new(IdentityOptions::default()).expect("identity")
}

fn bearer(t: &str) -> String {
    format!("Bearer {t}")
}

/// Asserts the Graph-shaped 401 and returns its message.
fn assert_graph_401(resp: &entra_sandbox::http::SandboxResponse) -> String {
    assert_eq!(resp.status, http::StatusCode::UNAUTHORIZED);
    assert_eq!(
        resp.headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok()),
        Some("application/json")
    );
    let challenge = resp
        .headers
        .get(http::header::WWW_AUTHENTICATE)
        .and_then(|v| v.to_str().ok())
        .expect("WWW-Authenticate");
    assert!(challenge.starts_with("Bearer "), "{challenge}");
    assert!(challenge.contains(
        "authorization_uri=\"https://login.microsoftonline.com/common/oauth2/authorize\""
    ));
    assert!(challenge.contains("client_id=\"00000003-0000-0000-c000-000000000000\""));
    let body: Value = serde_json::from_slice(&resp.body).expect("json");
    let err = &body["error"];
    assert_eq!(err["code"], "InvalidAuthenticationToken");
    let inner = &err["innerError"];
    let date = inner["date"].as_str().expect("date");
    assert_eq!(date.len(), 19, "yyyy-mm-ddThh:mm:ss: {date}");
    assert!(time::PrimitiveDateTime::parse(
        date,
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]")
    )
    .is_ok());
    let rid = inner["request-id"].as_str().expect("request-id");
    assert!(uuid::Uuid::parse_str(rid).is_ok());
    assert!(inner["client-request-id"].is_string());
    assert_eq!(
        resp.headers.get("request-id").and_then(|v| v.to_str().ok()),
        Some(rid)
    );
    err["message"].as_str().expect("message").to_string()
}

#[test]
fn good_graph_token_is_accepted_with_its_claims() {
    let id = identity();
    let token = id.mint(&TokenSpec::graph(&id, DEFAULT_MANAGED_IDENTITY_APP_ID));
    let caller = id.verify(Some(&bearer(&token)), GRAPH).expect("valid");
    assert_eq!(caller.app_id, DEFAULT_MANAGED_IDENTITY_APP_ID);
    assert!(caller.has_role("User-Mail.ReadWrite.All"));
    assert_eq!(caller.claims["ver"], "1.0");
    assert_eq!(caller.claims["idtyp"], "app");
    assert_eq!(caller.claims["tid"], id.tenant_id());
    assert_eq!(
        caller.claims["iss"],
        format!("https://sts.windows.net/{}/", id.tenant_id())
    );
    // Graph also accepts its app id as the audience.
    let by_guid = id.mint(
        &TokenSpec::graph(&id, DEFAULT_MANAGED_IDENTITY_APP_ID)
            .with_audience("00000003-0000-0000-c000-000000000000"),
    );
    assert!(id.verify(Some(&bearer(&by_guid)), GRAPH).is_ok());
    // The scheme is case-insensitive.
    assert!(id.verify(Some(&format!("bearer {token}")), GRAPH).is_ok());
}

#[test]
fn v2_token_for_the_relay_audience_is_accepted() {
    let id = identity();
    let token = id.mint(&TokenSpec::for_audience(&id, BASE, FUNCTION_APP, LCW_APP));
    let caller = id
        .verify(Some(&bearer(&token)), FUNCTION_APP)
        .expect("valid");
    assert_eq!(caller.app_id, LCW_APP);
    assert_eq!(caller.claims["azp"], LCW_APP);
    assert_eq!(
        caller.claims["iss"],
        format!("{BASE}/{}/v2.0", id.tenant_id())
    );
    assert_eq!(
        id.issuer_v2(&format!("{BASE}/")),
        format!("{BASE}/{}/v2.0", id.tenant_id())
    );
    // The real Entra v2 issuer is not the sandbox's.
    let foreign = id.mint(
        &TokenSpec::for_audience(&id, BASE, FUNCTION_APP, LCW_APP).with_issuer(format!(
            "https://login.microsoftonline.com/{}/v2.0",
            id.tenant_id()
        )),
    );
    assert!(matches!(
        id.verify_token(Some(&bearer(&foreign)), FUNCTION_APP),
        Err(TokenRejection::Issuer(_))
    ));
    // Another base URL than the registered one is refused too.
    let other_base = id.mint(
        &TokenSpec::for_audience(&id, BASE, FUNCTION_APP, LCW_APP)
            .with_issuer(format!("http://127.0.0.1:1/{}/v2.0", id.tenant_id())),
    );
    assert!(matches!(
        id.verify_token(Some(&bearer(&other_base)), FUNCTION_APP),
        Err(TokenRejection::Issuer(_))
    ));
    // Wrong audience for Graph.
    let resp = id.verify(Some(&bearer(&token)), GRAPH).expect_err("aud");
    assert_eq!(
        assert_graph_401(&resp),
        "Access token validation failure. Invalid audience."
    );
}

#[test]
fn every_bad_token_kind_is_refused_with_graph_401() {
    let id = identity();
    let good = || TokenSpec::graph(&id, DEFAULT_MANAGED_IDENTITY_APP_ID);
    let cases: Vec<(&str, TokenSpec, TokenRejection, &str)> = vec![
        (
            "wrong audience",
            good().with_audience("https://graph.windows.net"),
            TokenRejection::Audience(Some("https://graph.windows.net".into())),
            "Access token validation failure. Invalid audience.",
        ),
        (
            "expired",
            good().expired(),
            TokenRejection::Expired,
            "Lifetime validation failed, the token is expired.",
        ),
        (
            "not yet valid",
            good().not_yet_valid(),
            TokenRejection::NotYetValid,
            "Lifetime validation failed, the token is not yet valid.",
        ),
        (
            "unknown kid",
            good().unknown_kid(),
            TokenRejection::UnknownKey(Some("sandbox-unpublished-kid".into())),
            "Access token validation failure. Invalid signature.",
        ),
        (
            "alg none",
            good().alg_none(),
            TokenRejection::Algorithm("none".into()),
            "Access token validation failure. Invalid signature.",
        ),
        (
            "wrong issuer",
            good().with_issuer("https://sts.windows.net/72f988bf-86f1-41af-91ab-2d7cd011db47/"),
            TokenRejection::Issuer(Some(
                "https://sts.windows.net/72f988bf-86f1-41af-91ab-2d7cd011db47/".into(),
            )),
            "Access token validation failure. Invalid issuer.",
        ),
        (
            "wrong tenant",
            good().with_tenant("72f988bf-86f1-41af-91ab-2d7cd011db47"),
            TokenRejection::Tenant(Some("72f988bf-86f1-41af-91ab-2d7cd011db47".into())),
            "Access token validation failure. Invalid issuer.",
        ),
    ];
    for (name, spec, rejection, message) in cases {
        let token = id.mint(&spec);
        assert_eq!(
            id.verify_token(Some(&bearer(&token)), GRAPH),
            Err(rejection),
            "{name}"
        );
        let resp = id.verify(Some(&bearer(&token)), GRAPH).expect_err(name);
        assert_eq!(assert_graph_401(&resp), message, "{name}");
    }
}

#[test]
fn missing_malformed_and_tampered_tokens_are_refused() {
    let id = identity();
    let resp = id.verify(None, GRAPH).expect_err("missing");
    assert_eq!(assert_graph_401(&resp), "Access token is empty.");
    let resp = id.verify(Some("Bearer "), GRAPH).expect_err("empty");
    assert_eq!(assert_graph_401(&resp), "Access token is empty.");
    let resp = id
        .verify(Some("Bearer not-a-jwt"), GRAPH)
        .expect_err("malformed");
    assert_eq!(
        assert_graph_401(&resp),
        "CompactToken parsing failed with error code: 80049217"
    );
    let token = id.mint(&TokenSpec::graph(&id, DEFAULT_MANAGED_IDENTITY_APP_ID));
    // Not a bearer scheme.
    assert_eq!(
        id.verify_token(Some(&format!("Basic {token}")), GRAPH),
        Err(TokenRejection::Malformed)
    );
    // Payload swapped for one with more roles, signature kept: the signature no longer matches.
    let other = id.mint(
        &TokenSpec::graph(&id, DEFAULT_MANAGED_IDENTITY_APP_ID)
            .with_roles(["Directory.ReadWrite.All"]),
    );
    let parts: Vec<&str> = token.split('.').collect();
    let other_parts: Vec<&str> = other.split('.').collect();
    let forged = format!("{}.{}.{}", parts[0], other_parts[1], parts[2]);
    assert_eq!(
        id.verify_token(Some(&bearer(&forged)), GRAPH),
        Err(TokenRejection::Signature)
    );
    // alg none with the signature stripped from a good token.
    let unsigned = format!("{}.{}.", parts[0], parts[1]);
    assert!(id.verify_token(Some(&bearer(&unsigned)), GRAPH).is_err());
}

#[test]
fn clock_skew_is_300_seconds() {
    let id = identity();
    assert_eq!(CLOCK_SKEW_SECS, 300);
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let mut spec = TokenSpec::graph(&id, DEFAULT_MANAGED_IDENTITY_APP_ID);
    spec.iat = now - 3600;
    spec.nbf = now - 3600;
    spec.exp = now - 240; // expired 4 minutes ago: within the skew
    assert!(id.verify(Some(&bearer(&id.mint(&spec))), GRAPH).is_ok());
    spec.exp = now - 360; // 6 minutes ago: outside it
    assert_eq!(
        id.verify_token(Some(&bearer(&id.mint(&spec))), GRAPH),
        Err(TokenRejection::Expired)
    );
    let mut spec = TokenSpec::graph(&id, DEFAULT_MANAGED_IDENTITY_APP_ID);
    spec.nbf = now + 240;
    assert!(id.verify(Some(&bearer(&id.mint(&spec))), GRAPH).is_ok());
    spec.nbf = now + 360;
    assert_eq!(
        id.verify_token(Some(&bearer(&id.mint(&spec))), GRAPH),
        Err(TokenRejection::NotYetValid)
    );
}

#[test]
fn minted_token_verifies_with_jsonwebtoken_from_the_served_jwks() {
    let id = identity();
    let token = id.mint(&TokenSpec::graph(&id, DEFAULT_MANAGED_IDENTITY_APP_ID));
    let jwks: JwkSet = serde_json::from_value(id.jwks()).expect("JwkSet");
    let kid = jsonwebtoken::decode_header(&token)
        .expect("header")
        .kid
        .expect("kid");
    let jwk = jwks.find(&kid).expect("kid published");
    let key = DecodingKey::from_jwk(jwk).expect("key from n/e");
    let mut v = Validation::new(Algorithm::RS256);
    v.set_audience(&[GRAPH]);
    v.set_issuer(&[id.issuer_v1()]);
    let data = jsonwebtoken::decode::<Value>(&token, &key, &v)
        .expect("signature checks with the JWKS key");
    assert_eq!(data.claims["appid"], DEFAULT_MANAGED_IDENTITY_APP_ID);

    // Shape of each entry.
    let raw = id.jwks();
    let entry = &raw["keys"][0];
    assert_eq!(entry["kty"], "RSA");
    assert_eq!(entry["use"], "sig");
    assert_eq!(entry["alg"], "RS256");
    assert_eq!(entry["e"], "AQAB");
    assert_eq!(entry["kid"], kid.as_str());
    let n = entry["n"].as_str().expect("n");
    // 2048-bit modulus: 256 bytes -> 342 base64url characters without padding.
    assert_eq!(n.len(), 342);
}

#[test]
fn rotation_publishes_the_new_kid_and_keeps_the_old_one() {
    let id = identity();
    let before = id.jwks();
    assert_eq!(before["keys"].as_array().map(Vec::len), Some(1));
    let old_kid = id.active_kid().to_string();
    let old_token = id.mint(&TokenSpec::graph(&id, DEFAULT_MANAGED_IDENTITY_APP_ID));

    id.rotate_signing_key();
    let new_kid = id.active_kid().to_string();
    assert_ne!(old_kid, new_kid);
    assert_eq!(id.published_kids(), vec![old_kid.clone(), new_kid.clone()]);
    let new_token = id.mint(&TokenSpec::graph(&id, DEFAULT_MANAGED_IDENTITY_APP_ID));
    assert_eq!(
        jsonwebtoken::decode_header(&new_token)
            .ok()
            .and_then(|h| h.kid),
        Some(new_kid.clone())
    );
    // Both verify with the sandbox.
    assert!(id.verify(Some(&bearer(&old_token)), GRAPH).is_ok());
    assert!(id.verify(Some(&bearer(&new_token)), GRAPH).is_ok());
    // A verifier holding the JWKS fetched before the rotation cannot find the new kid: it must refresh.
    let stale: JwkSet = serde_json::from_value(before).expect("JwkSet");
    assert!(stale.find(&new_kid).is_none());
    let fresh: JwkSet = serde_json::from_value(id.jwks()).expect("JwkSet");
    let key = DecodingKey::from_jwk(fresh.find(&new_kid).expect("new kid")).expect("key");
    let mut v = Validation::new(Algorithm::RS256);
    v.set_audience(&[GRAPH]);
    assert!(jsonwebtoken::decode::<Value>(&new_token, &key, &v).is_ok());
    // A token signed with one key does not verify with the other.
    let old_key = DecodingKey::from_jwk(fresh.find(&old_kid).expect("old kid")).expect("key");
    assert!(jsonwebtoken::decode::<Value>(&new_token, &old_key, &v).is_err());

    // Rotating through every key keeps all of them published; the first key signs again after a wrap.
    id.rotate_signing_key();
    id.rotate_signing_key();
    assert_eq!(id.published_kids().len(), 3);
    assert_eq!(id.active_kid(), old_kid);
}

#[test]
fn verify_request_echoes_client_request_id() {
    let id = identity();
    let mut headers = http::HeaderMap::new();
    headers.insert(
        "client-request-id",
        http::HeaderValue::from_static("7b1f3c1e-0000-4000-8000-000000000001"),
    );
    let req = entra_sandbox::http::SandboxRequest {
        method: http::Method::GET,
        path: "/v1.0/users".into(),
        query: String::new(),
        headers: headers.clone(),
        body: bytes::Bytes::new(),
    };
    let resp = id.verify_request(&req, GRAPH).expect_err("no token");
    assert_graph_401(&resp);
    let body: Value = serde_json::from_slice(&resp.body).expect("json");
    assert_eq!(
        body["error"]["innerError"]["client-request-id"],
        "7b1f3c1e-0000-4000-8000-000000000001"
    );
    let token = id.mint(&TokenSpec::graph(&id, DEFAULT_MANAGED_IDENTITY_APP_ID));
    headers.insert(
        http::header::AUTHORIZATION,
        http::HeaderValue::from_str(&bearer(&token)).expect("header"),
    );
    let req = entra_sandbox::http::SandboxRequest { headers, ..req };
    assert!(id.verify_request(&req, GRAPH).is_ok());
}

#[test]
fn identity_is_send_sync() {
    fn assert_send_sync<T: Send + Sync + 'static>() {}
    assert_send_sync::<Identity>();
    let shared = std::sync::Arc::new(identity());
    let t = std::thread::spawn({
        let shared = shared.clone();
        move || shared.mint(&TokenSpec::graph(&shared, DEFAULT_MANAGED_IDENTITY_APP_ID))
    });
    let token = t.join().expect("thread");
    assert!(shared.verify(Some(&bearer(&token)), GRAPH).is_ok());
}

#[test]
fn bad_options_are_errors_not_panics() {
    let bad = |f: fn(&mut IdentityOptions)| {
        let mut o = IdentityOptions::default();
        f(&mut o);
        Identity::new(o).is_err()
    };
    assert!(bad(|o| o.tenant_id = "contoso.onmicrosoft.com".into()));
    assert!(bad(|o| o.managed_identity_app_id = "x".into()));
    assert!(bad(|o| o.identity_header = String::new()));
    assert!(bad(|o| o.clients[0].client_secret = String::new()));
    assert!(Identity::new(IdentityOptions::default()).is_ok());
}
