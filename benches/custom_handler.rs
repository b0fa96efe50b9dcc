//! The Azure Functions custom handler (`entra-enrich serve`, the real release binary):
//!
//! 1. cold start, 20 times: exec → first HTTP answer on `GET /` (the host's readiness rule: it polls
//!    the root URL and any answer means ready; target < 50 ms), and exec → first successful
//!    `POST /health` invocation with a host-shaped payload;
//! 2. lcw-joiner latency against a zero-latency sandbox: N host-shaped `POST /lcw-joiner` invocations
//!    (caller token check, Graph GET user, duplicate check, PATCH, resume), p50/p99/max, next to a
//!    bare `GET /v1.0/users/{id}` to the sandbox for context.
//!
//! 3. a soak: 2,000 callouts, 32 at a time, every tenth a second copy of the one before it sent at
//!    the same moment; errors and duplicate writes (target 0 each), p50/p99, and the handler's RSS at
//!    the start and the end.
//!
//! `cargo bench --bench custom_handler` (env: `BENCH_SOAK`, default 2000; `BENCH_SOAK_CONCURRENCY`,
//! default 32; `BENCH_COLD_STARTS`, default 20; `BENCH_CALLOUTS`,
//! default 500; `BENCH_WARMUP`, default 20; `BENCH_STATE_DIR`, parent of the temporary state
//! directory). Writes `target/bench-reports/custom_handler.json`; exits non-zero when the readiness
//! target is missed or an answer is not a successful resume.
//!
//! The `serve` child gets `ENRICH_MAX_WRITES_PER_MINUTE=6000000` (allowed against a loopback
//! sandbox): each invocation writes twice (PATCH, resume), and the default pace (one write per
//! 60 ms) would measure the limiter, not the handler.

mod support;
use support::{env_or, report_dir, stats, stats_json};

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use entra_sandbox::identity::TokenSpec;
use entra_sandbox::{Sandbox, SandboxOptions, TenantSource};
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_entra-enrich");
const READY_TARGET_MS: f64 = 50.0;
const AUDIENCE: &str = "api://entra-enrich-bench";
/// The relay's app id (a Logic App managed identity in production).
const CALLER_APP_ID: &str = "5b6c7d8e-9f00-4a1b-8c2d-3e4f5a6b7c8d";
const WORKFLOW_ID: &str = "7a1f2c3d-4b5e-4f60-8a71-92b3c4d5e6f7";
const TASK_ID: &str = "1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f";
/// A per-invocation budget for the readiness and health polls.
const POLL_LIMIT: Duration = Duration::from_secs(10);

fn free_port() -> u16 {
    TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("find a free port on 127.0.0.1")
}

/// Kills the child when dropped (a panic must not leave a server behind).
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_serve(port: u16, env: &[(String, String)]) -> (ChildGuard, Instant) {
    let mut cmd = Command::new(BIN);
    cmd.arg("serve")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("FUNCTIONS_CUSTOMHANDLER_PORT", port.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let exec = Instant::now();
    let child = cmd.spawn().expect("spawn entra-enrich serve");
    (ChildGuard(child), exec)
}

/// One HTTP/1.1 exchange on a fresh connection (`Connection: close`): status and body.
fn http_once(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<(u16, Vec<u8>)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes())?;
    s.write_all(body)?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    let text_end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidData, "no HTTP header terminator")
        })?;
    let head = String::from_utf8_lossy(&buf[..text_end]).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidData, "no status line"))?;
    let raw = buf[text_end + 4..].to_vec();
    let chunked = head.lines().any(|l| {
        l.to_ascii_lowercase().starts_with("transfer-encoding:")
            && l.to_ascii_lowercase().contains("chunked")
    });
    Ok((status, if chunked { dechunk(&raw) } else { raw }))
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = raw.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&raw[..eol])
            .ok()
            .and_then(|s| usize::from_str_radix(s.trim(), 16).ok())
            .unwrap_or(0);
        if size == 0 || raw.len() < eol + 2 + size {
            break;
        }
        out.extend_from_slice(&raw[eol + 2..eol + 2 + size]);
        raw = &raw[(eol + 4 + size).min(raw.len())..];
    }
    out
}

fn host_headers(invocation_id: &str) -> Vec<(&str, &str)> {
    vec![
        ("Content-Type", "application/json"),
        ("User-Agent", "Azure-Functions-Host/4.1041.200.1"),
        ("X-Azure-Functions-HostVersion", "4.1041.200.1"),
        ("X-Azure-Functions-InvocationId", invocation_id),
    ]
}

/// `Outputs.res` of an invocation answer, with its body parsed (the body is JSON text).
fn res_of(answer: &[u8]) -> Option<(String, Value)> {
    let v: Value = serde_json::from_slice(answer).ok()?;
    let res = v.get("Outputs")?.get("res")?;
    let status = match res.get("statusCode")? {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let body = match res.get("body") {
        Some(Value::String(s)) => serde_json::from_str(s).unwrap_or(Value::String(s.clone())),
        Some(other) => other.clone(),
        None => Value::Null,
    };
    Some((status, body))
}

fn fixture(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/functions")
        .join(name);
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parse {}: {e}", path.display()))
}

fn median(samples: &[f64]) -> f64 {
    let mut v = samples.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn sandbox_env(sb: &Sandbox, state_dir: &Path) -> Vec<(String, String)> {
    [
        ("GRAPH_BASE_URL", sb.graph_base_url()),
        ("IDENTITY_ENDPOINT", sb.identity_endpoint()),
        ("IDENTITY_HEADER", sb.identity_header()),
        ("ENRICH_STATE_DIR", state_dir.display().to_string()),
        (
            "ENRICH_USAGELOCATION_SOURCE",
            "onPremisesExtensionAttributes.extensionAttribute2".to_string(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// Cold starts: (exec → readiness answer, exec → successful health invocation), in ms.
fn cold_starts(sb: &Sandbox, state_dir: &Path, runs: usize) -> (Vec<f64>, Vec<f64>) {
    let env = sandbox_env(sb, state_dir);
    let health =
        serde_json::to_vec(&fixture("http-health-get.json")).expect("serialize the health payload");
    let (mut ready_ms, mut health_ms) = (Vec::new(), Vec::new());
    for run in 0..runs {
        let port = free_port();
        let (child, exec) = spawn_serve(port, &env);
        // Readiness: a fresh TCP connect about every millisecond until any HTTP answer.
        let ready = loop {
            if http_once(port, "GET", "/", &[], b"").is_ok() {
                break exec.elapsed();
            }
            assert!(
                exec.elapsed() < POLL_LIMIT,
                "cold start {run}: no answer on / within {POLL_LIMIT:?}"
            );
            std::thread::sleep(Duration::from_millis(1));
        };
        let invocation_id = uuid::Uuid::new_v4().to_string();
        let headers = host_headers(&invocation_id);
        let healthy = loop {
            match http_once(port, "POST", "/health", &headers, &health) {
                Ok((200, body)) => {
                    let (status, b) = res_of(&body).unwrap_or_else(|| {
                        panic!(
                            "cold start {run}: health answer is not {{Outputs.res}}: {}",
                            String::from_utf8_lossy(&body)
                        )
                    });
                    assert_eq!(
                        status, "200",
                        "cold start {run}: health Outputs.res.statusCode"
                    );
                    assert_eq!(
                        b["name"], "entra-enrich",
                        "cold start {run}: health body {b}"
                    );
                    break exec.elapsed();
                }
                Ok((status, body)) => panic!(
                    "cold start {run}: POST /health answered {status}: {}",
                    String::from_utf8_lossy(&body)
                ),
                Err(_) => {
                    assert!(
                        exec.elapsed() < POLL_LIMIT,
                        "cold start {run}: health never answered"
                    );
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        };
        drop(child);
        ready_ms.push(ready.as_secs_f64() * 1e3);
        health_ms.push(healthy.as_secs_f64() * 1e3);
    }
    (ready_ms, health_ms)
}

/// Hybrid, non-privileged users whose data makes the joiner write and resume `Completed`.
fn pick_subjects(sb: &Sandbox, n: usize) -> Vec<String> {
    let privileged: std::collections::HashSet<String> =
        sb.privileged_user_ids().into_iter().collect();
    let users: Vec<Value> = sb.user_ids().iter().filter_map(|id| sb.user(id)).collect();
    let mut eid_count: HashMap<String, usize> = HashMap::new();
    for u in &users {
        if let Some(e) = u["employeeId"].as_str() {
            *eid_count.entry(e.to_string()).or_default() += 1;
        }
    }
    let valid_email = |s: &str| {
        s.is_ascii()
            && !s.contains(' ')
            && s.split_once('@')
                .is_some_and(|(l, d)| !l.is_empty() && d.contains('.'))
    };
    users
        .iter()
        .filter(|u| u["onPremisesSyncEnabled"] == json!(true))
        .filter(|u| u["id"].as_str().is_some_and(|id| !privileged.contains(id)))
        .filter(|u| {
            u["employeeId"]
                .as_str()
                .is_some_and(|e| eid_count.get(e) == Some(&1))
        })
        .filter(|u| u["otherMails"].as_array().is_some_and(Vec::is_empty))
        .filter(|u| {
            let ext = &u["onPremisesExtensionAttributes"];
            ext["extensionAttribute1"].as_str().is_some_and(valid_email)
                && ext["extensionAttribute2"]
                    .as_str()
                    .is_some_and(|c| c.len() == 2 && c.bytes().all(|b| b.is_ascii_uppercase()))
                && !matches!(
                    ext["extensionAttribute2"].as_str(),
                    Some("XX" | "ZZ" | "EU")
                )
        })
        .filter_map(|u| u["id"].as_str().map(str::to_string))
        .take(n)
        .collect()
}

fn callout_payload(template: &Value, token: &str, subject_id: &str, result_id: &str) -> Value {
    let mut p = template.clone();
    let bearer = format!("Bearer {token}");
    p["Data"]["req"]["Headers"]["Authorization"] = json!([bearer]);
    p["Metadata"]["Headers"]["Authorization"] = json!(bearer);
    let data = &mut p["Data"]["req"]["Body"]["data"];
    data["callbackUriPath"] = json!(format!(
        "/identityGovernance/lifecycleWorkflows/workflows/{WORKFLOW_ID}/tasks/{TASK_ID}/taskProcessingResults/{result_id}/microsoft.graph.identityGovernance.resume"
    ));
    data["subject"]["id"] = json!(subject_id);
    data["task"]["id"] = json!(TASK_ID);
    data["workflow"]["id"] = json!(WORKFLOW_ID);
    data["taskProcessingResult"]["id"] = json!(result_id);
    p
}

/// The serve child's settings for lcw-joiner: the sandbox, the caller check on, no client-side pace
/// (every invocation writes twice, PATCH and resume; the default pace would measure the limiter).
fn joiner_env(sb: &Sandbox, state_dir: &Path) -> Vec<(String, String)> {
    let mut env = sandbox_env(sb, state_dir);
    env.extend(
        [
            ("ENRICH_TENANT_ID", sb.tenant_id()),
            ("AZURE_AUTHORITY_HOST", sb.authority_url()),
            ("ENRICH_AUDIENCE", AUDIENCE.to_string()),
            ("ENRICH_ALLOWED_CALLERS", CALLER_APP_ID.to_string()),
            ("ENRICH_MAX_WRITES_PER_MINUTE", "6000000".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v)),
    );
    env
}

struct JoinerFigures {
    invocations: Vec<f64>,
    bare_get: Vec<f64>,
    resumes: usize,
    patches: u64,
}

async fn joiner_latency(sb: &Sandbox, state_dir: &Path, warmup: usize, n: usize) -> JoinerFigures {
    let env = joiner_env(sb, state_dir);
    let subjects = pick_subjects(sb, warmup + n);
    assert_eq!(
        subjects.len(),
        warmup + n,
        "not enough eligible hybrid users in the sandbox tenant"
    );
    let spec = TokenSpec::for_audience(sb.identity(), &sb.authority_url(), AUDIENCE, CALLER_APP_ID);
    let token = sb.identity().mint(&spec);
    let template = fixture("http-lcw-joiner-object-body.json");

    let port = free_port();
    let (_child, exec) = spawn_serve(port, &env);
    while http_once(port, "GET", "/", &[], b"").is_err() {
        assert!(exec.elapsed() < POLL_LIMIT, "serve did not become ready");
        std::thread::sleep(Duration::from_millis(1));
    }
    // Like the host: one keep-alive HTTP/1.1 connection pool to the worker.
    let http = reqwest::Client::builder()
        .no_proxy()
        .http1_only()
        .build()
        .expect("build the HTTP client");
    let url = format!("http://127.0.0.1:{port}/lcw-joiner");
    let mut invocations = Vec::with_capacity(n);
    let mut result_ids = Vec::with_capacity(warmup + n);
    for (i, subject) in subjects.iter().enumerate() {
        let rid = uuid::Uuid::new_v4().to_string();
        sb.add_task_processing_result(WORKFLOW_ID, TASK_ID, &rid);
        let payload = serde_json::to_vec(&callout_payload(&template, &token, subject, &rid))
            .expect("serialize a callout");
        let invocation_id = uuid::Uuid::new_v4().to_string();
        let t = Instant::now();
        let resp = http
            .post(&url)
            .header("Content-Type", "application/json")
            .header("User-Agent", "Azure-Functions-Host/4.1041.200.1")
            .header("X-Azure-Functions-HostVersion", "4.1041.200.1")
            .header("X-Azure-Functions-InvocationId", &invocation_id)
            .body(payload)
            .send()
            .await
            .unwrap_or_else(|e| panic!("invocation {i}: {e}"));
        let status = resp.status().as_u16();
        let body = resp
            .bytes()
            .await
            .unwrap_or_else(|e| panic!("invocation {i}: body: {e}"));
        let elapsed = t.elapsed().as_secs_f64() * 1e3;
        assert_eq!(
            status,
            200,
            "invocation {i}: HTTP {status}: {}",
            String::from_utf8_lossy(&body)
        );
        let (res_status, b) = res_of(&body).unwrap_or_else(|| {
            panic!(
                "invocation {i}: not {{Outputs.res}}: {}",
                String::from_utf8_lossy(&body)
            )
        });
        assert!(
            res_status == "200"
                && b["resume"] == "Completed"
                && b["resumeError"].is_null()
                && b["outcome"] == "EntryExportUpdate",
            "invocation {i} (subject {subject}): Outputs.res.statusCode {res_status}, body {b}"
        );
        if i >= warmup {
            invocations.push(elapsed);
        }
        result_ids.push(rid);
    }
    let resumes = result_ids
        .iter()
        .filter(|rid| sb.resumes(WORKFLOW_ID, TASK_ID, rid).len() == 1)
        .count();
    let patches = sb.counters().effective_patches;

    // Context: a bare GET of one user from the same sandbox, same client, keep-alive.
    let graph_token = sb.mint_graph_token(&sb.managed_identity_app_id());
    let mut bare_get = Vec::with_capacity(n);
    for (i, subject) in subjects.iter().enumerate() {
        let url = format!(
            "{}/v1.0/users/{subject}?$select=id,userPrincipalName,employeeId,otherMails,usageLocation,onPremisesSyncEnabled,onPremisesExtensionAttributes",
            sb.graph_base_url()
        );
        let t = Instant::now();
        let resp = http
            .get(&url)
            .bearer_auth(&graph_token)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET user: {e}"));
        let ok = resp.status().is_success();
        let _ = resp.bytes().await;
        let elapsed = t.elapsed().as_secs_f64() * 1e3;
        assert!(ok, "bare GET /v1.0/users/{subject} failed");
        if i >= warmup {
            bare_get.push(elapsed);
        }
    }
    JoinerFigures {
        invocations,
        bare_get,
        resumes,
        patches,
    }
}

fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        })
        .unwrap_or(0)
}

struct SoakFigures {
    callouts: usize,
    repeats: usize,
    /// Every HTTP answer's latency, 503s included.
    answers: Vec<f64>,
    /// Answers that were 503 (an in-flight copy, or a subject another call was writing).
    busy: usize,
    /// Wrong answers: not 200/503, a final answer that is not a clean resume, a callout not resumed
    /// exactly once.
    errors: usize,
    /// PATCHes received beyond one per subject.
    duplicate_writes: u64,
    rss_start_kb: u64,
    rss_end_kb: u64,
}

/// The soak: `total` host-shaped callouts, `concurrency` at a time, where every tenth is a second
/// copy of the callout just before it (same `taskProcessingResult.id`, sent at the same moment, as a
/// relay retrying on a timeout does). A 503 is retried after 100 ms (the relay waits at least 30 s;
/// the bench compresses that), until every callout has its final answer.
async fn joiner_soak(
    sb: &Sandbox,
    state_dir: &Path,
    subjects: &[String],
    total: usize,
    concurrency: usize,
) -> SoakFigures {
    use futures::StreamExt;
    let env = joiner_env(sb, state_dir);
    let spec = TokenSpec::for_audience(sb.identity(), &sb.authority_url(), AUDIENCE, CALLER_APP_ID);
    let token = sb.identity().mint(&spec);
    let template = fixture("http-lcw-joiner-object-body.json");
    // (subject, result id) per callout; every tenth repeats the one before it.
    let mut jobs: Vec<(String, String)> = Vec::with_capacity(total);
    let mut unique = 0;
    while jobs.len() < total {
        if jobs.len() % 10 == 9 {
            let last = jobs.last().cloned().expect("a callout to repeat");
            jobs.push(last);
            continue;
        }
        let subject = subjects[unique].clone();
        unique += 1;
        let rid = uuid::Uuid::new_v4().to_string();
        sb.add_task_processing_result(WORKFLOW_ID, TASK_ID, &rid);
        jobs.push((subject, rid));
    }
    let port = free_port();
    let (child, exec) = spawn_serve(port, &env);
    while http_once(port, "GET", "/", &[], b"").is_err() {
        assert!(exec.elapsed() < POLL_LIMIT, "serve did not become ready");
        std::thread::sleep(Duration::from_millis(1));
    }
    let pid = child.0.id();
    let rss_start_kb = rss_kb(pid);
    let patches_before = sb.counters().patches;
    let http = reqwest::Client::builder()
        .no_proxy()
        .http1_only()
        .pool_max_idle_per_host(concurrency)
        .build()
        .expect("build the HTTP client");
    let url = format!("http://127.0.0.1:{port}/lcw-joiner");
    let one = |subject: String, rid: String| {
        let (http, url, token, template) = (&http, &url, &token, &template);
        async move {
            let payload = serde_json::to_vec(&callout_payload(template, token, &subject, &rid))
                .expect("serialize a callout");
            let mut latencies = Vec::new();
            let mut busy = 0usize;
            for _ in 0..200 {
                let t = Instant::now();
                let sent = http
                    .post(url)
                    .header("Content-Type", "application/json")
                    .header(
                        "X-Azure-Functions-InvocationId",
                        uuid::Uuid::new_v4().to_string(),
                    )
                    .body(payload.clone())
                    .send()
                    .await;
                let body = match sent {
                    Ok(r) => r.bytes().await.ok(),
                    Err(_) => None,
                };
                latencies.push(t.elapsed().as_secs_f64() * 1e3);
                match body.as_deref().and_then(res_of) {
                    Some((status, _)) if status == "503" => {
                        busy += 1;
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    Some((status, b)) => {
                        let error = !(status == "200"
                            && b["resume"] == "Completed"
                            && b["resumeError"].is_null());
                        return (latencies, busy, error);
                    }
                    None => return (latencies, busy, true),
                }
            }
            (latencies, busy, true)
        }
    };
    let results: Vec<(Vec<f64>, usize, bool)> =
        futures::stream::iter(jobs.iter().cloned().map(|(s, r)| one(s, r)))
            .buffer_unordered(concurrency)
            .collect()
            .await;
    let rss_end_kb = rss_kb(pid);
    let mut answers = Vec::new();
    let (mut busy, mut errors) = (0, 0);
    for (l, b, e) in results {
        answers.extend(l);
        busy += b;
        errors += usize::from(e);
    }
    let mut resumed_once = std::collections::HashSet::new();
    for (_, rid) in &jobs {
        if resumed_once.insert(rid.clone()) && sb.resumes(WORKFLOW_ID, TASK_ID, rid).len() != 1 {
            errors += 1;
        }
    }
    let received = sb.counters().patches - patches_before;
    drop(child);
    SoakFigures {
        callouts: total,
        repeats: total - unique,
        answers,
        busy,
        errors,
        duplicate_writes: received.saturating_sub(unique as u64),
        rss_start_kb,
        rss_end_kb,
    }
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --all-targets` runs this binary without it.
    if !std::env::args().any(|a| a == "--bench") {
        println!("skipped: run with `cargo bench` (this is a benchmark, not a test)");
        return;
    }
    let runs: usize = env_or("BENCH_COLD_STARTS", 20);
    let n: usize = env_or("BENCH_CALLOUTS", 500);
    let warmup: usize = env_or("BENCH_WARMUP", 20);
    let soak_total: usize = env_or("BENCH_SOAK", 2_000);
    let soak_concurrency: usize = env_or("BENCH_SOAK_CONCURRENCY", 32);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("build the tokio runtime");
    let bench_start = Instant::now();
    // The sandbox answers `$filter` by scanning its users, so the tenant size shows in the joiner's
    // latency (the duplicate-employeeId query): the latency run keeps its 2,000-user tenant, and the
    // soak, which needs 2,000 fresh subjects, gets a tenant of its own.
    let sandbox = |users: usize| {
        rt.block_on(Sandbox::start(SandboxOptions {
            tenant: TenantSource::Generated { users, seed: 11 },
            throttling: false,
            record_requests: false,
            record_bodies: false,
            ..Default::default()
        }))
        .expect("start the sandbox")
    };
    let sb = sandbox(2_000);
    // BENCH_STATE_DIR: where the temporary state directory goes (default: the system temp dir).
    let dir = match std::env::var_os("BENCH_STATE_DIR") {
        Some(parent) => tempfile::tempdir_in(parent),
        None => tempfile::tempdir(),
    }
    .expect("create a temporary state directory");

    let (ready_ms, health_ms) = cold_starts(&sb, &dir.path().join("cold"), runs);
    let joiner = rt.block_on(joiner_latency(&sb, &dir.path().join("joiner"), warmup, n));
    let soak_sb = sandbox((soak_total * 3).max(3_000));
    let soak_subjects = pick_subjects(&soak_sb, soak_total);
    assert!(
        soak_subjects.len() >= soak_total - soak_total / 10,
        "not enough eligible users for the soak: {}",
        soak_subjects.len()
    );
    let soak = rt.block_on(joiner_soak(
        &soak_sb,
        &dir.path().join("soak"),
        &soak_subjects,
        soak_total,
        soak_concurrency,
    ));
    let total = bench_start.elapsed().as_secs_f64();

    let ready = stats(&ready_ms);
    let health = stats(&health_ms);
    let inv = stats(&joiner.invocations);
    let get = stats(&joiner.bare_get);
    let ready_median = median(&ready_ms);
    let health_median = median(&health_ms);
    let ok_ready = ready_median < READY_TARGET_MS;
    let ok_joiner = joiner.resumes == warmup + n;
    let ok_soak = soak.errors == 0 && soak.duplicate_writes == 0;
    let soak_stats = stats(&soak.answers);

    println!("custom handler bench (entra-enrich serve, release binary; {runs} cold starts, {warmup}+{n} callouts)");
    println!();
    let f = |x: f64| {
        if x.is_nan() {
            String::new()
        } else {
            format!("{x:.2}")
        }
    };
    let row = |label: &str, n: usize, mid: f64, p99: f64, min: f64, max: f64, target: &str| {
        println!(
            "| {label:<46} | {n:>4} | {:>10} | {:>7} | {:>7} | {:>7} | {target:<9} |",
            f(mid),
            f(p99),
            f(min),
            f(max)
        );
    };
    println!(
        "| {:<46} | {:>4} | {:>10} | {:>7} | {:>7} | {:>7} | {:<9} |",
        "measurement (ms)", "n", "median/p50", "p99", "min", "max", "target"
    );
    println!(
        "|{:-<48}|------|------------|---------|---------|---------|-----------|",
        ""
    );
    let ready_mark = format!(
        "< {READY_TARGET_MS:.0} {}",
        if ok_ready { "ok" } else { "MISSED" }
    );
    row(
        "cold start: exec -> readiness answer on /",
        ready.n,
        ready_median,
        f64::NAN,
        ready.min,
        ready.max,
        &ready_mark,
    );
    row(
        "cold start: exec -> POST /health answer 200",
        health.n,
        health_median,
        f64::NAN,
        health.min,
        health.max,
        "",
    );
    row(
        "lcw-joiner invocation, end to end",
        inv.n,
        inv.p50,
        inv.p99,
        inv.min,
        inv.max,
        "",
    );
    row(
        "bare GET /v1.0/users/{id} to the sandbox",
        get.n,
        get.p50,
        get.p99,
        get.min,
        get.max,
        "",
    );
    row(
        "joiner overhead over bare GET (p50, p99)",
        inv.n,
        inv.p50 - get.p50,
        inv.p99 - get.p99,
        f64::NAN,
        f64::NAN,
        "",
    );
    row(
        "soak: lcw-joiner answers (503s included)",
        soak_stats.n,
        soak_stats.p50,
        soak_stats.p99,
        soak_stats.min,
        soak_stats.max,
        "",
    );
    println!();
    println!(
        "soak: {} callouts ({} repeats sent at the same moment), {soak_concurrency} at a time: errors {} (target 0), duplicate writes {} (target 0), 503 answers {}, RSS {:.1} MB at start, {:.1} MB at end{}",
        soak.callouts,
        soak.repeats,
        soak.errors,
        soak.duplicate_writes,
        soak.busy,
        soak.rss_start_kb as f64 / 1024.0,
        soak.rss_end_kb as f64 / 1024.0,
        if ok_soak { "" } else { "  MISSED" }
    );
    println!(
        "resumes recorded: {} of {} callouts (each exactly once); effective PATCHes: {}; total wall time {total:.1} s",
        joiner.resumes,
        warmup + n,
        joiner.patches
    );

    let report = json!({
        "bench": "custom_handler",
        "coldStart": {
            "runs": runs,
            "readiness": stats_json(&ready),
            "readinessMedianMs": ready_median,
            "readinessSamplesMs": ready_ms,
            "firstHealth": stats_json(&health),
            "firstHealthMedianMs": health_median,
            "firstHealthSamplesMs": health_ms,
            "targetReadinessMs": READY_TARGET_MS,
            "met": ok_ready,
        },
        "lcwJoiner": {
            "warmup": warmup,
            "invocations": stats_json(&inv),
            "bareGetUser": stats_json(&get),
            "overheadP50Ms": inv.p50 - get.p50,
            "overheadP99Ms": inv.p99 - get.p99,
            "resumes": joiner.resumes,
            "effectivePatches": joiner.patches,
        },
        "soak": {
            "callouts": soak.callouts,
            "concurrency": soak_concurrency,
            "repeats": soak.repeats,
            "answers": stats_json(&soak_stats),
            "busyAnswers": soak.busy,
            "errors": soak.errors,
            "duplicateWrites": soak.duplicate_writes,
            "rssStartKb": soak.rss_start_kb,
            "rssEndKb": soak.rss_end_kb,
            "met": ok_soak,
        },
        "totalWallSeconds": total,
    });
    let out = report_dir();
    let path = out.join("custom_handler.json");
    match std::fs::create_dir_all(&out).and_then(|_| {
        std::fs::write(
            &path,
            serde_json::to_vec_pretty(&report).unwrap_or_default(),
        )
    }) {
        Ok(()) => println!("report: {}", path.display()),
        Err(e) => eprintln!("could not write {}: {e}", path.display()),
    }
    drop(sb);
    drop(soak_sb);
    rt.shutdown_timeout(Duration::from_secs(1));
    if !(ok_ready && ok_joiner && ok_soak) {
        eprintln!("custom handler bench: a target was missed (see the table)");
        std::process::exit(1);
    }
}
