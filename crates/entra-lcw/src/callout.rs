//! The custom task extension callout, as the relay (a Consumption Logic App) forwards it verbatim.
//!
//! Contract: `microsoft.graph.customExtensionCalloutRequest { source, type, data }` with
//! `data: microsoft.graph.identityGovernance.customTaskExtensionCalloutData`
//! (https://learn.microsoft.com/graph/api/resources/customextensioncalloutrequest,
//! https://learn.microsoft.com/graph/api/resources/identitygovernance-customtaskextensioncalloutdata);
//! the delivered field list is only documented by Microsoft's Logic App trigger schema
//! (https://learn.microsoft.com/entra/id-governance/configure-logic-app-lifecycle-workflows).
//! Schema: <https://learn.microsoft.com/graph/api/resources/identitygovernance-customtaskextensioncalloutdata?view=graph-rest-beta>
//! and <https://learn.microsoft.com/entra/id-governance/lifecycle-workflow-extensibility>.
//!
//! Parsing is lenient: only the four ids needed to read the subject and to resume are required; every
//! other field is optional and a wrong type on an optional field is ignored, not an error. The
//! subject's email is accepted as `email` (Microsoft's schema) or `mail` (seen in third-party replays),
//! but nothing in this crate depends on it and it is never echoed in errors or `Debug` output.

use serde_json::Value;

/// Hint appended to every error: what to fix.
const FIX: &str = "the relay must forward the custom task extension callout body verbatim";
/// Longest id accepted (GUIDs are 36 characters).
const MAX_ID_LEN: usize = 128;

/// Why a callout body was refused. Messages name the JSON path and the fix, never a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalloutError {
    /// The body is not a JSON object (nor a JSON string holding one).
    #[error("the callout body is not a JSON object (found {found}): {FIX}")]
    NotAnObject { found: &'static str },
    /// A required field is absent, null or empty.
    #[error("{path} is missing: {FIX}")]
    Missing { path: &'static str },
    /// A required id is present but not usable in a Graph URL path.
    #[error("{path} is not an id ({problem}; expected a GUID-like value of A-Z, a-z, 0-9 and '-'): {FIX}")]
    InvalidId {
        path: &'static str,
        problem: &'static str,
    },
}

impl CalloutError {
    /// The JSON path at fault (`"body"` for a body that is not an object).
    pub fn field(&self) -> &'static str {
        match self {
            CalloutError::NotAnObject { .. } => "body",
            CalloutError::Missing { path } | CalloutError::InvalidId { path, .. } => path,
        }
    }
}

/// `data.subject` (a user).
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Subject {
    /// Entra object id — required.
    pub id: String,
    pub display_name: Option<String>,
    /// `email`, or `mail` when only that is sent. Personal data: never log it unmasked.
    pub email: Option<String>,
    pub user_principal_name: Option<String>,
    pub manager: Option<Manager>,
}

impl std::fmt::Debug for Subject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subject")
            .field("id", &self.id)
            .field(
                "display_name",
                &self.display_name.as_ref().map(|_| "<redacted>"),
            )
            .field("email", &self.email.as_ref().map(|_| "<redacted>"))
            .field(
                "user_principal_name",
                &self.user_principal_name.as_ref().map(|_| "<redacted>"),
            )
            .field("manager", &self.manager)
            .finish()
    }
}

/// `data.subject.manager`.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Manager {
    pub id: Option<String>,
    pub display_name: Option<String>,
    pub email: Option<String>,
}

impl std::fmt::Debug for Manager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Manager")
            .field("id", &self.id)
            .field(
                "display_name",
                &self.display_name.as_ref().map(|_| "<redacted>"),
            )
            .field("email", &self.email.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// `data.task`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TaskRef {
    pub id: String,
    pub display_name: Option<String>,
}

/// `data.taskProcessingResult`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TaskProcessingResultRef {
    pub id: String,
    /// As sent (ISO 8601 text); not interpreted.
    pub created_date_time: Option<String>,
}

/// `data.workflow`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WorkflowRef {
    pub id: String,
    pub display_name: Option<String>,
    /// Documented as an integer; a numeric string is accepted too, anything else is `None`.
    pub workflow_version: Option<i64>,
}

/// A validated callout.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Callout {
    /// Envelope `source` (values sent by LCW are not documented).
    pub source: Option<String>,
    /// Envelope `type` (values sent by LCW are not documented).
    pub event_type: Option<String>,
    /// `data.@odata.type`, when sent.
    pub odata_type: Option<String>,
    /// `data.callbackUriPath` (opaque; we resume by ids instead, see [`crate::resume_path`]).
    pub callback_uri_path: Option<String>,
    pub subject: Subject,
    pub task: TaskRef,
    pub task_processing_result: TaskProcessingResultRef,
    pub workflow: WorkflowRef,
}

impl Callout {
    /// `data.subject.id`.
    pub fn subject_id(&self) -> &str {
        &self.subject.id
    }
    /// `data.task.id`.
    pub fn task_id(&self) -> &str {
        &self.task.id
    }
    /// `data.taskProcessingResult.id`.
    pub fn task_processing_result_id(&self) -> &str {
        &self.task_processing_result.id
    }
    /// `data.workflow.id`.
    pub fn workflow_id(&self) -> &str {
        &self.workflow.id
    }
}

fn at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(v, |cur, key| cur.get(key))
}

/// A scalar as text; `None` for null, objects, arrays and blank strings.
fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn required_id(root: &Value, path: &[&str], name: &'static str) -> Result<String, CalloutError> {
    let Some(id) = text(at(root, path)) else {
        return Err(CalloutError::Missing { path: name });
    };
    if id.len() > MAX_ID_LEN {
        return Err(CalloutError::InvalidId {
            path: name,
            problem: "too long",
        });
    }
    if !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Err(CalloutError::InvalidId {
            path: name,
            problem: "contains characters that are not allowed in a URL path segment",
        });
    }
    Ok(id)
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Parses and validates a callout body. A JSON string holding the object (a relay that
/// double-encodes) is accepted too.
pub fn parse_callout(body: &Value) -> Result<Callout, CalloutError> {
    let decoded;
    let root = match body {
        Value::String(s) => {
            decoded = serde_json::from_str::<Value>(s).map_err(|_| CalloutError::NotAnObject {
                found: "a string that is not JSON",
            })?;
            &decoded
        }
        other => other,
    };
    if !root.is_object() {
        return Err(CalloutError::NotAnObject { found: kind(root) });
    }
    if !at(root, &["data"]).is_some_and(Value::is_object) {
        return Err(CalloutError::Missing { path: "data" });
    }
    // Required, in the order a reader of the error would fix them.
    let subject_id = required_id(root, &["data", "subject", "id"], "data.subject.id")?;
    let task_id = required_id(root, &["data", "task", "id"], "data.task.id")?;
    let tpr_id = required_id(
        root,
        &["data", "taskProcessingResult", "id"],
        "data.taskProcessingResult.id",
    )?;
    let workflow_id = required_id(root, &["data", "workflow", "id"], "data.workflow.id")?;

    let data = |p: &[&str]| {
        let mut full = vec!["data"];
        full.extend_from_slice(p);
        text(at(root, &full))
    };
    let manager = at(root, &["data", "subject", "manager"])
        .filter(|m| m.is_object())
        .map(|_| Manager {
            id: data(&["subject", "manager", "id"]),
            display_name: data(&["subject", "manager", "displayName"]),
            email: data(&["subject", "manager", "email"])
                .or_else(|| data(&["subject", "manager", "mail"])),
        });
    let workflow_version = match at(root, &["data", "workflow", "workflowVersion"]) {
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    };

    Ok(Callout {
        source: text(at(root, &["source"])),
        event_type: text(at(root, &["type"])),
        odata_type: data(&["@odata.type"]),
        callback_uri_path: data(&["callbackUriPath"]),
        subject: Subject {
            id: subject_id,
            display_name: data(&["subject", "displayName"]),
            email: data(&["subject", "email"]).or_else(|| data(&["subject", "mail"])),
            user_principal_name: data(&["subject", "userPrincipalName"]),
            manager,
        },
        task: TaskRef {
            id: task_id,
            display_name: data(&["task", "displayName"]),
        },
        task_processing_result: TaskProcessingResultRef {
            id: tpr_id,
            created_date_time: data(&["taskProcessingResult", "createdDateTime"]),
        },
        workflow: WorkflowRef {
            id: workflow_id,
            display_name: data(&["workflow", "displayName"]),
            workflow_version,
        },
    })
}
