use std::fmt;
use std::path::PathBuf;

/// What is wrong with a key or prefix (see [`crate::validate_key`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyProblem {
    /// The key is the empty string.
    Empty,
    /// The key is longer than [`crate::MAX_KEY_LEN`] bytes.
    TooLong,
    /// The key starts with `/` (keys are relative).
    LeadingSlash,
    /// The key ends with `/` (it would name a folder, not a document).
    TrailingSlash,
    /// Two `/` in a row.
    EmptySegment,
    /// A segment is `.` or `..`.
    DotSegment,
    /// A segment starts with `.` (reserved for the store's own temp and lock files).
    HiddenSegment,
    /// A byte outside ASCII `[A-Za-z0-9._/-]`.
    InvalidChar(char),
}

impl fmt::Display for KeyProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyProblem::Empty => f.write_str("the key is empty"),
            KeyProblem::TooLong => write!(f, "the key is longer than {} bytes", crate::MAX_KEY_LEN),
            KeyProblem::LeadingSlash => f.write_str("the key starts with '/' (keys are relative)"),
            KeyProblem::TrailingSlash => f.write_str("the key ends with '/'"),
            KeyProblem::EmptySegment => f.write_str("the key contains an empty segment ('//')"),
            KeyProblem::DotSegment => f.write_str("the key contains a '.' or '..' segment"),
            KeyProblem::HiddenSegment => {
                f.write_str("a key segment starts with '.' (reserved for temp and lock files)")
            }
            KeyProblem::InvalidChar(c) => write!(
                f,
                "the key contains {c:?}; only ASCII letters, digits, '.', '_', '-' and '/' are allowed"
            ),
        }
    }
}

/// Errors of a [`crate::StateStore`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// The key (or list prefix) is not acceptable.
    #[error("invalid state key {key:?}: {problem}")]
    InvalidKey { key: String, problem: KeyProblem },

    /// A conditional `put` lost: the document changed, vanished, or (create-only) already exists.
    #[error("write precondition failed for {key:?}: {detail}")]
    Conflict { key: String, detail: String },

    /// An append payload was rejected before writing (it is empty).
    #[error("invalid log line for {key:?}: {reason}")]
    InvalidLogLine { key: String, reason: &'static str },

    /// Local file-system failure (FileStore).
    #[error("state I/O error on {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// Azure Blob Storage failure (BlobStore).
    #[error("blob storage error on {key:?} during {op}: {source}")]
    Blob {
        key: String,
        op: &'static str,
        #[source]
        source: Box<azure_core::Error>,
    },

    /// Missing or malformed configuration (environment variables, URLs).
    #[error("state store configuration: {0}")]
    Config(String),
}

impl StateError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        StateError::Io {
            path: path.into(),
            source,
        }
    }
}
