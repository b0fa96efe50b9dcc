#!/usr/bin/env bash
# Static security checks of the infrastructure code with checkov (PyPI), as CI runs them.
#
# Installs checkov at a pinned version into the git-ignored .tools/checkov-venv (its own venv, so its
# many pinned dependencies never meet cargo-lambda's in .tools/venv; skipped when that version is
# already there), then scans infra/ with the frameworks that match what infra/ holds or may hold:
#   bicep (main.bicep, relay-logicapp.bicep), arm (JSON templates; env/*.parameters.json hold no
#   resources), cloudformation (a SAM/CloudFormation template for the Lambda side, should one be
#   added) and secrets (every file, scripts and docs included, not only the IaC file types checkov scans
#   for secrets by default; release zips excepted).
#
# Fails (non-zero) on any failed check, on any file checkov could not parse (checkov itself only
# counts those and still exits 0), when checkov found nothing to scan, or when checkov itself fails.
# A check that does not apply is suppressed in place, inside the resource body, one check per line:
#   // checkov:skip=CKV_AZURE_NN: why it does not apply to this app
# (see infra/README.md, "Checks that run without Azure").
#
# Usage: scripts/checkov.sh [DIR ...]   (default: infra; paths relative to the repository root)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.tools/checkov-venv"
CHECKOV_VERSION="3.3.30"
FRAMEWORKS=(bicep arm cloudformation secrets)

die() {
  printf 'checkov.sh: error: %s\n' "$*" >&2
  exit 1
}

cd "$ROOT"
dirs=("$@")
if [[ ${#dirs[@]} -eq 0 ]]; then
  dirs=(infra)
fi
for d in "${dirs[@]}"; do
  [[ -d "$d" ]] || die "no directory $d"
done

installed=""
if [[ -x "$VENV/bin/python" ]]; then
  installed="$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("checkov"))' 2>/dev/null || true)"
fi
if [[ "$installed" == "$CHECKOV_VERSION" && -x "$VENV/bin/checkov" ]]; then
  echo "checkov.sh: checkov $CHECKOV_VERSION already in .tools/checkov-venv (skip install)"
else
  command -v python3 >/dev/null 2>&1 || die "python3 is needed to install checkov"
  echo "checkov.sh: installing checkov $CHECKOV_VERSION into .tools/checkov-venv"
  if [[ ! -x "$VENV/bin/python" ]]; then
    mkdir -p "$ROOT/.tools"
    python3 -m venv "$VENV" || die "python3 -m venv $VENV failed (Debian: apt-get install -y python3-venv)"
  fi
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "checkov==$CHECKOV_VERSION" ||
    die "pip install checkov==$CHECKOV_VERSION failed"
  [[ -x "$VENV/bin/checkov" ]] || die "checkov is not in $VENV/bin after the install"
fi

report="$(mktemp)"
trap 'rm -f "$report"' EXIT

dir_args=()
for d in "${dirs[@]}"; do
  dir_args+=(-d "$d")
done

start=$SECONDS
rc=0
# --skip-download: no call to the Prisma Cloud API (the guideline links it would fetch are not needed,
# and CI has no route to it). JSON, not the CLI view, because only the JSON lists unparsable files.
"$VENV/bin/checkov" "${dir_args[@]}" --framework "${FRAMEWORKS[@]}" --skip-download --compact \
  --enable-secret-scan-all-files --block-list-secret-scan .zip \
  --output json >"$report" || rc=$?
elapsed=$((SECONDS - start))

"$VENV/bin/python" - "$report" "$rc" "$elapsed" "${dirs[*]}" "${FRAMEWORKS[*]}" "$CHECKOV_VERSION" <<'PY'
import json
import sys

path, rc, elapsed, dirs, frameworks, version = sys.argv[1], int(sys.argv[2]), *sys.argv[3:7]
try:
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
except (OSError, ValueError) as e:
    print(f"checkov.sh: error: checkov (exit {rc}) wrote no JSON report: {e}", file=sys.stderr)
    sys.exit(1)

# One framework with results: an object; several: a list; none: a bare summary object.
reports = data if isinstance(data, list) else [data]
reports = [r for r in reports if isinstance(r, dict) and "check_type" in r]

passed = failed = skipped = parse_errors = resources = 0
for r in reports:
    s = r.get("summary", {})
    passed += s.get("passed", 0)
    failed += s.get("failed", 0)
    skipped += s.get("skipped", 0)
    parse_errors += s.get("parsing_errors", 0)
    resources += s.get("resource_count", 0)
    version = s.get("checkov_version", version)
    res = r.get("results", {})
    for c in res.get("failed_checks", []):
        lines = "-".join(str(n) for n in c.get("file_line_range", []))
        print(f"FAILED  {c['check_id']}  {c.get('resource', '')}  {c.get('repo_file_path') or c.get('file_path')}:{lines}")
        print(f"        {c.get('check_name', '')}")
        if c.get("guideline"):
            print(f"        {c['guideline']}")
    for c in res.get("skipped_checks", []):
        reason = (c.get("check_result", {}).get("suppress_comment") or "").strip()
        print(f"skipped {c['check_id']}  {c.get('resource', '')}: {reason}")
    for p in res.get("parsing_errors", []):
        print(f"PARSE ERROR ({r['check_type']}): {p}")

print(
    f"checkov {version} over {dirs} ({frameworks}), {elapsed} s: "
    f"passed={passed} failed={failed} skipped={skipped} parse_errors={parse_errors} resources={resources}"
)

problems = []
if failed:
    problems.append(f"{failed} failed check(s)")
if parse_errors:
    problems.append(
        f"{parse_errors} file(s) checkov could not parse, so none of their resources were checked "
        "(bicep: checkov's parser, pycep, takes at most 4 consecutive // comment or blank lines after "
        "a property inside an object, 9 after an opening {; use a /* */ block for longer comments)"
    )
if resources == 0 and passed + failed + skipped == 0:
    problems.append("checkov found no resource to check (wrong directory, or every file failed to parse)")
if rc not in (0, 1) or (rc == 1 and not failed):
    problems.append(f"checkov exited {rc}")
if problems:
    print("checkov.sh: FAILED: " + "; ".join(problems), file=sys.stderr)
    sys.exit(1)
PY
