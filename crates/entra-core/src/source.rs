//! The HR side: where the personal email and the country come from.

use crate::index::employee_id_key;
use crate::path::PropertyPath;
use crate::pii::mask_email;
use crate::user::UserRecord;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fmt;

/// The HR values for one worker. Blank strings are treated as missing by the planner.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceValues {
    /// The personal email (Workday `personalEmail`) → `otherMails`.
    pub personal_email: Option<String>,
    /// The country (code or name) → `usageLocation`.
    pub country: Option<String>,
}

impl SourceValues {
    /// Both values at once.
    pub fn new(personal_email: Option<&str>, country: Option<&str>) -> Self {
        Self {
            personal_email: personal_email.map(str::to_string),
            country: country.map(str::to_string),
        }
    }
}

/// Masked: the personal email is PII.
impl fmt::Debug for SourceValues {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SourceValues")
            .field(
                "personal_email",
                &self.personal_email.as_deref().map(mask_email),
            )
            .field("country", &self.country)
            .finish()
    }
}

/// The result of looking up a user's HR values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceLookup<'a> {
    /// Exactly one HR record (always the case for the directory source).
    Found(&'a SourceValues),
    /// No HR record for the employeeId, or the user has no employeeId.
    NotFound,
    /// HR holds this many records for the employeeId (≥ 2): ambiguous, never written.
    Duplicate(usize),
}

/// The "directory" source: HR values already synced (Workday → AD → Cloud Sync) into the user's
/// own attributes, e.g. `onPremisesExtensionAttributes.extensionAttribute1`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceSpec {
    /// Where the personal email is. Default `onPremisesExtensionAttributes.extensionAttribute1`.
    pub other_mails: PropertyPath,
    /// Where the country is, if anywhere. Default none.
    pub usage_location: Option<PropertyPath>,
}

impl Default for SourceSpec {
    fn default() -> Self {
        Self {
            other_mails: PropertyPath::known_nested(
                "onPremisesExtensionAttributes",
                "extensionAttribute1",
            ),
            usage_location: None,
        }
    }
}

impl SourceSpec {
    /// Reads the values from the user (trimmed; blank → `None`). Pass the result to the planner as
    /// `SourceLookup::Found(&values)`.
    pub fn values_from_user(&self, user: &UserRecord) -> SourceValues {
        SourceValues {
            personal_email: user.get_str(&self.other_mails).map(str::to_string),
            country: self
                .usage_location
                .as_ref()
                .and_then(|p| user.get_str(p))
                .map(str::to_string),
        }
    }

    /// The top-level properties to `$select` for this source.
    pub fn properties(&self) -> Vec<String> {
        let mut out = vec![self.other_mails.top_level().to_string()];
        if let Some(p) = &self.usage_location {
            if !out.iter().any(|o| o.eq_ignore_ascii_case(p.top_level())) {
                out.push(p.top_level().to_string());
            }
        }
        out
    }
}

#[derive(Debug, Clone)]
enum HrEntry {
    One(SourceValues),
    Many(usize),
}

/// HR records keyed by employeeId (trimmed, case-insensitive; see
/// [`crate::index::employee_id_key`]). A second record for the same employeeId makes it ambiguous —
/// even when both records hold the same values, as Entra's `DuplicateSourceEntries` does — and the
/// values are dropped. Records with a blank employeeId are counted and ignored.
#[derive(Debug, Clone, Default)]
pub struct HrIndex {
    entries: HashMap<String, HrEntry>,
    blank_ids: usize,
}

impl HrIndex {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds an index from `(employeeId, values)` records (e.g. CSV rows).
    pub fn from_records<S: AsRef<str>>(
        records: impl IntoIterator<Item = (S, SourceValues)>,
    ) -> Self {
        records.into_iter().collect()
    }

    /// Adds one HR record.
    pub fn insert(&mut self, employee_id: &str, values: SourceValues) {
        let Some(key) = employee_id_key(employee_id) else {
            self.blank_ids += 1;
            return;
        };
        match self.entries.get_mut(&key) {
            Some(entry) => {
                let n = match entry {
                    HrEntry::One(_) => 2,
                    HrEntry::Many(n) => n.saturating_add(1),
                };
                *entry = HrEntry::Many(n);
            }
            None => {
                self.entries.insert(key, HrEntry::One(values));
            }
        }
    }

    /// Looks up an employeeId.
    pub fn lookup(&self, employee_id: &str) -> SourceLookup<'_> {
        match employee_id_key(employee_id).and_then(|k| self.entries.get(&k)) {
            Some(HrEntry::One(values)) => SourceLookup::Found(values),
            Some(HrEntry::Many(n)) => SourceLookup::Duplicate(*n),
            None => SourceLookup::NotFound,
        }
    }

    /// Looks up a directory user by its `employeeId`; `NotFound` when it has none.
    pub fn lookup_user(&self, user: &UserRecord) -> SourceLookup<'_> {
        match user.employee_id() {
            Some(id) => self.lookup(id),
            None => SourceLookup::NotFound,
        }
    }

    /// Distinct employeeIds (including duplicated ones).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when no record was added with a non-blank employeeId.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Records ignored because their employeeId was blank.
    pub fn blank_ids(&self) -> usize {
        self.blank_ids
    }

    /// The unambiguous records: matching key and values.
    pub fn records(&self) -> impl Iterator<Item = (&str, &SourceValues)> + '_ {
        self.entries.iter().filter_map(|(k, e)| match e {
            HrEntry::One(v) => Some((k.as_str(), v)),
            HrEntry::Many(_) => None,
        })
    }

    /// The duplicated employeeId keys with their record counts.
    pub fn duplicates(&self) -> impl Iterator<Item = (&str, usize)> + '_ {
        self.entries.iter().filter_map(|(k, e)| match e {
            HrEntry::Many(n) => Some((k.as_str(), *n)),
            HrEntry::One(_) => None,
        })
    }
}

impl<S: AsRef<str>> FromIterator<(S, SourceValues)> for HrIndex {
    fn from_iter<I: IntoIterator<Item = (S, SourceValues)>>(iter: I) -> Self {
        let mut index = Self::new();
        for (id, values) in iter {
            index.insert(id.as_ref(), values);
        }
        index
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn hr_index_lookup_and_duplicates() {
        let index: HrIndex = vec![
            ("E1", SourceValues::new(Some("a@example.com"), Some("DE"))),
            (" e2 ", SourceValues::new(Some("b@example.com"), None)),
            ("E2", SourceValues::new(Some("b@example.com"), None)),
            ("e2", SourceValues::new(Some("c@example.com"), None)),
            ("  ", SourceValues::new(Some("d@example.com"), None)),
        ]
        .into_iter()
        .collect();
        match index.lookup(" e1") {
            SourceLookup::Found(v) => assert_eq!(v.country.as_deref(), Some("DE")),
            other => panic!("{other:?}"),
        }
        assert_eq!(index.lookup("E2"), SourceLookup::Duplicate(3));
        assert_eq!(index.lookup("E3"), SourceLookup::NotFound);
        assert_eq!(index.lookup(""), SourceLookup::NotFound);
        assert_eq!(index.blank_ids(), 1);
        assert_eq!(index.len(), 2);
        assert_eq!(index.duplicates().collect::<Vec<_>>(), vec![("e2", 3)]);
        let user = UserRecord::from_json(json!({"id": "u", "employeeId": "E1"})).unwrap();
        assert!(matches!(index.lookup_user(&user), SourceLookup::Found(_)));
        let user = UserRecord::from_json(json!({"id": "u"})).unwrap();
        assert_eq!(index.lookup_user(&user), SourceLookup::NotFound);
    }

    #[test]
    fn directory_source_reads_extension_attributes() {
        let user = UserRecord::from_json(json!({
            "id": "u",
            "country": " Germany ",
            "onPremisesExtensionAttributes": {"extensionAttribute1": " jane@example.com "}
        }))
        .unwrap();
        let spec = SourceSpec::default();
        let v = spec.values_from_user(&user);
        assert_eq!(v.personal_email.as_deref(), Some("jane@example.com"));
        assert_eq!(v.country, None);
        assert_eq!(spec.properties(), vec!["onPremisesExtensionAttributes"]);
        let spec = SourceSpec {
            usage_location: Some(PropertyPath::parse("country").unwrap()),
            ..SourceSpec::default()
        };
        assert_eq!(
            spec.values_from_user(&user).country.as_deref(),
            Some("Germany")
        );
        assert_eq!(
            spec.properties(),
            vec!["onPremisesExtensionAttributes", "country"]
        );
        let empty = UserRecord::from_json(
            json!({"id": "u", "onPremisesExtensionAttributes": {"extensionAttribute1": "  "}}),
        )
        .unwrap();
        assert_eq!(spec.values_from_user(&empty), SourceValues::default());
    }

    #[test]
    fn debug_masks_the_personal_email() {
        let v = SourceValues::new(Some("jane.doe@example.com"), Some("DE"));
        let text = format!("{v:?} {:?}", SourceLookup::Found(&v));
        assert!(!text.contains("jane.doe"), "{text}");
        assert!(text.contains("j***@e***.com"), "{text}");
    }
}
