//! users/delta rounds, @removed, $deltatoken=latest, expired and unknown tokens.

mod support_graph;

use reqwest::StatusCode;
use serde_json::json;
use support_graph::*;

/// Follows nextLinks from `first` and returns (all items, deltaLink, number of pages).
async fn round(env: &Env, first: Resp) -> (Vec<serde_json::Value>, String, usize) {
    let mut items = Vec::new();
    let mut r = first;
    let mut pages = 0;
    loop {
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        pages += 1;
        items.extend(r.body["value"].as_array().cloned().unwrap_or_default());
        if let Some(next) = r.body["@odata.nextLink"].as_str() {
            assert!(r.body.get("@odata.deltaLink").is_none());
            let next = next.to_string();
            r = env.get_abs(&next).await;
            continue;
        }
        let dl = r.body["@odata.deltaLink"]
            .as_str()
            .expect("deltaLink on the last page")
            .to_string();
        assert!(dl.contains("$deltatoken="), "{dl}");
        return (items, dl, pages);
    }
}

fn ids(items: &[serde_json::Value]) -> Vec<String> {
    let mut v: Vec<String> = items
        .iter()
        .filter_map(|i| i["id"].as_str().map(str::to_string))
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn delta_rounds_report_only_changes() {
    let env = fixture().await;
    let first = env
        .get(
            "/v1.0/users/delta",
            &[
                ("$select", "id,otherMails,usageLocation,employeeId"),
                ("$top", "4"),
            ],
        )
        .await;
    let (items, dl, pages) = round(&env, first).await;
    assert_eq!(pages, 2);
    assert_eq!(items.len(), 6);
    assert!(items[0].get("displayName").is_none(), "$select applies");
    assert!(items[0].get("otherMails").is_some());

    // Nothing changed: empty round.
    let (items, dl, _) = round(&env, env.get_abs(&dl).await).await;
    assert!(items.is_empty(), "{items:?}");

    // Our own PATCH, a selected-property change, a non-selected change, a new synced user.
    assert_eq!(
        env.patch(U1, &json!({"otherMails": ["anna@gmail.com"]}))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    env.sb
        .set_user_property(U2, "usageLocation", json!("DE"))
        .expect("set");
    env.sb
        .set_user_property(U3, "jobTitle", json!("Boss"))
        .expect("set");
    let new_id = env.sb.upsert_user(json!({"id": "00000000-0000-4000-8000-0000000000aa", "userPrincipalName": "new@contoso.com",
        "employeeId": "E100", "onPremisesSyncEnabled": true, "otherMails": []})).expect("upsert");
    let (items, dl, _) = round(&env, env.get_abs(&dl).await).await;
    assert_eq!(ids(&items), {
        let mut v = vec![U1.to_string(), U2.to_string(), new_id.clone()];
        v.sort();
        v
    });
    let u1 = items.iter().find(|i| i["id"] == U1).expect("u1");
    assert_eq!(u1["otherMails"], json!(["anna@gmail.com"]));

    // Removals.
    assert!(env.sb.remove_user(U4, false));
    assert!(env.sb.remove_user(U5, true));
    let (items, dl, _) = round(&env, env.get_abs(&dl).await).await;
    assert_eq!(items.len(), 2);
    let by = |id: &str| {
        items
            .iter()
            .find(|i| i["id"] == id)
            .cloned()
            .expect("removed item")
    };
    assert_eq!(by(U4)["@removed"], json!({"reason": "changed"}));
    assert_eq!(by(U5)["@removed"], json!({"reason": "deleted"}));
    let (items, _, _) = round(&env, env.get_abs(&dl).await).await;
    assert!(items.is_empty());
}

#[tokio::test]
async fn delta_latest_starts_from_now() {
    let env = fixture().await;
    let r = env
        .get(
            "/v1.0/users/delta",
            &[("$deltatoken", "latest"), ("$select", "id,usageLocation")],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["value"], json!([]));
    let dl = r.body["@odata.deltaLink"]
        .as_str()
        .expect("deltaLink")
        .to_string();
    env.sb
        .set_user_property(U3, "usageLocation", json!("FR"))
        .expect("set");
    let (items, _, _) = round(&env, env.get_abs(&dl).await).await;
    assert_eq!(ids(&items), vec![U3.to_string()]);
    assert_eq!(items[0]["usageLocation"], "FR");
}

#[tokio::test]
async fn expired_and_unknown_tokens() {
    let env = fixture().await;
    let (_, dl, _) = round(
        &env,
        env.get("/v1.0/users/delta", &[("$select", "id,otherMails")])
            .await,
    )
    .await;
    env.sb.expire_delta_tokens();
    let r = env.get_abs(&dl).await;
    assert_eq!(r.status, StatusCode::GONE);
    assert_eq!(r.code(), "syncStateNotFound");
    let loc = r.header("location").expect("Location");
    assert!(
        loc.ends_with("/v1.0/users/delta?$select=id,otherMails"),
        "{loc}"
    );
    // Restarting from Location works.
    let (items, _, _) = round(&env, env.get_abs(&loc).await).await;
    assert_eq!(items.len(), 6);

    let r = env
        .get("/v1.0/users/delta", &[("$deltatoken", "bm90LWEtdG9rZW4")])
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.code(), "syncStateNotFound");
}

#[tokio::test]
async fn delta_tokens_expire_after_seven_days_scaled() {
    // 7 days / 3e5 ≈ 2 s.
    let env = start(entra_sandbox::SandboxOptions {
        tenant: entra_sandbox::TenantSource::Json(fixture_tenant()),
        time_scale: 300_000.0,
        ..Default::default()
    })
    .await;
    let (_, dl, _) = round(&env, env.get("/v1.0/users/delta", &[]).await).await;
    assert_eq!(env.get_abs(&dl).await.status, StatusCode::OK);
    tokio::time::sleep(std::time::Duration::from_millis(2300)).await;
    assert_eq!(env.get_abs(&dl).await.status, StatusCode::GONE);
}
