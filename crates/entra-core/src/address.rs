//! Who already holds an address. An alternate email (`otherMails`) is a password-reset factor: an
//! address that is another account's sign-in name, primary mail or alternate email would let that
//! account's owner reset this one. The engine refuses such a value before it writes
//! ([`crate::plan_user_among`]); no setting relaxes the rule.
//!
//! The book keeps a keyed 64-bit hash of each address and of its holder's object id, never the
//! address itself: 16 bytes a (address, holder) pair, in one sorted vector, so a 100,000-user backfill
//! spends about 5 MB on it. A hash collision can only turn a write into a refusal, never the reverse.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;

use crate::user::UserRecord;

/// Addresses and the users holding them: `userPrincipalName`, `mail` and `otherMails` of every user
/// read, plus (in a backfill) the addresses the run itself plans to give. Fill it, call
/// [`AddressBook::freeze`], then ask; an unfrozen book still answers, by a linear scan.
#[derive(Debug, Clone, Default)]
pub struct AddressBook {
    hasher: RandomState,
    /// (address hash, holder hash) pairs; sorted and without repeats when `sorted`.
    pairs: Vec<(u64, u64)>,
    sorted: bool,
    /// The address hashes a run plans to write ([`AddressBook::insert_planned`]).
    planned: Vec<u64>,
}

impl AddressBook {
    /// An empty book: nobody holds anything.
    pub fn new() -> Self {
        Self::default()
    }

    fn key(&self, address: &str) -> Option<u64> {
        let a = address.trim();
        (!a.is_empty()).then(|| self.hasher.hash_one(a.to_lowercase()))
    }

    /// Records that `user_id` holds `address` (case-insensitive; blank addresses are ignored).
    pub fn insert(&mut self, user_id: &str, address: &str) {
        let Some(key) = self.key(address) else { return };
        let user = self.hasher.hash_one(user_id);
        if self.pairs.last() != Some(&(key, user)) {
            self.pairs.push((key, user));
            self.sorted = false;
        }
    }

    /// Records the user's sign-in name, primary mail and alternate emails.
    pub fn insert_user(&mut self, user: &UserRecord) {
        let id = user.id().to_string();
        for address in user_addresses(user) {
            self.insert(&id, &address);
        }
    }

    /// Records an address the run plans to give `user_id` (it also counts as held by that user, so
    /// two users planned one address are refused both).
    pub fn insert_planned(&mut self, user_id: &str, address: &str) {
        if let Some(key) = self.key(address) {
            self.planned.push(key);
        }
        self.insert(user_id, address);
    }

    /// Sorts the pairs and drops repeats, for fast lookups; call it once the book is filled.
    pub fn freeze(&mut self) {
        self.pairs.sort_unstable();
        self.pairs.dedup();
        self.pairs.shrink_to_fit();
        self.sorted = true;
    }

    /// [`AddressBook::freeze`], then keeps only the pairs of planned addresses: a backfill asks only
    /// about the addresses it plans to write, and most users' addresses are nobody's planned one, so
    /// this keeps about one pair per planned write. After it, an address that was not planned is
    /// unknown to the book (reported as held by nobody).
    pub fn freeze_to_planned(&mut self) {
        let mut planned = std::mem::take(&mut self.planned);
        planned.sort_unstable();
        planned.dedup();
        self.pairs.retain(|p| planned.binary_search(&p.0).is_ok());
        self.freeze();
    }

    /// True when a user other than `user_id` holds `address`.
    pub fn held_by_other(&self, address: &str, user_id: &str) -> bool {
        let Some(key) = self.key(address) else {
            return false;
        };
        let user = self.hasher.hash_one(user_id);
        let holders: &[(u64, u64)] = if self.sorted {
            let from = self.pairs.partition_point(|p| p.0 < key);
            let to = self.pairs.partition_point(|p| p.0 <= key);
            &self.pairs[from..to]
        } else {
            &self.pairs
        };
        holders.iter().any(|&(k, u)| k == key && u != user)
    }

    /// Distinct (address, holder) pairs recorded (exact once frozen).
    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    /// True when no address was recorded.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }
}

/// The user's own addresses: `userPrincipalName`, `mail` and every `otherMails` value.
pub fn user_addresses(user: &UserRecord) -> Vec<String> {
    let mut out = user.other_mails();
    out.extend(user.user_principal_name().map(str::to_string));
    out.extend(user.mail().map(str::to_string));
    out
}

/// True when `address` is the user's own sign-in name or primary mail (case-insensitive).
pub fn is_own_primary(user: &UserRecord, address: &str) -> bool {
    let a = address.trim();
    [user.user_principal_name(), user.mail()]
        .into_iter()
        .flatten()
        .any(|p| p.eq_ignore_ascii_case(a))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn user(id: &str, upn: &str, mail: Option<&str>, other: &[&str]) -> UserRecord {
        UserRecord::from_json(
            json!({"id": id, "userPrincipalName": upn, "mail": mail, "otherMails": other}),
        )
        .expect("user")
    }

    #[test]
    fn an_address_is_held_by_another_user_case_insensitively() {
        let mut book = AddressBook::new();
        book.insert_user(&user(
            "u1",
            "jane@contoso.com",
            Some("Jane.Doe@contoso.com"),
            &["jane.private@example.org"],
        ));
        assert!(book.held_by_other(" JANE.PRIVATE@example.org", "u2"));
        assert!(book.held_by_other("jane.doe@contoso.com", "u2"));
        assert!(
            !book.held_by_other("jane.private@example.org", "u1"),
            "the holder itself"
        );
        assert!(!book.held_by_other("someone@example.org", "u2"));
        // Two holders: taken for each of them, frozen or not.
        book.insert("u2", "jane.private@example.org");
        book.insert("u2", "jane.private@example.org");
        for frozen in [false, true] {
            if frozen {
                book.freeze();
            }
            assert!(book.held_by_other("jane.private@example.org", "u1"));
            assert!(book.held_by_other("jane.private@example.org", "u2"));
            assert!(!book.held_by_other("jane@contoso.com", "u1"));
            assert!(book.held_by_other("jane@contoso.com", "u2"));
            assert!(!book.held_by_other("nobody@example.org", "u2"));
        }
        assert_eq!(book.len(), 4, "u1: upn, mail, alternate; u2: alternate");
    }

    #[test]
    fn a_book_frozen_to_the_planned_addresses_still_refuses_them() {
        let mut book = AddressBook::new();
        book.insert_user(&user(
            "boss",
            "boss@contoso.com",
            None,
            &["boss.private@example.org"],
        ));
        book.insert_user(&user("jane", "jane@contoso.com", None, &[]));
        book.insert_planned("jane", "BOSS.private@example.org");
        book.insert_planned("joe", "joe.private@example.org");
        book.insert_planned("ann", "shared@example.org");
        book.insert_planned("bob", "shared@example.org");
        book.freeze_to_planned();
        assert!(book.held_by_other("boss.private@example.org", "jane"));
        assert!(!book.held_by_other("joe.private@example.org", "joe"));
        assert!(book.held_by_other("shared@example.org", "ann"));
        assert!(book.held_by_other("shared@example.org", "bob"));
        // Kept: boss's and jane's claim on the planned address, joe's, ann's and bob's.
        assert_eq!(book.len(), 5);
    }

    #[test]
    fn own_primary_addresses() {
        let u = user("u1", "jane@contoso.com", Some("jane.doe@contoso.com"), &[]);
        assert!(is_own_primary(&u, "JANE@contoso.com "));
        assert!(is_own_primary(&u, "jane.doe@contoso.com"));
        assert!(!is_own_primary(&u, "jane@example.org"));
    }
}
