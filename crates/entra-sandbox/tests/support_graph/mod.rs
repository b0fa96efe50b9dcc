//! Shared helpers for the Graph integration tests (reqwest over 127.0.0.1).
#![allow(dead_code)]

use entra_sandbox::{Sandbox, SandboxOptions, TenantSource};
use reqwest::header::HeaderMap;
use reqwest::StatusCode;
use serde_json::{json, Value};

pub(crate) const U1: &str = "00000000-0000-4000-8000-000000000001";
pub(crate) const U2: &str = "00000000-0000-4000-8000-000000000002";
pub(crate) const U3: &str = "00000000-0000-4000-8000-000000000003";
pub(crate) const U4: &str = "00000000-0000-4000-8000-000000000004";
pub(crate) const U5: &str = "00000000-0000-4000-8000-000000000005";
pub(crate) const ADMIN: &str = "00000000-0000-4000-8000-000000000006";

fn user(
    id: &str,
    upn: &str,
    emp: Value,
    synced: Value,
    other: Value,
    ext1: &str,
    ext2: &str,
) -> Value {
    json!({
        "id": id, "userPrincipalName": upn, "displayName": upn.split('@').next().unwrap_or(""),
        "givenName": "G", "surname": "S", "mail": upn, "jobTitle": null, "businessPhones": [],
        "mobilePhone": null, "officeLocation": null, "preferredLanguage": "en-US",
        "employeeId": emp, "otherMails": other, "usageLocation": null, "onPremisesSyncEnabled": synced,
        "onPremisesExtensionAttributes": {"extensionAttribute1": ext1, "extensionAttribute2": ext2},
        "createdDateTime": "2022-01-01T00:00:00Z", "accountEnabled": true
    })
}

/// Six hand-made users: U1–U3 hybrid, U4 cloud-only (null), U5 cloud-only (false, no employeeId),
/// ADMIN hybrid and privileged.
pub(crate) fn fixture_tenant() -> String {
    json!({
        "users": [
            user(U1, "anna@contoso.com", json!("E001"), json!(true), json!([]), "anna@gmail.com", "DE"),
            user(U2, "ben@contoso.com", json!("E002"), json!(true), json!([]), "ben@gmail.com", "Germany"),
            user(U3, "carl@contoso.com", json!("X100"), json!(true), json!(["carl@gmail.com"]), "carl@gmail.com", "XX"),
            user(U4, "dora@contoso.com", json!("E004"), json!(null), json!(["d@example.com"]), "", ""),
            user(U5, "eve@contoso.com", json!(null), json!(false), json!([]), "", ""),
            user(ADMIN, "admin@contoso.com", json!("E006"), json!(true), json!([]), "adm@gmail.com", "US"),
        ],
        "privilegedUserIds": [ADMIN]
    })
    .to_string()
}

pub(crate) struct Env {
    pub sb: Sandbox,
    pub http: reqwest::Client,
    pub token: String,
}

pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client")
}

pub(crate) async fn start(opts: SandboxOptions) -> Env {
    let sb = Sandbox::start(opts).await.expect("sandbox starts");
    let token = sb.mint_graph_token(&sb.managed_identity_app_id());
    Env {
        sb,
        http: client(),
        token,
    }
}

pub(crate) async fn fixture() -> Env {
    start(SandboxOptions {
        tenant: TenantSource::Json(fixture_tenant()),
        ..Default::default()
    })
    .await
}

pub(crate) struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Resp {
    pub(crate) fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
    pub(crate) fn message(&self) -> &str {
        self.body["error"]["message"].as_str().unwrap_or("")
    }
    pub(crate) fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }
    pub(crate) fn ids(&self) -> Vec<String> {
        let mut v: Vec<String> = self.body["value"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|u| u["id"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }
}

pub(crate) async fn into_resp(r: reqwest::Response) -> Resp {
    let status = r.status();
    let headers = r.headers().clone();
    let bytes = r.bytes().await.expect("body");
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or(Value::Null)
    };
    Resp {
        status,
        headers,
        body,
    }
}

impl Env {
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{}", self.sb.graph_base_url(), path)
    }
    pub(crate) async fn get(&self, path: &str, query: &[(&str, &str)]) -> Resp {
        self.get_h(path, query, &[]).await
    }
    pub(crate) async fn get_h(
        &self,
        path: &str,
        query: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> Resp {
        let mut rb = self
            .http
            .get(self.url(path))
            .bearer_auth(&self.token)
            .query(query);
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        into_resp(rb.send().await.expect("send")).await
    }
    /// GET of an absolute URL (nextLink / deltaLink).
    pub(crate) async fn get_abs(&self, url: &str) -> Resp {
        into_resp(
            self.http
                .get(url)
                .bearer_auth(&self.token)
                .send()
                .await
                .expect("send"),
        )
        .await
    }
    pub(crate) async fn send(&self, method: reqwest::Method, path: &str, body: &Value) -> Resp {
        let r = self
            .http
            .request(method, self.url(path))
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await
            .expect("send");
        into_resp(r).await
    }
    pub(crate) async fn patch(&self, id: &str, body: &Value) -> Resp {
        self.send(reqwest::Method::PATCH, &format!("/v1.0/users/{id}"), body)
            .await
    }
    pub(crate) async fn batch(&self, requests: Value) -> Resp {
        self.send(
            reqwest::Method::POST,
            "/v1.0/$batch",
            &json!({ "requests": requests }),
        )
        .await
    }
}
