//! The decision for one user: scope → match → values → validation → diff → patch. Also the
//! rollback planner.

use crate::address::AddressBook;
use crate::country::resolve_country;
use crate::outcome::Outcome;
use crate::patch::{
    AlternateEmail, Change, CountryCode, InvalidValue, OtherMails, UserPatch,
    OTHER_MAILS_MAX_VALUES,
};
use crate::pii::mask_email;
use crate::scope::ScopeFilter;
use crate::source::{SourceLookup, SourceSpec};
use crate::user::UserRecord;
use serde::{Deserialize, Deserializer, Serialize};
use std::fmt;

/// The Graph property for the alternate email.
pub const OTHER_MAILS: &str = "otherMails";
/// The Graph property for the usage location.
pub const USAGE_LOCATION: &str = "usageLocation";

/// How the HR personal email is written into `otherMails`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OtherMailsMode {
    /// `otherMails` becomes exactly `[HR value]`, so a former personal address can no longer be
    /// used to reset the password. A value that differs only in case counts as already set.
    #[default]
    Replace,
    /// Keep the existing values and add the HR value (if not already present, case-insensitively),
    /// refusing to go beyond 250 values. Existing values are kept verbatim when Graph would accept
    /// them (non-blank, ASCII, ≤ 250 characters) even if they are not RFC-valid addresses, because
    /// they are the admin's data; values Graph would refuse (non-ASCII, too long) are dropped — the
    /// PATCH would fail otherwise — and a [`FieldIssue`] records each drop.
    Merge,
}

/// `ENRICH_OTHER_MAILS_MODE` was neither `replace` nor `merge`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("other-mails mode must be `replace` (the default) or `merge`")]
pub struct ModeError;

impl std::str::FromStr for OtherMailsMode {
    type Err = ModeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "replace" => Ok(Self::Replace),
            "merge" => Ok(Self::Merge),
            _ => Err(ModeError),
        }
    }
}

/// What the engine is allowed and asked to do.
#[derive(Debug, Clone, PartialEq)]
pub struct EnrichPolicy {
    /// Which users may be touched. Default: hybrid users.
    pub scope: ScopeFilter,
    /// Replace (default) or Merge.
    pub mode: OtherMailsMode,
    /// Whether to write `usageLocation` at all (default true). Set it to false when the source never
    /// provides a country, otherwise every user reports a missing `usageLocation`.
    pub write_usage_location: bool,
    /// Where the personal email goes: `otherMails`, the email authentication method, or both
    /// (default `otherMails`). The method itself is written by the handlers, from
    /// [`Decision::sspr_email`].
    pub sspr_target: crate::SsprEmailTarget,
    /// Replace an email method entra-enrich did not write ([`crate::plan_email_method`]).
    pub sspr_overwrite_registered: bool,
}

impl Default for EnrichPolicy {
    fn default() -> Self {
        Self {
            scope: ScopeFilter::default(),
            mode: OtherMailsMode::Replace,
            write_usage_location: true,
            sspr_target: crate::SsprEmailTarget::OtherMails,
            sspr_overwrite_registered: false,
        }
    }
}

impl EnrichPolicy {
    /// Every top-level property to `$select` when listing users for this policy: `id`,
    /// `userPrincipalName`, `employeeId`, `otherMails`, `usageLocation`, the scope's properties and
    /// (for the directory source) the source's properties. No duplicates.
    pub fn select_properties(&self, source: Option<&SourceSpec>) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let base = [
            "id",
            "userPrincipalName",
            "mail",
            "employeeId",
            OTHER_MAILS,
            USAGE_LOCATION,
        ]
        .into_iter()
        .map(str::to_string);
        let extra = self
            .scope
            .properties()
            .into_iter()
            .chain(source.map(SourceSpec::properties).unwrap_or_default());
        for p in base.chain(extra) {
            if !out.iter().any(|o| o.eq_ignore_ascii_case(&p)) {
                out.push(p);
            }
        }
        out
    }
}

/// A field that was not written while the decision went ahead (e.g. invalid country, valid email),
/// or an existing value dropped by Merge. Never contains a personal email.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldIssue {
    /// `otherMails` or `usageLocation`.
    pub field: &'static str,
    /// Why.
    pub reason: String,
}

/// The decision for one user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// What happens (or happened, before the write is attempted: `Updated` means "to be written").
    pub outcome: Outcome,
    /// The PATCH body: `Some` exactly when `outcome` is `Updated`, and never empty.
    pub patch: Option<UserPatch>,
    /// Fields skipped or values dropped; empty when everything is fine.
    pub issues: Vec<FieldIssue>,
    /// The address this user's email authentication method must hold, when the policy writes the
    /// method: the HR personal email once it passed every rule `otherMails` passes (in scope, one
    /// match by employeeId, valid, not the user's own sign-in address, not another user's).
    pub sspr_email: Option<AlternateEmail>,
}

impl Decision {
    fn only(outcome: Outcome) -> Self {
        Self {
            outcome,
            patch: None,
            issues: Vec::new(),
            sspr_email: None,
        }
    }
}

enum Skip {
    Missing,
    Invalid(String),
}

enum FieldPlan<T> {
    Write(T),
    Same,
    Skip(Skip),
    NotWanted,
}

/// Decides what to do with one user.
///
/// * `source`: the user's HR values — `hr.lookup_user(user)` for an HR index, or
///   `SourceLookup::Found(&spec.values_from_user(user))` for the directory source.
/// * `duplicate_target`: the user's employeeId is carried by several in-scope users
///   ([`crate::EmployeeIdIndex::is_duplicate`]); pass `false` for the directory source.
///
/// Order: scope → employeeId present → duplicate target → source lookup → values → validation → diff. Each field is
/// decided independently; a field that cannot be written is recorded in `issues` while the other
/// is still written. When nothing is written, the outcome names the first problem (`otherMails`
/// before `usageLocation`, invalid before missing), or is `Unchanged`.
///
/// The alternate email is refused when it is the user's own `userPrincipalName` or `mail`. Whether
/// *another* user holds it is not known here: the handlers call [`plan_user_among`] with the
/// addresses they know of.
pub fn plan_user(
    policy: &EnrichPolicy,
    user: &UserRecord,
    source: SourceLookup<'_>,
    duplicate_target: bool,
) -> Decision {
    plan_user_among(policy, user, source, duplicate_target, &AddressBook::new())
}

/// [`plan_user`], also refusing an alternate email that another user in `book` already holds as
/// sign-in name, primary mail or alternate email (or that the same run gives another user). The
/// other fields are still written; the report says why `otherMails` was not. No setting relaxes this.
pub fn plan_user_among(
    policy: &EnrichPolicy,
    user: &UserRecord,
    source: SourceLookup<'_>,
    duplicate_target: bool,
    book: &AddressBook,
) -> Decision {
    if !policy.scope.matches(user) {
        return Decision::only(Outcome::OutOfScope);
    }
    // Matching is by employeeId under every source, the directory included: a user without one is
    // never written (Entra's provisioning logs call this ImportSkipped).
    if user.employee_id().is_none() {
        return Decision::only(Outcome::NoMatchingValue);
    }
    if duplicate_target {
        return Decision::only(Outcome::DuplicateTargetEntries);
    }
    let values = match source {
        SourceLookup::Found(values) => values,
        SourceLookup::NotFound => return Decision::only(Outcome::NoMatchingValue),
        SourceLookup::Duplicate(_) => return Decision::only(Outcome::DuplicateSourceEntries),
    };
    let (mut mails, mut dropped) = match refuse_taken(user, non_blank(&values.personal_email), book)
    {
        Some(reason) => (FieldPlan::Skip(Skip::Invalid(reason)), Vec::new()),
        None => plan_other_mails(policy.mode, user, non_blank(&values.personal_email)),
    };
    // Vetted exactly when otherMails could take it; the reasons it could not stay reported.
    let sspr_email = match &mails {
        FieldPlan::Write(_) | FieldPlan::Same if policy.sspr_target.writes_method() => {
            non_blank(&values.personal_email).and_then(|e| AlternateEmail::parse(e).ok())
        }
        _ => None,
    };
    if !policy.sspr_target.writes_other_mails()
        && matches!(mails, FieldPlan::Write(_) | FieldPlan::Same)
    {
        mails = FieldPlan::NotWanted;
        dropped.clear();
    }
    let country = if policy.write_usage_location {
        plan_usage_location(user, non_blank(&values.country))
    } else {
        FieldPlan::NotWanted
    };

    let mut patch = UserPatch::default();
    let mut skipped: Vec<(&'static str, Skip)> = Vec::new();
    match mails {
        FieldPlan::Write(v) => patch.other_mails = Some(v),
        FieldPlan::Skip(s) => skipped.push((OTHER_MAILS, s)),
        FieldPlan::Same | FieldPlan::NotWanted => {}
    }
    match country {
        FieldPlan::Write(v) => patch.usage_location = Some(Change::Set(v)),
        FieldPlan::Skip(s) => skipped.push((USAGE_LOCATION, s)),
        FieldPlan::Same | FieldPlan::NotWanted => {}
    }

    if !patch.is_empty() {
        let mut issues: Vec<FieldIssue> = skipped.iter().map(issue).collect();
        issues.append(&mut dropped);
        return Decision {
            outcome: Outcome::Updated {
                properties: patch.property_names(),
            },
            patch: Some(patch),
            issues,
            sspr_email,
        };
    }
    // Nothing to write: the outcome names the first problem, the rest become issues.
    let primary = skipped
        .iter()
        .position(|(_, s)| matches!(s, Skip::Invalid(_)))
        .or((!skipped.is_empty()).then_some(0));
    let Some(primary) = primary else {
        return Decision {
            sspr_email,
            ..Decision::only(Outcome::Unchanged)
        };
    };
    let (field, skip) = skipped.remove(primary);
    let outcome = match skip {
        Skip::Invalid(reason) => Outcome::InvalidValue { field, reason },
        Skip::Missing => Outcome::SourceValueMissing { field },
    };
    Decision {
        outcome,
        patch: None,
        issues: skipped.iter().map(issue).collect(),
        sspr_email,
    }
}

fn issue((field, skip): &(&'static str, Skip)) -> FieldIssue {
    let reason = match skip {
        Skip::Missing => "no value in the source record; not written".to_string(),
        Skip::Invalid(reason) => format!("the source value {reason}; not written"),
    };
    FieldIssue { field, reason }
}

fn non_blank(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

/// Why the HR address must not become this user's alternate email, if it must not. Never quotes it.
fn refuse_taken(user: &UserRecord, hr_email: Option<&str>, book: &AddressBook) -> Option<String> {
    let email = hr_email?;
    let already = user
        .other_mails()
        .iter()
        .any(|m| m.trim().eq_ignore_ascii_case(email));
    if crate::address::is_own_primary(user, email) {
        return Some("is the user's own sign-in name or primary mail: a reset code sent there reaches only the account being reset; fix personalEmail in HR".into());
    }
    if !already && book.held_by_other(email, user.id()) {
        return Some("is already another user's sign-in name, mail or alternate email: whoever reads that mailbox could reset this account; fix personalEmail in HR".into());
    }
    None
}

fn plan_other_mails(
    mode: OtherMailsMode,
    user: &UserRecord,
    hr_email: Option<&str>,
) -> (FieldPlan<OtherMails>, Vec<FieldIssue>) {
    let Some(raw) = hr_email else {
        return (FieldPlan::Skip(Skip::Missing), Vec::new());
    };
    let email = match AlternateEmail::parse(raw) {
        Ok(email) => email,
        Err(e) => return (FieldPlan::Skip(Skip::Invalid(e.reason)), Vec::new()),
    };
    let current = user.other_mails();
    match mode {
        OtherMailsMode::Replace => match OtherMails::new([email]) {
            Ok(desired) if desired.same_set_as(&current) => (FieldPlan::Same, Vec::new()),
            Ok(desired) => (FieldPlan::Write(desired), Vec::new()),
            Err(e) => (FieldPlan::Skip(Skip::Invalid(e.reason)), Vec::new()),
        },
        OtherMailsMode::Merge => {
            if current.iter().any(|c| email.eq_ignore_case(c)) {
                return (FieldPlan::Same, Vec::new());
            }
            let mut kept = Vec::with_capacity(current.len() + 1);
            let mut dropped = Vec::new();
            for value in current.iter().filter(|c| !c.trim().is_empty()) {
                match AlternateEmail::from_existing(value) {
                    Ok(v) => kept.push(v),
                    Err(e) => dropped.push(FieldIssue {
                        field: OTHER_MAILS,
                        reason: format!(
                            "an existing value {} (Graph would refuse the whole PATCH); it was dropped",
                            e.reason
                        ),
                    }),
                }
            }
            kept.push(email);
            match OtherMails::new(kept) {
                Ok(desired) => (FieldPlan::Write(desired), dropped),
                Err(_) => (
                    FieldPlan::Skip(Skip::Invalid(format!(
                        "cannot be added: otherMails already holds {OTHER_MAILS_MAX_VALUES} values (Merge mode); remove old values or use Replace mode"
                    ))),
                    Vec::new(),
                ),
            }
        }
    }
}

fn plan_usage_location(user: &UserRecord, hr_country: Option<&str>) -> FieldPlan<CountryCode> {
    let Some(raw) = hr_country else {
        return FieldPlan::Skip(Skip::Missing);
    };
    match resolve_country(raw) {
        Err(e) => FieldPlan::Skip(Skip::Invalid(e.reason)),
        Ok(code) => {
            if user
                .usage_location()
                .is_some_and(|c| c.eq_ignore_ascii_case(code.as_str()))
            {
                FieldPlan::Same
            } else {
                FieldPlan::Write(code)
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Rollback

/// The values of the written properties at one moment — what the audit log stores before and after
/// a write. `None` = the property was not written by that run.
///
/// JSON: `{"otherMails": [...], "usageLocation": "DE" | null}`; an absent key means "not
/// written", `"usageLocation": null` means "was unset". `Debug` masks the addresses.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordedValues {
    /// The whole `otherMails` collection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub other_mails: Option<Vec<String>>,
    /// `usageLocation` (`Some(None)` = unset).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "double_option"
    )]
    pub usage_location: Option<Option<String>>,
}

fn double_option<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

impl fmt::Debug for RecordedValues {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mails = self
            .other_mails
            .as_ref()
            .map(|v| v.iter().map(|m| mask_email(m)).collect::<Vec<_>>());
        f.debug_struct("RecordedValues")
            .field("other_mails", &mails)
            .field("usage_location", &self.usage_location)
            .finish()
    }
}

impl RecordedValues {
    /// The user's current values of the properties `patch` writes (record before the PATCH).
    pub fn before(user: &UserRecord, patch: &UserPatch) -> Self {
        Self {
            other_mails: patch.other_mails.as_ref().map(|_| user.other_mails()),
            usage_location: patch
                .usage_location
                .as_ref()
                .map(|_| user.usage_location().map(str::to_string)),
        }
    }

    /// The values `patch` writes (record after a successful PATCH).
    pub fn after(patch: &UserPatch) -> Self {
        Self {
            other_mails: patch.other_mails.as_ref().map(OtherMails::to_strings),
            usage_location: patch.usage_location.as_ref().map(|c| match c {
                Change::Set(code) => Some(code.as_str().to_string()),
                Change::Clear => None,
            }),
        }
    }
}

/// Why a rollback was refused. Never contains a personal email.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RollbackRefusal {
    /// The property no longer holds what the run wrote: someone (or something) changed it since.
    #[error("{property} changed since the run (it no longer holds the value the run wrote); not rolling back this user — review it and fix by hand")]
    Changed {
        /// `otherMails` or `usageLocation`.
        property: &'static str,
    },
    /// The audit record has a before value without an after value, or the reverse.
    #[error("the audit record for {property} is incomplete (before and after must both be present); not rolling back this user")]
    IncompleteRecord {
        /// `otherMails` or `usageLocation`.
        property: &'static str,
    },
    /// The recorded before value cannot be written back.
    #[error("the recorded previous {property} value {reason}; not rolling back this user")]
    Unrestorable {
        /// `otherMails` or `usageLocation`.
        property: &'static str,
        /// Why (never the value).
        reason: String,
    },
}

/// Plans the rollback of one user: restore `before` for each property the run wrote, but only when
/// the current value still equals the run's `after` (case-insensitive set equality for
/// `otherMails`, case-insensitive for `usageLocation`). All or nothing: any refusal refuses the
/// whole user. `Ok(None)` when the user already holds the `before` values.
pub fn plan_rollback(
    current: &UserRecord,
    before: &RecordedValues,
    after: &RecordedValues,
) -> Result<Option<UserPatch>, RollbackRefusal> {
    let mut patch = UserPatch::default();

    match (&before.other_mails, &after.other_mails) {
        (None, None) => {}
        (Some(_), None) | (None, Some(_)) => {
            return Err(RollbackRefusal::IncompleteRecord {
                property: OTHER_MAILS,
            })
        }
        (Some(before), Some(after)) => {
            let now = current.other_mails();
            if !same_set(&now, after) {
                return Err(RollbackRefusal::Changed {
                    property: OTHER_MAILS,
                });
            }
            if !same_set(&now, before) {
                let values = before
                    .iter()
                    .filter(|v| !v.trim().is_empty())
                    .map(|v| AlternateEmail::from_existing(v))
                    .collect::<Result<Vec<_>, InvalidValue>>()
                    .and_then(OtherMails::new)
                    .map_err(|e| RollbackRefusal::Unrestorable {
                        property: OTHER_MAILS,
                        reason: e.reason,
                    })?;
                patch.other_mails = Some(values);
            }
        }
    }

    match (&before.usage_location, &after.usage_location) {
        (None, None) => {}
        (Some(_), None) | (None, Some(_)) => {
            return Err(RollbackRefusal::IncompleteRecord {
                property: USAGE_LOCATION,
            })
        }
        (Some(before), Some(after)) => {
            let now = current.usage_location();
            if !same_code(now, after.as_deref()) {
                return Err(RollbackRefusal::Changed {
                    property: USAGE_LOCATION,
                });
            }
            if !same_code(now, before.as_deref()) {
                let change = match before.as_deref().map(str::trim).filter(|b| !b.is_empty()) {
                    None => Change::Clear,
                    Some(code) => Change::Set(CountryCode::parse(code).map_err(|e| {
                        RollbackRefusal::Unrestorable {
                            property: USAGE_LOCATION,
                            reason: e.reason,
                        }
                    })?),
                };
                patch.usage_location = Some(change);
            }
        }
    }

    Ok(if patch.is_empty() { None } else { Some(patch) })
}

fn normalised_set(values: &[String]) -> Vec<String> {
    let mut out: Vec<String> = values
        .iter()
        .map(|v| v.trim().to_ascii_lowercase())
        .filter(|v| !v.is_empty())
        .collect();
    out.sort();
    out.dedup();
    out
}

fn same_set(a: &[String], b: &[String]) -> bool {
    normalised_set(a) == normalised_set(b)
}

fn same_code(a: Option<&str>, b: Option<&str>) -> bool {
    let norm = |v: Option<&str>| {
        v.map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_ascii_uppercase)
    };
    norm(a) == norm(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn mode_parses_from_settings() {
        assert_eq!("Replace".parse(), Ok(OtherMailsMode::Replace));
        assert_eq!(" merge ".parse(), Ok(OtherMailsMode::Merge));
        let err = "append".parse::<OtherMailsMode>().unwrap_err();
        assert!(err.to_string().contains("`replace`"));
        assert_eq!(OtherMailsMode::default(), OtherMailsMode::Replace);
    }

    #[test]
    fn default_policy_selects_what_it_reads() {
        let policy = EnrichPolicy::default();
        assert_eq!(
            policy.select_properties(None),
            vec![
                "id",
                "userPrincipalName",
                "mail",
                "employeeId",
                "otherMails",
                "usageLocation",
                "onPremisesSyncEnabled"
            ]
        );
    }

    #[test]
    fn recorded_values_json_distinguishes_absent_and_null() {
        let absent: RecordedValues = serde_json::from_value(json!({})).unwrap();
        assert_eq!(absent, RecordedValues::default());
        let null: RecordedValues = serde_json::from_value(json!({"usageLocation": null})).unwrap();
        assert_eq!(null.usage_location, Some(None));
        let set: RecordedValues =
            serde_json::from_value(json!({"usageLocation": "DE", "otherMails": []})).unwrap();
        assert_eq!(set.usage_location, Some(Some("DE".into())));
        assert_eq!(set.other_mails, Some(vec![]));
        assert_eq!(serde_json::to_value(&absent).unwrap(), json!({}));
    }

    #[test]
    fn rollback_to_an_empty_collection_writes_an_empty_array() {
        let current =
            UserRecord::from_json(json!({"id": "u", "otherMails": ["new@example.org"]})).unwrap();
        let before = RecordedValues {
            other_mails: Some(vec![]),
            usage_location: None,
        };
        let after = RecordedValues {
            other_mails: Some(vec!["new@example.org".into()]),
            usage_location: None,
        };
        let patch = plan_rollback(&current, &before, &after).unwrap().unwrap();
        assert_eq!(
            serde_json::to_value(&patch).unwrap(),
            json!({"otherMails": []})
        );
    }

    #[test]
    fn rollback_refuses_an_unrestorable_before_value() {
        let current = UserRecord::from_json(json!({"id": "u", "usageLocation": "DE"})).unwrap();
        let before = RecordedValues {
            other_mails: None,
            usage_location: Some(Some("XX".into())),
        };
        let after = RecordedValues {
            other_mails: None,
            usage_location: Some(Some("DE".into())),
        };
        assert!(matches!(
            plan_rollback(&current, &before, &after),
            Err(RollbackRefusal::Unrestorable {
                property: "usageLocation",
                ..
            })
        ));
    }
}
