//! The deployment tooling under `infra/`, checked without Azure:
//!
//! - every script parses (`bash -n`), and `history.py` compiles;
//! - `infra/package.sh --skip-build` makes a zip with exactly `host.json`, one `function.json` per function
//!   and the handler `entra-enrich` with its executable bit, deterministically;
//! - `main.bicep` sets every app setting `src/config.rs` reads, and the relay carries the LCW PoP policy;
//! - `infra/deploy.sh` and `infra/rollback.sh` against a fake `az` (and a fake `curl` for the health
//!   function) on `PATH`: the commands issued, the release history, the health gate, and `--dry-run`
//!   running nothing at all.
//!
//! Needs bash and python3 (as the scripts do); no network.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use entra_enrich::app::function_names;
use entra_enrich::config::SETTINGS;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn infra(name: &str) -> PathBuf {
    repo().join("infra").join(name)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn write_executable(path: &Path, body: &str, mode: u32) {
    fs::write(path, body).expect("write");
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod");
}

/// Runs `infra/package.sh --skip-build BINARY --out DIR` and returns the zip it printed.
fn package(binary: &Path, out: &Path) -> PathBuf {
    let o = Command::new("bash")
        .arg(infra("package.sh"))
        .arg("--skip-build")
        .arg(binary)
        .arg("--out")
        .arg(out)
        .output()
        .expect("run package.sh");
    assert!(
        o.status.success(),
        "package.sh failed: {}{}",
        text(&o.stdout),
        text(&o.stderr)
    );
    let stdout = text(&o.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "package.sh prints only the zip path: {stdout:?}"
    );
    PathBuf::from(lines[0])
}

/// `(name, unix mode)` of every entry, read with python3's zipfile.
fn zip_entries(zip: &Path) -> Vec<(String, u32)> {
    let o = Command::new("python3")
        .arg("-c")
        .arg(
            "import sys, zipfile\n\
             for i in zipfile.ZipFile(sys.argv[1]).infolist():\n    \
                 print(i.filename, oct((i.external_attr >> 16) & 0o7777), i.create_system)",
        )
        .arg(zip)
        .output()
        .expect("python3");
    assert!(o.status.success(), "{}", text(&o.stderr));
    text(&o.stdout)
        .lines()
        .map(|l| {
            let parts: Vec<&str> = l.split(' ').collect();
            assert_eq!(
                parts[2], "3",
                "{l}: entries must be marked Unix so modes apply"
            );
            (
                parts[0].to_string(),
                u32::from_str_radix(parts[1].trim_start_matches("0o"), 8).expect("mode"),
            )
        })
        .collect()
}

#[test]
fn every_infra_script_parses() {
    let mut scripts = 0;
    for entry in fs::read_dir(repo().join("infra")).expect("infra/") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "sh") {
            let o = Command::new("bash").arg("-n").arg(&path).output().unwrap();
            assert!(
                o.status.success(),
                "bash -n {}: {}",
                path.display(),
                text(&o.stderr)
            );
            scripts += 1;
        }
    }
    assert!(scripts >= 4, "package.sh, deploy.sh, rollback.sh, lib.sh");
    let o = Command::new("python3")
        .args(["-c", "import ast, sys; ast.parse(open(sys.argv[1]).read())"])
        .arg(infra("history.py"))
        .output()
        .unwrap();
    assert!(o.status.success(), "history.py: {}", text(&o.stderr));
}

#[test]
fn package_holds_exactly_the_app_with_an_executable_handler() {
    let tmp = tempfile::tempdir().unwrap();
    // Deliberately not executable on disk: the zip must still carry 0755.
    let binary = tmp.path().join("fake-entra-enrich");
    write_executable(&binary, "#!/bin/sh\necho fake\n", 0o644);
    let out = tmp.path().join("dist");

    let zip = package(&binary, &out);
    let name = zip.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        name.starts_with(&format!("entra-enrich-{}-", env!("CARGO_PKG_VERSION")))
            && name.ends_with(".zip"),
        "{name}"
    );
    assert!(zip.starts_with(&out), "{} is under --out", zip.display());

    let entries = zip_entries(&zip);
    let mut names: Vec<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
    names.sort();
    let mut expected: Vec<String> = function_names()
        .iter()
        .map(|f| format!("functions/{f}/function.json"))
        .collect();
    expected.push("host.json".into());
    expected.push("entra-enrich".into());
    expected.sort();
    assert_eq!(names, expected);
    for (n, mode) in &entries {
        if n == "entra-enrich" {
            assert_eq!(*mode, 0o755, "the handler must be executable on Linux");
        } else {
            assert_eq!(*mode, 0o644, "{n}");
        }
    }

    // The handler inside is the binary given, byte for byte.
    let o = Command::new("python3")
        .args([
            "-c",
            "import sys, zipfile; sys.stdout.buffer.write(zipfile.ZipFile(sys.argv[1]).read('entra-enrich'))",
        ])
        .arg(&zip)
        .output()
        .unwrap();
    assert_eq!(o.stdout, fs::read(&binary).unwrap());

    // Idempotent and deterministic: same inputs, same path, same bytes.
    let first = fs::read(&zip).unwrap();
    let again = package(&binary, &out);
    assert_eq!(again, zip);
    assert_eq!(fs::read(&again).unwrap(), first);

    // Clear errors.
    let o = Command::new("bash")
        .arg(infra("package.sh"))
        .args(["--skip-build", "/nonexistent/binary", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(
        text(&o.stderr).contains("binary not found"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn main_bicep_sets_every_app_setting_and_the_relay_has_the_lcw_policy() {
    let main = fs::read_to_string(infra("main.bicep")).unwrap();
    for s in SETTINGS.iter().map(|s| s.name) {
        assert!(
            main.contains(&format!("name: '{s}'")),
            "main.bicep does not set {s}"
        );
    }
    for must in [
        "kind: 'functionapp,linux'",
        "name: 'custom'",
        "version: '1.0'",
        "name: 'FC1'",
        "allowSharedKeyAccess: false",
        "AzureWebJobsStorage__accountName",
        "type: 'UserAssignedIdentity'",
        "'entra-enrich-state'",
    ] {
        assert!(main.contains(must), "main.bicep lacks {must}");
    }
    // Flex Consumption refuses these settings.
    for banned in [
        "name: 'FUNCTIONS_WORKER_RUNTIME'",
        "name: 'FUNCTIONS_EXTENSION_VERSION'",
        "name: 'WEBSITE_RUN_FROM_PACKAGE'",
        "name: 'AzureWebJobsStorage'",
    ] {
        assert!(!main.contains(banned), "main.bicep must not set {banned}");
    }

    let relay = fs::read_to_string(infra("relay-logicapp.bicep")).unwrap();
    for must in [
        "AzureADLifecycleWorkflowsAuthPOPAuthPolicy",
        "type: 'AADPOP'",
        "'https://sts.windows.net/${tenantId}/'",
        "ce79fdc4-cd1d-4ea5-8139-e74d7dbe0bb7",
        "value: 'management.azure.com'",
        "/providers/Microsoft.Logic/workflows/${workflowName}",
        "sasAuthenticationPolicy",
        "@startsWith(triggerOutputs()?[\\'headers\\']?[\\'Authorization\\'], \\'PoP\\')",
        "IncludeAuthorizationHeadersInOutputs",
        "type: 'ManagedServiceIdentity'",
        "body: '@triggerBody()'",
        "statusCode: 202",
        "type: 'exponential'",
        "/host/default",
        "/api/lcw-joiner",
    ] {
        assert!(relay.contains(must), "relay-logicapp.bicep lacks {must}");
    }
}

// ---------------------------------------------------------------------------------------------------
// deploy.sh / rollback.sh against a fake Azure.

const FAKE_AZ: &str = r#"#!/usr/bin/env bash
# Fake az: records its argv, answers canned JSON.
printf '%s\n' "$*" >> "$FAKE_AZ_LOG"
args="$*"
app_outputs='{"functionAppName":{"type":"String","value":"ee-test-func-abc123"},"functionAppHostName":{"type":"String","value":"ee-test-func-abc123.azurewebsites.net"},"audience":{"type":"String","value":"uami-client-id"},"identityClientId":{"type":"String","value":"uami-client-id"}}'
case "$args" in
  "account show"*) echo '{"id":"sub-1","name":"Contoso","user":{"name":"oncall@contoso.com"}}' ;;
  "group show"*) echo '{"location":"westeurope"}' ;;
  "deployment group show"*"-relay "*)
    if [[ -n "${FAKE_FRESH:-}" ]]; then echo "ERROR: (DeploymentNotFound)" >&2; exit 3; fi
    echo '{"principalId":{"type":"String","value":"relay-principal"}}' ;;
  "deployment group show"*)
    if [[ -n "${FAKE_FRESH:-}" ]]; then echo "ERROR: (DeploymentNotFound)" >&2; exit 3; fi
    echo "$app_outputs" ;;
  "ad sp show --id relay-principal "*) echo 'relay-app-id' ;;
  "functionapp config appsettings list"*) echo "${FAKE_DEPLOYED_DRY_RUN:-true}" ;;
  "deployment group create"*"relay-logicapp.bicep"*)
    echo '{"principalId":{"type":"String","value":"relay-principal"},"customTaskExtensionEndpoint":{"type":"Object","value":{"logicAppWorkflowName":"ee-test-lcw-relay"}}}' ;;
  "deployment group create"*"main.bicep"*) echo "$app_outputs" ;;
  "functionapp deployment source config-zip"*)
    if [[ -n "${FAKE_ZIP_FAIL:-}" ]]; then echo "ERROR: (AuthorizationFailure) 403" >&2; exit 1; fi
    echo '{}' ;;
  "functionapp function list"*)
    printf 'ee-test-func-abc123/%s\n' backfill health lcw-joiner new-hire-watch ;;
  "functionapp function keys list"*"--function-name health"*) echo 'health-key-123' ;;
  *) echo "fake az: unexpected: $args" >&2; exit 2 ;;
esac
"#;

const FAKE_CURL: &str = r#"#!/usr/bin/env bash
# Fake curl: answers the health function with $FAKE_HEALTH_BODY (HTTP 200), records URL and key header.
out=""; header=""; url=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --output) out="$2"; shift 2 ;;
    --header) header="$2"; shift 2 ;;
    --max-time|--write-out) shift 2 ;;
    -*) shift ;;
    *) url="$1"; shift ;;
  esac
done
hdr="$header"; [[ "$header" == @* ]] && hdr="$(cat "${header#@}")"
printf 'curl %s %s\n' "$url" "$hdr" >> "$FAKE_AZ_LOG"
healthy='{"name":"entra-enrich","version":"0.1.0","functions":["lcw-joiner","new-hire-watch","backfill","health"],"config":{"valid":true,"problems":[]},"initialized":false,"initError":null}'
printf '%s' "${FAKE_HEALTH_BODY:-$healthy}" > "$out"
printf '200'
"#;

struct FakeAzure {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    bin: PathBuf,
    log: PathBuf,
    releases: PathBuf,
}

impl FakeAzure {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        let bin = root.join("bin");
        fs::create_dir(&bin).unwrap();
        write_executable(&bin.join("az"), FAKE_AZ, 0o755);
        write_executable(&bin.join("curl"), FAKE_CURL, 0o755);
        Self {
            log: root.join("az.log"),
            releases: root.join("releases"),
            bin,
            root,
            _tmp: tmp,
        }
    }

    /// A package whose handler prints `tag` (so two packages differ).
    fn package(&self, tag: &str) -> PathBuf {
        let binary = self.root.join(format!("bin-{tag}"));
        write_executable(&binary, &format!("#!/bin/sh\necho {tag}\n"), 0o755);
        package(&binary, &self.root.join(format!("dist-{tag}")))
    }

    fn run(&self, script: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
        let path = format!(
            "{}:{}",
            self.bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut cmd = Command::new("bash");
        cmd.arg(infra(script))
            .args(args)
            .arg("--releases-dir")
            .arg(&self.releases)
            .env("PATH", path)
            .env("FAKE_AZ_LOG", &self.log)
            .env("ENRICH_HEALTH_ATTEMPTS", "2")
            .env("ENRICH_HEALTH_DELAY_SECONDS", "0")
            .env_remove("ENRICH_RELEASES_DIR");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().expect("run script")
    }

    /// The az/curl calls since the last call of this function.
    fn take_calls(&self) -> Vec<String> {
        let calls = fs::read_to_string(&self.log).unwrap_or_default();
        let _ = fs::remove_file(&self.log);
        calls.lines().map(str::to_string).collect()
    }

    fn history(&self) -> serde_json::Value {
        serde_json::from_str(&fs::read_to_string(self.releases.join("history.json")).unwrap())
            .unwrap()
    }
}

fn ok(o: &Output, what: &str) {
    assert!(
        o.status.success(),
        "{what} failed:\n--- stdout\n{}\n--- stderr\n{}",
        text(&o.stdout),
        text(&o.stderr)
    );
}

fn position(calls: &[String], needle: &str) -> usize {
    calls
        .iter()
        .position(|c| c.contains(needle))
        .unwrap_or_else(|| panic!("no call containing {needle:?} in {calls:#?}"))
}

#[test]
fn deploy_dry_run_prints_every_az_command_and_runs_none() {
    let az = FakeAzure::new();
    let zip = az.package("v1");
    let o = az.run(
        "deploy.sh",
        &[
            "--resource-group",
            "rg-ee",
            "--name",
            "ee-test",
            "--package",
            zip.to_str().unwrap(),
            "--dry-run",
        ],
        &[],
    );
    ok(&o, "deploy.sh --dry-run");
    let out = text(&o.stdout);
    let main_bicep = infra("main.bicep");
    for expected in [
        "DRY-RUN: az account show".to_string(),
        "DRY-RUN: az group show --name rg-ee".to_string(),
        format!(
            "DRY-RUN: az deployment group create --resource-group rg-ee --name entra-enrich-ee-test --template-file {} --parameters namePrefix=ee-test enrichDryRun=true",
            main_bicep.display()
        ),
        format!(
            "DRY-RUN: az functionapp deployment source config-zip --resource-group rg-ee --name '<functionAppName>' --src {}",
            zip.display()
        ),
        format!("--template-file {}", infra("relay-logicapp.bicep").display()),
        "'allowedCallers=<relay appId>'".to_string(),
        "DRY-RUN: az functionapp function keys list --resource-group rg-ee --name '<functionAppName>' --function-name health".to_string(),
        "/api/health".to_string(),
    ] {
        assert!(out.contains(&expected), "missing {expected:?} in:\n{out}");
    }
    assert!(
        az.take_calls().is_empty(),
        "--dry-run must not run az or curl"
    );
    assert!(
        !az.releases.exists(),
        "--dry-run must not write the history"
    );

    // rollback --dry-run with no history: a clear error, still nothing run.
    let o = az.run(
        "rollback.sh",
        &[
            "--resource-group",
            "rg-ee",
            "--name",
            "ee-test",
            "--dry-run",
        ],
        &[],
    );
    assert!(!o.status.success());
    assert!(
        text(&o.stderr).contains("no release history"),
        "{}",
        text(&o.stderr)
    );
    assert!(az.take_calls().is_empty());
}

#[test]
fn deploy_twice_then_rollback_redeploys_the_previous_package() {
    let az = FakeAzure::new();
    let v1 = az.package("v1");
    let v2 = az.package("v2");
    let v1_bytes = fs::read(&v1).unwrap();
    assert_ne!(v1_bytes, fs::read(&v2).unwrap());
    let target = ["--resource-group", "rg-ee", "--name", "ee-test"];
    let with = |extra: &[&'static str]| -> Vec<String> {
        target
            .iter()
            .chain(extra.iter())
            .map(|s| s.to_string())
            .collect()
    };

    // 1. First deployment (nothing exists yet): main, code, relay, main again with the relay's app id, health.
    let args = [with(&["--package"]), vec![v1.display().to_string()]].concat();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = az.run("deploy.sh", &args, &[("FAKE_FRESH", "1")]);
    ok(&o, "first deploy");
    let calls = az.take_calls();
    let main1 = position(&calls, "deployment group create --resource-group rg-ee --name entra-enrich-ee-test --template-file");
    assert!(calls[main1].contains("main.bicep"));
    assert!(
        calls[main1].contains("enrichDryRun=true"),
        "first deploy is a dry run: {}",
        calls[main1]
    );
    assert!(
        !calls[main1].contains("allowedCallers="),
        "{}",
        calls[main1]
    );
    let zip1 = position(&calls, "functionapp deployment source config-zip");
    assert!(calls[zip1].contains("--name ee-test-func-abc123"));
    assert!(
        calls[zip1].ends_with(&format!("--src {}", v1.display())),
        "{}",
        calls[zip1]
    );
    let relay = position(&calls, "relay-logicapp.bicep");
    assert!(
        calls[relay].contains("functionAppName=ee-test-func-abc123 audience=uami-client-id"),
        "{}",
        calls[relay]
    );
    let sp = position(&calls, "ad sp show --id relay-principal");
    let main2 = calls
        .iter()
        .rposition(|c| c.contains("main.bicep"))
        .unwrap();
    assert!(
        calls[main2].contains("allowedCallers=relay-app-id"),
        "{}",
        calls[main2]
    );
    let health = position(
        &calls,
        "curl https://ee-test-func-abc123.azurewebsites.net/api/health",
    );
    assert!(calls[health].contains("x-functions-key: health-key-123"));
    assert!(
        main1 < zip1 && zip1 < relay && relay < sp && sp < main2 && main2 < health,
        "{calls:#?}"
    );

    // 2. Second deployment: the relay exists, so one main deployment, with its app id; ENRICH_DRY_RUN
    //    keeps the deployed value (false here) instead of falling back to true.
    let args = [with(&["--package"]), vec![v2.display().to_string()]].concat();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = az.run("deploy.sh", &args, &[("FAKE_DEPLOYED_DRY_RUN", "false")]);
    ok(&o, "second deploy");
    let calls = az.take_calls();
    let mains: Vec<&String> = calls.iter().filter(|c| c.contains("main.bicep")).collect();
    assert_eq!(mains.len(), 1, "{calls:#?}");
    assert!(
        mains[0].contains("enrichDryRun=false allowedCallers=relay-app-id"),
        "{}",
        mains[0]
    );
    assert!(calls
        .iter()
        .any(|c| c.contains(&format!("--src {}", v2.display()))));
    assert!(
        text(&o.stderr).contains("deployed now (per"),
        "deploy names the package it replaces: {}",
        text(&o.stderr)
    );

    let h = az.history();
    let releases = h["releases"].as_array().unwrap();
    assert_eq!(releases.len(), 2);
    assert_eq!(releases[0]["health"], "ok");
    assert_eq!(releases[1]["functionApp"], "ee-test-func-abc123");

    // 3. rollback --dry-run: names the v1 package, runs nothing.
    let o = az.run(
        "rollback.sh",
        &[target[0], target[1], target[2], target[3], "--dry-run"],
        &[],
    );
    ok(&o, "rollback --dry-run");
    let stored_v1 = az.releases.join(releases[0]["package"].as_str().unwrap());
    assert_eq!(
        fs::read(&stored_v1).unwrap(),
        v1_bytes,
        "the history keeps v1's bytes"
    );
    assert!(
        text(&o.stdout).contains(&format!(
            "DRY-RUN: az functionapp deployment source config-zip --resource-group rg-ee --name ee-test-func-abc123 --src {}",
            stored_v1.display()
        )),
        "{}",
        text(&o.stdout)
    );
    assert!(az.take_calls().is_empty());

    // 4. rollback: redeploys v1 from the history and health-checks.
    let o = az.run("rollback.sh", &target, &[]);
    ok(&o, "rollback");
    let calls = az.take_calls();
    let z = position(&calls, "functionapp deployment source config-zip");
    assert!(
        calls[z].ends_with(&format!("--src {}", stored_v1.display())),
        "{}",
        calls[z]
    );
    assert!(position(&calls, "/api/health") > z);
    assert!(
        !calls.iter().any(|c| c.contains("deployment group create")),
        "code only: {calls:#?}"
    );
    let h = az.history();
    let last = h["releases"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["action"], "rollback");
    assert_eq!(last["sha256"], releases[0]["sha256"]);

    // 5. --to an unknown version fails clearly.
    let o = az.run(
        "rollback.sh",
        &[target[0], target[1], target[2], target[3], "--to", "9.9.9"],
        &[],
    );
    assert!(!o.status.success());
    assert!(
        text(&o.stderr).contains("no release matches '9.9.9'"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn deploy_fails_when_the_health_function_reports_invalid_settings() {
    let az = FakeAzure::new();
    let zip = az.package("bad");
    let body = r#"{"name":"entra-enrich","version":"0.1.0","functions":[],"config":{"valid":false,"problems":[{"setting":"ENRICH_AUDIENCE","problem":"is required when the caller check is on.","fix":"set it."}]},"initialized":false,"initError":null}"#;
    let o = az.run(
        "deploy.sh",
        &[
            "--resource-group",
            "rg-ee",
            "--name",
            "ee-test",
            "--package",
            zip.to_str().unwrap(),
        ],
        &[("FAKE_HEALTH_BODY", body)],
    );
    assert!(
        !o.status.success(),
        "an invalid config must fail the deployment"
    );
    let err = text(&o.stderr);
    assert!(err.contains("ENRICH_AUDIENCE"), "{err}");
    assert!(
        err.contains("infra/rollback.sh"),
        "points at the rollback: {err}"
    );
    let h = az.history();
    assert_eq!(h["releases"][0]["health"], "failed");
}

#[test]
fn deploy_explains_a_missing_az_login() {
    let az = FakeAzure::new();
    // An az that is installed but not logged in.
    write_executable(
        &az.bin.join("az"),
        "#!/usr/bin/env bash\necho \"ERROR: Please run 'az login' to setup account.\" >&2\nexit 1\n",
        0o755,
    );
    let zip = az.package("v1");
    let o = az.run(
        "deploy.sh",
        &[
            "--resource-group",
            "rg-ee",
            "--name",
            "ee-test",
            "--package",
            zip.to_str().unwrap(),
        ],
        &[],
    );
    assert!(!o.status.success());
    assert!(
        text(&o.stderr).contains("az is not logged in: run 'az login'"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn grant_graph_permissions_dry_run_lists_the_grants() {
    let az = FakeAzure::new();
    let path = format!(
        "{}:{}",
        az.bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let o = Command::new("bash")
        .arg(infra("grant-graph-permissions.sh"))
        .args([
            "--principal-id",
            "mi-object-id",
            "--usage-location",
            "--privileged-admins",
            "--dry-run",
        ])
        .env("PATH", path)
        .env("FAKE_AZ_LOG", &az.log)
        .output()
        .unwrap();
    ok(&o, "grant-graph-permissions.sh --dry-run");
    let out = text(&o.stdout);
    for perm in [
        "User.Read.All",
        "User-Mail.ReadWrite.All",
        "User.ReadWrite.All",
    ] {
        assert!(
            out.contains(&format!("appRoles[?value=='\\''{perm}'\\''")),
            "{perm} in:\n{out}"
        );
    }
    assert!(
        !out.contains("LifecycleWorkflows.ReadWrite.All"),
        "only with --lcw-resume"
    );
    assert!(!out.contains("Policy.Read.All"), "only with --doctor");
    assert!(
        !out.contains("UserAuthenticationMethod"),
        "only with --email-method"
    );
    assert!(out.contains("servicePrincipals/mi-object-id/appRoleAssignments"));
    assert!(out.contains("\"roleDefinitionId\":\"7be44c8a-adaf-4e2a-84d6-ab2649e08a13\""));
    assert!(az.take_calls().is_empty(), "--dry-run runs nothing");
}

#[test]
fn the_example_parameters_name_only_declared_parameters() {
    let main = fs::read_to_string(infra("main.bicep")).unwrap();
    let example: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(infra("env/example.parameters.json")).unwrap())
            .unwrap();
    for name in example["parameters"].as_object().unwrap().keys() {
        assert!(
            main.contains(&format!("\nparam {name} ")),
            "main.bicep declares no parameter {name}"
        );
    }
    // deploy.sh passes these itself.
    for name in ["namePrefix", "enrichDryRun", "allowedCallers", "location"] {
        assert!(main.contains(&format!("\nparam {name} ")), "{name}");
    }
}

#[test]
fn a_failing_upload_is_retried_then_reported() {
    let az = FakeAzure::new();
    let zip = az.package("v1");
    let o = az.run(
        "deploy.sh",
        &[
            "--resource-group",
            "rg-ee",
            "--name",
            "ee-test",
            "--package",
            zip.to_str().unwrap(),
            "--location",
            "westeurope",
        ],
        &[("FAKE_ZIP_FAIL", "1"), ("ENRICH_UPLOAD_ATTEMPTS", "3")],
    );
    assert!(!o.status.success());
    let err = text(&o.stderr);
    assert!(
        err.contains("uploading the package failed 3 times"),
        "{err}"
    );
    let calls = az.take_calls();
    let uploads = calls.iter().filter(|c| c.contains("config-zip")).count();
    assert_eq!(uploads, 3, "{calls:#?}");
    assert!(calls
        .iter()
        .any(|c| c.contains("main.bicep") && c.contains("location=westeurope")));
    assert!(
        !calls.iter().any(|c| c.contains("relay-logicapp.bicep")),
        "no relay without code"
    );
    assert!(
        !az.releases.join("history.json").exists(),
        "nothing deployed, nothing recorded"
    );
}
