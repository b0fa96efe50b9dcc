//! A minimal HTTP/1 server on 127.0.0.1:0 that serves only `Identity::handle` (404 otherwise), so the identity
//! tests do not depend on the sandbox's full server.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use entra_sandbox::http::{SandboxRequest, SandboxResponse};
use entra_sandbox::identity::{Identity, IdentityOptions};
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

pub(crate) struct TestServer {
    pub identity: Arc<Identity>,
    pub base_url: String,
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub(crate) async fn start() -> TestServer {
    start_with(IdentityOptions::default()).await
}

pub(crate) async fn start_with(opts: IdentityOptions) -> TestServer {
    let identity = Arc::new(Identity::new(opts).expect("identity"));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let base_url = format!("http://{addr}");
    let id = identity.clone();
    let base = base_url.clone();
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let id = id.clone();
            let base = base.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let id = id.clone();
                    let base = base.clone();
                    async move {
                        let (parts, body) = req.into_parts();
                        let body = body
                            .collect()
                            .await
                            .map(|b| b.to_bytes())
                            .unwrap_or_default();
                        let path = percent_encoding::percent_decode_str(parts.uri.path())
                            .decode_utf8_lossy()
                            .into_owned();
                        let sreq = SandboxRequest {
                            method: parts.method,
                            path,
                            query: parts.uri.query().unwrap_or_default().to_string(),
                            headers: parts.headers,
                            body,
                        };
                        let resp = id
                            .handle(&sreq, &base)
                            .unwrap_or_else(|| SandboxResponse::empty(http::StatusCode::NOT_FOUND));
                        let mut out = hyper::Response::new(Full::new(resp.body));
                        *out.status_mut() = resp.status;
                        *out.headers_mut() = resp.headers;
                        Ok::<_, std::convert::Infallible>(out)
                    }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    TestServer {
        identity,
        base_url,
        addr,
        task,
    }
}

pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client")
}

/// A response as the tests look at it.
pub(crate) struct Got {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub json: serde_json::Value,
}

pub(crate) async fn got(resp: reqwest::Response) -> Got {
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let bytes: Bytes = resp.bytes().await.expect("body");
    let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    Got {
        status,
        headers,
        json,
    }
}
