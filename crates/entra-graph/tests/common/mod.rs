//! A scriptable loopback HTTP server and a test token credential.
#![allow(dead_code)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};
use bytes::Bytes;
use entra_graph::{GraphClient, GraphClientOptions, RetryPolicy};
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use time::OffsetDateTime;
use tokio::net::TcpListener;
use url::Url;

/// What the server received.
#[derive(Debug, Clone)]
pub(crate) struct Seen {
    pub method: String,
    /// Path and query exactly as sent.
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

impl Seen {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub(crate) fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }
    /// Decoded query pairs.
    pub(crate) fn query(&self) -> Vec<(String, String)> {
        let q = self.target.split_once('?').map(|(_, q)| q).unwrap_or("");
        url::form_urlencoded::parse(q.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }
    pub(crate) fn query_value(&self, name: &str) -> Option<String> {
        self.query()
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// A scripted answer.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub delay: Duration,
}

impl Reply {
    pub(crate) fn new(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: String::new(),
            delay: Duration::ZERO,
        }
    }
    pub(crate) fn json(status: u16, body: serde_json::Value) -> Self {
        Self::new(status)
            .header("content-type", "application/json")
            .body(body.to_string())
    }
    pub(crate) fn graph_error(status: u16, code: &str, message: &str) -> Self {
        Self::json(
            status,
            serde_json::json!({"error": {"code": code, "message": message,
                "innerError": {"request-id": "inner-rid", "date": "2026-11-25T00:00:00"}}}),
        )
    }
    pub(crate) fn header(mut self, k: &str, v: &str) -> Self {
        self.headers.push((k.to_string(), v.to_string()));
        self
    }
    pub(crate) fn body(mut self, b: String) -> Self {
        self.body = b;
        self
    }
    pub(crate) fn delay(mut self, d: Duration) -> Self {
        self.delay = d;
        self
    }
}

type Handler = dyn Fn(&Seen, usize) -> Reply + Send + Sync;

pub(crate) struct TestServer {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl TestServer {
    /// Starts a server on 127.0.0.1; `handler(request, index)` scripts each answer (index counts
    /// every request the server received, from 0).
    pub(crate) async fn start(
        handler: impl Fn(&Seen, usize) -> Reply + Send + Sync + 'static,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let handler: Arc<Handler> = Arc::new(handler);
        let counter = Arc::new(AtomicUsize::new(0));
        let seen2 = seen.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let seen = seen2.clone();
                let handler = handler.clone();
                let counter = counter.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req: Request<hyper::body::Incoming>| {
                        let seen = seen.clone();
                        let handler = handler.clone();
                        let counter = counter.clone();
                        async move {
                            let method = req.method().to_string();
                            let target = req
                                .uri()
                                .path_and_query()
                                .map(|p| p.as_str().to_string())
                                .unwrap_or_default();
                            let headers = req
                                .headers()
                                .iter()
                                .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
                                .collect();
                            let body = req
                                .into_body()
                                .collect()
                                .await
                                .map(|b| b.to_bytes())
                                .unwrap_or_default();
                            let s = Seen {
                                method,
                                target,
                                headers,
                                body,
                            };
                            let idx = counter.fetch_add(1, Ordering::SeqCst);
                            seen.lock().expect("lock").push(s.clone());
                            let reply = handler(&s, idx);
                            if !reply.delay.is_zero() {
                                tokio::time::sleep(reply.delay).await;
                            }
                            let mut resp = Response::builder().status(reply.status);
                            for (k, v) in &reply.headers {
                                resp = resp.header(k, v);
                            }
                            Ok::<_, Infallible>(
                                resp.body(Full::new(Bytes::from(reply.body)))
                                    .expect("response"),
                            )
                        }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Self { addr, seen, task }
    }

    pub(crate) fn base_url(&self) -> Url {
        Url::parse(&format!("http://{}", self.addr)).expect("url")
    }

    pub(crate) fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("lock").clone()
    }

    pub(crate) fn count(&self) -> usize {
        self.seen.lock().expect("lock").len()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Hands out `test-token-N` (N = call number), valid for an hour.
#[derive(Debug, Default)]
pub(crate) struct TestCredential {
    pub calls: AtomicUsize,
    pub scopes: Mutex<Vec<String>>,
}

#[async_trait]
impl TokenCredential for TestCredential {
    async fn get_token(
        &self,
        scopes: &[&str],
        _options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        self.scopes
            .lock()
            .expect("lock")
            .extend(scopes.iter().map(|s| s.to_string()));
        Ok(AccessToken::new(
            format!("test-token-{n}"),
            OffsetDateTime::now_utc() + time::Duration::hours(1),
        ))
    }
}

/// Fast retries for tests.
pub(crate) fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(40),
        deadline: Duration::from_secs(10),
    }
}

pub(crate) fn options(server: &TestServer) -> (GraphClientOptions, Arc<TestCredential>) {
    let cred = Arc::new(TestCredential::default());
    let mut o = GraphClientOptions::new(server.base_url(), cred.clone());
    o.retry = fast_retry();
    o.max_writes_per_minute = 600_000;
    o.request_timeout = Duration::from_secs(5);
    (o, cred)
}

pub(crate) fn client(server: &TestServer) -> (GraphClient, Arc<TestCredential>) {
    let (o, cred) = options(server);
    (GraphClient::new(o).expect("client"), cred)
}

pub(crate) fn patch(mails: &[&str], country: Option<&str>) -> entra_core::UserPatch {
    use entra_core::{AlternateEmail, Change, CountryCode, OtherMails, UserPatch};
    let other_mails = if mails.is_empty() {
        None
    } else {
        Some(
            OtherMails::new(
                mails
                    .iter()
                    .map(|m| AlternateEmail::parse(m).expect("valid mail")),
            )
            .expect("mails"),
        )
    };
    UserPatch {
        other_mails,
        usage_location: country.map(|c| Change::Set(CountryCode::parse(c).expect("country"))),
    }
}
