//! The command line for on-call engineers: `enrich`, `backfill`, `rollback`, `watch`, `runs`,
//! `config`, `serve` (the Azure Functions custom handler) and `demo` (the local sandbox tenant).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

use crate::app::{App, AppError, AppOptions, ErrorKind};
use crate::config::{process_env, Config, ConfigError};
use crate::handlers::apply::UPDATED_WITH_WARNINGS;
use crate::handlers::audit::AuditRecord;
use crate::handlers::backfill::{BackfillOptions, BackfillSummary, Progress};
use crate::handlers::context::HrSource;
use crate::handlers::enrich::{UserRef, WhenBusy};
use crate::handlers::report::{neutralise_formula, render_csv, render_json};
use crate::handlers::RunId;
use crate::sources::HrFile;

use super::lambda::LambdaError;

/// entra-enrich: fills otherMails (the SSPR alternate email) and usageLocation on hybrid Entra ID users.
#[derive(Debug, Parser)]
#[command(name = "entra-enrich", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a local sandbox tenant, backfill it twice (the second run writes nothing), print where the
    /// report and the audit log are. Needs no Azure account. Built only with the `demo` feature.
    #[cfg(feature = "demo")]
    Demo(DemoArgs),
    /// Enrich one user.
    Enrich(EnrichArgs),
    /// Reconcile every in-scope user against the HR source.
    Backfill(BackfillArgs),
    /// Restore the before-values written by one run.
    Rollback(RollbackArgs),
    /// Run one new-hire-watch round (Graph users/delta) from the terminal.
    Watch,
    /// List the runs in the audit log.
    Runs,
    /// Print one run's audit log (JSON lines). It holds personal emails unmasked, because rollback
    /// needs them; add --mask to share it in a ticket.
    Audit(AuditArgs),
    /// Validate the settings and print every problem.
    Config,
    /// Check whether a new hire's day-one password reset by email will work in this tenant: Email OTP,
    /// the methods policy, writeback, the app's permissions, the scope. Exits 1 when a check fails.
    Doctor(DoctorArgs),
    /// Serve the Azure Functions custom handler on 127.0.0.1:$FUNCTIONS_CUSTOMHANDLER_PORT.
    Serve,
    /// Run as an AWS Lambda function (custom runtime): serve invocations from $AWS_LAMBDA_RUNTIME_API.
    Lambda,
}

#[cfg(feature = "demo")]
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Users in the generated sandbox tenant.
    #[arg(long, default_value_t = 3000)]
    pub users: usize,
    /// Seed of the generated tenant (same seed, same tenant).
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Where HR values come from: `directory` (the users' synced attributes) or `workday` (the
    /// sandbox's RaaS report; the personal emails are then only in Workday).
    #[arg(long, default_value = "directory", value_parser = ["directory", "workday"])]
    pub source: String,
}

#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct Target {
    /// Entra object id (or userPrincipalName) of the user.
    #[arg(long)]
    pub user_id: Option<String>,
    /// HR employeeId of the user (must match exactly one in-scope user).
    #[arg(long)]
    pub employee_id: Option<String>,
}

#[derive(Debug, Args)]
pub struct EnrichArgs {
    #[command(flatten)]
    pub target: Target,
    /// Plan and print, write nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct BackfillArgs {
    /// Plan and report, write nothing (overrides ENRICH_DRY_RUN=false).
    #[arg(long)]
    pub dry_run: bool,
    /// Where HR values come from: `directory` (the users' own synced attributes), `workday` (the
    /// RaaS report of the ENRICH_WORKDAY_* settings) or `csv:PATH`. Default: ENRICH_SOURCE.
    #[arg(long)]
    pub source: Option<String>,
    /// Write at most N users (a canary); the listing stays complete so duplicates are always found.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Report path (JSON); a CSV is written beside it. Default: <state dir>/reports/<run id>.json
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Show personal emails in the report instead of masking them.
    #[arg(long)]
    pub show_pii: bool,
    /// Start a new run even if an unfinished one exists (default: resume it).
    #[arg(long)]
    pub fresh: bool,
    /// $batch requests in flight (each claims its 20 users first, so a few more than the write
    /// pace needs keep the limiter busy).
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// Print the summary as one JSON object on stdout instead of the table (for scripts).
    #[arg(long)]
    pub json: bool,
    /// Try again the users an earlier run was denied (privileged admins), e.g. after granting the
    /// app the Privileged Authentication Administrator role.
    #[arg(long)]
    pub retry_denied: bool,
    /// Also write every matched user's work email (and username) back to Workday, as
    /// ENRICH_WORKDAY_WRITEBACK says; with --dry-run, list what would be written back.
    #[arg(long)]
    pub writeback: bool,
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// The run (see `entra-enrich runs`).
    #[arg(long)]
    pub run: String,
    /// Mask every personal email (j***@e***.org), for sharing outside the operators.
    #[arg(long)]
    pub mask: bool,
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Print the checks as JSON (`{"checks": [{"id", "verdict", "detail", "fix"}]}`).
    #[arg(long)]
    pub json: bool,
    /// Check one user instead ("the reset email never came"): object id or userPrincipalName.
    #[arg(long, value_name = "ID|UPN")]
    pub user: Option<String>,
    /// With --user: print the user's addresses unmasked.
    #[arg(long, requires = "user")]
    pub show_pii: bool,
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// The run to roll back (see `entra-enrich runs`).
    #[arg(long)]
    pub run: String,
    /// Print what would be restored, write nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// Errors at the command-line edge.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    Config(#[from] ConfigError),
    #[error(transparent)]
    App(#[from] AppError),
    /// A bad argument: the message names the flag and what it accepts.
    #[error("{0}")]
    Usage(String),
    /// A report or listing could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Lambda(#[from] LambdaError),
}

impl CliError {
    /// The process exit code: 2 for a bad argument (as clap), 78 for a setting to fix (sysexits
    /// `EX_CONFIG`), 75 when trying again later may work (`EX_TEMPFAIL`), 74 for a file that could
    /// not be written (`EX_IOERR`), 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        let of_kind = |kind: ErrorKind| match kind {
            ErrorKind::Input => 2,
            ErrorKind::Settings => 78,
            ErrorKind::Transient => 75,
            ErrorKind::Permanent => 1,
        };
        match self {
            CliError::Usage(_) => 2,
            CliError::Config(_) => 78,
            CliError::App(e) => of_kind(e.kind()),
            CliError::Write { .. } => 74,
            CliError::Lambda(LambdaError::Start(e)) => of_kind(e.kind()),
            CliError::Lambda(LambdaError::NotOnLambda(_) | LambdaError::BadMemorySize) => 78,
            CliError::Lambda(_) => 1,
        }
    }

    fn write(path: &Path) -> impl FnOnce(std::io::Error) -> CliError + '_ {
        move |source| CliError::Write {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Loads and validates the configuration from the process environment.
pub fn load_config() -> Result<Config, ConfigError> {
    Config::from_env(&process_env())
}

/// The app, built once from the process environment, as every command uses it.
async fn start(dry_run: bool) -> Result<App, CliError> {
    let app = App::start(&process_env(), &AppOptions::default()).await?;
    Ok(app.dry_run(dry_run))
}

fn print_pretty<T: serde::Serialize>(value: &T) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_default()
    );
}

fn parse_run(raw: &str) -> Result<RunId, CliError> {
    RunId::parse(raw).map_err(|e| CliError::Usage(format!("--run: {e}")))
}

/// Runs one command: each translates its arguments to one [`App`] call and prints the answer.
pub async fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        #[cfg(feature = "demo")]
        Command::Demo(args) => {
            super::demo::run_demo(args.users, args.seed, args.source == "workday").await
        }
        Command::Enrich(args) => enrich(args).await,
        Command::Backfill(args) => backfill(args).await,
        Command::Rollback(args) => {
            let run_id = parse_run(&args.run)?;
            let app = start(args.dry_run).await?;
            print_pretty(&app.rollback(&run_id).await?);
            Ok(())
        }
        Command::Watch => {
            let app = start(false).await?;
            print_pretty(&app.watch(app.config().time_budget).await?);
            Ok(())
        }
        Command::Audit(args) => {
            let run_id = parse_run(&args.run)?;
            let records = start(false).await?.audit(&run_id).await?;
            print!("{}", render_audit(&records, args.mask));
            Ok(())
        }
        Command::Runs => {
            let runs = start(false).await?.runs().await?;
            if runs.is_empty() {
                println!("no runs have written anything yet");
            }
            runs.iter().for_each(|id| println!("{id}"));
            Ok(())
        }
        Command::Config => show_config(&load_config()?),
        Command::Doctor(args) => doctor(args).await,
        Command::Serve => Ok(super::azure_functions::serve_from_env().await?),
        Command::Lambda => Ok(super::lambda::run_from_env().await?),
    }
}

async fn doctor(args: DoctorArgs) -> Result<(), CliError> {
    let app = start(false).await?;
    let report = match &args.user {
        Some(user) => app.doctor_user(user, args.show_pii).await,
        None => app.doctor().await,
    };
    if args.json {
        print_pretty(&report);
    } else {
        print!("{}", report.render_text());
    }
    match report.failures() {
        0 => Ok(()),
        n => Err(AppError::new(ErrorKind::Permanent, format!("doctor: {n} checks failed")).into()),
    }
}

async fn enrich(args: EnrichArgs) -> Result<(), CliError> {
    let target = match (args.target.user_id, args.target.employee_id) {
        (Some(id), _) => UserRef::Id(id),
        (None, Some(eid)) => UserRef::EmployeeId(eid),
        (None, None) => return Err(CliError::Usage("give --user-id or --employee-id".into())),
    };
    let app = start(args.dry_run).await?;
    // An engineer at a terminal can wait a few seconds for a handler writing the same user.
    let wait = WhenBusy::Wait(Duration::from_secs(10));
    let (result, run_id) = app.enrich(&target, wait).await?;
    print_pretty(&result);
    if result.is_write() && !result.dry_run {
        println!("audit run id: {run_id}");
    }
    Ok(())
}

async fn backfill(args: BackfillArgs) -> Result<(), CliError> {
    let app = start(args.dry_run).await?;
    let app = match &args.source {
        Some(raw) => {
            let hr = parse_source(raw)?;
            app.with_hr(hr)
        }
        None => app,
    };
    let options = BackfillOptions {
        limit: args.limit,
        concurrency: args.concurrency,
        time_budget: None,
        fresh: args.fresh,
        retry_denied: args.retry_denied,
        writeback: args.writeback,
    };
    let summary = app.backfill(&options, &TerminalProgress::new()).await?;
    let config = app.config();
    let report = report_path(config, &summary, args.report.as_deref());
    write_report(&summary, &report, args.show_pii)?;
    if let HrSource::File(file) = &app.context().hr {
        write_unmatched(file, &summary, &unmatched_path(&report), args.show_pii)?;
    }
    if args.json {
        println!("{}", serde_json::to_string(&summary).unwrap_or_default());
    } else {
        print_backfill_summary(&summary, &report, config);
    }
    Ok(())
}

/// `config`: the settings as the app reads them, and every warning.
fn show_config(config: &Config) -> Result<(), CliError> {
    let usage_location = config
        .usage_location_source
        .as_ref()
        .map(|p| p.to_string())
        .unwrap_or_else(|| "(unset: usageLocation is never written)".into());
    let graph = config.graph_base_url.origin().ascii_serialization();
    println!("settings are valid");
    println!("  GRAPH_BASE_URL              {graph}");
    println!("  credential                  {}", credential_name(config));
    println!("  ENRICH_SCOPE                {}", config.scope);
    println!(
        "  ENRICH_OTHERMAILS_SOURCE    {}",
        config.other_mails_source
    );
    println!("  ENRICH_USAGELOCATION_SOURCE {usage_location}");
    println!(
        "  ENRICH_OTHERMAILS_MODE      {:?}",
        config.other_mails_mode
    );
    println!("  ENRICH_SSPR_EMAIL_TARGET    {:?}", config.sspr_target);
    if config.sspr_target.writes_method() {
        println!(
            "  ENRICH_SSPR_OVERWRITE_REGISTERED {}",
            config.sspr_overwrite_registered
        );
    }
    match &config.writeback {
        Some(w) => println!(
            "  ENRICH_WORKDAY_WRITEBACK    {}{} (from {:?}, email {:?}, username {:?})",
            if w.email { "email" } else { "" },
            if w.user_name { ",username" } else { "" },
            w.from,
            w.email_from,
            w.user_name_form
        ),
        None => println!("  ENRICH_WORKDAY_WRITEBACK    off"),
    }
    println!("  ENRICH_DRY_RUN              {}", config.dry_run);
    println!(
        "  ENRICH_MAX_WRITES_PER_MINUTE {}",
        config.max_writes_per_minute
    );
    for w in config.warnings() {
        println!("warning: {w}");
    }
    Ok(())
}

fn credential_name(config: &Config) -> &'static str {
    match config.credential {
        crate::config::CredentialSetting::ManagedIdentity { .. } => "managed identity",
        crate::config::CredentialSetting::WorkloadIdentity => "workload identity",
        crate::config::CredentialSetting::ClientSecret { .. } => "client secret",
        crate::config::CredentialSetting::DeveloperTools => "developer tools (Azure CLI, azd)",
    }
}

/// `directory`, `workday` (built from the ENRICH_WORKDAY_* settings) or `csv:PATH`.
pub fn parse_source(raw: &str) -> Result<HrSource, CliError> {
    if raw.eq_ignore_ascii_case("directory") {
        return Ok(HrSource::Directory);
    }
    if raw.eq_ignore_ascii_case("workday") {
        let mut env = process_env();
        env.insert("ENRICH_SOURCE".into(), "workday".into());
        let config = crate::config::Config::from_env(&env)
            .map_err(|e| CliError::Usage(format!("--source workday: {e}")))?;
        return crate::app::build_hr_source(&config, &env, &AppOptions::default())
            .map_err(|e| CliError::Usage(format!("--source workday: {e}")));
    }
    if let Some(path) = raw.strip_prefix("csv:") {
        let file =
            HrFile::open(Path::new(path)).map_err(|e| CliError::Usage(format!("--source: {e}")))?;
        return Ok(HrSource::File(Arc::new(file)));
    }
    Err(CliError::Usage(
        "--source must be `directory`, `workday` or `csv:PATH` (a CSV with employeeId, personalEmail and optionally country columns)".into(),
    ))
}

fn report_path(config: &Config, summary: &BackfillSummary, given: Option<&Path>) -> PathBuf {
    given.map(Path::to_path_buf).unwrap_or_else(|| {
        let dir = match &config.state {
            crate::config::StateSetting::Directory(d) => d.clone(),
            crate::config::StateSetting::Blob(_) => PathBuf::from("."),
        };
        dir.join("reports").join(format!("{}.json", summary.run_id))
    })
}

/// Writes the JSON report at `path` and the CSV beside it.
pub fn write_report(
    summary: &BackfillSummary,
    path: &Path,
    show_pii: bool,
) -> Result<(), CliError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(CliError::write(parent))?;
    }
    write_private(path, &render_json(&summary.report, show_pii)).map_err(CliError::write(path))?;
    let csv = path.with_extension("csv");
    write_private(&csv, &render_csv(&summary.report, show_pii)).map_err(CliError::write(&csv))?;
    if let Some(w) = &summary.writeback {
        let csv = writeback_path(path);
        write_private(&csv, &render_csv(&w.rows, show_pii)).map_err(CliError::write(&csv))?;
    }
    Ok(())
}

/// Where `--writeback` lists what it wrote (or would write) to Workday: beside the report.
pub fn writeback_path(report: &Path) -> PathBuf {
    beside(report, "workday-writeback.csv")
}

/// An audit log as JSON lines, masked on request.
pub fn render_audit(records: &[AuditRecord], mask: bool) -> String {
    let mut out = String::new();
    for r in records {
        let r = if mask { r.masked() } else { r.clone() };
        out.push_str(&serde_json::to_string(&r).unwrap_or_default());
        out.push('\n');
    }
    out
}

/// Creates (or truncates) a file readable by its owner only: reports name users, and with
/// `--show-pii` hold personal emails, like the state files (0600).
fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    create_private(path)?.write_all(bytes)
}

/// Where the HR records that matched no in-scope user are listed: beside the report.
pub fn unmatched_path(report: &Path) -> PathBuf {
    beside(report, "unmatched-hr.csv")
}

/// `<report stem>-<suffix>` in the report's directory.
fn beside(report: &Path, suffix: &str) -> PathBuf {
    let stem = report
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "report".into());
    report.with_file_name(format!("{stem}-{suffix}"))
}

/// Lists, as CSV, the HR records whose employeeId no in-scope user carries: a second streaming pass
/// over the file, so the listing costs no memory however many there are.
pub fn write_unmatched(
    file: &HrFile,
    summary: &BackfillSummary,
    path: &Path,
    show_pii: bool,
) -> Result<(), CliError> {
    let failed = |e: csv::Error| CliError::write(path)(e.into());
    let out = create_private(path).map_err(CliError::write(path))?;
    let mut w = csv::Writer::from_writer(std::io::BufWriter::new(out));
    w.write_record(["line", "employeeId", "personalEmail", "reason"])
        .map_err(failed)?;
    let ids = summary.in_scope_ids.clone();
    let mut error = None;
    let reason = "no in-scope Entra user has this employeeId: a new hire not synced yet, an employeeId typo, or a leaver";
    file.unmatched(&|key| ids.user_for_key(key).is_some(), &mut |row| {
        if error.is_some() {
            return;
        }
        let email = row.personal_email.as_deref().unwrap_or_default();
        let email = if show_pii {
            email.to_string()
        } else {
            entra_core::pii::mask_email(email)
        };
        let line = row.line.to_string();
        let cells = [
            line.as_str(),
            row.employee_id.as_str(),
            email.as_str(),
            reason,
        ];
        if let Err(e) = w.write_record(cells.map(|c| neutralise_formula(c).into_owned())) {
            error = Some(e);
        }
    })
    .map_err(|e| {
        let e = AppError::from(crate::handlers::backfill::BackfillError::Source(e));
        e.context("listing the unmatched HR records")
    })?;
    if let Some(e) = error {
        return Err(failed(e));
    }
    w.flush().map_err(CliError::write(path))
}

/// Prints the end-of-run summary table.
pub fn print_backfill_summary(summary: &BackfillSummary, report: &Path, config: &Config) {
    let mode = if summary.dry_run {
        " (dry run: nothing written)"
    } else {
        ""
    };
    println!();
    println!("backfill {}{mode}", summary.run_id);
    if summary.resumed {
        println!(
            "  resumed an interrupted run: {} user(s) it had already written were skipped",
            summary.already_written
        );
    }
    println!(
        "  listed {} users, {} in scope, {} written, in {:.1} s",
        summary.users_listed,
        summary.users_in_scope,
        summary.writes,
        summary.elapsed_ms as f64 / 1000.0
    );
    if summary.deferred > 0 {
        println!(
            "  {} planned write(s) deferred to the next run",
            summary.deferred
        );
    }
    println!();
    print!("{}", summary.outcomes.table());
    println!();
    let warned = summary.outcomes.get(UPDATED_WITH_WARNINGS);
    println!(
        "  report ({} users not fully updated: {} not updated, {} updated with warnings): {} and {}",
        summary.report.len(),
        summary.report.len() as u64 - warned.min(summary.report.len() as u64),
        warned,
        report.display(),
        report.with_extension("csv").display()
    );
    match &summary.hr_file {
        Some(hr) if hr.source == "workday" => println!(
            "  Workday report: {} workers, {} matched an in-scope user, {} matched none (no account yet, employeeId typos, leavers), read in {:.1} s",
            hr.records,
            hr.matched,
            hr.unmatched,
            hr.read_ms as f64 / 1000.0
        ),
        Some(hr) => println!(
            "  HR file: {} records, {} matched an in-scope user, {} matched none (not synced yet, employeeId typos, leavers): {}",
            hr.records,
            hr.matched,
            hr.unmatched,
            unmatched_path(report).display()
        ),
        None => {}
    }
    if let Some(w) = &summary.writeback {
        let verb = if summary.dry_run {
            "to write"
        } else {
            "written"
        };
        println!(
            "  Workday writeback: {} matched user(s) read, {} {verb}, {} already right, {} queued, {} refused, {} busy, {} deferred: {}",
            w.checked,
            w.written,
            w.unchanged,
            w.queued,
            w.refused,
            w.busy,
            w.deferred,
            writeback_path(report).display()
        );
    }
    if summary.claims.left_to_others > 0 {
        println!(
            "  {} user(s) left to another handler writing them at the same moment (ClaimedElsewhere)",
            summary.claims.left_to_others
        );
    }
    let workday_writes = summary.writeback.as_ref().map_or(0, |w| w.written);
    if !summary.dry_run && summary.writes + workday_writes > 0 {
        if let crate::config::StateSetting::Directory(d) = &config.state {
            println!(
                "  audit log: {}",
                d.join("audit")
                    .join(format!("{}.jsonl", summary.run_id))
                    .display()
            );
        }
        println!(
            "  undo with: entra-enrich rollback --run {}",
            summary.run_id
        );
    }
}

/// A progress bar on a terminal, silence elsewhere (CI, pipes, the Functions host).
pub struct TerminalProgress {
    bar: Option<ProgressBar>,
}

impl TerminalProgress {
    pub fn new() -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new_spinner();
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        Self { bar }
    }
}

impl Default for TerminalProgress {
    fn default() -> Self {
        Self::new()
    }
}

impl Progress for TerminalProgress {
    fn phase(&self, name: &'static str, total: Option<u64>) {
        let Some(bar) = &self.bar else { return };
        bar.reset();
        match total {
            Some(t) => {
                bar.set_length(t);
                bar.set_style(
                    ProgressStyle::with_template(
                        "{msg:>14} [{bar:40.cyan/blue}] {pos}/{len} ({per_sec}, eta {eta})",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
                );
            }
            None => {
                bar.set_style(
                    ProgressStyle::with_template("{spinner} {msg:>14} {pos} ({per_sec})")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
            }
        }
        bar.set_message(name);
    }

    fn advance(&self, n: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(n);
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
