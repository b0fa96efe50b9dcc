#!/usr/bin/env bash
# Checks infra/*.bicep.
#
# - With the Bicep CLI (`bicep`, or `az bicep`): a full build (types, API versions, linter). Do this before
#   a deployment: `az bicep build --file infra/main.bicep --stdout > /dev/null`.
# - Without it (machines with no Azure tooling): a syntax check with the tree-sitter Bicep grammar
#   (npm tree-sitter-bicep, run by web-tree-sitter; pure JavaScript + WebAssembly, installed with
#   --ignore-scripts into the git-ignored .tools/bicep-syntax). This catches syntax errors only, not
#   wrong property names or types.
#
# Usage: infra/check-bicep.sh [FILE.bicep ...]   (default: every infra/*.bicep)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$ROOT/.tools/bicep-syntax"
WEB_TREE_SITTER_VERSION="0.24.7"
TREE_SITTER_BICEP_VERSION="1.1.0"

die() {
  printf 'check-bicep.sh: error: %s\n' "$*" >&2
  exit 1
}

files=("$@")
if [[ ${#files[@]} -eq 0 ]]; then
  files=("$ROOT"/infra/*.bicep)
fi

if command -v bicep >/dev/null 2>&1; then
  for f in "${files[@]}"; do
    echo "bicep build $f"
    bicep build "$f" --stdout >/dev/null
  done
  exit 0
fi
if command -v az >/dev/null 2>&1 && az bicep version >/dev/null 2>&1; then
  for f in "${files[@]}"; do
    echo "az bicep build $f"
    az bicep build --file "$f" --stdout >/dev/null
  done
  exit 0
fi

echo "check-bicep.sh: no Bicep CLI here; syntax check only (tree-sitter-bicep $TREE_SITTER_BICEP_VERSION)" >&2
command -v node >/dev/null 2>&1 || die "node is needed for the syntax check (Debian: apt-get install -y nodejs npm)"
if [[ ! -f "$TOOLS/node_modules/tree-sitter-bicep/tree-sitter-bicep.wasm" ||
  ! -f "$TOOLS/node_modules/web-tree-sitter/package.json" ]]; then
  mkdir -p "$TOOLS"
  npm install --prefix "$TOOLS" --ignore-scripts --no-audit --no-fund --loglevel=error \
    "web-tree-sitter@$WEB_TREE_SITTER_VERSION" "tree-sitter-bicep@$TREE_SITTER_BICEP_VERSION" >&2 ||
    die "npm install of the Bicep grammar failed"
fi

NODE_PATH="$TOOLS/node_modules" node - "${files[@]}" <<'JS'
const Parser = require('web-tree-sitter');
const fs = require('fs');
(async () => {
  await Parser.init();
  const Bicep = await Parser.Language.load(require.resolve('tree-sitter-bicep/tree-sitter-bicep.wasm'));
  const parser = new Parser();
  parser.setLanguage(Bicep);
  let bad = 0;
  for (const file of process.argv.slice(2)) {
    const src = fs.readFileSync(file, 'utf8');
    const errors = [];
    const walk = (n) => {
      if (n.type === 'ERROR' || n.isMissing) errors.push(n);
      for (const c of n.children) walk(c);
    };
    walk(parser.parse(src).rootNode);
    for (const e of errors) {
      const at = `${file}:${e.startPosition.row + 1}:${e.startPosition.column + 1}`;
      const snippet = src.slice(e.startIndex, Math.min(e.endIndex, e.startIndex + 60)).replace(/\n/g, '\\n');
      console.error(`${at}: ${e.isMissing ? 'missing ' + e.type : 'syntax error near'} ${snippet}`);
    }
    console.log(`${file}: ${errors.length ? errors.length + ' syntax error(s)' : 'syntax ok'}`);
    bad += errors.length;
  }
  process.exit(bad ? 1 : 0);
})().catch((e) => { console.error(e); process.exit(2); });
JS
