//! The identity HTTP routes over a real loopback connection: managed identity endpoint, client credentials
//! token endpoint, OpenID metadata and JWKS.

mod identity_support;

use entra_sandbox::http::SandboxRequest;
use entra_sandbox::identity::{
    IdentityOptions, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_MANAGED_IDENTITY_APP_ID,
    DEFAULT_USER_ASSIGNED_CLIENT_ID,
};
use identity_support::{client, got, start, start_with};
use jsonwebtoken::jwk::JwkSet;
use serde_json::Value;

const GRAPH: &str = "https://graph.microsoft.com";

async fn msi(
    server: &identity_support::TestServer,
    query: &str,
    header: Option<&str>,
) -> identity_support::Got {
    let mut req = client().get(format!("{}/msi/token?{query}", server.base_url));
    if let Some(h) = header {
        req = req.header("X-IDENTITY-HEADER", h);
    }
    got(req.send().await.expect("send")).await
}

#[tokio::test]
async fn msi_endpoint_issues_tokens_and_refuses_bad_requests() {
    let server = start().await;
    let id = server.identity.clone();
    let h = Some(id.identity_header());

    let ok = msi(
        &server,
        "api-version=2019-08-01&resource=https%3A%2F%2Fgraph.microsoft.com",
        h,
    )
    .await;
    assert_eq!(ok.status, 200);
    assert_eq!(ok.json["token_type"], "Bearer");
    assert_eq!(ok.json["resource"], GRAPH);
    assert_eq!(ok.json["client_id"], DEFAULT_MANAGED_IDENTITY_APP_ID);
    let expires_on: i64 = ok.json["expires_on"]
        .as_str()
        .expect("string")
        .parse()
        .expect("unix secs");
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    assert!((now + 3500..=now + 3600).contains(&expires_on));
    let token = ok.json["access_token"].as_str().expect("token");
    let caller = id
        .verify(Some(&format!("Bearer {token}")), GRAPH)
        .expect("valid");
    assert_eq!(caller.claims["exp"], expires_on);

    // A scope with /.default is reduced to the resource for `aud`.
    let ok = msi(
        &server,
        "api-version=2019-08-01&resource=https://graph.microsoft.com/.default",
        h,
    )
    .await;
    assert_eq!(ok.status, 200);
    let token = ok.json["access_token"].as_str().expect("token");
    assert!(id.verify(Some(&format!("Bearer {token}")), GRAPH).is_ok());

    // User-assigned by client_id.
    let ok = msi(
        &server,
        &format!(
            "api-version=2019-08-01&resource={GRAPH}&client_id={DEFAULT_USER_ASSIGNED_CLIENT_ID}"
        ),
        h,
    )
    .await;
    assert_eq!(ok.status, 200);
    assert_eq!(ok.json["client_id"], DEFAULT_USER_ASSIGNED_CLIENT_ID);

    // Refusals.
    let r = msi(
        &server,
        "api-version=2019-08-01&resource=https://graph.microsoft.com",
        None,
    )
    .await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json["statusCode"], 401);
    let r = msi(
        &server,
        "api-version=2019-08-01&resource=https://graph.microsoft.com",
        Some("wrong"),
    )
    .await;
    assert_eq!(r.status, 401);
    let r = msi(&server, "api-version=2019-08-01", h).await;
    assert_eq!(r.status, 400);
    assert!(r.json["message"]
        .as_str()
        .unwrap_or_default()
        .contains("resource"));
    let r = msi(&server, "resource=https://graph.microsoft.com", h).await;
    assert_eq!(r.status, 400);
    assert!(r.json["message"]
        .as_str()
        .unwrap_or_default()
        .contains("api-version"));
    let r = msi(
        &server,
        "api-version=2017-09-01&resource=https://graph.microsoft.com",
        h,
    )
    .await;
    assert_eq!(r.status, 400);
    let r = msi(
        &server,
        &format!("api-version=2019-08-01&resource={GRAPH}&client_id={DEFAULT_USER_ASSIGNED_CLIENT_ID}&object_id=x"),
        h,
    )
    .await;
    assert_eq!(r.status, 400);
    let r = msi(
        &server,
        &format!("api-version=2019-08-01&resource={GRAPH}&client_id=00000000-0000-0000-0000-000000000001"),
        h,
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json["message"],
        "Unable to load the proper Managed Identity."
    );
    let r = got(client()
        .post(format!(
            "{}/msi/token?api-version=2019-08-01&resource={GRAPH}",
            server.base_url
        ))
        .header("X-IDENTITY-HEADER", id.identity_header())
        .send()
        .await
        .expect("send"))
    .await;
    assert_eq!(r.status, 405);
}

async fn token_request(
    server: &identity_support::TestServer,
    tenant: &str,
    form: &[(&str, &str)],
) -> identity_support::Got {
    got(client()
        .post(format!("{}/{tenant}/oauth2/v2.0/token", server.base_url))
        .header("client-request-id", "0d1e2f3a-4b5c-4d6e-8f70-8192a3b4c5d6")
        .form(form)
        .send()
        .await
        .expect("send"))
    .await
}

fn assert_aad_error(g: &identity_support::Got, status: u16, error: &str, code: u64) {
    assert_eq!(g.status, status, "{}", g.json);
    assert_eq!(g.json["error"], error, "{}", g.json);
    assert_eq!(
        g.json["error_codes"],
        serde_json::json!([code]),
        "{}",
        g.json
    );
    let desc = g.json["error_description"].as_str().expect("description");
    assert!(desc.starts_with(&format!("AADSTS{code}: ")), "{desc}");
    assert!(uuid::Uuid::parse_str(g.json["trace_id"].as_str().expect("trace_id")).is_ok());
    assert_eq!(
        g.json["correlation_id"],
        "0d1e2f3a-4b5c-4d6e-8f70-8192a3b4c5d6"
    );
    let ts = g.json["timestamp"].as_str().expect("timestamp");
    assert!(
        time::PrimitiveDateTime::parse(
            ts.trim_end_matches('Z'),
            time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]")
        )
        .is_ok(),
        "{ts}"
    );
}

#[tokio::test]
async fn client_credentials_grant() {
    let mut opts = IdentityOptions::default();
    opts.client_roles.insert(
        DEFAULT_CLIENT_ID.to_string(),
        vec!["User.Read.All".to_string()],
    );
    let server = start_with(opts).await;
    let id = server.identity.clone();
    let tid = id.tenant_id().to_string();
    let good = [
        ("client_id", DEFAULT_CLIENT_ID),
        ("client_secret", DEFAULT_CLIENT_SECRET),
        ("scope", "https://graph.microsoft.com/.default"),
        ("grant_type", "client_credentials"),
    ];

    let ok = token_request(&server, &tid, &good).await;
    assert_eq!(ok.status, 200, "{}", ok.json);
    assert_eq!(ok.json["token_type"], "Bearer");
    assert_eq!(ok.json["expires_in"], 3599);
    assert_eq!(ok.json["ext_expires_in"], 3599);
    let token = ok.json["access_token"].as_str().expect("token");
    let caller = id
        .verify(Some(&format!("Bearer {token}")), GRAPH)
        .expect("valid");
    assert_eq!(caller.app_id, DEFAULT_CLIENT_ID);
    assert_eq!(caller.roles, vec!["User.Read.All"]);

    // Another resource: aud is that resource.
    let mut other = good;
    other[2] = ("scope", "api://entra-enrich/.default");
    let ok = token_request(&server, &tid, &other).await;
    let token = ok.json["access_token"].as_str().expect("token");
    assert!(id
        .verify(Some(&format!("Bearer {token}")), "api://entra-enrich")
        .is_ok());

    // client_secret_basic: credentials in the Authorization header instead of the form.
    use base64::Engine;
    let basic = |secret: &str| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD
                .encode(format!("{DEFAULT_CLIENT_ID}:{secret}"))
        )
    };
    let form = [good[2], good[3]];
    let r = got(client()
        .post(format!("{}/{tid}/oauth2/v2.0/token", server.base_url))
        .header("authorization", basic(DEFAULT_CLIENT_SECRET))
        .form(&form)
        .send()
        .await
        .expect("send"))
    .await;
    assert_eq!(r.status, 200, "{}", r.json);
    let r = got(client()
        .post(format!("{}/{tid}/oauth2/v2.0/token", server.base_url))
        .header("authorization", basic("wrong"))
        .header("client-request-id", "0d1e2f3a-4b5c-4d6e-8f70-8192a3b4c5d6")
        .form(&form)
        .send()
        .await
        .expect("send"))
    .await;
    assert_aad_error(&r, 401, "invalid_client", 7000215);

    // Wrong secret: invalid_client, 401.
    let mut bad = good;
    bad[1] = ("client_secret", "wrong");
    assert_aad_error(
        &token_request(&server, &tid, &bad).await,
        401,
        "invalid_client",
        7000215,
    );
    // No credential at all.
    assert_aad_error(
        &token_request(&server, &tid, &[good[0], good[2], good[3]]).await,
        401,
        "invalid_client",
        7000218,
    );
    // Unknown client.
    let mut bad = good;
    bad[0] = ("client_id", "00000000-1111-2222-3333-444444444444");
    assert_aad_error(
        &token_request(&server, &tid, &bad).await,
        400,
        "unauthorized_client",
        700016,
    );
    // Scope without /.default, and several resources.
    let mut bad = good;
    bad[2] = ("scope", "User.Read.All");
    assert_aad_error(
        &token_request(&server, &tid, &bad).await,
        400,
        "invalid_scope",
        1002012,
    );
    bad[2] = (
        "scope",
        "https://graph.microsoft.com/.default api://x/.default",
    );
    assert_aad_error(
        &token_request(&server, &tid, &bad).await,
        400,
        "invalid_scope",
        70011,
    );
    // Grant types.
    let mut bad = good;
    bad[3] = ("grant_type", "password");
    assert_aad_error(
        &token_request(&server, &tid, &bad).await,
        400,
        "unsupported_grant_type",
        70003,
    );
    assert_aad_error(
        &token_request(&server, &tid, &good[..3]).await,
        400,
        "invalid_request",
        900144,
    );
    // Unknown tenant.
    assert_aad_error(
        &token_request(&server, "11111111-2222-3333-4444-555555555555", &good).await,
        400,
        "invalid_request",
        90002,
    );
    // GET is refused.
    let r = got(client()
        .get(format!("{}/{tid}/oauth2/v2.0/token", server.base_url))
        .send()
        .await
        .expect("send"))
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json["error_codes"], serde_json::json!([900561]));
}

#[tokio::test]
async fn client_assertion_with_a_federated_managed_identity_token() {
    let server = start().await;
    let id = server.identity.clone();
    let tid = id.tenant_id().to_string();
    // The MI gets a token for the token-exchange audience, then uses it as the app's client assertion.
    let mi = msi(
        &server,
        "api-version=2019-08-01&resource=api://AzureADTokenExchange",
        Some(id.identity_header()),
    )
    .await;
    let assertion = mi.json["access_token"].as_str().expect("token").to_string();
    let jwt_bearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
    let form = [
        ("client_id", DEFAULT_CLIENT_ID),
        ("client_assertion_type", jwt_bearer),
        ("client_assertion", assertion.as_str()),
        ("scope", "https://graph.microsoft.com/.default"),
        ("grant_type", "client_credentials"),
    ];
    let ok = token_request(&server, &tid, &form).await;
    assert_eq!(ok.status, 200, "{}", ok.json);
    let token = ok.json["access_token"].as_str().expect("token");
    assert_eq!(
        id.verify(Some(&format!("Bearer {token}")), GRAPH)
            .expect("valid")
            .app_id,
        DEFAULT_CLIENT_ID
    );
    // A Graph token is not an assertion (wrong audience).
    let graph_token = msi(
        &server,
        &format!("api-version=2019-08-01&resource={GRAPH}"),
        Some(id.identity_header()),
    )
    .await;
    let mut bad = form;
    let g = graph_token.json["access_token"]
        .as_str()
        .expect("token")
        .to_string();
    bad[2] = ("client_assertion", g.as_str());
    assert_aad_error(
        &token_request(&server, &tid, &bad).await,
        401,
        "invalid_client",
        700027,
    );
    // Both a secret and an assertion.
    let both = [
        form[0],
        form[1],
        form[2],
        ("client_secret", DEFAULT_CLIENT_SECRET),
        form[3],
        form[4],
    ];
    assert_aad_error(
        &token_request(&server, &tid, &both).await,
        400,
        "invalid_request",
        900144,
    );
}

#[tokio::test]
async fn openid_metadata_and_jwks() {
    let server = start().await;
    let id = server.identity.clone();
    let tid = id.tenant_id().to_string();
    let base = &server.base_url;

    let v2 = got(client()
        .get(format!(
            "{base}/{tid}/v2.0/.well-known/openid-configuration"
        ))
        .send()
        .await
        .expect("send"))
    .await;
    assert_eq!(v2.status, 200);
    assert_eq!(v2.json["issuer"], format!("{base}/{tid}/v2.0"));
    assert_eq!(v2.json["issuer"], id.issuer_v2(base));
    assert_eq!(
        v2.json["jwks_uri"],
        format!("{base}/{tid}/discovery/v2.0/keys")
    );
    assert_eq!(
        v2.json["token_endpoint"],
        format!("{base}/{tid}/oauth2/v2.0/token")
    );
    assert_eq!(
        v2.json["authorization_endpoint"],
        format!("{base}/{tid}/oauth2/v2.0/authorize")
    );
    assert_eq!(
        v2.json["id_token_signing_alg_values_supported"],
        serde_json::json!(["RS256"])
    );

    let v1 = got(client()
        .get(format!("{base}/{tid}/.well-known/openid-configuration"))
        .send()
        .await
        .expect("send"))
    .await;
    assert_eq!(v1.status, 200);
    assert_eq!(v1.json["issuer"], format!("https://sts.windows.net/{tid}/"));
    assert_eq!(v1.json["issuer"], id.issuer_v1());

    let common = got(client()
        .get(format!(
            "{base}/common/v2.0/.well-known/openid-configuration"
        ))
        .send()
        .await
        .expect("send"))
    .await;
    assert_eq!(common.json["issuer"], format!("{base}/{{tenantid}}/v2.0"));

    // Follow jwks_uri, and check a freshly issued token against it.
    let jwks_uri = v2.json["jwks_uri"].as_str().expect("jwks_uri");
    let keys = got(client().get(jwks_uri).send().await.expect("send")).await;
    assert_eq!(keys.status, 200);
    let set: JwkSet = serde_json::from_value(keys.json.clone()).expect("JwkSet");
    assert_eq!(set.keys.len(), 1);
    for k in keys.json["keys"].as_array().expect("keys") {
        for field in ["kty", "use", "kid", "n", "e", "alg"] {
            assert!(k[field].is_string(), "{field} in {k}");
        }
    }
    let mi = msi(
        &server,
        &format!("api-version=2019-08-01&resource={GRAPH}"),
        Some(id.identity_header()),
    )
    .await;
    let token = mi.json["access_token"].as_str().expect("token");
    let kid = jsonwebtoken::decode_header(token)
        .expect("header")
        .kid
        .expect("kid");
    let key = jsonwebtoken::DecodingKey::from_jwk(set.find(&kid).expect("kid")).expect("key");
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    v.set_audience(&[GRAPH]);
    v.set_issuer(&[v1.json["issuer"].as_str().expect("issuer")]);
    assert!(jsonwebtoken::decode::<Value>(token, &key, &v).is_ok());

    // Key rotation shows up on the wire, on every keys route.
    id.rotate_signing_key();
    for path in [
        "common/discovery/v2.0/keys",
        &format!("{tid}/discovery/v2.0/keys"),
        "common/discovery/keys",
    ] {
        let keys = got(client()
            .get(format!("{base}/{path}"))
            .send()
            .await
            .expect("send"))
        .await;
        assert_eq!(keys.status, 200, "{path}");
        assert_eq!(
            keys.json["keys"].as_array().map(Vec::len),
            Some(2),
            "{path}"
        );
    }

    // Unknown tenant: AADSTS90002.
    let bad = got(client()
        .get(format!(
            "{base}/11111111-2222-3333-4444-555555555555/v2.0/.well-known/openid-configuration"
        ))
        .send()
        .await
        .expect("send"))
    .await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.json["error"], "invalid_request");
    assert_eq!(bad.json["error_codes"], serde_json::json!([90002]));
    // Non-identity paths are left to the Graph router.
    let req = SandboxRequest {
        method: http::Method::GET,
        path: "/v1.0/users".into(),
        query: String::new(),
        headers: http::HeaderMap::new(),
        body: bytes::Bytes::new(),
    };
    assert!(id.handle(&req, base).is_none());
    let r = got(client()
        .get(format!("{base}/v1.0/users/x"))
        .send()
        .await
        .expect("send"))
    .await;
    assert_eq!(r.status, 404);
}

/// IMDS as documented in how-to-use-vm-token: `Metadata: true` is required (`400 bad_request_102`),
/// `api-version` 2018-02-01 or later, numbers as strings and an empty `refresh_token` in the answer.
#[tokio::test]
async fn imds_endpoint_issues_tokens_and_refuses_bad_requests() {
    let server = start().await;
    let imds = |query: &str, metadata: Option<&str>| {
        let mut req = client().get(format!(
            "{}{}?{query}",
            server.base_url,
            entra_sandbox::identity::IMDS_TOKEN_PATH
        ));
        if let Some(m) = metadata {
            req = req.header("Metadata", m);
        }
        req.send()
    };
    let ok = got(imds(
        &format!("api-version=2018-02-01&resource={GRAPH}"),
        Some("true"),
    )
    .await
    .expect("send"))
    .await;
    assert_eq!(ok.status, 200, "{}", ok.json);
    assert_eq!(ok.json["token_type"], "Bearer");
    assert_eq!(ok.json["refresh_token"], "");
    assert_eq!(ok.json["resource"], GRAPH);
    for field in ["expires_in", "expires_on", "not_before"] {
        let v = ok.json[field].as_str().unwrap_or_default();
        assert!(
            v.parse::<i64>().is_ok(),
            "{field} is a number in a string: {v:?}"
        );
    }
    let token = ok.json["access_token"].as_str().expect("token");
    let caller = server
        .identity
        .verify(Some(&format!("Bearer {token}")), GRAPH)
        .expect("verified");
    assert_eq!(caller.app_id, DEFAULT_MANAGED_IDENTITY_APP_ID);

    let q = format!("api-version=2019-08-01&resource={GRAPH}");
    let no_header = got(imds(&q, None).await.expect("send")).await;
    assert_eq!(
        no_header.json["error_description"],
        "Required metadata header not specified"
    );
    let old = format!("api-version=2017-09-01&resource={GRAPH}");
    let unknown = format!("{q}&client_id=11111111-2222-3333-4444-555555555555");
    let refusals: [(&str, Option<&str>, &str); 5] = [
        (&q, None, "bad_request_102"),
        (&q, Some("True"), "bad_request_102"),
        (&old, Some("true"), "invalid_request"),
        ("api-version=2019-08-01", Some("true"), "invalid_resource"),
        (&unknown, Some("true"), "invalid_request"),
    ];
    for (query, metadata, code) in refusals {
        let r = got(imds(query, metadata).await.expect("send")).await;
        assert_eq!(
            (r.status, r.json["error"].as_str()),
            (400, Some(code)),
            "{query} {metadata:?}"
        );
    }
}
