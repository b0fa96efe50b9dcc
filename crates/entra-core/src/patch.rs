//! The typed patch: the only shape of write entra-enrich can express.
//!
//! There is no way to build a [`UserPatch`] that names a property other than `otherMails` or
//! `usageLocation`: the allow-list is the struct's field list, enforced by the compiler, not a runtime
//! check. Values inside it are validated newtypes ([`AlternateEmail`], [`CountryCode`]) that can only be
//! constructed through their `parse` functions, so an invalid value cannot reach the wire either.

use serde::{Deserialize, Serialize, Serializer};
use std::fmt;

/// Graph's documented limits for `otherMails`: "Can store up to 250 values, each with a limit of 250
/// characters", and it "can't contain accent characters".
/// <https://learn.microsoft.com/graph/api/resources/user?view=graph-rest-1.0#properties>
pub const OTHER_MAILS_MAX_VALUES: usize = 250;
/// See [`OTHER_MAILS_MAX_VALUES`].
pub const OTHER_MAILS_MAX_CHARS: usize = 250;

/// Why a value was refused. Never contains the value itself (it may be a personal email).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[error("{reason}")]
pub struct InvalidValue {
    /// A short, stable, human-readable reason, e.g. "contains non-ASCII (accented) characters".
    pub reason: String,
}

impl InvalidValue {
    pub(crate) fn new(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
        }
    }
}

/// An email address that Graph will accept in `otherMails`: syntactically valid (RFC 5322 via the
/// `email_address` crate), ASCII only, at most 250 characters.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AlternateEmail(String);

/// A DNS host name a mailbox can live at (RFC 1123 §2.1, RFC 5321 §4.1.2 `Domain`): at least two
/// dot-separated labels of 1–63 letters, digits and inner hyphens, at most 253 characters, and an
/// alphabetic top-level label (or an IDNA `xn--` one).
fn is_host_name(domain: &str) -> bool {
    let labels: Vec<&str> = domain.split('.').collect();
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len())
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    let tld = labels.last().copied().unwrap_or_default();
    domain.len() <= 253
        && labels.len() >= 2
        && labels.iter().all(|l| label_ok(l))
        && (tld.bytes().all(|b| b.is_ascii_alphabetic()) || tld.starts_with("xn--"))
}

impl AlternateEmail {
    /// Validates and trims `raw`. The error never echoes the input.
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        let value = raw.trim();
        if value.is_empty() {
            return Err(InvalidValue::new("is empty"));
        }
        if !value.is_ascii() {
            return Err(InvalidValue::new(
                "contains non-ASCII (accented) characters, which Graph refuses in otherMails",
            ));
        }
        if value.len() > OTHER_MAILS_MAX_CHARS {
            return Err(InvalidValue::new(format!(
                "is longer than {OTHER_MAILS_MAX_CHARS} characters"
            )));
        }
        let parsed = email_address::EmailAddress::parse_with_options(
            value,
            email_address::Options::default()
                .with_required_tld()
                .without_display_text()
                .without_domain_literal(),
        );
        if parsed.is_err() {
            return Err(InvalidValue::new("is not a valid email address"));
        }
        let domain = value.rsplit_once('@').map(|(_, d)| d).unwrap_or_default();
        if !is_host_name(domain) {
            return Err(InvalidValue::new(
                "has a domain that is not a mail host name (letters, digits and hyphens in dot-separated labels, an alphabetic top-level domain)",
            ));
        }
        Ok(Self(value.to_string()))
    }

    /// Accepts a value that is already stored in a user's `otherMails`, checking only what Graph
    /// enforces (non-blank, ASCII, at most 250 characters) and not RFC syntax, so that a merge or a
    /// rollback can keep what an admin put there. Used by the planner, and by the rollback of an
    /// email method (which restores the address that was there).
    pub fn from_existing(raw: &str) -> Result<Self, InvalidValue> {
        let value = raw.trim();
        if value.is_empty() {
            return Err(InvalidValue::new("is empty"));
        }
        if !value.is_ascii() {
            return Err(InvalidValue::new(
                "contains non-ASCII (accented) characters, which Graph refuses in otherMails",
            ));
        }
        if value.len() > OTHER_MAILS_MAX_CHARS {
            return Err(InvalidValue::new(format!(
                "is longer than {OTHER_MAILS_MAX_CHARS} characters"
            )));
        }
        Ok(Self(value.to_string()))
    }

    /// The address as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Case-insensitive comparison, as Entra compares addresses.
    pub fn eq_ignore_case(&self, other: &str) -> bool {
        self.0.eq_ignore_ascii_case(other.trim())
    }
}

impl TryFrom<String> for AlternateEmail {
    type Error = InvalidValue;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<AlternateEmail> for String {
    fn from(value: AlternateEmail) -> Self {
        value.0
    }
}

/// Debug output is masked: an alternate email is a personal email, which is PII.
impl fmt::Debug for AlternateEmail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AlternateEmail({})", crate::pii::mask_email(&self.0))
    }
}

/// An ISO 3166-1 alpha-2 country code, checked against the `celes` country list.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CountryCode([u8; 2]);

impl CountryCode {
    /// Accepts exactly an assigned alpha-2 code (case-insensitive), e.g. `US`, `gb`.
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        let value = raw.trim();
        let bytes = value.as_bytes();
        if bytes.len() != 2 || !bytes.iter().all(|b| b.is_ascii_alphabetic()) {
            return Err(InvalidValue::new(
                "is not a two-letter ISO 3166-1 alpha-2 country code",
            ));
        }
        let upper = [bytes[0].to_ascii_uppercase(), bytes[1].to_ascii_uppercase()];
        let code = std::str::from_utf8(&upper).map_err(|_| InvalidValue::new("is not ASCII"))?;
        if celes::Country::from_alpha2(code).is_err() {
            return Err(InvalidValue::new(
                "is not an assigned ISO 3166-1 alpha-2 country code",
            ));
        }
        Ok(Self(upper))
    }

    /// The upper-case code.
    pub fn as_str(&self) -> &str {
        // Both bytes are ASCII letters by construction.
        std::str::from_utf8(&self.0).unwrap_or("??")
    }
}

impl TryFrom<String> for CountryCode {
    type Error = InvalidValue;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<CountryCode> for String {
    fn from(value: CountryCode) -> Self {
        value.as_str().to_string()
    }
}

impl fmt::Debug for CountryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CountryCode({})", self.as_str())
    }
}

impl fmt::Display for CountryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Set a single-valued property to a value, or clear it (rollback of a value that was unset).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change<T> {
    /// Write this value.
    Set(T),
    /// Write `null`.
    Clear,
}

impl<T: Serialize> Serialize for Change<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Change::Set(v) => v.serialize(serializer),
            Change::Clear => serializer.serialize_none(),
        }
    }
}

/// The body of one `PATCH /v1.0/users/{id}`. Only allow-listed properties exist as fields.
///
/// `otherMails` replaces the whole collection ("pass in all the email addresses that you want the user
/// to have; otherwise, existing values get overwritten", Update user,
/// <https://learn.microsoft.com/graph/api/user-update?view=graph-rest-1.0>), so the planner always puts
/// the complete desired collection here.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UserPatch {
    /// The complete new `otherMails` collection (at most 250 values).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub other_mails: Option<OtherMails>,
    /// The new `usageLocation`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage_location: Option<Change<CountryCode>>,
}

impl UserPatch {
    /// True when the patch would write nothing.
    pub fn is_empty(&self) -> bool {
        self.other_mails.is_none() && self.usage_location.is_none()
    }

    /// The Graph property names this patch writes, in a stable order.
    pub fn property_names(&self) -> Vec<&'static str> {
        let mut names = Vec::with_capacity(2);
        if self.other_mails.is_some() {
            names.push("otherMails");
        }
        if self.usage_location.is_some() {
            names.push("usageLocation");
        }
        names
    }
}

/// A complete `otherMails` collection: at most 250 valid, case-insensitively distinct addresses.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct OtherMails(Vec<AlternateEmail>);

impl OtherMails {
    /// Builds a collection, dropping case-insensitive duplicates (first one wins) and refusing more
    /// than 250 values.
    pub fn new(values: impl IntoIterator<Item = AlternateEmail>) -> Result<Self, InvalidValue> {
        let mut out: Vec<AlternateEmail> = Vec::new();
        for v in values {
            if !out.iter().any(|o| o.eq_ignore_case(v.as_str())) {
                out.push(v);
            }
        }
        if out.len() > OTHER_MAILS_MAX_VALUES {
            return Err(InvalidValue::new(format!(
                "would hold more than {OTHER_MAILS_MAX_VALUES} values"
            )));
        }
        Ok(Self(out))
    }

    /// The addresses, in order.
    pub fn as_slice(&self) -> &[AlternateEmail] {
        &self.0
    }

    /// The addresses as plain strings.
    pub fn to_strings(&self) -> Vec<String> {
        self.0.iter().map(|e| e.as_str().to_string()).collect()
    }

    /// True when `current` holds the same addresses, compared case-insensitively and ignoring order.
    pub fn same_set_as(&self, current: &[String]) -> bool {
        let current: Vec<&String> = current.iter().filter(|c| !c.trim().is_empty()).collect();
        let mut distinct_current: Vec<String> = Vec::new();
        for c in &current {
            let lc = c.trim().to_ascii_lowercase();
            if !distinct_current.contains(&lc) {
                distinct_current.push(lc);
            }
        }
        distinct_current.len() == self.0.len()
            && self.0.iter().all(|e| {
                distinct_current
                    .iter()
                    .any(|c| e.as_str().eq_ignore_ascii_case(c))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_whose_domain_is_not_a_host_name_is_refused() {
        // Found by the lambda_event fuzz target: `email_address` takes `*` and `/` in a domain.
        for bad in [
            "n@s***/e/default/entra.example",
            "a@exa*mple.org",
            "a@-example.org",
            "a@example-.org",
            "a@example..org",
            "a@example",
            "a@example.o_rg",
            "a@example.123",
        ] {
            let e = AlternateEmail::parse(bad).expect_err(bad);
            assert!(!e.reason.contains('@'), "{bad}: {}", e.reason);
        }
        let e = AlternateEmail::parse("n@s***/e/default/entra.example").expect_err("refused");
        assert!(e.reason.contains("domain"), "{}", e.reason);
        for good in [
            "jane.doe@example.org",
            "j+tag@mail.example.co.uk",
            "x@xn--bcher-kva.example",
            "o'brien@example.org",
            "a@sub-domain.example.io",
        ] {
            assert!(AlternateEmail::parse(good).is_ok(), "{good}");
        }
    }
}
