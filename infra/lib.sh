# shellcheck shell=bash
# Shared by deploy.sh and rollback.sh: logging, dry-run aware `az`, the release history, the health check.
# Sourced, not run.

INFRA_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck disable=SC2034 # used by the scripts that source this file
REPO_ROOT="$(cd "$INFRA_DIR/.." && pwd)"
DRY_RUN=0
RELEASES_DIR="${ENRICH_RELEASES_DIR:-$INFRA_DIR/releases}"
# Health check: attempts × delay (5 min) covers a Flex restart after a deployment and, on a first
# deployment, most of the propagation delay of new role assignments.
HEALTH_ATTEMPTS="${ENRICH_HEALTH_ATTEMPTS:-20}"
HEALTH_DELAY_SECONDS="${ENRICH_HEALTH_DELAY_SECONDS:-15}"
# The functions the host must have indexed (folders under functions/).
EXPECTED_FUNCTIONS=(lcw-joiner new-hire-watch backfill health)

# Dry-run output goes to fd 3 (the script's stdout), even from inside $(...).
exec 3>&1

SCRIPT_NAME="$(basename "$0")"
log() { printf '%s: %s\n' "$SCRIPT_NAME" "$*" >&2; }
die() {
  printf '%s: error: %s\n' "$SCRIPT_NAME" "$*" >&2
  exit 1
}

# Prints a command, shell-quoted.
quote_cmd() {
  local out="" a
  for a in "$@"; do
    if [[ "$a" =~ ^[A-Za-z0-9_./:=@,+%-]+$ ]]; then
      out+="$a "
    else
      out+="'${a//\'/\'\\\'\'}' "
    fi
  done
  printf '%s' "${out% }"
}

# az_run ARGS...: runs `az ARGS` (its stdout is the function's stdout), or in dry-run only prints it.
az_run() {
  if [[ "$DRY_RUN" == 1 ]]; then
    printf 'DRY-RUN: %s\n' "$(quote_cmd az "$@")" >&3
    return 0
  fi
  printf '+ %s\n' "$(quote_cmd az "$@")" >&2
  az "$@"
}

# Same, for a command that may fail without stopping the script (lookups of things that may not exist).
az_try() {
  if [[ "$DRY_RUN" == 1 ]]; then
    printf 'DRY-RUN: %s\n' "$(quote_cmd az "$@")" >&3
    return 0
  fi
  printf '+ %s\n' "$(quote_cmd az "$@")" >&2
  az "$@" 2>/dev/null
}

require_python() {
  command -v python3 >/dev/null 2>&1 || die "python3 is required (JSON handling); install it and retry"
}

# Checks that az is installed and logged in (skipped, but printed, in dry-run).
require_az_login() {
  if [[ "$DRY_RUN" == 1 ]]; then
    az_run account show --output json >/dev/null
    return 0
  fi
  command -v az >/dev/null 2>&1 ||
    die "the Azure CLI (az) is not installed: https://learn.microsoft.com/cli/azure/install-azure-cli"
  local account
  account="$(az_try account show --output json)" ||
    die "az is not logged in: run 'az login' (and 'az account set --subscription <id>'), then retry"
  ACCOUNT_USER="$(json_get "$account" user.name)"
  log "signed in as ${ACCOUNT_USER:-?} to subscription $(json_get "$account" name) ($(json_get "$account" id))"
}

require_resource_group() {
  local rg="$1"
  az_try group show --name "$rg" --output json >/dev/null ||
    die "resource group '$rg' not found in this subscription: create it (az group create --name $rg --location <region>) or pick the right subscription (az account set)"
}

# json_get JSON PATH: prints the value at a dotted path ("" if absent). Output objects of ARM
# deployments ({"x": {"type": "String", "value": ...}}) are unwrapped.
json_get() {
  python3 - "$1" "$2" <<'PY'
import json, sys
try:
    v = json.loads(sys.argv[1]) if sys.argv[1].strip() else None
except ValueError:
    v = None
for part in sys.argv[2].split("."):
    if isinstance(v, dict):
        v = v.get(part)
    else:
        v = None
if isinstance(v, dict) and "value" in v and "type" in v:
    v = v["value"]
if v is None:
    print("")
elif isinstance(v, (dict, list)):
    print(json.dumps(v))
elif isinstance(v, bool):
    print("true" if v else "false")
else:
    print(v)
PY
}

sha256_of() {
  python3 -c 'import hashlib,sys; print(hashlib.sha256(open(sys.argv[1],"rb").read()).hexdigest())' "$1"
}

# history.py subcommands (the release history lives in $RELEASES_DIR/history.json).
history() {
  python3 "$INFRA_DIR/history.py" --releases-dir "$RELEASES_DIR" "$@"
}

# wait_for_functions RG APP: until the host lists every function in EXPECTED_FUNCTIONS. A timer whose
# %SETTING% is missing is not indexed; neither is anything from a package with the wrong layout.
wait_for_functions() {
  local rg="$1" app="$2" attempt names f missing=()
  for ((attempt = 1; attempt <= HEALTH_ATTEMPTS; attempt++)); do
    names="$(az_run functionapp function list --resource-group "$rg" --name "$app" --query '[].name' --output tsv)" || names=""
    [[ "$DRY_RUN" == 1 ]] && return 0
    missing=()
    for f in "${EXPECTED_FUNCTIONS[@]}"; do
      grep -Eq "(^|/)$f\$" <<<"$names" || missing+=("$f")
    done
    [[ ${#missing[@]} -eq 0 ]] && return 0
    log "functions not indexed yet ($attempt/$HEALTH_ATTEMPTS): ${missing[*]}"
    ((attempt < HEALTH_ATTEMPTS)) && sleep "$HEALTH_DELAY_SECONDS"
  done
  log "the host has not indexed: ${missing[*]} (check NEW_HIRE_WATCH_SCHEDULE / BACKFILL_SCHEDULE and the package layout; the host's logs are in Application Insights › traces)"
  return 1
}

# health_check RG APP HOSTNAME: the host has indexed every function, and the health function answers
# with valid settings. Returns non-zero (after printing why) otherwise.
health_check() {
  local rg="$1" app="$2" host="$3"
  local key attempt body code hdr reason=""

  # 1. Indexing (retried: the host restarts after a deployment).
  wait_for_functions "$rg" "$app" || return 1

  # 2. The health function, with its own function key (sent in a header read from a file, so the key is
  #    neither in a URL nor in the process list).
  key="$(az_run functionapp function keys list --resource-group "$rg" --name "$app" --function-name health --query default --output tsv)" ||
    { log "could not read the health function key"; return 1; }
  local url="https://$host/api/health"
  if [[ "$DRY_RUN" == 1 ]]; then
    printf 'DRY-RUN: curl --silent --show-error --max-time 30 --header @<x-functions-key file> %s  # until config.valid is true (%s attempts, %ss apart)\n' \
      "$url" "$HEALTH_ATTEMPTS" "$HEALTH_DELAY_SECONDS" >&3
    return 0
  fi
  [[ -n "$key" ]] || { log "the health function has no default key"; return 1; }
  hdr="$(mktemp)"
  body="$(mktemp)"
  chmod 600 "$hdr"
  printf 'x-functions-key: %s\n' "$key" >"$hdr"
  for ((attempt = 1; attempt <= HEALTH_ATTEMPTS; attempt++)); do
    printf '+ curl --silent --show-error --max-time 30 --header @<key file> %s\n' "$url" >&2
    code="$(curl --silent --show-error --max-time 30 --output "$body" --write-out '%{http_code}' --header "@$hdr" "$url" 2>&1)" || true
    if [[ "$code" == 200 ]]; then
      if reason="$(python3 "$INFRA_DIR/history.py" check-health "$body")"; then
        log "health: $reason"
        rm -f "$hdr" "$body"
        return 0
      fi
    else
      reason="HTTP ${code:-no answer} from $url"
    fi
    log "health attempt $attempt/$HEALTH_ATTEMPTS: $reason"
    ((attempt < HEALTH_ATTEMPTS)) && sleep "$HEALTH_DELAY_SECONDS"
  done
  rm -f "$hdr" "$body"
  log "health check failed: $reason"
  return 1
}
