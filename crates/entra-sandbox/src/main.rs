//! `entra-sandbox --users N --seed S --port P [--tenant FILE] [--time-scale K] [--fault RULE]...`
//! Starts the sandbox on 127.0.0.1 and prints its endpoints as JSON on stdout.

use clap::Parser;
use entra_sandbox::{FaultRule, Sandbox, SandboxOptions, TenantSource, WorkdayOptions};

#[derive(Parser, Debug)]
#[command(
    name = "entra-sandbox",
    about = "Local emulator of the Microsoft Graph / Entra ID endpoints entra-enrich uses"
)]
struct Args {
    /// Number of generated users (ignored with --tenant).
    #[arg(long, default_value_t = 100)]
    users: usize,
    /// Seed for the generated tenant and probabilistic faults.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Port on 127.0.0.1 (0 = any free port).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Tenant JSON file (array of users or {"users": [...], "privilegedUserIds": [...]}).
    #[arg(long)]
    tenant: Option<std::path::PathBuf>,
    /// Divide every throttling window by K.
    #[arg(long = "time-scale", default_value_t = 1.0)]
    time_scale: f64,
    /// Fault rule "PATTERN;TRIGGER;ACTION", e.g. "PATCH /v1.0/users/*;every=3;status=429,retry=1.5".
    #[arg(long = "fault")]
    faults: Vec<String>,
    /// The calling app holds a privileged directory role (may update sensitive props of admins).
    #[arg(long)]
    privileged_role: bool,
    /// Extra app ids allowed to call resume without permissions (the managed identity is always allowed).
    #[arg(long = "lcw-authorized-app")]
    lcw_authorized_apps: Vec<String>,
    /// Disable throttling.
    #[arg(long)]
    no_throttling: bool,
    /// Do not record request bodies.
    #[arg(long)]
    no_record_bodies: bool,
    /// Clear extensionAttribute1 of every user: the personal email is then only in Workday.
    #[arg(long)]
    personal_email_only_in_workday: bool,
    /// Number of Workday workers without an Entra account (default: about 5 %).
    #[arg(long = "workday-extra-workers")]
    workday_extra_workers: Option<usize>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut opts = SandboxOptions {
        tenant: match &args.tenant {
            Some(p) => TenantSource::File(p.clone()),
            None => TenantSource::Generated {
                users: args.users,
                seed: args.seed,
            },
        },
        seed: args.seed,
        time_scale: args.time_scale,
        port: args.port,
        app_has_privileged_role: args.privileged_role,
        throttling: !args.no_throttling,
        record_bodies: !args.no_record_bodies,
        workday: WorkdayOptions {
            personal_email_only_in_workday: args.personal_email_only_in_workday,
            extra_workers: args.workday_extra_workers,
        },
        ..SandboxOptions::default()
    };
    for f in &args.faults {
        opts.faults.push(FaultRule::parse(f)?);
    }
    opts.lcw_authorized_apps
        .extend(args.lcw_authorized_apps.iter().cloned());
    let sb = Sandbox::start(opts).await?;
    let info = serde_json::json!({
        "graphBaseUrl": sb.graph_base_url(),
        "authorityUrl": sb.authority_url(),
        "identityEndpoint": sb.identity_endpoint(),
        "identityHeader": sb.identity_header(),
        "tenantId": sb.tenant_id(),
        "managedIdentityAppId": sb.managed_identity_app_id(),
        "users": sb.user_count(),
        "workdayReportUrl": sb.workday_report_url(),
        "workdayTokenUrl": sb.workday_token_url(),
        "workdayWwsUrl": sb.wws_url(),
    });
    println!("{info}");
    tokio::signal::ctrl_c().await?;
    Ok(())
}
