//! The resume call that tells Lifecycle Workflows the custom task finished.
//!
//! Contract: `POST /identityGovernance/lifecycleWorkflows/workflows/{workflowId}/tasks/{taskId}/taskProcessingResults/{taskProcessingResultId}/resume`
//! with `{ data: customTaskExtensionCallbackData, source, type }` → `204 No Content`
//! (https://learn.microsoft.com/graph/api/identitygovernance-taskprocessingresult-resume;
//! https://learn.microsoft.com/graph/api/resources/identitygovernance-customtaskextensioncallbackdata).
//! Research: `/work/shared/research/lcw-graph.md` §3.1.
//!
//! This module only builds the path and body; the app POSTs them with its Graph client.
//!
//! **`statusReasons` is deliberately not sent.** It belongs to the newer
//! `customTaskExtensionResponseData`
//! (https://learn.microsoft.com/graph/api/resources/identitygovernance-customtaskextensionresponsedata),
//! whereas the v1.0 resume action documents `customTaskExtensionCallbackData`, whose only property
//! is `operationStatus`. Sending an undeclared property risks Graph refusing the resume with 400 —
//! and a refused resume leaves the task to time out and fail, far worse than losing the reasons.
//! Keep the reasons in the app's own answer and audit record; revisit once a tenant test shows
//! v1.0 accepts them.

use serde_json::{json, Value};

use crate::callout::Callout;

/// `source` we report on the resume (a free string: "Identifies the external system").
pub const RESUME_SOURCE: &str = "entra-enrich";
/// `type` we report on the resume (the documented example value).
pub const RESUME_TYPE: &str = "lifecycleEvent";
/// `@odata.type` of the resume `data`. The v1.0 HTTP example omits it (the parameter is declared with
/// this concrete type); the generated SDKs (Kiota models, e.g. msgraph-sdk-go / the Ruby gem's
/// `IdentityGovernanceCustomTaskExtensionCallbackData`) send it with the leading `#`, so that is
/// the form we send.
pub const CALLBACK_DATA_TYPE: &str =
    "#microsoft.graph.identityGovernance.customTaskExtensionCallbackData";

/// `operationStatus` of the resume.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResumeStatus {
    Completed,
    Failed,
}

impl ResumeStatus {
    /// The wire value (`"Completed"` / `"Failed"`, as in the documented examples).
    pub fn as_str(self) -> &'static str {
        match self {
            ResumeStatus::Completed => "Completed",
            ResumeStatus::Failed => "Failed",
        }
    }
}

/// The v1.0 resume path (relative to the Graph root, with the `/v1.0` version segment).
/// The ids were validated by [`crate::parse_callout`] to be `[A-Za-z0-9-]`, so no escaping is needed.
pub fn resume_path(callout: &Callout) -> String {
    format!(
        "/v1.0/identityGovernance/lifecycleWorkflows/workflows/{}/tasks/{}/taskProcessingResults/{}/resume",
        callout.workflow_id(),
        callout.task_id(),
        callout.task_processing_result_id()
    )
}

/// The resume body. `reasons` are **not** put on the wire (see the module docs); they are accepted
/// so that callers hand the status and its reasons over in one place, and so that turning
/// `statusReasons` on later is a change inside this crate only.
pub fn resume_body(status: ResumeStatus, reasons: &[String]) -> Value {
    let _not_sent = reasons;
    json!({
        "data": {
            "@odata.type": CALLBACK_DATA_TYPE,
            "operationStatus": status.as_str(),
        },
        "source": RESUME_SOURCE,
        "type": RESUME_TYPE,
    })
}
