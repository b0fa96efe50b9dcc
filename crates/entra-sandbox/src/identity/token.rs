//! Token construction: [`TokenSpec`] describes a token (good or deliberately bad), [`mint`] signs it.
//!
//! Claims follow the access token reference
//! (https://learn.microsoft.com/entra/identity-platform/access-token-claims-reference): v1 app-only tokens carry
//! `aud, iss, iat, nbf, exp, appid, appidacr, idp, idtyp:"app", oid, sub, roles, tid, uti, ver:"1.0"`; v2 ones
//! carry `azp, azpacr` and `ver:"2.0"` instead of `appid, appidacr`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, Header};
use serde_json::{json, Map, Value};

use super::{new_guid, now_unix, Identity, GRAPH_RESOURCE};

/// Which key signs the token (or which `kid` its header names).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyChoice {
    /// The sandbox's current signing key.
    Active,
    /// Signed with the active key but with this `kid` in the header, which the JWKS does not publish.
    Unknown(String),
}

/// The `alg` of the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenAlg {
    Rs256,
    /// An unsigned token (`{"alg":"none"}` and an empty signature), which verifiers must refuse.
    None,
}

/// Everything that goes into a token. Build with [`TokenSpec::graph`] / [`TokenSpec::for_audience`] and
/// spoil with the builder methods.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenSpec {
    pub iss: String,
    pub aud: String,
    /// v1 app id claim; omitted when `None`.
    pub appid: Option<String>,
    /// v2 app id claim; omitted when `None`.
    pub azp: Option<String>,
    /// Omitted when empty (Entra omits `roles` when the app holds none).
    pub roles: Vec<String>,
    pub tid: String,
    pub oid: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    pub kid: KeyChoice,
    pub alg: TokenAlg,
    /// More claims, merged last (they override the ones above).
    pub extra: Map<String, Value>,
}

impl TokenSpec {
    /// A valid v1 app-only token for Microsoft Graph: `aud` `https://graph.microsoft.com`, v1 issuer, `appid`,
    /// valid for one hour from now, the managed identity's roles when `app_id` is the managed identity.
    pub fn graph(identity: &Identity, app_id: &str) -> Self {
        let now = now_unix();
        let roles = if app_id == identity.managed_identity_app_id() {
            identity.managed_identity_roles().to_vec()
        } else {
            identity
                .options()
                .user_assigned_identities
                .iter()
                .find(|u| u.client_id == app_id)
                .map(|u| u.roles.clone())
                .or_else(|| identity.options().client_roles.get(app_id).cloned())
                .unwrap_or_default()
        };
        let mut extra = Map::new();
        extra.insert("ver".into(), json!("1.0"));
        extra.insert("appidacr".into(), json!("2"));
        Self {
            iss: identity.issuer_v1(),
            aud: GRAPH_RESOURCE.to_string(),
            appid: Some(app_id.to_string()),
            azp: None,
            roles,
            tid: identity.tenant_id().to_string(),
            oid: oid_for(identity, app_id),
            iat: now,
            nbf: now,
            exp: now + 3600,
            kid: KeyChoice::Active,
            alg: TokenAlg::Rs256,
            extra,
        }
    }

    /// A valid v2 token for any audience (e.g. the Function's app id, for the Logic App relay): v2 issuer
    /// `{base_url}/{tid}/v2.0`, both `azp` and `appid`, no roles, valid for one hour.
    /// Registers `base_url` with the identity (see [`Identity::register_base_url`]) so the token verifies.
    pub fn for_audience(identity: &Identity, base_url: &str, aud: &str, app_id: &str) -> Self {
        identity.register_base_url(base_url);
        let now = now_unix();
        let mut extra = Map::new();
        extra.insert("ver".into(), json!("2.0"));
        extra.insert("azpacr".into(), json!("2"));
        Self {
            iss: identity.issuer_v2(base_url),
            aud: aud.to_string(),
            appid: Some(app_id.to_string()),
            azp: Some(app_id.to_string()),
            roles: Vec::new(),
            tid: identity.tenant_id().to_string(),
            oid: oid_for(identity, app_id),
            iat: now,
            nbf: now,
            exp: now + 3600,
            kid: KeyChoice::Active,
            alg: TokenAlg::Rs256,
            extra,
        }
    }

    /// Expired two hours ago (well beyond the clock skew).
    pub fn expired(mut self) -> Self {
        let now = now_unix();
        self.iat = now - 3 * 3600;
        self.nbf = self.iat;
        self.exp = now - 2 * 3600;
        self
    }

    /// Valid only from one hour from now (well beyond the clock skew).
    pub fn not_yet_valid(mut self) -> Self {
        let now = now_unix();
        self.iat = now;
        self.nbf = now + 3600;
        self.exp = now + 2 * 3600;
        self
    }

    pub fn with_audience(mut self, aud: impl Into<String>) -> Self {
        self.aud = aud.into();
        self
    }

    pub fn with_issuer(mut self, iss: impl Into<String>) -> Self {
        self.iss = iss.into();
        self
    }

    pub fn with_tenant(mut self, tid: impl Into<String>) -> Self {
        self.tid = tid.into();
        self
    }

    /// Names a `kid` the JWKS does not publish.
    pub fn unknown_kid(mut self) -> Self {
        self.kid = KeyChoice::Unknown("sandbox-unpublished-kid".to_string());
        self
    }

    /// Makes the token unsigned (`alg: none`).
    pub fn alg_none(mut self) -> Self {
        self.alg = TokenAlg::None;
        self
    }

    /// Sets the app id (`appid`, and `azp` when the spec has one).
    pub fn with_app_id(mut self, app: impl Into<String>) -> Self {
        let app = app.into();
        if self.azp.is_some() {
            self.azp = Some(app.clone());
        }
        self.appid = Some(app);
        self
    }

    pub fn with_roles<I, S>(mut self, roles: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.roles = roles.into_iter().map(Into::into).collect();
        self
    }

    pub fn with_claim(mut self, name: impl Into<String>, value: Value) -> Self {
        self.extra.insert(name.into(), value);
        self
    }

    /// The JSON payload of the token.
    pub fn claims(&self) -> Value {
        let mut c = Map::new();
        c.insert("aud".into(), json!(self.aud));
        c.insert("iss".into(), json!(self.iss));
        c.insert("iat".into(), json!(self.iat));
        c.insert("nbf".into(), json!(self.nbf));
        c.insert("exp".into(), json!(self.exp));
        if let Some(appid) = &self.appid {
            c.insert("appid".into(), json!(appid));
        }
        if let Some(azp) = &self.azp {
            c.insert("azp".into(), json!(azp));
        }
        c.insert("idp".into(), json!(self.iss));
        c.insert("idtyp".into(), json!("app"));
        c.insert("oid".into(), json!(self.oid));
        c.insert("sub".into(), json!(self.oid));
        if !self.roles.is_empty() {
            c.insert("roles".into(), json!(self.roles));
        }
        c.insert("tid".into(), json!(self.tid));
        c.insert("uti".into(), json!(new_guid()));
        for (k, v) in &self.extra {
            c.insert(k.clone(), v.clone());
        }
        Value::Object(c)
    }
}

/// The object id of an app's service principal: fixed for the managed identities, derived for others.
fn oid_for(identity: &Identity, app_id: &str) -> String {
    if app_id == identity.managed_identity_app_id() {
        return super::DEFAULT_MANAGED_IDENTITY_OBJECT_ID.to_string();
    }
    if let Some(u) = identity
        .options()
        .user_assigned_identities
        .iter()
        .find(|u| u.client_id == app_id)
    {
        return u.object_id.clone();
    }
    // A stable, distinct GUID per app id (v5 over the app id in the sandbox namespace would need the uuid
    // `v5` feature; a simple reversible tweak is enough for the sandbox).
    let mut bytes = uuid::Uuid::try_parse(app_id)
        .map(|u| *u.as_bytes())
        .unwrap_or([0u8; 16]);
    for b in bytes.iter_mut() {
        *b ^= 0x5a;
    }
    uuid::Uuid::from_bytes(bytes).to_string()
}

pub(crate) fn mint(identity: &Identity, spec: &TokenSpec) -> String {
    let claims = spec.claims();
    match spec.alg {
        TokenAlg::None => {
            // Built by hand: jsonwebtoken cannot encode `alg: none`.
            let header = json!({"alg": "none", "typ": "JWT"});
            format!(
                "{}.{}.",
                URL_SAFE_NO_PAD.encode(header.to_string()),
                URL_SAFE_NO_PAD.encode(claims.to_string())
            )
        }
        TokenAlg::Rs256 => {
            let key = identity.active_key();
            let mut header = Header::new(Algorithm::RS256);
            header.typ = Some("JWT".to_string());
            header.kid = Some(match &spec.kid {
                KeyChoice::Active => key.kid.clone(),
                KeyChoice::Unknown(k) => k.clone(),
            });
            // The keys are checked at start-up (Identity::new), so encoding cannot fail on them; an empty
            // string (refused by every verifier) is the fallback rather than a panic.
            jsonwebtoken::encode(&header, &claims, &key.encoding).unwrap_or_default()
        }
    }
}

/// Decodes the JOSE header of a compact JWT without verifying anything; `None` when it is not one.
pub(crate) fn peek_header(token: &str) -> Option<Value> {
    let mut parts = token.split('.');
    let (h, _p, _s) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD.decode(h).ok()?;
    let v: Value = serde_json::from_slice(&bytes).ok()?;
    v.is_object().then_some(v)
}
