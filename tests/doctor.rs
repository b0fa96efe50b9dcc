//! `entra-enrich doctor`, run as an engineer runs it, against a sandbox tenant: each way a day-one
//! reset by email fails is reported with its fix, what Graph cannot tell is `?` with where to look,
//! and no address is ever printed.

mod support;

use entra_sandbox::policy::AuthenticationMethodsPolicy;
use entra_sandbox::{Sandbox, SandboxOptions};
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
    let run = |args: &[&str]| {
        support::cli_command(sandbox, state.path())
            .env(
                "ENRICH_USAGELOCATION_SOURCE",
                "onPremisesExtensionAttributes.extensionAttribute2",
            )
            .args(args)
            .output()
            .expect("run entra-enrich doctor")
    };
    let json = run(&["doctor", "--json"]);
    let stdout = String::from_utf8_lossy(&json.stdout).into_owned();
    let parsed: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "doctor --json printed no JSON ({e}): {stdout}\n{}",
            String::from_utf8_lossy(&json.stderr)
        )
    });
    let checks = parsed["checks"].as_array().cloned().unwrap_or_default();
    let text = run(&["doctor"]);
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
