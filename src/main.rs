//! The `entra-enrich` binary: the command line, and the Azure Functions custom handler (`serve`).

use clap::Parser;

use entra_enrich::adapters::cli::{run, Cli};

fn main() -> std::process::ExitCode {
    // AWS Lambda starts a custom runtime as `bootstrap` with no arguments: that name means `lambda`.
    let started_as_bootstrap = std::env::args_os()
        .next()
        .and_then(|a| {
            std::path::Path::new(&a)
                .file_name()
                .map(|n| n == "bootstrap")
        })
        .unwrap_or(false);
    let cli = if started_as_bootstrap && std::env::args_os().len() == 1 {
        Cli::parse_from(["entra-enrich", "lambda"])
    } else {
        Cli::parse()
    };
    let serve = matches!(cli.command, entra_enrich::adapters::cli::Command::Serve);
    if !serve {
        // The custom handler installs its own JSON subscriber (stdout JSON lines + per-invocation Logs).
        entra_enrich::adapters::logging::init_cli();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::from(e.exit_code())
        }
    }
}
