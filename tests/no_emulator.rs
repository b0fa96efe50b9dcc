//! The package deployed to Azure Functions and AWS Lambda carries no emulator: `entra-sandbox` (a
//! Graph and Entra emulator with a token minter and its keys) is linked only with the `demo` feature,
//! which `scripts/demo.sh` turns on and `infra/package.sh` does not.

use std::process::Command;

/// The normal (linked) dependency tree of the binary, one crate a line.
fn linked(features: &[&str]) -> String {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "tree",
            "-e",
            "normal",
            "-p",
            "entra-enrich",
            "--prefix",
            "none",
            "--locked",
            "--offline",
        ])
        .args(features)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo tree runs");
    assert!(
        out.status.success(),
        "cargo tree: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_default_build_links_no_emulator_and_the_demo_build_does() {
    let default = linked(&[]);
    assert!(
        default.lines().any(|l| l.starts_with("entra-core ")),
        "{default}"
    );
    assert!(
        !default.lines().any(|l| l.starts_with("entra-sandbox ")),
        "a default build links the emulator:\n{default}"
    );
    let demo = linked(&["--features", "demo"]);
    assert!(
        demo.lines().any(|l| l.starts_with("entra-sandbox ")),
        "{demo}"
    );
    // The shared test support (fake credential, fake vault, loopback server) is never linked, not
    // even by the demo.
    for tree in [&default, &demo] {
        assert!(
            !tree.lines().any(|l| l.starts_with("entra-test-support ")),
            "a build links the test support:\n{tree}"
        );
    }
}
