#!/usr/bin/env bash
# Runs every test of the workspace. Installs what the tests need that cargo does not (Azurite, from npm,
# into .tools/) first. Loopback only: no test reaches the internet.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/bootstrap.sh
export AZURITE_BIN="${AZURITE_BIN:-$PWD/.tools/node_modules/.bin/azurite-blob}"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
status=0
cargo test --workspace --locked --features entra-enrich/demo "$@" 2>&1 | tee "$log" || status=$?
# One closing line for the whole workspace (cargo prints one per test binary, the last often a
# doc-test run with nothing in it).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i) ~ /^passed;?$/) p += $(i-1); if ($(i) ~ /^failed;?$/) f += $(i-1) } }
     END { printf "workspace: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
