#!/usr/bin/env bash
# Runs every test of the workspace. Installs what the tests need that cargo does not (Azurite, from npm,
# into .tools/) first. Loopback only: no test reaches the internet.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/bootstrap.sh
export AZURITE_BIN="${AZURITE_BIN:-$PWD/.tools/node_modules/.bin/azurite-blob}"
cargo test --workspace --locked "$@"
