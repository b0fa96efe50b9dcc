//! The resume call that tells Lifecycle Workflows the custom task finished.
//!
//! Contract: `POST /identityGovernance/lifecycleWorkflows/workflows/{workflowId}/tasks/{taskId}/taskProcessingResults/{taskProcessingResultId}/resume`
//! with `{ data: customTaskExtensionCallbackData, source, type }` → `204 No Content`
//! (https://learn.microsoft.com/graph/api/identitygovernance-taskprocessingresult-resume;
//! https://learn.microsoft.com/graph/api/resources/identitygovernance-customtaskextensioncallbackdata).
//! Contract: <https://learn.microsoft.com/graph/api/identitygovernance-taskprocessingresult-resume>
//! and <https://learn.microsoft.com/graph/api/resources/identitygovernance-customtaskextensionresponsedata>.
//!
//! This module only builds the path and body; the app POSTs them with its Graph client.
//!
//! **Reasons.** A `Completed` resume carries only `operationStatus` in the documented v1.0
//! `customTaskExtensionCallbackData`. A `Failed` resume with reasons sends them as `statusReasons` in
//! `customTaskExtensionResponseData`
//! (https://learn.microsoft.com/graph/api/resources/identitygovernance-customtaskextensionresponsedata:
//! "the data returned from customTaskExtension callouts", configured in the `data` of a
//! `customExtensionCalloutResponse` — the `{data, source, type}` shape of the resume body), so the
//! admin sees the fix in the workflow history. Whether v1.0 resume accepts that type is NOT
//! DOCUMENTED: the caller must retry with [`resume_body_without_reasons`] when Graph answers 400, so a
//! refused variant never leaves the task to time out.

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

/// `@odata.type` of the resume `data` when it carries `statusReasons`.
pub const RESPONSE_DATA_TYPE: &str =
    "#microsoft.graph.identityGovernance.customTaskExtensionResponseData";

/// The resume body: `Completed` (or a `Failed` without reasons) in the plain documented shape; a
/// `Failed` with reasons adds `statusReasons` (see the module docs).
pub fn resume_body(status: ResumeStatus, reasons: &[String]) -> Value {
    if status == ResumeStatus::Completed || reasons.is_empty() {
        return resume_body_without_reasons(status);
    }
    json!({
        "data": {
            "@odata.type": RESPONSE_DATA_TYPE,
            "operationStatus": status.as_str(),
            "statusReasons": reasons,
        },
        "source": RESUME_SOURCE,
        "type": RESUME_TYPE,
    })
}

/// The plain documented v1.0 body (`customTaskExtensionCallbackData`, `operationStatus` only).
pub fn resume_body_without_reasons(status: ResumeStatus) -> Value {
    json!({
        "data": {
            "@odata.type": CALLBACK_DATA_TYPE,
            "operationStatus": status.as_str(),
        },
        "source": RESUME_SOURCE,
        "type": RESUME_TYPE,
    })
}
