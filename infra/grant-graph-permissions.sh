#!/usr/bin/env bash
# Grants entra-enrich's managed identity the Microsoft Graph application permissions (app roles) it needs,
# and optionally a directory role. Bicep cannot do this without the Microsoft Graph Bicep extension, so it
# is a separate, idempotent step, run once per environment by a Privileged Role Administrator (or Global
# Administrator): app-role grants on Microsoft Graph and directory role assignments need that role.
#
# Usage:
#   infra/grant-graph-permissions.sh (--principal-id OBJECT_ID | --resource-group RG --name PREFIX) [options]
#
#   --principal-id ID     object id of the identity's service principal (main.bicep output identityPrincipalId)
#   --resource-group/--name  read that id from the entra-enrich-PREFIX deployment instead
#   --usage-location      also User.ReadWrite.All (writing usageLocation; otherMails alone needs only
#                         User-Mail.ReadWrite.All)
#   --lcw-resume          also LifecycleWorkflows.ReadWrite.All: only if the identity is NOT in the custom task
#                         extension's callbackConfiguration.authorizedApps (it should be; then resume needs no
#                         permission)
#   --email-method        also UserAuthenticationMethod.ReadWrite.All: writing the SSPR "Authentication email"
#                         (ENRICH_SSPR_EMAIL_TARGET=authenticationMethod or both); the least privileged
#                         application permission for emailMethods
#   --doctor              also Policy.Read.All and GroupMember.Read.All: let `entra-enrich doctor` read the
#                         Authentication methods policy (Email OTP on, and for whom) and, with --user, the
#                         user's groups; read-only, used by nothing else
#   --privileged-admins   also the Privileged Authentication Administrator directory role: needed to write
#                         otherMails of users who hold admin roles (Authorization_RequestDenied otherwise)
#   --dry-run             print the az commands (lookups and writes) instead of running them
#
# Always granted: User.Read.All (read users, users/delta) and User-Mail.ReadWrite.All (otherMails).
# Sources: https://learn.microsoft.com/graph/api/user-update (permissions, sensitive properties),
# https://learn.microsoft.com/graph/api/authenticationmethodspolicy-get (Policy.Read.All),
# https://learn.microsoft.com/graph/api/authentication-post-emailmethods (UserAuthenticationMethod.ReadWrite.All),
# https://learn.microsoft.com/graph/api/serviceprincipal-post-approleassignments,
# https://learn.microsoft.com/graph/api/rbacapplication-post-roleassignments,
# https://learn.microsoft.com/entra/identity/role-based-access-control/permissions-reference
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

GRAPH_APP_ID="00000003-0000-0000-c000-000000000000"
# Privileged Authentication Administrator (built-in role template id, the same in every tenant).
PRIVILEGED_AUTH_ADMIN_ROLE="7be44c8a-adaf-4e2a-84d6-ab2649e08a13"
GRAPH="https://graph.microsoft.com/v1.0"

PRINCIPAL=""
RG=""
PREFIX=""
PERMISSIONS=(User.Read.All User-Mail.ReadWrite.All)
PRIVILEGED=0

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}" >&2; }
need() { [[ $# -ge 2 && -n "$2" ]] || die "$1 needs a value"; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    --principal-id) need "$@"; PRINCIPAL="$2"; shift 2 ;;
    --resource-group | -g) need "$@"; RG="$2"; shift 2 ;;
    --name | -n) need "$@"; PREFIX="$2"; shift 2 ;;
    --usage-location) PERMISSIONS+=(User.ReadWrite.All); shift ;;
    --lcw-resume) PERMISSIONS+=(LifecycleWorkflows.ReadWrite.All); shift ;;
    --doctor) PERMISSIONS+=(Policy.Read.All GroupMember.Read.All); shift ;;
    --email-method) PERMISSIONS+=(UserAuthenticationMethod.ReadWrite.All); shift ;;
    --privileged-admins) PRIVILEGED=1; shift ;;
    --dry-run) DRY_RUN=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage; die "unknown argument: $1" ;;
  esac
done

DONE_GRANT="granted"
[[ "$DRY_RUN" == 1 ]] && DONE_GRANT="would be granted (dry run)"
require_python
require_az_login
if [[ -z "$PRINCIPAL" ]]; then
  [[ -n "$RG" && -n "$PREFIX" ]] || { usage; die "give --principal-id, or --resource-group and --name"; }
  PRINCIPAL="$(az_run deployment group show --resource-group "$RG" --name "entra-enrich-$PREFIX" \
    --query properties.outputs.identityPrincipalId.value --output tsv)" ||
    die "no deployment entra-enrich-$PREFIX in $RG: run infra/deploy.sh first, or pass --principal-id"
  [[ "$DRY_RUN" == 1 ]] && PRINCIPAL="<identityPrincipalId>"
fi
[[ -n "$PRINCIPAL" ]] || die "empty principal id"

GRAPH_SP="$(az_run ad sp show --id "$GRAPH_APP_ID" --query id --output tsv)" || die "cannot read the Microsoft Graph service principal"
[[ "$DRY_RUN" == 1 ]] && GRAPH_SP="<graph service principal id>"

for perm in "${PERMISSIONS[@]}"; do
  ROLE_ID="$(az_run ad sp show --id "$GRAPH_APP_ID" \
    --query "appRoles[?value=='$perm' && contains(allowedMemberTypes, 'Application')].id | [0]" --output tsv)" ||
    die "cannot read Graph's app roles"
  [[ "$DRY_RUN" == 1 ]] && ROLE_ID="<id of $perm>"
  [[ -n "$ROLE_ID" ]] || die "Microsoft Graph has no application permission named $perm"
  EXISTING="$(az_run rest --method GET --uri "$GRAPH/servicePrincipals/$PRINCIPAL/appRoleAssignments" \
    --query "length(value[?appRoleId=='$ROLE_ID' && resourceId=='$GRAPH_SP'])" --output tsv)" || die "cannot list the identity's app roles"
  if [[ "${EXISTING:-0}" != 0 && "$DRY_RUN" != 1 ]]; then
    log "$perm: already granted"
    continue
  fi
  az_run rest --method POST --uri "$GRAPH/servicePrincipals/$PRINCIPAL/appRoleAssignments" \
    --headers "Content-Type=application/json" \
    --body "{\"principalId\":\"$PRINCIPAL\",\"resourceId\":\"$GRAPH_SP\",\"appRoleId\":\"$ROLE_ID\"}" >/dev/null ||
    die "granting $perm failed (you need Privileged Role Administrator or Global Administrator)"
  log "$perm: $DONE_GRANT"
done

if [[ "$PRIVILEGED" == 1 ]]; then
  EXISTING="$(az_run rest --method GET \
    --uri "$GRAPH/roleManagement/directory/roleAssignments" \
    --uri-parameters "\$filter=principalId eq '$PRINCIPAL' and roleDefinitionId eq '$PRIVILEGED_AUTH_ADMIN_ROLE'" \
    --query "length(value)" --output tsv)" || die "cannot list directory role assignments"
  if [[ "${EXISTING:-0}" != 0 && "$DRY_RUN" != 1 ]]; then
    log "Privileged Authentication Administrator: already assigned"
  else
    az_run rest --method POST --uri "$GRAPH/roleManagement/directory/roleAssignments" \
      --headers "Content-Type=application/json" \
      --body "{\"principalId\":\"$PRINCIPAL\",\"roleDefinitionId\":\"$PRIVILEGED_AUTH_ADMIN_ROLE\",\"directoryScopeId\":\"/\"}" >/dev/null ||
      die "assigning Privileged Authentication Administrator failed (you need Privileged Role Administrator)"
    log "Privileged Authentication Administrator: $DONE_GRANT"
  fi
fi
log "done. Tokens cached by the running app keep their old roles for up to 24 h: restart the function app (az functionapp restart) to apply now."
