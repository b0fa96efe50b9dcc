//! Lifecycle Workflows `taskProcessingResult: resume`
//! (https://learn.microsoft.com/graph/api/identitygovernance-taskprocessingresult-resume): 204 on
//! success; callers in the custom task extension's `authorizedApps` need no permission, anyone
//! else needs the `LifecycleWorkflows.ReadWrite.All` application role.
//!
//! A second resume of the same result is NOT DOCUMENTED by Microsoft; the sandbox answers
//! `SandboxOptions::second_resume_status` (default 400 `BadRequest`).

// Helpers return ready Graph error responses as their `Err`.
#![allow(clippy::result_large_err)]

use http::StatusCode;
use serde_json::Value;

use crate::graph::{DENIED, LCW_APP_ROLE};
use crate::http::{SandboxRequest, SandboxResponse};
use crate::state::{graph_error, Ctx, Inner, ResumeRecord, State};

pub(crate) fn resume(
    state: &State,
    req: &SandboxRequest,
    ctx: &Ctx,
    version: &str,
    wid: &str,
    tid: &str,
    rid: &str,
) -> SandboxResponse {
    let mut g = state.lock();
    g.counters.resumes += 1;
    let app = match authorized_caller(&g, ctx) {
        Ok(app) => app,
        Err(r) => return r,
    };
    let key = (wid.to_string(), tid.to_string(), rid.to_string());
    let Some(previous) = g.task_results.get(&key).map(Vec::len) else {
        return graph_error(
            StatusCode::NOT_FOUND,
            "ResourceNotFound",
            &format!("The taskProcessingResult '{rid}' of task '{tid}' in workflow '{wid}' was not found."),
            ctx,
        );
    };
    let (body, status) = match parse_callback(req, ctx) {
        Ok(parsed) => parsed,
        Err(r) => return r,
    };
    if previous > 0 {
        if let Some(r) = second_resume_refusal(g.second_resume_status, rid, ctx) {
            return r;
        }
    }
    let rec = resume_record(&key, status, body, app, version);
    if let Some(v) = g.task_results.get_mut(&key) {
        v.push(rec);
    }
    g.counters.writes += 1;
    SandboxResponse::empty(StatusCode::NO_CONTENT)
}

/// The caller's app id when it holds the application role or is one of the extension's
/// `authorizedApps`; else 403.
fn authorized_caller(g: &Inner, ctx: &Ctx) -> Result<String, SandboxResponse> {
    let (app, has_role) = match &ctx.caller {
        Some(c) => (c.app_id.clone(), c.has_role(LCW_APP_ROLE)),
        None => (String::new(), false),
    };
    if !has_role
        && !g
            .lcw_authorized_apps
            .iter()
            .any(|a| a.eq_ignore_ascii_case(&app))
    {
        return Err(graph_error(
            StatusCode::FORBIDDEN,
            "Authorization_RequestDenied",
            DENIED,
            ctx,
        ));
    }
    Ok(app)
}

/// The callback body (a JSON object) and its `data.operationStatus`.
fn parse_callback(req: &SandboxRequest, ctx: &Ctx) -> Result<(Value, String), SandboxResponse> {
    let bad = |msg: &str| graph_error(StatusCode::BAD_REQUEST, "BadRequest", msg, ctx);
    let body: Value = match serde_json::from_slice(&req.body) {
        Ok(v @ Value::Object(_)) => v,
        _ => return Err(bad("Invalid request body.")),
    };
    // operationStatus ∈ completed | failed | unknownFutureValue
    // (https://learn.microsoft.com/graph/api/resources/identitygovernance-customtaskextensioncallbackdata).
    let Some(status) = body
        .get("data")
        .and_then(|d| d.get("operationStatus"))
        .and_then(Value::as_str)
        .map(str::to_string)
    else {
        return Err(bad("data.operationStatus is required."));
    };
    if !["completed", "failed"]
        .iter()
        .any(|s| s.eq_ignore_ascii_case(&status))
    {
        return Err(bad(&format!(
            "Invalid value '{status}' for data.operationStatus."
        )));
    }
    Ok((body, status))
}

/// The answer to a second resume of one result (NOT DOCUMENTED, see the module comment): `None`
/// when the configured status is 204, else that status as a Graph error.
fn second_resume_refusal(configured: u16, rid: &str, ctx: &Ctx) -> Option<SandboxResponse> {
    let st = StatusCode::from_u16(configured).unwrap_or(StatusCode::BAD_REQUEST);
    if st == StatusCode::NO_CONTENT {
        return None;
    }
    let code = if st == StatusCode::CONFLICT {
        "Conflict"
    } else {
        "BadRequest"
    };
    Some(graph_error(
        st,
        code,
        &format!("The taskProcessingResult '{rid}' has already been resumed."),
        ctx,
    ))
}

/// The record of an accepted resume call.
fn resume_record(
    key: &(String, String, String),
    operation_status: String,
    body: Value,
    caller_app_id: String,
    version: &str,
) -> ResumeRecord {
    let status_reasons = body
        .get("data")
        .and_then(|d| d.get("statusReasons"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        });
    let text = |name: &str| body.get(name).and_then(Value::as_str).map(str::to_string);
    ResumeRecord {
        workflow_id: key.0.clone(),
        task_id: key.1.clone(),
        task_processing_result_id: key.2.clone(),
        operation_status,
        status_reasons,
        source: text("source"),
        event_type: text("type"),
        caller_app_id,
        version: version.to_string(),
        body,
    }
}
