//! The email authentication method (`/users/{id}/authentication/emailMethods`): the "Authentication
//! email" of self-service password reset, one per user, always with the id
//! `3ddfcfc8-9383-446f-83cc-3ab9be4be18f`.
//!
//! - List: <https://learn.microsoft.com/graph/api/authentication-list-emailmethods> ("only returns a
//!   single object … as only one email method can be set on users").
//! - Create: <https://learn.microsoft.com/graph/api/authentication-post-emailmethods> (`201`, body
//!   `{"emailAddress"}`; application permission `UserAuthenticationMethod.ReadWrite.All`).
//! - Get, update (`204`), delete (`204`):
//!   <https://learn.microsoft.com/graph/api/emailauthenticationmethod-get>,
//!   <https://learn.microsoft.com/graph/api/emailauthenticationmethod-update>,
//!   <https://learn.microsoft.com/graph/api/emailauthenticationmethod-delete>.
//!
//! NOT DOCUMENTED, and chosen here: the answer to a `POST` when a method exists (400 `invalidRequest`);
//! an app-only write on a privileged user without a privileged role (403 `Authorization_RequestDenied`,
//! as for the sensitive properties of `PATCH /users`).

use http::{Method, StatusCode};
use serde_json::{json, Value};

use crate::http::{SandboxRequest, SandboxResponse};
use crate::state::{graph_error, refuse_without_role, Ctx, State};

/// The fixed id of every user's email authentication method.
pub const EMAIL_METHOD_ID: &str = "3ddfcfc8-9383-446f-83cc-3ab9be4be18f";

const READ_ROLES: [&str; 4] = [
    "UserAuthenticationMethod.Read.All",
    "UserAuthenticationMethod.ReadWrite.All",
    "UserAuthMethod-Email.Read.All",
    "UserAuthMethod-Email.ReadWrite.All",
];
const WRITE_ROLES: [&str; 2] = [
    "UserAuthenticationMethod.ReadWrite.All",
    "UserAuthMethod-Email.ReadWrite.All",
];

fn denied(ctx: &Ctx) -> SandboxResponse {
    graph_error(
        StatusCode::FORBIDDEN,
        "Authorization_RequestDenied",
        "Insufficient privileges to complete the operation.",
        ctx,
    )
}

fn method_json(address: &str) -> Value {
    json!({"id": EMAIL_METHOD_ID, "emailAddress": address})
}

/// Routes `/users/{key}/authentication/emailMethods[/{id}]`; `method_id` is the last segment, if any.
pub(crate) fn route(
    state: &State,
    req: &SandboxRequest,
    ctx: &Ctx,
    key: &str,
    method_id: Option<&str>,
) -> SandboxResponse {
    let write = req.method != Method::GET;
    let allowed = if write {
        &WRITE_ROLES[..]
    } else {
        &READ_ROLES[..]
    };
    if let Some(denied) = refuse_without_role(ctx, allowed) {
        return denied;
    }
    let mut g = state.lock();
    let Some(id) = g.dir.resolve_id(key) else {
        return crate::graph::not_found(key, ctx);
    };
    if write && g.dir.privileged.contains(&id) && !g.app_has_privileged_role {
        return denied(ctx);
    }
    let current = g.email_methods.get(&id).cloned();
    let wrong_id = method_id.is_some_and(|m| !m.eq_ignore_ascii_case(EMAIL_METHOD_ID));
    match (&req.method, method_id) {
        (&Method::GET, None) => {
            let value: Vec<Value> = current.iter().map(|a| method_json(a)).collect();
            let context = format!(
                "{}/v1.0/$metadata#users('{id}')/authentication/emailMethods",
                state.base_url
            );
            SandboxResponse::json(
                StatusCode::OK,
                &json!({"@odata.context": context, "value": value}),
            )
        }
        (&Method::POST, None) => {
            if current.is_some() {
                return bad(
                    ctx,
                    "An email authentication method already exists for this user.",
                );
            }
            let Some(address) = address_from(req) else {
                return bad(
                    ctx,
                    "emailAddress is missing or is not a valid email address.",
                );
            };
            g.email_methods.insert(id, address.clone());
            g.counters.writes += 1;
            SandboxResponse::json(StatusCode::CREATED, &method_json(&address))
        }
        (_, Some(_)) if wrong_id || current.is_none() => {
            crate::graph::not_found(method_id.unwrap_or_default(), ctx)
        }
        (&Method::GET, Some(_)) => {
            SandboxResponse::json(StatusCode::OK, &method_json(&current.unwrap_or_default()))
        }
        (&Method::PATCH, Some(_)) => {
            let Some(address) = address_from(req) else {
                return bad(
                    ctx,
                    "emailAddress is missing or is not a valid email address.",
                );
            };
            g.email_methods.insert(id, address);
            g.counters.writes += 1;
            SandboxResponse::empty(StatusCode::NO_CONTENT)
        }
        (&Method::DELETE, Some(_)) => {
            g.email_methods.remove(&id);
            g.counters.writes += 1;
            SandboxResponse::empty(StatusCode::NO_CONTENT)
        }
        _ => graph_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "Request_BadRequest",
            "The requested method is not supported on this resource.",
            ctx,
        ),
    }
}

fn bad(ctx: &Ctx, message: &str) -> SandboxResponse {
    graph_error(StatusCode::BAD_REQUEST, "invalidRequest", message, ctx)
}

/// The body's `emailAddress`, when it looks like one (Graph validates it; the sandbox checks
/// the shape only).
fn address_from(req: &SandboxRequest) -> Option<String> {
    let body: Value = serde_json::from_slice(&req.body).ok()?;
    let address = body["emailAddress"].as_str()?.trim();
    let (local, domain) = address.split_once('@')?;
    (!local.is_empty() && domain.contains('.') && address.is_ascii() && address.len() <= 250)
        .then(|| address.to_string())
}
