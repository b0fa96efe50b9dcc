//! Tenant data: loaded from JSON or generated deterministically from `(users, seed)`.
//! The generated mix is documented in the crate README.

use std::collections::HashSet;

use serde_json::{json, Map, Value};

use crate::error::SandboxError;

/// ISO 3166-1 alpha-2 officially assigned codes (249), used to validate `usageLocation`
/// ("A two-letter country code (ISO standard 3166)", https://learn.microsoft.com/graph/api/resources/user).
pub const ISO_ALPHA2: &[&str] = &[
    "AD", "AE", "AF", "AG", "AI", "AL", "AM", "AO", "AQ", "AR", "AS", "AT", "AU", "AW", "AX", "AZ",
    "BA", "BB", "BD", "BE", "BF", "BG", "BH", "BI", "BJ", "BL", "BM", "BN", "BO", "BQ", "BR", "BS",
    "BT", "BV", "BW", "BY", "BZ", "CA", "CC", "CD", "CF", "CG", "CH", "CI", "CK", "CL", "CM", "CN",
    "CO", "CR", "CU", "CV", "CW", "CX", "CY", "CZ", "DE", "DJ", "DK", "DM", "DO", "DZ", "EC", "EE",
    "EG", "EH", "ER", "ES", "ET", "FI", "FJ", "FK", "FM", "FO", "FR", "GA", "GB", "GD", "GE", "GF",
    "GG", "GH", "GI", "GL", "GM", "GN", "GP", "GQ", "GR", "GS", "GT", "GU", "GW", "GY", "HK", "HM",
    "HN", "HR", "HT", "HU", "ID", "IE", "IL", "IM", "IN", "IO", "IQ", "IR", "IS", "IT", "JE", "JM",
    "JO", "JP", "KE", "KG", "KH", "KI", "KM", "KN", "KP", "KR", "KW", "KY", "KZ", "LA", "LB", "LC",
    "LI", "LK", "LR", "LS", "LT", "LU", "LV", "LY", "MA", "MC", "MD", "ME", "MF", "MG", "MH", "MK",
    "ML", "MM", "MN", "MO", "MP", "MQ", "MR", "MS", "MT", "MU", "MV", "MW", "MX", "MY", "MZ", "NA",
    "NC", "NE", "NF", "NG", "NI", "NL", "NO", "NP", "NR", "NU", "NZ", "OM", "PA", "PE", "PF", "PG",
    "PH", "PK", "PL", "PM", "PN", "PR", "PS", "PT", "PW", "PY", "QA", "RE", "RO", "RS", "RU", "RW",
    "SA", "SB", "SC", "SD", "SE", "SG", "SH", "SI", "SJ", "SK", "SL", "SM", "SN", "SO", "SR", "SS",
    "ST", "SV", "SX", "SY", "SZ", "TC", "TD", "TF", "TG", "TH", "TJ", "TK", "TL", "TM", "TN", "TO",
    "TR", "TT", "TV", "TW", "TZ", "UA", "UG", "UM", "US", "UY", "UZ", "VA", "VC", "VE", "VG", "VI",
    "VN", "VU", "WF", "WS", "YE", "YT", "ZA", "ZM", "ZW",
];

/// Whether `s` is an assigned ISO 3166-1 alpha-2 code (upper case, as Graph stores it).
pub fn is_iso_alpha2(s: &str) -> bool {
    ISO_ALPHA2.binary_search(&s).is_ok()
}

/// Small deterministic PRNG (SplitMix64): identical output for identical seeds on every platform.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }
    pub fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items.get(self.below(items.len())).copied().unwrap_or("")
    }
    /// A GUID in the canonical lower-case form Graph uses for object ids.
    pub fn guid(&mut self) -> String {
        let a = self.next_u64();
        let b = self.next_u64();
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&a.to_be_bytes());
        bytes[8..].copy_from_slice(&b.to_be_bytes());
        uuid::Builder::from_random_bytes(bytes)
            .into_uuid()
            .to_string()
    }
}

/// Category of a generated user (see README "Generated tenant mix").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Hybrid,
    HybridCountryName,
    HybridCountryInvalid,
    HybridEmailInvalid,
    HybridEmailAccented,
    HybridAlreadyCorrect,
    HybridNoEmployeeId,
    HybridDuplicateEmployeeId,
    CloudOnly,
    PrivilegedAdmin,
}

/// Percentage buckets (cumulative boundaries over 0..100).
pub const MIX: &[(Kind, usize)] = &[
    (Kind::Hybrid, 68),
    (Kind::HybridCountryName, 5),
    (Kind::HybridCountryInvalid, 3),
    (Kind::HybridEmailInvalid, 4),
    (Kind::HybridEmailAccented, 3),
    (Kind::HybridAlreadyCorrect, 5),
    (Kind::HybridNoEmployeeId, 3),
    (Kind::HybridDuplicateEmployeeId, 2),
    (Kind::CloudOnly, 5),
    (Kind::PrivilegedAdmin, 2),
];

fn kind_for(bucket: usize) -> Kind {
    let mut acc = 0;
    for (k, pct) in MIX {
        acc += pct;
        if bucket < acc {
            return *k;
        }
    }
    Kind::Hybrid
}

pub(crate) const FIRST: &[&str] = &[
    "Anna", "Ben", "Clara", "David", "Emma", "Felix", "Grace", "Hugo", "Iris", "Jonas", "Katrin",
    "Liam", "Mia", "Noah", "Olivia", "Paul", "Quinn", "Rosa", "Sven", "Tara", "Ugo", "Vera",
    "Will", "Xenia", "Yusuf", "Zoe",
];
pub(crate) const LAST: &[&str] = &[
    "Adams", "Becker", "Costa", "Dubois", "Evans", "Fischer", "Garcia", "Hansen", "Ito", "Jensen",
    "Kowalski", "Lopez", "Muller", "Nguyen", "Olsen", "Patel", "Rossi", "Schmidt", "Tanaka",
    "Weber",
];
pub(crate) const ACCENTED_FIRST: &[&str] = &["José", "Zoë", "Renée", "Björn", "François", "Søren"];
const COUNTRY_CODES: &[&str] = &[
    "DE", "US", "GB", "FR", "NL", "ES", "IT", "JP", "IN", "BR", "CA", "AU", "CH", "SE",
];
const COUNTRY_NAMES: &[&str] = &[
    "Germany",
    "United States",
    "France",
    "Netherlands",
    "Japan",
    "Brazil",
];
const COUNTRY_INVALID: &[&str] = &["XX", "Germny", "ZZ", "123", "EU"];
const JOBS: &[&str] = &[
    "Engineer",
    "Analyst",
    "Nurse",
    "Accountant",
    "Sales Manager",
    "Technician",
    "Designer",
];
pub(crate) const PERSONAL_DOMAINS: &[&str] = &[
    "gmail.com",
    "outlook.com",
    "yahoo.com",
    "proton.me",
    "gmx.de",
];

/// Users (Graph JSON objects) and the ids of privileged admins.
pub type TenantData = (Vec<Map<String, Value>>, HashSet<String>);

/// Generates `n` users deterministically from `seed`. Returns the users and the ids of the
/// privileged admins (sandbox metadata, not a Graph property).
pub fn generate(n: usize, seed: u64) -> TenantData {
    let mut rng = SplitMix64::new(seed);
    let mut users = Vec::with_capacity(n);
    let mut privileged = HashSet::new();
    let mut last_employee_id: Option<String> = None;
    let offset = (seed % 100) as usize;
    for i in 0..n {
        // A stride coprime to 100 spreads the categories evenly; exact for multiples of 100.
        let kind = kind_for((i * 37 + offset) % 100);
        let (id, user) = generate_user(&mut rng, i, kind, &mut last_employee_id);
        if let Value::Object(map) = user {
            if kind == Kind::PrivilegedAdmin {
                privileged.insert(id);
            }
            users.push(map);
        }
    }
    (users, privileged)
}

/// User `i` of category `kind`: its id and Graph JSON. The draws from `rng` come in a fixed order
/// (id, names, personal email, country, creation time, job title): the same seed gives the same
/// tenant.
fn generate_user(
    rng: &mut SplitMix64,
    i: usize,
    kind: Kind,
    last_employee_id: &mut Option<String>,
) -> (String, Value) {
    let id = rng.guid();
    let first = rng.pick(FIRST);
    let last = rng.pick(LAST);
    let upn = format!(
        "{}.{}{}@contoso.com",
        first.to_lowercase(),
        last.to_lowercase(),
        i
    );
    let personal_email = personal_email(rng, i, kind, first, last);
    let country = match kind {
        Kind::HybridCountryName => rng.pick(COUNTRY_NAMES).to_string(),
        Kind::HybridCountryInvalid => rng.pick(COUNTRY_INVALID).to_string(),
        _ => rng.pick(COUNTRY_CODES).to_string(),
    };
    let synced = kind != Kind::CloudOnly;
    let emp = employee_id(i, kind, last_employee_id);
    let already = kind == Kind::HybridAlreadyCorrect;
    let created = created_date_time(rng);
    let ext = extension_attributes(synced, &personal_email, &country);
    let user = json!({
        "id": id,
        "userPrincipalName": upn,
        "displayName": format!("{first} {last}"),
        "givenName": first,
        "surname": last,
        "mail": upn,
        "jobTitle": rng.pick(JOBS),
        "businessPhones": [],
        "mobilePhone": null,
        "officeLocation": null,
        "preferredLanguage": "en-US",
        "employeeId": emp,
        "otherMails": if already { json!([personal_email]) } else { json!([]) },
        "usageLocation": if already { Value::String(country.clone()) } else { Value::Null },
        "onPremisesSyncEnabled": if synced { Value::Bool(true) } else if i.is_multiple_of(2) { Value::Null } else { Value::Bool(false) },
        "onPremisesExtensionAttributes": ext,
        "onPremisesSamAccountName": if synced { Value::String(format!("{}{}", first.to_lowercase(), i)) } else { Value::Null },
        "onPremisesLastSyncDateTime": if synced { Value::String(created.clone()) } else { Value::Null },
        "createdDateTime": created,
        "accountEnabled": true,
        "userType": "Member",
    });
    (id, user)
}

/// The personal email of user `i`: accented or malformed for those categories.
fn personal_email(rng: &mut SplitMix64, i: usize, kind: Kind, first: &str, last: &str) -> String {
    let personal_domain = rng.pick(PERSONAL_DOMAINS);
    let personal_first = if kind == Kind::HybridEmailAccented {
        rng.pick(ACCENTED_FIRST)
    } else {
        first
    };
    if kind != Kind::HybridEmailInvalid {
        return format!(
            "{}.{}{}@{}",
            personal_first.to_lowercase(),
            last.to_lowercase(),
            i,
            personal_domain
        );
    }
    if i.is_multiple_of(2) {
        format!(
            "{}.{} at {}",
            first.to_lowercase(),
            last.to_lowercase(),
            personal_domain
        )
    } else {
        format!("{}{}@", first.to_lowercase(), i)
    }
}

/// `employeeId` of user `i`: none, the previous user's (a duplicate), or its own; remembers the
/// last one handed out.
fn employee_id(i: usize, kind: Kind, last_employee_id: &mut Option<String>) -> Value {
    let own = format!("{:06}", 100_000 + i);
    let emp = match kind {
        Kind::HybridNoEmployeeId => Value::Null,
        Kind::HybridDuplicateEmployeeId => match last_employee_id {
            Some(e) => Value::String(e.clone()),
            None => Value::String(own),
        },
        Kind::CloudOnly if i.is_multiple_of(2) => Value::Null,
        _ => Value::String(own),
    };
    if let Value::String(e) = &emp {
        if kind != Kind::HybridDuplicateEmployeeId {
            *last_employee_id = Some(e.clone());
        }
    }
    emp
}

/// A creation time within five years of 2020-01-01T00:00:00Z, as RFC 3339.
fn created_date_time(rng: &mut SplitMix64) -> String {
    // 2020-01-01T00:00:00Z
    let base_ts: i64 = 1_577_836_800;
    let created = base_ts + (rng.below(5 * 365 * 86_400)) as i64;
    time::OffsetDateTime::from_unix_timestamp(created)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| "2021-01-01T00:00:00Z".to_string())
}

/// `extensionAttribute1..15`, all null but for the personal email (1) and country (2) of a synced
/// user.
fn extension_attributes(synced: bool, personal_email: &str, country: &str) -> Map<String, Value> {
    let mut ext = Map::new();
    for k in 1..=15 {
        ext.insert(format!("extensionAttribute{k}"), Value::Null);
    }
    if synced {
        ext.insert(
            "extensionAttribute1".into(),
            Value::String(personal_email.to_string()),
        );
        ext.insert(
            "extensionAttribute2".into(),
            Value::String(country.to_string()),
        );
    }
    ext
}

/// Parses tenant JSON: either an array of users, or
/// `{"users": [...], "privilegedUserIds": ["id", ...]}`.
pub fn parse_tenant(text: &str) -> Result<TenantData, SandboxError> {
    let v: Value = serde_json::from_str(text)?;
    let (users, privileged) = match v {
        Value::Array(a) => (a, Vec::new()),
        Value::Object(mut o) => {
            let users = match o.remove("users") {
                Some(Value::Array(a)) => a,
                _ => return Err(SandboxError::Tenant("expected `users` array".into())),
            };
            let privileged = match o.remove("privilegedUserIds") {
                Some(Value::Array(a)) => a,
                None | Some(Value::Null) => Vec::new(),
                _ => {
                    return Err(SandboxError::Tenant(
                        "`privilegedUserIds` must be an array".into(),
                    ))
                }
            };
            (users, privileged)
        }
        _ => {
            return Err(SandboxError::Tenant(
                "expected an array or an object".into(),
            ))
        }
    };
    let mut out = Vec::with_capacity(users.len());
    for u in users {
        match u {
            Value::Object(m) => out.push(m),
            _ => {
                return Err(SandboxError::Tenant(
                    "every user must be a JSON object".into(),
                ))
            }
        }
    }
    let privileged = privileged
        .into_iter()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    Ok((out, privileged))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alpha2_list_is_sorted_and_complete() {
        let mut sorted = ISO_ALPHA2.to_vec();
        sorted.sort_unstable();
        assert_eq!(sorted, ISO_ALPHA2);
        assert_eq!(ISO_ALPHA2.len(), 249);
        assert!(is_iso_alpha2("DE") && !is_iso_alpha2("XX") && !is_iso_alpha2("de"));
    }

    #[test]
    fn generation_is_deterministic_and_mixed() {
        let (a, pa) = generate(200, 7);
        let (b, pb) = generate(200, 7);
        assert_eq!(a, b);
        assert_eq!(pa, pb);
        let (c, _) = generate(200, 8);
        assert_ne!(a, c);
        assert_eq!(pa.len(), 4);
        let cloud = a
            .iter()
            .filter(|u| u.get("onPremisesSyncEnabled") != Some(&Value::Bool(true)))
            .count();
        assert_eq!(cloud, 10);
    }
}
