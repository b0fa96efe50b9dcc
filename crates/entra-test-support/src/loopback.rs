//! One scriptable HTTP/1 server on `127.0.0.1:0`: every request is recorded, and a plain function
//! decides each answer.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use url::Url;

/// What the server received.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    /// Path and query exactly as sent.
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

impl Seen {
    /// A header's value, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    /// The path as sent (still percent-encoded).
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }
    /// The raw query, without `?`.
    pub fn raw_query(&self) -> &str {
        self.target.split_once('?').map(|(_, q)| q).unwrap_or("")
    }
    /// Decoded query pairs.
    pub fn query(&self) -> Vec<(String, String)> {
        url::form_urlencoded::parse(self.raw_query().as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }
    /// One decoded query value.
    pub fn query_value(&self, name: &str) -> Option<String> {
        self.query()
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }
    /// The request as the `http` crate's type, for a server under test that takes one (headers
    /// that are not valid HTTP are left out).
    pub fn to_http(&self) -> http::Request<Bytes> {
        let mut req = http::Request::new(self.body.clone());
        *req.method_mut() = http::Method::from_bytes(self.method.as_bytes()).unwrap_or_default();
        *req.uri_mut() = self.target.parse().unwrap_or_default();
        for (k, v) in &self.headers {
            if let (Ok(k), Ok(v)) = (
                http::HeaderName::from_bytes(k.as_bytes()),
                http::HeaderValue::from_str(v),
            ) {
                req.headers_mut().append(k, v);
            }
        }
        req
    }
    /// The body as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// A scripted answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
    /// How long the server waits before answering (a slow or hanging dependency).
    pub delay: Duration,
}

impl Reply {
    /// An empty answer with `status`.
    pub fn new(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Bytes::new(),
            delay: Duration::ZERO,
        }
    }
    /// The answer an `http` crate response describes.
    pub fn from_http(resp: http::Response<Bytes>) -> Self {
        let (parts, body) = resp.into_parts();
        let headers = parts
            .headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
            .collect();
        Reply {
            status: parts.status.as_u16(),
            headers,
            body,
            delay: Duration::ZERO,
        }
    }
    /// A JSON answer.
    pub fn json(status: u16, body: serde_json::Value) -> Self {
        Self::new(status)
            .header("content-type", "application/json")
            .body(body.to_string())
    }
    /// A Microsoft Graph error body (`{"error": {"code", "message", "innerError"}}`).
    pub fn graph_error(status: u16, code: &str, message: &str) -> Self {
        Self::json(
            status,
            serde_json::json!({"error": {"code": code, "message": message,
                "innerError": {"request-id": "inner-rid", "date": "2026-11-25T00:00:00"}}}),
        )
    }
    pub fn header(mut self, k: &str, v: &str) -> Self {
        self.headers.push((k.to_string(), v.to_string()));
        self
    }
    pub fn body(mut self, b: impl Into<Bytes>) -> Self {
        self.body = b.into();
        self
    }
    pub fn delay(mut self, d: Duration) -> Self {
        self.delay = d;
        self
    }
}

type Handler = dyn Fn(&Seen, usize) -> Reply + Send + Sync;

/// A running server; stopped on drop.
pub struct TestServer {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl TestServer {
    /// Starts a server on 127.0.0.1; `handler(request, index)` scripts each answer (index counts
    /// every request the server received, from 0).
    pub async fn start(handler: impl Fn(&Seen, usize) -> Reply + Send + Sync + 'static) -> Self {
        Self::start_with(|_| handler).await
    }

    /// Like [`TestServer::start`], for a handler that needs the server's own base URL (an issuer, a
    /// `nextLink`): `make(base)` builds it once the port is known.
    pub async fn start_with<H>(make: impl FnOnce(&Url) -> H) -> Self
    where
        H: Fn(&Seen, usize) -> Reply + Send + Sync + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let handler: Arc<Handler> = Arc::new(make(&base_url(addr)));
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let task = tokio::spawn(accept_loop(listener, seen.clone(), handler));
        Self { addr, seen, task }
    }

    /// `http://127.0.0.1:PORT/`.
    pub fn base_url(&self) -> Url {
        base_url(self.addr)
    }

    /// Every request received so far, in order.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// How many requests were received.
    pub fn count(&self) -> usize {
        self.seen.lock().map(|s| s.len()).unwrap_or_default()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn base_url(addr: SocketAddr) -> Url {
    Url::parse(&format!("http://{addr}")).expect("a socket address makes a URL")
}

async fn accept_loop(listener: TcpListener, seen: Arc<Mutex<Vec<Seen>>>, handler: Arc<Handler>) {
    let counter = Arc::new(AtomicUsize::new(0));
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        let (seen, handler, counter) = (seen.clone(), handler.clone(), counter.clone());
        tokio::spawn(async move {
            let svc = service_fn(move |req: Request<Incoming>| {
                let (seen, handler, counter) = (seen.clone(), handler.clone(), counter.clone());
                async move {
                    let s = read(req).await;
                    let idx = counter.fetch_add(1, Ordering::SeqCst);
                    if let Ok(mut all) = seen.lock() {
                        all.push(s.clone());
                    }
                    Ok::<_, Infallible>(answer(handler(&s, idx)).await)
                }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

async fn read(req: Request<Incoming>) -> Seen {
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
    Seen {
        method,
        target,
        headers,
        body,
    }
}

async fn answer(reply: Reply) -> Response<Full<Bytes>> {
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let mut resp = Response::builder().status(reply.status);
    for (k, v) in &reply.headers {
        resp = resp.header(k, v);
    }
    resp.body(Full::new(reply.body)).unwrap_or_else(|_| {
        let mut bad = Response::new(Full::new(Bytes::from_static(
            b"the test scripted an invalid reply",
        )));
        *bad.status_mut() = hyper::StatusCode::INTERNAL_SERVER_ERROR;
        bad
    })
}
