//! `/_sandbox/*`: inspection and mutation routes for people and scripts (no authentication).

use http::{Method, StatusCode};
use serde_json::{json, Value};

use crate::faults::FaultRule;
use crate::http::{SandboxRequest, SandboxResponse};
use crate::state::State;

fn err(status: StatusCode, msg: &str) -> SandboxResponse {
    SandboxResponse::json(status, &json!({"error": msg}))
}

pub(crate) fn handle(state: &State, req: &SandboxRequest) -> SandboxResponse {
    let segs: Vec<&str> = req.path.trim_end_matches('/').split('/').skip(2).collect();
    let m = &req.method;
    match segs.as_slice() {
        ["requests"] if m == Method::GET => {
            let g = state.lock();
            SandboxResponse::json(
                StatusCode::OK,
                &serde_json::to_value(&g.requests).unwrap_or(Value::Null),
            )
        }
        ["counters"] if m == Method::GET => {
            let g = state.lock();
            SandboxResponse::json(
                StatusCode::OK,
                &serde_json::to_value(&g.counters).unwrap_or(Value::Null),
            )
        }
        ["reset-requests"] if m == Method::POST => {
            let mut g = state.lock();
            g.requests.clear();
            g.counters = Default::default();
            SandboxResponse::empty(StatusCode::NO_CONTENT)
        }
        ["users", id] if m == Method::GET => {
            let g = state.lock();
            match g.dir.find(id) {
                Some(u) => SandboxResponse::json(StatusCode::OK, &Value::Object(u.props.clone())),
                None => err(StatusCode::NOT_FOUND, "no such user"),
            }
        }
        ["users"] if m == Method::POST => match serde_json::from_slice::<Value>(&req.body) {
            Ok(Value::Object(u)) => match state.lock().dir.upsert(u) {
                Ok(id) => SandboxResponse::json(StatusCode::OK, &json!({"id": id})),
                Err(e) => err(StatusCode::BAD_REQUEST, &e.to_string()),
            },
            _ => err(StatusCode::BAD_REQUEST, "expected a JSON object"),
        },
        ["faults"] if m == Method::POST => {
            let text = String::from_utf8_lossy(&req.body);
            match FaultRule::parse(text.trim()) {
                Ok(r) => {
                    state.lock().faults.add(r);
                    SandboxResponse::empty(StatusCode::NO_CONTENT)
                }
                Err(e) => err(StatusCode::BAD_REQUEST, &e.to_string()),
            }
        }
        ["expire-delta-tokens"] if m == Method::POST => {
            for t in state.lock().tokens.values_mut() {
                t.expired = true;
            }
            SandboxResponse::empty(StatusCode::NO_CONTENT)
        }
        ["task-processing-results"] if m == Method::POST => {
            let v: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
            let get = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
            match (get("workflowId"), get("taskId"), get("id")) {
                (Some(w), Some(t), Some(r)) => {
                    state.lock().task_results.entry((w, t, r)).or_default();
                    SandboxResponse::empty(StatusCode::NO_CONTENT)
                }
                _ => err(StatusCode::BAD_REQUEST, "expected {workflowId, taskId, id}"),
            }
        }
        ["resumes"] if m == Method::GET => {
            let g = state.lock();
            let all: Vec<_> = g.task_results.values().flatten().cloned().collect();
            SandboxResponse::json(
                StatusCode::OK,
                &serde_json::to_value(all).unwrap_or(Value::Null),
            )
        }
        _ => err(StatusCode::NOT_FOUND, "unknown sandbox route"),
    }
}
