//! The shared sandbox state and the one plain dispatch function every request goes through
//! (top-level HTTP requests and `$batch` sub-requests alike).

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use serde_json::{json, Value};

use crate::faults::{FaultAction, FaultRule, Faults};
use crate::filter::Expr;
use crate::http::{SandboxRequest, SandboxResponse};
use crate::identity::{Caller, Identity, GRAPH_RESOURCE};
use crate::record::{Counters, RecordedRequest};
use crate::store::Directory;
use crate::throttle::Throttle;

/// Result of dispatching one request: the response (None = reset the connection) and the
/// latency to add before answering.
#[derive(Debug)]
pub(crate) struct Dispatched {
    pub response: Option<SandboxResponse>,
    pub delay: Duration,
}

/// One accepted resume call, as recorded by the sandbox.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ResumeRecord {
    pub workflow_id: String,
    pub task_id: String,
    pub task_processing_result_id: String,
    /// `data.operationStatus` as sent (e.g. `Completed`).
    pub operation_status: String,
    /// `data.statusReasons` when present.
    pub status_reasons: Option<Vec<String>>,
    pub source: Option<String>,
    pub event_type: Option<String>,
    pub caller_app_id: String,
    /// `v1.0` or `beta`.
    pub version: String,
    /// The full request body.
    pub body: Value,
}

#[derive(Debug, Clone)]
pub(crate) struct DeltaCursor {
    pub since: u64,
    pub upto: u64,
    pub select: Option<Vec<String>>,
    pub filter: Option<Expr>,
    pub after: Option<String>,
    pub top: usize,
}

#[derive(Debug, Clone)]
pub(crate) struct TokenEntry {
    pub cursor: DeltaCursor,
    pub issued: Instant,
    pub expired: bool,
}

pub(crate) struct Inner {
    pub dir: Directory,
    pub throttle: Throttle,
    pub faults: Faults,
    pub requests: Vec<RecordedRequest>,
    pub counters: Counters,
    pub record_requests: bool,
    pub record_bodies: bool,
    /// Delta gives updated users whole (every selected property), not only what changed.
    pub full_delta_records: bool,
    pub app_has_privileged_role: bool,
    pub lcw_authorized_apps: Vec<String>,
    pub task_results: HashMap<(String, String, String), Vec<ResumeRecord>>,
    pub tokens: HashMap<String, TokenEntry>,
    pub token_counter: u64,
    pub second_resume_status: u16,
    pub auth_methods_policy: crate::policy::AuthenticationMethodsPolicy,
    /// Each user's email authentication method address, by object id.
    pub email_methods: HashMap<String, String>,
    /// Group id → member user ids (flat).
    pub group_members: HashMap<String, std::collections::HashSet<String>>,
    /// The Workday RaaS report, the ISU password and issued access tokens.
    pub workday: crate::workday::Workday,
}

/// Everything the routes share. `Send + Sync`.
pub(crate) struct State {
    pub(crate) identity: Identity,
    pub(crate) inner: Mutex<Inner>,
    pub(crate) base_url: String,
    pub(crate) time_scale: f64,
}

/// Per-request context used to build Graph error bodies and common headers.
#[derive(Debug, Clone)]
pub(crate) struct Ctx {
    pub request_id: String,
    pub client_request_id: String,
    pub consistency_eventual: bool,
    pub caller: Option<Caller>,
    pub batch_item: bool,
    /// Latency accumulated by `$batch` items.
    pub extra_delay: Duration,
}

pub(crate) fn now_graph_date() -> String {
    let now = time::OffsetDateTime::now_utc();
    let fmt = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    now.format(&fmt).unwrap_or_default()
}

/// Graph's error body `{"error":{"code","message","innerError":{"date","request-id","client-request-id"}}}`
/// (https://learn.microsoft.com/graph/errors).
pub(crate) fn graph_error(
    status: StatusCode,
    code: &str,
    message: &str,
    ctx: &Ctx,
) -> SandboxResponse {
    SandboxResponse::json(
        status,
        &json!({"error": {"code": code, "message": message, "innerError": {
            "date": now_graph_date(),
            "request-id": ctx.request_id,
            "client-request-id": ctx.client_request_id,
        }}}),
    )
}

/// Graph's 403 `Authorization_RequestDenied` when the caller's token holds none of `roles`
/// (application permissions); `None` when it holds one.
pub(crate) fn refuse_without_role(ctx: &Ctx, roles: &[&str]) -> Option<SandboxResponse> {
    let allowed = ctx
        .caller
        .as_ref()
        .is_some_and(|c| roles.iter().any(|r| c.has_role(r)));
    if allowed {
        return None;
    }
    Some(graph_error(
        StatusCode::FORBIDDEN,
        "Authorization_RequestDenied",
        "Insufficient privileges to complete the operation.",
        ctx,
    ))
}

pub(crate) fn set_header(resp: &mut SandboxResponse, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        resp.headers.insert(HeaderName::from_static(name), v);
    }
}

fn header_str<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// Template of a route for counters, e.g. `PATCH /v1.0/users/{id}`.
pub(crate) fn route_template(method: &Method, path: &str) -> String {
    if path.starts_with("/ccx/") {
        return format!("{} {}", method, crate::workday::route_template(path));
    }
    let segs: Vec<&str> = path.split('/').collect();
    let templ: Vec<String> = segs
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let prev = if i > 0 {
                segs.get(i - 1).copied().unwrap_or("")
            } else {
                ""
            };
            match prev {
                "users" if *s != "delta" && *s != "delta()" => "{id}".to_string(),
                "workflows" | "tasks" | "taskProcessingResults" => "{id}".to_string(),
                _ => (*s).to_string(),
            }
        })
        .collect();
    format!("{} {}", method, templ.join("/"))
}

/// The per-request context: request ids (the caller's `client-request-id`, else a new one) and
/// `ConsistencyLevel: eventual`.
fn new_ctx(req: &SandboxRequest, batch_item: bool) -> Ctx {
    let request_id = uuid::Uuid::new_v4().to_string();
    let client_request_id = header_str(&req.headers, "client-request-id")
        .map(str::to_string)
        .unwrap_or_else(|| request_id.clone());
    let consistency_eventual = header_str(&req.headers, "consistencylevel")
        .is_some_and(|v| v.eq_ignore_ascii_case("eventual"));
    Ctx {
        request_id,
        client_request_id,
        consistency_eventual,
        caller: None,
        batch_item,
        extra_delay: Duration::ZERO,
    }
}

/// The Graph error an injected status fault answers with.
fn fault_response(status: u16, retry_after: Option<f64>, ctx: &Ctx) -> SandboxResponse {
    let st = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    let code = match status {
        429 => "TooManyRequests",
        503 => "serviceNotAvailable",
        504 => "gatewayTimeout",
        502 => "badGateway",
        _ => "generalException",
    };
    let mut r = graph_error(st, code, "Injected fault (entra-sandbox).", ctx);
    // A 429 carries Retry-After (https://learn.microsoft.com/graph/throttling).
    let ra = retry_after.or(if status == 429 { Some(1.0) } else { None });
    if let Some(ra) = ra {
        set_header(&mut r, "retry-after", &format_retry_after(ra));
    }
    r
}

/// The headers Graph puts on every response: cost, request ids and diagnostics.
fn stamp_headers(r: &mut SandboxResponse, is_graph: bool, batch_item: bool, ctx: &Ctx) {
    if is_graph && !r.headers.contains_key("x-ms-resource-unit") {
        // Every Graph response reports its cost (https://learn.microsoft.com/graph/throttling-limits).
        set_header(r, "x-ms-resource-unit", "1");
    }
    if is_graph || batch_item {
        set_header(r, "request-id", &ctx.request_id);
        set_header(r, "client-request-id", &ctx.client_request_id);
        set_header(
            r,
            "x-ms-ags-diagnostic",
            r#"{"ServerInfo":{"DataCenter":"Sandbox","Slice":"E","Ring":"0","ScaleUnit":"000","RoleInstance":"entra-sandbox"}}"#,
        );
    }
}

impl State {
    pub(crate) fn new(identity: Identity, inner: Inner, base_url: String, time_scale: f64) -> Self {
        Self {
            identity,
            inner: Mutex::new(inner),
            base_url,
            time_scale,
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The plain dispatch function: one request in, one response out. A fault that resets the
    /// connection yields a 502-free `None` in [`State::dispatch`]; here it becomes an empty 502
    /// (only `$batch` and library callers see this form).
    pub(crate) fn handle(&self, req: SandboxRequest) -> SandboxResponse {
        self.dispatch(req, false)
            .response
            .unwrap_or_else(|| SandboxResponse::empty(StatusCode::BAD_GATEWAY))
    }

    pub(crate) fn dispatch(&self, req: SandboxRequest, batch_item: bool) -> Dispatched {
        let mut ctx = new_ctx(&req, batch_item);
        let route = route_template(&req.method, &req.path);

        if req.path.starts_with("/_sandbox/") || req.path == "/_sandbox" {
            return Dispatched {
                response: Some(crate::inspect::handle(self, &req)),
                delay: Duration::ZERO,
            };
        }

        // Faults first: they emulate the network / the service front door.
        let (mut delay, forced) = self.evaluate_faults(&req, &ctx);
        let is_graph = req.path.starts_with("/v1.0/") || req.path.starts_with("/beta/");
        // Workday RaaS: not Graph (no Graph throttling, headers or error bodies).
        let is_workday = req.path.starts_with("/ccx/");
        let mut response = match forced {
            Some(f) => self.count_fault(f),
            None if is_workday => Some(crate::workday::route(self, &req)),
            None if is_graph => match self.identity.verify_request(&req, GRAPH_RESOURCE) {
                Err(r) => Some(r),
                Ok(caller) => {
                    ctx.caller = Some(caller);
                    crate::graph::route(self, &req, &mut ctx)
                }
            },
            None => Some(
                self.identity
                    .handle(&req, &self.base_url)
                    .unwrap_or_else(|| {
                        graph_error(StatusCode::NOT_FOUND, "NotFound", "No route.", &ctx)
                    }),
            ),
        };
        if let Some(r) = response.as_mut() {
            stamp_headers(r, is_graph, batch_item, &ctx);
        }

        delay += ctx.extra_delay;
        let status = response.as_ref().map(|r| r.status.as_u16()).unwrap_or(0);
        self.record(&req, route, status, batch_item);
        Dispatched { response, delay }
    }

    /// The latency the matching fault rules add, and the answer the first forcing rule gives
    /// (`Some(None)` = reset the connection).
    fn evaluate_faults(
        &self,
        req: &SandboxRequest,
        ctx: &Ctx,
    ) -> (Duration, Option<Option<SandboxResponse>>) {
        let actions = self.lock().faults.evaluate(req.method.as_str(), &req.path);
        let mut delay = Duration::ZERO;
        let mut forced: Option<Option<SandboxResponse>> = None;
        for a in actions {
            match a {
                FaultAction::Latency(d) => delay += d,
                FaultAction::Reset if forced.is_none() => forced = Some(None),
                FaultAction::Status {
                    status,
                    retry_after,
                } if forced.is_none() => {
                    forced = Some(Some(if req.path.starts_with("/ccx/") {
                        crate::workday::fault_response(status, retry_after)
                    } else {
                        fault_response(status, retry_after, ctx)
                    }));
                }
                _ => {}
            }
        }
        (delay, forced)
    }

    /// Counts an injected fault (and a 429 as throttled) and passes it through.
    fn count_fault(&self, f: Option<SandboxResponse>) -> Option<SandboxResponse> {
        let mut g = self.lock();
        g.counters.faults_injected += 1;
        if f.as_ref()
            .is_some_and(|r| r.status == StatusCode::TOO_MANY_REQUESTS)
        {
            g.counters.throttled += 1;
        }
        f
    }

    /// Counts the request per route and, when recording is on, records it.
    fn record(&self, req: &SandboxRequest, route: String, status: u16, batch_item: bool) {
        let mut g = self.lock();
        g.counters.requests += 1;
        *g.counters.per_route.entry(route.clone()).or_insert(0) += 1;
        if !g.record_requests {
            return;
        }
        let body = if g.record_bodies && !req.body.is_empty() {
            Some(String::from_utf8_lossy(&req.body).into_owned())
        } else {
            None
        };
        let headers = req
            .headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        g.requests.push(RecordedRequest {
            method: req.method.to_string(),
            path: req.path.clone(),
            query: req.query.clone(),
            headers,
            body,
            status,
            batch_item,
            route,
        });
    }

    pub(crate) fn new_token(&self, g: &mut Inner, cursor: DeltaCursor) -> String {
        g.token_counter += 1;
        let raw = format!(
            "{}:{}:{}",
            g.token_counter,
            cursor.upto,
            uuid::Uuid::new_v4().simple()
        );
        use base64::Engine;
        let tok = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw.as_bytes());
        g.tokens.insert(
            tok.clone(),
            TokenEntry {
                cursor,
                issued: Instant::now(),
                expired: false,
            },
        );
        tok
    }
}

/// Retry-After in seconds, fractional (Graph's sample shows `2.128`,
/// https://learn.microsoft.com/graph/throttling).
pub(crate) fn format_retry_after(secs: f64) -> String {
    let s = if secs.is_finite() && secs > 0.001 {
        secs
    } else {
        0.001
    };
    let txt = format!("{s:.3}");
    let txt = txt.trim_end_matches('0').trim_end_matches('.');
    txt.to_string()
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn new_inner(
    dir: Directory,
    throttle: Throttle,
    faults: Vec<FaultRule>,
    seed: u64,
    app_has_privileged_role: bool,
    lcw_authorized_apps: Vec<String>,
    record_bodies: bool,
    second_resume_status: u16,
) -> Inner {
    Inner {
        dir,
        throttle,
        faults: Faults::new(seed, faults),
        requests: Vec::new(),
        counters: Counters::default(),
        record_requests: true,
        record_bodies,
        full_delta_records: false,
        app_has_privileged_role,
        lcw_authorized_apps,
        task_results: HashMap::new(),
        tokens: HashMap::new(),
        token_counter: 0,
        second_resume_status,
        auth_methods_policy: Default::default(),
        email_methods: HashMap::new(),
        group_members: HashMap::new(),
        workday: Default::default(),
    }
}

/// Builds a response body from bytes with a JSON content type.
pub(crate) fn json_bytes(status: StatusCode, body: Vec<u8>) -> SandboxResponse {
    let mut headers = HeaderMap::new();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"),
    );
    SandboxResponse {
        status,
        headers,
        body: Bytes::from(body),
    }
}
