//! A `TokenCredential` that never calls anything: it hands out a token and records what it was asked.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};
use time::{Duration, OffsetDateTime};

/// Hands out `{prefix}-{n}` (n = the call number, from 1) valid for `lifetime`, or one fixed token,
/// and records every scope it was asked for.
#[derive(Debug)]
pub struct FakeCredential {
    prefix: String,
    fixed: Option<String>,
    lifetime: Duration,
    calls: AtomicUsize,
    scopes: Mutex<Vec<String>>,
}

impl Default for FakeCredential {
    fn default() -> Self {
        FakeCredential::with_prefix("test-token")
    }
}

impl FakeCredential {
    /// Tokens `{prefix}-1`, `{prefix}-2`, …, each valid for an hour.
    pub fn with_prefix(prefix: &str) -> Self {
        FakeCredential {
            prefix: prefix.to_string(),
            fixed: None,
            lifetime: Duration::hours(1),
            calls: AtomicUsize::new(0),
            scopes: Mutex::new(Vec::new()),
        }
    }

    /// The same `token` on every call (e.g. one a server must refuse).
    pub fn fixed(token: &str) -> Self {
        FakeCredential {
            fixed: Some(token.to_string()),
            ..FakeCredential::default()
        }
    }

    /// How many tokens were asked for.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    /// Every scope asked for, in order.
    pub fn scopes(&self) -> Vec<String> {
        self.scopes.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

#[async_trait::async_trait]
impl TokenCredential for FakeCredential {
    async fn get_token(
        &self,
        scopes: &[&str],
        _options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if let Ok(mut seen) = self.scopes.lock() {
            seen.extend(scopes.iter().map(|s| s.to_string()));
        }
        let token = match &self.fixed {
            Some(t) => t.clone(),
            None => format!("{}-{n}", self.prefix),
        };
        Ok(AccessToken::new(
            token,
            OffsetDateTime::now_utc() + self.lifetime,
        ))
    }
}
