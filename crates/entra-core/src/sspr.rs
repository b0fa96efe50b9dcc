//! The SSPR "Authentication email" (the email authentication method): which address to write, and
//! when an existing one must be left alone.
//!
//! Rule: an existing method address is **ours** when its fingerprint is the one we recorded when we
//! wrote it. Any other address was registered by the user (or set by an admin), and is replaced only
//! when the operator says so (`ENRICH_SSPR_OVERWRITE_REGISTERED=true`): it is a factor the user chose.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::AlternateEmail;

/// Where the HR personal email goes (`ENRICH_SSPR_EMAIL_TARGET`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub enum SsprEmailTarget {
    /// `otherMails` only (the "Alternate email"): least privilege, today's behaviour.
    #[default]
    OtherMails,
    /// The email authentication method only.
    AuthenticationMethod,
    /// Both.
    Both,
}

impl SsprEmailTarget {
    /// Parses a setting value (case-insensitive).
    pub fn parse(raw: &str) -> Option<Self> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "othermails" => Some(Self::OtherMails),
            "authenticationmethod" => Some(Self::AuthenticationMethod),
            "both" => Some(Self::Both),
            _ => None,
        }
    }
    /// True when `otherMails` is written.
    pub fn writes_other_mails(self) -> bool {
        !matches!(self, Self::AuthenticationMethod)
    }
    /// True when the email authentication method is written.
    pub fn writes_method(self) -> bool {
        !matches!(self, Self::OtherMails)
    }
}

/// A fingerprint of an address (SHA-256 of its trimmed, lower-cased form, hex), kept instead of the
/// address itself to recognise later that an existing method is the one we wrote.
pub fn address_fingerprint(address: &str) -> String {
    let digest = Sha256::digest(address.trim().to_ascii_lowercase().as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// What to do with a user's email method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EmailMethodPlan {
    /// It already holds the address.
    Unchanged,
    /// The user has none: create it.
    Create,
    /// It holds an address we wrote (or the operator allows replacing any): replace it. `previous` is
    /// what a rollback restores.
    Update { previous: String },
    /// It holds an address the user registered: left alone, and reported.
    KeepRegistered,
}

/// Decides the method write for `wanted` given the user's `current` method address, the fingerprint
/// we recorded when we last wrote one (`ours`), and the operator's overwrite setting.
pub fn plan_email_method(
    wanted: &AlternateEmail,
    current: Option<&str>,
    ours: Option<&str>,
    overwrite_registered: bool,
) -> EmailMethodPlan {
    let Some(current) = current.map(str::trim).filter(|c| !c.is_empty()) else {
        return EmailMethodPlan::Create;
    };
    if wanted.eq_ignore_case(current) {
        return EmailMethodPlan::Unchanged;
    }
    let written_by_us = ours.is_some_and(|f| f == address_fingerprint(current));
    if written_by_us || overwrite_registered {
        EmailMethodPlan::Update {
            previous: current.to_string(),
        }
    } else {
        EmailMethodPlan::KeepRegistered
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn email(s: &str) -> AlternateEmail {
        AlternateEmail::parse(s).expect("valid")
    }

    #[test]
    fn a_method_is_replaced_only_when_we_wrote_it_or_the_operator_allows() {
        let wanted = email("new.hire@mail.example");
        assert_eq!(
            plan_email_method(&wanted, None, None, false),
            EmailMethodPlan::Create
        );
        assert_eq!(
            plan_email_method(&wanted, Some(" NEW.hire@mail.example "), None, false),
            EmailMethodPlan::Unchanged
        );
        // The user registered another address: left alone.
        assert_eq!(
            plan_email_method(&wanted, Some("own@choice.example"), None, false),
            EmailMethodPlan::KeepRegistered
        );
        // We wrote a different one before (an HR correction): replaced.
        let ours = address_fingerprint("Old.Hire@mail.example");
        assert_eq!(
            plan_email_method(&wanted, Some("old.hire@mail.example"), Some(&ours), false),
            EmailMethodPlan::Update {
                previous: "old.hire@mail.example".into()
            }
        );
        // Our fingerprint is of another address: the current one is still the user's.
        assert_eq!(
            plan_email_method(&wanted, Some("own@choice.example"), Some(&ours), false),
            EmailMethodPlan::KeepRegistered
        );
        assert_eq!(
            plan_email_method(&wanted, Some("own@choice.example"), None, true),
            EmailMethodPlan::Update {
                previous: "own@choice.example".into()
            }
        );
    }

    #[test]
    fn targets_parse_case_insensitively_and_say_what_they_write() {
        assert_eq!(SsprEmailTarget::parse("Both"), Some(SsprEmailTarget::Both));
        assert_eq!(
            SsprEmailTarget::parse("authenticationMethod"),
            Some(SsprEmailTarget::AuthenticationMethod)
        );
        assert_eq!(SsprEmailTarget::parse("phone"), None);
        assert!(!SsprEmailTarget::AuthenticationMethod.writes_other_mails());
        assert!(!SsprEmailTarget::OtherMails.writes_method());
        assert!(
            SsprEmailTarget::Both.writes_other_mails() && SsprEmailTarget::Both.writes_method()
        );
        assert_eq!(
            address_fingerprint("A@b.example"),
            address_fingerprint(" a@B.EXAMPLE")
        );
        assert_eq!(address_fingerprint("a@b.example").len(), 64);
    }
}
