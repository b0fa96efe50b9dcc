//! Property paths into a Graph user object: `employeeId`,
//! `onPremisesExtensionAttributes.extensionAttribute1`, …

use serde::{Deserialize, Serialize};
use std::fmt;

/// Longest accepted path, in bytes. Graph property names are short; this only bounds hostile input.
const MAX_PATH_LEN: usize = 256;

/// Why a property path was refused. Echoed text is passed through [`crate::pii::mask_emails_in`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// The path is empty or only whitespace.
    #[error("property path is empty; name a Graph user property such as `employeeId` or `onPremisesExtensionAttributes.extensionAttribute1`")]
    Empty,
    /// The path is longer than 256 bytes.
    #[error("property path is longer than {MAX_PATH_LEN} characters")]
    TooLong,
    /// A segment between dots is empty (`a..b`, `.a`, `a.`).
    #[error("property path `{path}` has an empty segment; separate property names with single dots, e.g. `onPremisesExtensionAttributes.extensionAttribute1`")]
    EmptySegment {
        /// The (masked) path.
        path: String,
    },
    /// A segment is not an identifier `[A-Za-z][A-Za-z0-9_]*`.
    #[error("property path `{path}`: `{segment}` is not a property name (letters, digits and `_`, starting with a letter)")]
    InvalidSegment {
        /// The (masked) path.
        path: String,
        /// The (masked) offending segment.
        segment: String,
    },
}

/// A dot-separated path of Graph property names, e.g. `onPremisesExtensionAttributes.extensionAttribute1`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PropertyPath {
    segments: Vec<String>,
}

impl PropertyPath {
    /// Parses a path: non-empty dot-separated identifiers `[A-Za-z][A-Za-z0-9_]*`. Surrounding
    /// whitespace is ignored.
    pub fn parse(raw: &str) -> Result<Self, PathError> {
        let path = raw.trim();
        if path.is_empty() {
            return Err(PathError::Empty);
        }
        if path.len() > MAX_PATH_LEN {
            return Err(PathError::TooLong);
        }
        let mut segments = Vec::new();
        for segment in path.split('.') {
            if segment.is_empty() {
                return Err(PathError::EmptySegment {
                    path: crate::pii::mask_emails_in(path),
                });
            }
            if !is_identifier(segment) {
                return Err(PathError::InvalidSegment {
                    path: crate::pii::mask_emails_in(path),
                    segment: crate::pii::mask_emails_in(segment),
                });
            }
            segments.push(segment.to_string());
        }
        Ok(Self { segments })
    }

    /// A one-segment path from a known-good identifier (crate-internal constants only).
    pub(crate) fn known(name: &'static str) -> Self {
        Self {
            segments: vec![name.to_string()],
        }
    }

    /// A two-segment path from known-good identifiers (crate-internal constants only).
    pub(crate) fn known_nested(parent: &'static str, child: &'static str) -> Self {
        Self {
            segments: vec![parent.to_string(), child.to_string()],
        }
    }

    /// The top-level Graph property, i.e. what to put in `$select`.
    pub fn top_level(&self) -> &str {
        self.segments.first().map(String::as_str).unwrap_or("")
    }

    /// The segments, top-level first. Never empty.
    pub fn segments(&self) -> &[String] {
        &self.segments
    }
}

fn is_identifier(segment: &str) -> bool {
    let mut chars = segment.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl fmt::Display for PropertyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.segments.join("."))
    }
}

impl std::str::FromStr for PropertyPath {
    type Err = PathError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<String> for PropertyPath {
    type Error = PathError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<PropertyPath> for String {
    fn from(value: PropertyPath) -> Self {
        value.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_simple_and_nested_paths() {
        let p = PropertyPath::parse("employeeId").unwrap();
        assert_eq!(p.top_level(), "employeeId");
        assert_eq!(p.segments().len(), 1);
        let p = PropertyPath::parse(" onPremisesExtensionAttributes.extensionAttribute1 ").unwrap();
        assert_eq!(p.top_level(), "onPremisesExtensionAttributes");
        assert_eq!(
            p.to_string(),
            "onPremisesExtensionAttributes.extensionAttribute1"
        );
        assert_eq!(p.segments()[1], "extensionAttribute1");
    }

    #[test]
    fn refuses_bad_paths_with_a_fix() {
        assert_eq!(PropertyPath::parse("  "), Err(PathError::Empty));
        assert!(matches!(
            PropertyPath::parse("a..b"),
            Err(PathError::EmptySegment { .. })
        ));
        assert!(matches!(
            PropertyPath::parse(".a"),
            Err(PathError::EmptySegment { .. })
        ));
        assert!(matches!(
            PropertyPath::parse("a."),
            Err(PathError::EmptySegment { .. })
        ));
        assert!(matches!(
            PropertyPath::parse("1abc"),
            Err(PathError::InvalidSegment { .. })
        ));
        assert!(matches!(
            PropertyPath::parse("a-b"),
            Err(PathError::InvalidSegment { .. })
        ));
        assert!(matches!(
            PropertyPath::parse("_a"),
            Err(PathError::InvalidSegment { .. })
        ));
        assert_eq!(
            PropertyPath::parse(&"a".repeat(300)),
            Err(PathError::TooLong)
        );
        let msg = PropertyPath::parse("a..b").unwrap_err().to_string();
        assert!(msg.contains("single dots"), "{msg}");
    }

    #[test]
    fn errors_mask_emails() {
        let err = PropertyPath::parse("jane.doe@example.com").unwrap_err();
        let msg = format!("{err} {err:?}");
        assert!(!msg.contains("jane.doe@example.com"), "{msg}");
    }

    #[test]
    fn serde_round_trip() {
        let p = PropertyPath::parse("a.b_1").unwrap();
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(json, "\"a.b_1\"");
        let back: PropertyPath = serde_json::from_str(&json).unwrap();
        assert_eq!(back, p);
        assert!(serde_json::from_str::<PropertyPath>("\"a..b\"").is_err());
    }
}
