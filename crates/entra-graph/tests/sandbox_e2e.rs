//! End to end against `entra-sandbox` with the real `azure_identity::ManagedIdentityCredential`
//! (IMDS flavour, the one it picks when no variable is set), its calls brought to the sandbox by
//! `Sandbox::sdk_transport`: no process environment is touched.

use std::time::Duration;

use entra_core::{AlternateEmail, Change, CountryCode, OtherMails, UserPatch};
use entra_graph::{
    build_credential, CredentialChoice, CredentialOptions, DeltaCursor, DeltaNext, GraphClient,
    GraphClientOptions, RetryPolicy,
};
use entra_sandbox::{FaultRule, Sandbox, SandboxOptions, TenantSource};
use serde_json::Value;

const SELECT: &[&str] = &[
    "id",
    "userPrincipalName",
    "employeeId",
    "otherMails",
    "usageLocation",
    "onPremisesSyncEnabled",
];

#[tokio::test]
async fn managed_identity_lists_users_and_patches_one_on_the_sandbox() {
    let sandbox = Sandbox::start(SandboxOptions {
        tenant: TenantSource::Generated { users: 25, seed: 7 },
        // The sandbox's own fault injection: the first list page is a 503, the first PATCH a 429
        // with a fractional Retry-After, the first single-user GET a dropped connection.
        faults: vec![
            FaultRule::parse("GET /v1.0/users;first=1;status=503").expect("rule"),
            FaultRule::parse("PATCH /v1.0/users/*;first=1;status=429,retry=0.05").expect("rule"),
            FaultRule::parse("GET /v1.0/users/*;first=1;reset").expect("rule"),
        ],
        ..Default::default()
    })
    .await
    .expect("sandbox starts");
    // No variable is set, so the credential calls IMDS; the sandbox's transport brings that call here.
    let credential = build_credential(
        CredentialChoice::ManagedIdentity { client_id: None },
        CredentialOptions {
            client_options: azure_core::http::ClientOptions {
                transport: Some(sandbox.sdk_transport()),
                ..Default::default()
            },
        },
    )
    .expect("credential");
    let mut opts = GraphClientOptions::new(
        url::Url::parse(&sandbox.graph_base_url()).expect("url"),
        credential,
    );
    opts.retry = RetryPolicy {
        max_attempts: 4,
        base_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(200),
        deadline: Duration::from_secs(20),
    };
    opts.max_writes_per_minute = 6_000;
    let client = GraphClient::new(opts).expect("client");

    // List everyone, 10 per page, following nextLinks.
    let mut pager = client.list_users(None, SELECT, 10);
    let mut users: Vec<Value> = Vec::new();
    let mut pages = 0;
    while let Some(page) = pager.next_page().await.expect("page") {
        pages += 1;
        users.extend(page);
    }
    assert_eq!(users.len(), sandbox.user_count());
    assert!(pages >= 3, "{pages} pages");
    for u in &users {
        assert!(
            u.get("employeeId").is_some(),
            "selected property present: {u}"
        );
    }

    // Pick a user that is not a privileged admin.
    let privileged = sandbox.privileged_user_ids();
    let target = users
        .iter()
        .filter_map(|u| u["id"].as_str())
        .find(|id| !privileged.contains(&id.to_string()))
        .expect("a non-privileged user")
        .to_string();

    let patch = UserPatch {
        other_mails: Some(
            OtherMails::new([AlternateEmail::parse("e2e.alt@example.org").expect("mail")])
                .expect("mails"),
        ),
        usage_location: Some(Change::Set(CountryCode::parse("NZ").expect("country"))),
    };
    client.patch_user(&target, &patch).await.expect("patched");

    let stored = sandbox.user(&target).expect("stored user");
    assert_eq!(
        stored["otherMails"],
        serde_json::json!(["e2e.alt@example.org"])
    );
    assert_eq!(stored["usageLocation"], "NZ");
    let read_back = client
        .get_user(&target, &["id", "otherMails", "usageLocation"])
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(read_back["usageLocation"], "NZ");
    assert_eq!(
        client
            .get_user("00000000-0000-4000-8000-000000000000", &["id"])
            .await
            .expect("404 is None"),
        None
    );

    // A privileged admin: the default identity holds no admin role → typed 403.
    if let Some(admin) = privileged.first() {
        let err = client.patch_user(admin, &patch).await.expect_err("denied");
        assert!(err.is_privileged_denied(), "{err}");
        assert!(!err.to_string().contains("e2e.alt"), "{err}");
    }

    // A batch of three non-privileged users.
    let batch: Vec<(String, UserPatch)> = users
        .iter()
        .filter_map(|u| u["id"].as_str())
        .filter(|id| !privileged.contains(&id.to_string()) && *id != target)
        .take(3)
        .map(|id| {
            (
                id.to_string(),
                UserPatch {
                    other_mails: None,
                    usage_location: Some(Change::Set(CountryCode::parse("JP").expect("JP"))),
                },
            )
        })
        .collect();
    let results = client.patch_users_batch(&batch).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    for (id, _) in &batch {
        assert_eq!(sandbox.user(id).expect("user")["usageLocation"], "JP");
    }

    // A full delta round ends in a deltaLink.
    let mut cursor = DeltaCursor::start(&["id", "usageLocation"]);
    let mut seen = 0;
    let delta_link = loop {
        let page = client.delta_page(&cursor).await.expect("delta");
        seen += page.users.len();
        match page.next {
            DeltaNext::More(next) => cursor = DeltaCursor::Link(next),
            DeltaNext::Done(link) => break link,
        }
    };
    assert_eq!(seen, sandbox.user_count());
    let again = client
        .delta_page(&DeltaCursor::Link(delta_link))
        .await
        .expect("delta from the stored link");
    assert!(matches!(again.next, DeltaNext::Done(_)));

    // What the sandbox saw: every Graph read carried $select, every call a bearer token.
    let requests = sandbox.requests();
    let imds: Vec<_> = requests
        .iter()
        .filter(|r| r.path == entra_sandbox::identity::IMDS_TOKEN_PATH)
        .collect();
    assert!(
        !imds.is_empty() && imds.iter().all(|r| r.status == 200),
        "the token came from the sandbox's IMDS: {:?}",
        imds.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    let graph: Vec<_> = requests
        .iter()
        .filter(|r| r.path.starts_with("/v1.0/") && !r.batch_item)
        .collect();
    assert!(!graph.is_empty());
    for r in &graph {
        let header = |name: &str| {
            r.headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.to_string())
                .unwrap_or_default()
        };
        assert!(
            header("authorization").starts_with("Bearer ey"),
            "{}",
            r.route
        );
        assert!(
            uuid::Uuid::parse_str(&header("client-request-id")).is_ok(),
            "{}",
            r.route
        );
        // First pages carry our $select; nextLinks/deltaLinks are followed verbatim (the sandbox, like
        // Graph, keeps the query in the skip token), so we only check the ones we built.
        if r.method == "GET" && !r.query.contains("skiptoken") && !r.query.contains("deltatoken") {
            assert!(r.query.contains("$select="), "{} {}", r.route, r.query);
        }
    }
    // Batch items arrived as individual PATCHes with our Content-Type.
    let items: Vec<_> = requests.iter().filter(|r| r.batch_item).collect();
    assert_eq!(items.len(), 3);
    assert!(
        items.iter().all(|r| r.method == "PATCH" && r.status == 204),
        "{items:?}"
    );
    // The injected faults were absorbed by retries: one 429, one 503, one reset.
    let stats = client.stats();
    assert_eq!(stats.throttled, 1);
    assert!(stats.retried >= 3, "{stats:?}");
    assert_eq!(sandbox.counters().faults_injected, 3);
    assert!(stats.writes >= 5, "{stats:?}");
}
