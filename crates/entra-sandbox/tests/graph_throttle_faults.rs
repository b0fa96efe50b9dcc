//! Write / ResourceUnit quotas under time-scale, each fault kind, inspection routes.

mod support_graph;

use std::time::{Duration, Instant};

use entra_sandbox::{FaultAction, FaultRule, FaultTrigger, SandboxOptions, TenantSource};
use reqwest::StatusCode;
use serde_json::{json, Value};
use support_graph::*;

fn fixture_opts() -> SandboxOptions {
    SandboxOptions {
        tenant: TenantSource::Json(fixture_tenant()),
        ..Default::default()
    }
}

#[tokio::test]
async fn write_quota_429_with_headers_then_recovers() {
    // time_scale 12: 150 s → 12.5 s write window; the fixture has < 50 users (3,500 RU / 0.83 s).
    let env = start(SandboxOptions {
        time_scale: 12.0,
        ..fixture_opts()
    })
    .await;
    let h = json!({"Content-Type": "application/json"});
    for b in 0..150 {
        let items: Vec<Value> = (0..20)
            .map(|i| json!({"id": i.to_string(), "method": "PATCH", "url": format!("/users/{U4}"), "headers": h,
                            "body": {"otherMails": [format!("w{b}-{i}@example.com")]}}))
            .collect();
        let r = env.batch(json!(items)).await;
        assert!(
            r.body["responses"]
                .as_array()
                .expect("r")
                .iter()
                .all(|x| x["status"] == 204),
            "batch {b}"
        );
    }
    let started = Instant::now();
    let r = env.patch(U4, &json!({"usageLocation": "DE"})).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.code(), "TooManyRequests");
    assert_eq!(
        r.header("x-ms-throttle-information").as_deref(),
        Some("WriteLimitExceeded")
    );
    let scope = r.header("x-ms-throttle-scope").expect("scope");
    assert_eq!(
        scope,
        format!(
            "Application_Tenant/Limit/{}/{}",
            env.sb.managed_identity_app_id(),
            env.sb.tenant_id()
        )
    );
    let ra: f64 = r
        .header("retry-after")
        .and_then(|s| s.parse().ok())
        .expect("Retry-After");
    assert!(ra > 0.0 && ra <= 12.5, "{ra}");
    assert_eq!(
        env.sb.user(U4).expect("u")["usageLocation"],
        Value::Null,
        "throttled write not applied"
    );
    // Reads are not writes: still fine.
    assert_eq!(
        env.get(&format!("/v1.0/users/{U4}"), &[]).await.status,
        StatusCode::OK
    );
    let wait =
        Duration::from_secs_f64(ra).saturating_sub(started.elapsed()) + Duration::from_millis(50);
    tokio::time::sleep(wait).await;
    let r = env.patch(U4, &json!({"usageLocation": "DE"})).await;
    assert_eq!(
        r.status,
        StatusCode::NO_CONTENT,
        "after Retry-After: {}",
        r.body
    );
    assert!(env.sb.counters().throttled >= 1);
}

#[tokio::test]
async fn resource_unit_quota_small_tenant() {
    // < 50 users: 3,500 RU per 10 s (real time). GET /users costs 2 RU: the 1,751st is refused.
    let env = start(SandboxOptions {
        time_scale: 1.0,
        ..fixture_opts()
    })
    .await;
    let items: Vec<Value> = (0..20)
        .map(|i| json!({"id": i.to_string(), "method": "GET", "url": "/users"}))
        .collect();
    let mut ok = 0;
    let mut refused = None;
    for _ in 0..88 {
        let r = env.batch(json!(items)).await;
        for it in r.body["responses"].as_array().expect("r") {
            if it["status"] == 200 {
                ok += 1;
                assert_eq!(it["headers"]["x-ms-resource-unit"], "2");
            } else if refused.is_none() {
                refused = Some(it.clone());
            }
        }
    }
    assert_eq!(ok, 1750);
    let refused = refused.expect("a throttled item");
    assert_eq!(refused["status"], 429);
    assert_eq!(
        refused["headers"]["x-ms-throttle-information"],
        "ResourceUnitLimitExceeded"
    );
}

#[tokio::test]
async fn status_faults_every_nth_and_first_n() {
    let env = start(SandboxOptions {
        faults: vec![FaultRule::parse("GET /v1.0/users/*;every=2;status=503").expect("rule")],
        ..fixture_opts()
    })
    .await;
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(
            env.get(&format!("/v1.0/users/{U1}"), &[])
                .await
                .status
                .as_u16(),
        );
    }
    assert_eq!(statuses, vec![200, 503, 200, 503]);
    // The list route does not match the pattern.
    assert_eq!(env.get("/v1.0/users", &[]).await.status, StatusCode::OK);
    env.sb.set_faults(vec![FaultRule::new(
        "PATCH /v1.0/users/*",
        FaultTrigger::FirstN(1),
        FaultAction::Status {
            status: 429,
            retry_after: Some(0.25),
        },
    )]);
    let r = env.patch(U4, &json!({"usageLocation": "DE"})).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.header("retry-after").as_deref(), Some("0.25"));
    assert_eq!(
        env.sb.user(U4).expect("u")["usageLocation"],
        Value::Null,
        "faulted write not applied"
    );
    assert_eq!(
        env.patch(U4, &json!({"usageLocation": "DE"})).await.status,
        StatusCode::NO_CONTENT
    );
    for status in [500u16, 502, 504] {
        env.sb.set_faults(vec![FaultRule::new(
            "GET /**",
            FaultTrigger::EveryNth(1),
            FaultAction::Status {
                status,
                retry_after: None,
            },
        )]);
        assert_eq!(env.get("/v1.0/users", &[]).await.status.as_u16(), status);
    }
    assert!(env.sb.counters().faults_injected >= 6);
}

#[tokio::test]
async fn reset_fault_closes_the_connection() {
    let env = fixture().await;
    env.sb.set_fault(FaultRule::new(
        "GET /v1.0/users",
        FaultTrigger::FirstN(1),
        FaultAction::Reset,
    ));
    let err = env
        .http
        .get(env.url("/v1.0/users"))
        .bearer_auth(&env.token)
        .send()
        .await;
    assert!(err.is_err(), "no response for a reset");
    let ok = env
        .http
        .get(env.url("/v1.0/users"))
        .bearer_auth(&env.token)
        .send()
        .await
        .expect("next request fine");
    assert_eq!(ok.status(), StatusCode::OK);
}

#[tokio::test]
async fn latency_fault_delays_response() {
    let env = fixture().await;
    env.sb
        .set_fault(FaultRule::parse("* /v1.0/**;every=1;latency=300ms").expect("rule"));
    let t = Instant::now();
    let r = env.get(&format!("/v1.0/users/{U1}"), &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        t.elapsed() >= Duration::from_millis(300),
        "{:?}",
        t.elapsed()
    );
}

#[tokio::test]
async fn probabilistic_faults_are_deterministic_per_seed() {
    async fn run(seed: u64) -> Vec<u16> {
        let env = start(SandboxOptions {
            seed,
            faults: vec![FaultRule::new(
                "GET /v1.0/users",
                FaultTrigger::Probability(0.4),
                FaultAction::Status {
                    status: 500,
                    retry_after: None,
                },
            )],
            ..fixture_opts()
        })
        .await;
        let mut v = Vec::new();
        for _ in 0..30 {
            v.push(
                env.get("/v1.0/users", &[("$select", "id")])
                    .await
                    .status
                    .as_u16(),
            );
        }
        v
    }
    let a = run(11).await;
    assert_eq!(a, run(11).await);
    let fails = a.iter().filter(|s| **s == 500).count();
    assert!((3..=27).contains(&fails), "{fails}");
    assert_ne!(a, run(12).await);
}

#[tokio::test]
async fn inspection_routes() {
    let env = fixture().await;
    let _ = env.patch(U1, &json!({"usageLocation": "DE"})).await;
    let base = env.sb.graph_base_url();
    let c: Value = env
        .http
        .get(format!("{base}/_sandbox/counters"))
        .send()
        .await
        .expect("s")
        .json()
        .await
        .expect("j");
    assert_eq!(c["patches"], 1);
    assert_eq!(c["per_route"]["PATCH /v1.0/users/{id}"], 1);
    let reqs: Value = env
        .http
        .get(format!("{base}/_sandbox/requests"))
        .send()
        .await
        .expect("s")
        .json()
        .await
        .expect("j");
    assert_eq!(reqs[0]["method"], "PATCH");
    assert_eq!(reqs[0]["body"], r#"{"usageLocation":"DE"}"#);
    let u: Value = env
        .http
        .get(format!("{base}/_sandbox/users/{U1}"))
        .send()
        .await
        .expect("s")
        .json()
        .await
        .expect("j");
    assert_eq!(u["usageLocation"], "DE");
    let r = env
        .http
        .post(format!("{base}/_sandbox/users"))
        .json(&json!({"userPrincipalName": "z@contoso.com", "onPremisesSyncEnabled": true}))
        .send()
        .await
        .expect("s");
    assert_eq!(r.status(), StatusCode::OK);
    let id = r.json::<Value>().await.expect("j")["id"]
        .as_str()
        .expect("id")
        .to_string();
    assert!(env.sb.user(&id).is_some());
    let r = env
        .http
        .post(format!("{base}/_sandbox/reset-requests"))
        .send()
        .await
        .expect("s");
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert!(env.sb.requests().is_empty());
    // Body recording can be turned off.
    env.sb.set_recording(true, false);
    let _ = env.patch(U1, &json!({"usageLocation": "FR"})).await;
    assert_eq!(env.sb.requests()[0].body, None);
}
