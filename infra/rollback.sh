#!/usr/bin/env bash
# Code rollback: redeploys an earlier entra-enrich package from the release history, then health-checks.
#
# Usage:
#   infra/rollback.sh --resource-group RG --name PREFIX [--to VERSION] [--dry-run] [--releases-dir DIR]
#
#   --to VERSION   a label (0.1.0-0123456789ab), a version (0.1.0), a git sha or a sha256 prefix (7+ chars)
#                  from infra/releases/history.json. Default: the newest healthy release before the current
#                  one whose content differs.
#   --dry-run      print every az command instead of running it; change nothing.
#
# This replaces the code only: app settings and infrastructure stay as they are (re-run deploy.sh with an
# older commit to roll those back). It does not touch any user attribute: to restore the attribute values
# a run wrote, use the application rollback, `entra-enrich rollback --run <RUN ID>` (see infra/README.md).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RG=""
PREFIX=""
TO=""

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}" >&2; }
need() { [[ $# -ge 2 && -n "$2" ]] || die "$1 needs a value"; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    --resource-group | -g) need "$@"; RG="$2"; shift 2 ;;
    --name | -n) need "$@"; PREFIX="$2"; shift 2 ;;
    --to) need "$@"; TO="$2"; shift 2 ;;
    --releases-dir) need "$@"; RELEASES_DIR="$2"; shift 2 ;;
    --dry-run) DRY_RUN=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage; die "unknown argument: $1" ;;
  esac
done
[[ -n "$RG" ]] || { usage; die "--resource-group is required"; }
[[ -n "$PREFIX" ]] || { usage; die "--name (the name prefix) is required"; }

require_python
# Choose the target first: no point logging in when there is nothing to roll back to.
TARGET="$(history select --resource-group "$RG" --prefix "$PREFIX" --to "$TO")" ||
  die "nothing to roll back to (see above)"
ZIP="$(json_get "$TARGET" path)"
APP="$(json_get "$TARGET" functionApp)"
HOST="$(json_get "$TARGET" hostName)"
CURRENT_LABEL="$(json_get "$TARGET" current.label)"
log "rolling $APP back from $CURRENT_LABEL to $(json_get "$TARGET" label) (deployed $(json_get "$TARGET" at) by $(json_get "$TARGET" by)): $ZIP"

require_az_login
require_resource_group "$RG"

az_run functionapp deployment source config-zip --resource-group "$RG" --name "$APP" --src "$ZIP" >/dev/null ||
  die "uploading $ZIP failed (see above)"

HEALTH=ok
health_check "$RG" "$APP" "$HOST" || HEALTH=failed
if [[ "$DRY_RUN" == 1 ]]; then
  printf 'DRY-RUN: record %s as rolled back to on %s/%s in %s/history.json\n' "$(basename "$ZIP")" "$RG" "$APP" "$RELEASES_DIR" >&3
  exit 0
fi
history record --resource-group "$RG" --prefix "$PREFIX" --app "$APP" --host "$HOST" \
  --package "$ZIP" --action rollback --health "$HEALTH" --by "${ACCOUNT_USER:-}" \
  --rolled-back-from "$CURRENT_LABEL" >/dev/null
[[ "$HEALTH" == ok ]] || die "rolled back to $(basename "$ZIP") but the health check failed: the settings may be newer than this code; check infra/README.md › Rollback"
log "rolled back $APP to $(json_get "$TARGET" label)"
