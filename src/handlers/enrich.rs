//! Enrich one user: read, scope, match, validate, diff, plan, write. Used by the `enrich` command, by
//! new-hire-watch for each changed user, and by lcw-joiner for the workflow's subject.

use entra_core::{plan_user, Outcome, SourceLookup, UserRecord};
use entra_graph::GraphError;

use super::apply::{apply_decision, UserResult};
use super::audit::AuditLog;
use super::context::HrSource;
use super::EnrichContext;

/// Which user to enrich.
#[derive(Debug, Clone)]
pub enum UserRef {
    /// Entra object id (or userPrincipalName).
    Id(String),
    /// HR `employeeId`: must match exactly one in-scope user.
    EmployeeId(String),
}

/// Why a single-user enrichment could not even be planned.
#[derive(Debug, thiserror::Error)]
pub enum EnrichError {
    #[error("no user with that id exists in the directory")]
    NotFound,
    #[error("no user has employeeId {0}")]
    NoEmployee(String),
    #[error("reading the user from Graph failed: {0}")]
    Graph(#[from] GraphError),
    #[error("Graph returned a user without an id")]
    Malformed,
}

impl EnrichError {
    /// True when trying again later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, EnrichError::Graph(e) if e.is_transient())
    }
}

/// Reads, plans and (unless dry-run) writes one user.
pub async fn enrich_user(
    ctx: &EnrichContext,
    audit: &AuditLog,
    target: &UserRef,
) -> Result<UserResult, EnrichError> {
    let select = ctx.select();
    let select: Vec<&str> = select.iter().map(String::as_str).collect();
    let user = match target {
        UserRef::Id(id) => {
            let json = ctx
                .graph
                .get_user(id, &select)
                .await?
                .ok_or(EnrichError::NotFound)?;
            UserRecord::from_json(json).map_err(|_| EnrichError::Malformed)?
        }
        UserRef::EmployeeId(eid) => {
            let matches = ctx.graph.find_users_by_employee_id(eid, &select).await?;
            let mut users: Vec<UserRecord> = matches
                .into_iter()
                .filter_map(|j| UserRecord::from_json(j).ok())
                .collect();
            if users.is_empty() {
                return Err(EnrichError::NoEmployee(eid.clone()));
            }
            let in_scope = users.iter().filter(|u| ctx.policy.scope.matches(u)).count();
            if in_scope > 1 {
                // Ambiguous: refuse, and say so for the first of them.
                let first = users.remove(0);
                return Ok(UserResult::without_write(
                    &first,
                    Outcome::DuplicateTargetEntries,
                    Vec::new(),
                ));
            }
            let pos = users
                .iter()
                .position(|u| ctx.policy.scope.matches(u))
                .unwrap_or(0);
            users.swap_remove(pos)
        }
    };
    enrich_record(ctx, audit, user).await
}

/// Plans and applies an already-read user (new-hire-watch reads users from delta pages).
pub async fn enrich_record(
    ctx: &EnrichContext,
    audit: &AuditLog,
    user: UserRecord,
) -> Result<UserResult, EnrichError> {
    let duplicate_target = if ctx.policy.scope.matches(&user) {
        is_duplicate_target(ctx, &user).await?
    } else {
        false
    };
    let values;
    let lookup = match &ctx.hr {
        HrSource::Directory => {
            values = ctx.sources.values_from_user(&user);
            SourceLookup::Found(&values)
        }
        HrSource::Index(index) => match user.employee_id() {
            Some(eid) => index.lookup(eid),
            None => SourceLookup::NotFound,
        },
    };
    let decision = plan_user(&ctx.policy, &user, lookup, duplicate_target);
    Ok(apply_decision(ctx, audit, &user, decision).await)
}

/// True when another in-scope user shares this user's `employeeId` (an ambiguous match we refuse).
async fn is_duplicate_target(ctx: &EnrichContext, user: &UserRecord) -> Result<bool, GraphError> {
    let Some(eid) = user.employee_id() else {
        return Ok(false);
    };
    let select = ctx.select();
    let select: Vec<&str> = select.iter().map(String::as_str).collect();
    let others = ctx.graph.find_users_by_employee_id(eid, &select).await?;
    let in_scope_others = others
        .into_iter()
        .filter_map(|j| UserRecord::from_json(j).ok())
        .filter(|u| u.id() != user.id() && ctx.policy.scope.matches(u))
        .count();
    Ok(in_scope_others > 0)
}
