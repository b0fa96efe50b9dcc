#!/usr/bin/env bash
# Deploys entra-enrich (infrastructure + code + LCW relay) to one resource group, then health-checks it.
#
# Usage:
#   infra/deploy.sh --resource-group RG --name PREFIX [options]
#
# Options:
#   --location L            region for a first deployment (default: the resource group's)
#   --package ZIP           deploy this package (default: build one with infra/package.sh)
#   --parameters FILE       ARM/Bicep parameters file for main.bicep (default: infra/env/PREFIX.parameters.json
#                           when it exists); per-environment settings (usageLocationSource, audience, ...) live there
#   --param KEY=VALUE       one more main.bicep parameter (repeatable; wins over the file)
#   --enrich-dry-run true|false
#                           ENRICH_DRY_RUN. Default: the parameters file's value, else the value deployed now,
#                           else true (first deployment). A code deployment never silently flips it.
#   --allowed-callers IDS   extra lcw-joiner caller app ids, comma-separated (the relay's is added automatically)
#   --skip-relay            do not deploy the LCW relay Logic App
#   --releases-dir DIR      release history (default: infra/releases, or $ENRICH_RELEASES_DIR)
#   --dry-run               print every az command instead of running it; change nothing, not even the history
#
# Steps: check az + login + resource group → package → show what is deployed now (history) → main.bicep
# → keep the package in the history → upload it (Flex Consumption: config-zip) → relay-logicapp.bicep →
# (first deployment: main.bicep again, now with the relay's app id as allowed caller) → health check →
# record the release. Exit status 0 only if the health check passed.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RG=""
PREFIX=""
LOCATION=""
PACKAGE=""
PARAMS_FILE=""
EXTRA_PARAMS=()
ENRICH_DRY_RUN_VALUE=""
EXTRA_CALLERS=""
SKIP_RELAY=0

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}" >&2; }
need() { [[ $# -ge 2 && -n "$2" ]] || die "$1 needs a value"; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    --resource-group | -g) need "$@"; RG="$2"; shift 2 ;;
    --name | -n) need "$@"; PREFIX="$2"; shift 2 ;;
    --location | -l) need "$@"; LOCATION="$2"; shift 2 ;;
    --package) need "$@"; PACKAGE="$2"; shift 2 ;;
    --parameters) need "$@"; PARAMS_FILE="$2"; shift 2 ;;
    --param) need "$@"; EXTRA_PARAMS+=("$2"); shift 2 ;;
    --enrich-dry-run)
      need "$@"
      [[ "$2" == true || "$2" == false ]] || die "--enrich-dry-run takes true or false"
      ENRICH_DRY_RUN_VALUE="$2"
      shift 2
      ;;
    --allowed-callers) need "$@"; EXTRA_CALLERS="$2"; shift 2 ;;
    --skip-relay) SKIP_RELAY=1; shift ;;
    --releases-dir) need "$@"; RELEASES_DIR="$2"; shift 2 ;;
    --dry-run) DRY_RUN=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage; die "unknown argument: $1" ;;
  esac
done
[[ -n "$RG" ]] || { usage; die "--resource-group is required"; }
[[ -n "$PREFIX" ]] || { usage; die "--name (the name prefix) is required"; }
[[ "$PREFIX" =~ ^[a-z0-9][a-z0-9-]{1,19}$ ]] || die "--name must be 2-20 lowercase letters, digits or hyphens (it prefixes Azure resource names)"

MAIN_DEPLOYMENT="entra-enrich-$PREFIX"
RELAY_DEPLOYMENT="entra-enrich-$PREFIX-relay"
if [[ -z "$PARAMS_FILE" && -f "$INFRA_DIR/env/$PREFIX.parameters.json" ]]; then
  PARAMS_FILE="$INFRA_DIR/env/$PREFIX.parameters.json"
fi
[[ -z "$PARAMS_FILE" || -f "$PARAMS_FILE" ]] || die "parameters file not found: $PARAMS_FILE"

# 1. Preconditions.
require_python
require_az_login
require_resource_group "$RG"

# 2. The package.
if [[ -z "$PACKAGE" ]]; then
  if [[ "$DRY_RUN" == 1 ]]; then
    printf 'DRY-RUN: %s\n' "$INFRA_DIR/package.sh" >&3
    PACKAGE="$REPO_ROOT/dist/entra-enrich-<version>-<gitsha>.zip"
  else
    PACKAGE="$("$INFRA_DIR/package.sh")" || die "packaging failed"
  fi
else
  [[ -f "$PACKAGE" ]] || die "package not found: $PACKAGE"
  PACKAGE="$(cd "$(dirname "$PACKAGE")" && pwd)/$(basename "$PACKAGE")"
fi
log "package: $PACKAGE"

# 3. What is deployed now (kept for rollback).
CURRENT="$(history current --resource-group "$RG" --prefix "$PREFIX")"
if [[ -n "$CURRENT" ]]; then
  log "deployed now (per $RELEASES_DIR/history.json): $(json_get "$CURRENT" label), sha256 $(json_get "$CURRENT" sha256 | cut -c1-12), health $(json_get "$CURRENT" health); rollback: infra/rollback.sh --resource-group $RG --name $PREFIX"
else
  log "no earlier release of $PREFIX in $RG in $RELEASES_DIR/history.json: a rollback target will exist from the next deployment on"
fi

# 4. Earlier deployment outputs and the relay's identity (absent on a first deployment).
PREVIOUS_OUTPUTS="$(az_try deployment group show --resource-group "$RG" --name "$MAIN_DEPLOYMENT" --query properties.outputs --output json || true)"
PREVIOUS_APP="$(json_get "$PREVIOUS_OUTPUTS" functionAppName)"
RELAY_APP_ID=""
# (Looked up even with --skip-relay: an existing relay must stay an allowed caller.)
RELAY_OUTPUTS="$(az_try deployment group show --resource-group "$RG" --name "$RELAY_DEPLOYMENT" --query properties.outputs --output json || true)"
RELAY_PRINCIPAL="$(json_get "$RELAY_OUTPUTS" principalId)"
if [[ -n "$RELAY_PRINCIPAL" ]]; then
  RELAY_APP_ID="$(az_run ad sp show --id "$RELAY_PRINCIPAL" --query appId --output tsv)" ||
    die "could not read the relay identity's app id (az ad sp show --id $RELAY_PRINCIPAL): you need directory read access"
fi

# ENRICH_DRY_RUN: flag > parameters file > value deployed now > true.
if [[ -z "$ENRICH_DRY_RUN_VALUE" ]]; then
  if [[ -n "$PARAMS_FILE" ]] && [[ -n "$(json_get "$(cat "$PARAMS_FILE")" parameters.enrichDryRun.value)" ]]; then
    ENRICH_DRY_RUN_VALUE="$(json_get "$(cat "$PARAMS_FILE")" parameters.enrichDryRun.value)"
  elif [[ -n "$PREVIOUS_APP" ]]; then
    ENRICH_DRY_RUN_VALUE="$(az_run functionapp config appsettings list --resource-group "$RG" --name "$PREVIOUS_APP" --query "[?name=='ENRICH_DRY_RUN'].value | [0]" --output tsv || true)"
  fi
  [[ "$ENRICH_DRY_RUN_VALUE" == true || "$ENRICH_DRY_RUN_VALUE" == false ]] || ENRICH_DRY_RUN_VALUE=true
fi
log "ENRICH_DRY_RUN=$ENRICH_DRY_RUN_VALUE"

join_callers() {
  local ids=() id
  for id in "$@"; do [[ -n "$id" ]] && ids+=("$id"); done
  local IFS=,
  printf '%s' "${ids[*]}"
}

# 5. Infrastructure (idempotent).
deploy_main() {
  local callers="$1"
  local args=(deployment group create --resource-group "$RG" --name "$MAIN_DEPLOYMENT"
    --template-file "$INFRA_DIR/main.bicep")
  [[ -n "$PARAMS_FILE" ]] && args+=(--parameters "@$PARAMS_FILE")
  args+=(--parameters "namePrefix=$PREFIX" "enrichDryRun=$ENRICH_DRY_RUN_VALUE")
  [[ -n "$callers" ]] && args+=("allowedCallers=$callers")
  [[ -n "$LOCATION" ]] && args+=("location=$LOCATION")
  [[ ${#EXTRA_PARAMS[@]} -gt 0 ]] && args+=("${EXTRA_PARAMS[@]}")
  args+=(--query properties.outputs --output json)
  az_run "${args[@]}"
}
CALLERS="$(join_callers "$RELAY_APP_ID" "$EXTRA_CALLERS")"
OUTPUTS="$(deploy_main "$CALLERS")" || die "main.bicep deployment failed (see above)"
APP="$(json_get "$OUTPUTS" functionAppName)"
HOST="$(json_get "$OUTPUTS" functionAppHostName)"
AUDIENCE="$(json_get "$OUTPUTS" audience)"
if [[ "$DRY_RUN" == 1 ]]; then
  APP="${PREVIOUS_APP:-<functionAppName>}"
  HOST="<functionAppHostName>"
  AUDIENCE="<audience>"
fi
[[ -n "$APP" && -n "$HOST" ]] || die "main.bicep gave no functionAppName/functionAppHostName output"
log "function app: $APP ($HOST); identity client id $(json_get "$OUTPUTS" identityClientId)"

# 6. Keep the package (content-addressed) before it goes out, then upload it. Flex Consumption takes the
#    zip through One Deploy, which config-zip uses
#    (https://learn.microsoft.com/azure/azure-functions/flex-consumption-how-to#deploy-your-code-project).
if [[ "$DRY_RUN" == 1 ]]; then
  printf 'DRY-RUN: keep %s in %s\n' "$PACKAGE" "$RELEASES_DIR" >&3
else
  history archive --package "$PACKAGE" >/dev/null || die "could not keep the package in $RELEASES_DIR"
fi
# Retried: on a first deployment the identity's new role on the deployment container can take minutes
# to propagate (https://learn.microsoft.com/azure/role-based-access-control/troubleshooting#symptom---role-assignment-changes-are-not-being-detected).
UPLOAD_ATTEMPTS="${ENRICH_UPLOAD_ATTEMPTS:-4}"
for ((i = 1; ; i++)); do
  az_run functionapp deployment source config-zip --resource-group "$RG" --name "$APP" --src "$PACKAGE" >/dev/null && break
  ((i < UPLOAD_ATTEMPTS)) || die "uploading the package failed $UPLOAD_ATTEMPTS times (see above); the infrastructure is deployed, the code is not"
  log "upload failed ($i/$UPLOAD_ATTEMPTS); retrying in $((HEALTH_DELAY_SECONDS * 4)) s"
  sleep "$((HEALTH_DELAY_SECONDS * 4))"
done

# 7. The LCW relay (reads the lcw-joiner key, so after the code is indexed).
if [[ "$SKIP_RELAY" == 0 ]]; then
  wait_for_functions "$RG" "$APP" || die "the code is deployed but the host did not index its functions; the relay was not deployed"
  RELAY_OUT="$(az_run deployment group create --resource-group "$RG" --name "$RELAY_DEPLOYMENT" \
    --template-file "$INFRA_DIR/relay-logicapp.bicep" \
    --parameters "namePrefix=$PREFIX" "functionAppName=$APP" "audience=$AUDIENCE" ${LOCATION:+"location=$LOCATION"} \
    --query properties.outputs --output json)" || die "relay-logicapp.bicep deployment failed (see above)"
  if [[ -z "$RELAY_APP_ID" ]]; then
    # First deployment: now that the relay exists, allow its identity and turn the caller check on.
    PRINCIPAL="$(json_get "$RELAY_OUT" principalId)"
    [[ "$DRY_RUN" == 1 ]] && PRINCIPAL="<relay principalId>"
    RELAY_APP_ID="$(az_run ad sp show --id "$PRINCIPAL" --query appId --output tsv)" ||
      die "could not read the relay identity's app id"
    [[ "$DRY_RUN" == 1 ]] && RELAY_APP_ID="<relay appId>"
    [[ -n "$RELAY_APP_ID" ]] || die "the relay identity has no app id yet; re-run this script in a minute"
    log "relay identity app id $RELAY_APP_ID: redeploying main.bicep with it in ENRICH_ALLOWED_CALLERS"
    OUTPUTS2="$(deploy_main "$(join_callers "$RELAY_APP_ID" "$EXTRA_CALLERS")")" ||
      die "main.bicep redeployment (allowed callers) failed (see above)"
    : "$OUTPUTS2"
  fi
  log "LCW custom task extension endpoint: $(json_get "$RELAY_OUT" customTaskExtensionEndpoint)"
fi

# 8. Health, then the record.
HEALTH=ok
if ! health_check "$RG" "$APP" "$HOST"; then
  HEALTH=failed
fi
if [[ "$DRY_RUN" == 1 ]]; then
  printf 'DRY-RUN: record %s as deployed to %s/%s in %s/history.json\n' "$(basename "$PACKAGE")" "$RG" "$APP" "$RELEASES_DIR" >&3
  exit 0
fi
history record --resource-group "$RG" --prefix "$PREFIX" --app "$APP" --host "$HOST" \
  --package "$PACKAGE" --action deploy --health "$HEALTH" --by "${ACCOUNT_USER:-}" >/dev/null
if [[ "$HEALTH" != ok ]]; then
  die "deployed $(basename "$PACKAGE") to $APP but the health check failed. Fix the settings (infra/env/$PREFIX.parameters.json) and re-run, or roll back the code: infra/rollback.sh --resource-group $RG --name $PREFIX"
fi
log "deployed $(basename "$PACKAGE") to $APP; ENRICH_DRY_RUN=$ENRICH_DRY_RUN_VALUE"
