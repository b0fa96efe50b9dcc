//! Caller token validation for the `lcw-joiner` function: defence in depth behind the function key.
//!
//! The relay (a Consumption Logic App) calls us with a bearer token from its managed identity. We check
//! it as Microsoft documents for Entra access tokens
//! (https://learn.microsoft.com/entra/identity-platform/access-tokens#validate-tokens,
//! claims: https://learn.microsoft.com/entra/identity-platform/access-token-claims-reference):
//! - keys are discovered from `{authority}/{tenant}/v2.0/.well-known/openid-configuration` → `jwks_uri`
//!   (https://learn.microsoft.com/entra/identity-platform/v2-protocols-oidc#fetch-the-openid-configuration-document)
//!   and selected by `kid`;
//! - **RS256 only** (Entra signs access tokens with RS256); any other `alg` — `none`, `HS256`, … — is
//!   refused before any key lookup, so an attacker cannot make us fetch keys or confuse key types;
//! - `exp`/`nbf` with a leeway; `iss` is the metadata `issuer` (with `{tenantid}` substituted) or the v1
//!   form `https://sts.windows.net/{tenant}/`; `aud` is our audience; `appid` (v1) or `azp` (v2) is one
//!   of the allowed caller app ids (<https://learn.microsoft.com/entra/id-governance/lifecycle-workflow-extensibility>,
//!   keys from <https://login.microsoftonline.com/common/discovery/v2.0/keys>).
//!
//! Key refresh: an unknown `kid` triggers at most one refresh per `min_refresh_interval` (the floor), so
//! a stream of forged tokens cannot turn into a JWKS fetch storm; keys are also refreshed after 24 h
//! ("refresh keys ~every 24 h", access-tokens doc). A failed fetch is retried after
//! `min(floor, 10 s)`; while the IdP is unreachable, keys already cached stay in use.
//!
//! Errors follow RFC 6750 §3 (https://www.rfc-editor.org/rfc/rfc6750#section-3) and never contain the token.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;
use tokio::sync::{Mutex, RwLock};
use url::Url;

/// Default `AZURE_AUTHORITY_HOST`.
pub const DEFAULT_AUTHORITY_HOST: &str = "https://login.microsoftonline.com";
/// Default leeway on `exp`/`nbf`.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(60);
/// Default floor between two key refreshes.
pub const DEFAULT_MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(300);
/// Keys older than this are refreshed on the next validation (the refresh still respects the floor).
pub const KEY_MAX_AGE: Duration = Duration::from_secs(24 * 3600);
/// Retry delay after a failed key fetch (capped by the floor).
const FAILED_FETCH_BACKOFF: Duration = Duration::from_secs(10);
/// Largest metadata / JWKS document read.
const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;
/// Timeout of one metadata / JWKS request.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// How the validator is configured.
#[derive(Debug, Clone)]
pub struct ValidatorOptions {
    /// `AZURE_AUTHORITY_HOST` (https; plain http only for a loopback host).
    pub authority_host: Url,
    /// The tenant (directory) id — use the GUID: it is what `iss` carries.
    pub tenant_id: String,
    /// `ENRICH_AUDIENCE`: the expected `aud`.
    pub audience: String,
    /// `ENRICH_ALLOWED_CALLERS`: app ids allowed in `appid`/`azp` (compared case-insensitively).
    pub allowed_callers: Vec<String>,
    /// Leeway on `exp`/`nbf` (default 60 s).
    pub leeway: Duration,
    /// Floor between key refreshes (default 5 min).
    pub min_refresh_interval: Duration,
    /// HTTP client for the metadata and JWKS requests.
    pub http: reqwest::Client,
}

impl ValidatorOptions {
    /// Options with the defaults (leeway 60 s, refresh floor 5 min, a client with a 10 s timeout).
    pub fn new(
        authority_host: Url,
        tenant_id: impl Into<String>,
        audience: impl Into<String>,
        allowed_callers: Vec<String>,
    ) -> Self {
        let http = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .connect_timeout(FETCH_TIMEOUT)
            .build()
            .unwrap_or_default();
        Self {
            authority_host,
            tenant_id: tenant_id.into(),
            audience: audience.into(),
            allowed_callers,
            leeway: DEFAULT_LEEWAY,
            min_refresh_interval: DEFAULT_MIN_REFRESH_INTERVAL,
            http,
        }
    }

    pub fn with_leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    pub fn with_min_refresh_interval(mut self, floor: Duration) -> Self {
        self.min_refresh_interval = floor;
        self
    }

    pub fn with_http(mut self, http: reqwest::Client) -> Self {
        self.http = http;
        self
    }
}

/// The validator cannot be built from these options.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidatorConfigError {
    #[error("AZURE_AUTHORITY_HOST {0} must use https (plain http is accepted only for 127.0.0.1, localhost or [::1])")]
    InsecureAuthority(String),
    #[error("AZURE_AUTHORITY_HOST {0} is not an http(s) URL with a host")]
    BadAuthority(String),
    #[error("the tenant id is empty or not a tenant id (expected the directory GUID)")]
    BadTenant,
    #[error("ENRICH_AUDIENCE is empty")]
    EmptyAudience,
    #[error("ENRICH_ALLOWED_CALLERS is empty: every caller would be refused")]
    NoAllowedCallers,
}

/// Why a request was refused. `Display` is for logs, [`AuthFailure::reason`] for the caller; neither
/// contains the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthFailure {
    #[error("no Authorization header")]
    MissingToken,
    #[error("the Authorization header is not a Bearer token")]
    NotBearer,
    #[error("the token is not a well-formed JWT")]
    Malformed,
    #[error("token algorithm {0:?} is not accepted (RS256 only)")]
    UnsupportedAlgorithm(String),
    #[error("the token header has no kid")]
    MissingKeyId,
    #[error("the token's signing key {0:?} is not published by the tenant")]
    UnknownKey(String),
    #[error("the tenant's signing keys could not be fetched: {0}")]
    KeysUnavailable(String),
    #[error("the token signature is invalid")]
    BadSignature,
    #[error("the token is expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token audience is not ENRICH_AUDIENCE")]
    WrongAudience,
    #[error("the token issuer is not the configured tenant")]
    WrongIssuer,
    #[error("the token has no {0} claim")]
    MissingClaim(String),
    #[error("the token has neither an appid nor an azp claim")]
    NoCaller,
    #[error("caller application {app_id} is not in ENRICH_ALLOWED_CALLERS")]
    CallerNotAllowed { app_id: String },
}

impl AuthFailure {
    /// A short, non-secret reason, safe to return to the caller.
    pub fn reason(&self) -> &'static str {
        match self {
            AuthFailure::MissingToken => "no Authorization header",
            AuthFailure::NotBearer => "the Authorization header is not a Bearer token",
            AuthFailure::Malformed => "the token is not a well-formed JWT",
            AuthFailure::UnsupportedAlgorithm(_) => "token algorithm not accepted (RS256 only)",
            AuthFailure::MissingKeyId => "the token header has no kid",
            AuthFailure::UnknownKey(_) => "the token signing key is not published by the tenant",
            AuthFailure::KeysUnavailable(_) => "the tenant signing keys are unavailable",
            AuthFailure::BadSignature => "the token signature is invalid",
            AuthFailure::Expired => "the token is expired",
            AuthFailure::NotYetValid => "the token is not valid yet",
            AuthFailure::WrongAudience => "the token audience is not accepted",
            AuthFailure::WrongIssuer => "the token issuer is not accepted",
            AuthFailure::MissingClaim(_) => "the token lacks a required claim",
            AuthFailure::NoCaller => "the token has no appid or azp claim",
            AuthFailure::CallerNotAllowed { .. } => "the calling application is not allowed",
        }
    }

    /// The `WWW-Authenticate` value (RFC 6750 §3): no error code when the request carried no bearer
    /// token (§3.1), else `error="invalid_token"` with the reason as `error_description`.
    pub fn www_authenticate(&self) -> String {
        match self {
            AuthFailure::MissingToken | AuthFailure::NotBearer => {
                "Bearer realm=\"entra-enrich\"".to_string()
            }
            other => format!(
                "Bearer realm=\"entra-enrich\", error=\"invalid_token\", error_description=\"{}\"",
                rfc6750_safe(other.reason())
            ),
        }
    }

    /// Whether retrying later may succeed without a new token (the key fetch failed). Answer 503, not 401.
    pub fn is_transient(&self) -> bool {
        matches!(self, AuthFailure::KeysUnavailable(_))
    }
}

/// RFC 6750 limits `error_description` to %x20-21 / %x23-5B / %x5D-7E.
fn rfc6750_safe(s: &str) -> String {
    s.chars()
        .filter(|c| matches!(*c as u32, 0x20..=0x21 | 0x23..=0x5B | 0x5D..=0x7E))
        .collect()
}

/// Who called, from a validated token.
#[derive(Debug, Clone, PartialEq)]
pub struct CallerIdentity {
    /// `appid` (v1) or `azp` (v2).
    pub app_id: String,
    /// `oid` (the caller's service principal object id), when present.
    pub object_id: Option<String>,
    /// `tid`, when present.
    pub tenant_id: Option<String>,
    /// `iss`.
    pub issuer: String,
    /// `ver` (`"1.0"` / `"2.0"`), when present.
    pub token_version: Option<String>,
}

#[derive(Default)]
struct KeyState {
    keys: HashMap<String, DecodingKey>,
    /// Metadata `issuer`, `{tenantid}` substituted.
    issuer: Option<String>,
    fetched_at: Option<Instant>,
    attempted_at: Option<Instant>,
    last_attempt_failed: bool,
}

/// Validates caller tokens. Cheap to share (`Arc` inside); build once.
#[derive(Clone)]
pub struct CallerValidator {
    inner: Arc<Inner>,
}

struct Inner {
    opts: ValidatorOptions,
    metadata_url: String,
    v1_issuer: String,
    allowed: Vec<String>,
    state: RwLock<KeyState>,
    refresh: Mutex<()>,
}

impl std::fmt::Debug for CallerValidator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallerValidator")
            .field("metadata_url", &self.inner.metadata_url)
            .field("audience", &self.inner.opts.audience)
            .field("allowed_callers", &self.inner.allowed)
            .finish()
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

/// https anywhere, http only on loopback.
fn check_scheme(url: &Url) -> Result<(), ValidatorConfigError> {
    match url.scheme() {
        "https" if url.host().is_some() => Ok(()),
        "http" if is_loopback(url) => Ok(()),
        "http" => Err(ValidatorConfigError::InsecureAuthority(url.to_string())),
        _ => Err(ValidatorConfigError::BadAuthority(url.to_string())),
    }
}

impl CallerValidator {
    /// Checks the options; fetches nothing (keys are fetched on first use).
    pub fn new(opts: ValidatorOptions) -> Result<Self, ValidatorConfigError> {
        check_scheme(&opts.authority_host)?;
        let tenant = opts.tenant_id.trim().to_string();
        if tenant.is_empty()
            || tenant.len() > 256
            || !tenant
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        {
            return Err(ValidatorConfigError::BadTenant);
        }
        if opts.audience.trim().is_empty() {
            return Err(ValidatorConfigError::EmptyAudience);
        }
        let allowed: Vec<String> = opts
            .allowed_callers
            .iter()
            .map(|a| a.trim().to_ascii_lowercase())
            .filter(|a| !a.is_empty())
            .collect();
        if allowed.is_empty() {
            return Err(ValidatorConfigError::NoAllowedCallers);
        }
        let metadata_url = format!(
            "{}/{tenant}/v2.0/.well-known/openid-configuration",
            opts.authority_host.as_str().trim_end_matches('/')
        );
        let v1_issuer = format!("https://sts.windows.net/{tenant}/");
        let opts = ValidatorOptions {
            tenant_id: tenant,
            ..opts
        };
        Ok(Self {
            inner: Arc::new(Inner {
                opts,
                metadata_url,
                v1_issuer,
                allowed,
                state: RwLock::new(KeyState::default()),
                refresh: Mutex::new(()),
            }),
        })
    }

    /// Installs signing keys as if just fetched (an offline check, the fuzz target): `issuer` as the
    /// metadata would give it, `jwks` a JWKS document.
    pub async fn preload_keys(&self, issuer: &str, jwks: &Value) -> Result<usize, String> {
        let keys = parse_jwks(jwks)?;
        let mut s = self.inner.state.write().await;
        let now = Instant::now();
        s.keys = keys;
        s.issuer = Some(issuer.to_string());
        s.fetched_at = Some(now);
        s.attempted_at = Some(now);
        s.last_attempt_failed = false;
        Ok(s.keys.len())
    }

    /// The OpenID configuration URL the keys are discovered from.
    pub fn metadata_url(&self) -> &str {
        &self.inner.metadata_url
    }

    /// Validates an `Authorization` header value.
    pub async fn validate(
        &self,
        authorization_header: Option<&str>,
    ) -> Result<CallerIdentity, AuthFailure> {
        let raw = authorization_header
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .ok_or(AuthFailure::MissingToken)?;
        let token = match raw.split_once(' ') {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim(),
            None if raw.eq_ignore_ascii_case("bearer") => "",
            _ => return Err(AuthFailure::NotBearer),
        };
        if token.is_empty() {
            return Err(AuthFailure::MissingToken);
        }

        // Header first: algorithm and kid, before any key lookup or fetch.
        let header = peek_header(token).ok_or(AuthFailure::Malformed)?;
        let alg = header.get("alg").and_then(Value::as_str).unwrap_or("");
        if alg != "RS256" {
            return Err(AuthFailure::UnsupportedAlgorithm(sanitize_short(alg)));
        }
        let kid = header
            .get("kid")
            .and_then(Value::as_str)
            .filter(|k| !k.is_empty())
            .ok_or(AuthFailure::MissingKeyId)?;

        let (key, metadata_issuer) = self.key_for(kid).await?;

        let mut validation = Validation::new(Algorithm::RS256);
        validation.leeway = self.inner.opts.leeway.as_secs();
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.set_audience(&[self.inner.opts.audience.as_str()]);
        let mut issuers = vec![self.inner.v1_issuer.clone()];
        issuers.extend(metadata_issuer);
        validation.set_issuer(&issuers);
        validation.set_required_spec_claims(&["exp", "aud", "iss"]);

        let claims = match jsonwebtoken::decode::<Value>(token, &key, &validation) {
            Ok(data) => data.claims,
            Err(e) => {
                use jsonwebtoken::errors::ErrorKind as K;
                return Err(match e.kind() {
                    K::ExpiredSignature => AuthFailure::Expired,
                    K::ImmatureSignature => AuthFailure::NotYetValid,
                    K::InvalidAudience => AuthFailure::WrongAudience,
                    K::InvalidIssuer => AuthFailure::WrongIssuer,
                    K::InvalidSignature => AuthFailure::BadSignature,
                    K::InvalidAlgorithm => AuthFailure::UnsupportedAlgorithm("RS256?".into()),
                    K::MissingRequiredClaim(c) => AuthFailure::MissingClaim(sanitize_short(c)),
                    _ => AuthFailure::Malformed,
                });
            }
        };
        let claim = |name: &str| {
            claims
                .get(name)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        let app_id = claim("appid")
            .or_else(|| claim("azp"))
            .ok_or(AuthFailure::NoCaller)?;
        if !self
            .inner
            .allowed
            .iter()
            .any(|a| a.eq_ignore_ascii_case(&app_id))
        {
            return Err(AuthFailure::CallerNotAllowed {
                app_id: sanitize_short(&app_id),
            });
        }
        Ok(CallerIdentity {
            app_id,
            object_id: claim("oid"),
            tenant_id: claim("tid"),
            issuer: claim("iss").unwrap_or_default(),
            token_version: claim("ver"),
        })
    }

    fn may_refresh(&self, s: &KeyState) -> bool {
        let floor = self.inner.opts.min_refresh_interval;
        match s.attempted_at {
            None => true,
            Some(at) if s.last_attempt_failed => at.elapsed() >= floor.min(FAILED_FETCH_BACKOFF),
            Some(at) => at.elapsed() >= floor,
        }
    }

    fn is_stale(s: &KeyState) -> bool {
        s.fetched_at.is_none_or(|at| at.elapsed() >= KEY_MAX_AGE)
    }

    /// The key for `kid` and the metadata issuer; refreshes at most once per floor.
    async fn key_for(&self, kid: &str) -> Result<(DecodingKey, Option<String>), AuthFailure> {
        {
            let s = self.inner.state.read().await;
            if let Some(k) = s.keys.get(kid) {
                if !Self::is_stale(&s) {
                    return Ok((k.clone(), s.issuer.clone()));
                }
            }
        }
        // One refresher at a time; the others wait and then re-check.
        let _guard = self.inner.refresh.lock().await;
        let cached = {
            let s = self.inner.state.read().await;
            let cached = s.keys.get(kid).map(|k| (k.clone(), s.issuer.clone()));
            if cached.is_some() && !Self::is_stale(&s) {
                return cached.ok_or(AuthFailure::UnknownKey(sanitize_short(kid)));
            }
            if !self.may_refresh(&s) {
                return match cached {
                    Some(c) => Ok(c),
                    None if s.fetched_at.is_none() => Err(AuthFailure::KeysUnavailable(
                        "the last key fetch failed; retrying shortly".into(),
                    )),
                    None => Err(AuthFailure::UnknownKey(sanitize_short(kid))),
                };
            }
            cached
        };
        match self.fetch_keys().await {
            Ok((issuer, keys)) => {
                let mut s = self.inner.state.write().await;
                let now = Instant::now();
                tracing::info!(keys = keys.len(), "caller-token signing keys refreshed");
                s.keys = keys;
                s.issuer = Some(issuer);
                s.fetched_at = Some(now);
                s.attempted_at = Some(now);
                s.last_attempt_failed = false;
                s.keys
                    .get(kid)
                    .map(|k| (k.clone(), s.issuer.clone()))
                    .ok_or(AuthFailure::UnknownKey(sanitize_short(kid)))
            }
            Err(e) => {
                let mut s = self.inner.state.write().await;
                s.attempted_at = Some(Instant::now());
                s.last_attempt_failed = true;
                tracing::warn!(error = %e, "caller-token signing keys could not be fetched");
                cached.ok_or(AuthFailure::KeysUnavailable(e))
            }
        }
    }

    async fn get_json(&self, url: &str) -> Result<Value, String> {
        let mut resp = self
            .inner
            .opts
            .http
            .get(url)
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|e| format!("GET {url}: {e}"))?;
        if !resp.status().is_success() {
            return Err(format!("GET {url}: HTTP {}", resp.status().as_u16()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| format!("GET {url}: {e}"))? {
            if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
                return Err(format!(
                    "GET {url}: document larger than {MAX_DOCUMENT_BYTES} bytes"
                ));
            }
            body.extend_from_slice(&chunk);
        }
        serde_json::from_slice(&body).map_err(|e| format!("GET {url}: not JSON: {e}"))
    }

    async fn fetch_keys(&self) -> Result<(String, HashMap<String, DecodingKey>), String> {
        let metadata = self.get_json(&self.inner.metadata_url).await?;
        let issuer = metadata
            .get("issuer")
            .and_then(Value::as_str)
            .ok_or("the OpenID configuration has no issuer")?
            .replace("{tenantid}", &self.inner.opts.tenant_id);
        let jwks_uri = metadata
            .get("jwks_uri")
            .and_then(Value::as_str)
            .ok_or("the OpenID configuration has no jwks_uri")?;
        let jwks_url = Url::parse(jwks_uri).map_err(|e| format!("jwks_uri is not a URL: {e}"))?;
        check_scheme(&jwks_url).map_err(|_| format!("jwks_uri {jwks_url} is not https"))?;
        let jwks = self.get_json(jwks_url.as_str()).await?;
        let keys = parse_jwks(&jwks)?;
        Ok((issuer, keys))
    }
}

/// The usable RS256 signing keys of a JWKS document (RFC 7517), by `kid`: `kty` RSA, `use` sig or
/// absent, `alg` RS256 or absent. Anything else is skipped.
pub fn parse_jwks(jwks: &Value) -> Result<HashMap<String, DecodingKey>, String> {
    let mut keys = HashMap::new();
    for jwk in jwks
        .get("keys")
        .and_then(Value::as_array)
        .ok_or("the JWKS has no keys array")?
    {
        let s = |name: &str| jwk.get(name).and_then(Value::as_str);
        let usable = s("kty") == Some("RSA")
            && s("use").is_none_or(|u| u == "sig")
            && s("alg").is_none_or(|a| a == "RS256");
        let (Some(kid), Some(n), Some(e)) = (s("kid"), s("n"), s("e")) else {
            continue;
        };
        if !usable {
            continue;
        }
        match DecodingKey::from_rsa_components(n, e) {
            Ok(k) => {
                keys.insert(kid.to_string(), k);
            }
            Err(err) => {
                tracing::warn!(kid = %sanitize_short(kid), error = %err, "skipping an unusable JWKS key")
            }
        }
    }
    if keys.is_empty() {
        return Err("the JWKS has no usable RS256 signing key".into());
    }
    Ok(keys)
}

/// Decodes the JOSE header without trusting anything in it.
fn peek_header(token: &str) -> Option<Value> {
    let mut parts = token.split('.');
    let (h, _p, _s) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || h.is_empty() {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD.decode(h.trim_end_matches('=')).ok()?;
    let v: Value = serde_json::from_slice(&bytes).ok()?;
    v.is_object().then_some(v)
}

/// Attacker-controlled text put in a message: printable ASCII, at most 64 characters.
fn sanitize_short(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_graphic())
        .take(64)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(authority: &str) -> ValidatorOptions {
        ValidatorOptions::new(
            Url::parse(authority).unwrap(),
            "5a1dbe0c-7e57-4e11-9a11-5a4db0c7e2a1",
            "api://entra-enrich",
            vec!["7D1C0F5E-3A9B-4C2D-8E6F-0A1B2C3D4E5F".into()],
        )
    }

    #[test]
    fn authority_scheme_rules() {
        assert!(CallerValidator::new(opts("https://login.microsoftonline.com")).is_ok());
        for ok in [
            "http://127.0.0.1:8080",
            "http://localhost:1",
            "http://[::1]:9",
        ] {
            assert!(CallerValidator::new(opts(ok)).is_ok(), "{ok}");
        }
        for bad in [
            "http://login.microsoftonline.com",
            "http://10.0.0.1",
            "http://127.0.0.1.evil.com",
        ] {
            assert!(
                matches!(
                    CallerValidator::new(opts(bad)),
                    Err(ValidatorConfigError::InsecureAuthority(_))
                ),
                "{bad}"
            );
        }
        assert!(matches!(
            CallerValidator::new(opts("ftp://x")),
            Err(ValidatorConfigError::BadAuthority(_))
        ));
    }

    #[test]
    fn config_errors() {
        let mut o = opts("https://login.microsoftonline.com");
        o.allowed_callers = vec![" ".into()];
        assert_eq!(
            CallerValidator::new(o).unwrap_err(),
            ValidatorConfigError::NoAllowedCallers
        );
        let mut o = opts("https://login.microsoftonline.com");
        o.tenant_id = "../evil".into();
        assert_eq!(
            CallerValidator::new(o).unwrap_err(),
            ValidatorConfigError::BadTenant
        );
        let mut o = opts("https://login.microsoftonline.com");
        o.audience = "".into();
        assert_eq!(
            CallerValidator::new(o).unwrap_err(),
            ValidatorConfigError::EmptyAudience
        );
    }

    #[test]
    fn metadata_url_is_the_v2_tenant_document() {
        let v = CallerValidator::new(opts("https://login.microsoftonline.com/")).unwrap();
        assert_eq!(
            v.metadata_url(),
            "https://login.microsoftonline.com/5a1dbe0c-7e57-4e11-9a11-5a4db0c7e2a1/v2.0/.well-known/openid-configuration"
        );
    }

    #[test]
    fn www_authenticate_follows_rfc6750() {
        assert_eq!(
            AuthFailure::MissingToken.www_authenticate(),
            "Bearer realm=\"entra-enrich\""
        );
        assert_eq!(
            AuthFailure::Expired.www_authenticate(),
            "Bearer realm=\"entra-enrich\", error=\"invalid_token\", error_description=\"the token is expired\""
        );
        assert_eq!(rfc6750_safe("a\"b\\c\n"), "abc");
    }
}
