//! GraphClient against scripted loopback servers: every assertion is about what the server
//! received or what the client returned.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{client, options, patch, Reply, TestServer};
use entra_graph::{DeltaCursor, DeltaNext, GraphClient, GraphErrorKind, UserPager, WriteLimiter};
use serde_json::json;

const SELECT: &[&str] = &["id", "employeeId", "otherMails", "usageLocation"];

fn is_guid(s: &str) -> bool {
    uuid::Uuid::parse_str(s).is_ok()
}

// ------------------------------------------------------------------ reads

#[tokio::test]
async fn paging_follows_next_link_verbatim_and_always_sends_select() {
    let server = TestServer::start(|req, _| {
        if req.query_value("$skiptoken").is_none() {
            let next = format!(
                "http://{}/v1.0/users?$select=id,employeeId,otherMails,usageLocation&$top=2&$skiptoken=RFNwdAIAAQAAAB",
                req.header("host").unwrap_or_default()
            );
            Reply::json(200, json!({"value": [{"id": "a"}, {"id": "b"}], "@odata.nextLink": next}))
        } else {
            Reply::json(200, json!({"value": [{"id": "c"}]}))
        }
    })
    .await;
    let (client, cred) = client(&server);
    let mut pager = client.list_users(None, SELECT, 2);
    assert_eq!(pager.next_link(), None);

    let first = pager.next_page().await.expect("page 1").expect("some");
    assert_eq!(first.len(), 2);
    let link = pager.next_link().map(str::to_string).expect("next link");
    let second = pager.next_page().await.expect("page 2").expect("some");
    assert_eq!(second, vec![json!({"id": "c"})]);
    assert_eq!(pager.next_link(), None);
    assert!(pager.next_page().await.expect("end").is_none());

    let seen = server.seen();
    assert_eq!(seen.len(), 2);
    for s in &seen {
        assert_eq!(s.method, "GET");
        assert_eq!(s.path(), "/v1.0/users");
        assert_eq!(
            s.query_value("$select").as_deref(),
            Some("id,employeeId,otherMails,usageLocation")
        );
        assert_eq!(s.header("authorization"), Some("Bearer test-token-1"));
        assert!(is_guid(s.header("client-request-id").unwrap_or("")));
    }
    assert_eq!(seen[0].query_value("$top").as_deref(), Some("2"));
    // The nextLink was followed byte for byte.
    assert_eq!(format!("http://{}{}", server.addr, seen[1].target), link);
    assert_ne!(
        seen[0].header("client-request-id"),
        seen[1].header("client-request-id")
    );
    // One token for both requests (cached), for the Graph scope.
    assert_eq!(cred.calls(), 1);
    assert_eq!(
        cred.scopes(),
        vec!["https://graph.microsoft.com/.default".to_string()]
    );
}

#[tokio::test]
async fn pager_resumes_from_a_checkpointed_link_and_refuses_foreign_links() {
    let server = TestServer::start(|_, _| Reply::json(200, json!({"value": [{"id": "z"}]}))).await;
    let (client, _) = client(&server);
    let link = format!(
        "http://{}/v1.0/users?$select=id&$skiptoken=abc",
        server.addr
    );
    let mut pager = UserPager::resume(&client, link.clone());
    assert_eq!(pager.next_link(), Some(link.as_str()));
    let page = pager.next_page().await.expect("ok").expect("page");
    assert_eq!(page.len(), 1);
    assert_eq!(
        server.seen()[0].target,
        "/v1.0/users?$select=id&$skiptoken=abc"
    );

    // A link to another host would carry our token away: refused, nothing sent.
    let mut evil = UserPager::resume(&client, "http://127.0.0.2:1/v1.0/users?$skiptoken=x");
    let err = evil.next_page().await.expect_err("refused");
    assert!(matches!(err.kind(), GraphErrorKind::InvalidRequest(_)));
    assert_eq!(server.count(), 1);
}

#[tokio::test]
async fn empty_select_is_a_typed_error_and_sends_nothing() {
    let server = TestServer::start(|_, _| Reply::json(200, json!({"value": []}))).await;
    let (client, _) = client(&server);
    let err = client.get_user("a", &[]).await.expect_err("refused");
    assert!(
        matches!(err.kind(), GraphErrorKind::InvalidRequest(_)),
        "{err}"
    );
    let err = client
        .list_users(None, &[], 10)
        .next_page()
        .await
        .expect_err("refused");
    assert!(matches!(err.kind(), GraphErrorKind::InvalidRequest(_)));
    let err = client
        .delta_page(&DeltaCursor::start(&[]))
        .await
        .expect_err("refused");
    assert!(matches!(err.kind(), GraphErrorKind::InvalidRequest(_)));
    assert_eq!(server.count(), 0);
}

#[tokio::test]
async fn get_user_404_is_none_and_200_is_the_user() {
    let server = TestServer::start(|req, _| {
        if req.path() == "/v1.0/users/adele@contoso.com" {
            Reply::json(200, json!({"id": "1", "otherMails": []}))
        } else {
            Reply::graph_error(
                404,
                "Request_ResourceNotFound",
                "Resource 'x' does not exist",
            )
        }
    })
    .await;
    let (client, _) = client(&server);
    assert_eq!(client.get_user("missing", SELECT).await.expect("ok"), None);
    let user = client
        .get_user("adele@contoso.com", &["id", "otherMails"])
        .await
        .expect("ok");
    assert_eq!(user, Some(json!({"id": "1", "otherMails": []})));
    let seen = server.seen();
    assert_eq!(seen.len(), 2, "404 must not be retried");
    assert_eq!(seen[0].path(), "/v1.0/users/missing");
    assert_eq!(
        seen[1].query_value("$select").as_deref(),
        Some("id,otherMails")
    );
}

#[tokio::test]
async fn employee_id_filter_is_quoted_and_encoded() {
    let server = TestServer::start(|_, _| Reply::json(200, json!({"value": [{"id": "u1"}]}))).await;
    let (client, _) = client(&server);
    let users = client
        .find_users_by_employee_id("O'Neil 7&x=1#", SELECT)
        .await
        .expect("ok");
    assert_eq!(users, vec![json!({"id": "u1"})]);
    let s = &server.seen()[0];
    assert_eq!(
        s.query_value("$filter").as_deref(),
        Some("employeeId eq 'O''Neil 7&x=1#'")
    );
    // Spaces travel as %20 and the raw target has no unescaped &, # or space from the value.
    assert!(s.target.contains("employeeId%20eq%20"), "{}", s.target);
    assert!(!s.target.contains('#'));
    assert_eq!(s.query().len(), 3, "{:?}", s.query());
}

// ------------------------------------------------------------------ delta

#[tokio::test]
async fn delta_pages_through_next_link_to_delta_link() {
    let server = TestServer::start(|req, _| {
        let host = req.header("host").unwrap_or_default().to_string();
        if req.query_value("$skiptoken").is_some() {
            Reply::json(
                200,
                json!({"value": [{"id": "gone", "@removed": {"reason": "deleted"}}],
                       "@odata.deltaLink": format!("http://{host}/v1.0/users/delta?$deltatoken=DT1")}),
            )
        } else if req.query_value("$deltaToken").as_deref() == Some("latest") {
            Reply::json(
                200,
                json!({"value": [], "@odata.deltaLink": format!("http://{host}/v1.0/users/delta?$deltatoken=NOW")}),
            )
        } else {
            Reply::json(
                200,
                json!({"value": [{"id": "u1"}],
                       "@odata.nextLink": format!("http://{host}/v1.0/users/delta?$skiptoken=S1")}),
            )
        }
    })
    .await;
    let (client, _) = client(&server);
    let p1 = client
        .delta_page(&DeltaCursor::start(&["id", "otherMails"]))
        .await
        .expect("p1");
    let DeltaNext::More(next) = p1.next.clone() else {
        panic!("expected More, got {:?}", p1.next)
    };
    assert_eq!(p1.users, vec![json!({"id": "u1"})]);
    let p2 = client
        .delta_page(&DeltaCursor::Link(next))
        .await
        .expect("p2");
    assert_eq!(p2.users[0]["@removed"]["reason"], "deleted");
    assert_eq!(
        p2.next,
        DeltaNext::Done(format!(
            "http://{}/v1.0/users/delta?$deltatoken=DT1",
            server.addr
        ))
    );
    let latest = client
        .delta_page(&DeltaCursor::latest(&["id"]))
        .await
        .expect("latest");
    assert!(latest.users.is_empty());
    assert!(matches!(latest.next, DeltaNext::Done(_)));

    let seen = server.seen();
    assert_eq!(seen[0].path(), "/v1.0/users/delta");
    assert_eq!(
        seen[0].query_value("$select").as_deref(),
        Some("id,otherMails")
    );
    assert_eq!(seen[1].target, "/v1.0/users/delta?$skiptoken=S1");
    assert_eq!(
        seen[2].query_value("$deltaToken").as_deref(),
        Some("latest")
    );
    assert_eq!(seen[2].query_value("$select").as_deref(), Some("id"));
}

#[tokio::test]
async fn expired_delta_tokens_are_reported_as_resets() {
    let server = TestServer::start(|req, _| match req.query_value("$deltatoken").as_deref() {
        Some("gone") => Reply::new(410).header("location", "http://x/v1.0/users/delta"),
        Some("expired") => Reply::graph_error(400, "syncStateNotFound", "sync state expired"),
        _ => Reply::graph_error(400, "Request_BadRequest", "bad"),
    })
    .await;
    let (client, _) = client(&server);
    let base = format!("http://{}/v1.0/users/delta?$deltatoken=", server.addr);
    for (token, reset) in [("gone", true), ("expired", true), ("other", false)] {
        let err = client
            .delta_page(&DeltaCursor::Link(format!("{base}{token}")))
            .await
            .expect_err("error");
        assert_eq!(err.is_delta_reset(), reset, "{token}: {err}");
        assert!(!err.is_transient());
    }
    assert_eq!(server.count(), 3, "resets are not retried");
}

// ------------------------------------------------------------------ writes + retries

#[tokio::test]
async fn patch_sends_exactly_the_user_patch_json() {
    let server = TestServer::start(|_, _| Reply::new(204)).await;
    let (client, _) = client(&server);
    let p = patch(&["alt@example.org", "second@example.net"], Some("gb"));
    client.patch_user("0b7f-id", &p).await.expect("patched");
    let s = &server.seen()[0];
    assert_eq!(s.method, "PATCH");
    assert_eq!(s.target, "/v1.0/users/0b7f-id");
    assert_eq!(s.header("content-type"), Some("application/json"));
    assert_eq!(s.body, serde_json::to_vec(&p).expect("json"));
    assert_eq!(
        s.json(),
        json!({"otherMails": ["alt@example.org", "second@example.net"], "usageLocation": "GB"})
    );
    let stats = client.stats();
    assert_eq!((stats.requests, stats.writes, stats.failed), (1, 1, 0));
}

#[tokio::test]
async fn patch_429_with_decimal_retry_after_then_204_succeeds_in_two_requests() {
    let server = TestServer::start(|_, i| {
        if i == 0 {
            Reply::graph_error(429, "TooManyRequests", "Please retry again later.")
                .header("retry-after", "0.05")
        } else {
            Reply::new(204)
        }
    })
    .await;
    let (client, _) = client(&server);
    let p = patch(&[], Some("US"));
    client
        .patch_user("u1", &p)
        .await
        .expect("second try succeeds");
    let seen = server.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].body, seen[1].body);
    assert_ne!(
        seen[0].header("client-request-id"),
        seen[1].header("client-request-id")
    );
    let stats = client.stats();
    assert_eq!(
        (stats.throttled, stats.retried, stats.writes, stats.failed),
        (1, 1, 2, 0)
    );
}

#[tokio::test]
async fn two_503s_then_success() {
    let server = TestServer::start(|_, i| {
        if i < 2 {
            Reply::graph_error(503, "serviceNotAvailable", "busy")
        } else {
            Reply::json(200, json!({"id": "u1"}))
        }
    })
    .await;
    let (client, _) = client(&server);
    let user = client.get_user("u1", SELECT).await.expect("ok");
    assert_eq!(user, Some(json!({"id": "u1"})));
    assert_eq!(server.count(), 3);
    assert_eq!(client.stats().retried, 2);
}

#[tokio::test]
async fn attempts_are_bounded_and_the_error_carries_ids_and_code() {
    let server = TestServer::start(|_, _| {
        Reply::graph_error(503, "serviceNotAvailable", "down").header("request-id", "rid-503")
    })
    .await;
    let (mut o, _) = options(&server);
    o.retry.max_attempts = 3;
    let client = GraphClient::new(o).expect("client");
    let err = client
        .patch_user("u1", &patch(&[], Some("FR")))
        .await
        .expect_err("fails");
    assert_eq!(server.count(), 3);
    assert_eq!(*err.kind(), GraphErrorKind::Transient);
    assert!(err.is_transient());
    assert_eq!(err.status(), Some(503));
    assert_eq!(err.code(), Some("serviceNotAvailable"));
    assert_eq!(err.request_id(), Some("rid-503"));
    let last_crid = server.seen()[2]
        .header("client-request-id")
        .map(str::to_string);
    assert_eq!(err.client_request_id().map(str::to_string), last_crid);
    assert!(err.to_string().contains("rid-503"), "{err}");
    assert_eq!(client.stats().failed, 1);
}

#[tokio::test]
async fn request_id_falls_back_to_inner_error() {
    let server =
        TestServer::start(|_, _| Reply::graph_error(400, "Request_BadRequest", "nope")).await;
    let (client, _) = client(&server);
    let err = client
        .patch_user("u1", &patch(&[], Some("FR")))
        .await
        .expect_err("fails");
    assert_eq!(err.request_id(), Some("inner-rid"));
}

#[tokio::test]
async fn the_deadline_bounds_retries() {
    // Always throttled for 0.2 s; a 0.5 s deadline leaves room for about three tries, far from 50.
    let server = TestServer::start(|_, _| {
        Reply::graph_error(429, "TooManyRequests", "slow down").header("retry-after", "0.2")
    })
    .await;
    let (mut o, _) = options(&server);
    o.retry.max_attempts = 50;
    o.retry.deadline = Duration::from_millis(500);
    let client = GraphClient::new(o).expect("client");
    let err = client.get_user("u1", SELECT).await.expect_err("gives up");
    assert!(err.is_throttled());
    let n = server.count();
    assert!((1..=3).contains(&n), "{n} requests");

    // A Retry-After longer than the whole deadline is not waited for at all.
    let server = TestServer::start(|_, _| {
        Reply::graph_error(429, "TooManyRequests", "slow down").header("retry-after", "30")
    })
    .await;
    let (mut o, _) = options(&server);
    o.retry.deadline = Duration::from_secs(2);
    let client = GraphClient::new(o).expect("client");
    let err = client.get_user("u1", SELECT).await.expect_err("gives up");
    assert_eq!(err.retry_after(), Some(Duration::from_secs(30)));
    assert_eq!(server.count(), 1);
}

#[tokio::test]
async fn non_retryable_4xx_are_not_retried() {
    let server = TestServer::start(|req, _| {
        if req.path().ends_with("/admin") {
            Reply::graph_error(
                403,
                "Authorization_RequestDenied",
                "Insufficient privileges to complete the operation.",
            )
        } else {
            Reply::graph_error(
                400,
                "Request_BadRequest",
                "Invalid value specified for property 'usageLocation'",
            )
        }
    })
    .await;
    let (client, _) = client(&server);
    let err = client
        .patch_user("u1", &patch(&[], Some("US")))
        .await
        .expect_err("400");
    assert_eq!(*err.kind(), GraphErrorKind::BadRequest);
    assert!(!err.is_transient());
    let err = client
        .patch_user("admin", &patch(&["a@b.org"], None))
        .await
        .expect_err("403");
    assert!(err.is_privileged_denied(), "{err}");
    assert_eq!(server.count(), 2);
    assert_eq!(client.stats().retried, 0);
}

#[tokio::test]
async fn a_401_refreshes_the_token_once() {
    let server = TestServer::start(|req, _| {
        if req.header("authorization") == Some("Bearer test-token-1") {
            Reply::graph_error(401, "InvalidAuthenticationToken", "expired")
        } else {
            Reply::new(204)
        }
    })
    .await;
    let (client, cred) = client(&server);
    client
        .patch_user("u1", &patch(&[], Some("US")))
        .await
        .expect("ok");
    assert_eq!(cred.calls(), 2);
    let seen = server.seen();
    assert_eq!(seen[1].header("authorization"), Some("Bearer test-token-2"));
}

#[tokio::test]
async fn timeouts_and_connection_failures_are_retried_then_typed() {
    let server = TestServer::start(|_, _| Reply::new(204).delay(Duration::from_secs(2))).await;
    let (mut o, _) = options(&server);
    o.request_timeout = Duration::from_millis(100);
    o.retry.max_attempts = 2;
    let client = GraphClient::new(o).expect("client");
    let err = client.get_user("u1", SELECT).await.expect_err("times out");
    assert_eq!(*err.kind(), GraphErrorKind::Timeout, "{err}");
    assert_eq!(server.count(), 2);

    // A port nobody listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let cred = Arc::new(common::FakeCredential::default());
    let mut o = entra_graph::GraphClientOptions::new(
        url::Url::parse(&format!("http://127.0.0.1:{port}")).expect("url"),
        cred,
    );
    o.retry = common::fast_retry();
    o.retry.max_attempts = 3;
    let client = GraphClient::new(o).expect("client");
    let err = client.get_user("u1", SELECT).await.expect_err("refused");
    assert_eq!(*err.kind(), GraphErrorKind::Transport, "{err}");
    assert_eq!(client.stats().requests, 3);
}

#[tokio::test]
async fn error_display_has_request_id_and_no_email() {
    let server = TestServer::start(|_, _| {
        Reply::graph_error(
            400,
            "Request_BadRequest",
            "Property otherMails value 'jane.doe@example.com' is invalid.",
        )
        .header("request-id", "11111111-2222-3333-4444-555555555555")
    })
    .await;
    let (client, _) = client(&server);
    let err = client
        .patch_user(
            "jane.doe@example.com",
            &patch(&["jane.doe@example.com"], None),
        )
        .await
        .expect_err("400");
    let text = err.to_string();
    let debug = format!("{err:?}");
    assert!(
        text.contains("11111111-2222-3333-4444-555555555555"),
        "{text}"
    );
    assert!(text.contains("PATCH"), "{text}");
    assert!(!text.contains('\n'));
    for s in [&text, &debug] {
        assert!(!s.contains("jane.doe"), "{s}");
        assert!(!s.contains("example.com"), "{s}");
    }
    // The UPN did go to Graph (in the path), as it must.
    assert_eq!(server.seen()[0].path(), "/v1.0/users/jane.doe@example.com");
}

#[tokio::test]
async fn posts_to_users_are_refused_and_resume_is_a_write() {
    let server = TestServer::start(|_, _| Reply::new(204)).await;
    let (client, _) = client(&server);
    for path in [
        "/v1.0/users",
        "/v1.0/users/x/microsoft.graph.foo",
        "/v1.0/$batch",
        "https://graph.microsoft.com/v1.0/users",
    ] {
        let err = client.post_json(path, &json!({})).await.expect_err(path);
        assert!(
            matches!(err.kind(), GraphErrorKind::InvalidRequest(_)),
            "{path}"
        );
    }
    assert_eq!(server.count(), 0);
    let path = "/v1.0/identityGovernance/lifecycleWorkflows/workflows/w1/runs/r1/taskProcessingResults/t1/microsoft.graph.identityGovernance.resume";
    let body = json!({"data": {"@odata.type": "microsoft.graph.identityGovernance.customTaskExtensionCallbackData", "operationStatus": "completed"}, "source": "entra-enrich", "type": "lifecycleEvent"});
    client.post_json(path, &body).await.expect("resumed");
    let s = &server.seen()[0];
    assert_eq!((s.method.as_str(), s.target.as_str()), ("POST", path));
    assert_eq!(s.json(), body);
    assert_eq!(client.stats().writes, 1);
}

#[tokio::test]
async fn empty_patches_and_bad_ids_are_refused_locally() {
    let server = TestServer::start(|_, _| Reply::new(204)).await;
    let (client, _) = client(&server);
    let err = client
        .patch_user("u1", &patch(&[], None))
        .await
        .expect_err("empty");
    assert!(matches!(err.kind(), GraphErrorKind::InvalidRequest(_)));
    let err = client
        .patch_user("..", &patch(&[], Some("US")))
        .await
        .expect_err("dots");
    assert!(matches!(err.kind(), GraphErrorKind::InvalidRequest(_)));
    assert_eq!(server.count(), 0);
}

// ------------------------------------------------------------------ limiter

#[tokio::test]
async fn the_limiter_spaces_writes_shared_across_clients() {
    let server = TestServer::start(|_, _| Reply::new(204)).await;
    // 120 writes/min = one every 0.5 s, shared by two clients.
    let limiter = Arc::new(WriteLimiter::new(120));
    let mut clients = Vec::new();
    for _ in 0..2 {
        let (mut o, _) = options(&server);
        o.write_limiter = Some(limiter.clone());
        clients.push(GraphClient::new(o).expect("client"));
    }
    let mut tasks = Vec::new();
    for i in 0..6 {
        let c = clients[i % 2].clone();
        tasks.push(tokio::spawn(async move {
            c.patch_user(&format!("u{i}"), &patch(&[], Some("US")))
                .await
        }));
    }
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    // Slots at 0, 0.5 and 1.0 s: never more than three writes reached the server by 1.2 s.
    let early = server.count();
    assert!(
        (1..=3).contains(&early),
        "{early} writes in the first 1.2 s"
    );
    for t in tasks {
        t.await.expect("join").expect("patched");
    }
    assert_eq!(server.count(), 6);
}

#[tokio::test]
async fn a_429_on_a_write_pauses_every_writer() {
    // The first PATCH is throttled for 1 s; everything else succeeds.
    let server = TestServer::start(|_, i| {
        if i == 0 {
            Reply::graph_error(429, "TooManyRequests", "slow").header("retry-after", "1")
        } else {
            Reply::new(204)
        }
    })
    .await;
    let (client, _) = client(&server);
    let a = {
        let c = client.clone();
        tokio::spawn(async move { c.patch_user("first", &patch(&[], Some("US"))).await })
    };
    while server.count() == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let b = {
        let c = client.clone();
        tokio::spawn(async move { c.patch_user("second", &patch(&[], Some("US"))).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Without the shared pause "second" would have gone out at once.
    assert_eq!(server.count(), 1);
    a.await.expect("join").expect("a");
    b.await.expect("join").expect("b");
    assert_eq!(server.count(), 3);
}

// ------------------------------------------------------------------ $batch

fn batch_items(body: &serde_json::Value) -> Vec<serde_json::Value> {
    body["requests"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn batch_splits_45_into_20_20_5_and_retries_only_the_throttled_item() {
    let server = TestServer::start(|req, _| {
        let body = req.json();
        let mut responses = Vec::new();
        for item in batch_items(&body) {
            let id = item["id"].as_str().unwrap_or_default().to_string();
            let url = item["url"].as_str().unwrap_or_default();
            let first_time = batch_items(&body).len() > 1;
            if url == "/users/user-3" && first_time {
                responses.push(json!({"id": id, "status": 429,
                    "headers": {"Retry-After": "0.05"},
                    "body": {"error": {"code": "TooManyRequests", "message": "slow"}}}));
            } else if url == "/users/user-42" {
                responses.push(json!({"id": id, "status": 403,
                    "headers": {"request-id": "rid-42"},
                    "body": {"error": {"code": "Authorization_RequestDenied", "message": "Insufficient privileges"}}}));
            } else {
                responses.push(json!({"id": id, "status": 204, "headers": {}}));
            }
        }
        Reply::json(200, json!({"responses": responses}))
    })
    .await;
    let (client, _) = client(&server);
    let items: Vec<(String, entra_core::UserPatch)> = (0..45)
        .map(|i| {
            (
                format!("user-{i}"),
                patch(&[], Some(if i % 2 == 0 { "US" } else { "DE" })),
            )
        })
        .collect();
    let results = client.patch_users_batch(&items).await;
    assert_eq!(results.len(), 45);
    for (i, r) in results.iter().enumerate() {
        if i == 42 {
            let err = r.as_ref().expect_err("403");
            assert!(err.is_privileged_denied());
            assert_eq!(err.request_id(), Some("rid-42"));
        } else {
            assert!(r.is_ok(), "item {i}: {r:?}");
        }
    }

    let seen = server.seen();
    let sizes: Vec<usize> = seen.iter().map(|s| batch_items(&s.json()).len()).collect();
    assert_eq!(sizes, vec![20, 1, 20, 5]);
    for s in &seen {
        assert_eq!(
            (s.method.as_str(), s.target.as_str()),
            ("POST", "/v1.0/$batch")
        );
        assert_eq!(s.header("content-type"), Some("application/json"));
    }
    let retry = batch_items(&seen[1].json());
    assert_eq!(retry[0]["url"], "/users/user-3");
    // Every item is a PATCH with a Content-Type header and exactly the UserPatch body.
    let mut urls = Vec::new();
    for s in [&seen[0], &seen[2], &seen[3]] {
        let items_json = batch_items(&s.json());
        let ids: Vec<&str> = items_json.iter().filter_map(|i| i["id"].as_str()).collect();
        let mut unique = ids.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), ids.len(), "batch ids must be unique");
        for it in items_json.iter() {
            assert_eq!(it["method"], "PATCH");
            assert_eq!(it["headers"]["Content-Type"], "application/json");
            let url = it["url"].as_str().unwrap_or_default().to_string();
            let n: usize = url.trim_start_matches("/users/user-").parse().expect("n");
            assert_eq!(it["body"], serde_json::to_value(&items[n].1).expect("json"));
            urls.push(url);
        }
    }
    let expected: Vec<String> = (0..45).map(|i| format!("/users/user-{i}")).collect();
    assert_eq!(urls, expected);
    let stats = client.stats();
    assert_eq!(stats.throttled, 1);
    assert_eq!(stats.writes, 46);
    assert_eq!(stats.failed, 1);
}

#[tokio::test]
async fn a_failed_batch_envelope_is_retried_whole() {
    let server = TestServer::start(|req, i| match i {
        0 => Reply::graph_error(503, "serviceNotAvailable", "busy"),
        1 => Reply::graph_error(429, "TooManyRequests", "slow").header("retry-after", "0.02"),
        2 => Reply::graph_error(424, "FailedDependency", "throttled batch"),
        _ => {
            let responses: Vec<_> = batch_items(&req.json())
                .iter()
                .map(|it| json!({"id": it["id"], "status": 204}))
                .collect();
            Reply::json(200, json!({"responses": responses}))
        }
    })
    .await;
    let (mut o, _) = options(&server);
    o.retry.max_attempts = 5;
    let client = GraphClient::new(o).expect("client");
    let items = vec![
        ("a".to_string(), patch(&[], Some("US"))),
        ("b".to_string(), patch(&[], Some("US"))),
    ];
    let results = client.patch_users_batch(&items).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let seen = server.seen();
    assert_eq!(seen.len(), 4);
    assert!(seen.iter().all(|s| batch_items(&s.json()).len() == 2));
}

#[tokio::test]
async fn batch_items_missing_from_the_answer_are_retried_and_bounded() {
    // The server never answers item "2": it is retried up to max_attempts, then reported.
    let server = TestServer::start(|req, _| {
        let responses: Vec<_> = batch_items(&req.json())
            .iter()
            .filter(|it| it["id"] != "2")
            .map(|it| json!({"id": it["id"], "status": 204}))
            .collect();
        Reply::json(200, json!({"responses": responses}))
    })
    .await;
    let (mut o, _) = options(&server);
    o.retry.max_attempts = 3;
    let client = GraphClient::new(o).expect("client");
    let items = vec![
        ("a".to_string(), patch(&[], Some("US"))),
        ("b".to_string(), patch(&[], Some("US"))),
    ];
    let results = client.patch_users_batch(&items).await;
    assert!(results[0].is_ok());
    assert!(results[1].as_ref().is_err_and(|e| e.is_transient()));
    let sizes: Vec<usize> = server
        .seen()
        .iter()
        .map(|s| batch_items(&s.json()).len())
        .collect();
    assert_eq!(sizes, vec![2, 1, 1]);
}

#[tokio::test]
async fn a_resume_post_that_may_have_arrived_is_not_resent() {
    // The server got the POST but answers too late: resending could resume twice.
    let server = TestServer::start(|_, _| Reply::new(204).delay(Duration::from_secs(2))).await;
    let (mut o, _) = options(&server);
    o.request_timeout = Duration::from_millis(100);
    let slow_client = GraphClient::new(o).expect("client");
    let path = "/v1.0/identityGovernance/lifecycleWorkflows/workflows/w/runs/r/taskProcessingResults/t/microsoft.graph.identityGovernance.resume";
    let err = slow_client
        .post_json(path, &json!({"data": {}}))
        .await
        .expect_err("times out");
    assert_eq!(*err.kind(), GraphErrorKind::Timeout);
    assert_eq!(server.count(), 1);

    // A 503 is a definite "not done": that one is retried.
    let server = TestServer::start(|_, i| {
        if i == 0 {
            Reply::graph_error(503, "serviceNotAvailable", "busy")
        } else {
            Reply::new(204)
        }
    })
    .await;
    let (client, _) = client(&server);
    client
        .post_json(path, &json!({"data": {}}))
        .await
        .expect("ok");
    assert_eq!(server.count(), 2);
}
