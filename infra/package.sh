#!/usr/bin/env bash
# Builds the entra-enrich release binary and packages the Azure Functions app for Flex Consumption:
#
#   dist/entra-enrich-<version>-<gitsha>.zip
#     host.json
#     functions/<name>/function.json     (every function folder)
#     entra-enrich                        (the custom handler, mode 0755)
#
# Usage:
#   infra/package.sh                         build (cargo build --release --locked) and package
#   infra/package.sh --target x86_64-unknown-linux-musl
#                                            build a static binary (needs the rustup target and musl-tools)
#   infra/package.sh --skip-build BINARY     package an existing binary (CI artefacts, tests)
#   infra/package.sh --out DIR               write the zip to DIR (default: dist/)
#
# Prints the zip's absolute path on stdout (and nothing else); progress goes to stderr.
#
# The zip is deterministic: fixed timestamps, sorted entries, fixed modes. Packaging the same inputs
# twice gives the same bytes, so re-running is harmless (idempotent) and the sha256 recorded by
# deploy.sh identifies a release.
#
# The executable bit matters: Flex Consumption runs the package on Linux, and the host starts
# `defaultExecutablePath` from host.json (https://learn.microsoft.com/azure/azure-functions/functions-custom-handlers#deploying).
# Zips made by tools that drop Unix modes (e.g. PowerShell Compress-Archive) leave the handler
# non-executable; this script writes the Unix mode into each entry's external attributes.
#
# glibc: Flex Consumption runs the binary on the platform's Linux image; a glibc-linked binary built on a
# newer distribution than that image fails to start (GLIBC_2.xx not found). The build machine here has
# glibc 2.36 (Debian 12). To remove the question entirely, build with
# --target x86_64-unknown-linux-musl (as the Functions Rust quickstart does:
# https://learn.microsoft.com/azure/azure-functions/create-first-function-vs-code-other?tabs=rust).
# The script warns when the binary needs a glibc newer than ENRICH_MAX_GLIBC (default 2.31).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT_DIR="$ROOT/dist"
SKIP_BUILD_BINARY=""
TARGET=""

die() {
  printf 'package.sh: error: %s\n' "$*" >&2
  exit 1
}
log() { printf 'package.sh: %s\n' "$*" >&2; }

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}" >&2; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    --skip-build)
      [[ $# -ge 2 ]] || die "--skip-build needs a BINARY path"
      SKIP_BUILD_BINARY="$2"
      shift 2
      ;;
    --out)
      [[ $# -ge 2 ]] || die "--out needs a DIR"
      OUT_DIR="$2"
      shift 2
      ;;
    --target)
      [[ $# -ge 2 ]] || die "--target needs a target triple, e.g. x86_64-unknown-linux-musl"
      TARGET="$2"
      shift 2
      ;;
    -h | --help)
      usage
      exit 0
      ;;
    *)
      usage
      die "unknown argument: $1"
      ;;
  esac
done

command -v python3 >/dev/null 2>&1 || die "python3 is required (it writes the zip with Unix modes)"
[[ -f "$ROOT/host.json" ]] || die "$ROOT/host.json not found"
compgen -G "$ROOT/functions/*/function.json" >/dev/null || die "no functions/*/function.json under $ROOT"

# The binary.
if [[ -n "$SKIP_BUILD_BINARY" ]]; then
  [[ -n "$TARGET" ]] && die "--skip-build and --target exclude each other"
  BINARY="$SKIP_BUILD_BINARY"
  [[ -f "$BINARY" ]] || die "binary not found: $BINARY"
  log "packaging the existing binary $BINARY (no build)"
else
  command -v cargo >/dev/null 2>&1 || die "cargo not found: install a Rust toolchain (rustup) or pass --skip-build BINARY"
  build=(cargo build --release --locked --bin entra-enrich)
  if [[ -n "$TARGET" ]]; then
    build+=(--target "$TARGET")
    BINARY="$ROOT/target/$TARGET/release/entra-enrich"
  else
    BINARY="$ROOT/target/release/entra-enrich"
  fi
  log "building: ${build[*]}"
  (cd "$ROOT" && "${build[@]}") >&2 || die "cargo build failed (see above)"
  [[ -f "$BINARY" ]] || die "cargo build succeeded but $BINARY is missing"
fi

# The release label: <workspace version>-<git sha>[-dirty].
VERSION="$(python3 - "$ROOT/Cargo.toml" <<'PY'
import re, sys
try:
    import tomllib  # Python 3.11+
except ImportError:
    tomllib = None
if tomllib:
    with open(sys.argv[1], "rb") as f:
        doc = tomllib.load(f)
    v = doc.get("package", {}).get("version")
    if not isinstance(v, str):
        v = doc.get("workspace", {}).get("package", {}).get("version")
else:
    # Older Python: the first `version = "..."` in [workspace.package] or [package].
    text = open(sys.argv[1]).read()
    m = re.search(r'^\[(?:workspace\.)?package\][^\[]*?^version\s*=\s*"([^"]+)"', text, re.M | re.S)
    v = m.group(1) if m else None
if not isinstance(v, str):
    sys.exit("no version in Cargo.toml")
print(v)
PY
)" || die "could not read the version from Cargo.toml"
if GITSHA="$(git -C "$ROOT" rev-parse --short=12 HEAD 2>/dev/null)"; then
  if [[ -n "$(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null)" ]]; then
    GITSHA="$GITSHA-dirty"
  fi
else
  GITSHA="nogit"
fi

mkdir -p "$OUT_DIR" || die "cannot create $OUT_DIR"
OUT_DIR="$(cd "$OUT_DIR" && pwd)"
ZIP="$OUT_DIR/entra-enrich-$VERSION-$GITSHA.zip"

python3 - "$ROOT" "$BINARY" "$ZIP" "${ENRICH_MAX_GLIBC:-2.31}" <<'PY'
import os, re, sys, tempfile, zipfile

root, binary, out, max_glibc = sys.argv[1:5]
# Fixed timestamp: deterministic bytes (zip cannot store dates before 1980).
STAMP = (1980, 1, 1, 0, 0, 0)

def entry(name, mode):
    info = zipfile.ZipInfo(name, date_time=STAMP)
    info.create_system = 3  # Unix: readers honour the mode in external_attr
    info.external_attr = (0o100000 | mode) << 16  # S_IFREG | permission bits
    info.compress_type = zipfile.ZIP_DEFLATED
    return info

files = [("host.json", os.path.join(root, "host.json"), 0o644)]
functions_dir = os.path.join(root, "functions")
for name in sorted(os.listdir(functions_dir)):
    fj = os.path.join(functions_dir, name, "function.json")
    if os.path.isfile(fj):
        files.append((f"functions/{name}/function.json", fj, 0o644))
files.append(("entra-enrich", binary, 0o755))

with open(binary, "rb") as f:
    data = f.read()
if data[:4] != b"\x7fELF" or len(data) < 20 or int.from_bytes(data[18:20], "little") != 0x3E:
    print(f"package.sh: warning: {binary} is not an x86-64 ELF executable; Flex Consumption runs Linux x86-64",
          file=sys.stderr)
else:
    needed = sorted({tuple(int(x) for x in m.split(b".")) for m in re.findall(rb"GLIBC_(\d+\.\d+)", data)})
    limit = tuple(int(x) for x in max_glibc.split("."))
    if needed and needed[-1] > limit:
        have = ".".join(map(str, needed[-1]))
        print(f"package.sh: warning: the binary needs glibc {have} (> {max_glibc}); if the Flex image is older "
              f"it will not start. Build with --target x86_64-unknown-linux-musl to be independent of glibc.",
              file=sys.stderr)

fd, tmp = tempfile.mkstemp(prefix=".entra-enrich-", suffix=".zip.tmp", dir=os.path.dirname(out))
os.close(fd)
try:
    with zipfile.ZipFile(tmp, "w") as z:
        for arcname, path, mode in files:
            with open(path, "rb") as f:
                z.writestr(entry(arcname, mode), f.read())
    os.chmod(tmp, 0o644)
    os.replace(tmp, out)
finally:
    if os.path.exists(tmp):
        os.unlink(tmp)
PY

log "wrote $ZIP ($(($(wc -c <"$ZIP") / 1024)) KiB)"
printf '%s\n' "$ZIP"
