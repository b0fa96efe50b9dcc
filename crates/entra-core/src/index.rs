//! Duplicate `employeeId` detection among in-scope directory users (Entra's
//! `DuplicateTargetEntries`): two users with one employeeId make the HR match ambiguous, so neither
//! may be written.

use std::collections::HashMap;

/// The matching key for an employeeId: trimmed and lower-cased; `None` when blank. HR and directory
/// sides use the same key, so `e123` in HR matches `E123 ` in Entra.
pub fn employee_id_key(employee_id: &str) -> Option<String> {
    let trimmed = employee_id.trim();
    if trimmed.is_empty() {
        None
    } else {
        Some(trimmed.to_lowercase())
    }
}

#[derive(Debug, Clone)]
struct Seen {
    /// The first user id seen with this employeeId.
    first_user_id: Box<str>,
    /// How many in-scope users carry it.
    count: u32,
}

/// A streaming index of employeeId → (first user id, count). Feed it every **in-scope** user (one
/// pass over the listing) before planning, then ask [`EmployeeIdIndex::is_duplicate`] per user.
/// One small entry per distinct employeeId (≈100 bytes; ~10 MB for 100k users).
#[derive(Debug, Clone, Default)]
pub struct EmployeeIdIndex {
    seen: HashMap<Box<str>, Seen>,
}

/// One employeeId shared by several directory users.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuplicateEmployeeId<'a> {
    /// The matching key ([`employee_id_key`]).
    pub employee_id: &'a str,
    /// The first user (object id) seen with it.
    pub first_user_id: &'a str,
    /// How many in-scope users carry it (≥ 2).
    pub count: u32,
}

impl EmployeeIdIndex {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that `user_id` carries `employee_id`. Blank employeeIds are ignored. Inserting the
    /// same user id again (e.g. a page fetched twice) does not count as a duplicate when it is the
    /// first one seen. Returns true when the employeeId is now a duplicate.
    pub fn insert(&mut self, employee_id: &str, user_id: &str) -> bool {
        let Some(key) = employee_id_key(employee_id) else {
            return false;
        };
        match self.seen.get_mut(key.as_str()) {
            Some(seen) => {
                if &*seen.first_user_id != user_id {
                    seen.count = seen.count.saturating_add(1);
                }
                seen.count > 1
            }
            None => {
                self.seen.insert(
                    key.into_boxed_str(),
                    Seen {
                        first_user_id: user_id.into(),
                        count: 1,
                    },
                );
                false
            }
        }
    }

    /// True when more than one in-scope user carries this employeeId.
    pub fn is_duplicate(&self, employee_id: &str) -> bool {
        employee_id_key(employee_id)
            .and_then(|key| self.seen.get(key.as_str()))
            .is_some_and(|seen| seen.count > 1)
    }

    /// The first in-scope user carrying the employeeId matching key `key` ([`employee_id_key`]).
    pub fn user_for_key(&self, key: &str) -> Option<&str> {
        self.seen.get(key).map(|s| &*s.first_user_id)
    }

    /// Every duplicated employeeId (in no particular order).
    pub fn duplicates(&self) -> impl Iterator<Item = DuplicateEmployeeId<'_>> + '_ {
        self.seen
            .iter()
            .filter(|(_, seen)| seen.count > 1)
            .map(|(key, seen)| DuplicateEmployeeId {
                employee_id: key,
                first_user_id: &seen.first_user_id,
                count: seen.count,
            })
    }

    /// Number of distinct employeeIds seen.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// True when nothing was inserted.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_duplicates_case_and_space_insensitively() {
        let mut index = EmployeeIdIndex::new();
        assert!(!index.insert("E1", "u1"));
        assert!(!index.insert("E2", "u2"));
        assert!(!index.insert("  ", "u3"));
        assert!(index.insert(" e1 ", "u4"));
        assert!(index.is_duplicate("E1"));
        assert!(!index.is_duplicate("E2"));
        assert!(!index.is_duplicate("E9"));
        assert!(!index.is_duplicate(""));
        assert_eq!(index.len(), 2);
        let dups: Vec<_> = index.duplicates().collect();
        assert_eq!(
            dups,
            vec![DuplicateEmployeeId {
                employee_id: "e1",
                first_user_id: "u1",
                count: 2
            }]
        );
    }

    #[test]
    fn the_same_first_user_twice_is_not_a_duplicate() {
        let mut index = EmployeeIdIndex::new();
        index.insert("E1", "u1");
        assert!(!index.insert("E1", "u1"));
        assert!(!index.is_duplicate("E1"));
    }
}
