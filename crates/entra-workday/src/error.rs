//! One error for every Workday call, with a coarse kind an adapter can act on: a transient one is
//! retried later (lcw-joiner answers 503, the watch leaves the user to its next tick, the backfill to a
//! later round); the others name the setting to fix. No message carries a secret, a password, a token
//! or a value from a report.

/// What went wrong, coarsely.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkdayErrorKind {
    /// Workday refused the credentials (401) or the report (403).
    Auth,
    /// The report URL names nothing (404).
    NotFound,
    /// A timeout, a refused connection or a 5xx: try again later.
    Transient,
    /// The answer is not a RaaS JSON report.
    BadReport,
    /// A secret could not be read (Key Vault).
    Secret,
    /// Anything else Workday refused (another 4xx).
    Refused,
}

/// A failed Workday call.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct WorkdayError {
    pub kind: WorkdayErrorKind,
    /// The setting to fix, when one is to blame.
    pub setting: Option<&'static str>,
    pub status: Option<u16>,
    message: String,
}

impl WorkdayError {
    pub fn new(kind: WorkdayErrorKind, message: impl Into<String>) -> WorkdayError {
        WorkdayError {
            kind,
            setting: None,
            status: None,
            message: message.into(),
        }
    }

    pub fn with_setting(mut self, setting: &'static str) -> Self {
        self.setting = Some(setting);
        self
    }

    pub fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    /// Worth retrying later, unchanged.
    pub fn is_transient(&self) -> bool {
        self.kind == WorkdayErrorKind::Transient
    }
}

/// `url` with any user name, password and query removed, for messages.
pub fn redact_url(url: &url::Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.set_query(None);
    shown.set_fragment(None);
    shown.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_drops_credentials_and_prompts() {
        let url = url::Url::parse(
            "https://isu:pa55@wd2-impl-services1.workday.com/ccx/service/customreport2/acme/isu/Workers?format=json&Employee_ID=E1#x",
        )
        .expect("url");
        assert_eq!(
            redact_url(&url),
            "https://wd2-impl-services1.workday.com/ccx/service/customreport2/acme/isu/Workers"
        );
    }
}
