//! Transport-neutral request and response types shared by every route of the sandbox.
//! The hyper server converts to and from these, and `$batch` builds them for its sub-requests.

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode};

/// One request as a route sees it.
#[derive(Debug, Clone)]
pub struct SandboxRequest {
    pub method: Method,
    /// The path, percent-decoded, without the query, e.g. `/v1.0/users/abc`.
    pub path: String,
    /// The raw query string without the leading `?` (still percent-encoded).
    pub query: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl SandboxRequest {
    /// A request as a route sees it, from the `http` crate's request: the path is percent-decoded,
    /// the query kept as sent.
    pub fn from_http(req: http::Request<Bytes>) -> Self {
        let (parts, body) = req.into_parts();
        let path = percent_encoding::percent_decode_str(parts.uri.path())
            .decode_utf8_lossy()
            .into_owned();
        SandboxRequest {
            method: parts.method,
            path,
            query: parts.uri.query().unwrap_or("").to_string(),
            headers: parts.headers,
            body,
        }
    }
}

/// One response as a route produces it.
#[derive(Debug, Clone)]
pub struct SandboxResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl SandboxResponse {
    /// An empty response with the given status.
    pub fn empty(status: StatusCode) -> Self {
        Self {
            status,
            headers: HeaderMap::new(),
            body: Bytes::new(),
        }
    }

    /// The `http` crate's response.
    pub fn into_http(self) -> http::Response<Bytes> {
        let mut resp = http::Response::new(self.body);
        *resp.status_mut() = self.status;
        *resp.headers_mut() = self.headers;
        resp
    }

    /// A JSON response with the given status.
    pub fn json(status: StatusCode, value: &serde_json::Value) -> Self {
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        Self {
            status,
            headers,
            body: Bytes::from(serde_json::to_vec(value).unwrap_or_default()),
        }
    }
}
