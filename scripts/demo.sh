#!/usr/bin/env bash
# Builds entra-enrich and runs the demo against a generated sandbox tenant on 127.0.0.1.
# Needs only a Rust toolchain (https://rustup.rs); no Azure account, no network beyond crates.io.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v cargo >/dev/null 2>&1; then
  echo "error: cargo not found. Install Rust with https://rustup.rs, then run this again." >&2
  exit 1
fi
cargo run --release --locked --quiet --features demo -- demo "$@"
