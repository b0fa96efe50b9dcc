//! The Microsoft Graph `user` properties a scope or a source may name, so that a misspelling fails at
//! start-up with a hint instead of at Graph with a `$select` error.
//!
//! From the v1.0 user resource (<https://learn.microsoft.com/graph/api/resources/user#properties>).
//! Directory extension attributes (`extension_{appId}_{name}`) are accepted as they are.

/// Every property of the v1.0 `user` resource that `$select` can return.
pub const USER_PROPERTIES: &[&str] = &[
    "aboutMe",
    "accountEnabled",
    "ageGroup",
    "assignedLicenses",
    "assignedPlans",
    "authorizationInfo",
    "birthday",
    "businessPhones",
    "city",
    "companyName",
    "consentProvidedForMinor",
    "country",
    "createdDateTime",
    "creationType",
    "customSecurityAttributes",
    "deletedDateTime",
    "department",
    "displayName",
    "employeeHireDate",
    "employeeId",
    "employeeLeaveDateTime",
    "employeeOrgData",
    "employeeType",
    "externalUserState",
    "externalUserStateChangeDateTime",
    "faxNumber",
    "givenName",
    "hireDate",
    "id",
    "identities",
    "imAddresses",
    "interests",
    "isManagementRestricted",
    "isResourceAccount",
    "jobTitle",
    "lastPasswordChangeDateTime",
    "legalAgeGroupClassification",
    "licenseAssignmentStates",
    "mail",
    "mailboxSettings",
    "mailNickname",
    "mobilePhone",
    "mySite",
    "officeLocation",
    "onPremisesDistinguishedName",
    "onPremisesDomainName",
    "onPremisesExtensionAttributes",
    "onPremisesImmutableId",
    "onPremisesLastSyncDateTime",
    "onPremisesProvisioningErrors",
    "onPremisesSamAccountName",
    "onPremisesSecurityIdentifier",
    "onPremisesSyncEnabled",
    "onPremisesUserPrincipalName",
    "otherMails",
    "passwordPolicies",
    "passwordProfile",
    "pastProjects",
    "postalCode",
    "preferredDataLocation",
    "preferredLanguage",
    "preferredName",
    "provisionedPlans",
    "proxyAddresses",
    "responsibilities",
    "schools",
    "securityIdentifier",
    "serviceProvisioningErrors",
    "showInAddressList",
    "signInActivity",
    "signInSessionsValidFromDateTime",
    "skills",
    "state",
    "streetAddress",
    "surname",
    "usageLocation",
    "userPrincipalName",
    "userType",
];

/// `Ok` when `name` is a user property (case-insensitive) or a directory extension attribute;
/// otherwise the closest known property, when one is near enough to be a likely misspelling.
pub fn check_user_property(name: &str) -> Result<(), Option<&'static str>> {
    if name.starts_with("extension_")
        || USER_PROPERTIES.iter().any(|p| p.eq_ignore_ascii_case(name))
    {
        return Ok(());
    }
    let wanted = name.to_ascii_lowercase();
    let best = USER_PROPERTIES
        .iter()
        .map(|p| (edit_distance(&wanted, &p.to_ascii_lowercase()), *p))
        .min_by_key(|(d, _)| *d);
    Err(best
        .filter(|(d, _)| *d <= 3.max(wanted.len() / 5))
        .map(|(_, p)| p))
}

/// Levenshtein distance over bytes (property names are ASCII).
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitute = prev[j] + usize::from(ca != cb);
            cur[j + 1] = substitute.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_properties_pass_and_misspellings_get_a_hint() {
        assert_eq!(check_user_property("onPremisesSyncEnabled"), Ok(()));
        assert_eq!(check_user_property("userprincipalname"), Ok(()));
        assert_eq!(check_user_property("extension_9a1b_costCenter"), Ok(()));
        assert_eq!(
            check_user_property("onPremiseSyncEnabled"),
            Err(Some("onPremisesSyncEnabled"))
        );
        assert_eq!(check_user_property("employeID"), Err(Some("employeeId")));
        assert_eq!(check_user_property("favouriteColour"), Err(None));
    }
}
