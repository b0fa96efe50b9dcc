//! How entra-enrich signs in to Workday: HTTP Basic with an Integration System User, or an OAuth 2.0
//! refresh-token grant for an API client registered for integrations
//! (`POST {base}/ccx/oauth2/{tenant}/token`, form `grant_type=refresh_token`, `refresh_token`,
//! `client_id`, `client_secret`; then `Authorization: Bearer …`). Sources: Workday/raas-python
//! `raas/raas.py` and its README; faros-ai/airbyte-connectors `sources/workday-source/src/workday.ts`.
//!
//! Secrets come from a plain setting or from a [`SecretFetch`] (Key Vault), cached. After a 401 the
//! client asks [`WorkdayAuth::refresh`] to read them again once, so a password rotated in the vault
//! works without a restart.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;

use crate::error::{WorkdayError, WorkdayErrorKind};

/// Reads one secret from where it is kept.
#[async_trait::async_trait]
pub trait SecretFetch: Send + Sync {
    async fn fetch(&self) -> Result<String, WorkdayError>;
}

enum Origin {
    Plain(String),
    Fetched(Arc<dyn SecretFetch>),
}

/// A secret: the value itself, or where to read it (cached until [`Secret::forget`]).
pub struct Secret {
    origin: Origin,
    /// The setting that names it, for errors.
    setting: &'static str,
    cached: Mutex<Option<String>>,
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secret({}, redacted)", self.setting)
    }
}

impl Secret {
    pub fn plain(value: impl Into<String>, setting: &'static str) -> Secret {
        Secret {
            origin: Origin::Plain(value.into()),
            setting,
            cached: Mutex::new(None),
        }
    }

    pub fn fetched(fetch: Arc<dyn SecretFetch>, setting: &'static str) -> Secret {
        Secret {
            origin: Origin::Fetched(fetch),
            setting,
            cached: Mutex::new(None),
        }
    }

    /// Whether reading it again could give another value.
    pub fn can_change(&self) -> bool {
        matches!(self.origin, Origin::Fetched(_))
    }

    pub async fn value(&self) -> Result<String, WorkdayError> {
        let fetch = match &self.origin {
            Origin::Plain(v) => return Ok(v.clone()),
            Origin::Fetched(fetch) => fetch,
        };
        if let Some(v) = self.cached.lock().ok().and_then(|c| c.clone()) {
            return Ok(v);
        }
        let value = fetch.fetch().await.map_err(|e| {
            let message = format!("reading the secret named by {} failed: {e}", self.setting);
            WorkdayError::new(e.kind, message).with_setting(self.setting)
        })?;
        if let Ok(mut c) = self.cached.lock() {
            *c = Some(value.clone());
        }
        Ok(value)
    }

    /// Drops the cached value, so the next read goes to the vault.
    pub fn forget(&self) {
        if let Ok(mut c) = self.cached.lock() {
            *c = None;
        }
    }
}

/// How to sign in.
#[derive(Debug)]
pub enum WorkdayAuth {
    Basic { username: String, password: Secret },
    OAuth(Box<OAuthClient>),
}

/// An API client's refresh-token grant, and the access token it gave last.
pub struct OAuthClient {
    token_url: url::Url,
    client_id: String,
    client_secret: Secret,
    refresh_token: Secret,
    token: Mutex<Option<(String, Instant)>>,
}

/// Settings named in authentication errors.
pub const USERNAME_SETTING: &str = "ENRICH_WORKDAY_USERNAME";
pub const TOKEN_URL_SETTING: &str = "ENRICH_WORKDAY_TOKEN_URL";

impl WorkdayAuth {
    pub fn basic(username: impl Into<String>, password: Secret) -> WorkdayAuth {
        WorkdayAuth::Basic {
            username: username.into(),
            password,
        }
    }

    pub fn oauth(
        token_url: url::Url,
        client_id: impl Into<String>,
        client_secret: Secret,
        refresh_token: Secret,
    ) -> WorkdayAuth {
        WorkdayAuth::OAuth(Box::new(OAuthClient {
            token_url,
            client_id: client_id.into(),
            client_secret,
            refresh_token,
            token: Mutex::new(None),
        }))
    }

    /// The settings to check when Workday refuses us.
    pub fn settings(&self) -> String {
        match self {
            WorkdayAuth::Basic { password, .. } => {
                format!("{USERNAME_SETTING} and {}", password.setting)
            }
            WorkdayAuth::OAuth(o) => format!(
                "ENRICH_WORKDAY_CLIENT_ID, {} and {}",
                o.client_secret.setting, o.refresh_token.setting
            ),
        }
    }

    /// The `Authorization` header value.
    pub async fn header(
        &self,
        http: &reqwest::Client,
        timeout: Duration,
    ) -> Result<String, WorkdayError> {
        match self {
            WorkdayAuth::Basic { username, password } => {
                let pair = format!("{username}:{}", password.value().await?);
                let encoded = base64::engine::general_purpose::STANDARD.encode(pair);
                Ok(format!("Basic {encoded}"))
            }
            WorkdayAuth::OAuth(o) => {
                let cached = o.token.lock().ok().and_then(|t| t.clone());
                if let Some((access, _)) = cached.filter(|(_, until)| Instant::now() < *until) {
                    return Ok(format!("Bearer {access}"));
                }
                let (access, until) = o.grant(http, timeout, &self.settings()).await?;
                if let Ok(mut t) = o.token.lock() {
                    *t = Some((access.clone(), until));
                }
                Ok(format!("Bearer {access}"))
            }
        }
    }

    /// The ISU's user name and password, for a WS-Security UsernameToken (Workday Web Services
    /// take no bearer token here: OAuth settings are refused with the fix).
    pub async fn username_token(&self) -> Result<(String, String), WorkdayError> {
        match self {
            WorkdayAuth::Basic { username, password } => {
                Ok((username.clone(), password.value().await?))
            }
            WorkdayAuth::OAuth(_) => Err(WorkdayError::new(
                WorkdayErrorKind::Auth,
                "Workday writeback signs in with the integration user's password: set ENRICH_WORKDAY_USERNAME and ENRICH_WORKDAY_PASSWORD_SECRET_NAME",
            )
            .with_setting(USERNAME_SETTING)),
        }
    }

    /// After a 401: forget the access token and re-read every secret that can change. Returns
    /// whether a retry could succeed (something was re-read).
    pub fn refresh(&self) -> bool {
        match self {
            WorkdayAuth::Basic { password, .. } => {
                password.forget();
                password.can_change()
            }
            WorkdayAuth::OAuth(o) => {
                o.client_secret.forget();
                o.refresh_token.forget();
                if let Ok(mut t) = o.token.lock() {
                    *t = None;
                }
                // A new access token is worth one try even when the secrets are plain.
                true
            }
        }
    }
}

impl std::fmt::Debug for OAuthClient {
    // The access token is a credential: never in a debug line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthClient")
            .field("token_url", &self.token_url.as_str())
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret)
            .field("refresh_token", &self.refresh_token)
            .finish_non_exhaustive()
    }
}

impl OAuthClient {
    /// The refresh-token grant: the access token and when to stop using it (a minute early).
    async fn grant(
        &self,
        http: &reqwest::Client,
        timeout: Duration,
        settings: &str,
    ) -> Result<(String, Instant), WorkdayError> {
        let OAuthClient {
            token_url,
            client_id,
            client_secret,
            refresh_token,
            ..
        } = self;
        let form = [
            ("grant_type", "refresh_token".to_string()),
            ("refresh_token", refresh_token.value().await?),
            ("client_id", client_id.clone()),
            ("client_secret", client_secret.value().await?),
        ];
        let sent = http
            .post(token_url.clone())
            .form(&form)
            .timeout(timeout)
            .send()
            .await;
        let response =
            sent.map_err(|e| crate::client::transport_error("the Workday token endpoint", &e))?;
        let status = response.status().as_u16();
        if !(200..300).contains(&status) {
            return Err(token_refused(status, settings));
        }
        let body: serde_json::Value = response.json().await.map_err(|_| {
            WorkdayError::new(
                WorkdayErrorKind::Auth,
                "the Workday token endpoint answered no JSON token",
            )
            .with_setting(TOKEN_URL_SETTING)
        })?;
        let access = body["access_token"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if access.is_empty() {
            return Err(WorkdayError::new(
                WorkdayErrorKind::Auth,
                "the Workday token endpoint answered no access_token",
            )
            .with_setting(TOKEN_URL_SETTING));
        }
        let lifetime = body["expires_in"]
            .as_u64()
            .unwrap_or(300)
            .saturating_sub(60);
        Ok((access, Instant::now() + Duration::from_secs(lifetime)))
    }
}

fn token_refused(status: u16, settings: &str) -> WorkdayError {
    let kind = if status >= 500 || status == 429 {
        WorkdayErrorKind::Transient
    } else {
        WorkdayErrorKind::Auth
    };
    WorkdayError::new(
        kind,
        format!("the Workday token endpoint answered {status}; check {settings}"),
    )
    .with_status(status)
    .with_setting(TOKEN_URL_SETTING)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_secret_or_token_in_a_debug_line() {
        let url = url::Url::parse("https://wd2.workday.com/ccx/oauth2/acme/token").expect("url");
        let auth = WorkdayAuth::oauth(
            url,
            "client-1",
            Secret::plain("the-client-secret", "ENRICH_WORKDAY_CLIENT_SECRET_NAME"),
            Secret::plain(
                "the-refresh-token",
                "ENRICH_WORKDAY_REFRESH_TOKEN_SECRET_NAME",
            ),
        );
        if let WorkdayAuth::OAuth(o) = &auth {
            if let Ok(mut t) = o.token.lock() {
                *t = Some(("the-access-token".into(), Instant::now()));
            }
        }
        let basic = WorkdayAuth::basic(
            "isu@acme",
            Secret::plain("the-password", "ENRICH_WORKDAY_PASSWORD"),
        );
        let text = format!("{auth:?} {basic:?}");
        for secret in [
            "the-client-secret",
            "the-refresh-token",
            "the-access-token",
            "the-password",
        ] {
            assert!(!text.contains(secret), "{text}");
        }
        assert!(
            text.contains("client-1") && text.contains("isu@acme"),
            "{text}"
        );
    }
}
