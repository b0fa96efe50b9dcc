//! $batch limits, dependsOn/424, per-item 429; Lifecycle Workflows resume.

mod support_graph;

use entra_sandbox::{FaultAction, FaultRule, FaultTrigger, SandboxOptions, TenantSource};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use support_graph::*;

fn get_item(id: &str, url: &str) -> Value {
    json!({"id": id, "method": "GET", "url": url})
}

#[tokio::test]
async fn batch_limits() {
    let env = fixture().await;
    let items: Vec<Value> = (0..21)
        .map(|i| get_item(&i.to_string(), &format!("/users/{U1}")))
        .collect();
    let r = env.batch(json!(items)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let items: Vec<Value> = (0..20)
        .map(|i| get_item(&i.to_string(), &format!("/users/{U1}?$select=id")))
        .collect();
    let r = env.batch(json!(items)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["responses"].as_array().map(Vec::len), Some(20));
    let r = env
        .batch(json!([get_item("1", "/users"), get_item("1", "/users")]))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.message().contains("unique"));
    let r = env.batch(json!([{"id": "1", "method": "PATCH", "url": format!("/users/{U1}"), "body": {"usageLocation": "DE"}}])).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "body without headers");
    assert_eq!(env.sb.user(U1).expect("u")["usageLocation"], Value::Null);
}

#[tokio::test]
async fn batch_depends_on_and_failed_dependency() {
    let env = fixture().await;
    let h = json!({"Content-Type": "application/json"});
    let r = env.batch(json!([
        {"id": "1", "method": "PATCH", "url": "/users/11111111-1111-4111-8111-111111111111", "headers": h, "body": {"usageLocation": "DE"}},
        {"id": "2", "method": "PATCH", "url": format!("/users/{U1}"), "headers": h, "body": {"usageLocation": "DE"}, "dependsOn": ["1"]},
        {"id": "3", "method": "PATCH", "url": format!("/users/{U2}"), "headers": h, "body": {"usageLocation": "FR"}},
        {"id": "4", "method": "GET", "url": format!("/users/{U2}?$select=id,usageLocation"), "dependsOn": ["3"]},
    ])).await;
    assert_eq!(r.status, StatusCode::OK);
    let item = |id: &str| {
        r.body["responses"]
            .as_array()
            .and_then(|a| a.iter().find(|x| x["id"] == id))
            .cloned()
            .expect("item")
    };
    assert_eq!(item("1")["status"], 404);
    assert_eq!(
        item("1")["body"]["error"]["code"],
        "Request_ResourceNotFound"
    );
    assert_eq!(item("2")["status"], 424);
    assert_eq!(item("3")["status"], 204);
    assert_eq!(item("4")["status"], 200);
    assert_eq!(
        item("4")["body"]["usageLocation"],
        "FR",
        "dependsOn ran 3 before 4"
    );
    assert_eq!(
        env.sb.user(U1).expect("u")["usageLocation"],
        Value::Null,
        "424 item not executed"
    );
    // Sub-requests are recorded as batch items.
    let reqs = env.sb.requests();
    assert_eq!(reqs.iter().filter(|r| r.batch_item).count(), 3);
}

#[tokio::test]
async fn batch_items_are_throttled_individually() {
    let env = fixture().await;
    env.sb.set_fault(FaultRule::new(
        "PATCH /v1.0/users/*",
        FaultTrigger::EveryNth(2),
        FaultAction::Status {
            status: 429,
            retry_after: Some(2.5),
        },
    ));
    let h = json!({"Content-Type": "application/json"});
    let items: Vec<Value> = [U1, U2, U3, U4]
        .iter()
        .enumerate()
        .map(|(i, u)| json!({"id": i.to_string(), "method": "PATCH", "url": format!("/users/{u}"), "headers": h, "body": {"usageLocation": "NL"}}))
        .collect();
    let r = env.batch(json!(items)).await;
    assert_eq!(r.status, StatusCode::OK);
    let statuses: Vec<i64> = r.body["responses"]
        .as_array()
        .expect("responses")
        .iter()
        .map(|x| x["status"].as_i64().unwrap_or(0))
        .collect();
    assert_eq!(statuses, vec![204, 429, 204, 429]);
    let throttled = &r.body["responses"][1];
    assert_eq!(throttled["headers"]["retry-after"], "2.5");
    assert_eq!(throttled["body"]["error"]["code"], "TooManyRequests");
    assert_eq!(env.sb.user(U2).expect("u")["usageLocation"], Value::Null);
    assert_eq!(env.sb.user(U3).expect("u")["usageLocation"], "NL");
}

#[tokio::test]
async fn batch_items_hit_the_real_write_quota() {
    // > 500 users → 8,000 RU / 10 s; write quota 3,000 / 150 s; time_scale 12 → 12.5 s window.
    let env = start(SandboxOptions {
        tenant: TenantSource::Generated {
            users: 600,
            seed: 1,
        },
        time_scale: 12.0,
        ..Default::default()
    })
    .await;
    let ids = env.sb.user_ids();
    let cloud: Vec<String> = ids
        .iter()
        .filter(|id| {
            env.sb
                .user(id)
                .is_some_and(|u| u["onPremisesSyncEnabled"] != true)
        })
        .cloned()
        .collect();
    let target = cloud.first().cloned().unwrap_or_else(|| ids[0].clone());
    let h = json!({"Content-Type": "application/json"});
    let mut ok = 0;
    let mut throttled = Vec::new();
    for b in 0..151 {
        let items: Vec<Value> = (0..20)
            .map(|i| json!({"id": format!("{i}"), "method": "PATCH", "url": format!("/users/{target}"), "headers": h,
                            "body": {"otherMails": [format!("x{b}-{i}@example.com")]}}))
            .collect();
        let r = env.batch(json!(items)).await;
        for it in r.body["responses"].as_array().expect("responses") {
            match it["status"].as_i64() {
                Some(204) => ok += 1,
                Some(429) => throttled.push(it.clone()),
                other => panic!("unexpected {other:?}: {it}"),
            }
        }
    }
    assert_eq!(ok, 3000);
    assert_eq!(throttled.len(), 20);
    let h = &throttled[0]["headers"];
    assert_eq!(h["x-ms-throttle-information"], "WriteLimitExceeded");
    let ra: f64 = h["retry-after"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("retry-after");
    assert!(ra > 0.0 && ra <= 12.5, "{ra}");
}

#[tokio::test]
async fn resume_forms_permissions_and_second_resume() {
    let env = fixture().await;
    env.sb.add_task_processing_result("wf1", "t1", "r1");
    env.sb.add_task_processing_result("wf1", "t1", "r2");
    let body = json!({"data": {"@odata.type": "#microsoft.graph.identityGovernance.customTaskExtensionCallbackData",
        "operationStatus": "Completed"}, "source": "entra-enrich", "type": "lifecycleEvent"});
    let v1 = "/v1.0/identityGovernance/lifecycleWorkflows/workflows/wf1/tasks/t1/taskProcessingResults/r1/resume";
    let r = env.send(Method::POST, v1, &body).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let recs = env.sb.resumes("wf1", "t1", "r1");
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].operation_status, "Completed");
    assert_eq!(recs[0].source.as_deref(), Some("entra-enrich"));
    assert_eq!(recs[0].caller_app_id, env.sb.managed_identity_app_id());

    // Second resume of the same result: 400 (documented sandbox choice).
    let r = env.send(Method::POST, v1, &body).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(env.sb.resumes("wf1", "t1", "r1").len(), 1);

    // Fully qualified action on beta, with statusReasons.
    let beta = "/beta/identityGovernance/lifecycleWorkflows/workflows/wf1/tasks/t1/taskProcessingResults/r2/microsoft.graph.identityGovernance.resume";
    let failed = json!({"data": {"operationStatus": "Failed", "statusReasons": ["invalid personal email"]}, "source": "s", "type": "lifecycleEvent"});
    let r = env.send(Method::POST, beta, &failed).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let recs = env.sb.resumes("wf1", "t1", "r2");
    assert_eq!(
        recs[0].status_reasons,
        Some(vec!["invalid personal email".to_string()])
    );
    assert_eq!(recs[0].version, "beta");

    // Unknown ids.
    let r = env.send(Method::POST, "/v1.0/identityGovernance/lifecycleWorkflows/workflows/wf1/tasks/t1/taskProcessingResults/nope/resume", &body).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // Invalid operationStatus.
    env.sb.add_task_processing_result("wf1", "t1", "r3");
    let v1r3 = "/v1.0/identityGovernance/lifecycleWorkflows/workflows/wf1/tasks/t1/taskProcessingResults/r3/resume";
    let r = env
        .send(
            Method::POST,
            v1r3,
            &json!({"data": {"operationStatus": "Done"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    // Another app, not authorized and without the role: 403. With the role: 204.
    let other = "11112222-3333-4444-8555-666677778888";
    let mut env2 = Env {
        sb: env.sb,
        http: env.http.clone(),
        token: String::new(),
    };
    env2.token = env2.sb.mint_graph_token(other);
    let r = env2.send(Method::POST, v1r3, &body).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.code(), "Authorization_RequestDenied");
    env2.token = env2
        .sb
        .mint_graph_token_with_roles(other, &["LifecycleWorkflows.ReadWrite.All"]);
    let r = env2.send(Method::POST, v1r3, &body).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    // Or listed in authorizedApps.
    env2.sb.add_task_processing_result("wf1", "t1", "r4");
    env2.sb.set_lcw_authorized_apps(vec![other.to_string()]);
    env2.token = env2.sb.mint_graph_token(other);
    let r = env2.send(Method::POST, "/v1.0/identityGovernance/lifecycleWorkflows/workflows/wf1/tasks/t1/taskProcessingResults/r4/resume", &body).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn second_resume_status_is_configurable() {
    let env = start(SandboxOptions {
        tenant: TenantSource::Json(fixture_tenant()),
        second_resume_status: 204,
        task_processing_results: vec![("w".into(), "t".into(), "r".into())],
        ..Default::default()
    })
    .await;
    let p = "/v1.0/identityGovernance/lifecycleWorkflows/workflows/w/tasks/t/taskProcessingResults/r/resume";
    let body = json!({"data": {"operationStatus": "completed"}});
    assert_eq!(
        env.send(Method::POST, p, &body).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        env.send(Method::POST, p, &body).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(env.sb.resumes("w", "t", "r").len(), 2);
}
