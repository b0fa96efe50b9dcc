//! The Graph client: reads with `$select`, paging, delta, PATCH, `$batch`, the LCW `resume` POST,
//! retries and the shared write limiter.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use azure_core::credentials::TokenCredential;
use entra_core::pii::mask_emails_in;
use entra_core::UserPatch;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use reqwest::header::{HeaderMap, CONTENT_TYPE, USER_AGENT};
use reqwest::Method;
use serde_json::{json, Value};
use time::OffsetDateTime;
use tokio::time::Instant;
use url::Url;

use crate::error::{GraphError, GraphErrorKind};
use crate::limiter::{WriteLimiter, DEFAULT_MAX_WRITES_PER_MINUTE};
use crate::retry::{parse_retry_after, RetryPolicy};

/// The public Graph endpoint.
pub const DEFAULT_BASE_URL: &str = "https://graph.microsoft.com";
/// The app-only scope for the public Graph endpoint
/// (<https://learn.microsoft.com/graph/auth-v2-service#4-request-an-access-token>).
pub const DEFAULT_SCOPE: &str = "https://graph.microsoft.com/.default";
/// Max requests in one JSON batch (<https://learn.microsoft.com/graph/json-batching>).
pub const MAX_BATCH_SIZE: usize = 20;
/// Largest `$top` for `GET /users` (<https://learn.microsoft.com/graph/api/user-list>).
pub const MAX_PAGE_SIZE: u16 = 999;

/// The fixed id of every user's email authentication method
/// (<https://learn.microsoft.com/graph/api/emailauthenticationmethod-update>: "always
/// 3ddfcfc8-9383-446f-83cc-3ab9be4be18f").
pub const EMAIL_METHOD_ID: &str = "3ddfcfc8-9383-446f-83cc-3ab9be4be18f";

/// Refresh a cached token when less than this remains.
const TOKEN_REFRESH_MARGIN: time::Duration = time::Duration::minutes(2);

/// Query values: everything but RFC 3986 unreserved characters and `,` (the `$select` separator)
/// is percent-encoded (spaces as `%20`, never `+`). Graph requires special characters in `$filter` to be URL-encoded
/// (<https://learn.microsoft.com/graph/query-parameters#encoding-query-parameters>).
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b',');
/// One path segment (an object id or UPN). `@`, `$` and `'` may stay literal in a path segment
/// (RFC 3986 pchar); `/`, `?`, `#`, `%` and the rest are encoded.
const PATH_SEGMENT: &AsciiSet = &QUERY_VALUE.remove(b'@').remove(b'$').remove(b'\'');

/// Writes the default limiter lets go back to back after an idle period: one `$batch`.
pub const DEFAULT_WRITE_BURST: u32 = 20;

/// Options for [`GraphClient::new`].
#[derive(Debug, Clone)]
pub struct GraphClientOptions {
    /// `GRAPH_BASE_URL`; every call goes to `{base}/v1.0/…`. Changing it does not change `scope`:
    /// an emulator in front of Graph still expects tokens for `https://graph.microsoft.com`; for a
    /// national cloud set both (<https://learn.microsoft.com/graph/deployments>). `http` is allowed only for loopback
    /// hosts (tests, the sandbox), so a bearer token never crosses a network in clear text.
    pub base_url: Url,
    /// Where tokens come from.
    pub credential: Arc<dyn TokenCredential>,
    /// The token scope, e.g. `https://graph.microsoft.com/.default`.
    pub scope: String,
    /// Pace of writes when `write_limiter` is `None`.
    pub max_writes_per_minute: u32,
    /// A limiter shared with other clients in the process; overrides `max_writes_per_minute`.
    pub write_limiter: Option<Arc<WriteLimiter>>,
    /// Retries, backoff and the per-call deadline.
    pub retry: RetryPolicy,
    /// Timeout of one HTTP request (connect + send + read body).
    pub request_timeout: Duration,
    /// `User-Agent` sent on every request.
    pub user_agent: String,
    /// A preconfigured client (proxies, custom roots). Redirects should be disabled on it.
    pub http_client: Option<reqwest::Client>,
}

impl GraphClientOptions {
    /// `base_url` (`GRAPH_BASE_URL`, e.g. [`DEFAULT_BASE_URL`] or the sandbox) plus defaults: the
    /// public Graph scope, 1,000 writes/min, [`RetryPolicy::default`], 30 s per request.
    pub fn new(base_url: Url, credential: Arc<dyn TokenCredential>) -> Self {
        Self {
            base_url,
            credential,
            scope: DEFAULT_SCOPE.to_string(),
            max_writes_per_minute: DEFAULT_MAX_WRITES_PER_MINUTE,
            write_limiter: None,
            retry: RetryPolicy::default(),
            request_timeout: Duration::from_secs(30),
            user_agent: concat!("entra-enrich/", env!("CARGO_PKG_VERSION")).to_string(),
            http_client: None,
        }
    }

    /// The public Graph endpoint ([`DEFAULT_BASE_URL`]) with the defaults of [`Self::new`].
    pub fn public_graph(credential: Arc<dyn TokenCredential>) -> Self {
        // A compile-time constant, not input: parsing cannot fail.
        #[allow(clippy::expect_used)]
        let base_url = Url::parse(DEFAULT_BASE_URL).expect("DEFAULT_BASE_URL is a valid URL");
        Self::new(base_url, credential)
    }
}

/// A snapshot of the client's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GraphStats {
    /// HTTP requests sent (every attempt, every batch envelope).
    pub requests: u64,
    /// Writes sent (each PATCH attempt, each batch item attempt, each resume POST attempt).
    pub writes: u64,
    /// 429 answers, counting throttled batch items individually.
    pub throttled: u64,
    /// Retries started (of calls or of batch items).
    pub retried: u64,
    /// Calls (or batch items) that ended in an error.
    pub failed: u64,
}

#[derive(Debug, Default)]
struct Counters {
    requests: AtomicU64,
    writes: AtomicU64,
    throttled: AtomicU64,
    retried: AtomicU64,
    failed: AtomicU64,
}

#[derive(Debug)]
struct CachedToken {
    token: String,
    expires_on: OffsetDateTime,
}

#[derive(Debug)]
struct Inner {
    /// `{base}` without a trailing slash.
    base: String,
    base_url: Url,
    http: reqwest::Client,
    credential: Arc<dyn TokenCredential>,
    scope: String,
    limiter: Arc<WriteLimiter>,
    retry: RetryPolicy,
    request_timeout: Duration,
    user_agent: String,
    token: tokio::sync::Mutex<Option<CachedToken>>,
    counters: Counters,
}

/// A Microsoft Graph client for users. Cheap to clone (an `Arc` inside).
#[derive(Debug, Clone)]
pub struct GraphClient {
    inner: Arc<Inner>,
}

/// One request to make, possibly several times.
struct Call {
    op: String,
    method: Method,
    url: Url,
    body: Option<Vec<u8>>,
    /// Write-limiter slots taken before each attempt (0 for reads).
    write_cost: u32,
    /// Map `410` and `syncStateNotFound` to [`GraphErrorKind::DeltaReset`].
    delta: bool,
    /// Safe to resend after a timeout or a dropped connection (GET, PATCH of fixed values, a
    /// `$batch` of such PATCHes). The LCW resume POST is not: it is resent only when the
    /// connection was never established.
    idempotent: bool,
}

impl Call {
    /// A GET.
    fn read(op: &str, url: Url) -> Call {
        Call {
            op: op.to_string(),
            method: Method::GET,
            url,
            body: None,
            write_cost: 0,
            delta: false,
            idempotent: true,
        }
    }

    /// A write of one limiter slot; an empty `body` sends none.
    fn write(op: &str, method: Method, url: Url, body: Vec<u8>, idempotent: bool) -> Call {
        Call {
            op: op.to_string(),
            method,
            url,
            body: (!body.is_empty()).then_some(body),
            write_cost: 1,
            delta: false,
            idempotent,
        }
    }
}

/// A 2xx answer.
struct Reply {
    body: bytes::Bytes,
}

/// How to continue a users delta query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeltaCursor {
    /// A full initial sync selecting these properties.
    Start { select: Vec<String> },
    /// Start "from now" (`$deltaToken=latest`): no users, just a deltaLink.
    Latest { select: Vec<String> },
    /// A stored `@odata.nextLink` or `@odata.deltaLink`, followed verbatim.
    Link(String),
}

impl DeltaCursor {
    /// `Start` from a `&[&str]` select list.
    pub fn start(select: &[&str]) -> Self {
        Self::Start {
            select: select.iter().map(|s| s.to_string()).collect(),
        }
    }
    /// `Latest` from a `&[&str]` select list.
    pub fn latest(select: &[&str]) -> Self {
        Self::Latest {
            select: select.iter().map(|s| s.to_string()).collect(),
        }
    }
}

/// Where a delta round goes next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeltaNext {
    /// More pages: call again with `DeltaCursor::Link(next_link)`.
    More(String),
    /// Round complete: store this deltaLink and call with it next time.
    Done(String),
}

/// One page of a users delta query.
#[derive(Debug, Clone, PartialEq)]
pub struct DeltaPage {
    /// Changed users, including `@removed` entries.
    pub users: Vec<Value>,
    /// What to call next.
    pub next: DeltaNext,
}

/// Pages through `GET /users`, following `@odata.nextLink` verbatim.
#[derive(Debug)]
pub struct UserPager {
    client: GraphClient,
    next: Option<Url>,
    next_link: Option<String>,
    error: Option<GraphError>,
}

impl UserPager {
    /// Every user of at most `max_pages` pages (a guard against a runaway server).
    pub async fn collect(mut self, max_pages: usize) -> Result<Vec<Value>, GraphError> {
        let mut out = Vec::new();
        for _ in 0..max_pages {
            match self.next_page().await? {
                Some(users) => out.extend(users),
                None => break,
            }
        }
        Ok(out)
    }

    /// Continues from a checkpointed [`UserPager::next_link`].
    pub fn resume(client: &GraphClient, next_link: impl Into<String>) -> Self {
        let link = next_link.into();
        match client.checked_link(&link, "list users (resume)") {
            Ok(url) => Self {
                client: client.clone(),
                next: Some(url),
                next_link: Some(link),
                error: None,
            },
            Err(e) => Self {
                client: client.clone(),
                next: None,
                next_link: None,
                error: Some(e),
            },
        }
    }

    /// The `@odata.nextLink` the next [`UserPager::next_page`] will fetch (the resume link before
    /// the first call), or `None` when there is nothing more or no page was fetched yet. Store it
    /// after processing a page to checkpoint.
    pub fn next_link(&self) -> Option<&str> {
        self.next_link.as_deref()
    }

    /// True once the last page was returned.
    pub fn is_done(&self) -> bool {
        self.next.is_none() && self.error.is_none()
    }

    /// The next page of users, or `None` after the last one. A failed fetch leaves the pager where
    /// it was, so calling again retries the same page.
    pub async fn next_page(&mut self) -> Result<Option<Vec<Value>>, GraphError> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        let Some(url) = self.next.clone() else {
            return Ok(None);
        };
        let op = "GET /users (page)";
        let reply = self.client.execute(Call::read(op, url), &mut None).await?;
        let body = parse_json(&reply.body, op)?;
        let users = value_array(&body, op)?;
        match body.get("@odata.nextLink").and_then(Value::as_str) {
            Some(link) => {
                let url = self.client.checked_link(link, op)?;
                self.next = Some(url);
                self.next_link = Some(link.to_string());
            }
            None => {
                self.next = None;
                self.next_link = None;
            }
        }
        Ok(Some(users))
    }
}

impl GraphClient {
    /// Builds a client. Fails on an unusable base URL (not http(s), plain http to a non-loopback
    /// host, query or fragment), an empty scope, a zero write rate or zero attempts.
    pub fn new(opts: GraphClientOptions) -> Result<Self, GraphError> {
        let op = "create Graph client";
        let base_url = opts.base_url;
        match base_url.scheme() {
            "https" => {}
            "http" if is_loopback(&base_url) => {}
            "http" => {
                return Err(GraphError::invalid_request(
                    op,
                    "plain http is allowed only for loopback hosts",
                ))
            }
            _ => return Err(GraphError::invalid_request(op, "base URL must be http(s)")),
        }
        if base_url.query().is_some() || base_url.fragment().is_some() || base_url.host().is_none()
        {
            return Err(GraphError::invalid_request(
                op,
                "base URL must be a plain origin (optionally with a path)",
            ));
        }
        if opts.scope.trim().is_empty() {
            return Err(GraphError::invalid_request(op, "scope is empty"));
        }
        if opts.retry.max_attempts == 0 {
            return Err(GraphError::invalid_request(op, "retry.max_attempts is 0"));
        }
        let limiter = match opts.write_limiter {
            Some(l) => l,
            None => {
                if opts.max_writes_per_minute == 0 {
                    return Err(GraphError::invalid_request(
                        op,
                        "max_writes_per_minute is 0",
                    ));
                }
                // A burst of one `$batch` (20 writes) absorbs timer wake-up jitter: with a burst of 1,
                // every late wake-up (tokio timers have 1 ms granularity) is lost for good, and the
                // achieved rate drifts below the configured one. The long-run rate is unchanged, and
                // 20 back-to-back writes are far inside Graph's 3,000 per 150 s.
                Arc::new(WriteLimiter::with_burst(
                    opts.max_writes_per_minute,
                    DEFAULT_WRITE_BURST,
                ))
            }
        };
        let http = match opts.http_client {
            Some(c) => c,
            None => reqwest::Client::builder()
                // Never follow redirects: a redirect would carry our bearer token elsewhere.
                .redirect(reqwest::redirect::Policy::none())
                .connect_timeout(opts.request_timeout.min(Duration::from_secs(20)))
                .build()
                .map_err(|e| {
                    GraphError::new(GraphErrorKind::Transport, op)
                        .with_message(Some(&e.without_url().to_string()))
                })?,
        };
        let base = base_url.as_str().trim_end_matches('/').to_string();
        Ok(Self {
            inner: Arc::new(Inner {
                base,
                base_url,
                http,
                credential: opts.credential,
                scope: opts.scope,
                limiter,
                retry: opts.retry,
                request_timeout: opts.request_timeout,
                user_agent: opts.user_agent,
                token: tokio::sync::Mutex::new(None),
                counters: Counters::default(),
            }),
        })
    }

    /// The configured base URL.
    pub fn base_url(&self) -> &Url {
        &self.inner.base_url
    }

    /// The write limiter in front of every write (share it with other clients via options).
    pub fn write_limiter(&self) -> Arc<WriteLimiter> {
        Arc::clone(&self.inner.limiter)
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> GraphStats {
        let c = &self.inner.counters;
        GraphStats {
            requests: c.requests.load(Ordering::Relaxed),
            writes: c.writes.load(Ordering::Relaxed),
            throttled: c.throttled.load(Ordering::Relaxed),
            retried: c.retried.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
        }
    }

    // ----------------------------------------------------------------- reads

    /// `GET /v1.0/users/{id | userPrincipalName}?$select=…`; `Ok(None)` on 404
    /// (<https://learn.microsoft.com/graph/api/user-get?view=graph-rest-1.0>).
    pub async fn get_user(
        &self,
        id_or_upn: &str,
        select: &[&str],
    ) -> Result<Option<Value>, GraphError> {
        let op = "GET /users/{id}";
        let select = select_value(select, op)?;
        let path = user_path(id_or_upn, op)?;
        let url = self.url(
            &format!("/v1.0{path}?{}", query(&[("$select", &select)])),
            op,
        )?;
        let call = Call::read(op, url);
        match self.execute(call, &mut None).await {
            Ok(reply) => {
                let v = parse_json(&reply.body, op)?;
                if v.is_object() {
                    Ok(Some(v))
                } else {
                    Err(GraphError::new(GraphErrorKind::InvalidResponse, op)
                        .with_message(Some("user body is not a JSON object")))
                }
            }
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `GET /v1.0/policies/authenticationMethodsPolicy`: the tenant's Authentication methods policy
    /// (Email OTP state and targets, migration state). Needs `Policy.Read.All`; without it the error's
    /// `status()` is 403
    /// (<https://learn.microsoft.com/graph/api/authenticationmethodspolicy-get>).
    pub async fn authentication_methods_policy(&self) -> Result<Value, GraphError> {
        let op = "GET /policies/authenticationMethodsPolicy";
        let url = self.url("/v1.0/policies/authenticationMethodsPolicy", op)?;
        let reply = self.execute(Call::read(op, url), &mut None).await?;
        parse_json(&reply.body, op)
    }

    /// The ids of the groups `user_id` belongs to, directly or not (`GET
    /// /v1.0/users/{id}/transitiveMemberOf?$select=id`, groups only, following nextLinks).
    /// Needs `GroupMember.Read.All`; without it the error's `status()` is 403
    /// (<https://learn.microsoft.com/graph/api/user-list-transitivememberof>).
    pub async fn group_ids_of(&self, user_id: &str) -> Result<Vec<String>, GraphError> {
        let op = "GET /users/{id}/transitiveMemberOf";
        let path = user_path(user_id, op)?;
        let mut url = self.url(
            &format!(
                "/v1.0{path}/transitiveMemberOf?{}",
                query(&[("$select", "id")])
            ),
            op,
        )?;
        let mut ids = Vec::new();
        loop {
            let reply = self.execute(Call::read(op, url), &mut None).await?;
            let body = parse_json(&reply.body, op)?;
            ids.extend(
                value_array(&body, op)?
                    .iter()
                    .filter(|o| {
                        o["@odata.type"]
                            .as_str()
                            .is_none_or(|t| t.ends_with(".group"))
                    })
                    .filter_map(|o| o["id"].as_str().map(str::to_string)),
            );
            match body.get("@odata.nextLink").and_then(Value::as_str) {
                Some(next) => url = self.checked_link(next, op)?,
                None => return Ok(ids),
            }
        }
    }

    /// The claims of this client's own access token (`roles`: the application permissions granted;
    /// `appid`/`azp`; `oid`: the service principal). Read from the payload without verifying it: the
    /// token came from our own credential, and nothing is authorised on the strength of this.
    pub async fn token_claims(&self) -> Result<Value, GraphError> {
        let op = "read the access token's claims";
        let token = self.token(op).await?;
        let payload = token.split('.').nth(1).unwrap_or_default();
        use base64::Engine as _;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload.trim_end_matches('='))
            .map_err(|_| {
                GraphError::new(GraphErrorKind::InvalidResponse, op)
                    .with_message(Some("the access token is not a JWT"))
            })?;
        serde_json::from_slice(&bytes).map_err(|_| {
            GraphError::new(GraphErrorKind::InvalidResponse, op)
                .with_message(Some("the access token's payload is not JSON"))
        })
    }

    /// `GET /v1.0/users?$select=…&$top=…[&$filter=…]`, paged
    /// (<https://learn.microsoft.com/graph/api/user-list?view=graph-rest-1.0>,
    /// <https://learn.microsoft.com/graph/paging>). `page_size` is clamped to 1..=999. An empty
    /// `select` or empty filter surfaces as an error on the first `next_page`.
    pub fn list_users(&self, filter: Option<&str>, select: &[&str], page_size: u16) -> UserPager {
        let op = "GET /users";
        let first = (|| {
            let select = select_value(select, op)?;
            let top = page_size.clamp(1, MAX_PAGE_SIZE).to_string();
            let mut pairs: Vec<(&str, &str)> = vec![("$select", &select), ("$top", &top)];
            if let Some(f) = filter {
                if f.trim().is_empty() {
                    return Err(GraphError::invalid_request(op, "empty $filter"));
                }
                pairs.push(("$filter", f));
            }
            self.url(&format!("/v1.0/users?{}", query(&pairs)), op)
        })();
        match first {
            Ok(url) => UserPager {
                client: self.clone(),
                next: Some(url),
                next_link: None,
                error: None,
            },
            Err(e) => UserPager {
                client: self.clone(),
                next: None,
                next_link: None,
                error: Some(e),
            },
        }
    }

    /// Users whose `employeeId` equals `employee_id` (`$filter=employeeId eq '…'`, a default
    /// filter on `employeeId`, no ConsistencyLevel needed;
    /// <https://learn.microsoft.com/graph/api/user-list?view=graph-rest-1.0>). Quotes are escaped
    /// OData-style (`'` → `''`, <https://learn.microsoft.com/graph/query-parameters#escaping-single-quotes>).
    pub async fn find_users_by_employee_id(
        &self,
        employee_id: &str,
        select: &[&str],
    ) -> Result<Vec<Value>, GraphError> {
        let op = "find users by employeeId";
        if employee_id.trim().is_empty() {
            return Err(GraphError::invalid_request(op, "empty employeeId"));
        }
        let filter = format!("employeeId eq '{}'", odata_quote(employee_id));
        // A handful of matches at most; the page cap only guards against a runaway server.
        self.list_users(Some(&filter), select, 100)
            .collect(100)
            .await
    }

    /// The users (any, in scope or not) holding `address` as sign-in name, primary mail or alternate
    /// email: `userPrincipalName eq`, `mail eq` and `otherMails/any(x:x eq)`, all default (not
    /// advanced) filters in <https://learn.microsoft.com/graph/api/resources/user#properties>.
    pub async fn find_address_holders(&self, address: &str) -> Result<Vec<Value>, GraphError> {
        let op = "find users holding an address";
        let a = address.trim();
        if a.is_empty() || a.chars().any(char::is_control) {
            return Err(GraphError::invalid_request(
                op,
                "empty or malformed address",
            ));
        }
        let q = odata_quote(a);
        let filter =
            format!("userPrincipalName eq '{q}' or mail eq '{q}' or otherMails/any(x:x eq '{q}')");
        let select = ["id", "userPrincipalName", "mail", "otherMails"];
        self.list_users(Some(&filter), &select, 100)
            .collect(10)
            .await
    }

    /// One page of `GET /v1.0/users/delta` (<https://learn.microsoft.com/graph/api/user-delta>,
    /// <https://learn.microsoft.com/graph/delta-query-overview>). An expired or unknown token
    /// (`410 Gone`, or a 4xx `syncStateNotFound`) gives an error with `is_delta_reset()`.
    pub async fn delta_page(&self, cursor: &DeltaCursor) -> Result<DeltaPage, GraphError> {
        let op = "GET /users/delta";
        let url = match cursor {
            DeltaCursor::Start { select } => {
                let refs: Vec<&str> = select.iter().map(String::as_str).collect();
                let select = select_value(&refs, op)?;
                self.url(
                    &format!("/v1.0/users/delta?{}", query(&[("$select", &select)])),
                    op,
                )?
            }
            DeltaCursor::Latest { select } => {
                let refs: Vec<&str> = select.iter().map(String::as_str).collect();
                let select = select_value(&refs, op)?;
                self.url(
                    &format!(
                        "/v1.0/users/delta?{}",
                        query(&[("$select", &select), ("$deltaToken", "latest")])
                    ),
                    op,
                )?
            }
            DeltaCursor::Link(link) => self.checked_link(link, op)?,
        };
        let reply = self
            .execute(
                Call {
                    op: op.to_string(),
                    method: Method::GET,
                    url,
                    body: None,
                    write_cost: 0,
                    delta: true,
                    idempotent: true,
                },
                &mut None,
            )
            .await?;
        let body = parse_json(&reply.body, op)?;
        let users = value_array(&body, op)?;
        let next = if let Some(l) = body.get("@odata.nextLink").and_then(Value::as_str) {
            self.checked_link(l, op)?;
            DeltaNext::More(l.to_string())
        } else if let Some(l) = body.get("@odata.deltaLink").and_then(Value::as_str) {
            self.checked_link(l, op)?;
            DeltaNext::Done(l.to_string())
        } else {
            return Err(
                GraphError::new(GraphErrorKind::InvalidResponse, op).with_message(Some(
                    "delta page has neither @odata.nextLink nor @odata.deltaLink",
                )),
            );
        };
        Ok(DeltaPage { users, next })
    }

    // ------------------------------------------------- email authentication method

    /// The user's email authentication method address (`Ok(None)`: the user has none), from
    /// `GET /v1.0/users/{id}/authentication/emailMethods`, which holds one method at most
    /// (<https://learn.microsoft.com/graph/api/authentication-list-emailmethods>).
    pub async fn email_method(&self, user_id: &str) -> Result<Option<String>, GraphError> {
        let op = "GET /users/{id}/authentication/emailMethods";
        let path = user_path(user_id, op)?;
        let url = self.url(&format!("/v1.0{path}/authentication/emailMethods"), op)?;
        let reply = self.execute(Call::read(op, url), &mut None).await?;
        let body = parse_json(&reply.body, op)?;
        let methods = value_array(&body, op)?;
        Ok(methods
            .first()
            .and_then(|m| m.get("emailAddress"))
            .and_then(Value::as_str)
            .map(str::to_string))
    }

    /// Creates the user's email method (`POST …/emailMethods`, `201`) or, with `exists`, replaces its
    /// address (`PATCH …/emailMethods/3ddfcfc8-…`, `204`)
    /// (<https://learn.microsoft.com/graph/api/authentication-post-emailmethods>,
    /// <https://learn.microsoft.com/graph/api/emailauthenticationmethod-update>). One write.
    pub async fn put_email_method(
        &self,
        user_id: &str,
        address: &entra_core::AlternateEmail,
        exists: bool,
    ) -> Result<(), GraphError> {
        let (op, method, suffix) = if exists {
            (
                "PATCH /users/{id}/authentication/emailMethods/{id}",
                Method::PATCH,
                format!("/{EMAIL_METHOD_ID}"),
            )
        } else {
            (
                "POST /users/{id}/authentication/emailMethods",
                Method::POST,
                String::new(),
            )
        };
        let path = user_path(user_id, op)?;
        let url = self.url(
            &format!("/v1.0{path}/authentication/emailMethods{suffix}"),
            op,
        )?;
        let body = serde_json::to_vec(&json!({"emailAddress": address.as_str()}))
            .map_err(|e| GraphError::invalid_request(op, format!("body did not serialize: {e}")))?;
        let call = Call::write(op, method, url, body, exists);
        self.execute(call, &mut None).await.map(|_| ())
    }

    /// Deletes the user's email method (`DELETE …/emailMethods/3ddfcfc8-…`, `204`; what a rollback of
    /// a created method does) (<https://learn.microsoft.com/graph/api/emailauthenticationmethod-delete>).
    pub async fn delete_email_method(&self, user_id: &str) -> Result<(), GraphError> {
        let op = "DELETE /users/{id}/authentication/emailMethods/{id}";
        let path = user_path(user_id, op)?;
        let url = self.url(
            &format!("/v1.0{path}/authentication/emailMethods/{EMAIL_METHOD_ID}"),
            op,
        )?;
        let call = Call::write(op, Method::DELETE, url, Vec::new(), true);
        match self.execute(call, &mut None).await {
            Ok(_) => Ok(()),
            // Already gone: what the rollback wanted.
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e),
        }
    }

    // ---------------------------------------------------------------- writes

    /// `PATCH /v1.0/users/{id}` with exactly the [`UserPatch`] JSON; Graph answers `204 No Content`
    /// (<https://learn.microsoft.com/graph/api/user-update?view=graph-rest-1.0>). An empty patch is
    /// refused locally.
    pub async fn patch_user(&self, id: &str, patch: &UserPatch) -> Result<(), GraphError> {
        let op = "PATCH /users/{id}";
        if patch.is_empty() {
            return Err(GraphError::invalid_request(op, "empty patch"));
        }
        let path = user_path(id, op)?;
        let url = self.url(&format!("/v1.0{path}"), op)?;
        let body = serde_json::to_vec(patch).map_err(|e| {
            GraphError::invalid_request(op, format!("patch did not serialize: {e}"))
        })?;
        self.execute(
            Call {
                op: op.to_string(),
                method: Method::PATCH,
                url,
                body: Some(body),
                write_cost: 1,
                delta: false,
                idempotent: true,
            },
            &mut None,
        )
        .await
        .map(|_| ())
    }

    /// Many PATCHes through `POST /v1.0/$batch`, at most 20 per batch, results in input order
    /// (<https://learn.microsoft.com/graph/json-batching>). Each item carries
    /// `Content-Type: application/json` ("headers … required when a body is specified"). A
    /// throttled item is retried alone after its own `Retry-After`; a 5xx/424 item with backoff.
    /// The envelope itself is retried on 429/5xx/424 (throttling.md says a throttled batch may fail
    /// as a whole with 424; <https://learn.microsoft.com/graph/throttling#throttling-and-batching>).
    /// Each chunk of 20 has its own deadline.
    pub async fn patch_users_batch(
        &self,
        items: &[(String, UserPatch)],
    ) -> Vec<Result<(), GraphError>> {
        let mut results: Vec<Option<Result<(), GraphError>>> = vec![None; items.len()];
        for (chunk_no, chunk) in items.chunks(MAX_BATCH_SIZE).enumerate() {
            let offset = chunk_no * MAX_BATCH_SIZE;
            let mut pending = Vec::new();
            for (i, (id, patch)) in chunk.iter().enumerate() {
                let op = "PATCH /users/{id} (in $batch)";
                let prepared = if patch.is_empty() {
                    Err(GraphError::invalid_request(op, "empty patch"))
                } else {
                    user_path(id, op).and_then(|path| {
                        serde_json::to_value(patch)
                            .map(|body| (path, body))
                            .map_err(|e| {
                                GraphError::invalid_request(
                                    op,
                                    format!("patch did not serialize: {e}"),
                                )
                            })
                    })
                };
                match prepared {
                    Ok((path, body)) => pending.push(BatchItem {
                        index: offset + i,
                        batch_id: (i + 1).to_string(),
                        path,
                        body,
                        attempts: 0,
                        not_before: Instant::now(),
                        last_error: None,
                    }),
                    Err(e) => {
                        self.inner.counters.failed.fetch_add(1, Ordering::Relaxed);
                        if let Some(slot) = results.get_mut(offset + i) {
                            *slot = Some(Err(e));
                        }
                    }
                }
            }
            for (index, result) in self.run_batch_chunk(pending).await {
                if let Some(slot) = results.get_mut(index) {
                    *slot = Some(result);
                }
            }
        }
        results
            .into_iter()
            .map(|r| {
                r.unwrap_or_else(|| {
                    Err(GraphError::new(
                        GraphErrorKind::InvalidResponse,
                        "PATCH /users/{id} (in $batch)",
                    )
                    .with_message(Some("no result recorded")))
                })
            })
            .collect()
    }

    /// `GET /users/{id}?$select=…` for each of `ids`, 20 to a `$batch` (reads: no write-limiter
    /// slot). Graph may answer a batch's items in any order (json-batching): each is matched by its
    /// id. An item answered 429 or 5xx, or missing from the answer, is read again on its own
    /// ([`Self::get_user`], with its retries). `Ok(None)`: no such user.
    pub async fn get_users_batch(
        &self,
        ids: &[String],
        select: &[&str],
    ) -> Vec<Result<Option<Value>, GraphError>> {
        let op = "GET /users/{id} (in $batch)";
        let mut out: Vec<Option<Result<Option<Value>, GraphError>>> = vec![None; ids.len()];
        let prepared = select_value(select, op)
            .and_then(|sel| self.url("/v1.0/$batch", BATCH_OP).map(|url| (sel, url)));
        let (sel, batch_url) = match prepared {
            Ok(p) => p,
            Err(e) => return ids.iter().map(|_| Err(e.clone())).collect(),
        };
        for (chunk_no, chunk) in ids.chunks(MAX_BATCH_SIZE).enumerate() {
            let offset = chunk_no * MAX_BATCH_SIZE;
            let mut requests = Vec::new();
            for (i, id) in chunk.iter().enumerate() {
                match user_path(id, op) {
                    Ok(path) => requests.push(json!({
                        "id": (i + 1).to_string(),
                        "method": "GET",
                        "url": format!("{path}?{}", query(&[("$select", &sel)])),
                    })),
                    Err(e) => out[offset + i] = Some(Err(e)),
                }
            }
            let responses = if requests.is_empty() {
                Ok(Vec::new())
            } else {
                self.send_read_batch(requests, &batch_url).await
            };
            for (i, id) in chunk.iter().enumerate() {
                if out[offset + i].is_some() {
                    continue;
                }
                let answer = match &responses {
                    Ok(r) => r.iter().find(|r| {
                        r.get("id").and_then(Value::as_str) == Some(&(i + 1).to_string())
                    }),
                    Err(e) => {
                        out[offset + i] = Some(Err(e.clone()));
                        continue;
                    }
                };
                out[offset + i] = Some(match read_item(answer) {
                    Some(result) => result,
                    None => self.get_user(id, select).await,
                });
            }
        }
        out.into_iter()
            .map(|r| r.unwrap_or_else(|| Err(GraphError::new(GraphErrorKind::InvalidResponse, op))))
            .collect()
    }

    /// One `$batch` envelope of reads; its `responses` array.
    async fn send_read_batch(
        &self,
        requests: Vec<Value>,
        batch_url: &Url,
    ) -> Result<Vec<Value>, GraphError> {
        self.send_envelope(requests, batch_url, 0, &mut None).await
    }

    /// One `$batch` envelope of `requests`, taking `write_cost` limiter slots, with retries; its
    /// `responses` array.
    async fn send_envelope(
        &self,
        requests: Vec<Value>,
        batch_url: &Url,
        write_cost: u32,
        deadline: &mut Option<Instant>,
    ) -> Result<Vec<Value>, GraphError> {
        let body = serde_json::to_vec(&json!({ "requests": requests })).map_err(|e| {
            GraphError::invalid_request(BATCH_OP, format!("batch did not serialize: {e}"))
        })?;
        let call = Call {
            op: BATCH_OP.to_string(),
            method: Method::POST,
            url: batch_url.clone(),
            body: Some(body),
            write_cost,
            delta: false,
            idempotent: true,
        };
        let reply = self.execute(call, deadline).await?;
        let answer = parse_json(&reply.body, BATCH_OP)?;
        array_field(
            &answer,
            "responses",
            BATCH_OP,
            "batch answer has no responses array",
        )
    }

    /// `POST {base}{path}` with a JSON body, expecting 2xx (the Lifecycle Workflows
    /// `customTaskExtension` callback, `…/taskProcessingResults/{id}/resume`, answers 204;
    /// <https://learn.microsoft.com/graph/api/identitygovernance-taskprocessingresult-resume>).
    /// Counts as one write. Refuses anything under `/users`, `/me`, `/directoryObjects`, `$batch`,
    /// absolute URLs, queries, percent-escapes and dot segments: this client can never create or
    /// delete users.
    pub async fn post_json(&self, path: &str, body: &Value) -> Result<(), GraphError> {
        let op = "POST";
        check_post_path(path)?;
        let op = format!("{op} {path}");
        let url = self.url(path, &op)?;
        let bytes = serde_json::to_vec(body).map_err(|e| {
            GraphError::invalid_request(op.clone(), format!("body did not serialize: {e}"))
        })?;
        self.execute(
            Call {
                op,
                method: Method::POST,
                url,
                body: Some(bytes),
                write_cost: 1,
                delta: false,
                idempotent: false,
            },
            &mut None,
        )
        .await
        .map(|_| ())
    }

    // -------------------------------------------------------------- plumbing

    fn url(&self, path_and_query: &str, op: &str) -> Result<Url, GraphError> {
        let url = Url::parse(&format!("{}{}", self.inner.base, path_and_query))
            .map_err(|e| GraphError::invalid_request(op, format!("bad URL: {e}")))?;
        if url.origin() != self.inner.base_url.origin() {
            return Err(GraphError::invalid_request(op, "URL left the Graph origin"));
        }
        Ok(url)
    }

    /// A nextLink/deltaLink must point at our Graph origin: following it sends our bearer token.
    fn checked_link(&self, link: &str, op: &str) -> Result<Url, GraphError> {
        let url = Url::parse(link)
            .map_err(|_| GraphError::invalid_request(op, "next/delta link is not a URL"))?;
        if url.origin() != self.inner.base_url.origin() {
            return Err(GraphError::invalid_request(
                op,
                "next/delta link points outside the configured Graph base URL",
            ));
        }
        Ok(url)
    }

    async fn token(&self, op: &str) -> Result<String, GraphError> {
        let mut guard = self.inner.token.lock().await;
        let now = OffsetDateTime::now_utc();
        if let Some(t) = guard.as_ref() {
            if t.expires_on - now > TOKEN_REFRESH_MARGIN {
                return Ok(t.token.clone());
            }
        }
        let scope = self.inner.scope.as_str();
        let token = self
            .inner
            .credential
            .get_token(&[scope], None)
            .await
            .map_err(|e| {
                GraphError::new(GraphErrorKind::Credential, op).with_message(Some(&e.to_string()))
            })?;
        let secret = token.token.secret().to_string();
        *guard = Some(CachedToken {
            token: secret.clone(),
            expires_on: token.expires_on,
        });
        Ok(secret)
    }

    async fn forget_token(&self) {
        *self.inner.token.lock().await = None;
    }

    /// Sends `call` with retries. `deadline` starts after the first write-limiter wait and may be
    /// shared by several calls (batch rounds). Returns only 2xx replies.
    async fn execute(
        &self,
        call: Call,
        deadline: &mut Option<Instant>,
    ) -> Result<Reply, GraphError> {
        let policy = &self.inner.retry;
        let max_attempts = policy.max_attempts.max(1);
        let mut attempt: u32 = 0;
        let mut refreshed_token = false;
        let mut last_error: Option<GraphError> = None;
        loop {
            attempt += 1;
            if call.write_cost > 0 {
                match deadline.or_else(crate::deadline::current) {
                    None => self.inner.limiter.acquire_n(call.write_cost).await,
                    Some(d) => {
                        let acquire = self.inner.limiter.acquire_n(call.write_cost);
                        if tokio::time::timeout_at(d, acquire).await.is_err() {
                            return Err(self.failed(last_error.unwrap_or_else(|| {
                                GraphError::new(GraphErrorKind::Timeout, call.op.clone())
                                    .with_message(Some(
                                        "deadline passed waiting for the write limiter",
                                    ))
                            })));
                        }
                    }
                }
            }
            // The caller's deadline (lcw-joiner, timers) caps the per-call one.
            let dl = *deadline
                .get_or_insert_with(|| crate::deadline::cap(Instant::now() + policy.deadline));
            let Failure {
                error: err,
                hint,
                maybe_delivered,
            } = match self.send_once(&call, dl).await {
                Ok(reply) => return Ok(reply),
                Err(f) => f,
            };
            let lost_in_flight = matches!(
                err.kind(),
                GraphErrorKind::Transport | GraphErrorKind::Timeout
            ) && maybe_delivered;
            // Never resend a non-idempotent request Graph may already have executed.
            let mut retryable = err.is_transient() && (call.idempotent || !lost_in_flight);
            // 401 InvalidAuthenticationToken: the token expired or was revoked
            // (<https://learn.microsoft.com/graph/errors#http-status-codes>).
            if *err.kind() == GraphErrorKind::Unauthorized && !refreshed_token {
                // A revoked or expired token: fetch a fresh one once.
                refreshed_token = true;
                self.forget_token().await;
                retryable = true;
            }
            if err.is_throttled() {
                self.inner
                    .counters
                    .throttled
                    .fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    operation = %mask_emails_in(&call.op),
                    retry_after_ms = err.retry_after().map(|d| d.as_millis() as u64),
                    request_id = err.request_id().unwrap_or(""),
                    "Graph throttled the request"
                );
            }
            let wait = if *err.kind() == GraphErrorKind::Unauthorized {
                Duration::ZERO
            } else {
                hint.unwrap_or_else(|| policy.backoff(attempt.saturating_sub(1)))
            };
            if err.is_throttled() && call.write_cost > 0 {
                // Stop every writer in the process, not just this one.
                self.inner.limiter.pause_for(wait);
            }
            if !retryable || attempt >= max_attempts || Instant::now() + wait >= dl {
                return Err(self.failed(err));
            }
            self.inner.counters.retried.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(
                operation = %mask_emails_in(&call.op),
                attempt,
                wait_ms = wait.as_millis() as u64,
                error = %err,
                "retrying Graph request"
            );
            last_error = Some(err);
            tokio::time::sleep(wait).await;
        }
    }

    fn failed(&self, err: GraphError) -> GraphError {
        self.inner.counters.failed.fetch_add(1, Ordering::Relaxed);
        err
    }

    /// One HTTP attempt. On failure returns the error and a wait hint (`Retry-After`).
    async fn send_once(&self, call: &Call, deadline: Instant) -> Result<Reply, Failure> {
        // Defence in depth: never send the token outside the configured origin.
        if call.url.origin() != self.inner.base_url.origin() {
            return Err(Failure::local(GraphError::invalid_request(
                call.op.clone(),
                "URL left the Graph origin",
            )));
        }
        let token = self.token_before(call, deadline).await?;
        // A fresh GUID per request; Graph echoes it and logs it next to its own `request-id`
        // ("client-request-id … A client-generated GUID", <https://learn.microsoft.com/graph/best-practices-concept#reliability-and-support>).
        let client_request_id = uuid::Uuid::new_v4().to_string();
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(Failure::local(
                GraphError::new(GraphErrorKind::Timeout, call.op.clone())
                    .with_message(Some("per-call deadline passed"))
                    .with_ids(None, Some(client_request_id)),
            ));
        }
        let timeout = self.inner.request_timeout.min(remaining);
        let req = self.request(call, token, &client_request_id, timeout);
        self.inner.counters.requests.fetch_add(1, Ordering::Relaxed);
        if call.write_cost > 0 {
            self.inner
                .counters
                .writes
                .fetch_add(u64::from(call.write_cost), Ordering::Relaxed);
        }
        let (status, headers, body) = exchange(req, timeout, &call.op, &client_request_id).await?;
        reply_from(call, status, &headers, body, client_request_id)
    }

    /// The access token for `call`, unless the credential is still silent at `deadline`.
    async fn token_before(&self, call: &Call, deadline: Instant) -> Result<String, Failure> {
        // A credential that hangs (an unreachable token endpoint) must not outlive the call.
        match tokio::time::timeout_at(deadline, self.token(&call.op)).await {
            Ok(t) => t.map_err(Failure::local),
            Err(_) => Err(Failure::local(
                GraphError::new(GraphErrorKind::Timeout, call.op.clone())
                    .with_message(Some("no access token before the deadline")),
            )),
        }
    }

    /// The HTTP request of one attempt at `call`.
    fn request(
        &self,
        call: &Call,
        token: String,
        client_request_id: &str,
        timeout: Duration,
    ) -> reqwest::RequestBuilder {
        let req = self
            .inner
            .http
            .request(call.method.clone(), call.url.clone())
            .bearer_auth(token)
            .header("client-request-id", client_request_id)
            .header("Accept", "application/json")
            .header(USER_AGENT, &self.inner.user_agent)
            .timeout(timeout);
        match &call.body {
            Some(body) => req
                .header(CONTENT_TYPE, "application/json")
                .body(body.clone()),
            None => req,
        }
    }

    async fn run_batch_chunk(&self, mut pending: Vec<BatchItem>) -> ItemResults {
        let mut done = Vec::with_capacity(pending.len());
        let mut deadline: Option<Instant> = None;
        let batch_url = match self.url("/v1.0/$batch", BATCH_OP) {
            Ok(u) => u,
            Err(e) => {
                self.fail_all(pending, &e, &mut done);
                return done;
            }
        };
        while !pending.is_empty() {
            let earliest = pending
                .iter()
                .map(|p| p.not_before)
                .min()
                .unwrap_or_else(Instant::now);
            if deadline.is_some_and(|dl| earliest >= dl) {
                for item in pending.drain(..) {
                    let err = item.last_error.unwrap_or_else(|| {
                        GraphError::new(GraphErrorKind::Timeout, item_op())
                            .with_message(Some("per-call deadline passed"))
                    });
                    done.push((item.index, Err(self.failed(err))));
                }
                break;
            }
            tokio::time::sleep_until(earliest).await;
            let now = Instant::now();
            let (ready, waiting): (Vec<BatchItem>, Vec<BatchItem>) =
                pending.into_iter().partition(|p| p.not_before <= now);
            pending = waiting;
            if ready.is_empty() {
                continue;
            }
            match self.send_batch(&ready, &batch_url, &mut deadline).await {
                // The envelope failed: so does each item, each counted (a failed `execute` has
                // already counted one failure for the envelope).
                Err(e) => self.fail_all(ready, &e, &mut done),
                Ok(responses) => {
                    for item in ready {
                        if let Some(retry) = self.settle(item, &responses, deadline, &mut done) {
                            pending.push(retry);
                        }
                    }
                }
            }
        }
        done
    }

    /// Every item fails with `e` (each counted).
    fn fail_all(&self, items: Vec<BatchItem>, e: &GraphError, done: &mut ItemResults) {
        for item in items {
            done.push((item.index, Err(self.failed(e.clone()))));
        }
    }

    /// One `$batch` envelope of PATCHes for `ready`, with retries; its `responses` array.
    async fn send_batch(
        &self,
        ready: &[BatchItem],
        batch_url: &Url,
        deadline: &mut Option<Instant>,
    ) -> Result<Vec<Value>, GraphError> {
        let requests: Vec<Value> = ready
            .iter()
            .map(|it| {
                json!({
                    "id": it.batch_id,
                    "method": "PATCH",
                    "url": it.path,
                    "headers": { "Content-Type": "application/json" },
                    "body": it.body,
                })
            })
            .collect();
        let write_cost = u32::try_from(ready.len()).unwrap_or(u32::MAX);
        self.send_envelope(requests, batch_url, write_cost, deadline)
            .await
    }

    /// Settles one item from the batch answer into `done`, or returns it (with its next
    /// attempt time) when it is to be retried.
    fn settle(
        &self,
        mut item: BatchItem,
        responses: &[Value],
        deadline: Option<Instant>,
        done: &mut ItemResults,
    ) -> Option<BatchItem> {
        let policy = &self.inner.retry;
        item.attempts += 1;
        let answer = responses
            .iter()
            .find(|r| r.get("id").and_then(Value::as_str) == Some(item.batch_id.as_str()));
        let (err, hint) = match answer {
            None => (
                GraphError::new(GraphErrorKind::Transient, item_op())
                    .with_message(Some("no response for this item in the batch answer")),
                None,
            ),
            Some(r) => {
                let status = r
                    .get("status")
                    .and_then(Value::as_u64)
                    .and_then(|s| u16::try_from(s).ok())
                    .unwrap_or(0);
                if (200..300).contains(&status) {
                    done.push((item.index, Ok(())));
                    return None;
                }
                batch_item_error(r, status)
            }
        };
        if err.is_throttled() {
            self.inner
                .counters
                .throttled
                .fetch_add(1, Ordering::Relaxed);
        }
        let wait = hint.unwrap_or_else(|| policy.backoff(item.attempts.saturating_sub(1)));
        if err.is_throttled() {
            self.inner.limiter.pause_for(wait);
        }
        let dl = deadline.unwrap_or_else(Instant::now);
        if !err.is_transient()
            || item.attempts >= policy.max_attempts.max(1)
            || Instant::now() + wait >= dl
        {
            done.push((item.index, Err(self.failed(err))));
            return None;
        }
        self.inner.counters.retried.fetch_add(1, Ordering::Relaxed);
        item.not_before = Instant::now() + wait;
        item.last_error = Some(err);
        Some(item)
    }
}

/// The operation name of a `$batch` envelope.
const BATCH_OP: &str = "POST /$batch";

/// Per item of a batch chunk: its index and outcome.
type ItemResults = Vec<(usize, Result<(), GraphError>)>;

/// Sends `req` and reads the whole answer within `timeout`.
async fn exchange(
    req: reqwest::RequestBuilder,
    timeout: Duration,
    op: &str,
    client_request_id: &str,
) -> Result<(u16, HeaderMap, bytes::Bytes), Failure> {
    let exchange = async {
        let resp = req.send().await?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.bytes().await?;
        Ok::<_, reqwest::Error>((status, headers, body))
    };
    match tokio::time::timeout(timeout, exchange).await {
        Err(_) => Err(Failure {
            error: GraphError::new(GraphErrorKind::Timeout, op)
                .with_message(Some(&format!(
                    "no complete answer within {} ms",
                    timeout.as_millis()
                )))
                .with_ids(None, Some(client_request_id.to_string())),
            hint: None,
            maybe_delivered: true,
        }),
        Ok(Err(e)) => {
            let kind = if e.is_timeout() {
                GraphErrorKind::Timeout
            } else {
                GraphErrorKind::Transport
            };
            // A failed connect means the request never left; anything later may have
            // reached Graph.
            let maybe_delivered = !e.is_connect();
            Err(Failure {
                error: GraphError::new(kind, op)
                    .with_message(Some(&error_chain(&e.without_url())))
                    .with_ids(None, Some(client_request_id.to_string())),
                hint: None,
                maybe_delivered,
            })
        }
        Ok(Ok(parts)) => Ok(parts),
    }
}

/// A 2xx answer as the reply; anything else as a typed error with its wait hint.
fn reply_from(
    call: &Call,
    status: u16,
    headers: &HeaderMap,
    body: bytes::Bytes,
    client_request_id: String,
) -> Result<Reply, Failure> {
    let request_id = header_str(headers, "request-id");
    let echoed_crid = header_str(headers, "client-request-id").unwrap_or(client_request_id);
    tracing::debug!(
        operation = %mask_emails_in(&call.op),
        status,
        request_id = request_id.as_deref().unwrap_or(""),
        client_request_id = %echoed_crid,
        "Graph answered"
    );
    if (200..300).contains(&status) {
        return Ok(Reply { body });
    }
    let retry_after = header_str(headers, "retry-after").and_then(|v| parse_retry_after(&v));
    let err = error_from_parts(
        &call.op,
        status,
        &body,
        request_id,
        Some(echoed_crid),
        retry_after,
        call.delta,
    );
    Err(Failure {
        error: err,
        hint: retry_hint(status, retry_after),
        maybe_delivered: true,
    })
}

/// The wait a non-2xx answer asks for: its `Retry-After`, on 429, 503 and 424 only.
fn retry_hint(status: u16, retry_after: Option<Duration>) -> Option<Duration> {
    match status {
        429 | 503 | 424 => retry_after,
        _ => None,
    }
}

/// A failed attempt: the error, a wait hint (`Retry-After`), and whether the request may have
/// reached Graph.
struct Failure {
    error: GraphError,
    hint: Option<Duration>,
    maybe_delivered: bool,
}

impl Failure {
    /// Refused before anything was sent.
    fn local(error: GraphError) -> Self {
        Self {
            error,
            hint: None,
            maybe_delivered: false,
        }
    }
}

struct BatchItem {
    index: usize,
    batch_id: String,
    path: String,
    body: Value,
    attempts: u32,
    not_before: Instant,
    last_error: Option<GraphError>,
}

/// One read's answer in a `$batch`: the user, `None` for a 404, the error for another refusal;
/// `None` overall when it is worth reading again on its own (429, 5xx, missing).
fn read_item(answer: Option<&Value>) -> Option<Result<Option<Value>, GraphError>> {
    let r = answer?;
    let status = r
        .get("status")
        .and_then(Value::as_u64)
        .and_then(|s| u16::try_from(s).ok())
        .unwrap_or(0);
    match status {
        200 => match r.get("body") {
            Some(body) if body.is_object() => Some(Ok(Some(body.clone()))),
            _ => None,
        },
        404 => Some(Ok(None)),
        _ => {
            let (err, _) = batch_item_error(r, status);
            (!err.is_transient()).then_some(Err(err))
        }
    }
}

fn item_op() -> String {
    "PATCH /users/{id} (in $batch)".to_string()
}

/// An item of a batch answer that is not 2xx → an error and a `Retry-After` hint from its headers.
fn batch_item_error(r: &Value, status: u16) -> (GraphError, Option<Duration>) {
    let headers = r.get("headers").and_then(Value::as_object);
    let header = |name: &str| -> Option<String> {
        headers.and_then(|h| {
            h.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .and_then(|(_, v)| match v {
                    Value::String(s) => Some(s.clone()),
                    Value::Number(n) => Some(n.to_string()),
                    _ => None,
                })
        })
    };
    let retry_after = header("Retry-After").and_then(|v| parse_retry_after(&v));
    let body = r.get("body").cloned().unwrap_or(Value::Null);
    let body_bytes = serde_json::to_vec(&body).unwrap_or_default();
    let err = error_from_parts(
        &item_op(),
        status,
        &body_bytes,
        header("request-id"),
        header("client-request-id"),
        retry_after,
        false,
    );
    let err = if status == 0 {
        err.with_kind(GraphErrorKind::InvalidResponse)
    } else {
        err
    };
    (err, retry_hint(status, retry_after))
}

/// Maps a non-2xx answer to a typed error, reading Graph's error body
/// (<https://learn.microsoft.com/graph/errors>).
fn error_from_parts(
    op: &str,
    status: u16,
    body: &[u8],
    request_id: Option<String>,
    client_request_id: Option<String>,
    retry_after: Option<Duration>,
    delta: bool,
) -> GraphError {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let error = parsed.as_ref().and_then(|v| v.get("error"));
    let code = error
        .and_then(|e| e.get("code"))
        .and_then(Value::as_str)
        .map(str::to_string);
    let message = error
        .and_then(|e| e.get("message"))
        .and_then(Value::as_str)
        .map(str::to_string);
    let inner = error.and_then(|e| e.get("innerError").or_else(|| e.get("innererror")));
    let inner_str = |k: &str| {
        inner
            .and_then(|i| i.get(k))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let request_id = request_id.or_else(|| inner_str("request-id"));
    let client_request_id = client_request_id.or_else(|| inner_str("client-request-id"));
    let is_sync_reset = code.as_deref().is_some_and(|c| {
        // "If the delta token is expired, the service should respond with a 40X-series error with
        // error codes such as syncStateNotFound" (delta-query-overview).
        ["syncStateNotFound", "syncStateInvalid", "resyncRequired"]
            .iter()
            .any(|k| c.eq_ignore_ascii_case(k))
    });
    let kind = match status {
        429 => GraphErrorKind::Throttled { retry_after },
        500 | 502 | 503 | 504 | 424 => GraphErrorKind::Transient,
        408 => GraphErrorKind::Timeout,
        410 if delta => GraphErrorKind::DeltaReset,
        400..=499 if delta && is_sync_reset => GraphErrorKind::DeltaReset,
        401 => GraphErrorKind::Unauthorized,
        403 => GraphErrorKind::Forbidden,
        404 => GraphErrorKind::NotFound,
        400 | 405 | 409 | 412 | 413 | 415 | 422 => GraphErrorKind::BadRequest,
        _ => GraphErrorKind::Http,
    };
    GraphError::new(kind, op)
        .with_status(status)
        .with_code(code)
        .with_message(message.as_deref())
        .with_ids(request_id, client_request_id)
}

fn header_str(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        source = inner.source();
    }
    s
}

fn parse_json(body: &[u8], op: &str) -> Result<Value, GraphError> {
    serde_json::from_slice(body).map_err(|e| {
        GraphError::new(GraphErrorKind::InvalidResponse, op)
            .with_message(Some(&format!("body is not JSON: {e}")))
    })
}

fn value_array(body: &Value, op: &str) -> Result<Vec<Value>, GraphError> {
    array_field(body, "value", op, "answer has no `value` array")
}

/// The array `body[field]`, or an invalid-response error saying `missing`.
fn array_field(
    body: &Value,
    field: &str,
    op: &str,
    missing: &str,
) -> Result<Vec<Value>, GraphError> {
    body.get(field)
        .and_then(Value::as_array)
        .cloned()
        .ok_or_else(|| {
            GraphError::new(GraphErrorKind::InvalidResponse, op).with_message(Some(missing))
        })
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// `a=b&c=d` with values percent-encoded; names are literal (`$select`, `$filter`).
fn query(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", utf8_percent_encode(v, QUERY_VALUE)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Validates a `$select` list and joins it. Always required: an empty list is a programming error.
fn select_value(select: &[&str], op: &str) -> Result<String, GraphError> {
    if select.is_empty() {
        return Err(GraphError::invalid_request(op, "empty $select list"));
    }
    for name in select {
        let ok = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '@');
        if !ok {
            return Err(GraphError::invalid_request(
                op,
                format!("invalid $select property name {name:?}"),
            ));
        }
    }
    Ok(select.join(","))
}

/// OData string literal escaping: `'` → `''`.
pub fn odata_quote(value: &str) -> String {
    value.replace('\'', "''")
}

/// `/users/{id}`, percent-encoded. A UPN starting with `$` must be addressed as `/users('{upn}')`
/// (<https://learn.microsoft.com/graph/api/user-get?view=graph-rest-1.0#http-request>).
fn user_path(id: &str, op: &str) -> Result<String, GraphError> {
    if id.is_empty() || id.trim() != id || id.chars().any(char::is_control) {
        return Err(GraphError::invalid_request(
            op,
            "empty or malformed user id",
        ));
    }
    if id.chars().all(|c| c == '.') {
        return Err(GraphError::invalid_request(op, "user id is a dot segment"));
    }
    if id.starts_with('$') {
        let quoted = odata_quote(id);
        return Ok(format!(
            "/users('{}')",
            utf8_percent_encode(&quoted, PATH_SEGMENT)
        ));
    }
    Ok(format!("/users/{}", utf8_percent_encode(id, PATH_SEGMENT)))
}

/// Only plain, relative Graph paths outside the user-creating/deleting collections may be POSTed.
fn check_post_path(path: &str) -> Result<(), GraphError> {
    let op = "POST";
    let refuse = |why: &str| Err(GraphError::invalid_request(op, why.to_string()));
    if !path.starts_with('/') || path.starts_with("//") {
        return refuse("path must be relative to the Graph base URL and start with '/'");
    }
    if path.contains(['?', '#', '%', '\\']) || path.chars().any(|c| c.is_whitespace()) {
        return refuse("path must not contain a query, fragment, escapes or whitespace");
    }
    let segments: Vec<&str> = path[1..].split('/').collect();
    if segments
        .iter()
        .any(|s| s.is_empty() || s.chars().all(|c| c == '.'))
    {
        return refuse("path must not contain empty or dot segments");
    }
    match segments.first() {
        Some(v) if v.eq_ignore_ascii_case("v1.0") || v.eq_ignore_ascii_case("beta") => {}
        _ => return refuse("path must start with /v1.0/ or /beta/"),
    }
    if let Some(first) = segments.get(1) {
        let name = first
            .split(['(', '\''])
            .next()
            .unwrap_or(first)
            .to_ascii_lowercase();
        if ["users", "me", "directoryobjects", "$batch", "invitations"].contains(&name.as_str()) {
            return refuse("POST to users, directoryObjects, invitations or $batch is not allowed");
        }
    } else {
        return refuse("path names no resource");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn post_paths_are_checked() {
        assert!(check_post_path(
            "/v1.0/identityGovernance/lifecycleWorkflows/workflows/w/runs/r/taskProcessingResults/t/microsoft.graph.identityGovernance.resume"
        )
        .is_ok());
        for bad in [
            "/v1.0/users",
            "/v1.0/Users/abc",
            "/beta/users('x')",
            "/v1.0/$batch",
            "/v1.0/me/x",
            "/v1.0/directoryObjects/x/restore",
            "/v1.0/a/../users",
            "/v1.0/%75sers",
            "https://evil/v1.0/x",
            "//evil/v1.0/x",
            "/v2/x",
            "/v1.0",
            "/v1.0/x?y=1",
        ] {
            let e = check_post_path(bad).err();
            assert!(
                matches!(
                    e.as_ref().map(|e| e.kind()),
                    Some(GraphErrorKind::InvalidRequest(_))
                ),
                "{bad} should be refused"
            );
        }
    }

    #[test]
    fn user_paths_are_encoded() {
        assert_eq!(
            user_path("adele@contoso.com", "x").ok().as_deref(),
            Some("/users/adele@contoso.com")
        );
        assert_eq!(
            user_path("a#EXT#@b.com", "x").ok().as_deref(),
            Some("/users/a%23EXT%23@b.com")
        );
        assert_eq!(
            user_path("$adele@contoso.com", "x").ok().as_deref(),
            Some("/users('$adele@contoso.com')")
        );
        assert!(user_path("..", "x").is_err());
        assert!(user_path("", "x").is_err());
        assert!(user_path(" a", "x").is_err());
    }

    #[test]
    fn query_values_use_percent_twenty() {
        assert_eq!(
            query(&[("$filter", "employeeId eq 'O''Neil&1'")]),
            "$filter=employeeId%20eq%20%27O%27%27Neil%261%27"
        );
    }

    #[test]
    fn select_is_validated() {
        assert!(select_value(&[], "x").is_err());
        assert!(select_value(&["id", "a,b"], "x").is_err());
        assert_eq!(
            select_value(&["id", "otherMails"], "x").ok().as_deref(),
            Some("id,otherMails")
        );
    }
}
