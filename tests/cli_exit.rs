//! The command line's errors, as an on-call engineer meets them: each names what to fix, and the exit
//! code tells a script whether to fix an argument (2), a setting (78), a file (74) or try again (75).

mod support;

use std::process::Output;

use entra_sandbox::{Sandbox, SandboxOptions};

fn entra_enrich(sandbox: &Sandbox, state_dir: &std::path::Path, args: &[&str]) -> Output {
    support::cli_command(sandbox, state_dir)
        .args(args)
        .output()
        .expect("run entra-enrich")
}

async fn small_tenant() -> Sandbox {
    Sandbox::start(SandboxOptions {
        users: 30,
        seed: 3,
        ..SandboxOptions::default()
    })
    .await
    .expect("sandbox")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_of_a_run_that_wrote_nothing_names_the_run_flag_and_exits_2() {
    let sandbox = small_tenant().await;
    let state = tempfile::tempdir().expect("tempdir");
    let out = entra_enrich(
        &sandbox,
        state.path(),
        &["audit", "--run", "20261203T101304Z-5b1b55"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("no audit records"), "{err}");
    assert!(err.contains("--run"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_that_cannot_be_written_names_the_path_and_exits_74() {
    let sandbox = small_tenant().await;
    let state = tempfile::tempdir().expect("tempdir");
    // The report's folder would have to be created inside a regular file.
    let blocker = state.path().join("a-file");
    std::fs::write(&blocker, b"not a folder").expect("write");
    let report = blocker.join("reports").join("r.json");
    let report = report.to_str().expect("utf-8 path");
    let out = entra_enrich(
        &sandbox,
        state.path(),
        &["backfill", "--dry-run", "--report", report],
    );
    assert_eq!(out.status.code(), Some(74), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("cannot write"), "{err}");
    assert!(err.contains("a-file"), "{err}");
    assert_eq!(sandbox.counters().patches, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lambda_outside_lambda_is_a_setting_to_fix_and_exits_78() {
    let sandbox = small_tenant().await;
    let state = tempfile::tempdir().expect("tempdir");
    let out = entra_enrich(&sandbox, state.path(), &["lambda"]);
    assert_eq!(out.status.code(), Some(78), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("AWS_LAMBDA_RUNTIME_API"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_run_id_names_the_flag_and_exits_2_before_reading_anything() {
    let sandbox = small_tenant().await;
    let state = tempfile::tempdir().expect("tempdir");
    let out = entra_enrich(&sandbox, state.path(), &["rollback", "--run", "../etc"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--run"), "{}", stderr(&out));
    assert_eq!(sandbox.counters().patches, 0);
}
