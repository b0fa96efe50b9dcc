//! Lifecycle Workflows custom task extension: the callout payload, caller token validation, and the
//! resume path and body.
//!
//! Contract: <https://learn.microsoft.com/entra/id-governance/lifecycle-workflow-extensibility>.

pub mod auth;
pub mod callout;
pub mod resume;

pub use auth::{
    AuthFailure, CallerIdentity, CallerValidator, ValidatorConfigError, ValidatorOptions,
    DEFAULT_AUTHORITY_HOST, DEFAULT_LEEWAY, DEFAULT_MIN_REFRESH_INTERVAL, KEY_MAX_AGE,
};
pub use callout::{
    parse_callout, Callout, CalloutError, Manager, Subject, TaskProcessingResultRef, TaskRef,
    WorkflowRef,
};
pub use resume::{
    resume_body, resume_body_without_reasons, resume_path, ResumeStatus, CALLBACK_DATA_TYPE,
    RESPONSE_DATA_TYPE, RESUME_SOURCE, RESUME_TYPE,
};
