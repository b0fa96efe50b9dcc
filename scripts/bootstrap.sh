#!/usr/bin/env bash
# Installs the test tools that cargo does not: Azurite (npm) and cargo-lambda (PyPI),
# both into the git-ignored .tools/ directory at the repo root. Idempotent: a step whose
# tool is already present at the pinned version is skipped. Fails loudly, naming the step.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$ROOT/.tools"
AZURITE_VERSION="3.37.0"
CARGO_LAMBDA_VERSION="1.9.2"

step=""
trap 'rc=$?; if [ $rc -ne 0 ]; then echo "bootstrap.sh: FAILED at step: ${step} (exit $rc)" >&2; fi' EXIT

mkdir -p "$TOOLS"

step="check node/npm (needed for Azurite; Debian: apt-get install -y nodejs npm)"
command -v node >/dev/null
command -v npm >/dev/null

step="install azurite@${AZURITE_VERSION} into .tools (npm)"
have_azurite=""
if [ -x "$TOOLS/node_modules/.bin/azurite-blob" ] && [ -f "$TOOLS/node_modules/azurite/package.json" ]; then
  have_azurite="$(node -p "require('$TOOLS/node_modules/azurite/package.json').version" 2>/dev/null || true)"
fi
if [ "$have_azurite" = "$AZURITE_VERSION" ]; then
  echo "bootstrap: azurite $AZURITE_VERSION already in .tools (skip)"
else
  echo "bootstrap: installing azurite $AZURITE_VERSION into .tools"
  npm install --prefix "$TOOLS" "azurite@${AZURITE_VERSION}" --no-audit --no-fund --loglevel=error
  test -x "$TOOLS/node_modules/.bin/azurite-blob"
fi

step="check python3 (needed for cargo-lambda)"
command -v python3 >/dev/null

step="install cargo-lambda==${CARGO_LAMBDA_VERSION} into .tools/venv (pip)"
if [ -x "$TOOLS/venv/bin/cargo-lambda" ] && "$TOOLS/venv/bin/cargo-lambda" lambda --version 2>/dev/null | grep -q "$CARGO_LAMBDA_VERSION"; then
  echo "bootstrap: cargo-lambda $CARGO_LAMBDA_VERSION already in .tools/venv (skip)"
else
  echo "bootstrap: installing cargo-lambda $CARGO_LAMBDA_VERSION into .tools/venv"
  if [ ! -x "$TOOLS/venv/bin/python" ]; then
    python3 -m venv "$TOOLS/venv"
  fi
  "$TOOLS/venv/bin/python" -m pip install --quiet --disable-pip-version-check "cargo-lambda==${CARGO_LAMBDA_VERSION}"
  test -x "$TOOLS/venv/bin/cargo-lambda"
fi

step="done"
echo "bootstrap: ok"
echo "  azurite-blob: $TOOLS/node_modules/.bin/azurite-blob"
echo "  cargo-lambda: $TOOLS/venv/bin/cargo-lambda (add $TOOLS/venv/bin to PATH for 'cargo lambda')"
