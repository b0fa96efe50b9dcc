//! Entra ID identity endpoints emulated by the sandbox, and the token verifier used by its Graph routes.
//!
//! What is served (see [`Identity::handle`]; each route cites the Microsoft document it follows in
//! `identity/routes.rs`):
//! - the App Service / Azure Functions managed identity endpoint (`GET /msi/token`),
//! - the OAuth 2.0 v2 token endpoint, client credentials grant (`POST /{tenant}/oauth2/v2.0/token`),
//! - OpenID Connect metadata (v1 and v2) and the JWKS (`/{tenant}/discovery/v2.0/keys`, `/common/...`).
//!
//! Tokens are RS256 JWTs signed with the sandbox-only test keys committed under `keys/` (they sign nothing
//! outside tests). [`Identity::verify`] checks a bearer token as Microsoft Graph does and answers a
//! Graph-shaped 401 otherwise.

mod keys;
mod routes;
mod token;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::RwLock;

use http::{HeaderMap, HeaderValue, StatusCode};
use jsonwebtoken::{Algorithm, Validation};
use serde_json::{json, Value};

use crate::http::{SandboxRequest, SandboxResponse};

pub use routes::IMDS_TOKEN_PATH;
pub use token::{KeyChoice, TokenAlg, TokenSpec};

/// The resource (audience) of Microsoft Graph, as it appears in the `aud` claim of a v1 Graph token.
pub const GRAPH_RESOURCE: &str = "https://graph.microsoft.com";
/// The application id of Microsoft Graph (its `client_id` in the `WWW-Authenticate` challenge).
pub const GRAPH_APP_ID: &str = "00000003-0000-0000-c000-000000000000";

/// Clock skew allowed on `exp` and `nbf`, in seconds. Graph's own tolerance is NOT DOCUMENTED; 300 s is the
/// default `ClockSkew` of Microsoft.IdentityModel's `TokenValidationParameters`
/// (https://learn.microsoft.com/dotnet/api/microsoft.identitymodel.tokens.tokenvalidationparameters.clockskew),
/// the library family Microsoft's own services validate tokens with.
pub const CLOCK_SKEW_SECS: u64 = 300;

/// Lifetime of the access tokens the sandbox issues (Entra's default is 60–90 minutes, randomised;
/// https://learn.microsoft.com/entra/identity-platform/configurable-token-lifetimes#access-tokens). The sandbox uses
/// a fixed 3599 s so `expires_in` matches the client credentials example response.
pub const TOKEN_LIFETIME_SECS: i64 = 3599;

/// How the sandbox is configured.
#[derive(Debug, Clone)]
pub struct IdentityOptions {
    /// The sandbox tenant (directory) id; the only tenant the token endpoint and metadata answer for.
    pub tenant_id: String,
    /// The value `X-IDENTITY-HEADER` must carry on `/msi/token` (what App Service exposes as `IDENTITY_HEADER`).
    pub identity_header: String,
    /// The application (client) id of the app's system-assigned managed identity.
    pub managed_identity_app_id: String,
    /// Confidential clients that may use the client credentials grant.
    pub clients: Vec<ClientRegistration>,
    /// Application permissions (app roles) granted to the managed identity, emitted as the `roles` claim of its
    /// Graph tokens. Default: `User.Read.All`, `User-Mail.ReadWrite.All`, `User.ReadWrite.All`.
    pub managed_identity_roles: Vec<String>,
    /// User-assigned identities attached to the app (selectable with `client_id`/`principal_id`/`object_id`/`mi_res_id`).
    /// Default: one identity, [`DEFAULT_USER_ASSIGNED_CLIENT_ID`].
    pub user_assigned_identities: Vec<UserAssignedIdentity>,
    /// App roles granted to confidential clients (by client id), emitted as `roles` in client credentials tokens.
    pub client_roles: BTreeMap<String, Vec<String>>,
}

/// A confidential client registered in the sandbox tenant.
#[derive(Debug, Clone)]
pub struct ClientRegistration {
    pub client_id: String,
    pub client_secret: String,
}

/// A user-assigned managed identity attached to the emulated Function App.
#[derive(Debug, Clone)]
pub struct UserAssignedIdentity {
    pub client_id: String,
    pub object_id: String,
    pub resource_id: String,
    /// The `roles` claim of its tokens.
    pub roles: Vec<String>,
}

/// The sandbox tenant id used by [`IdentityOptions::default`].
pub const DEFAULT_TENANT_ID: &str = "5a1dbe0c-7e57-4e11-9a11-5a4db0c7e2a1";
/// The `IDENTITY_HEADER` value used by [`IdentityOptions::default`].
pub const DEFAULT_IDENTITY_HEADER: &str = "sandbox-identity-header-1f6c2b9e";
/// The system-assigned managed identity app id used by [`IdentityOptions::default`].
pub const DEFAULT_MANAGED_IDENTITY_APP_ID: &str = "7d1c0f5e-3a9b-4c2d-8e6f-0a1b2c3d4e5f";
/// The system-assigned managed identity object (service principal) id.
pub const DEFAULT_MANAGED_IDENTITY_OBJECT_ID: &str = "2b8e4f1a-6c3d-4e5f-9a0b-1c2d3e4f5a6b";
/// The default user-assigned identity's client id.
pub const DEFAULT_USER_ASSIGNED_CLIENT_ID: &str = "c0ffee00-1a2b-4c3d-8e4f-5a6b7c8d9e0f";
/// The default user-assigned identity's object id.
pub const DEFAULT_USER_ASSIGNED_OBJECT_ID: &str = "0b1ec7a1-d000-4c3d-8e4f-5a6b7c8d9e0f";
/// The default confidential client's id.
pub const DEFAULT_CLIENT_ID: &str = "9c7f3e2a-1b4d-4f6a-8c0e-2d4f6a8b0c1e";
/// The default confidential client's secret.
pub const DEFAULT_CLIENT_SECRET: &str = "sandbox-client-secret~not-a-real-secret";

/// The managed identity's default app roles on Graph.
pub fn default_managed_identity_roles() -> Vec<String> {
    [
        "User.Read.All",
        "User-Mail.ReadWrite.All",
        "User.ReadWrite.All",
    ]
    .into_iter()
    .map(String::from)
    .collect()
}

impl Default for IdentityOptions {
    fn default() -> Self {
        Self {
            tenant_id: DEFAULT_TENANT_ID.to_string(),
            identity_header: DEFAULT_IDENTITY_HEADER.to_string(),
            managed_identity_app_id: DEFAULT_MANAGED_IDENTITY_APP_ID.to_string(),
            clients: vec![ClientRegistration {
                client_id: DEFAULT_CLIENT_ID.to_string(),
                client_secret: DEFAULT_CLIENT_SECRET.to_string(),
            }],
            managed_identity_roles: default_managed_identity_roles(),
            user_assigned_identities: vec![UserAssignedIdentity {
                client_id: DEFAULT_USER_ASSIGNED_CLIENT_ID.to_string(),
                object_id: DEFAULT_USER_ASSIGNED_OBJECT_ID.to_string(),
                resource_id: format!(
                    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/sandbox/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{}",
                    "entra-enrich-sandbox"
                ),
                roles: default_managed_identity_roles(),
            }],
            client_roles: BTreeMap::new(),
        }
    }
}

/// Why an [`Identity`] could not be built.
#[derive(thiserror::Error, Debug)]
pub enum IdentityError {
    #[error("tenant id must be a GUID, got {0:?}")]
    InvalidTenantId(String),
    #[error("managed identity app id must be a GUID, got {0:?}")]
    InvalidAppId(String),
    #[error("identity header must not be empty")]
    EmptyIdentityHeader,
    #[error(
        "client registration {0:?} is invalid: client id must be a GUID and the secret non-empty"
    )]
    InvalidClient(String),
    #[error("signing key {index} could not be loaded: {source}")]
    SigningKey {
        index: usize,
        #[source]
        source: jsonwebtoken::errors::Error,
    },
}

/// The sandbox's token service: issues tokens and verifies them. `Send + Sync`; share it in an `Arc`.
#[derive(Debug)]
pub struct Identity {
    opts: IdentityOptions,
    keys: Vec<keys::SigningKey>,
    /// Number of rotations so far: key `rotations % keys.len()` signs, keys `0..=rotations` are published.
    rotations: AtomicUsize,
    /// Base URLs the server was reached at (recorded by `handle`, or `register_base_url`): the v2 issuers
    /// `verify` accepts.
    base_urls: RwLock<Vec<String>>,
}

/// Who a verified token belongs to.
#[derive(Debug, Clone, PartialEq)]
pub struct Caller {
    /// `appid` (v1 tokens) or `azp` (v2 tokens).
    pub app_id: String,
    /// The `roles` claim (application permissions), empty when absent.
    pub roles: Vec<String>,
    /// Every claim of the token.
    pub claims: Value,
}

impl Caller {
    /// Whether the token carries the given app role.
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }
}

/// Why [`Identity::verify_token`] refused a token (each maps to a Graph 401 message).
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum TokenRejection {
    #[error("no bearer token")]
    Missing,
    #[error("not a compact JWT")]
    Malformed,
    #[error("algorithm {0} is not accepted")]
    Algorithm(String),
    #[error("signing key {0:?} is not published")]
    UnknownKey(Option<String>),
    #[error("bad signature")]
    Signature,
    #[error("expired")]
    Expired,
    #[error("not yet valid")]
    NotYetValid,
    #[error("audience {0:?} is not the expected one")]
    Audience(Option<String>),
    #[error("issuer {0:?} is not one of the sandbox's")]
    Issuer(Option<String>),
    #[error("tenant {0:?} is not the sandbox tenant")]
    Tenant(Option<String>),
    #[error("no appid/azp claim")]
    NoAppId,
}

impl TokenRejection {
    /// The `message` Graph puts in its `InvalidAuthenticationToken` error for this failure. The messages for
    /// an empty token, a malformed token, a wrong audience and an expired token are the ones Graph is seen to
    /// answer in public reports (e.g. microsoftgraph/microsoft-graph-docs#4752 "Access token validation failure.
    /// Invalid audience."); the others are NOT DOCUMENTED and follow the same pattern.
    pub fn graph_message(&self) -> &'static str {
        match self {
            TokenRejection::Missing => "Access token is empty.",
            TokenRejection::Malformed => "CompactToken parsing failed with error code: 80049217",
            TokenRejection::Algorithm(_)
            | TokenRejection::UnknownKey(_)
            | TokenRejection::Signature => "Access token validation failure. Invalid signature.",
            TokenRejection::Expired => "Lifetime validation failed, the token is expired.",
            TokenRejection::NotYetValid => {
                "Lifetime validation failed, the token is not yet valid."
            }
            TokenRejection::Audience(_) => "Access token validation failure. Invalid audience.",
            TokenRejection::Issuer(_) | TokenRejection::Tenant(_) => {
                "Access token validation failure. Invalid issuer."
            }
            TokenRejection::NoAppId => "Access token validation failure.",
        }
    }
}

fn is_guid(s: &str) -> bool {
    uuid::Uuid::try_parse(s).is_ok() && s.len() == 36
}

pub(crate) fn now_unix() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

impl Identity {
    /// Builds the token service; fails on an unusable configuration.
    pub fn new(opts: IdentityOptions) -> Result<Self, IdentityError> {
        if !is_guid(&opts.tenant_id) {
            return Err(IdentityError::InvalidTenantId(opts.tenant_id));
        }
        if !is_guid(&opts.managed_identity_app_id) {
            return Err(IdentityError::InvalidAppId(opts.managed_identity_app_id));
        }
        if opts.identity_header.is_empty() {
            return Err(IdentityError::EmptyIdentityHeader);
        }
        for c in &opts.clients {
            if !is_guid(&c.client_id) || c.client_secret.is_empty() {
                return Err(IdentityError::InvalidClient(c.client_id.clone()));
            }
        }
        for u in &opts.user_assigned_identities {
            if !is_guid(&u.client_id) {
                return Err(IdentityError::InvalidAppId(u.client_id.clone()));
            }
        }
        let keys = keys::load_all()?;
        Ok(Self {
            opts,
            keys,
            rotations: AtomicUsize::new(0),
            base_urls: RwLock::new(Vec::new()),
        })
    }

    /// Serves the identity routes; `None` when the path is not one of them.
    /// `base_url` is `http://127.0.0.1:PORT` of the running server (used in metadata and v2 issuers).
    pub fn handle(&self, req: &SandboxRequest, base_url: &str) -> Option<SandboxResponse> {
        let base_url = base_url.trim_end_matches('/');
        let resp = routes::handle(self, req, base_url);
        if resp.is_some() {
            self.register_base_url(base_url);
        }
        resp
    }

    /// Verifies an `Authorization` header value (`Bearer <jwt>`) for the given audience, as Microsoft Graph
    /// does. `Err` is a ready Graph-shaped 401 (`InvalidAuthenticationToken`) with a `WWW-Authenticate` header.
    // The agreed interface returns the ready response by value; it is built once per refused request.
    #[allow(clippy::result_large_err)]
    pub fn verify(
        &self,
        authorization: Option<&str>,
        expected_audience: &str,
    ) -> Result<Caller, SandboxResponse> {
        self.verify_token(authorization, expected_audience)
            .map_err(|rejection| graph_unauthorized(&rejection, None))
    }

    /// Like [`Identity::verify`], reading `Authorization` from the request and echoing its `client-request-id`
    /// in the 401 (Graph echoes the header, https://learn.microsoft.com/graph/best-practices-concept#reliability-and-support).
    #[allow(clippy::result_large_err)]
    pub fn verify_request(
        &self,
        req: &SandboxRequest,
        expected_audience: &str,
    ) -> Result<Caller, SandboxResponse> {
        let authorization = req
            .headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let client_request_id = req
            .headers
            .get("client-request-id")
            .and_then(|v| v.to_str().ok());
        self.verify_token(authorization, expected_audience)
            .map_err(|rejection| graph_unauthorized(&rejection, client_request_id))
    }

    /// The verification itself, with the reason for a refusal.
    pub fn verify_token(
        &self,
        authorization: Option<&str>,
        expected_audience: &str,
    ) -> Result<Caller, TokenRejection> {
        let raw = authorization.map(str::trim).unwrap_or_default();
        if raw.is_empty() || raw.eq_ignore_ascii_case("bearer") {
            return Err(TokenRejection::Missing);
        }
        let token = match raw.split_once(' ') {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim(),
            _ => return Err(TokenRejection::Malformed),
        };
        if token.is_empty() {
            return Err(TokenRejection::Missing);
        }
        let claims = self.verify_jwt(token)?;
        let aud = claims.get("aud").and_then(Value::as_str);
        // A Graph token's `aud` is the app ID URI or the app id, depending on how the scope was requested
        // ("aud … can be the application ID URI or the GUID",
        // https://learn.microsoft.com/entra/identity-platform/access-token-claims-reference#payload-claims);
        // Graph accepts both.
        let aud_ok = aud == Some(expected_audience)
            || (expected_audience == GRAPH_RESOURCE && aud == Some(GRAPH_APP_ID));
        if !aud_ok {
            return Err(TokenRejection::Audience(aud.map(String::from)));
        }
        let caller = self.check_issuer_and_tenant(claims)?;
        Ok(caller)
    }

    /// Checks the signature (RS256 with a published key), `exp`/`nbf` (with [`CLOCK_SKEW_SECS`]) and returns
    /// the claims.
    fn verify_jwt(&self, token: &str) -> Result<Value, TokenRejection> {
        // Refuse anything that is not three base64url segments before asking jsonwebtoken, and refuse
        // `alg` values other than RS256 (including "none") explicitly.
        let header = token::peek_header(token).ok_or(TokenRejection::Malformed)?;
        let alg = header
            .get("alg")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if alg != "RS256" {
            return Err(TokenRejection::Algorithm(alg));
        }
        let kid = header.get("kid").and_then(Value::as_str).map(String::from);
        let key = kid
            .as_deref()
            .and_then(|k| self.published_keys().iter().find(|key| key.kid == k))
            .ok_or(TokenRejection::UnknownKey(kid.clone()))?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.leeway = CLOCK_SKEW_SECS;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.validate_aud = false;
        validation.set_required_spec_claims(&["exp"]);
        match jsonwebtoken::decode::<Value>(token, &key.decoding, &validation) {
            Ok(data) => Ok(data.claims),
            Err(e) => Err(match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenRejection::Expired,
                jsonwebtoken::errors::ErrorKind::ImmatureSignature => TokenRejection::NotYetValid,
                jsonwebtoken::errors::ErrorKind::InvalidSignature => TokenRejection::Signature,
                _ => TokenRejection::Malformed,
            }),
        }
    }

    fn check_issuer_and_tenant(&self, claims: Value) -> Result<Caller, TokenRejection> {
        let iss = claims.get("iss").and_then(Value::as_str);
        let v1 = self.issuer_v1();
        let iss_ok = match iss {
            Some(i) if i == v1 => true,
            Some(i) => self.is_v2_issuer(i),
            None => false,
        };
        if !iss_ok {
            return Err(TokenRejection::Issuer(iss.map(String::from)));
        }
        let tid = claims.get("tid").and_then(Value::as_str);
        if tid != Some(self.opts.tenant_id.as_str()) {
            return Err(TokenRejection::Tenant(tid.map(String::from)));
        }
        let app_id = claims
            .get("appid")
            .or_else(|| claims.get("azp"))
            .and_then(Value::as_str)
            .ok_or(TokenRejection::NoAppId)?
            .to_string();
        let roles = claims
            .get("roles")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default();
        Ok(Caller {
            app_id,
            roles,
            claims,
        })
    }

    /// Records a base URL the sandbox is served at, so `verify` accepts its v2 issuer `{base_url}/{tid}/v2.0`.
    /// `handle` records the base URL it is given; call this when minting v2 tokens before any request.
    pub fn register_base_url(&self, base_url: &str) {
        let base = base_url.trim_end_matches('/');
        let known = self
            .base_urls
            .read()
            .map(|v| v.iter().any(|b| b == base))
            .unwrap_or(false);
        if !known {
            if let Ok(mut v) = self.base_urls.write() {
                if !v.iter().any(|b| b == base) {
                    v.push(base.to_string());
                }
            }
        }
    }

    /// Whether `iss` is the v2 issuer of a registered base URL or, when none is registered yet, of a loopback
    /// origin (`http://127.0.0.1:*`, `http://localhost:*`, `http://[::1]:*`).
    fn is_v2_issuer(&self, iss: &str) -> bool {
        let Some(origin) = iss.strip_suffix(&format!("/{}/v2.0", self.opts.tenant_id)) else {
            return false;
        };
        let registered = self.base_urls.read().map(|v| v.clone()).unwrap_or_default();
        if registered.is_empty() {
            ["http://127.0.0.1:", "http://localhost:", "http://[::1]:"]
                .iter()
                .any(|p| {
                    origin
                        .strip_prefix(p)
                        .is_some_and(|port| port.parse::<u16>().is_ok())
                })
        } else {
            registered.iter().any(|b| b == origin)
        }
    }

    /// Signs a token as described by `spec` (or builds an unsigned `alg: none` token).
    pub fn mint(&self, spec: &TokenSpec) -> String {
        token::mint(self, spec)
    }

    pub fn tenant_id(&self) -> &str {
        &self.opts.tenant_id
    }

    pub fn managed_identity_app_id(&self) -> &str {
        &self.opts.managed_identity_app_id
    }

    pub fn identity_header(&self) -> &str {
        &self.opts.identity_header
    }

    pub fn options(&self) -> &IdentityOptions {
        &self.opts
    }

    /// `https://sts.windows.net/{tid}/` — the issuer of v1 access tokens (Graph tokens are v1).
    /// https://learn.microsoft.com/entra/identity-platform/access-token-claims-reference#payload-claims
    pub fn issuer_v1(&self) -> String {
        format!("https://sts.windows.net/{}/", self.opts.tenant_id)
    }

    /// `{base_url}/{tid}/v2.0` — the sandbox's stand-in for `https://login.microsoftonline.com/{tid}/v2.0`.
    pub fn issuer_v2(&self, base_url: &str) -> String {
        format!(
            "{}/{}/v2.0",
            base_url.trim_end_matches('/'),
            self.opts.tenant_id
        )
    }

    /// Makes the next key the signing key; every key used so far stays published in the JWKS, as Entra keeps
    /// old keys published during a rollover
    /// (https://learn.microsoft.com/entra/identity-platform/signing-key-rollover).
    pub fn rotate_signing_key(&self) {
        self.rotations.fetch_add(1, Ordering::SeqCst);
    }

    /// The `kid` of the key that signs new tokens.
    pub fn active_kid(&self) -> &str {
        &self.active_key().kid
    }

    /// The `kid`s currently published in the JWKS, oldest first.
    pub fn published_kids(&self) -> Vec<String> {
        self.published_keys()
            .iter()
            .map(|k| k.kid.clone())
            .collect()
    }

    /// The JWKS document (`{"keys":[...]}`) as served on the discovery endpoints.
    pub fn jwks(&self) -> Value {
        json!({ "keys": self.published_keys().iter().map(|k| k.jwk_json.clone()).collect::<Vec<_>>() })
    }

    fn active_key(&self) -> &keys::SigningKey {
        let n = self.keys.len().max(1);
        let idx = self.rotations.load(Ordering::SeqCst) % n;
        // `keys` is never empty (load_all checks), so the index is in range.
        &self.keys[idx.min(self.keys.len().saturating_sub(1))]
    }

    fn published_keys(&self) -> &[keys::SigningKey] {
        let count = self
            .rotations
            .load(Ordering::SeqCst)
            .saturating_add(1)
            .min(self.keys.len());
        &self.keys[..count]
    }

    /// Roles of the identity selected on `/msi/token`.
    fn managed_identity_roles(&self) -> &[String] {
        &self.opts.managed_identity_roles
    }
}

/// A fresh GUID string (request ids, `uti`, …).
pub(crate) fn new_guid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Graph's `innerError.date`: UTC, seconds precision, no offset (e.g. `2018-08-03T17:43:32`), as seen in
/// Graph error bodies (https://learn.microsoft.com/graph/errors#json-representation).
pub(crate) fn graph_date() -> String {
    let now = time::OffsetDateTime::now_utc();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    )
}

/// Graph's 401: `{"error":{"code":"InvalidAuthenticationToken","message",..,"innerError":{date,request-id,client-request-id}}}`
/// (https://learn.microsoft.com/graph/errors#json-representation) with the challenge Graph sends
/// (`Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize",
/// client_id="00000003-0000-0000-c000-000000000000"`, shown in
/// https://learn.microsoft.com/entra/msal/dotnet/advanced/extract-authentication-parameters).
pub fn graph_unauthorized(
    rejection: &TokenRejection,
    client_request_id: Option<&str>,
) -> SandboxResponse {
    let request_id = new_guid();
    let client_request_id = client_request_id
        .filter(|s| !s.is_empty())
        .map(String::from)
        .unwrap_or_else(|| request_id.clone());
    let body = json!({
        "error": {
            "code": "InvalidAuthenticationToken",
            "message": rejection.graph_message(),
            "innerError": {
                "date": graph_date(),
                "request-id": request_id,
                "client-request-id": client_request_id,
            }
        }
    });
    let mut resp = SandboxResponse::json(StatusCode::UNAUTHORIZED, &body);
    resp.headers.insert(
        http::header::WWW_AUTHENTICATE,
        HeaderValue::from_static(
            "Bearer realm=\"\", authorization_uri=\"https://login.microsoftonline.com/common/oauth2/authorize\", client_id=\"00000003-0000-0000-c000-000000000000\"",
        ),
    );
    insert_header(&mut resp.headers, "request-id", &request_id);
    insert_header(&mut resp.headers, "client-request-id", &client_request_id);
    resp
}

pub(crate) fn insert_header(headers: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        headers.insert(name, v);
    }
}

pub(crate) fn json_response(status: StatusCode, body: &Value) -> SandboxResponse {
    SandboxResponse::json(status, body)
}
