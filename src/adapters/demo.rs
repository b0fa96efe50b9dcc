//! `entra-enrich demo`: the README's first command. Starts a generated sandbox tenant on loopback,
//! backfills it with the progress bar, backfills again to show zero writes, and prints where the report
//! and the audit log are. No Azure account, no network.

use std::path::PathBuf;

use entra_sandbox::{Sandbox, SandboxOptions};

use crate::app::{build_credential, build_state, context_from_parts, AppError, ErrorKind};
use crate::config::{Config, Env};
use crate::handlers::backfill::{run_backfill, BackfillOptions};

use super::cli::{print_backfill_summary, write_report, CliError, TerminalProgress};

/// The sandbox shrinks Graph's quota windows this many times, so the demo takes seconds.
const DEMO_TIME_SCALE: f64 = 20.0;

/// Runs the demo; with `workday`, the personal emails are only in the sandbox's Workday report.
pub async fn run_demo(users: usize, seed: u64, workday: bool) -> Result<(), CliError> {
    println!("entra-enrich demo: a sandbox tenant of {users} users (seed {seed}) on 127.0.0.1, Graph quotas time-scaled {DEMO_TIME_SCALE}x");
    let mut sandbox_options = SandboxOptions {
        users,
        seed,
        time_scale: DEMO_TIME_SCALE,
        ..SandboxOptions::default()
    };
    sandbox_options.workday.personal_email_only_in_workday = workday;
    let sandbox = Sandbox::start(sandbox_options).await.map_err(|e| {
        AppError::new(
            ErrorKind::Permanent,
            format!("could not start the sandbox: {e}"),
        )
    })?;

    let state_dir = PathBuf::from(".entra-enrich")
        .join("demo")
        .join(format!("seed-{seed}-users-{users}"));
    // A fresh tenant each time: clear what an earlier demo left.
    let _ = std::fs::remove_dir_all(&state_dir);

    // The real managed-identity credential. With no platform variable set it calls IMDS, and the
    // sandbox's transport brings that call (and any Entra token call) to the sandbox.
    check_no_platform_identity()?;
    let app_options = crate::app::AppOptions {
        transport: Some(sandbox.sdk_transport()),
        ..Default::default()
    };

    // The identity variables tell the config that a managed identity is there, as a platform's do.
    let env: Env = [
        ("GRAPH_BASE_URL", sandbox.graph_base_url().to_string()),
        ("IDENTITY_ENDPOINT", sandbox.identity_endpoint().to_string()),
        ("IDENTITY_HEADER", sandbox.identity_header().to_string()),
        ("ENRICH_STATE_DIR", state_dir.display().to_string()),
        (
            "ENRICH_USAGELOCATION_SOURCE",
            "onPremisesExtensionAttributes.extensionAttribute2".to_string(),
        ),
    ]
    .into_iter()
    .chain(if workday {
        workday_settings(&sandbox)
    } else {
        Vec::new()
    })
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let config = Config::from_env(&env)?;
    let credential = build_credential(&config, &env, &app_options).await?;
    let mut options =
        entra_graph::GraphClientOptions::new(config.graph_base_url.clone(), credential.clone());
    // 1,000 writes a minute against a quota of 1,200 a minute, both time-scaled.
    options.max_writes_per_minute =
        (f64::from(config.max_writes_per_minute) * DEMO_TIME_SCALE) as u32;
    let graph = entra_graph::GraphClient::new(options).map_err(AppError::from)?;
    let state = build_state(&config, credential)?;
    let mut ctx = context_from_parts(&config, graph, state);
    ctx.hr = crate::app::build_hr_source(&config, &env, &app_options)?;
    if workday {
        println!("HR source: the sandbox's Workday RaaS report ({} workers, Basic auth; Entra holds no personal email)", sandbox.workday_rows().len());
    }

    for (round, title) in [
        (1, "first backfill"),
        (2, "second backfill: everything is already right"),
    ] {
        println!();
        println!("== {title} ==");
        let progress = TerminalProgress::new();
        let summary = run_backfill(&ctx, &BackfillOptions::default(), &progress)
            .await
            .map_err(AppError::from)?;
        let report = state_dir
            .join("reports")
            .join(format!("{}.json", summary.run_id));
        write_report(&summary, &report, false)?;
        print_backfill_summary(&summary, &report, &config);
        if round == 2 && summary.writes != 0 {
            let message = format!(
                "the second backfill wrote {} users; it must write none",
                summary.writes
            );
            return Err(AppError::new(ErrorKind::Permanent, message).into());
        }
    }

    let c = sandbox.counters();
    println!();
    println!("== what the sandbox tenant saw ==");
    println!("  PATCH /users received : {}", c.patches);
    println!("  PATCH /users applied  : {}", c.effective_patches);
    println!("  429 throttled answers : {}", c.throttled);
    println!("  POST /users (creates) : {}", c.creates);
    println!("  DELETE /users         : {}", c.deletes);
    println!();
    println!(
        "Try: ENRICH_STATE_DIR={} cargo run --release -q -- runs",
        state_dir.display()
    );
    Ok(())
}

/// The sandbox's Workday report and its integration user, as `ENRICH_SOURCE=workday` reads them.
fn workday_settings(sandbox: &Sandbox) -> Vec<(&'static str, String)> {
    use entra_sandbox::workday::{WORKDAY_PASSWORD, WORKDAY_USERNAME};
    vec![
        ("ENRICH_SOURCE", "workday".to_string()),
        ("ENRICH_WORKDAY_REPORT_URL", sandbox.workday_report_url()),
        ("ENRICH_WORKDAY_USERNAME", WORKDAY_USERNAME.to_string()),
        ("ENRICH_WORKDAY_PASSWORD", WORKDAY_PASSWORD.to_string()),
        ("ENRICH_WORKDAY_COUNTRY_FIELD", "Country".to_string()),
    ]
}

/// The variables by which a platform (App Service, Cloud Shell, Arc) aims the managed identity
/// credential at its own endpoint, away from the sandbox.
const PLATFORM_IDENTITY_VARIABLES: [&str; 3] =
    ["IDENTITY_ENDPOINT", "MSI_ENDPOINT", "IMDS_ENDPOINT"];

/// The demo's identity is the sandbox's, so a shell that sets a platform identity cannot run it.
fn check_no_platform_identity() -> Result<(), AppError> {
    match PLATFORM_IDENTITY_VARIABLES
        .into_iter()
        .find(|name| std::env::var_os(name).is_some())
    {
        Some(name) => Err(AppError::new(
            ErrorKind::Settings,
            format!(
                "{name} is set, so the managed identity would call this machine's endpoint, not the sandbox's; run the demo with it unset: env -u {name} scripts/demo.sh"
            ),
        )
        .with_setting(name)),
        None => Ok(()),
    }
}
