//! Which report column holds a value: a path into a RaaS row.
//!
//! RaaS names each column by the alias chosen in the report definition, and returns a multi-instance
//! field as an array of objects. A path is one or more segments joined by `.`; a segment is a key,
//! optionally followed by `[Key=Value]` to pick, among an array of objects, those whose `Key` equals
//! `Value` (ASCII case-insensitive, after trimming). Examples: `Personal_Email`,
//! `Email_Addresses[Usage=HOME].Email_Address`.
//!
//! A path that reaches more than one value is **ambiguous**, never "the first": for a personal email,
//! the wrong one of two addresses would hand someone else the account's password reset.

use serde_json::Value;

/// A parsed field path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldPath {
    raw: String,
    segments: Vec<Segment>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Segment {
    key: String,
    filter: Option<(String, String)>,
}

/// What a path found in one row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldValue {
    /// Absent, null or blank.
    Missing,
    One(String),
    /// The path reached this many non-blank values.
    Many(usize),
}

impl FieldValue {
    /// The one value, if there is exactly one.
    pub fn one(self) -> Option<String> {
        match self {
            FieldValue::One(v) => Some(v),
            _ => None,
        }
    }
}

/// Why a field path was refused, with its fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("field path {path:?}: {reason}; write it as Key, Key.Sub or Key[Filter=VALUE].Sub (e.g. Email_Addresses[Usage=HOME].Email_Address)")]
pub struct FieldPathError {
    pub path: String,
    pub reason: &'static str,
}

impl FieldPath {
    pub fn parse(raw: &str) -> Result<FieldPath, FieldPathError> {
        let fail = |reason| FieldPathError {
            path: raw.to_string(),
            reason,
        };
        let raw = raw.trim();
        if raw.is_empty() {
            return Err(fail("it is empty"));
        }
        let mut segments = Vec::new();
        for part in split_segments(raw).ok_or_else(|| fail("a bracket is not closed"))? {
            segments.push(parse_segment(part).map_err(fail)?);
        }
        Ok(FieldPath {
            raw: raw.to_string(),
            segments,
        })
    }

    /// A path of one key, as given (not checked).
    pub fn key(name: &str) -> FieldPath {
        FieldPath {
            raw: name.to_string(),
            segments: vec![Segment {
                key: name.to_string(),
                filter: None,
            }],
        }
    }

    /// The path as written.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The top-level key (the report column).
    pub fn column(&self) -> &str {
        self.segments.first().map_or("", |s| s.key.as_str())
    }

    /// The value(s) this path reaches in `row`.
    pub fn extract(&self, row: &Value) -> FieldValue {
        let mut current: Vec<&Value> = vec![row];
        for segment in &self.segments {
            current = current.into_iter().flat_map(|v| step(v, segment)).collect();
        }
        let values: Vec<String> = current
            .into_iter()
            .flat_map(|v| match v {
                Value::Array(items) => items.iter().filter_map(scalar).collect::<Vec<_>>(),
                other => scalar(other).into_iter().collect(),
            })
            .collect();
        match values.len() {
            0 => FieldValue::Missing,
            1 => values
                .into_iter()
                .next()
                .map_or(FieldValue::Missing, FieldValue::One),
            n => FieldValue::Many(n),
        }
    }
}

/// Splits on `.` outside brackets; `None` when a bracket is left open.
fn split_segments(raw: &str) -> Option<Vec<&str>> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0usize, 0usize);
    for (i, c) in raw.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth = depth.checked_sub(1)?,
            '.' if depth == 0 => {
                out.push(&raw[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return None;
    }
    out.push(&raw[start..]);
    Some(out)
}

fn parse_segment(part: &str) -> Result<Segment, &'static str> {
    let (key, filter) = match part.split_once('[') {
        None => (part, None),
        Some((key, rest)) => {
            let inner = rest.strip_suffix(']').ok_or("text follows a ']'")?;
            let (k, v) = inner.split_once('=').ok_or("a filter needs Key=VALUE")?;
            let (k, v) = (k.trim(), v.trim());
            if k.is_empty() || v.is_empty() || v.contains(['[', ']']) {
                return Err("a filter needs Key=VALUE");
            }
            (key, Some((k.to_string(), v.to_string())))
        }
    };
    let key = key.trim();
    if key.is_empty() {
        return Err("a segment has no key");
    }
    if !key
        .chars()
        .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
    {
        return Err("a key holds only letters, digits, '_' and '-'");
    }
    Ok(Segment {
        key: key.to_string(),
        filter,
    })
}

/// One segment applied to one value: a key of an object, or of each object of an array.
fn step<'a>(value: &'a Value, segment: &Segment) -> Vec<&'a Value> {
    let Some(found) = value.get(&segment.key) else {
        return Vec::new();
    };
    let items: Vec<&Value> = match found {
        Value::Array(items) => items.iter().collect(),
        Value::Null => Vec::new(),
        other => vec![other],
    };
    match &segment.filter {
        None if matches!(found, Value::Array(_)) && items.iter().all(|i| i.is_object()) => items,
        None => vec![found],
        Some((k, v)) => items
            .into_iter()
            .filter(|item| {
                item.get(k)
                    .and_then(scalar)
                    .is_some_and(|s| s.eq_ignore_ascii_case(v))
            })
            .collect(),
    }
}

/// A non-blank string or number, trimmed.
fn scalar(v: &Value) -> Option<String> {
    let s = match v {
        Value::String(s) => s.trim().to_string(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    (!s.is_empty()).then_some(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn row() -> Value {
        json!({
            "Employee_ID": " E1 ",
            "Personal_Email": "a@example.org",
            "Blank": "  ",
            "Email_Addresses": [
                {"Usage": "HOME", "Email_Address": "home@example.org"},
                {"Usage": "WORK", "Email_Address": "work@contoso.com"}
            ],
            "Two_Homes": [
                {"Usage": "HOME", "Email_Address": "one@example.org"},
                {"Usage": "home", "Email_Address": "two@example.org"}
            ],
            "Location": {"Country": {"ISO": "GB"}},
            "Number": 1234
        })
    }

    fn get(path: &str) -> FieldValue {
        FieldPath::parse(path).expect("valid path").extract(&row())
    }

    #[test]
    fn plain_nested_and_filtered_paths() {
        assert_eq!(get("Employee_ID"), FieldValue::One("E1".into()));
        assert_eq!(get("Location.Country.ISO"), FieldValue::One("GB".into()));
        assert_eq!(get("Number"), FieldValue::One("1234".into()));
        assert_eq!(
            get("Email_Addresses[Usage=HOME].Email_Address"),
            FieldValue::One("home@example.org".into())
        );
        assert_eq!(
            get("Email_Addresses[ usage = work ].Email_Address"),
            FieldValue::Missing,
            "the filter key is matched exactly"
        );
        assert_eq!(
            get("Email_Addresses[Usage=work].Email_Address"),
            FieldValue::One("work@contoso.com".into())
        );
    }

    #[test]
    fn missing_blank_and_ambiguous() {
        assert_eq!(get("Nope"), FieldValue::Missing);
        assert_eq!(get("Blank"), FieldValue::Missing);
        assert_eq!(
            get("Email_Addresses[Usage=OTHER].Email_Address"),
            FieldValue::Missing
        );
        // Two HOME addresses: never "the first".
        assert_eq!(
            get("Two_Homes[Usage=HOME].Email_Address"),
            FieldValue::Many(2)
        );
        assert_eq!(get("Email_Addresses.Email_Address"), FieldValue::Many(2));
    }

    #[test]
    fn bad_paths_name_the_fix() {
        for bad in [
            "",
            "A..B",
            "A[Usage=HOME",
            "A[Usage].B",
            "A]x",
            "A[=x]",
            "Sp ace",
            "A[U=x]y",
        ] {
            let e = FieldPath::parse(bad).expect_err(bad);
            assert!(e.to_string().contains("Key[Filter=VALUE]"), "{e}");
        }
        assert_eq!(
            FieldPath::parse("Email_Addresses[Usage=HOME].Email_Address")
                .expect("valid")
                .column(),
            "Email_Addresses"
        );
    }
}
