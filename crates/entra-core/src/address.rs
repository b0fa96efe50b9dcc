//! Who already holds an address. An alternate email (`otherMails`) is a password-reset factor: an
//! address that is another account's sign-in name, primary mail or alternate email would let that
//! account's owner reset this one. The engine refuses such a value before it writes
//! ([`crate::plan_user_among`]); no setting relaxes the rule.
//!
//! The book keeps a keyed 64-bit hash of each address and of its holder's object id, never the
//! address itself: about 40 bytes an address, whatever the address. A hash collision can only turn a
//! write into a refusal, never the reverse.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;

use crate::user::UserRecord;

/// Addresses and the users holding them: `userPrincipalName`, `mail` and `otherMails` of every user
/// read, plus (in a backfill) the addresses the run itself plans to give.
#[derive(Debug, Clone, Default)]
pub struct AddressBook {
    hasher: RandomState,
    holders: HashMap<u64, Holder>,
}

#[derive(Debug, Clone, Copy)]
struct Holder {
    /// The first holder's object id (hashed).
    user: u64,
    /// True when a second, different user holds the address too.
    shared: bool,
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
        self.holders
            .entry(key)
            .and_modify(|h| h.shared |= h.user != user)
            .or_insert(Holder {
                user,
                shared: false,
            });
    }

    /// Records the user's sign-in name, primary mail and alternate emails.
    pub fn insert_user(&mut self, user: &UserRecord) {
        let id = user.id().to_string();
        for address in user_addresses(user) {
            self.insert(&id, &address);
        }
    }

    /// True when a user other than `user_id` holds `address`.
    pub fn held_by_other(&self, address: &str, user_id: &str) -> bool {
        let Some(key) = self.key(address) else {
            return false;
        };
        let user = self.hasher.hash_one(user_id);
        self.holders
            .get(&key)
            .is_some_and(|h| h.shared || h.user != user)
    }

    /// Addresses recorded.
    pub fn len(&self) -> usize {
        self.holders.len()
    }

    /// True when no address was recorded.
    pub fn is_empty(&self) -> bool {
        self.holders.is_empty()
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
        // Two holders: taken for each of them.
        book.insert("u2", "jane.private@example.org");
        assert!(book.held_by_other("jane.private@example.org", "u1"));
        assert!(book.held_by_other("jane.private@example.org", "u2"));
        assert_eq!(book.len(), 3);
    }

    #[test]
    fn own_primary_addresses() {
        let u = user("u1", "jane@contoso.com", Some("jane.doe@contoso.com"), &[]);
        assert!(is_own_primary(&u, "JANE@contoso.com "));
        assert!(is_own_primary(&u, "jane.doe@contoso.com"));
        assert!(!is_own_primary(&u, "jane@example.org"));
    }
}
