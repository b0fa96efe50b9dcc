//! Lifecycle Workflows `taskProcessingResult: resume`
//! (https://learn.microsoft.com/graph/api/identitygovernance-taskprocessingresult-resume): 204 on
//! success; callers in the custom task extension's `authorizedApps` need no permission, anyone
//! else needs the `LifecycleWorkflows.ReadWrite.All` application role.
//!
//! A second resume of the same result is NOT DOCUMENTED by Microsoft; the sandbox answers
//! `SandboxOptions::second_resume_status` (default 400 `BadRequest`).

use http::StatusCode;
use serde_json::Value;

use crate::graph::{DENIED, LCW_APP_ROLE};
use crate::http::{SandboxRequest, SandboxResponse};
use crate::state::{graph_error, Ctx, ResumeRecord, State};

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
        return graph_error(
            StatusCode::FORBIDDEN,
            "Authorization_RequestDenied",
            DENIED,
            ctx,
        );
    }
    let key = (wid.to_string(), tid.to_string(), rid.to_string());
    let Some(previous) = g.task_results.get(&key).map(Vec::len) else {
        return graph_error(
            StatusCode::NOT_FOUND,
            "ResourceNotFound",
            &format!("The taskProcessingResult '{rid}' of task '{tid}' in workflow '{wid}' was not found."),
            ctx,
        );
    };
    let body: Value = match serde_json::from_slice(&req.body) {
        Ok(v @ Value::Object(_)) => v,
        _ => {
            return graph_error(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                "Invalid request body.",
                ctx,
            )
        }
    };
    let data = body.get("data");
    // operationStatus ∈ completed | failed | unknownFutureValue
    // (https://learn.microsoft.com/graph/api/resources/identitygovernance-customtaskextensioncallbackdata).
    let Some(status) = data
        .and_then(|d| d.get("operationStatus"))
        .and_then(Value::as_str)
        .map(str::to_string)
    else {
        return graph_error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "data.operationStatus is required.",
            ctx,
        );
    };
    if !["completed", "failed"]
        .iter()
        .any(|s| s.eq_ignore_ascii_case(&status))
    {
        return graph_error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            &format!("Invalid value '{status}' for data.operationStatus."),
            ctx,
        );
    }
    if previous > 0 {
        let st = StatusCode::from_u16(g.second_resume_status).unwrap_or(StatusCode::BAD_REQUEST);
        if st != StatusCode::NO_CONTENT {
            let code = if st == StatusCode::CONFLICT {
                "Conflict"
            } else {
                "BadRequest"
            };
            return graph_error(
                st,
                code,
                &format!("The taskProcessingResult '{rid}' has already been resumed."),
                ctx,
            );
        }
    }
    let status_reasons = data
        .and_then(|d| d.get("statusReasons"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        });
    let rec = ResumeRecord {
        workflow_id: key.0.clone(),
        task_id: key.1.clone(),
        task_processing_result_id: key.2.clone(),
        operation_status: status,
        status_reasons,
        source: body
            .get("source")
            .and_then(Value::as_str)
            .map(str::to_string),
        event_type: body.get("type").and_then(Value::as_str).map(str::to_string),
        caller_app_id: app,
        version: version.to_string(),
        body: body.clone(),
    };
    if let Some(v) = g.task_results.get_mut(&key) {
        v.push(rec);
    }
    g.counters.writes += 1;
    SandboxResponse::empty(StatusCode::NO_CONTENT)
}
