//! Enrich one user: claim, read, scope, match, validate, diff, plan, write, release. Used by the
//! `enrich` command, by new-hire-watch for each changed user, and by lcw-joiner for the workflow's
//! subject.
//!
//! The write is based on a read made *after* the claim ([`super::claim`]), so two handlers reaching
//! the same user at the same moment write it once: the second finds the claim taken (and leaves the
//! user, or waits briefly), or reads the first one's write and plans `NoChangeRequired`.

use std::sync::Arc;
use std::time::Duration;

use entra_core::{plan_user_among, AddressBook, Decision, Outcome, SourceLookup, UserRecord};
use entra_graph::GraphError;

use super::apply::{apply_decision, UserResult};
use super::audit::AuditLog;
use super::claim::{address_claim_key, user_claim_key, ClaimGuard, Claimed, Claims};
use super::context::HrSource;
use super::writeback::with_writeback;
use super::EnrichContext;

/// How long a handler waits for another one writing the same new alternate email to another user.
const ADDRESS_WAIT: Duration = Duration::from_secs(5);

/// Which user to enrich.
#[derive(Debug, Clone)]
pub enum UserRef {
    /// Entra object id (or userPrincipalName).
    Id(String),
    /// HR `employeeId`: must match exactly one in-scope user.
    EmployeeId(String),
}

/// What to do when another handler holds the user's claim.
#[derive(Debug, Clone, Copy)]
pub enum WhenBusy {
    /// Leave the user to the holder at once (the watch and the backfill).
    Leave,
    /// Poll for up to this long, then leave it (lcw-joiner, which answers 503 then).
    Wait(Duration),
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
    #[error("state store (claims): {0}")]
    State(#[from] entra_state::StateError),
    #[error("reading Workday failed: {0}")]
    Workday(#[from] entra_workday::WorkdayError),
}

impl EnrichError {
    /// True when trying again later may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            EnrichError::Graph(e) => e.is_transient(),
            EnrichError::State(_) => true,
            EnrichError::Workday(e) => e.is_transient(),
            _ => false,
        }
    }
}

/// Claims, reads, plans and (unless dry-run) writes one user.
pub async fn enrich_user(
    ctx: &EnrichContext,
    audit: &AuditLog,
    claims: &Claims,
    target: &UserRef,
    when_busy: WhenBusy,
) -> Result<UserResult, EnrichError> {
    match target {
        // An object id: claim first, then read once.
        UserRef::Id(id) if is_object_id(id) => {
            enrich_claimed(ctx, audit, claims, id, None, when_busy).await
        }
        // A UPN or an employeeId: find the object id first.
        _ => match resolve(ctx, target).await? {
            Resolved::User(user) => {
                let id = user.id().to_string();
                enrich_claimed(ctx, audit, claims, &id, Some(user), when_busy).await
            }
            Resolved::Refused(result) => Ok(result),
        },
    }
}

/// Enriches the user `id`. `prefetched` is a record already read (a delta page, a lookup): when its
/// plan writes nothing, the user is settled without a claim; otherwise the user is claimed and read
/// again, and the write is planned from that read.
pub async fn enrich_claimed(
    ctx: &EnrichContext,
    audit: &AuditLog,
    claims: &Claims,
    id: &str,
    prefetched: Option<UserRecord>,
    when_busy: WhenBusy,
) -> Result<UserResult, EnrichError> {
    if let Some(user) = prefetched {
        // No Graph call here: the duplicate check only ever turns a write into a refusal, and the
        // claimed re-read below makes it.
        let ctx = &with_hr_of(ctx, &user).await?;
        let preview = plan_with(ctx, &user, false, &AddressBook::new());
        // A plan that may write the email method is made again under the claim, like a PATCH; so
        // is a writeback, which needs the whole user (a delta record may be partial).
        if preview.patch.is_none() && preview.sspr_email.is_none() && ctx.writeback.is_none() {
            return Ok(apply_decision(ctx, audit, &user, preview).await);
        }
    }
    if ctx.dry_run {
        // Nothing is written, so nothing is claimed.
        let user = read_user(ctx, id).await?;
        let ctx = &with_hr_of(ctx, &user).await?;
        let decision = plan_record(ctx, &user).await?;
        let result = apply_decision(ctx, audit, &user, decision).await;
        return Ok(with_writeback(ctx, audit, claims, &user, result).await);
    }
    let guard = match claim_user(claims, id, when_busy).await? {
        Ok(guard) => guard,
        Err(handler) => {
            return Ok(UserResult::for_id(
                id,
                Outcome::ClaimedElsewhere { handler },
            ))
        }
    };
    let result = async {
        let user = read_user(ctx, id).await?;
        let ctx = &with_hr_of(ctx, &user).await?;
        // A plan that gives a new alternate email is made (with its Graph checks) under the
        // address's claim; the preview, with no Graph call, tells which plans those are.
        let preview = plan_with(ctx, &user, false, &AddressBook::new());
        let result = match new_alternate_email(&preview, &user) {
            Some(address) => {
                write_address_claimed(ctx, audit, claims, &user, &address, when_busy).await?
            }
            None => {
                let decision = plan_record(ctx, &user).await?;
                apply_decision(ctx, audit, &user, decision).await
            }
        };
        Ok::<_, EnrichError>((result, user))
    }
    .await;
    guard.release().await;
    // Workday has a claim of its own: the user's is not held while Workday answers.
    let (result, user) = result?;
    Ok(with_writeback(ctx, audit, claims, &user, result).await)
}

/// Writes a user whose plan gives a new alternate email under the address's claim too, planned again
/// once the claim is held: whoever wrote the address before has finished, and Graph now says so.
async fn write_address_claimed(
    ctx: &EnrichContext,
    audit: &AuditLog,
    claims: &Claims,
    user: &UserRecord,
    address: &str,
    when_busy: WhenBusy,
) -> Result<UserResult, EnrichError> {
    let key = address_claim_key(address);
    // The holder is writing another user, who will not write this one: wait for it even where a busy
    // user is left at once (the watch), or this user would miss its round.
    let wait = match when_busy {
        WhenBusy::Wait(d) => WhenBusy::Wait(d.max(ADDRESS_WAIT)),
        WhenBusy::Leave => WhenBusy::Wait(ADDRESS_WAIT),
    };
    let guard = match claim_key(&claims.scoped(user.id()), &key, wait).await? {
        Ok(guard) => guard,
        Err(handler) => {
            return Ok(UserResult::for_id(
                user.id(),
                Outcome::ClaimedElsewhere { handler },
            ))
        }
    };
    let result = async {
        let decision = plan_record(ctx, user).await?;
        Ok(apply_decision(ctx, audit, user, decision).await)
    }
    .await;
    guard.release().await;
    result
}

/// Takes the user's claim, waiting as `when_busy` says; `Err(holder)` when it stays taken.
pub async fn claim_user(
    claims: &Claims,
    id: &str,
    when_busy: WhenBusy,
) -> Result<Result<ClaimGuard, String>, EnrichError> {
    claim_key(claims, &user_claim_key(id), when_busy).await
}

/// Takes the claim `key`, waiting as `when_busy` says; `Err(holder)` when it stays taken.
async fn claim_key(
    claims: &Claims,
    key: &str,
    when_busy: WhenBusy,
) -> Result<Result<ClaimGuard, String>, EnrichError> {
    let give_up = match when_busy {
        WhenBusy::Leave => tokio::time::Instant::now(),
        WhenBusy::Wait(d) => tokio::time::Instant::now() + d,
    };
    loop {
        match claims.acquire(key, None).await? {
            Claimed::Held(guard) => return Ok(Ok(guard)),
            Claimed::Busy { handler, .. } | Claimed::Stale { handler } => {
                let pause = Duration::from_millis(200);
                if tokio::time::Instant::now() + pause > give_up {
                    tracing::info!(claim = %key, holder = %handler, "another handler holds this claim; left to it");
                    return Ok(Err(handler));
                }
                tokio::time::sleep(pause).await;
            }
        }
    }
}

/// `ctx` with the user's HR records read, for a live source (Workday): one read per enrichment,
/// which every plan of it then uses. Other sources are returned as they are.
pub async fn with_hr_of(
    ctx: &EnrichContext,
    user: &UserRecord,
) -> Result<EnrichContext, EnrichError> {
    let HrSource::Workday(workday) = &ctx.hr else {
        return Ok(ctx.clone());
    };
    let mut live = ctx.clone();
    live.hr = match user.employee_id() {
        // Out of scope or without an employeeId, a user is never written: Workday is not asked.
        Some(eid) if ctx.policy.scope.matches(user) => {
            HrSource::Index(workday.lookup(ctx.state.as_ref(), eid).await?)
        }
        _ => HrSource::Index(Arc::new(entra_core::HrIndex::new())),
    };
    Ok(live)
}

/// Plans an already-read user (scope, duplicate check, source lookup, diff) without writing. With a
/// live source, `ctx` must come from [`with_hr_of`].
pub async fn plan_record(ctx: &EnrichContext, user: &UserRecord) -> Result<Decision, GraphError> {
    let duplicate_target = if ctx.policy.scope.matches(user) {
        is_duplicate_target(ctx, user).await?
    } else {
        false
    };
    let decision = plan_with(ctx, user, duplicate_target, &AddressBook::new());
    // The new alternate email must not be anyone else's address: ask Graph who holds it.
    let Some(address) = new_alternate_email(&decision, user) else {
        return Ok(decision);
    };
    let mut book = AddressBook::new();
    for holder in ctx.graph.find_address_holders(&address).await? {
        if let Ok(holder) = UserRecord::from_json(holder) {
            book.insert_user(&holder);
        }
    }
    Ok(plan_with(ctx, user, duplicate_target, &book))
}

/// The address a decision adds to `otherMails`, if it adds one.
fn new_alternate_email(decision: &Decision, user: &UserRecord) -> Option<String> {
    let current = user.other_mails();
    decision
        .patch
        .as_ref()?
        .other_mails
        .as_ref()?
        .as_slice()
        .iter()
        .find(|v| !current.iter().any(|c| v.eq_ignore_case(c)))
        .map(|v| v.as_str().to_string())
}

fn plan_with(
    ctx: &EnrichContext,
    user: &UserRecord,
    duplicate_target: bool,
    book: &AddressBook,
) -> Decision {
    let values;
    let one;
    let lookup = match &ctx.hr {
        HrSource::Directory => {
            values = ctx.sources.values_from_user(user);
            SourceLookup::Found(&values)
        }
        HrSource::Index(index) => match user.employee_id() {
            Some(eid) => index.lookup(eid),
            None => SourceLookup::NotFound,
        },
        HrSource::Workday(_) => {
            // Callers read the user's Workday records first (with_hr_of); planning without them
            // would only ever find nothing, so say so loudly instead of writing nothing quietly.
            tracing::error!("a Workday plan was made without its Workday read; nothing is written");
            SourceLookup::NotFound
        }
        HrSource::File(file) => match user.employee_id().and_then(entra_core::employee_id_key) {
            Some(key) => match file.read(&|k| k == key) {
                Ok(read) => {
                    one = read.index;
                    one.lookup(&key)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "the HR file could not be read; nothing is written");
                    SourceLookup::NotFound
                }
            },
            None => SourceLookup::NotFound,
        },
    };
    plan_user_among(&ctx.policy, user, lookup, duplicate_target, book)
}

enum Resolved {
    User(UserRecord),
    /// Refused before any claim (an ambiguous employeeId).
    Refused(UserResult),
}

async fn resolve(ctx: &EnrichContext, target: &UserRef) -> Result<Resolved, EnrichError> {
    match target {
        UserRef::Id(id) => Ok(Resolved::User(read_user(ctx, id).await?)),
        UserRef::EmployeeId(eid) => {
            let select = ctx.user_select();
            let select: Vec<&str> = select.iter().map(String::as_str).collect();
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
                return Ok(Resolved::Refused(UserResult::without_write(
                    &first,
                    Outcome::DuplicateTargetEntries,
                    Vec::new(),
                )));
            }
            let pos = users
                .iter()
                .position(|u| ctx.policy.scope.matches(u))
                .unwrap_or(0);
            Ok(Resolved::User(users.swap_remove(pos)))
        }
    }
}

pub async fn read_user(ctx: &EnrichContext, id: &str) -> Result<UserRecord, EnrichError> {
    let select = ctx.user_select();
    let select: Vec<&str> = select.iter().map(String::as_str).collect();
    let json = ctx
        .graph
        .get_user(id, &select)
        .await?
        .ok_or(EnrichError::NotFound)?;
    UserRecord::from_json(json).map_err(|_| EnrichError::Malformed)
}

/// An Entra object id: a GUID (which is also a valid claim key). UPNs are resolved first.
fn is_object_id(id: &str) -> bool {
    uuid::Uuid::parse_str(id).is_ok()
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
