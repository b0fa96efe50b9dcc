//! What happened to one user, in the vocabulary of the Entra provisioning logs
//! (error-code table of <https://learn.microsoft.com/entra/identity/monitoring-health/concept-provisioning-logs>):
//! `EntrySynchronizationSkipped`, `ImportSkipped`, `DuplicateSourceEntries`,
//! `DuplicateTargetEntries`, `MissingValues`, `InsufficientRights` are Entra's codes; `EntryExportUpdate`
//! is Entra's export-step name; `NoChangeRequired`, `InvalidValue` and `Failed` are entra-enrich's.

use crate::pii::mask_emails_in;
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

/// The fix shown when Graph refuses to write a privileged user's `otherMails`.
pub const DENIED_PRIVILEGED_FIX: &str = "grant the app the Privileged Authentication Administrator role (or User Administrator for non-admin targets), or exclude admins from ENRICH_SCOPE";

/// The result for one user. `Serialize` gives `{"code": …, "description": …, <fields>}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The PATCH was (or is to be) sent; `properties` are the Graph names written.
    Updated {
        /// `otherMails` and/or `usageLocation`.
        properties: Vec<&'static str>,
    },
    /// In scope, values valid, and the directory already holds them: nothing to write.
    Unchanged,
    /// Not matched by `ENRICH_SCOPE`: never touched.
    OutOfScope,
    /// No HR record for the user's employeeId, or the user has no employeeId.
    NoMatchingValue,
    /// HR holds the employeeId more than once: ambiguous, not written.
    DuplicateSourceEntries,
    /// Several in-scope directory users share the employeeId: ambiguous, not written.
    DuplicateTargetEntries,
    /// The HR record has no value for the field, and nothing else was written.
    SourceValueMissing {
        /// `otherMails` or `usageLocation`.
        field: &'static str,
    },
    /// The HR value cannot be written (never echoes the value).
    InvalidValue {
        /// `otherMails` or `usageLocation`.
        field: &'static str,
        /// Why, e.g. "contains non-ASCII (accented) characters, …".
        reason: String,
    },
    /// Graph refused the write for lack of privilege (e.g. the target is an administrator).
    Denied {
        /// What the admin should do.
        fix: String,
    },
    /// Another handler (another instance, or lcw-joiner and the watch on the same new hire) was
    /// writing this user at the same moment, or wrote it after this handler read it: left to it, so
    /// the user is written once.
    ClaimedElsewhere {
        /// The other handler: `lcw-joiner`, `new-hire-watch`, `backfill`, `enrich`.
        handler: String,
    },
    /// The write failed.
    Failed {
        /// What went wrong (emails masked).
        reason: String,
        /// True when a retry may succeed (throttling, 5xx, timeouts).
        transient: bool,
    },
}

impl Outcome {
    /// The `Denied` outcome for a privileged target (Graph `Authorization_RequestDenied` on a
    /// sensitive property).
    pub fn denied_privileged() -> Self {
        Outcome::Denied {
            fix: DENIED_PRIVILEGED_FIX.to_string(),
        }
    }

    /// A `Failed` outcome; any email address in `reason` is masked.
    pub fn failed(reason: impl AsRef<str>, transient: bool) -> Self {
        Outcome::Failed {
            reason: mask_emails_in(reason.as_ref()),
            transient,
        }
    }

    /// A stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Outcome::Updated { .. } => "EntryExportUpdate",
            Outcome::Unchanged => "NoChangeRequired",
            Outcome::OutOfScope => "EntrySynchronizationSkipped",
            Outcome::NoMatchingValue => "ImportSkipped",
            Outcome::DuplicateSourceEntries => "DuplicateSourceEntries",
            Outcome::DuplicateTargetEntries => "DuplicateTargetEntries",
            Outcome::SourceValueMissing { .. } => "MissingValues",
            Outcome::InvalidValue { .. } => "InvalidValue",
            Outcome::Denied { .. } => "InsufficientRights",
            Outcome::ClaimedElsewhere { .. } => "ClaimedElsewhere",
            Outcome::Failed { .. } => "Failed",
        }
    }

    /// A one-line explanation for an admin, with the fix where there is one. Never contains a
    /// personal email.
    pub fn describe(&self) -> String {
        match self {
            Outcome::Updated { properties } => format!("updated {}", properties.join(", ")),
            Outcome::Unchanged => "already up to date; nothing written".into(),
            Outcome::OutOfScope => "out of scope (ENRICH_SCOPE); not touched".into(),
            Outcome::NoMatchingValue => "no HR record matches the user's employeeId (or the user has no employeeId); set employeeId in AD or check the HR export".into(),
            Outcome::DuplicateSourceEntries => "HR holds more than one record with this employeeId; fix the HR data so the employeeId is unique".into(),
            Outcome::DuplicateTargetEntries => "more than one in-scope user has this employeeId; make employeeId unique in AD or narrow ENRICH_SCOPE".into(),
            Outcome::SourceValueMissing { field } => format!("the HR record has no value for {field}; fill it in HR"),
            Outcome::InvalidValue { field, reason } => format!("the HR value for {field} {reason}; correct it in HR"),
            Outcome::Denied { fix } => format!("Graph denied the write; {fix}"),
            Outcome::ClaimedElsewhere { handler } => format!("{handler} was writing this user at the same moment; left to it (the next run checks it again)"),
            Outcome::Failed { reason, transient } => {
                if *transient {
                    format!("failed (will retry): {reason}")
                } else {
                    format!("failed: {reason}")
                }
            }
        }
    }

    /// Updated or Unchanged.
    pub fn is_success(&self) -> bool {
        matches!(self, Outcome::Updated { .. } | Outcome::Unchanged)
    }

    /// Deliberately skipped, not an error: out of scope, or left to the handler writing it.
    pub fn is_skipped(&self) -> bool {
        matches!(self, Outcome::OutOfScope | Outcome::ClaimedElsewhere { .. })
    }

    /// Anything that needs an admin's attention or a retry.
    pub fn is_error(&self) -> bool {
        !self.is_success() && !self.is_skipped()
    }
}

impl Serialize for Outcome {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("code", self.code())?;
        map.serialize_entry("description", &self.describe())?;
        match self {
            Outcome::Updated { properties } => map.serialize_entry("properties", properties)?,
            Outcome::SourceValueMissing { field } => map.serialize_entry("field", field)?,
            Outcome::InvalidValue { field, reason } => {
                map.serialize_entry("field", field)?;
                map.serialize_entry("reason", reason)?;
            }
            Outcome::Denied { fix } => map.serialize_entry("fix", fix)?,
            Outcome::ClaimedElsewhere { handler } => map.serialize_entry("handler", handler)?,
            Outcome::Failed { reason, transient } => {
                map.serialize_entry("reason", reason)?;
                map.serialize_entry("transient", transient)?;
            }
            _ => {}
        }
        map.end()
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code(), self.describe())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn all() -> Vec<Outcome> {
        vec![
            Outcome::Updated {
                properties: vec!["otherMails"],
            },
            Outcome::Unchanged,
            Outcome::OutOfScope,
            Outcome::NoMatchingValue,
            Outcome::DuplicateSourceEntries,
            Outcome::DuplicateTargetEntries,
            Outcome::SourceValueMissing {
                field: "otherMails",
            },
            Outcome::InvalidValue {
                field: "usageLocation",
                reason: "is bad".into(),
            },
            Outcome::denied_privileged(),
            Outcome::failed("429 for jane.doe@example.com", true),
            Outcome::ClaimedElsewhere {
                handler: "lcw-joiner".into(),
            },
        ]
    }

    #[test]
    fn codes_are_stable_and_distinct() {
        let codes: Vec<&str> = all().iter().map(Outcome::code).collect();
        assert_eq!(
            codes,
            vec![
                "EntryExportUpdate",
                "NoChangeRequired",
                "EntrySynchronizationSkipped",
                "ImportSkipped",
                "DuplicateSourceEntries",
                "DuplicateTargetEntries",
                "MissingValues",
                "InvalidValue",
                "InsufficientRights",
                "Failed",
                "ClaimedElsewhere"
            ]
        );
    }

    #[test]
    fn classification() {
        let kinds: Vec<(bool, bool, bool)> = all()
            .iter()
            .map(|o| (o.is_success(), o.is_skipped(), o.is_error()))
            .collect();
        assert_eq!(kinds[0], (true, false, false));
        assert_eq!(kinds[1], (true, false, false));
        assert_eq!(kinds[2], (false, true, false));
        assert!(kinds[3..10].iter().all(|k| *k == (false, false, true)));
        assert_eq!(kinds[10], (false, true, false));
    }

    #[test]
    fn serializes_with_code_and_fields_and_masks_emails() {
        let v = serde_json::to_value(Outcome::Updated {
            properties: vec!["otherMails", "usageLocation"],
        })
        .unwrap();
        assert_eq!(v["code"], json!("EntryExportUpdate"));
        assert_eq!(v["properties"], json!(["otherMails", "usageLocation"]));
        let v =
            serde_json::to_value(Outcome::failed("refused jane.doe@example.com", false)).unwrap();
        assert_eq!(v["transient"], json!(false));
        let text = v.to_string();
        assert!(!text.contains("jane.doe"), "{text}");
        let denied = Outcome::denied_privileged().to_string();
        assert!(
            denied.contains("Privileged Authentication Administrator"),
            "{denied}"
        );
        assert!(denied.starts_with("InsufficientRights: "), "{denied}");
    }
}
