//! Workday RaaS over HTTP: auth (Basic, OAuth refresh-token grant, rotation), formats, the prompt,
//! faults, and the seeded population.

use std::collections::{HashMap, HashSet};

use entra_sandbox::workday::*;
use entra_sandbox::{FaultAction, FaultRule, FaultTrigger, Sandbox, SandboxOptions};
use reqwest::StatusCode;
use serde_json::{json, Value};

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client")
}

async fn sandbox(opts: SandboxOptions) -> Sandbox {
    Sandbox::start(opts).await.expect("sandbox starts")
}

fn json_url(sb: &Sandbox) -> String {
    format!("{}?format=json", sb.workday_report_url())
}

async fn get_basic(_sb: &Sandbox, url: &str, password: &str) -> reqwest::Response {
    client()
        .get(url)
        .basic_auth(WORKDAY_USERNAME, Some(password))
        .send()
        .await
        .expect("send")
}

async fn report(sb: &Sandbox, query: &str) -> (StatusCode, Value) {
    let url = format!("{}?format=json{query}", sb.workday_report_url());
    let r = get_basic(sb, &url, WORKDAY_PASSWORD).await;
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn grant(sb: &Sandbox, id: &str, secret: &str, refresh: &str) -> reqwest::Response {
    client()
        .post(sb.workday_token_url())
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh),
            ("client_id", id),
            ("client_secret", secret),
        ])
        .send()
        .await
        .expect("send")
}

fn realm(r: &reqwest::Response) -> Option<String> {
    r.headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

#[tokio::test]
async fn refuses_missing_and_wrong_credentials_with_the_basic_realm() {
    let sb = sandbox(SandboxOptions::default()).await;
    let url = json_url(&sb);
    let none = client().get(&url).send().await.expect("send");
    assert_eq!(none.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(realm(&none).as_deref(), Some(r#"Basic realm="Workday""#));

    let wrong = get_basic(&sb, &url, "not-the-password").await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(realm(&wrong).as_deref(), Some(r#"Basic realm="Workday""#));

    let other_user = client()
        .get(&url)
        .basic_auth("someone@entra_sandbox", Some(WORKDAY_PASSWORD))
        .send()
        .await
        .expect("send");
    assert_eq!(other_user.status(), StatusCode::UNAUTHORIZED);

    let forged = client()
        .get(&url)
        .bearer_auth("not-issued-by-the-sandbox")
        .send()
        .await
        .expect("send");
    assert_eq!(forged.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(realm(&forged).as_deref(), Some(r#"Basic realm="Workday""#));
    // A Graph token is not a Workday token.
    let graph = client()
        .get(&url)
        .bearer_auth(sb.mint_graph_token(&sb.managed_identity_app_id()))
        .send()
        .await
        .expect("send");
    assert_eq!(graph.status(), StatusCode::UNAUTHORIZED);

    assert_eq!(
        get_basic(&sb, &url, WORKDAY_PASSWORD).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn json_with_format_json_and_xml_without() {
    let sb = sandbox(SandboxOptions::default()).await;
    let r = get_basic(&sb, &json_url(&sb), WORKDAY_PASSWORD).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json")));
    assert!(
        r.headers().get("x-ms-resource-unit").is_none(),
        "no Graph headers"
    );
    let body: Value = r.json().await.expect("json");
    let entries = body["Report_Entry"].as_array().expect("Report_Entry");
    assert_eq!(entries.len(), sb.workday_rows().len());
    assert_eq!(entries, &sb.workday_rows());

    let r = get_basic(&sb, &sb.workday_report_url(), WORKDAY_PASSWORD).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/xml")));
    let text = r.text().await.expect("text");
    assert!(serde_json::from_str::<Value>(&text).is_err());
    assert!(text.contains(
        r#"<wd:Report_Data xmlns:wd="urn:com.workday.report/Entra_Enrich_Workers"><wd:Report_Entry>"#
    ));
    assert_eq!(text.matches("<wd:Report_Entry>").count(), entries.len());
    assert!(text.contains("<wd:Usage>HOME</wd:Usage>"));
}

#[tokio::test]
async fn the_prompt_filters_and_unknown_parameters_are_refused() {
    let sb = sandbox(SandboxOptions::default()).await;
    let rows = sb.workday_rows();
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for r in &rows {
        if let Some(id) = r["Employee_ID"].as_str() {
            *counts.entry(id).or_default() += 1;
        }
    }
    let unique = rows
        .iter()
        .filter_map(|r| r["Employee_ID"].as_str())
        .find(|id| counts.get(id) == Some(&1))
        .expect("a unique id");
    // Trimmed: spaces around the prompt value do not matter.
    let (status, body) = report(&sb, &format!("&{WORKDAY_PROMPT}=%20{unique}%20")).await;
    assert_eq!(status, StatusCode::OK);
    let entries = body["Report_Entry"].as_array().expect("entries");
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["Employee_ID"], unique);

    let (status, body) = report(&sb, "&Employee_ID=nobody").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["Report_Entry"], json!([]));

    let url = format!("{}&Worker_ID=1", json_url(&sb));
    let r = get_basic(&sb, &url, WORKDAY_PASSWORD).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.expect("text").contains("Worker_ID"));
}

#[tokio::test]
async fn another_report_owner_or_tenant_is_404() {
    let sb = sandbox(SandboxOptions::default()).await;
    let base = sb.graph_base_url();
    for path in [
        format!("{WORKDAY_TENANT}/{WORKDAY_REPORT_OWNER}/Other_Report"),
        format!("{WORKDAY_TENANT}/someone_else/{WORKDAY_REPORT}"),
        format!("other_tenant/{WORKDAY_REPORT_OWNER}/{WORKDAY_REPORT}"),
    ] {
        let url = format!("{base}/ccx/service/customreport2/{path}?format=json");
        let r = get_basic(&sb, &url, WORKDAY_PASSWORD).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
        let body: Value = r.json().await.expect("json");
        assert!(body["error"].is_string() && body.get("innerError").is_none());
    }
}

#[tokio::test]
async fn the_refresh_token_grant_issues_a_bearer_token() {
    let sb = sandbox(SandboxOptions::default()).await;
    let r = grant(
        &sb,
        WORKDAY_CLIENT_ID,
        WORKDAY_CLIENT_SECRET,
        WORKDAY_REFRESH_TOKEN,
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    let token = body["access_token"].as_str().expect("token").to_string();
    let r = client()
        .get(json_url(&sb))
        .bearer_auth(&token)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::OK);

    let r = grant(&sb, WORKDAY_CLIENT_ID, WORKDAY_CLIENT_SECRET, "stale").await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        r.json::<Value>().await.expect("json")["error"],
        "invalid_grant"
    );
    let r = grant(&sb, WORKDAY_CLIENT_ID, "wrong", WORKDAY_REFRESH_TOKEN).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        r.json::<Value>().await.expect("json")["error"],
        "invalid_client"
    );
    let r = grant(
        &sb,
        "other-client",
        WORKDAY_CLIENT_SECRET,
        WORKDAY_REFRESH_TOKEN,
    )
    .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // An expired token is refused like a forged one.
    sb.expire_workday_tokens();
    let r = client()
        .get(json_url(&sb))
        .bearer_auth(&token)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(realm(&r).as_deref(), Some(r#"Basic realm="Workday""#));
}

#[tokio::test]
async fn tokens_expire_after_an_hour_of_sandbox_time() {
    // 3600 s / 36000 = 0.1 s.
    let sb = sandbox(SandboxOptions {
        time_scale: 36_000.0,
        ..Default::default()
    })
    .await;
    let body: Value = grant(
        &sb,
        WORKDAY_CLIENT_ID,
        WORKDAY_CLIENT_SECRET,
        WORKDAY_REFRESH_TOKEN,
    )
    .await
    .json()
    .await
    .expect("json");
    let token = body["access_token"].as_str().expect("token").to_string();
    tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    let r = client()
        .get(json_url(&sb))
        .bearer_auth(&token)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_password_rotation_refuses_the_old_password() {
    let sb = sandbox(SandboxOptions::default()).await;
    sb.set_workday_password("Rotated-Passw0rd!");
    let url = json_url(&sb);
    assert_eq!(
        get_basic(&sb, &url, WORKDAY_PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        get_basic(&sb, &url, "Rotated-Passw0rd!").await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_fault_rule_on_the_raas_path_fires_and_is_recorded() {
    let sb = sandbox(SandboxOptions {
        faults: vec![FaultRule::new(
            "GET /ccx/service/customreport2/*/*/*",
            FaultTrigger::FirstN(1),
            FaultAction::Status {
                status: 503,
                retry_after: Some(2.0),
            },
        )],
        ..Default::default()
    })
    .await;
    let url = json_url(&sb);
    let r = get_basic(&sb, &url, WORKDAY_PASSWORD).await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        r.headers().get("retry-after").and_then(|v| v.to_str().ok()),
        Some("2")
    );
    let body: Value = r.json().await.expect("json");
    assert!(body["error"].is_string() && body["error"].get("innerError").is_none());
    assert_eq!(
        get_basic(&sb, &url, WORKDAY_PASSWORD).await.status(),
        StatusCode::OK
    );
    assert_eq!(sb.counters().faults_injected, 1);
    let route = "GET /ccx/service/customreport2/{tenant}/{owner}/{report}";
    assert_eq!(sb.counters().per_route.get(route), Some(&2));
    let recorded = sb.requests();
    assert_eq!(
        recorded.iter().map(|r| r.status).collect::<Vec<_>>(),
        vec![503, 200]
    );
    assert!(recorded.iter().all(|r| r.route == route));

    grant(
        &sb,
        WORKDAY_CLIENT_ID,
        WORKDAY_CLIENT_SECRET,
        WORKDAY_REFRESH_TOKEN,
    )
    .await;
    assert_eq!(
        sb.counters()
            .per_route
            .get("POST /ccx/oauth2/{tenant}/token"),
        Some(&1)
    );
}

#[tokio::test]
async fn the_seeded_population_has_the_documented_mix() {
    let sb = sandbox(SandboxOptions {
        users: 400,
        ..Default::default()
    })
    .await;
    let rows = sb.workday_rows();
    let users: Vec<Value> = sb.user_ids().iter().filter_map(|id| sb.user(id)).collect();
    let with_id: Vec<&Value> = users
        .iter()
        .filter(|u| u["employeeId"].as_str().is_some_and(|s| !s.is_empty()))
        .collect();
    let entra_ids: HashSet<&str> = with_id
        .iter()
        .filter_map(|u| u["employeeId"].as_str())
        .collect();

    // One row per Entra user with an employeeId, with its personal email, country and UPN.
    for u in &with_id {
        let upn = u["userPrincipalName"].as_str().expect("upn");
        let row = rows
            .iter()
            .find(|r| {
                r["Employee_ID"] == u["employeeId"]
                    && r["Email_Addresses"]
                        .as_array()
                        .is_some_and(|a| a.iter().any(|e| e["Email_Address"] == upn))
            })
            .unwrap_or_else(|| panic!("no row for {upn}"));
        assert_eq!(row["Worker"], u["displayName"]);
        let ext = &u["onPremisesExtensionAttributes"];
        match ext["extensionAttribute1"].as_str() {
            Some(p) if !p.is_empty() => {
                assert_eq!(row["Personal_Email"], p);
                assert_eq!(row["Email_Addresses"][0]["Usage"], "HOME");
            }
            _ => assert!(row.get("Personal_Email").is_none()),
        }
        if ext["extensionAttribute2"] == "GB" {
            assert_eq!(row["Country"], "GB");
            assert_eq!(row["Country_Name"], "United Kingdom");
        }
        if ext["extensionAttribute2"] == "United States" {
            assert_eq!(row["Country"], "US");
        }
    }
    // Workers without an Entra account: about 5 %, no WORK address.
    let extras: Vec<&Value> = rows
        .iter()
        .filter(|r| {
            r["Employee_ID"]
                .as_str()
                .is_some_and(|id| !entra_ids.contains(id))
        })
        .collect();
    let expected = (with_id.len() * 5).div_ceil(100);
    assert_eq!(extras.len(), expected);
    assert!(extras.iter().all(|r| r["Email_Addresses"]
        .as_array()
        .is_none_or(|a| a.iter().all(|e| e["Usage"] == "HOME"))));
    // Duplicated Employee_IDs in Workday beyond Entra's: two rows of one user (same WORK address),
    // different personal emails.
    let work = |r: &Value| {
        r["Email_Addresses"]
            .as_array()
            .and_then(|a| a.iter().find(|e| e["Usage"] == "WORK"))
            .and_then(|e| e["Email_Address"].as_str())
            .map(str::to_string)
    };
    let mut by_user: HashMap<(String, Option<String>), Vec<&Value>> = HashMap::new();
    for r in &rows {
        if let Some(id) = r["Employee_ID"].as_str() {
            by_user
                .entry((id.to_string(), work(r)))
                .or_default()
                .push(r);
        }
    }
    let workday_dups = by_user
        .values()
        .filter(|rs| rs.len() == 2 && rs[0]["Personal_Email"] != rs[1]["Personal_Email"])
        .count();
    assert!(by_user.values().all(|rs| rs.len() <= 2));
    assert!((1..=2).contains(&workday_dups), "{workday_dups}");
    assert_eq!(rows.len(), with_id.len() + workday_dups + extras.len());
    // Missing, invalid and accented personal emails, among extras too.
    let email = |r: &&Value| r["Personal_Email"].as_str().map(str::to_string);
    let invalid = |e: &str| {
        e.split_once('@')
            .is_none_or(|(l, d)| l.is_empty() || !d.contains('.') || e.contains(' '))
    };
    for set in [rows.iter().collect::<Vec<_>>(), extras] {
        assert!(set.iter().any(|r| email(r).is_none()));
        assert!(set.iter().filter_map(email).any(|e| invalid(&e)));
        assert!(set.iter().filter_map(email).any(|e| !e.is_ascii()));
    }
}

#[tokio::test]
async fn personal_email_only_in_workday_clears_extension_attribute_1() {
    let sb = sandbox(SandboxOptions {
        workday: WorkdayOptions {
            personal_email_only_in_workday: true,
            extra_workers: Some(3),
        },
        ..Default::default()
    })
    .await;
    for id in sb.user_ids() {
        let u = sb.user(&id).expect("user");
        assert_eq!(
            u["onPremisesExtensionAttributes"]["extensionAttribute1"],
            Value::Null
        );
    }
    let rows = sb.workday_rows();
    assert!(
        rows.iter()
            .filter(|r| r["Personal_Email"].is_string())
            .count()
            > 50
    );
    let (status, body) = report(&sb, "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body["Report_Entry"].as_array().map(Vec::len),
        Some(rows.len())
    );
    // Default: the attribute is kept.
    let sb = sandbox(SandboxOptions::default()).await;
    let kept = sb
        .user_ids()
        .iter()
        .filter_map(|id| sb.user(id))
        .filter(|u| u["onPremisesExtensionAttributes"]["extensionAttribute1"].is_string())
        .count();
    assert!(kept > 50);
}

#[tokio::test]
async fn rows_can_be_replaced_and_upserted() {
    let sb = sandbox(SandboxOptions::default()).await;
    sb.set_workday_rows(vec![
        json!({"Employee_ID": "A1", "Worker": "Ada", "Personal_Email": "ada@example.org"}),
        json!({"Employee_ID": "B2", "Worker": "Bob"}),
    ]);
    sb.upsert_worker(
        json!({"Employee_ID": "A1", "Worker": "Ada L.", "Personal_Email": "ada@new.example"}),
    );
    sb.upsert_worker(json!({"Employee_ID": "C3", "Worker": "Cy"}));
    let rows = sb.workday_rows();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0]["Personal_Email"], "ada@new.example");
    assert_eq!(rows[2]["Employee_ID"], "C3");
    let (_, body) = report(&sb, "&Employee_ID=A1").await;
    assert_eq!(body["Report_Entry"], json!([rows[0]]));
}

#[tokio::test]
async fn a_report_of_100k_workers_is_served_whole() {
    let sb = sandbox(SandboxOptions {
        users: 100,
        workday: WorkdayOptions {
            extra_workers: Some(100_000),
            ..Default::default()
        },
        ..Default::default()
    })
    .await;
    let r = get_basic(&sb, &json_url(&sb), WORKDAY_PASSWORD).await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.expect("JSON body");
    let rows = body["Report_Entry"].as_array().map_or(0, Vec::len);
    assert!(rows > 100_000, "{rows} rows");
}
