//! Talks to `serve` exactly as the Functions host does (<https://learn.microsoft.com/azure/azure-functions/functions-custom-handlers>): `POST /<FunctionName>`
//! with the host's headers and a `{Data, Metadata}` envelope taken from host-shaped fixtures.

use std::sync::{Arc, Once};
use std::time::Instant;

use functions_custom_handler::{
    bind_from_lookup, serve, BindError, FunctionApp, HttpOutput, Invocation, InvokeResponse,
};
use serde_json::{json, Value};
use tokio::net::TcpListener;

fn fixture(name: &str) -> String {
    let path = format!(
        "{}/../../tests/fixtures/functions/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("fixture {path}: {e}"))
}

static INIT: Once = Once::new();

fn init() {
    INIT.call_once(|| {
        functions_custom_handler::init_tracing(entra_core::pii::mask_emails_in)
            .expect("first init");
    });
}

struct TestApp;

#[async_trait::async_trait]
impl FunctionApp for TestApp {
    async fn invoke(&self, function_name: &str, inv: Invocation) -> InvokeResponse {
        match function_name {
            "lcw-joiner" => {
                let req = match inv.request.http_trigger("req") {
                    Ok(r) => r,
                    Err(e) => {
                        return InvokeResponse::http(
                            "res",
                            HttpOutput::json(400, &json!({"error": e.to_string()})),
                        )
                    }
                };
                let body = match req.body_json() {
                    Ok(b) => b,
                    Err(e) => {
                        return InvokeResponse::http(
                            "res",
                            HttpOutput::json(400, &json!({"error": e.to_string()})),
                        )
                    }
                };
                let email = body["data"]["subject"]["email"].as_str().unwrap_or("");
                tracing::info!(subject = %email, "callout received for {email}");
                inv.logs.push(format!("pushed directly: {email}"));
                InvokeResponse::http(
                    "res",
                    HttpOutput::json(
                        202,
                        &json!({
                            "subject": body["data"]["subject"]["id"],
                            "method": req.method,
                            "contentType": req.header("CONTENT-TYPE"),
                            "invocationId": inv.invocation_id,
                            "hostVersion": inv.host_version,
                            "sysMethod": inv.request.sys().and_then(|s| s.method_name),
                        }),
                    ),
                )
                .with_log("returned by the app: manager@contoso.com")
            }
            "new-hire-watch" | "Backfill" => match inv.request.timer("timer") {
                Ok(t) => {
                    tracing::info!(past_due = t.is_past_due, "timer fired");
                    InvokeResponse {
                        return_value: Some(json!({
                            "isPastDue": t.is_past_due,
                            "adjustForDst": t.schedule.and_then(|s| s.adjust_for_dst),
                            "last": t.schedule_status.as_ref().and_then(|s| s.last.clone()),
                            "next": t.schedule_status.as_ref().and_then(|s| s.next.clone()),
                            "lastUpdated": t.schedule_status.as_ref().and_then(|s| s.last_updated.clone()),
                            "hasStatus": t.schedule_status.is_some(),
                        })),
                        ..Default::default()
                    }
                }
                Err(e) => InvokeResponse::new().with_log(format!("bad timer: {e}")),
            },
            "boom" => panic!("test panic"),
            other => InvokeResponse::new().with_log(format!("unexpected {other}")),
        }
    }

    fn function_names(&self) -> Vec<String> {
        ["lcw-joiner", "new-hire-watch", "Backfill", "boom"]
            .map(String::from)
            .to_vec()
    }
}

async fn start() -> String {
    init();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve(listener, Arc::new(TestApp)));
    format!("http://{addr}")
}

/// POSTs like the host: its headers, its content type.
async fn host_post(base: &str, function: &str, body: String, id: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{base}/{function}"))
        .header("X-Azure-Functions-InvocationId", id)
        .header("X-Azure-Functions-HostVersion", "4.1037.0.0")
        .header("User-Agent", "Azure-Functions-Host/4.1037.0.0")
        .header(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )
        .header("content-type", "application/json; charset=utf-8")
        .body(body)
        .send()
        .await
        .unwrap()
}

/// POSTs `chunks` chunks of `size` spaces with `Transfer-Encoding: chunked` on a raw connection, and
/// returns the status the server answered with (it may answer before the client is done).
async fn chunked_post(base: &str, function: &str, chunks: usize, size: usize) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = base.trim_start_matches("http://");
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /{function} HTTP/1.1\r\nHost: {addr}\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\n"
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    let chunk = format!("{size:x}\r\n{}\r\n", " ".repeat(size));
    for _ in 0..chunks {
        // The server may close once it has answered: stop writing then.
        if conn.write_all(chunk.as_bytes()).await.is_err() {
            break;
        }
    }
    let _ = conn.write_all(b"0\r\n\r\n").await;
    let mut answer = Vec::new();
    let _ = conn.read_to_end(&mut answer).await;
    let text = String::from_utf8_lossy(&answer);
    text.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

fn res_body(answer: &Value) -> Value {
    let text = answer["Outputs"]["res"]["body"].as_str().unwrap();
    serde_json::from_str(text).unwrap()
}

async fn check_http_fixture(name: &str, id: &str) {
    let base = start().await;
    let resp = host_post(&base, "lcw-joiner", fixture(name), id).await;
    assert_eq!(resp.status(), 200);
    let answer: Value = resp.json().await.unwrap();
    let keys: Vec<&String> = answer.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["Logs", "Outputs", "ReturnValue"]);
    assert_eq!(answer["ReturnValue"], Value::Null);
    let res = &answer["Outputs"]["res"];
    assert_eq!(res["statusCode"], json!("202"));
    assert_eq!(
        res["headers"]["Content-Type"],
        json!("application/json; charset=utf-8")
    );
    let body = res_body(&answer);
    assert_eq!(
        body["subject"],
        json!("00aa00aa-bb11-cc22-dd33-44ee44ee44ee")
    );
    assert_eq!(body["method"], json!("POST"));
    assert_eq!(
        body["contentType"],
        json!("application/json; charset=utf-8")
    );
    assert_eq!(body["invocationId"], json!(id));
    assert_eq!(body["hostVersion"], json!("4.1037.0.0"));
    assert_eq!(body["sysMethod"], json!("lcw-joiner"));

    let logs: Vec<String> = serde_json::from_value(answer["Logs"].clone()).unwrap();
    let all = logs.join("\n");
    assert!(!all.contains("new.hire@contoso.com"), "unmasked: {all}");
    assert!(!all.contains("manager@contoso.com"), "unmasked: {all}");
    assert!(
        logs.iter().any(
            |l| l.starts_with("INFO protocol: callout received for n***@c***.com")
                && l.ends_with(" subject=n***@c***.com")
        ),
        "tracing event missing from Logs: {logs:?}"
    );
    assert!(
        logs.contains(&"pushed directly: n***@c***.com".to_string()),
        "{logs:?}"
    );
    assert_eq!(
        logs.last().map(String::as_str),
        Some("returned by the app: m***@c***.com")
    );
}

#[tokio::test]
async fn http_trigger_with_string_body() {
    check_http_fixture("http-lcw-joiner-string-body.json", "inv-string-1").await;
}

#[tokio::test]
async fn http_trigger_with_object_body() {
    check_http_fixture("http-lcw-joiner-object-body.json", "inv-object-1").await;
}

#[tokio::test]
async fn concurrent_invocations_keep_their_own_logs() {
    let base = start().await;
    let a = host_post(
        &base,
        "lcw-joiner",
        fixture("http-lcw-joiner-string-body.json"),
        "same-id",
    );
    let b = host_post(
        &base,
        "new-hire-watch",
        fixture("timer-new-hire-watch-status-null.json"),
        "same-id",
    );
    let (a, b) = tokio::join!(a, b);
    let a: Value = a.json().await.unwrap();
    let b: Value = b.json().await.unwrap();
    let a_logs = a["Logs"].to_string();
    let b_logs = b["Logs"].to_string();
    assert!(
        a_logs.contains("callout received") && !a_logs.contains("timer fired"),
        "{a_logs}"
    );
    assert!(
        b_logs.contains("timer fired") && !b_logs.contains("callout received"),
        "{b_logs}"
    );
}

#[tokio::test]
async fn timer_with_null_schedule_status() {
    let base = start().await;
    let resp = host_post(
        &base,
        "new-hire-watch",
        fixture("timer-new-hire-watch-status-null.json"),
        "t-1",
    )
    .await;
    assert_eq!(resp.status(), 200);
    let answer: Value = resp.json().await.unwrap();
    assert_eq!(answer["Outputs"], json!({}));
    assert_eq!(
        answer["ReturnValue"],
        json!({"isPastDue": false, "adjustForDst": true, "last": null, "next": null,
               "lastUpdated": null, "hasStatus": false})
    );
    assert_eq!(
        answer["Logs"],
        json!(["INFO protocol: timer fired past_due=false"])
    );
}

#[tokio::test]
async fn timer_with_populated_schedule_status_and_case_insensitive_name() {
    let base = start().await;
    // The app lists "Backfill"; the host path is the folder name, matched case-insensitively.
    let resp = host_post(
        &base,
        "backfill",
        fixture("timer-backfill-status-populated.json"),
        "t-2",
    )
    .await;
    assert_eq!(resp.status(), 200);
    let answer: Value = resp.json().await.unwrap();
    assert_eq!(
        answer["ReturnValue"],
        json!({"isPastDue": true, "adjustForDst": true,
               "last": "2026-11-24T02:00:00+00:00", "next": "2026-11-25T02:00:00+00:00",
               "lastUpdated": "2026-11-24T02:00:00.0181913+00:00", "hasStatus": true})
    );
}

#[tokio::test]
async fn readiness_answers_any_get_quickly() {
    init();
    let started = Instant::now();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve(listener, Arc::new(TestApp)));
    let resp = reqwest::get(format!("http://{addr}/")).await.unwrap();
    let elapsed = started.elapsed();
    assert_eq!(resp.status(), 200);
    assert!(elapsed.as_millis() < 500, "readiness took {elapsed:?}");
    let other = reqwest::get(format!("http://{addr}/anything"))
        .await
        .unwrap();
    assert_eq!(other.status(), 200);
}

#[tokio::test]
async fn unknown_function_is_404_naming_known_functions() {
    let base = start().await;
    let resp = host_post(
        &base,
        "nope",
        fixture("timer-new-hire-watch-status-null.json"),
        "u-1",
    )
    .await;
    assert_eq!(resp.status(), 404);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body["knownFunctions"],
        json!(["lcw-joiner", "new-hire-watch", "Backfill", "boom"])
    );
    assert!(body["error"].as_str().unwrap().contains("nope"));
}

#[tokio::test]
async fn invalid_envelope_is_http_400_and_masked() {
    let base = start().await;
    let resp = host_post(
        &base,
        "lcw-joiner",
        "{\"Data\": \"jane@example.com\"}".into(),
        "e-1",
    )
    .await;
    assert_eq!(resp.status(), 400);
    let text = resp.text().await.unwrap();
    assert!(text.contains("invalid invocation envelope"), "{text}");
    assert!(!text.contains("jane@example.com"), "{text}");
    let resp = host_post(&base, "lcw-joiner", "not json".into(), "e-2").await;
    assert_eq!(resp.status(), 400);
}

#[tokio::test]
async fn a_body_over_the_limit_is_413_and_the_server_goes_on_answering() {
    let base = start().await;
    let big = format!(
        "{{\"Data\": {{\"req\": {{\"Body\": \"{}\"}}}}, \"Metadata\": {{}}}}",
        "x".repeat(functions_custom_handler::MAX_ENVELOPE_BYTES + 1)
    );
    let resp = host_post(&base, "lcw-joiner", big, "big-1").await;
    assert_eq!(resp.status(), 413);
    assert!(resp.text().await.unwrap().contains("larger than"));
    // Without a Content-Length (chunked), the limit holds while reading: 413 after 1 MiB, not after
    // the 2 MiB the client would send.
    let status = chunked_post(&base, "lcw-joiner", 32, 64 * 1024).await;
    assert_eq!(status, 413);
    // The server goes on answering.
    let ok = host_post(
        &base,
        "new-hire-watch",
        fixture("timer-new-hire-watch-status-null.json"),
        "after",
    )
    .await;
    assert_eq!(ok.status(), 200);
}

#[tokio::test]
async fn invalid_function_input_is_200_with_res_400() {
    let base = start().await;
    let mut env: Value =
        serde_json::from_str(&fixture("http-lcw-joiner-string-body.json")).unwrap();
    env["Data"]["req"]["Body"] = json!("{not json");
    let resp = host_post(&base, "lcw-joiner", env.to_string(), "b-1").await;
    assert_eq!(resp.status(), 200);
    let answer: Value = resp.json().await.unwrap();
    assert_eq!(answer["Outputs"]["res"]["statusCode"], json!("400"));
    assert!(res_body(&answer)["error"]
        .as_str()
        .unwrap()
        .contains("not valid JSON"));
}

#[tokio::test]
async fn app_panic_is_http_500() {
    let base = start().await;
    let resp = host_post(&base, "boom", "{\"Data\":{},\"Metadata\":{}}".into(), "p-1").await;
    assert_eq!(resp.status(), 500);
    // and the server keeps serving
    let ok = reqwest::get(format!("{base}/")).await.unwrap();
    assert_eq!(ok.status(), 200);
}

#[tokio::test]
async fn bind_reads_port_variables() {
    let err = bind_from_lookup(|_| None).await.unwrap_err();
    assert!(matches!(err, BindError::MissingPort));
    assert!(err.to_string().contains("FUNCTIONS_CUSTOMHANDLER_PORT"));

    let err = bind_from_lookup(|k| (k == "FUNCTIONS_CUSTOMHANDLER_PORT").then(|| "99999".into()))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("FUNCTIONS_CUSTOMHANDLER_PORT=\"99999\""),
        "{err}"
    );

    // Legacy variable as fallback; port 0 = any free port, always on loopback.
    let l = bind_from_lookup(|k| (k == "FUNCTIONS_HTTPWORKER_PORT").then(|| "0".into()))
        .await
        .unwrap();
    assert!(l.local_addr().unwrap().ip().is_loopback());

    // The current variable wins over the legacy one.
    let probe = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = probe.local_addr().unwrap().port();
    drop(probe);
    let l = bind_from_lookup(|k| match k {
        "FUNCTIONS_CUSTOMHANDLER_PORT" => Some(port.to_string()),
        _ => Some("1".into()),
    })
    .await
    .unwrap();
    assert_eq!(l.local_addr().unwrap().port(), port);
}
