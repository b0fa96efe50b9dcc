//! The one error every job returns to its adapter: what kind of failure it is (so that the adapter can
//! choose between "try again" and "fix something"), which setting or field to fix when there is one,
//! and a message with personal emails masked. Each adapter maps it once: the Functions and Function URL
//! adapters to an HTTP status (503 with `Retry-After` when transient), Lambda to a `Diagnostic`, the
//! command line to an exit code.

use std::fmt;

use entra_graph::{GraphError, GraphErrorKind};

use crate::config::ConfigError;
use crate::handlers::audit::AuditError;
use crate::handlers::backfill::BackfillError;
use crate::handlers::enrich::EnrichError;
use crate::handlers::rollback::RollbackError;
use crate::handlers::watch::WatchError;

/// What kind of failure an [`AppError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ErrorKind {
    /// A dependency was down, slow or throttling, or a time budget ran out: the same call may succeed
    /// later, with nothing changed.
    Transient,
    /// A setting is missing or wrong ([`AppError::setting`] names it): nothing succeeds until it is
    /// fixed.
    Settings,
    /// The request, event or argument is not acceptable ([`AppError::setting`] names the field).
    Input,
    /// Anything else that will not go away by itself (a refused permission, a corrupt audit log).
    Permanent,
}

impl ErrorKind {
    /// The stable name adapters show (Lambda's `errorType`, the health answer).
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::Transient => "Transient",
            ErrorKind::Settings => "Misconfigured",
            ErrorKind::Input => "InvalidInput",
            ErrorKind::Permanent => "Failed",
        }
    }
}

/// Why a job, or the app's start, failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppError {
    kind: ErrorKind,
    setting: Option<&'static str>,
    message: String,
}

impl AppError {
    /// An error of `kind`; personal emails in `message` are masked here, once.
    pub fn new(kind: ErrorKind, message: impl AsRef<str>) -> Self {
        Self {
            kind,
            setting: None,
            message: entra_core::pii::mask_emails_in(message.as_ref()),
        }
    }

    /// Names the setting (or request field) to fix.
    pub fn with_setting(mut self, setting: &'static str) -> Self {
        self.setting = Some(setting);
        self
    }

    /// Prefixes the message with what was being done, e.g. `"backfill"`.
    pub fn context(mut self, what: &str) -> Self {
        self.message = format!("{what}: {}", self.message);
        self
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    pub fn is_transient(&self) -> bool {
        self.kind == ErrorKind::Transient
    }

    /// The setting or field to fix, when there is one.
    pub fn setting(&self) -> Option<&'static str> {
        self.setting
    }

    /// The message (masked), without the setting.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The first line of the message, for health answers and one-line logs.
    pub fn summary(&self) -> &str {
        self.message.lines().next().unwrap_or_default()
    }
}

impl fmt::Display for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        match self.setting {
            Some(s) if !self.message.contains(s) => write!(f, " (setting: {s})"),
            _ => Ok(()),
        }
    }
}

impl std::error::Error for AppError {}

impl From<ConfigError> for AppError {
    fn from(e: ConfigError) -> Self {
        let setting = e.problems.first().map(|p| p.setting);
        let error = AppError::new(ErrorKind::Settings, e.to_string().trim_end());
        match setting {
            Some(s) => error.with_setting(s),
            None => error,
        }
    }
}

impl From<GraphError> for AppError {
    fn from(e: GraphError) -> Self {
        let kind = graph_kind(&e);
        let error = AppError::new(kind, e.to_string());
        match e.kind() {
            GraphErrorKind::Unauthorized | GraphErrorKind::Credential => {
                error.with_setting("ENRICH_CREDENTIAL")
            }
            GraphErrorKind::KeyVault if kind != ErrorKind::Transient => {
                error.with_setting("ENRICH_CLIENT_SECRET_NAME")
            }
            _ => error,
        }
    }
}

/// Transient when Graph (or Key Vault, or the token endpoint) may answer later; a refused token, a
/// missing secret or a forbidden vault is a setting to fix.
fn graph_kind(e: &GraphError) -> ErrorKind {
    if e.is_transient() {
        return ErrorKind::Transient;
    }
    match e.kind() {
        GraphErrorKind::KeyVault | GraphErrorKind::Credential => match e.status() {
            Some(401 | 403 | 404) => ErrorKind::Settings,
            Some(400) => ErrorKind::Settings,
            // No answer, or the service failed: the vault or token endpoint was unreachable.
            None | Some(408 | 429 | 500..=599) => ErrorKind::Transient,
            Some(_) => ErrorKind::Permanent,
        },
        GraphErrorKind::Unauthorized | GraphErrorKind::Forbidden => ErrorKind::Settings,
        GraphErrorKind::InvalidRequest(_) => ErrorKind::Input,
        _ => ErrorKind::Permanent,
    }
}

impl From<entra_state::StateError> for AppError {
    fn from(e: entra_state::StateError) -> Self {
        use entra_state::StateError as S;
        let kind = match &e {
            S::Config(_) => ErrorKind::Settings,
            S::InvalidKey { .. } | S::InvalidLogLine { .. } => ErrorKind::Permanent,
            _ => ErrorKind::Transient,
        };
        let error = AppError::new(kind, format!("state store: {e}"));
        if kind == ErrorKind::Settings {
            error.with_setting("ENRICH_STATE_BLOB_URL")
        } else {
            error
        }
    }
}

/// Transient when Workday may answer later; a refusal names the setting to fix.
impl From<entra_workday::WorkdayError> for AppError {
    fn from(e: entra_workday::WorkdayError) -> Self {
        use entra_workday::WorkdayErrorKind as W;
        let kind = match e.kind {
            W::Transient => ErrorKind::Transient,
            W::Auth | W::NotFound | W::Refused => ErrorKind::Settings,
            W::Secret => match e.status {
                None | Some(408 | 429 | 500..=599) => ErrorKind::Transient,
                Some(_) => ErrorKind::Settings,
            },
            W::BadReport => ErrorKind::Permanent,
        };
        let error = AppError::new(kind, e.to_string());
        match e.setting {
            Some(setting) => error.with_setting(setting),
            None => error,
        }
    }
}

impl From<WatchError> for AppError {
    fn from(e: WatchError) -> Self {
        match e {
            WatchError::Graph(g) => AppError::from(g).context("Graph delta query"),
            WatchError::State(s) => s.into(),
            other => AppError::new(kind_of(other.is_transient()), other.to_string()),
        }
    }
}

impl From<BackfillError> for AppError {
    fn from(e: BackfillError) -> Self {
        match e {
            BackfillError::Graph(g) => AppError::from(g).context("listing users from Graph"),
            BackfillError::State(s) => s.into(),
            BackfillError::Audit(a) => a.into(),
            BackfillError::Source(s) => {
                AppError::new(ErrorKind::Input, s.to_string()).with_setting("--source")
            }
            BackfillError::Workday(w) => AppError::from(w).context("reading the Workday report"),
            other @ (BackfillError::Conflict | BackfillError::Deadline) => {
                AppError::new(ErrorKind::Transient, other.to_string())
            }
        }
    }
}

impl From<EnrichError> for AppError {
    fn from(e: EnrichError) -> Self {
        match e {
            EnrichError::Graph(g) => AppError::from(g).context("reading the user from Graph"),
            EnrichError::State(s) => s.into(),
            EnrichError::Workday(w) => AppError::from(w).context("reading Workday"),
            EnrichError::NotFound => {
                AppError::new(ErrorKind::Input, e.to_string()).with_setting("--user-id")
            }
            EnrichError::NoEmployee(_) => {
                AppError::new(ErrorKind::Input, e.to_string()).with_setting("--employee-id")
            }
            other => AppError::new(ErrorKind::Permanent, other.to_string()),
        }
    }
}

impl From<AuditError> for AppError {
    fn from(e: AuditError) -> Self {
        match e {
            AuditError::Store(s) => s.into(),
            corrupt @ AuditError::Corrupt { .. } => {
                AppError::new(ErrorKind::Permanent, corrupt.to_string())
            }
        }
    }
}

impl From<RollbackError> for AppError {
    fn from(e: RollbackError) -> Self {
        match e {
            RollbackError::Audit(a) => a.into(),
            RollbackError::EmptyRun(_) => {
                AppError::new(ErrorKind::Input, e.to_string()).with_setting("--run")
            }
        }
    }
}

fn kind_of(transient: bool) -> ErrorKind {
    if transient {
        ErrorKind::Transient
    } else {
        ErrorKind::Permanent
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SettingProblem;

    #[test]
    fn a_settings_error_names_the_first_setting_and_masks_emails() {
        let e: AppError = ConfigError {
            problems: vec![SettingProblem {
                setting: "ENRICH_AUDIENCE",
                problem: "jane.doe@example.com is not a URI.".into(),
                fix: "set it.".into(),
            }],
        }
        .into();
        assert_eq!(e.kind(), ErrorKind::Settings);
        assert_eq!(e.setting(), Some("ENRICH_AUDIENCE"));
        assert!(!e.to_string().contains("jane.doe@example.com"), "{e}");
    }

    #[test]
    fn graph_errors_split_into_transient_and_settings() {
        let throttled = GraphError::new(
            GraphErrorKind::Throttled { retry_after: None },
            "GET /users",
        );
        assert!(AppError::from(throttled).is_transient());
        let vault_down = GraphError::new(GraphErrorKind::KeyVault, "Key Vault get secret");
        assert!(AppError::from(vault_down).is_transient());
        let vault_forbidden =
            GraphError::new(GraphErrorKind::KeyVault, "Key Vault get secret").with_status(403);
        let e = AppError::from(vault_forbidden);
        assert_eq!(e.kind(), ErrorKind::Settings);
        assert_eq!(e.setting(), Some("ENRICH_CLIENT_SECRET_NAME"));
        let denied = GraphError::new(GraphErrorKind::Forbidden, "PATCH /users/{id}");
        assert_eq!(AppError::from(denied).kind(), ErrorKind::Settings);
    }

    #[test]
    fn backfill_conflicts_and_deadlines_are_transient_and_a_bad_source_is_input() {
        assert!(AppError::from(BackfillError::Conflict).is_transient());
        assert!(AppError::from(BackfillError::Deadline).is_transient());
        let e = AppError::from(BackfillError::Source(crate::sources::SourceError::Empty {
            path: "hr.csv".into(),
        }));
        assert_eq!(
            (e.kind(), e.setting()),
            (ErrorKind::Input, Some("--source"))
        );
    }
}
