//! A Graph user as returned by `GET /users` (the JSON object, kept as-is).

use crate::path::PropertyPath;
use serde_json::{Map, Value};

/// Why a JSON value is not a usable Graph user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserError {
    /// The value is not a JSON object.
    #[error("a Graph user must be a JSON object")]
    NotAnObject,
    /// The object has no non-empty string `id`.
    #[error("a Graph user must have a non-empty string `id`; include `id` in $select")]
    MissingId,
}

/// A Graph user object. Only `id` is required; every other property is optional, because Graph
/// returns only what was `$select`ed.
///
/// Property lookups via [`UserRecord::get`] try the exact name first and then a case-insensitive
/// match (Graph property names are case-insensitive in `$select`).
#[derive(Debug, Clone, PartialEq)]
pub struct UserRecord {
    fields: Map<String, Value>,
}

impl UserRecord {
    /// Wraps a Graph user object. Requires a non-empty string `id`.
    pub fn from_json(value: Value) -> Result<Self, UserError> {
        match value {
            Value::Object(fields) => Self::from_map(fields),
            _ => Err(UserError::NotAnObject),
        }
    }

    /// Wraps an already-parsed object. Requires a non-empty string `id`.
    pub fn from_map(fields: Map<String, Value>) -> Result<Self, UserError> {
        match fields.get("id") {
            Some(Value::String(id)) if !id.trim().is_empty() => Ok(Self { fields }),
            _ => Err(UserError::MissingId),
        }
    }

    /// The object id.
    pub fn id(&self) -> &str {
        match self.fields.get("id") {
            Some(Value::String(id)) => id,
            _ => "",
        }
    }

    /// `employeeId`, trimmed; `None` when missing, null, not a string or blank.
    pub fn employee_id(&self) -> Option<&str> {
        self.str_field("employeeId")
    }

    /// `userPrincipalName`, trimmed, if present.
    pub fn user_principal_name(&self) -> Option<&str> {
        self.str_field("userPrincipalName")
    }

    /// `mail` (the primary SMTP address), trimmed, if present.
    pub fn mail(&self) -> Option<&str> {
        self.str_field("mail")
    }

    /// `onPremisesSyncEnabled`: `Some(true)` for a user synced now; `None` when missing or null.
    pub fn on_premises_sync_enabled(&self) -> Option<bool> {
        self.top("onPremisesSyncEnabled").and_then(Value::as_bool)
    }

    /// The current `otherMails` values (string elements only, as stored). Empty when missing.
    pub fn other_mails(&self) -> Vec<String> {
        match self.top("otherMails") {
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// The current `usageLocation`, trimmed; `None` when missing, null or blank.
    pub fn usage_location(&self) -> Option<&str> {
        self.str_field("usageLocation")
    }

    /// The value at `path`, if every segment exists. Exact names first, then case-insensitive.
    pub fn get(&self, path: &PropertyPath) -> Option<&Value> {
        let mut segments = path.segments().iter();
        let first = segments.next()?;
        let mut current = lookup(&self.fields, first)?;
        for segment in segments {
            match current {
                Value::Object(map) => current = lookup(map, segment)?,
                _ => return None,
            }
        }
        Some(current)
    }

    /// The value at `path` as a trimmed non-empty string.
    pub fn get_str(&self, path: &PropertyPath) -> Option<&str> {
        self.get(path)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
    }

    /// The underlying JSON object.
    pub fn as_map(&self) -> &Map<String, Value> {
        &self.fields
    }

    /// The underlying JSON object (alias of [`UserRecord::as_map`]).
    pub fn as_json(&self) -> &Map<String, Value> {
        &self.fields
    }

    /// Gives back the JSON object.
    pub fn into_json(self) -> Value {
        Value::Object(self.fields)
    }

    fn top(&self, name: &str) -> Option<&Value> {
        lookup(&self.fields, name)
    }

    fn str_field(&self, name: &str) -> Option<&str> {
        self.top(name)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
    }
}

fn lookup<'a>(map: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    map.get(name).or_else(|| {
        map.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn user() -> UserRecord {
        UserRecord::from_json(json!({
            "id": "u1",
            "employeeId": "  E123 ",
            "onPremisesSyncEnabled": true,
            "otherMails": ["a@example.com", 5, "B@example.com"],
            "usageLocation": "DE",
            "onPremisesExtensionAttributes": {"extensionAttribute1": "x@example.org"}
        }))
        .unwrap()
    }

    #[test]
    fn requires_an_object_with_an_id() {
        assert_eq!(
            UserRecord::from_json(json!([])),
            Err(UserError::NotAnObject)
        );
        assert_eq!(UserRecord::from_json(json!({})), Err(UserError::MissingId));
        assert_eq!(
            UserRecord::from_json(json!({"id": 3})),
            Err(UserError::MissingId)
        );
        assert_eq!(
            UserRecord::from_json(json!({"id": " "})),
            Err(UserError::MissingId)
        );
    }

    #[test]
    fn typed_accessors() {
        let u = user();
        assert_eq!(u.id(), "u1");
        assert_eq!(u.employee_id(), Some("E123"));
        assert_eq!(u.on_premises_sync_enabled(), Some(true));
        assert_eq!(u.other_mails(), vec!["a@example.com", "B@example.com"]);
        assert_eq!(u.usage_location(), Some("DE"));
        let empty = UserRecord::from_json(json!({"id": "u2", "employeeId": "  ", "usageLocation": null, "onPremisesSyncEnabled": null})).unwrap();
        assert_eq!(empty.employee_id(), None);
        assert_eq!(empty.usage_location(), None);
        assert_eq!(empty.on_premises_sync_enabled(), None);
        assert!(empty.other_mails().is_empty());
    }

    #[test]
    fn get_walks_paths_case_insensitively() {
        let u = user();
        let p = PropertyPath::parse("onPremisesExtensionAttributes.extensionAttribute1").unwrap();
        assert_eq!(u.get(&p), Some(&json!("x@example.org")));
        let p = PropertyPath::parse("onpremisesextensionattributes.EXTENSIONATTRIBUTE1").unwrap();
        assert_eq!(u.get_str(&p), Some("x@example.org"));
        let p = PropertyPath::parse("employeeId.nested").unwrap();
        assert_eq!(u.get(&p), None);
        let p = PropertyPath::parse("missing").unwrap();
        assert_eq!(u.get(&p), None);
        assert_eq!(u.clone().into_json()["id"], json!("u1"));
    }
}
