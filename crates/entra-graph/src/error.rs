//! Typed errors for every Graph, credential and Key Vault call.
//!
//! A [`GraphError`] names the operation that failed, the HTTP status, Graph's `error.code`, the
//! PII-masked `error.message`, and both correlation ids: `request-id` (assigned by Graph) and
//! `client-request-id` (a fresh GUID we send on every request). Graph's error body shape and the
//! `innerError.request-id` / `innerError.client-request-id` fields are documented at
//! <https://learn.microsoft.com/graph/errors>.

use std::fmt;
use std::time::Duration;

use entra_core::pii::mask_emails_in;

/// What went wrong, coarsely. Drives retry decisions and what callers do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GraphErrorKind {
    /// HTTP 429 (or a batch envelope 424 caused by throttling). `retry_after` is the parsed
    /// `Retry-After` if Graph sent one (<https://learn.microsoft.com/graph/throttling>).
    Throttled { retry_after: Option<Duration> },
    /// HTTP 500/502/503/504: the service failed and the call may succeed later.
    Transient,
    /// HTTP 401: the token was refused.
    Unauthorized,
    /// HTTP 403. See [`GraphError::is_privileged_denied`] for the admin-target case.
    Forbidden,
    /// HTTP 404.
    NotFound,
    /// HTTP 400 (and other definite client-side refusals such as 405/409/412/422).
    BadRequest,
    /// The delta token expired or is unknown: restart with a full sync
    /// (<https://learn.microsoft.com/graph/delta-query-overview>).
    DeltaReset,
    /// Connecting, sending or reading failed below HTTP (refused, reset, TLS, …).
    Transport,
    /// The token credential could not produce a token.
    Credential,
    /// A single request timed out, or the per-call deadline ran out.
    Timeout,
    /// The caller asked for something this client refuses to do (empty `$select`, a POST to
    /// `/users`, an empty patch, a next link to another host, …). Never sent to Graph.
    InvalidRequest(String),
    /// Graph answered 2xx with a body we could not understand.
    InvalidResponse,
    /// Any other non-success HTTP status that is not worth retrying.
    Http,
    /// A Key Vault call failed (see the message).
    KeyVault,
}

#[derive(Debug, Clone)]
struct Inner {
    kind: GraphErrorKind,
    operation: String,
    status: Option<u16>,
    code: Option<String>,
    message: Option<String>,
    request_id: Option<String>,
    client_request_id: Option<String>,
}

/// An error from the Graph client. Boxed inside so `Result<T, GraphError>` stays small.
///
/// `Display` is one line: what failed, why, the status and code, the masked message and both
/// correlation ids. It never contains an unmasked email address.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}", render(&self.0))]
pub struct GraphError(Box<Inner>);

fn one_line(text: &str) -> String {
    let masked = mask_emails_in(text);
    let mut out = String::with_capacity(masked.len());
    let mut last_space = false;
    for ch in masked.chars() {
        let ch = if ch.is_control() { ' ' } else { ch };
        if ch == ' ' && last_space {
            continue;
        }
        last_space = ch == ' ';
        out.push(ch);
    }
    const MAX: usize = 400;
    if out.chars().count() > MAX {
        let cut: String = out.chars().take(MAX).collect();
        format!("{cut}…")
    } else {
        out.trim().to_string()
    }
}

fn kind_text(kind: &GraphErrorKind) -> String {
    match kind {
        GraphErrorKind::Throttled {
            retry_after: Some(d),
        } => format!("throttled by Graph (Retry-After {:.3}s)", d.as_secs_f64()),
        GraphErrorKind::Throttled { retry_after: None } => "throttled by Graph".to_string(),
        GraphErrorKind::Transient => "Graph service error (transient)".to_string(),
        GraphErrorKind::Unauthorized => "unauthorized (token refused)".to_string(),
        GraphErrorKind::Forbidden => "forbidden".to_string(),
        GraphErrorKind::NotFound => "not found".to_string(),
        GraphErrorKind::BadRequest => "bad request".to_string(),
        GraphErrorKind::DeltaReset => {
            "delta token expired or unknown; a full resync is required".to_string()
        }
        GraphErrorKind::Transport => "transport error".to_string(),
        GraphErrorKind::Credential => "could not get an access token".to_string(),
        GraphErrorKind::Timeout => "timed out".to_string(),
        GraphErrorKind::InvalidRequest(why) => format!("refused locally: {}", one_line(why)),
        GraphErrorKind::InvalidResponse => "unexpected response from Graph".to_string(),
        GraphErrorKind::Http => "request failed".to_string(),
        GraphErrorKind::KeyVault => "Key Vault request failed".to_string(),
    }
}

fn render(inner: &Inner) -> String {
    let mut s = format!(
        "{} failed: {}",
        one_line(&inner.operation),
        kind_text(&inner.kind)
    );
    if let Some(status) = inner.status {
        s.push_str(&format!(" (HTTP {status}"));
        if let Some(code) = &inner.code {
            s.push_str(&format!(", code {}", one_line(code)));
        }
        s.push(')');
    } else if let Some(code) = &inner.code {
        s.push_str(&format!(" (code {})", one_line(code)));
    }
    if let Some(message) = &inner.message {
        if !message.is_empty() {
            s.push_str(": ");
            s.push_str(message);
        }
    }
    s.push_str(&format!(
        " [request-id {}, client-request-id {}]",
        inner.request_id.as_deref().unwrap_or("none"),
        inner.client_request_id.as_deref().unwrap_or("none")
    ));
    s
}

impl GraphError {
    /// A new error of `kind` for `operation` (e.g. `"PATCH /users/{id}"`). The operation text is
    /// masked for emails when displayed.
    pub fn new(kind: GraphErrorKind, operation: impl Into<String>) -> Self {
        Self(Box::new(Inner {
            kind,
            operation: operation.into(),
            status: None,
            code: None,
            message: None,
            request_id: None,
            client_request_id: None,
        }))
    }

    /// A locally refused request.
    pub fn invalid_request(operation: impl Into<String>, why: impl Into<String>) -> Self {
        Self::new(GraphErrorKind::InvalidRequest(why.into()), operation)
    }

    /// Records the HTTP status the service answered.
    pub fn with_status(mut self, status: u16) -> Self {
        self.0.status = Some(status);
        self
    }

    pub(crate) fn with_code(mut self, code: Option<String>) -> Self {
        self.0.code = code;
        self
    }

    /// Sets the message; it is masked for emails and flattened to one line here, so the raw text
    /// is never stored.
    pub(crate) fn with_message(mut self, message: Option<&str>) -> Self {
        self.0.message = message.map(one_line);
        self
    }

    pub(crate) fn with_ids(
        mut self,
        request_id: Option<String>,
        client_request_id: Option<String>,
    ) -> Self {
        if request_id.is_some() {
            self.0.request_id = request_id;
        }
        if client_request_id.is_some() {
            self.0.client_request_id = client_request_id;
        }
        self
    }

    pub(crate) fn with_kind(mut self, kind: GraphErrorKind) -> Self {
        self.0.kind = kind;
        self
    }

    /// The error kind.
    pub fn kind(&self) -> &GraphErrorKind {
        &self.0.kind
    }
    /// What was being done, e.g. `"PATCH /users/{id}"`.
    pub fn operation(&self) -> &str {
        &self.0.operation
    }
    /// The HTTP status, if Graph answered.
    pub fn status(&self) -> Option<u16> {
        self.0.status
    }
    /// Graph's `error.code`, e.g. `Authorization_RequestDenied`.
    pub fn code(&self) -> Option<&str> {
        self.0.code.as_deref()
    }
    /// Graph's `error.message`, with every email address masked.
    pub fn message(&self) -> Option<&str> {
        self.0.message.as_deref()
    }
    /// Graph's `request-id` (response header or `innerError`).
    pub fn request_id(&self) -> Option<&str> {
        self.0.request_id.as_deref()
    }
    /// The `client-request-id` we sent (echoed by Graph).
    pub fn client_request_id(&self) -> Option<&str> {
        self.0.client_request_id.as_deref()
    }
    /// `Retry-After` when throttled.
    pub fn retry_after(&self) -> Option<Duration> {
        match self.0.kind {
            GraphErrorKind::Throttled { retry_after } => retry_after,
            _ => None,
        }
    }

    /// True when the same call may succeed later (throttling, 5xx, transport, timeout).
    pub fn is_transient(&self) -> bool {
        matches!(
            self.0.kind,
            GraphErrorKind::Throttled { .. }
                | GraphErrorKind::Transient
                | GraphErrorKind::Transport
                | GraphErrorKind::Timeout
        )
    }

    /// True when the delta cursor must be thrown away and a full sync started.
    pub fn is_delta_reset(&self) -> bool {
        self.0.kind == GraphErrorKind::DeltaReset
    }

    /// True when Graph answered 403 `Authorization_RequestDenied`: typically the target is an
    /// administrator and `otherMails` is a sensitive property the app's role may not update
    /// (<https://learn.microsoft.com/graph/api/user-update?view=graph-rest-1.0>,
    /// <https://learn.microsoft.com/graph/api/resources/users#who-can-perform-sensitive-actions>).
    pub fn is_privileged_denied(&self) -> bool {
        self.0.kind == GraphErrorKind::Forbidden
            && self
                .0
                .code
                .as_deref()
                .is_some_and(|c| c.eq_ignore_ascii_case("Authorization_RequestDenied"))
    }

    /// True for 404.
    pub fn is_not_found(&self) -> bool {
        self.0.kind == GraphErrorKind::NotFound
    }

    /// True for 429.
    pub fn is_throttled(&self) -> bool {
        matches!(self.0.kind, GraphErrorKind::Throttled { .. })
    }
}

impl fmt::Display for GraphErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&kind_text(self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_one_line_with_ids_and_masked_message() {
        let e = GraphError::new(GraphErrorKind::BadRequest, "PATCH /users/abc")
            .with_status(400)
            .with_code(Some("Request_BadRequest".into()))
            .with_message(Some("Invalid value\n'jane.doe@example.com' for otherMails"))
            .with_ids(Some("rid-1".into()), Some("crid-2".into()));
        let s = e.to_string();
        assert!(!s.contains('\n'), "{s}");
        assert!(!s.contains("jane.doe"), "{s}");
        assert!(s.contains("rid-1") && s.contains("crid-2"), "{s}");
        assert!(
            s.contains("HTTP 400") && s.contains("Request_BadRequest"),
            "{s}"
        );
        assert!(s.starts_with("PATCH /users/abc failed"), "{s}");
    }

    #[test]
    fn privileged_denied_needs_403_and_code() {
        let e = GraphError::new(GraphErrorKind::Forbidden, "x")
            .with_code(Some("Authorization_RequestDenied".into()));
        assert!(e.is_privileged_denied());
        let e = GraphError::new(GraphErrorKind::Forbidden, "x").with_code(Some("Other".into()));
        assert!(!e.is_privileged_denied());
        assert!(!e.is_transient());
    }
}
