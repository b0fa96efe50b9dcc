//! Lists 100,000 seeded users with `$top=999` through the HTTP server; sandbox and client share
//! one single-threaded tokio runtime (one core). Prints a report; exits non-zero above 2 s.
//!
//! `cargo bench -p entra-sandbox --bench list_users` (env `BENCH_USERS` to change the size).

use std::time::Instant;

use std::collections::HashMap;

use entra_sandbox::{Sandbox, SandboxOptions, TenantSource};
use serde::Deserialize;

/// What a typed client (like entra-graph) deserializes from each page.
#[derive(Deserialize)]
struct Page {
    value: Vec<BenchUser>,
    #[serde(rename = "@odata.nextLink")]
    next_link: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct BenchUser {
    id: String,
    employee_id: Option<String>,
    other_mails: Vec<String>,
    usage_location: Option<String>,
    on_premises_sync_enabled: Option<bool>,
    on_premises_extension_attributes: Option<HashMap<String, Option<String>>>,
}

fn main() {
    let users: usize = std::env::var("BENCH_USERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("runtime: {e}");
            std::process::exit(2);
        }
    };
    let code = rt.block_on(async move {
        let t0 = Instant::now();
        let sb = match Sandbox::start(SandboxOptions { tenant: TenantSource::Generated { users, seed: 1 }, ..Default::default() }).await {
            Ok(sb) => sb,
            Err(e) => {
                eprintln!("start: {e}");
                return 2;
            }
        };
        let setup = t0.elapsed();
        let token = sb.mint_graph_token(&sb.managed_identity_app_id());
        let http = match reqwest::Client::builder().no_proxy().build() {
            Ok(c) => c,
            Err(e) => {
                eprintln!("client: {e}");
                return 2;
            }
        };
        let mut best = f64::MAX;
        for run in 0..3 {
            let t = Instant::now();
            let mut url = format!(
                "{}/v1.0/users?$top=999&$select=id,employeeId,otherMails,usageLocation,onPremisesSyncEnabled,onPremisesExtensionAttributes",
                sb.graph_base_url()
            );
            let (mut n, mut pages, mut bytes, mut checksum) = (0usize, 0usize, 0usize, 0usize);
            loop {
                let resp = match http.get(&url).bearer_auth(&token).send().await {
                    Ok(r) => r,
                    Err(e) => {
                        eprintln!("request: {e}");
                        return 1;
                    }
                };
                let body = match resp.bytes().await {
                    Ok(b) => b,
                    Err(e) => {
                        eprintln!("body: {e}");
                        return 1;
                    }
                };
                bytes += body.len();
                let v: Page = match serde_json::from_slice(&body) {
                    Ok(v) => v,
                    Err(e) => {
                        eprintln!("json: {e}");
                        return 1;
                    }
                };
                pages += 1;
                n += v.value.len();
                checksum += v.value.iter().filter(|u| u.on_premises_sync_enabled == Some(true) && u.employee_id.is_some()).count();
                match v.next_link {
                    Some(next) => url = next,
                    None => break,
                }
            }
            let secs = t.elapsed().as_secs_f64();
            best = best.min(secs);
            println!(
                "run {run}: listed {n} users ({checksum} hybrid with employeeId) in {pages} pages ({:.1} MB) in {secs:.3} s = {:.0} users/s",
                bytes as f64 / 1e6,
                n as f64 / secs
            );
            if n != users {
                eprintln!("expected {users} users, got {n}");
                return 1;
            }
        }
        println!("setup (generate + index {users} users): {:.3} s", setup.as_secs_f64());
        println!("best: {best:.3} s (target < 2 s on one core, single-threaded runtime for server and client)");
        if best < 2.0 { 0 } else { 1 }
    });
    std::process::exit(code);
}
