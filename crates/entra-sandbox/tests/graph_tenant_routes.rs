//! Tenant loading and the generated mix (observed through Graph), remaining `/_sandbox` routes,
//! faults on identity routes, unknown routes.

mod support_graph;

use entra_sandbox::{SandboxOptions, TenantSource};
use reqwest::StatusCode;
use serde_json::{json, Value};
use support_graph::*;

async fn count(env: &Env, filter: &str) -> i64 {
    let r = env
        .get_h(
            "/v1.0/users",
            &[
                ("$filter", filter),
                ("$count", "true"),
                ("$top", "1"),
                ("$select", "id"),
            ],
            &[("ConsistencyLevel", "eventual")],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{filter}: {}", r.body);
    r.body["@odata.count"].as_i64().expect("count")
}

async fn all_users(env: &Env) -> Vec<Value> {
    let mut out = Vec::new();
    let mut r = env.get("/v1.0/users", &[("$top", "999"), ("$select", "id,employeeId,otherMails,usageLocation,onPremisesSyncEnabled,onPremisesExtensionAttributes")]).await;
    loop {
        out.extend(r.body["value"].as_array().cloned().unwrap_or_default());
        match r.body["@odata.nextLink"].as_str() {
            Some(n) => {
                let n = n.to_string();
                r = env.get_abs(&n).await;
            }
            None => return out,
        }
    }
}

#[tokio::test]
async fn generated_tenant_has_the_documented_mix() {
    let env = start(SandboxOptions {
        users: 1000,
        seed: 9,
        ..Default::default()
    })
    .await;
    assert_eq!(env.sb.user_count(), 1000);
    assert_eq!(count(&env, "onPremisesSyncEnabled eq true").await, 950);
    assert_eq!(env.sb.privileged_user_ids().len(), 20);
    let users = all_users(&env).await;
    assert_eq!(users.len(), 1000);
    let hybrid: Vec<&Value> = users
        .iter()
        .filter(|u| u["onPremisesSyncEnabled"] == true)
        .collect();
    let no_emp = hybrid.iter().filter(|u| u["employeeId"].is_null()).count();
    assert_eq!(no_emp, 30);
    let mut emp: Vec<&str> = hybrid
        .iter()
        .filter_map(|u| u["employeeId"].as_str())
        .collect();
    assert!(emp.iter().all(|e| e.len() <= 16));
    let n = emp.len();
    emp.sort_unstable();
    emp.dedup();
    assert_eq!(n - emp.len(), 20, "2 % duplicate employeeIds");
    let ext = |u: &Value, k: &str| {
        u["onPremisesExtensionAttributes"][k]
            .as_str()
            .unwrap_or("")
            .to_string()
    };
    let accented = hybrid
        .iter()
        .filter(|u| !ext(u, "extensionAttribute1").is_ascii())
        .count();
    assert_eq!(accented, 30);
    let names = hybrid
        .iter()
        .filter(|u| ext(u, "extensionAttribute2").len() > 3)
        .count();
    assert!(names >= 50, "country names present: {names}");
    let correct = hybrid
        .iter()
        .filter(|u| {
            u["otherMails"][0]
                .as_str()
                .is_some_and(|m| m == ext(u, "extensionAttribute1"))
        })
        .count();
    assert_eq!(correct, 50);
    // Same seed → same tenant.
    let env2 = start(SandboxOptions {
        users: 1000,
        seed: 9,
        ..Default::default()
    })
    .await;
    assert_eq!(all_users(&env2).await, users);
}

#[tokio::test]
async fn tenant_from_file() {
    let dir = std::env::temp_dir().join(format!("entra-sandbox-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("tenant.json");
    std::fs::write(&path, fixture_tenant()).expect("write");
    let env = start(SandboxOptions {
        tenant: TenantSource::File(path.clone()),
        ..Default::default()
    })
    .await;
    assert_eq!(env.sb.user_count(), 6);
    assert_eq!(env.sb.privileged_user_ids(), vec![ADMIN.to_string()]);
    std::fs::write(&path, "[{\"no\": \"id\"}]").expect("write");
    assert!(entra_sandbox::Sandbox::start(SandboxOptions {
        tenant: TenantSource::File(path.clone()),
        ..Default::default()
    })
    .await
    .is_err());
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn sandbox_routes_for_faults_delta_expiry_and_task_results() {
    let env = fixture().await;
    let base = env.sb.graph_base_url();
    let r = env
        .http
        .post(format!("{base}/_sandbox/faults"))
        .body("GET /v1.0/users;first=1;status=502")
        .send()
        .await
        .expect("s");
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        env.get("/v1.0/users", &[]).await.status,
        StatusCode::BAD_GATEWAY
    );
    assert_eq!(env.get("/v1.0/users", &[]).await.status, StatusCode::OK);
    let r = env
        .http
        .post(format!("{base}/_sandbox/faults"))
        .body("garbage")
        .send()
        .await
        .expect("s");
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    let d = env.get("/v1.0/users/delta", &[]).await;
    let dl = d.body["@odata.deltaLink"].as_str().expect("dl").to_string();
    env.http
        .post(format!("{base}/_sandbox/expire-delta-tokens"))
        .send()
        .await
        .expect("s");
    assert_eq!(env.get_abs(&dl).await.status, StatusCode::GONE);

    let r = env
        .http
        .post(format!("{base}/_sandbox/task-processing-results"))
        .json(&json!({"workflowId": "w", "taskId": "t", "id": "r"}))
        .send()
        .await
        .expect("s");
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let p = "/v1.0/identityGovernance/lifecycleWorkflows/workflows/w/tasks/t/taskProcessingResults/r/resume";
    assert_eq!(
        env.send(
            reqwest::Method::POST,
            p,
            &json!({"data": {"operationStatus": "Completed"}})
        )
        .await
        .status,
        StatusCode::NO_CONTENT
    );
    let resumes: Value = env
        .http
        .get(format!("{base}/_sandbox/resumes"))
        .send()
        .await
        .expect("s")
        .json()
        .await
        .expect("j");
    assert_eq!(resumes[0]["operation_status"], "Completed");
}

#[tokio::test]
async fn faults_apply_to_identity_routes_and_unknown_routes_answer_400() {
    let env = fixture().await;
    env.sb.set_fault(
        entra_sandbox::FaultRule::parse("GET /msi/token;first=1;status=503").expect("rule"),
    );
    let url = format!(
        "{}?resource=https://graph.microsoft.com&api-version=2019-08-01",
        env.sb.identity_endpoint()
    );
    let r = env
        .http
        .get(&url)
        .header("X-IDENTITY-HEADER", env.sb.identity_header())
        .send()
        .await
        .expect("s");
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let r = env
        .http
        .get(&url)
        .header("X-IDENTITY-HEADER", env.sb.identity_header())
        .send()
        .await
        .expect("s");
    assert_eq!(r.status(), StatusCode::OK);

    let r = env.get("/v1.0/groups", &[]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.message().contains("groups"));
    let r = env
        .send(
            reqwest::Method::PUT,
            &format!("/v1.0/users/{U1}"),
            &json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
}
