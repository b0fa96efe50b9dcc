//! GET/list/PATCH/POST/DELETE users against the running sandbox.

mod support_graph;

use entra_sandbox::{SandboxOptions, TenantSource};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use support_graph::*;

#[tokio::test]
async fn get_user_returns_default_properties_unless_selected() {
    let env = fixture().await;
    let r = env.get(&format!("/v1.0/users/{U1}"), &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["id"], U1);
    assert_eq!(r.body["displayName"], "anna");
    assert!(r.body.get("businessPhones").is_some());
    assert!(
        r.body.get("employeeId").is_none(),
        "employeeId only with $select"
    );
    assert!(r.body.get("otherMails").is_none());
    assert!(r.body.get("onPremisesSyncEnabled").is_none());

    let r = env.get(&format!("/v1.0/users/{U1}"), &[("$select", "id,employeeId,otherMails,onPremisesExtensionAttributes,onPremisesSyncEnabled,usageLocation")]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["employeeId"], "E001");
    assert_eq!(r.body["otherMails"], json!([]));
    assert_eq!(r.body["onPremisesSyncEnabled"], true);
    assert_eq!(
        r.body["onPremisesExtensionAttributes"]["extensionAttribute1"],
        "anna@gmail.com"
    );
    assert!(
        r.body.get("displayName").is_none(),
        "unselected property absent"
    );

    // By userPrincipalName.
    let r = env
        .get("/v1.0/users/Anna@contoso.com", &[("$select", "id")])
        .await;
    assert_eq!(r.body["id"], U1);

    let r = env
        .get(&format!("/v1.0/users/{U1}"), &[("$select", "nope")])
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.message().contains("nope"));

    let r = env
        .get("/v1.0/users/11111111-1111-4111-8111-111111111111", &[])
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.code(), "Request_ResourceNotFound");
}

#[tokio::test]
async fn default_filters() {
    let env = fixture().await;
    let cases: Vec<(&str, Vec<&str>)> = vec![
        ("employeeId eq 'E001'", vec![U1]),
        ("employeeId in ('E001','E002','nope')", vec![U1, U2]),
        ("startsWith(employeeId,'E00')", vec![U1, U2, U4, ADMIN]),
        ("onPremisesSyncEnabled eq true", vec![U1, U2, U3, ADMIN]),
        ("onPremisesSyncEnabled eq false", vec![U5]),
        ("onPremisesSyncEnabled eq null", vec![U4]),
        (&format!("id eq '{U3}'")[..], vec![U3]),
        ("userPrincipalName eq 'ben@contoso.com'", vec![U2]),
        (
            "startsWith(employeeId,'E') and onPremisesSyncEnabled eq true",
            vec![U1, U2, ADMIN],
        ),
        ("employeeId eq 'X100' or employeeId eq 'E004'", vec![U3, U4]),
        ("otherMails/any(x:x eq 'carl@gmail.com')", vec![U3]),
    ]
    .into_iter()
    .map(|(f, ids)| (Box::leak(f.to_string().into_boxed_str()) as &str, ids))
    .collect();
    for (f, want) in cases {
        let r = env
            .get("/v1.0/users", &[("$filter", f), ("$select", "id")])
            .await;
        assert_eq!(r.status, StatusCode::OK, "{f}: {}", r.body);
        let mut want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
        want.sort();
        assert_eq!(r.ids(), want, "{f}");
    }
}

#[tokio::test]
async fn advanced_queries_need_consistency_level_and_count() {
    let env = fixture().await;
    for f in [
        "employeeId ne 'E001'",
        "not(onPremisesSyncEnabled eq true)",
        "otherMails/$count eq 0",
        "endsWith(userPrincipalName,'@contoso.com')",
    ] {
        let r = env.get("/v1.0/users", &[("$filter", f)]).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{f}");
        assert_eq!(r.code(), "Request_UnsupportedQuery", "{f}");
        // Header without $count=true is still refused.
        let r = env
            .get_h(
                "/v1.0/users",
                &[("$filter", f)],
                &[("ConsistencyLevel", "eventual")],
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{f}");
    }
    let r = advanced(&env, "otherMails/$count eq 0").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.ids(), {
        let mut v = vec![
            U1.to_string(),
            U2.to_string(),
            U5.to_string(),
            ADMIN.to_string(),
        ];
        v.sort();
        v
    });
    assert_eq!(r.body["@odata.count"], 4);
    let r = advanced(&env, "employeeId ne 'E001'").await;
    assert_eq!(r.body["@odata.count"], 5);
    let r = advanced(&env, "not(onPremisesSyncEnabled eq true)").await;
    assert_eq!(r.ids(), {
        let mut v = vec![U4.to_string(), U5.to_string()];
        v.sort();
        v
    });
    let r = advanced(&env, "endsWith(mail,'n@contoso.com')").await;
    assert_eq!(r.ids(), {
        let mut v = vec![U2.to_string(), ADMIN.to_string()];
        v.sort();
        v
    });

    // $count=true alone needs the header too.
    let r = env.get("/v1.0/users", &[("$count", "true")]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn unsupported_filters_and_top_limits() {
    let env = fixture().await;
    let r = env
        .get("/v1.0/users", &[("$filter", "employeeId eq")])
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::BAD_REQUEST, "BadRequest")
    );
    let r = env
        .get("/v1.0/users", &[("$filter", "faxNumber eq '1'")])
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::BAD_REQUEST, "Request_UnsupportedQuery")
    );
    let r = env
        .get("/v1.0/users", &[("$filter", "employeeId gt 'A'")])
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::BAD_REQUEST, "Request_UnsupportedQuery")
    );
    for top in ["1000", "0", "abc"] {
        let r = env.get("/v1.0/users", &[("$top", top)]).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "$top={top}");
        assert!(r.message().contains("between 1 and 999"), "{}", r.message());
    }
    let r = env.get("/v1.0/users", &[("$top", "999")]).await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn paging_with_next_links() {
    let env = start(SandboxOptions {
        tenant: TenantSource::Generated {
            users: 250,
            seed: 3,
        },
        ..Default::default()
    })
    .await;
    // Default page size 100.
    let first = env.get("/v1.0/users", &[]).await;
    assert_eq!(first.body["value"].as_array().map(Vec::len), Some(100));
    assert!(first.body["@odata.context"]
        .as_str()
        .is_some_and(|c| c.contains("$metadata#users")));
    let mut seen = Vec::new();
    let mut pages = 0;
    let mut r = env
        .get(
            "/v1.0/users",
            &[("$top", "120"), ("$select", "id,employeeId")],
        )
        .await;
    loop {
        pages += 1;
        assert_eq!(r.status, StatusCode::OK);
        seen.extend(r.ids());
        match r.body["@odata.nextLink"].as_str() {
            Some(next) => {
                assert!(next.contains("$skiptoken="), "{next}");
                let next = next.to_string();
                r = env.get_abs(&next).await;
                // $select survives paging.
                assert!(r.body["value"][0].get("displayName").is_none());
            }
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let total = seen.len();
    seen.dedup();
    assert_eq!((total, seen.len()), (250, 250));
    let mut all = env.sb.user_ids();
    all.sort();
    assert_eq!(seen, all);
}

#[tokio::test]
async fn patch_updates_and_replaces_other_mails() {
    let env = fixture().await;
    let r = env
        .patch(
            U3,
            &json!({"otherMails": ["new@gmail.com"], "usageLocation": "DE"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let u = env.sb.user(U3).expect("user");
    assert_eq!(
        u["otherMails"],
        json!(["new@gmail.com"]),
        "whole collection replaced"
    );
    assert_eq!(u["usageLocation"], "DE");
    let c = env.sb.counters();
    assert_eq!((c.patches, c.effective_patches, c.writes), (1, 1, 1));
    // Same values again: accepted, counted as a patch but not an effective change.
    let r = env
        .patch(U3, &json!({"otherMails": ["new@gmail.com"]}))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let c = env.sb.counters();
    assert_eq!((c.patches, c.effective_patches), (2, 1));
}

#[tokio::test]
async fn patch_validation_errors() {
    let env = fixture().await;
    let many: Vec<String> = (0..251).map(|i| format!("a{i}@x.com")).collect();
    let long = format!("{}@x.com", "a".repeat(250));
    let cases: Vec<(&str, Value, StatusCode, &str, &str)> = vec![
        (
            U1,
            json!({"otherMails": many}),
            StatusCode::BAD_REQUEST,
            "Request_BadRequest",
            "otherMails",
        ),
        (
            U1,
            json!({"otherMails": [long]}),
            StatusCode::BAD_REQUEST,
            "Request_BadRequest",
            "otherMails",
        ),
        (
            U1,
            json!({"otherMails": ["josé@gmail.com"]}),
            StatusCode::BAD_REQUEST,
            "Request_BadRequest",
            "otherMails",
        ),
        (
            U1,
            json!({"otherMails": "a@b.c"}),
            StatusCode::BAD_REQUEST,
            "Request_BadRequest",
            "otherMails",
        ),
        (
            U1,
            json!({"usageLocation": "Germany"}),
            StatusCode::BAD_REQUEST,
            "Request_BadRequest",
            "usageLocation",
        ),
        (
            U1,
            json!({"usageLocation": "XX"}),
            StatusCode::BAD_REQUEST,
            "Request_BadRequest",
            "usageLocation",
        ),
        (
            U1,
            json!({"usageLocation": null}),
            StatusCode::BAD_REQUEST,
            "Request_BadRequest",
            "usageLocation",
        ),
        (
            U1,
            json!({"favouriteColour": "blue"}),
            StatusCode::BAD_REQUEST,
            "Request_BadRequest",
            "favouriteColour",
        ),
        (
            U1,
            json!({"id": U2}),
            StatusCode::BAD_REQUEST,
            "Request_BadRequest",
            "read-only",
        ),
        (
            U1,
            json!({"onPremisesSyncEnabled": false}),
            StatusCode::BAD_REQUEST,
            "Request_BadRequest",
            "read-only",
        ),
        (
            U1,
            json!({"createdDateTime": "2020-01-01T00:00:00Z"}),
            StatusCode::BAD_REQUEST,
            "Request_BadRequest",
            "read-only",
        ),
        (
            U1,
            json!({"displayName": "x"}),
            StatusCode::BAD_REQUEST,
            "Request_BadRequest",
            "on-premises mastered",
        ),
        (
            U1,
            json!({"employeeId": "E9"}),
            StatusCode::BAD_REQUEST,
            "Request_BadRequest",
            "on-premises mastered",
        ),
        (
            U1,
            json!({"onPremisesExtensionAttributes": {"extensionAttribute1": "x"}}),
            StatusCode::BAD_REQUEST,
            "Request_BadRequest",
            "on-premises mastered",
        ),
        (
            U1,
            json!({"mail": "x@contoso.com", "otherMails": []}),
            StatusCode::BAD_REQUEST,
            "Request_BadRequest",
            "on-premises mastered",
        ),
        (
            "11111111-1111-4111-8111-111111111111",
            json!({"usageLocation": "DE"}),
            StatusCode::NOT_FOUND,
            "Request_ResourceNotFound",
            "does not exist",
        ),
    ];
    for (id, body, status, code, msg) in cases {
        let r = env.patch(id, &body).await;
        assert_eq!(r.status, status, "{body}");
        assert_eq!(r.code(), code, "{body}");
        assert!(r.message().contains(msg), "{body}: {}", r.message());
        let inner = &r.body["error"]["innerError"];
        assert!(
            inner["date"].is_string() && inner["request-id"].is_string(),
            "{}",
            r.body
        );
        assert_eq!(
            inner["request-id"].as_str(),
            r.header("request-id").as_deref()
        );
    }
    // Nothing was changed by the refused requests.
    let u = env.sb.user(U1).expect("user");
    assert_eq!(
        (u["otherMails"].clone(), u["usageLocation"].clone()),
        (json!([]), Value::Null)
    );
    // Cloud-only users may update displayName / employeeId.
    let r = env
        .patch(U4, &json!({"displayName": "Dora", "employeeId": "E004B"}))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    // Malformed JSON.
    let raw = env
        .http
        .patch(env.url(&format!("/v1.0/users/{U1}")))
        .bearer_auth(&env.token)
        .header("content-type", "application/json")
        .header("client-request-id", "my-client-id")
        .body("{not json")
        .send()
        .await
        .expect("send");
    let r = into_resp(raw).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        r.header("client-request-id").as_deref(),
        Some("my-client-id")
    );
    assert_eq!(
        r.body["error"]["innerError"]["client-request-id"],
        "my-client-id"
    );
}

#[tokio::test]
async fn privileged_admin_needs_directory_role_for_other_mails() {
    let env = fixture().await;
    let r = env
        .patch(ADMIN, &json!({"otherMails": ["adm@gmail.com"]}))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.code(), "Authorization_RequestDenied");
    assert_eq!(
        r.message(),
        "Insufficient privileges to complete the operation."
    );
    assert_eq!(env.sb.user(ADMIN).expect("admin")["otherMails"], json!([]));
    // usageLocation is not a sensitive property.
    let r = env.patch(ADMIN, &json!({"usageLocation": "US"})).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    env.sb.set_privileged_admin_role_granted(true);
    let r = env
        .patch(ADMIN, &json!({"otherMails": ["adm@gmail.com"]}))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        env.sb.user(ADMIN).expect("admin")["otherMails"],
        json!(["adm@gmail.com"])
    );
}

#[tokio::test]
async fn creates_and_deletes_are_recorded() {
    let env = fixture().await;
    let r = env
        .send(Method::POST, "/v1.0/users", &json!({"displayName": "x"}))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = env
        .send(
            Method::POST,
            "/v1.0/users",
            &json!({
        "accountEnabled": true, "displayName": "New", "mailNickname": "new",
        "userPrincipalName": "new@contoso.com", "passwordProfile": {"password": "x"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let new_id = r.body["id"].as_str().expect("id").to_string();
    let r = env
        .send(
            Method::DELETE,
            &format!("/v1.0/users/{new_id}"),
            &Value::Null,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = env
        .send(
            Method::DELETE,
            &format!("/v1.0/users/{new_id}"),
            &Value::Null,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let c = env.sb.counters();
    assert_eq!((c.creates, c.deletes), (2, 2));
    assert_eq!(c.per_route.get("POST /v1.0/users"), Some(&2));
    assert_eq!(c.per_route.get("DELETE /v1.0/users/{id}"), Some(&2));
    let reqs = env.sb.requests();
    let posts: Vec<_> = reqs
        .iter()
        .filter(|r| r.method == "POST" && r.path == "/v1.0/users")
        .collect();
    assert_eq!(posts.len(), 2);
    assert!(posts[1]
        .body
        .as_deref()
        .is_some_and(|b| b.contains("new@contoso.com")));
    assert_eq!(posts[1].status, 201);
}

#[tokio::test]
async fn unauthenticated_and_bad_tokens_get_401() {
    let env = fixture().await;
    let r = into_resp(
        env.http
            .get(env.url("/v1.0/users"))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.code(), "InvalidAuthenticationToken");
    let r = into_resp(
        env.http
            .get(env.url("/v1.0/users"))
            .bearer_auth("not.a.jwt")
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let wrong_aud = env.sb.identity().mint(
        &entra_sandbox::identity::TokenSpec::graph(
            env.sb.identity(),
            &env.sb.managed_identity_app_id(),
        )
        .with_audience("https://management.azure.com"),
    );
    let r = into_resp(
        env.http
            .patch(env.url(&format!("/v1.0/users/{U1}")))
            .bearer_auth(wrong_aud)
            .json(&json!({"usageLocation": "DE"}))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(env.sb.user(U1).expect("u")["usageLocation"], Value::Null);
}

#[tokio::test]
async fn common_headers_and_resource_units() {
    let env = fixture().await;
    let r = env
        .get_h("/v1.0/users", &[], &[("client-request-id", "abc-123")])
        .await;
    assert_eq!(r.header("client-request-id").as_deref(), Some("abc-123"));
    assert!(r.header("request-id").is_some_and(|v| v.len() == 36));
    assert!(r.header("x-ms-ags-diagnostic").is_some());
    assert_eq!(r.header("x-ms-resource-unit").as_deref(), Some("2"));
    let r = env.get("/v1.0/users", &[("$select", "id")]).await;
    assert_eq!(r.header("x-ms-resource-unit").as_deref(), Some("1"));
    let r = env.get("/v1.0/users", &[("$top", "5")]).await;
    assert_eq!(r.header("x-ms-resource-unit").as_deref(), Some("1"));
    let r = env
        .get(&format!("/v1.0/users/{U1}"), &[("$expand", "manager")])
        .await;
    assert_eq!(r.header("x-ms-resource-unit").as_deref(), Some("2"));
    let r = env.get(&format!("/v1.0/users/{U1}"), &[]).await;
    assert_eq!(r.header("x-ms-resource-unit").as_deref(), Some("1"));
    let gen_id = r.header("request-id");
    assert_eq!(
        r.header("client-request-id"),
        gen_id,
        "generated when not sent"
    );
}

async fn advanced(env: &Env, f: &str) -> Resp {
    env.get_h(
        "/v1.0/users",
        &[("$filter", f), ("$count", "true"), ("$select", "id")],
        &[("ConsistencyLevel", "eventual")],
    )
    .await
}
