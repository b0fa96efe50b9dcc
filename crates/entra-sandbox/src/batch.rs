//! `POST /$batch` (https://learn.microsoft.com/graph/json-batching): up to 20 requests, unique ids,
//! `dependsOn` ordering with 424 for failed dependencies, `headers` required with `body`, envelope
//! 200 with `responses[]`; each item goes through the normal dispatch, so it is throttled (and
//! can be 429 with its own `Retry-After`) on its own.

#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use serde_json::{json, Map, Value};

use crate::http::{SandboxRequest, SandboxResponse};
use crate::state::{graph_error, Ctx, State};

/// Maximum number of requests in one batch (json-batching "Known issues / limitations").
pub(crate) const MAX_BATCH: usize = 20;

struct Item {
    id: String,
    method: Method,
    url: String,
    headers: Map<String, Value>,
    body: Option<Value>,
    depends_on: Vec<String>,
}

fn parse_items(body: &[u8], ctx: &Ctx) -> Result<Vec<Item>, SandboxResponse> {
    let bad = |m: &str| graph_error(StatusCode::BAD_REQUEST, "BadRequest", m, ctx);
    let Ok(Value::Object(mut env)) = serde_json::from_slice::<Value>(body) else {
        return Err(bad("Invalid batch payload format."));
    };
    let Some(Value::Array(reqs)) = env.remove("requests") else {
        return Err(bad("Invalid batch payload format: missing 'requests'."));
    };
    if reqs.len() > MAX_BATCH {
        return Err(bad(&format!(
            "The number of batch requests ({}) exceeds the limit of {MAX_BATCH}.",
            reqs.len()
        )));
    }
    let mut items = Vec::with_capacity(reqs.len());
    for r in reqs {
        let Value::Object(mut r) = r else {
            return Err(bad("Each batch request must be an object."));
        };
        let id = match r.remove("id") {
            Some(Value::String(s)) if !s.is_empty() => s,
            Some(Value::Number(n)) => n.to_string(),
            _ => return Err(bad("Each batch request needs an 'id'.")),
        };
        if items.iter().any(|i: &Item| i.id == id) {
            return Err(bad(&format!(
                "Batch request ids must be unique; '{id}' is duplicated."
            )));
        }
        let method = match r
            .remove("method")
            .as_ref()
            .and_then(Value::as_str)
            .map(str::to_ascii_uppercase)
        {
            Some(m) => Method::from_bytes(m.as_bytes()).map_err(|_| bad("Invalid method."))?,
            None => return Err(bad(&format!("Batch request '{id}' has no 'method'."))),
        };
        let url = match r.remove("url") {
            Some(Value::String(u)) => u,
            _ => return Err(bad(&format!("Batch request '{id}' has no 'url'."))),
        };
        let headers = match r.remove("headers") {
            Some(Value::Object(h)) => h,
            None | Some(Value::Null) => Map::new(),
            _ => return Err(bad("'headers' must be an object.")),
        };
        let body = r.remove("body").filter(|b| !b.is_null());
        if body.is_some()
            && !headers
                .keys()
                .any(|k| k.eq_ignore_ascii_case("content-type"))
        {
            // "headers … required when body is specified; must include Content-Type".
            return Err(bad(&format!(
                "Batch request '{id}' has a body but no Content-Type header."
            )));
        }
        let depends_on = match r.remove("dependsOn") {
            Some(Value::Array(a)) => a
                .into_iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
            _ => Vec::new(),
        };
        items.push(Item {
            id,
            method,
            url,
            headers,
            body,
            depends_on,
        });
    }
    for it in &items {
        for d in &it.depends_on {
            if !items.iter().any(|o| &o.id == d) || d == &it.id {
                return Err(bad(&format!(
                    "Batch request '{}' depends on unknown id '{d}'.",
                    it.id
                )));
            }
        }
    }
    Ok(items)
}

pub(crate) fn handle(
    state: &State,
    req: &SandboxRequest,
    ctx: &mut Ctx,
    version: &str,
) -> Option<SandboxResponse> {
    if ctx.batch_item {
        return Some(graph_error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "Nested batch requests are not supported.",
            ctx,
        ));
    }
    let items = match parse_items(&req.body, ctx) {
        Ok(i) => i,
        Err(e) => return Some(e),
    };
    let mut done: HashMap<String, u16> = HashMap::new();
    let mut responses = Vec::with_capacity(items.len());
    let mut delay = Duration::ZERO;
    let mut pending: Vec<&Item> = items.iter().collect();
    while !pending.is_empty() {
        let Some(pos) = pending
            .iter()
            .position(|it| it.depends_on.iter().all(|d| done.contains_key(d)))
        else {
            return Some(graph_error(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                "Circular dependsOn in batch.",
                ctx,
            ));
        };
        let it = pending.remove(pos);
        let failed_dep = it
            .depends_on
            .iter()
            .any(|d| done.get(d).is_some_and(|s| !(200..300).contains(s)));
        if failed_dep {
            done.insert(it.id.clone(), 424);
            responses.push(json!({
                "id": it.id, "status": 424, "headers": {"content-type": "application/json"},
                "body": {"error": {"code": "FailedDependency", "message": "Failed dependency."}},
            }));
            continue;
        }
        let sub = build_sub(req, it, version);
        let d = state.dispatch(sub, true);
        delay += d.delay;
        // A reset fault on an item resets the whole batch connection.
        let resp = d.response?;
        let status = resp.status.as_u16();
        done.insert(it.id.clone(), status);
        let mut hdrs = Map::new();
        for (k, v) in &resp.headers {
            if let Ok(v) = v.to_str() {
                hdrs.insert(k.as_str().to_string(), Value::String(v.to_string()));
            }
        }
        let mut out = Map::new();
        out.insert("id".into(), Value::String(it.id.clone()));
        out.insert("status".into(), json!(status));
        out.insert("headers".into(), Value::Object(hdrs));
        if !resp.body.is_empty() {
            let body = serde_json::from_slice::<Value>(&resp.body).unwrap_or_else(|_| {
                Value::String(String::from_utf8_lossy(&resp.body).into_owned())
            });
            out.insert("body".into(), body);
        }
        responses.push(Value::Object(out));
    }
    ctx.extra_delay += delay;
    Some(SandboxResponse::json(
        StatusCode::OK,
        &json!({ "responses": responses }),
    ))
}

fn build_sub(env: &SandboxRequest, it: &Item, version: &str) -> SandboxRequest {
    let rel = it.url.trim_start_matches('/');
    let rel = rel
        .strip_prefix("v1.0/")
        .or_else(|| rel.strip_prefix("beta/"))
        .unwrap_or(rel);
    let (p, q) = rel.split_once('?').unwrap_or((rel, ""));
    let path = percent_encoding::percent_decode_str(p)
        .decode_utf8_lossy()
        .into_owned();
    let mut headers = HeaderMap::new();
    if let Some(a) = env.headers.get(http::header::AUTHORIZATION) {
        headers.insert(http::header::AUTHORIZATION, a.clone());
    }
    for (k, v) in &it.headers {
        if let (Ok(name), Some(Ok(val))) = (
            HeaderName::from_bytes(k.as_bytes()),
            v.as_str().map(HeaderValue::from_str),
        ) {
            headers.insert(name, val);
        }
    }
    let body = match &it.body {
        None => Bytes::new(),
        Some(Value::String(s)) => Bytes::from(s.clone().into_bytes()),
        Some(v) => Bytes::from(serde_json::to_vec(v).unwrap_or_default()),
    };
    SandboxRequest {
        method: it.method.clone(),
        path: format!("/{version}/{path}"),
        query: q.to_string(),
        headers,
        body,
    }
}
