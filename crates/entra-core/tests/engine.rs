//! End-to-end decisions of the pure engine over realistic users.

use entra_core::{
    plan_rollback, plan_user, plan_user_among, AddressBook, Decision, EmployeeIdIndex,
    EnrichPolicy, HrIndex, OtherMailsMode, Outcome, RecordedValues, RollbackRefusal, ScopeFilter,
    SourceLookup, SourceSpec, SourceValues, UserPatch, UserRecord,
};
use serde_json::{json, Value};

fn user(v: Value) -> UserRecord {
    UserRecord::from_json(v).expect("test user")
}

fn hybrid(
    id: &str,
    employee_id: Option<&str>,
    other_mails: &[&str],
    usage: Option<&str>,
) -> UserRecord {
    user(json!({
        "id": id,
        "userPrincipalName": format!("{id}@contoso.com"),
        "employeeId": employee_id,
        "onPremisesSyncEnabled": true,
        "otherMails": other_mails,
        "usageLocation": usage,
    }))
}

fn body(d: &Decision) -> Value {
    serde_json::to_value(d.patch.as_ref().expect("a patch")).expect("serializable")
}

fn replace() -> EnrichPolicy {
    EnrichPolicy::default()
}

fn merge() -> EnrichPolicy {
    EnrichPolicy {
        mode: OtherMailsMode::Merge,
        ..EnrichPolicy::default()
    }
}

fn found(email: Option<&str>, country: Option<&str>) -> SourceValues {
    SourceValues::new(email, country)
}

/// Applies a patch the way Graph would, so the engine can be re-run on the result.
fn apply(user: &UserRecord, patch: &UserPatch) -> UserRecord {
    let mut json = user.clone().into_json();
    let body = serde_json::to_value(patch).expect("serializable");
    if let (Value::Object(target), Value::Object(changes)) = (&mut json, body) {
        for (k, v) in changes {
            target.insert(k, v);
        }
    }
    UserRecord::from_json(json).expect("still a user")
}

fn assert_allow_listed(d: &Decision) {
    if let Some(patch) = &d.patch {
        assert!(!patch.is_empty(), "empty patch: {d:?}");
        let Value::Object(map) = serde_json::to_value(patch).expect("serializable") else {
            panic!("patch is not an object");
        };
        assert!(!map.is_empty());
        for key in map.keys() {
            assert!(
                key == "otherMails" || key == "usageLocation",
                "unexpected key {key}"
            );
        }
        assert!(matches!(d.outcome, Outcome::Updated { .. }), "{d:?}");
    } else {
        assert!(!matches!(d.outcome, Outcome::Updated { .. }), "{d:?}");
    }
}

#[test]
fn table_of_realistic_users() {
    let long_email = format!("{}@example.org", "a".repeat(245));
    struct Case {
        name: &'static str,
        policy: EnrichPolicy,
        user: UserRecord,
        hr: Option<SourceValues>, // None → not found
        duplicate_source: bool,
        duplicate_target: bool,
        outcome: Outcome,
        body: Option<Value>,
        issues: Vec<&'static str>,
    }
    let cases = vec![
        Case {
            name: "cloud-only user is out of scope",
            policy: replace(),
            user: user(json!({"id": "c1", "employeeId": "E1", "onPremisesSyncEnabled": null, "otherMails": []})),
            hr: Some(found(Some("jane@example.org"), Some("DE"))),
            duplicate_source: false,
            duplicate_target: false,
            outcome: Outcome::OutOfScope,
            body: None,
            issues: vec![],
        },
        Case {
            name: "hybrid user with a valid email",
            policy: replace(),
            user: hybrid("h1", Some("E1"), &[], Some("DE")),
            hr: Some(found(Some(" jane.doe@example.org "), Some("DE"))),
            duplicate_source: false,
            duplicate_target: false,
            outcome: Outcome::Updated { properties: vec!["otherMails"] },
            body: Some(json!({"otherMails": ["jane.doe@example.org"]})),
            issues: vec![],
        },
        Case {
            name: "already correct, case differs",
            policy: replace(),
            user: hybrid("h2", Some("E2"), &["Jane.Doe@Example.org"], Some("de")),
            hr: Some(found(Some("jane.doe@example.org"), Some("Germany"))),
            duplicate_source: false,
            duplicate_target: false,
            outcome: Outcome::Unchanged,
            body: None,
            issues: vec![],
        },
        Case {
            name: "accented email is refused",
            policy: replace(),
            user: hybrid("h3", Some("E3"), &[], Some("ES")),
            hr: Some(found(Some("josé.núñez@correo.es"), Some("ES"))),
            duplicate_source: false,
            duplicate_target: false,
            outcome: Outcome::InvalidValue {
                field: "otherMails",
                reason: "contains non-ASCII (accented) characters, which Graph refuses in otherMails".into(),
            },
            body: None,
            issues: vec![],
        },
        Case {
            name: "email longer than 250 characters is refused",
            policy: replace(),
            user: hybrid("h4", Some("E4"), &[], Some("US")),
            hr: Some(found(Some(&long_email), Some("US"))),
            duplicate_source: false,
            duplicate_target: false,
            outcome: Outcome::InvalidValue { field: "otherMails", reason: "is longer than 250 characters".into() },
            body: None,
            issues: vec![],
        },
        Case {
            name: "missing employeeId",
            policy: replace(),
            user: hybrid("h5", None, &[], None),
            hr: None,
            duplicate_source: false,
            duplicate_target: false,
            outcome: Outcome::NoMatchingValue,
            body: None,
            issues: vec![],
        },
        Case {
            name: "HR has the employeeId twice",
            policy: replace(),
            user: hybrid("h6", Some("E6"), &[], None),
            hr: Some(found(Some("a@example.org"), None)),
            duplicate_source: true,
            duplicate_target: false,
            outcome: Outcome::DuplicateSourceEntries,
            body: None,
            issues: vec![],
        },
        Case {
            name: "two directory users share the employeeId",
            policy: replace(),
            user: hybrid("h7", Some("E7"), &[], None),
            hr: Some(found(Some("a@example.org"), None)),
            duplicate_source: false,
            duplicate_target: true,
            outcome: Outcome::DuplicateTargetEntries,
            body: None,
            issues: vec![],
        },
        Case {
            name: "country name becomes an alpha-2 usageLocation",
            policy: replace(),
            user: hybrid("h8", Some("E8"), &["max@example.de"], None),
            hr: Some(found(Some("max@example.de"), Some("Germany"))),
            duplicate_source: false,
            duplicate_target: false,
            outcome: Outcome::Updated { properties: vec!["usageLocation"] },
            body: Some(json!({"usageLocation": "DE"})),
            issues: vec![],
        },
        Case {
            name: "invalid country, valid email: otherMails only, issue recorded",
            policy: replace(),
            user: hybrid("h9", Some("E9"), &[], None),
            hr: Some(found(Some("kim@example.org"), Some("Atlantis"))),
            duplicate_source: false,
            duplicate_target: false,
            outcome: Outcome::Updated { properties: vec!["otherMails"] },
            body: Some(json!({"otherMails": ["kim@example.org"]})),
            issues: vec!["usageLocation"],
        },
        Case {
            name: "Merge adds the HR value to the existing ones",
            policy: merge(),
            user: hybrid("h10", Some("E10"), &["old@example.org"], Some("GB")),
            hr: Some(found(Some("new@example.org"), Some("United Kingdom"))),
            duplicate_source: false,
            duplicate_target: false,
            outcome: Outcome::Updated { properties: vec!["otherMails"] },
            body: Some(json!({"otherMails": ["old@example.org", "new@example.org"]})),
            issues: vec![],
        },
        Case {
            name: "Merge with the value already present (case differs) writes nothing",
            policy: merge(),
            user: hybrid("h11", Some("E11"), &["old@example.org", "NEW@example.org"], Some("GB")),
            hr: Some(found(Some("new@example.org"), Some("GB"))),
            duplicate_source: false,
            duplicate_target: false,
            outcome: Outcome::Unchanged,
            body: None,
            issues: vec![],
        },
        Case {
            name: "Replace removes the former personal address",
            policy: replace(),
            user: hybrid("h12", Some("E12"), &["former@example.org", "new@example.org"], Some("US")),
            hr: Some(found(Some("new@example.org"), Some("USA"))),
            duplicate_source: false,
            duplicate_target: false,
            outcome: Outcome::Updated { properties: vec!["otherMails"] },
            body: Some(json!({"otherMails": ["new@example.org"]})),
            issues: vec![],
        },
        Case {
            name: "no personal email in HR but a country: usageLocation only",
            policy: replace(),
            user: hybrid("h13", Some("E13"), &[], None),
            hr: Some(found(Some("  "), Some("fr"))),
            duplicate_source: false,
            duplicate_target: false,
            outcome: Outcome::Updated { properties: vec!["usageLocation"] },
            body: Some(json!({"usageLocation": "FR"})),
            issues: vec!["otherMails"],
        },
        Case {
            name: "nothing in HR",
            policy: replace(),
            user: hybrid("h14", Some("E14"), &[], None),
            hr: Some(found(None, None)),
            duplicate_source: false,
            duplicate_target: false,
            outcome: Outcome::SourceValueMissing { field: "otherMails" },
            body: None,
            issues: vec!["usageLocation"],
        },
        Case {
            name: "both values written, usageLocation off leaves it alone",
            policy: EnrichPolicy { write_usage_location: false, ..replace() },
            user: hybrid("h15", Some("E15"), &[], None),
            hr: Some(found(Some("pat@example.org"), Some("not a country"))),
            duplicate_source: false,
            duplicate_target: false,
            outcome: Outcome::Updated { properties: vec!["otherMails"] },
            body: Some(json!({"otherMails": ["pat@example.org"]})),
            issues: vec![],
        },
        Case {
            name: "both fields written at once",
            policy: replace(),
            user: hybrid("h16", Some("E16"), &[], Some("US")),
            hr: Some(found(Some("lee@example.org"), Some("Japan"))),
            duplicate_source: false,
            duplicate_target: false,
            outcome: Outcome::Updated { properties: vec!["otherMails", "usageLocation"] },
            body: Some(json!({"otherMails": ["lee@example.org"], "usageLocation": "JP"})),
            issues: vec![],
        },
        Case {
            name: "invalid email and invalid country: InvalidValue names otherMails, issue for usageLocation",
            policy: replace(),
            user: hybrid("h17", Some("E17"), &[], None),
            hr: Some(found(Some("not-an-address"), Some("ZZ"))),
            duplicate_source: false,
            duplicate_target: false,
            outcome: Outcome::InvalidValue { field: "otherMails", reason: "is not a valid email address".into() },
            body: None,
            issues: vec!["usageLocation"],
        },
    ];

    for case in cases {
        let mut hr = HrIndex::new();
        if let (Some(values), Some(eid)) = (&case.hr, case.user.employee_id()) {
            hr.insert(eid, values.clone());
            if case.duplicate_source {
                hr.insert(&eid.to_lowercase(), values.clone());
            }
        }
        let mut targets = EmployeeIdIndex::new();
        if let Some(eid) = case.user.employee_id() {
            targets.insert(eid, case.user.id());
            if case.duplicate_target {
                targets.insert(eid, "another-user");
            }
        }
        let duplicate = case
            .user
            .employee_id()
            .is_some_and(|e| targets.is_duplicate(e));
        let decision = plan_user(
            &case.policy,
            &case.user,
            hr.lookup_user(&case.user),
            duplicate,
        );
        assert_eq!(decision.outcome, case.outcome, "{}", case.name);
        assert_allow_listed(&decision);
        match &case.body {
            Some(expected) => assert_eq!(&body(&decision), expected, "{}", case.name),
            None => assert!(
                decision.patch.is_none(),
                "{}: {:?}",
                case.name,
                decision.patch
            ),
        }
        let issue_fields: Vec<&str> = decision.issues.iter().map(|i| i.field).collect();
        assert_eq!(
            issue_fields, case.issues,
            "{}: {:?}",
            case.name, decision.issues
        );
        assert_no_personal_email(&decision, case.hr.as_ref(), &case.user);
    }
}

fn assert_no_personal_email(d: &Decision, hr: Option<&SourceValues>, user: &UserRecord) {
    let text = format!(
        "{d:?} {} {} {} {:?}",
        d.outcome,
        d.outcome.describe(),
        serde_json::to_string(&d.outcome).unwrap_or_default(),
        d.issues
    );
    let mut secrets: Vec<String> = user.other_mails();
    if let Some(email) = hr.and_then(|h| h.personal_email.clone()) {
        secrets.push(email.trim().to_string());
    }
    for secret in secrets.iter().filter(|s| s.contains('@')) {
        assert!(
            !text.contains(secret.as_str()),
            "personal email leaked: {text}"
        );
        if let Some((local, _)) = secret.split_once('@') {
            if local.chars().count() > 3 {
                assert!(
                    !text.contains(&format!("{local}@")),
                    "local part leaked: {text}"
                );
            }
        }
    }
}

#[test]
fn merge_at_250_values_refuses() {
    let existing: Vec<String> = (0..250).map(|i| format!("old{i}@example.org")).collect();
    let refs: Vec<&str> = existing.iter().map(String::as_str).collect();
    let u = hybrid("m1", Some("M1"), &refs, Some("DE"));
    let values = found(Some("new@example.org"), Some("DE"));
    let d = plan_user(&merge(), &u, SourceLookup::Found(&values), false);
    assert!(d.patch.is_none());
    match &d.outcome {
        Outcome::InvalidValue { field, reason } => {
            assert_eq!(*field, "otherMails");
            assert!(
                reason.contains("250") && reason.contains("Replace"),
                "{reason}"
            );
        }
        other => panic!("{other:?}"),
    }
    // 249 existing values: one more fits.
    let u = hybrid("m2", Some("M2"), &refs[..249], Some("DE"));
    let d = plan_user(&merge(), &u, SourceLookup::Found(&values), false);
    let Value::Object(map) = body(&d) else {
        panic!()
    };
    assert_eq!(map["otherMails"].as_array().map(Vec::len), Some(250));
    // Replace mode is not limited by the old values.
    let u = hybrid("m3", Some("M3"), &refs, Some("DE"));
    let d = plan_user(&replace(), &u, SourceLookup::Found(&values), false);
    assert_eq!(body(&d), json!({"otherMails": ["new@example.org"]}));
}

#[test]
fn merge_keeps_graph_acceptable_values_and_drops_others_with_an_issue() {
    let u = hybrid(
        "m4",
        Some("M4"),
        &[
            "legacy-not-an-address",
            "müller@example.de",
            "  ",
            "ok@example.org",
        ],
        None,
    );
    let values = found(Some("new@example.org"), None);
    let policy = EnrichPolicy {
        write_usage_location: false,
        ..merge()
    };
    let d = plan_user(&policy, &u, SourceLookup::Found(&values), false);
    assert_eq!(
        body(&d),
        json!({"otherMails": ["legacy-not-an-address", "ok@example.org", "new@example.org"]})
    );
    assert_eq!(d.issues.len(), 1, "{:?}", d.issues);
    assert_eq!(d.issues[0].field, "otherMails");
    assert!(d.issues[0].reason.contains("dropped"), "{:?}", d.issues);
    assert!(!d.issues[0].reason.contains("müller"), "{:?}", d.issues);
}

#[test]
fn directory_source_and_custom_scope() {
    let spec = SourceSpec::default();
    let policy = EnrichPolicy {
        scope: ScopeFilter::parse(
            "onPremisesSyncEnabled eq true AND userPrincipalName NOT REGEX MATCH '^admin'",
        )
        .expect("scope"),
        write_usage_location: false,
        ..EnrichPolicy::default()
    };
    let u = user(json!({
        "id": "d1", "userPrincipalName": "jane@contoso.com", "onPremisesSyncEnabled": true,
        "employeeId": "100042", "otherMails": ["old@example.org"],
        "onPremisesExtensionAttributes": {"extensionAttribute1": "jane.home@example.org"}
    }));
    let values = spec.values_from_user(&u);
    let d = plan_user(&policy, &u, SourceLookup::Found(&values), false);
    assert_eq!(body(&d), json!({"otherMails": ["jane.home@example.org"]}));
    // The same user without an employeeId (or a blank one) is never written, even though the
    // directory source has a value for it: matching is by employeeId under every source.
    for eid in [json!(null), json!("  ")] {
        let mut raw = Value::Object(u.as_json().clone());
        raw["employeeId"] = eid;
        let no_eid = user(raw);
        let values = spec.values_from_user(&no_eid);
        let d = plan_user(&policy, &no_eid, SourceLookup::Found(&values), false);
        assert_eq!(d.outcome, Outcome::NoMatchingValue, "{d:?}");
        assert_eq!(d.outcome.code(), "ImportSkipped");
        assert!(d.patch.is_none());
    }
    let admin = user(json!({
        "id": "d2", "userPrincipalName": "admin-jane@contoso.com", "onPremisesSyncEnabled": true,
        "onPremisesExtensionAttributes": {"extensionAttribute1": "jane.home@example.org"}
    }));
    let values = spec.values_from_user(&admin);
    let d = plan_user(&policy, &admin, SourceLookup::Found(&values), false);
    assert_eq!(d.outcome, Outcome::OutOfScope);
    assert_eq!(
        policy.select_properties(Some(&spec)),
        vec![
            "id",
            "userPrincipalName",
            "mail",
            "employeeId",
            "otherMails",
            "usageLocation",
            "onPremisesSyncEnabled",
            "onPremisesExtensionAttributes"
        ]
    );
}

#[test]
fn rollback_restores_only_what_the_run_wrote() {
    let before_user = hybrid("r1", Some("R1"), &["former@example.org"], None);
    let values = found(Some("new@example.org"), Some("DE"));
    let d = plan_user(
        &replace(),
        &before_user,
        SourceLookup::Found(&values),
        false,
    );
    let patch = d.patch.expect("a patch");
    let before = RecordedValues::before(&before_user, &patch);
    let after = RecordedValues::after(&patch);
    assert_eq!(before.usage_location, Some(None));
    assert_eq!(after.usage_location, Some(Some("DE".into())));
    // The audit record survives JSON.
    let stored = serde_json::to_string(&(&before, &after)).expect("json");
    let (before, after): (RecordedValues, RecordedValues) =
        serde_json::from_str(&stored).expect("json");
    assert_eq!(
        serde_json::to_value(&before).expect("json"),
        json!({"otherMails": ["former@example.org"], "usageLocation": null})
    );

    let current = apply(&before_user, &patch);
    let rollback = plan_rollback(&current, &before, &after)
        .expect("allowed")
        .expect("a patch");
    assert_eq!(
        serde_json::to_value(&rollback).expect("json"),
        json!({"otherMails": ["former@example.org"], "usageLocation": null})
    );
    let restored = apply(&current, &rollback);
    assert_eq!(
        plan_rollback(&restored, &before, &before).expect("ok"),
        None
    );

    // Someone changed otherMails since: refused, naming the property.
    let changed = apply(
        &current,
        &UserPatch {
            other_mails: Some(
                entra_core::OtherMails::new([entra_core::AlternateEmail::parse(
                    "someone@example.org",
                )
                .expect("valid")])
                .expect("ok"),
            ),
            usage_location: None,
        },
    );
    let refusal = plan_rollback(&changed, &before, &after).unwrap_err();
    assert_eq!(
        refusal,
        RollbackRefusal::Changed {
            property: "otherMails"
        }
    );
    assert!(
        refusal.to_string().contains("otherMails changed"),
        "{refusal}"
    );
    assert!(!refusal.to_string().contains("someone@"), "{refusal}");

    // Case-only differences in the current value still count as "what the run wrote".
    let recased =
        user(json!({"id": "r1", "otherMails": ["NEW@example.org"], "usageLocation": "de"}));
    assert!(plan_rollback(&recased, &before, &after)
        .expect("allowed")
        .is_some());

    // usageLocation changed by someone else.
    let moved = user(json!({"id": "r1", "otherMails": ["new@example.org"], "usageLocation": "FR"}));
    assert_eq!(
        plan_rollback(&moved, &before, &after),
        Err(RollbackRefusal::Changed {
            property: "usageLocation"
        })
    );

    // Incomplete audit record.
    let half = RecordedValues {
        other_mails: None,
        usage_location: Some(None),
    };
    assert_eq!(
        plan_rollback(&current, &half, &RecordedValues::default()),
        Err(RollbackRefusal::IncompleteRecord {
            property: "usageLocation"
        })
    );
    assert_eq!(
        plan_rollback(
            &current,
            &RecordedValues::default(),
            &RecordedValues::default()
        ),
        Ok(None)
    );
    let dbg = format!("{before:?}");
    assert!(!dbg.contains("former@"), "{dbg}");
}

#[test]
fn denied_outcome_names_the_fix() {
    let o = Outcome::denied_privileged();
    assert_eq!(o.code(), "InsufficientRights");
    assert!(o
        .describe()
        .contains("Privileged Authentication Administrator"));
    assert!(o.describe().contains("exclude admins from ENRICH_SCOPE"));
    assert!(o.is_error());
}

// ------------------------------------------------------------------------------------------------
// Property-style loop over generated users.

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[(self.next() % items.len() as u64) as usize]
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

const EMAILS: &[&str] = &[
    "jane.doe@example.org",
    "JANE.DOE@EXAMPLE.ORG",
    "bob@mail.example.com",
    "b.o.b+tag@example.net",
    "josé@correo.es",
    "not-an-address",
    "two@@example.org",
    "a@b",
    " padded@example.org ",
    "",
    "x@example.org",
    "Renée@example.fr",
];
const COUNTRIES: &[&str] = &[
    "DE",
    "de",
    "DEU",
    "Germany",
    "United States of America",
    "USA",
    "UK",
    "gb",
    "Atlantis",
    "ZZ",
    "",
    "Côte d'Ivoire",
    "276",
    "France",
];
const CURRENT_LOCATIONS: &[Option<&str>] = &[None, Some("DE"), Some("us"), Some("GB"), Some("")];

fn generated_user(rng: &mut Rng, n: usize) -> UserRecord {
    let sync = rng
        .pick(&[json!(true), json!(true), json!(false), json!(null)])
        .clone();
    let mail_count = (rng.next() % 4) as usize;
    let mails: Vec<&str> = (0..mail_count).map(|_| *rng.pick(EMAILS)).collect();
    let eid = match rng.next() % 20 {
        0 => json!(null),
        1 => json!(format!("X{n}")),          // not in HR
        _ => json!(format!("E{}", n % 1950)), // users n and n+1950 share an employeeId
    };
    user(json!({
        "id": format!("user-{n}"),
        "employeeId": eid,
        "onPremisesSyncEnabled": sync,
        "otherMails": mails,
        "usageLocation": rng.pick(CURRENT_LOCATIONS),
        "userPrincipalName": format!("u{n}@contoso.com"),
    }))
}

#[test]
fn generated_users_never_produce_unsafe_or_redundant_writes() {
    let mut rng = Rng(20_260_401);
    let mut hr = HrIndex::new();
    let mut hr_values = std::collections::HashMap::new();
    for i in 0..2000 {
        let values = found(
            if rng.chance(90) {
                Some(*rng.pick(EMAILS))
            } else {
                None
            },
            if rng.chance(80) {
                Some(*rng.pick(COUNTRIES))
            } else {
                None
            },
        );
        hr.insert(&format!("e{i}"), values.clone());
        if rng.chance(5) {
            hr.insert(&format!("E{i} "), values.clone());
        }
        hr_values.insert(format!("e{i}"), values);
    }
    let users: Vec<UserRecord> = (0..2000).map(|n| generated_user(&mut rng, n)).collect();
    let scope = ScopeFilter::default();
    let mut targets = EmployeeIdIndex::new();
    for u in users.iter().filter(|u| scope.matches(u)) {
        if let Some(e) = u.employee_id() {
            targets.insert(e, u.id());
        }
    }
    let mut counts = std::collections::BTreeMap::new();
    for (n, u) in users.iter().enumerate() {
        let policy = if n % 2 == 0 { replace() } else { merge() };
        let duplicate = u.employee_id().is_some_and(|e| targets.is_duplicate(e));
        let lookup = hr.lookup_user(u);
        let d = plan_user(&policy, u, lookup, duplicate);
        *counts.entry(d.outcome.code()).or_insert(0usize) += 1;
        assert_allow_listed(&d);
        let hr_for_user = u
            .employee_id()
            .and_then(|e| hr_values.get(&e.to_lowercase()));
        assert_no_personal_email(&d, hr_for_user, u);

        if u.on_premises_sync_enabled() != Some(true) {
            assert_eq!(d.outcome, Outcome::OutOfScope);
        }
        if !matches!(lookup, SourceLookup::Found(_)) || duplicate {
            assert!(d.patch.is_none());
        }
        let Some(patch) = &d.patch else { continue };

        // Every value on the wire is valid.
        if let Some(mails) = &patch.other_mails {
            assert!(mails.as_slice().len() <= 250);
            for m in mails.as_slice() {
                assert!(
                    m.as_str().is_ascii()
                        && m.as_str().len() <= 250
                        && !m.as_str().trim().is_empty()
                );
            }
            let hr_email = hr_for_user
                .and_then(|v| v.personal_email.as_deref())
                .map(str::trim)
                .unwrap_or("");
            assert!(
                mails.as_slice().iter().any(|m| m.eq_ignore_case(hr_email)),
                "HR value written"
            );
            if policy.mode == OtherMailsMode::Replace {
                assert_eq!(mails.as_slice().len(), 1);
            } else {
                for old in u
                    .other_mails()
                    .iter()
                    .filter(|o| !o.trim().is_empty() && o.is_ascii())
                {
                    assert!(
                        mails.as_slice().iter().any(|m| m.eq_ignore_case(old)),
                        "Merge keeps existing values"
                    );
                }
            }
        }
        if let Some(entra_core::Change::Set(code)) = &patch.usage_location {
            assert!(entra_core::CountryCode::parse(code.as_str()).is_ok());
        }
        assert!(
            !matches!(patch.usage_location, Some(entra_core::Change::Clear)),
            "planning never clears"
        );

        // No redundant writes: once applied, the same inputs plan nothing more.
        let after = apply(u, patch);
        let again = plan_user(&policy, &after, hr.lookup_user(&after), duplicate);
        assert!(
            again.patch.is_none(),
            "second run wrote again: {:?} → {:?}",
            d,
            again
        );

        // Rollback of this very write is allowed and restores the previous set.
        let before_rec = RecordedValues::before(u, patch);
        let after_rec = RecordedValues::after(patch);
        match plan_rollback(&after, &before_rec, &after_rec) {
            Ok(Some(undo)) => {
                let restored = apply(&after, &undo);
                if patch.other_mails.is_some() {
                    let norm = |v: Vec<String>| {
                        let mut v: Vec<String> = v
                            .into_iter()
                            .map(|s| s.trim().to_ascii_lowercase())
                            .filter(|s| !s.is_empty())
                            .collect();
                        v.sort();
                        v.dedup();
                        v
                    };
                    assert_eq!(norm(restored.other_mails()), norm(u.other_mails()));
                }
            }
            Ok(None) => {}
            Err(RollbackRefusal::Unrestorable { .. }) => {
                // The previous set held a value Graph would refuse (e.g. accented): never written back.
                assert!(u.other_mails().iter().any(|m| !m.is_ascii()));
            }
            Err(other) => panic!("{other}"),
        }
    }
    // The generator reaches the interesting outcomes.
    for code in [
        "EntryExportUpdate",
        "NoChangeRequired",
        "EntrySynchronizationSkipped",
        "ImportSkipped",
        "InvalidValue",
        "DuplicateTargetEntries",
        "DuplicateSourceEntries",
        "MissingValues",
    ] {
        assert!(
            counts.get(code).copied().unwrap_or(0) > 0,
            "{code} never produced: {counts:?}"
        );
    }
}

#[test]
fn an_alternate_email_that_is_someone_elses_address_is_refused_and_the_country_still_written() {
    let jane = hybrid("jane", Some("E1"), &[], None);
    let mut book = AddressBook::new();
    book.insert_user(&user(json!({
        "id": "boss",
        "userPrincipalName": "boss@contoso.com",
        "mail": "Boss.Mail@contoso.com",
        "otherMails": ["boss.private@example.org"],
    })));
    for taken in [
        "boss@contoso.com",
        "boss.mail@CONTOSO.com",
        " boss.private@example.org ",
    ] {
        let hr = found(Some(taken), Some("DE"));
        let d = plan_user_among(&replace(), &jane, SourceLookup::Found(&hr), false, &book);
        assert_eq!(body(&d), json!({"usageLocation": "DE"}), "{taken}");
        let issue = d
            .issues
            .iter()
            .find(|i| i.field == "otherMails")
            .expect("an otherMails issue");
        assert!(issue.reason.contains("another user's"), "{}", issue.reason);
        assert!(!issue.reason.contains('@'), "{}", issue.reason);
        // Without the country, the refusal is the outcome itself.
        let hr = found(Some(taken), None);
        let d = plan_user_among(&replace(), &jane, SourceLookup::Found(&hr), false, &book);
        assert!(
            matches!(
                &d.outcome,
                Outcome::InvalidValue {
                    field: "otherMails",
                    ..
                }
            ),
            "{:?}",
            d.outcome
        );
        assert!(d.patch.is_none());
    }
    // The user's own sign-in name, even with no book at all.
    let hr = found(Some("JANE@contoso.com"), None);
    let d = plan_user(&replace(), &jane, SourceLookup::Found(&hr), false);
    match &d.outcome {
        Outcome::InvalidValue {
            field: "otherMails",
            reason,
        } => assert!(reason.contains("own sign-in name"), "{reason}"),
        other => panic!("{other:?}"),
    }
    // An address nobody holds, or one the user already holds itself, is fine.
    let hr = found(Some("jane.private@example.org"), None);
    let d = plan_user_among(&replace(), &jane, SourceLookup::Found(&hr), false, &book);
    assert_eq!(
        body(&d),
        json!({"otherMails": ["jane.private@example.org"]})
    );
    book.insert("jane", "jane.private@example.org");
    let d = plan_user_among(&replace(), &jane, SourceLookup::Found(&hr), false, &book);
    assert!(
        d.patch.is_some(),
        "the user's own planned address is not someone else's"
    );
}
