//! `entra-enrich doctor`, run as an engineer runs it, against a sandbox tenant: each way a day-one
//! reset by email fails is reported with its fix, what Graph cannot tell is `?` with where to look,
//! and no address is ever printed.

mod support;

use entra_enrich::app::{App, Platform, Shell, READINESS_WAIT};
use entra_enrich::config::Config;
use entra_sandbox::policy::AuthenticationMethodsPolicy;
use entra_sandbox::{FaultAction, FaultRule, FaultTrigger, Sandbox, SandboxOptions};
use serde_json::Value;

/// The managed identity's roles in a tenant whose admin also granted doctor's `Policy.Read.All`.
fn roles(extra: &[&str]) -> Vec<String> {
    [
        "User.Read.All",
        "User-Mail.ReadWrite.All",
        "User.ReadWrite.All",
    ]
    .iter()
    .chain(extra)
    .map(|r| r.to_string())
    .collect()
}

async fn tenant(roles: Vec<String>) -> Sandbox {
    let mut options = SandboxOptions {
        users: 40,
        seed: 11,
        ..SandboxOptions::default()
    };
    options.identity.managed_identity_roles = roles;
    Sandbox::start(options).await.expect("sandbox")
}

struct Doctor {
    code: Option<i32>,
    stdout: String,
    checks: Vec<Value>,
}

impl Doctor {
    fn check(&self, id: &str) -> &Value {
        self.checks
            .iter()
            .find(|c| c["id"] == id)
            .unwrap_or_else(|| panic!("no check {id}: {}", self.stdout))
    }
}

/// Runs `doctor --json` and `doctor` (text) on `sandbox`.
fn doctor(sandbox: &Sandbox) -> (Doctor, String) {
    let state = tempfile::tempdir().expect("tempdir");
    doctor_with(sandbox, state.path(), &[])
}

/// Runs `doctor --json ARGS` and `doctor ARGS` with the state in `state`.
fn doctor_with(sandbox: &Sandbox, state: &std::path::Path, args: &[&str]) -> (Doctor, String) {
    let run = |extra: &[&str]| {
        support::cli_command(sandbox, state)
            .env(
                "ENRICH_USAGELOCATION_SOURCE",
                "onPremisesExtensionAttributes.extensionAttribute2",
            )
            .arg("doctor")
            .args(extra)
            .args(args)
            .output()
            .expect("run entra-enrich doctor")
    };
    let json = run(&["--json"]);
    let stdout = String::from_utf8_lossy(&json.stdout).into_owned();
    let parsed: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "doctor --json printed no JSON ({e}): {stdout}\n{}",
            String::from_utf8_lossy(&json.stderr)
        )
    });
    let checks = parsed["checks"].as_array().cloned().unwrap_or_default();
    let text = run(&[]);
    let text = String::from_utf8_lossy(&text.stdout).into_owned();
    (
        Doctor {
            code: json.status.code(),
            stdout,
            checks,
        },
        text,
    )
}

/// Every address the tenant holds: personal emails in the extension attributes, otherMails, mail.
fn addresses(sandbox: &Sandbox) -> Vec<String> {
    let mut out = Vec::new();
    for user in support::snapshot(sandbox).values() {
        let mut collect = |v: &Value| {
            if let Some(s) = v.as_str().filter(|s| s.contains('@')) {
                out.push(s.to_string());
            }
        };
        collect(&user["onPremisesExtensionAttributes"]["extensionAttribute1"]);
        collect(&user["mail"]);
        user["otherMails"]
            .as_array()
            .into_iter()
            .flatten()
            .for_each(&mut collect);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ready_tenant_passes_email_otp_and_says_what_graph_cannot_tell() {
    let sandbox = tenant(roles(&["Policy.Read.All"])).await;
    let (d, text) = doctor(&sandbox);
    assert_eq!(
        d.check("graph-permissions")["verdict"],
        "pass",
        "{}",
        d.stdout
    );
    assert_eq!(d.check("email-otp")["verdict"], "pass", "{}", d.stdout);
    assert!(d.check("email-otp")["detail"]
        .as_str()
        .is_some_and(|s| s.contains("all users")));
    assert_eq!(d.check("methods-policy-migration")["verdict"], "pass");
    // Graph cannot tell an app these: unknown, each with where to look.
    for id in ["methods-required", "password-writeback", "lcw-resume"] {
        let c = d.check(id);
        assert_eq!(c["verdict"], "unknown", "{id}: {c}");
        assert!(
            c["fix"]
                .as_str()
                .is_some_and(|f| f.contains("Entra admin center")),
            "{c}"
        );
    }
    // The generated tenant has in-scope users without employeeId: a failure, so the exit code is 1.
    let scope = d.check("scope");
    assert_eq!(scope["verdict"], "fail", "{scope}");
    assert!(scope["detail"]
        .as_str()
        .is_some_and(|s| s.contains("no employeeId")));
    assert_eq!(d.code, Some(1));
    assert!(
        text.contains("✔ email-otp: Email OTP is enabled for all users"),
        "{text}"
    );
    assert!(text.contains("? password-writeback:"), "{text}");
    assert!(text.contains("✘ scope:"), "{text}");
    // No address of the tenant appears in either output.
    let all = addresses(&sandbox);
    assert!(all.len() > 10, "the tenant holds addresses to leak");
    for a in &all {
        assert!(
            !d.stdout.contains(a.as_str()) && !text.contains(a.as_str()),
            "doctor printed {a}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_otp_off_or_aimed_at_nobody_fails_with_the_fix() {
    let sandbox = tenant(roles(&["Policy.Read.All"])).await;
    sandbox.set_authentication_methods_policy(AuthenticationMethodsPolicy {
        email_enabled: false,
        ..Default::default()
    });
    let (d, _) = doctor(&sandbox);
    let otp = d.check("email-otp");
    assert_eq!(otp["verdict"], "fail", "{otp}");
    assert!(otp["detail"]
        .as_str()
        .is_some_and(|s| s.contains("disabled")));
    assert!(otp["fix"]
        .as_str()
        .is_some_and(|s| s.contains("Authentication methods > Policies > Email OTP")));

    sandbox.set_authentication_methods_policy(AuthenticationMethodsPolicy {
        email_include_groups: Vec::new(),
        migration_state: "migrationInProgress".into(),
        ..Default::default()
    });
    let (d, _) = doctor(&sandbox);
    assert_eq!(d.check("email-otp")["verdict"], "fail");
    assert!(d.check("email-otp")["detail"]
        .as_str()
        .is_some_and(|s| s.contains("targets nobody")));
    let migration = d.check("methods-policy-migration");
    assert_eq!(migration["verdict"], "unknown");
    assert!(migration["detail"]
        .as_str()
        .is_some_and(|s| s.contains("migrationInProgress")));

    sandbox.set_authentication_methods_policy(AuthenticationMethodsPolicy {
        email_include_groups: vec!["5e1f7a1e-0000-4000-8000-00000000a11e".into()],
        email_exclude_groups: vec!["5e1f7a1e-0000-4000-8000-0000000000ex".into()],
        ..Default::default()
    });
    let (d, _) = doctor(&sandbox);
    let otp = d.check("email-otp");
    assert_eq!(otp["verdict"], "pass");
    assert!(
        otp["detail"]
            .as_str()
            .is_some_and(|s| s
                .contains("the groups 5e1f7a1e-0000-4000-8000-00000000a11e, except the groups")),
        "{otp}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_permission_fails_with_the_grant_command_and_an_unreadable_policy_is_unknown() {
    // Only User.Read.All: the app can read, but not write otherMails or usageLocation, nor read the policy.
    let sandbox = tenant(vec!["User.Read.All".into()]).await;
    let (d, _) = doctor(&sandbox);
    let perms = d.check("graph-permissions");
    assert_eq!(perms["verdict"], "fail", "{perms}");
    let detail = perms["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("write otherMails needs User-Mail.ReadWrite.All"),
        "{detail}"
    );
    assert!(
        detail.contains("write usageLocation needs User.ReadWrite.All"),
        "{detail}"
    );
    let fix = perms["fix"].as_str().unwrap_or_default();
    assert!(
        fix.starts_with("infra/grant-graph-permissions.sh --principal-id ")
            && fix.ends_with(" --usage-location"),
        "{fix}"
    );
    assert!(
        !fix.contains('<'),
        "the fix names the real principal: {fix}"
    );
    let otp = d.check("email-otp");
    assert_eq!(otp["verdict"], "unknown", "{otp}");
    assert!(otp["fix"]
        .as_str()
        .is_some_and(|s| s.contains("Policy.Read.All") && s.contains("--doctor")));
    assert_eq!(d.code, Some(1));
}

/// Backfills `sandbox` with the CLI, state in `state`.
fn backfill(sandbox: &Sandbox, state: &std::path::Path) {
    let out = support::cli_command(sandbox, state)
        .env(
            "ENRICH_USAGELOCATION_SOURCE",
            "onPremisesExtensionAttributes.extensionAttribute2",
        )
        .args(["backfill"])
        .output()
        .expect("backfill");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_user_explains_a_user_we_wrote_and_masks_their_addresses_unless_asked() {
    let sandbox = tenant(roles(&["Policy.Read.All"])).await;
    let state = tempfile::tempdir().expect("tempdir");
    let hire = sandbox.upsert_user(support::new_hire(1)).expect("new hire");
    backfill(&sandbox, state.path());

    let (d, text) = doctor_with(&sandbox, state.path(), &["--user", &hire]);
    assert_eq!(
        d.check("scope-and-match")["verdict"],
        "pass",
        "{}",
        d.stdout
    );
    let written = d.check("written");
    assert_eq!(written["verdict"], "pass", "{written}");
    assert!(written["detail"]
        .as_str()
        .is_some_and(|s| s.contains("by backfill") && s.contains("otherMails")));
    let values = d.check("current-values")["detail"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(values.contains("otherMails: p***@m***.example"), "{values}");
    assert!(
        !d.stdout.contains("private.hire1@mail.example")
            && !text.contains("private.hire1@mail.example")
    );
    assert_eq!(d.check("email-otp-for-user")["verdict"], "pass");
    assert_eq!(d.check("password-writeback")["verdict"], "unknown");
    assert_eq!(d.code, Some(0), "{}", d.stdout);

    let (shown, _) = doctor_with(&sandbox, state.path(), &["--user", &hire, "--show-pii"]);
    assert!(
        shown.stdout.contains("private.hire1@mail.example"),
        "{}",
        shown.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_user_explains_a_skipped_user_and_an_email_otp_group_that_excludes_them() {
    let sandbox = tenant(roles(&[
        "Policy.Read.All",
        "GroupMember.Read.All",
        "UserAuthenticationMethod.Read.All",
    ]))
    .await;
    let state = tempfile::tempdir().expect("tempdir");
    let mut skipped = support::new_hire(2);
    skipped["employeeId"] = serde_json::Value::Null;
    let skipped = sandbox.upsert_user(skipped).expect("user");
    backfill(&sandbox, state.path());

    let (d, _) = doctor_with(&sandbox, state.path(), &["--user", &skipped]);
    let m = d.check("scope-and-match");
    assert_eq!(m["verdict"], "fail", "{m}");
    assert!(
        m["detail"]
            .as_str()
            .is_some_and(|s| s.starts_with("ImportSkipped")),
        "{m}"
    );
    assert_eq!(d.check("written")["verdict"], "unknown");
    assert!(d.check("written")["detail"]
        .as_str()
        .is_some_and(|s| s.contains("never written")));
    // No otherMails and no authentication email: nothing a reset could use.
    let values = d.check("current-values");
    assert_eq!(values["verdict"], "fail", "{values}");
    assert!(values["detail"]
        .as_str()
        .is_some_and(|s| s.contains("authentication email: none")));
    assert_eq!(d.code, Some(1));

    // Email OTP for a group the user is in, but the user is also in an excluded group.
    let hire = sandbox.upsert_user(support::new_hire(3)).expect("user");
    let (new_hires, contractors) = (
        "0a0a0a0a-0000-4000-8000-00000000a11e",
        "0b0b0b0b-0000-4000-8000-0000000000ec",
    );
    sandbox.add_group_member(new_hires, &hire);
    sandbox.set_authentication_methods_policy(AuthenticationMethodsPolicy {
        email_include_groups: vec![new_hires.into()],
        ..Default::default()
    });
    let (d, _) = doctor_with(&sandbox, state.path(), &["--user", &hire]);
    assert_eq!(
        d.check("email-otp-for-user")["verdict"],
        "pass",
        "{}",
        d.stdout
    );
    sandbox.add_group_member(contractors, &hire);
    sandbox.set_authentication_methods_policy(AuthenticationMethodsPolicy {
        email_include_groups: vec![new_hires.into()],
        email_exclude_groups: vec![contractors.into()],
        ..Default::default()
    });
    let (d, _) = doctor_with(&sandbox, state.path(), &["--user", &hire]);
    let otp = d.check("email-otp-for-user");
    assert_eq!(otp["verdict"], "fail", "{otp}");
    assert!(otp["detail"]
        .as_str()
        .is_some_and(|s| s.contains(contractors) && s.contains("excludes")));
    assert!(otp["fix"].as_str().is_some_and(|s| s.contains("Exclude")));
    // Not a member of any targeted group.
    let outsider = sandbox.upsert_user(support::new_hire(4)).expect("user");
    let (d, _) = doctor_with(&sandbox, state.path(), &["--user", &outsider]);
    assert!(d.check("email-otp-for-user")["detail"]
        .as_str()
        .is_some_and(|s| s.contains("in none")));
}

/// Policy reads the sandbox received.
fn policy_reads(sandbox: &Sandbox) -> usize {
    sandbox
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/policies/authenticationMethodsPolicy"))
        .count()
}

/// Health as the adapters serve it, for a started app on `h`'s tenant.
async fn health_of(shell: &Shell) -> Value {
    let health = shell.health(Platform::AzureFunctions).await;
    serde_json::to_value(&health).expect("health serializes")
}

fn started_shell(h: &support::Harness, ttl: &str) -> Shell {
    let env = support::env_for(
        &h.sandbox,
        h.state_dir.path(),
        &[("ENRICH_HEALTH_CHECKS_SECONDS", ttl)],
    );
    let config = Config::from_env(&env).expect("settings");
    Shell::started(App::from_parts(config, h.context(), None))
}

fn health_check<'a>(health: &'a Value, id: &str) -> &'a Value {
    health["tenantChecks"]["checks"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["id"] == id))
        .unwrap_or_else(|| panic!("no {id} in {health}"))
}

/// Health carries doctor's cheap checks (permissions, Email OTP, migration): one policy read per
/// TTL however often it is probed, a fix with every failure, and a refresh once the TTL passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_shows_the_cheap_tenant_checks_read_once_per_ttl() {
    let mut options = SandboxOptions {
        users: 10,
        ..SandboxOptions::default()
    };
    // No otherMails write permission, and Email OTP off.
    options.identity.managed_identity_roles =
        vec!["User.Read.All".into(), "Policy.Read.All".into()];
    let h = support::Harness::start(options, &[]).await;
    h.sandbox
        .set_authentication_methods_policy(AuthenticationMethodsPolicy {
            email_enabled: false,
            ..Default::default()
        });
    // Before the app starts, health reads nothing.
    let cold = Shell::new(
        support::env_for(&h.sandbox, h.state_dir.path(), &[]),
        support::app_options(&h.sandbox),
    );
    h.sandbox.reset_requests();
    let health = health_of(&cold).await;
    assert!(health["tenantChecks"].is_null(), "{health}");
    assert_eq!(h.sandbox.requests().len(), 0);

    let shell = started_shell(&h, "600");
    let health = health_of(&shell).await;
    assert_eq!(health["tenantChecks"]["state"], "fresh", "{health}");
    assert_eq!(health["tenantChecks"]["failures"], 2, "{health}");
    let otp = health_check(&health, "email-otp");
    assert_eq!(otp["verdict"], "fail", "{otp}");
    assert!(otp["fix"].as_str().is_some_and(|f| f.contains("Email OTP")));
    let perms = health_check(&health, "graph-permissions");
    assert_eq!(perms["verdict"], "fail", "{perms}");
    assert!(perms["detail"]
        .as_str()
        .is_some_and(|d| d.contains("otherMails")));
    assert_eq!(
        health_check(&health, "methods-policy-migration")["verdict"],
        "pass"
    );
    // The expensive checks stay in doctor.
    assert_eq!(
        health["tenantChecks"]["checks"].as_array().map(Vec::len),
        Some(3)
    );
    for _ in 0..5 {
        let again = health_of(&shell).await;
        assert_eq!(
            again["tenantChecks"]["checks"],
            health["tenantChecks"]["checks"]
        );
    }
    assert_eq!(policy_reads(&h.sandbox), 1, "cached for the TTL");

    // A one-second TTL: once it passes, the next probe reads the (now fixed) policy again.
    let quick = started_shell(&h, "1");
    h.sandbox.reset_requests();
    let first = health_of(&quick).await;
    assert_eq!(health_check(&first, "email-otp")["verdict"], "fail");
    h.sandbox
        .set_authentication_methods_policy(AuthenticationMethodsPolicy::default());
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    let later = health_of(&quick).await;
    assert_eq!(
        health_check(&later, "email-otp")["verdict"],
        "pass",
        "{later}"
    );
    assert_eq!(policy_reads(&h.sandbox), 2);

    // Off: no tenant checks, no reads.
    let off = started_shell(&h, "0");
    h.sandbox.reset_requests();
    assert!(health_of(&off).await["tenantChecks"].is_null());
    assert_eq!(policy_reads(&h.sandbox), 0);
}

/// A policy read that hangs does not hold health: the probe answers within the wait with `pending`,
/// concurrent probes start one read between them, and the answer shows once it arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_policy_read_never_holds_health() {
    let mut options = SandboxOptions {
        users: 5,
        ..SandboxOptions::default()
    };
    options.identity.managed_identity_roles = roles(&["Policy.Read.All"]);
    let h = support::Harness::start(options, &[]).await;
    let slow = READINESS_WAIT + std::time::Duration::from_secs(2);
    h.sandbox.set_faults(vec![FaultRule::new(
        "GET /v1.0/policies/authenticationMethodsPolicy",
        FaultTrigger::FirstN(1),
        FaultAction::Latency(slow),
    )]);
    let shell = std::sync::Arc::new(started_shell(&h, "600"));
    h.sandbox.reset_requests();
    let started = std::time::Instant::now();
    let probes: Vec<_> = (0..4)
        .map(|_| {
            let shell = shell.clone();
            tokio::spawn(async move { health_of(&shell).await })
        })
        .collect();
    for probe in probes {
        let health = probe.await.expect("probe");
        assert_eq!(health["tenantChecks"]["state"], "pending", "{health}");
        assert_eq!(health["initialized"], true);
    }
    assert!(
        started.elapsed() < slow,
        "health waited for the hanging read"
    );
    tokio::time::sleep(slow).await;
    let health = health_of(&shell).await;
    assert_eq!(health["tenantChecks"]["state"], "fresh", "{health}");
    assert_eq!(health_check(&health, "email-otp")["verdict"], "pass");
    assert_eq!(policy_reads(&h.sandbox), 1, "one read for all the probes");
}
