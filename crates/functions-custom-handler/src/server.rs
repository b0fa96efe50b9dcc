//! The HTTP server the Functions host talks to.
//!
//! Contract (https://learn.microsoft.com/azure/azure-functions/functions-custom-handlers and the host's
//! `DefaultHttpWorkerService.cs` / `HttpWorkerOptions.cs` in <https://github.com/Azure/azure-functions-host>):
//! - the host starts our executable with `FUNCTIONS_CUSTOMHANDLER_PORT` (legacy `FUNCTIONS_HTTPWORKER_PORT`)
//!   and always calls `http://127.0.0.1:<port>`;
//! - readiness: it polls `/` every 25 ms and **any** HTTP answer means ready (limit 30 s), so bind first
//!   ([`bind_from_env`]) and build expensive state lazily on first invocation;
//! - each invocation is `POST /<FunctionName>` (the function folder name, not the route) with a
//!   `{Data, Metadata}` JSON body and headers `X-Azure-Functions-InvocationId`,
//!   `X-Azure-Functions-HostVersion`;
//! - the answer is `{Outputs, Logs, ReturnValue}`; the host calls `EnsureSuccessStatusCode()`, so a
//!   non-2xx answer **fails the invocation**.
//!
//! Status policy (deliberate):
//! - invalid *envelope* (not JSON / not `{Data, Metadata}`) → HTTP **400**: a host/protocol bug; the
//!   host logs the failed invocation.
//! - unknown function → HTTP **404** with the known names (a function.json / binary mismatch).
//! - invalid *function input* (e.g. a bad callout body) is the app's business: it answers HTTP 200 with
//!   `Outputs.res.statusCode = 400`, so the *caller* gets the 400 and the invocation itself succeeds.
//! - an app panic → HTTP **500** (the invocation fails; the panic is logged).

use std::convert::Infallible;
use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tracing::Instrument;

use crate::logging::{current_masker, LogSink, SinkRegistration, INVOCATION_SPAN};
use crate::protocol::{InvokeRequest, InvokeResponse};

/// Header carrying the host's invocation id.
pub const INVOCATION_ID_HEADER: &str = "x-azure-functions-invocationid";
/// Header carrying the host's version.
pub const HOST_VERSION_HEADER: &str = "x-azure-functions-hostversion";
/// Port variable set by the host (current name).
pub const PORT_ENV: &str = "FUNCTIONS_CUSTOMHANDLER_PORT";
/// Port variable set by the host (legacy name, still set).
pub const LEGACY_PORT_ENV: &str = "FUNCTIONS_HTTPWORKER_PORT";
/// Largest invocation envelope accepted: 1 MiB. Our payloads are a few KB (an LCW callout, a timer's
/// schedule status); a larger one is refused with 413 as soon as its `Content-Length` says so, or
/// once 1 MiB has been read, never buffered whole.
pub const MAX_ENVELOPE_BYTES: usize = 1024 * 1024;

/// One invocation as handed to the app.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// The `{Data, Metadata}` envelope.
    pub request: InvokeRequest,
    /// `X-Azure-Functions-InvocationId`, if the host sent it.
    pub invocation_id: Option<String>,
    /// `X-Azure-Functions-HostVersion`, if the host sent it.
    pub host_version: Option<String>,
    /// Lines pushed here (and every `tracing` event inside the invocation) end up in `Logs`.
    pub logs: LogSink,
}

/// An application: a set of functions. Keep construction cheap; build expensive state on the
/// first invocation (e.g. `tokio::sync::OnceCell` inside the app) so the port answers readiness
/// probes within milliseconds of process start.
#[async_trait::async_trait]
pub trait FunctionApp: Send + Sync + 'static {
    /// Runs `function_name` (as listed by [`FunctionApp::function_names`]; the server already
    /// matched the request path case-insensitively).
    async fn invoke(&self, function_name: &str, invocation: Invocation) -> InvokeResponse;
    /// The function names this app serves (the function folder names).
    fn function_names(&self) -> Vec<String>;
}

/// Errors binding the handler's port.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error("{PORT_ENV} is not set (nor the legacy {LEGACY_PORT_ENV}): the Azure Functions host sets it when it starts the custom handler; set it yourself to run locally")]
    MissingPort,
    #[error("{var}={value:?} is not a TCP port number")]
    InvalidPort { var: &'static str, value: String },
    #[error("cannot listen on 127.0.0.1:{port}: {source}")]
    Io {
        port: u16,
        #[source]
        source: std::io::Error,
    },
}

/// Binds `127.0.0.1:$FUNCTIONS_CUSTOMHANDLER_PORT` (fallback `FUNCTIONS_HTTPWORKER_PORT`).
pub async fn bind_from_env() -> Result<TcpListener, BindError> {
    bind_from_lookup(|k| std::env::var(k).ok()).await
}

/// [`bind_from_env`] with an explicit variable lookup (for tests and embedding).
pub async fn bind_from_lookup(
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<TcpListener, BindError> {
    let (var, value) = [PORT_ENV, LEGACY_PORT_ENV]
        .into_iter()
        .find_map(|var| {
            lookup(var)
                .filter(|v| !v.trim().is_empty())
                .map(|v| (var, v))
        })
        .ok_or(BindError::MissingPort)?;
    let port: u16 = value.trim().parse().map_err(|_| BindError::InvalidPort {
        var,
        value: value.clone(),
    })?;
    TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
        .await
        .map_err(|source| BindError::Io { port, source })
}

/// Serves the protocol on `listener` forever.
pub async fn serve(listener: TcpListener, app: Arc<dyn FunctionApp>) -> std::io::Result<()> {
    serve_with_shutdown(listener, app, std::future::pending()).await
}

/// Serves until `shutdown` completes (in-flight connections are left to finish on their tasks).
pub async fn serve_with_shutdown(
    listener: TcpListener,
    app: Arc<dyn FunctionApp>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            _ = &mut shutdown => return Ok(()),
            a = listener.accept() => a,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Transient (EMFILE, ECONNABORTED…): log, back off a little, keep serving.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| {
                let app = app.clone();
                async move { Ok::<_, Infallible>(route(app, req).await) }
            });
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await
            {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
}

fn json_response(status: StatusCode, body: &Value) -> Response<Full<Bytes>> {
    let mut res = Response::new(Full::new(Bytes::from(body.to_string())));
    *res.status_mut() = status;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json; charset=utf-8"),
    );
    res
}

fn too_large() -> Response<Full<Bytes>> {
    json_response(
        StatusCode::PAYLOAD_TOO_LARGE,
        &json!({"error": format!("the invocation body is larger than {MAX_ENVELOPE_BYTES} bytes")}),
    )
}

fn header_string(req: &Request<Incoming>, name: &str) -> Option<String> {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

async fn route(app: Arc<dyn FunctionApp>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    match *req.method() {
        // Readiness: the host polls `/`; answer any GET/HEAD immediately.
        Method::GET | Method::HEAD => json_response(StatusCode::OK, &json!({"status": "ready"})),
        Method::POST => invoke(app, req).await,
        _ => {
            let mut res = json_response(
                StatusCode::METHOD_NOT_ALLOWED,
                &json!({"error": "method not allowed: the host invokes functions with POST /{FunctionName}"}),
            );
            res.headers_mut().insert(
                header::ALLOW,
                header::HeaderValue::from_static("GET, HEAD, POST"),
            );
            res
        }
    }
}

async fn invoke(app: Arc<dyn FunctionApp>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let function = match resolve_function(app.as_ref(), req.uri().path()) {
        Ok(f) => f,
        Err(reply) => return *reply,
    };
    let invocation_id = header_string(&req, INVOCATION_ID_HEADER);
    let host_version = header_string(&req, HOST_VERSION_HEADER);
    let request = match read_envelope(req, &function, invocation_id.as_deref()).await {
        Ok(r) => r,
        Err(reply) => return *reply,
    };
    let invocation = Invocation {
        request,
        invocation_id,
        host_version,
        logs: LogSink::new(),
    };
    run_invocation(app, function, invocation).await
}

/// An early answer (404, 413, 400), boxed so the happy path stays small.
type Refusal = Box<Response<Full<Bytes>>>;

/// The function the host asked for (`POST /{FunctionName}`, case-insensitive), or a 404 that lists
/// the known ones.
fn resolve_function(app: &dyn FunctionApp, path: &str) -> Result<String, Refusal> {
    let requested = path.trim_matches('/');
    let known = app.function_names();
    let found = known.iter().find(|n| n.eq_ignore_ascii_case(requested));
    found.cloned().ok_or_else(|| {
        Box::new(json_response(
            StatusCode::NOT_FOUND,
            &json!({
                "error": format!("unknown function {:?}", current_masker()(requested)),
                "knownFunctions": known,
            }),
        ))
    })
}

/// Reads the `{Data, Metadata}` envelope, at most [`MAX_ENVELOPE_BYTES`]; 413 beyond, 400 when it is
/// not an envelope (the message masked).
async fn read_envelope(
    req: Request<Incoming>,
    function: &str,
    invocation_id: Option<&str>,
) -> Result<InvokeRequest, Refusal> {
    let masker = current_masker();
    let declared = header_string(&req, "content-length").and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_ENVELOPE_BYTES as u64) {
        return Err(Box::new(too_large()));
    }
    let collected = Limited::new(req.into_body(), MAX_ENVELOPE_BYTES)
        .collect()
        .await;
    let body = match collected {
        Ok(b) => b.to_bytes(),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            return Err(Box::new(too_large()))
        }
        Err(e) => {
            let error = format!(
                "cannot read the invocation body: {}",
                masker(&e.to_string())
            );
            return Err(Box::new(json_response(
                StatusCode::BAD_REQUEST,
                &json!({ "error": error }),
            )));
        }
    };
    serde_json::from_slice(&body).map_err(|e| {
        let reason = masker(&e.to_string());
        tracing::warn!(function = %function, invocation_id = invocation_id.unwrap_or("-"),
            error = %reason, "invalid invocation envelope");
        let error = format!(
            "invalid invocation envelope (expected {{\"Data\":{{…}},\"Metadata\":{{…}}}}): {reason}"
        );
        Box::new(json_response(
            StatusCode::BAD_REQUEST,
            &json!({ "error": error }),
        ))
    })
}

/// Runs the function in its own task, inside the invocation span, so its tracing events land in its
/// `Logs`; a panic or a cancellation becomes a 500 that still carries the logs.
async fn run_invocation(
    app: Arc<dyn FunctionApp>,
    function: String,
    invocation: Invocation,
) -> Response<Full<Bytes>> {
    let masker = current_masker();
    let sink = invocation.logs.clone();
    let registration = SinkRegistration::new(&sink);
    let span = tracing::info_span!(
        INVOCATION_SPAN,
        invocation_id = invocation.invocation_id.as_deref().unwrap_or("-"),
        function = %function,
        log_slot = registration.slot,
    );
    let started = Instant::now();
    let task = {
        let (app, function) = (app.clone(), function.clone());
        tokio::spawn(
            async move { app.invoke(&function, invocation).await }.instrument(span.clone()),
        )
    };
    let outcome = task.await;
    drop(registration);
    let mut logs = sink.take();
    let mut response = match outcome {
        Ok(response) => response,
        Err(e) => {
            let what = if e.is_panic() {
                "panicked"
            } else {
                "was cancelled"
            };
            span.in_scope(|| tracing::error!(function = %function, "function {what}"));
            return json_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                &json!({"error": format!("function {function} {what}"), "Logs": logs}),
            );
        }
    };
    logs.extend(response.logs.iter().map(|l| masker(l)));
    response.logs = logs;
    let elapsed_ms = started.elapsed().as_millis() as u64;
    span.in_scope(|| tracing::debug!(elapsed_ms, "invocation completed"));
    match serde_json::to_value(&response) {
        Ok(v) => json_response(StatusCode::OK, &v),
        Err(e) => json_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            &json!({"error": format!("cannot serialize the response: {e}")}),
        ),
    }
}
