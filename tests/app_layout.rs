//! The Functions app layout the host reads: `host.json` and one `functions/<name>/function.json` per
//! function (<https://learn.microsoft.com/azure/azure-functions/functions-custom-handlers>), kept in
//! step with the functions the binary serves.

use std::collections::BTreeSet;

use entra_enrich::app::function_names;
use serde_json::Value;

fn read(path: &str) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn host_json_runs_our_binary_as_a_custom_handler() {
    let host = read("host.json");
    assert_eq!(host["version"], "2.0");
    let ch = &host["customHandler"];
    assert_eq!(ch["description"]["defaultExecutablePath"], "entra-enrich");
    assert_eq!(ch["description"]["arguments"], serde_json::json!(["serve"]));
    // Default (non-forwarding) mode: the host sends {Data, Metadata} and reads {Outputs, Logs}.
    assert_eq!(ch["enableForwardingHttpRequest"], false);
    assert_eq!(ch["enableProxyingHttpRequest"], false);
    assert_eq!(
        host["extensionBundle"]["id"],
        "Microsoft.Azure.Functions.ExtensionBundle"
    );
    assert_eq!(host["extensionBundle"]["version"], "[4.*, 5.0.0)");
    let timeout = host["functionTimeout"].as_str().expect("functionTimeout");
    let parts: Vec<u64> = timeout
        .split(':')
        .map(|p| p.parse().expect("hh:mm:ss"))
        .collect();
    let seconds = parts[0] * 3600 + parts[1] * 60 + parts[2];
    // The timers' default time budget (240 s) must end well before the host gives up.
    assert!(
        seconds >= 300,
        "functionTimeout {timeout} is shorter than the time budget allows"
    );
}

#[test]
fn every_function_folder_is_served_and_every_served_function_has_a_folder() {
    let folders: BTreeSet<String> = std::fs::read_dir("functions")
        .expect("functions/")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("function.json").is_file())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect();
    let served: BTreeSet<String> = function_names().iter().map(|s| s.to_string()).collect();
    assert_eq!(folders, served);
}

#[test]
fn http_functions_use_the_default_protocol_and_a_function_key() {
    for (name, method) in [("lcw-joiner", "post"), ("health", "get")] {
        let f = read(&format!("functions/{name}/function.json"));
        let bindings = f["bindings"].as_array().expect("bindings");
        assert_eq!(
            bindings.len(),
            2,
            "{name}: exactly one trigger and one output"
        );
        let trigger = &bindings[0];
        assert_eq!(trigger["type"], "httpTrigger");
        assert_eq!(trigger["name"], "req", "{name}: the handler reads Data.req");
        assert_eq!(
            trigger["authLevel"], "function",
            "{name} must not be anonymous"
        );
        assert_eq!(trigger["methods"], serde_json::json!([method]));
        assert_eq!(bindings[1]["type"], "http");
        assert_eq!(
            bindings[1]["name"], "res",
            "{name}: the handler answers Outputs.res"
        );
    }
}

#[test]
fn timers_read_their_schedule_from_app_settings_and_never_run_on_startup() {
    for (name, setting) in [
        ("new-hire-watch", "%NEW_HIRE_WATCH_SCHEDULE%"),
        ("backfill", "%BACKFILL_SCHEDULE%"),
    ] {
        let f = read(&format!("functions/{name}/function.json"));
        let t = &f["bindings"][0];
        assert_eq!(t["type"], "timerTrigger");
        assert_eq!(t["name"], "timer");
        assert_eq!(t["schedule"], setting);
        assert_eq!(t["runOnStartup"], false);
    }
}

#[test]
fn every_fixture_is_a_host_payload() {
    for entry in std::fs::read_dir("tests/fixtures/functions").expect("fixtures") {
        let path = entry.expect("entry").path();
        let v = read(path.to_str().expect("utf-8 path"));
        let req: functions_custom_handler::InvokeRequest =
            serde_json::from_value(v).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(!req.data.is_empty(), "{}", path.display());
    }
}

/// Rust sources below `dir`, recursively.
fn rust_sources(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() && !path.ends_with("target") {
            rust_sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Tests run in parallel threads of one process, and the Azure SDK reads the environment: no code
/// of ours, production or test, may change it. Tests hand the SDK a transport instead
/// (`Sandbox::sdk_transport`), and child processes get their variables through `Command::env`.
#[test]
fn no_source_changes_the_process_environment() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in ["src", "tests", "benches", "crates", "fuzz/fuzz_targets"] {
        rust_sources(&root.join(dir), &mut files);
    }
    assert!(files.len() > 50, "found only {} sources", files.len());
    // Spelled in two halves so that this file does not match itself.
    let calls = [
        concat!("env::set", "_var("),
        concat!("env::remove", "_var("),
    ];
    let offenders: Vec<String> = files
        .iter()
        .filter_map(|f| {
            let text = std::fs::read_to_string(f).ok()?;
            calls
                .iter()
                .any(|c| text.contains(c))
                .then(|| f.strip_prefix(root).unwrap_or(f).display().to_string())
        })
        .collect();
    assert!(
        offenders.is_empty(),
        "sources that change the process environment: {offenders:?}"
    );
}
