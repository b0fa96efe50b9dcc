//! A loopback server (the workspace's shared `entra_test_support::TestServer`) that serves only
//! `Identity::handle` (404 otherwise), so the identity tests do not depend on the sandbox's full server.

#![allow(dead_code)]

use std::sync::Arc;

use bytes::Bytes;
use entra_sandbox::http::SandboxRequest;
use entra_sandbox::identity::{Identity, IdentityOptions};
use entra_test_support::{Reply, Seen};

pub(crate) struct TestServer {
    pub identity: Arc<Identity>,
    pub base_url: String,
    pub server: entra_test_support::TestServer,
}

pub(crate) async fn start() -> TestServer {
    start_with(IdentityOptions::default()).await
}

pub(crate) async fn start_with(opts: IdentityOptions) -> TestServer {
    let identity = Arc::new(Identity::new(opts).expect("identity"));
    let id = identity.clone();
    let server = entra_test_support::TestServer::start_with(move |base| {
        let base = base.as_str().trim_end_matches('/').to_string();
        move |seen: &Seen, _| identity_reply(&id, &base, seen)
    })
    .await;
    TestServer {
        identity,
        base_url: server.base_url().as_str().trim_end_matches('/').to_string(),
        server,
    }
}

/// What `Identity::handle` answers to `seen`, or 404.
pub(crate) fn identity_reply(id: &Identity, base: &str, seen: &Seen) -> Reply {
    match id.handle(&SandboxRequest::from_http(seen.to_http()), base) {
        Some(resp) => Reply::from_http(resp.into_http()),
        None => Reply::new(404),
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
