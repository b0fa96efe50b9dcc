//! Errors of the sandbox library.

/// Everything that can fail when configuring or starting the sandbox.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("tenant data: {0}")]
    Tenant(String),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
    #[error("identity: {0}")]
    Identity(String),
    #[error("fault rule: {0}")]
    Fault(String),
    #[error("unknown user {0}")]
    UnknownUser(String),
}
