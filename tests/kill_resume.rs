//! A backfill killed with SIGKILL mid-way resumes with the same run id and writes no user twice.
//! Runs the real binary against a sandbox tenant on loopback.

mod support;

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use entra_sandbox::{FaultAction, FaultRule, FaultTrigger, Sandbox, SandboxOptions};
use support::patches;

fn backfill_command(sandbox: &Sandbox, state_dir: &std::path::Path) -> Command {
    let mut cmd = support::cli_command(sandbox, state_dir);
    cmd.args(["backfill", "--concurrency", "1"])
        .env(
            "ENRICH_USAGELOCATION_SOURCE",
            "onPremisesExtensionAttributes.extensionAttribute2",
        )
        .env("ENRICH_MAX_WRITES_PER_MINUTE", "600000");
    cmd
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backfill_killed_mid_way_resumes_without_repeating_a_write() {
    // Each $batch takes 100 ms, so the run lasts seconds and the kill lands in the middle of it.
    let sandbox = Sandbox::start(SandboxOptions {
        users: 1500,
        seed: 77,
        faults: vec![FaultRule::new(
            "POST /v1.0/$batch",
            FaultTrigger::EveryNth(1),
            FaultAction::Latency(Duration::from_millis(100)),
        )],
        ..SandboxOptions::default()
    })
    .await
    .expect("sandbox");
    let state = tempfile::tempdir().expect("tempdir");

    let mut first = backfill_command(&sandbox, state.path())
        .spawn()
        .expect("spawn backfill");
    let started = Instant::now();
    loop {
        if sandbox.counters().effective_patches >= 200 {
            break;
        }
        if let Ok(Some(status)) = first.try_wait() {
            panic!("the first backfill ended before it could be killed: {status}");
        }
        assert!(started.elapsed() < Duration::from_secs(60), "no progress");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.kill().expect("SIGKILL");
    let _ = first.wait();
    let written_before_kill = sandbox.counters().effective_patches;

    let second = tokio::task::spawn_blocking({
        let mut cmd = backfill_command(&sandbox, state.path());
        move || cmd.output()
    })
    .await
    .expect("join")
    .expect("second backfill runs");
    let stdout = String::from_utf8_lossy(&second.stdout);
    assert!(
        second.status.success(),
        "second run failed: {stdout}\n{}",
        String::from_utf8_lossy(&second.stderr)
    );
    assert!(stdout.contains("resumed an interrupted run"), "{stdout}");

    let mut per_user: HashMap<String, usize> = HashMap::new();
    for (id, _, status) in patches(&sandbox) {
        if (200..300).contains(&status) {
            *per_user.entry(id).or_default() += 1;
        }
    }
    let repeated: Vec<_> = per_user.iter().filter(|(_, n)| **n > 1).collect();
    assert!(repeated.is_empty(), "users written twice: {repeated:?}");
    assert!(
        sandbox.counters().effective_patches > written_before_kill,
        "the resumed run wrote the rest"
    );

    // And the job is done: a third run has nothing to write.
    let third = backfill_command(&sandbox, state.path())
        .output()
        .expect("third run");
    let stdout = String::from_utf8_lossy(&third.stdout);
    assert!(stdout.contains(" 0 written"), "{stdout}");
}

fn watch_command(sandbox: &Sandbox, state_dir: &std::path::Path) -> Command {
    let mut cmd = backfill_command(sandbox, state_dir);
    let envs: Vec<(std::ffi::OsString, std::ffi::OsString)> = cmd
        .get_envs()
        .filter_map(|(k, v)| v.map(|v| (k.to_os_string(), v.to_os_string())))
        .collect();
    cmd = Command::new(env!("CARGO_BIN_EXE_entra-enrich"));
    cmd.arg("watch")
        .env_clear()
        .envs(envs)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_killed_mid_round_resumes_and_writes_each_new_hire_once() {
    let sandbox = Sandbox::start(SandboxOptions {
        users: 50,
        seed: 5,
        ..SandboxOptions::default()
    })
    .await
    .expect("sandbox");
    let state = tempfile::tempdir().expect("tempdir");
    // First tick: takes the cursor ("from now").
    let init = watch_command(&sandbox, state.path())
        .output()
        .expect("init");
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );

    // 600 new hires appear; each PATCH takes 10 ms, so the round lasts long enough to be killed.
    for n in 0..600 {
        sandbox
            .upsert_user(serde_json::json!({
                "id": format!("0f0f0f0f-0000-4000-8000-{n:012}"),
                "userPrincipalName": format!("hire{n}@contoso.example"),
                "employeeId": format!("K{n:05}"),
                "onPremisesSyncEnabled": true,
                "otherMails": [],
                "onPremisesExtensionAttributes": {"extensionAttribute1": format!("hire{n}@home.example")}
            }))
            .expect("new hire");
    }
    sandbox.set_fault(FaultRule::new(
        "PATCH /v1.0/users/*",
        FaultTrigger::EveryNth(1),
        FaultAction::Latency(Duration::from_millis(10)),
    ));
    let mut first = watch_command(&sandbox, state.path())
        .spawn()
        .expect("spawn watch");
    let started = Instant::now();
    while sandbox.counters().effective_patches < 100 {
        if let Ok(Some(status)) = first.try_wait() {
            panic!("the watch ended before it could be killed: {status}");
        }
        assert!(started.elapsed() < Duration::from_secs(60), "no progress");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    first.kill().expect("SIGKILL");
    let _ = first.wait();
    let killed_at = sandbox.counters().effective_patches;
    assert!(
        killed_at < 600,
        "killed too late to prove anything: {killed_at}"
    );

    let second = tokio::task::spawn_blocking({
        let mut cmd = watch_command(&sandbox, state.path());
        move || cmd.output()
    })
    .await
    .expect("join")
    .expect("second watch");
    assert!(
        second.status.success(),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
    for n in 0..600 {
        let u = sandbox
            .user(&format!("0f0f0f0f-0000-4000-8000-{n:012}"))
            .expect("user");
        assert_eq!(
            u["otherMails"],
            serde_json::json!([format!("hire{n}@home.example")]),
            "hire {n}"
        );
    }
    let mut per_user: HashMap<String, usize> = HashMap::new();
    for (id, _, status) in patches(&sandbox) {
        if (200..300).contains(&status) {
            *per_user.entry(id).or_default() += 1;
        }
    }
    assert!(
        per_user.values().all(|n| *n == 1),
        "a new hire was written twice"
    );
    assert_eq!(per_user.len(), 600);
}
