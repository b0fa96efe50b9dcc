use crate::{KeyProblem, StateError};

/// Longest accepted key, in bytes (Azure's blob-name limit is 1,024 characters:
/// <https://learn.microsoft.com/rest/api/storageservices/naming-and-referencing-containers--blobs--and-metadata#blob-names>).
/// Keys are stored under an optional prefix, so keep them well below it.
pub const MAX_KEY_LEN: usize = 512;

/// Checks a key: non-empty, at most [`MAX_KEY_LEN`] bytes, ASCII `[A-Za-z0-9._/-]` only,
/// `/`-separated non-empty segments, no leading or trailing `/`, and no segment that starts with
/// `.` (so no `.` / `..` traversal, and no clash with the store's temp and lock files).
pub fn validate_key(key: &str) -> Result<(), StateError> {
    check(key, false).map_err(|problem| StateError::InvalidKey {
        key: key.to_owned(),
        problem,
    })
}

/// Checks a [`crate::StateStore::list`] prefix: like [`validate_key`], but it may be empty and
/// may end with `/`.
pub fn validate_prefix(prefix: &str) -> Result<(), StateError> {
    check(prefix, true).map_err(|problem| StateError::InvalidKey {
        key: prefix.to_owned(),
        problem,
    })
}

fn check(key: &str, is_prefix: bool) -> Result<(), KeyProblem> {
    if key.is_empty() {
        return if is_prefix {
            Ok(())
        } else {
            Err(KeyProblem::Empty)
        };
    }
    if key.len() > MAX_KEY_LEN {
        return Err(KeyProblem::TooLong);
    }
    if let Some(c) = key
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/')))
    {
        return Err(KeyProblem::InvalidChar(c));
    }
    if key.starts_with('/') {
        return Err(KeyProblem::LeadingSlash);
    }
    let body = match key.strip_suffix('/') {
        Some(b) if is_prefix => b,
        Some(_) => return Err(KeyProblem::TrailingSlash),
        None => key,
    };
    for seg in body.split('/') {
        if seg.is_empty() {
            return Err(KeyProblem::EmptySegment);
        }
        if seg == "." || seg == ".." {
            return Err(KeyProblem::DotSegment);
        }
        if seg.starts_with('.') {
            return Err(KeyProblem::HiddenSegment);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_project_keys() {
        for k in [
            "checkpoints/new-hire-watch.json",
            "audit/2026-11-25T03-00-00Z_abc.jsonl",
            "a",
            "A-b_c.d/e",
        ] {
            assert!(validate_key(k).is_ok(), "{k}");
        }
    }

    #[test]
    fn names_the_problem() {
        let cases = [
            ("", KeyProblem::Empty),
            ("/abs", KeyProblem::LeadingSlash),
            ("dir/", KeyProblem::TrailingSlash),
            ("a//b", KeyProblem::EmptySegment),
            ("a/../b", KeyProblem::DotSegment),
            ("..", KeyProblem::DotSegment),
            ("a/./b", KeyProblem::DotSegment),
            ("a/.hidden", KeyProblem::HiddenSegment),
            ("a b", KeyProblem::InvalidChar(' ')),
            ("a\\b", KeyProblem::InvalidChar('\\')),
            ("caf\u{e9}", KeyProblem::InvalidChar('\u{e9}')),
            ("a?b", KeyProblem::InvalidChar('?')),
        ];
        for (k, want) in cases {
            match validate_key(k) {
                Err(StateError::InvalidKey { key, problem }) => {
                    assert_eq!(key, k);
                    assert_eq!(problem, want, "{k:?}");
                }
                other => panic!("{k:?}: expected InvalidKey, got {other:?}"),
            }
        }
        let long = "a".repeat(MAX_KEY_LEN + 1);
        assert!(matches!(
            validate_key(&long),
            Err(StateError::InvalidKey {
                problem: KeyProblem::TooLong,
                ..
            })
        ));
    }

    #[test]
    fn prefixes() {
        assert!(validate_prefix("").is_ok());
        assert!(validate_prefix("audit/").is_ok());
        assert!(validate_prefix("audit/run-").is_ok());
        assert!(validate_prefix("/audit").is_err());
        assert!(validate_prefix("../").is_err());
        assert!(validate_prefix("a//").is_err());
    }

    #[test]
    fn error_message_names_key_and_problem() {
        let msg = validate_key("a/../b")
            .map(|_| ())
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            msg.as_deref(),
            Some("invalid state key \"a/../b\": the key contains a '.' or '..' segment")
        );
    }
}
