//! Microsoft Graph v1.0 routes: users (get, list, delta, update, create, delete), `$batch`, and
//! the Lifecycle Workflows `resume` action.

// Route helpers return ready Graph error responses as their `Err`.
#![allow(clippy::result_large_err)]

use std::time::{Duration, Instant};

use http::{Method, StatusCode};
use serde_json::{json, Map, Value};

use crate::filter::{self, Expr, FilterError};
use crate::http::{SandboxRequest, SandboxResponse};
use crate::state::{graph_error, json_bytes, set_header, Ctx, DeltaCursor, Inner, State};
use crate::store::StoredUser;
use crate::tenant::is_iso_alpha2;

/// Properties returned when no `$select` is given
/// (https://learn.microsoft.com/graph/api/user-list#optional-query-parameters).
pub const DEFAULT_PROPERTIES: &[&str] = &[
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
    "id",
];

/// Properties of `microsoft.graph.user` the sandbox knows (https://learn.microsoft.com/graph/api/resources/user).
pub const KNOWN_PROPERTIES: &[&str] = &[
    "id",
    "accountEnabled",
    "ageGroup",
    "businessPhones",
    "city",
    "companyName",
    "consentProvidedForMinor",
    "country",
    "createdDateTime",
    "creationType",
    "deletedDateTime",
    "department",
    "displayName",
    "employeeHireDate",
    "employeeLeaveDateTime",
    "employeeId",
    "employeeOrgData",
    "employeeType",
    "externalUserState",
    "faxNumber",
    "givenName",
    "identities",
    "imAddresses",
    "isResourceAccount",
    "jobTitle",
    "lastPasswordChangeDateTime",
    "legalAgeGroupClassification",
    "mail",
    "mailNickname",
    "mobilePhone",
    "officeLocation",
    "onPremisesDistinguishedName",
    "onPremisesDomainName",
    "onPremisesExtensionAttributes",
    "onPremisesImmutableId",
    "onPremisesLastSyncDateTime",
    "onPremisesSamAccountName",
    "onPremisesSecurityIdentifier",
    "onPremisesSyncEnabled",
    "onPremisesUserPrincipalName",
    "otherMails",
    "passwordPolicies",
    "passwordProfile",
    "postalCode",
    "preferredDataLocation",
    "preferredLanguage",
    "proxyAddresses",
    "securityIdentifier",
    "showInAddressList",
    "signInSessionsValidFromDateTime",
    "state",
    "streetAddress",
    "surname",
    "usageLocation",
    "userPrincipalName",
    "userType",
];

/// Read-only properties (PATCH → 400).
pub const READ_ONLY: &[&str] = &[
    "id",
    "createdDateTime",
    "creationType",
    "deletedDateTime",
    "externalUserState",
    "imAddresses",
    "isResourceAccount",
    "lastPasswordChangeDateTime",
    "legalAgeGroupClassification",
    "onPremisesDistinguishedName",
    "onPremisesDomainName",
    "onPremisesLastSyncDateTime",
    "onPremisesSamAccountName",
    "onPremisesSecurityIdentifier",
    "onPremisesSyncEnabled",
    "onPremisesUserPrincipalName",
    "proxyAddresses",
    "securityIdentifier",
    "signInSessionsValidFromDateTime",
];

/// Properties mastered on-premises for synced users (`onPremisesSyncEnabled: true`): PATCH answers
/// "Unable to update the specified properties for on-premises mastered Directory Sync objects…"
/// (https://learn.microsoft.com/graph/api/user-update — "For synced users, the ability to update
/// certain properties is additionally determined by the source of authority"; error text from
/// https://github.com/microsoftgraph/microsoft-graph-docs/issues/7301). `otherMails` and
/// `usageLocation` are cloud-writable.
pub const ON_PREM_MASTERED: &[&str] = &[
    "accountEnabled",
    "businessPhones",
    "city",
    "companyName",
    "country",
    "department",
    "displayName",
    "employeeHireDate",
    "employeeId",
    "employeeOrgData",
    "employeeType",
    "faxNumber",
    "givenName",
    "jobTitle",
    "mail",
    "mailNickname",
    "mobilePhone",
    "officeLocation",
    "onPremisesExtensionAttributes",
    "onPremisesImmutableId",
    "postalCode",
    "state",
    "streetAddress",
    "surname",
    "userPrincipalName",
];

/// Sensitive properties: updating them on administrators needs a privileged directory role
/// (https://learn.microsoft.com/graph/api/resources/users#who-can-perform-sensitive-actions).
pub const SENSITIVE: &[&str] = &[
    "accountEnabled",
    "businessPhones",
    "mobilePhone",
    "onPremisesImmutableId",
    "otherMails",
    "passwordProfile",
    "userPrincipalName",
];

const MSG_ON_PREM: &str = "Unable to update the specified properties for on-premises mastered Directory Sync objects or objects currently undergoing migration.";
const MSG_DENIED: &str = "Insufficient privileges to complete the operation.";
const LCW_ROLE: &str = "LifecycleWorkflows.ReadWrite.All";

/// Case-insensitive query options (values percent-decoded).
pub(crate) struct Query {
    pub pairs: Vec<(String, String)>,
}

impl Query {
    pub(crate) fn parse(raw: &str) -> Self {
        Self {
            pairs: url::form_urlencoded::parse(raw.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        }
    }
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        let bare = name.trim_start_matches('$');
        self.pairs
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name) || k.eq_ignore_ascii_case(bare))
            .map(|(_, v)| v.as_str())
    }
    /// The query without the given options, re-encoded.
    pub(crate) fn without(&self, names: &[&str]) -> String {
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in &self.pairs {
            let kb = k.trim_start_matches('$');
            if !names
                .iter()
                .any(|n| n.trim_start_matches('$').eq_ignore_ascii_case(kb))
            {
                s.append_pair(k, v);
            }
        }
        s.finish()
    }
}

/// Routes a verified Graph request. `None` = reset the connection (only from `$batch`).
pub(crate) fn route(state: &State, req: &SandboxRequest, ctx: &mut Ctx) -> Option<SandboxResponse> {
    let (version, rest) = match req.path.strip_prefix("/v1.0") {
        Some(r) => ("v1.0", r),
        None => ("beta", req.path.strip_prefix("/beta").unwrap_or("")),
    };
    let segs: Vec<&str> = rest.trim_end_matches('/').split('/').skip(1).collect();
    let q = Query::parse(&req.query);
    let m = &req.method;
    match segs.as_slice() {
        ["$batch"] if m == Method::POST => crate::batch::handle(state, req, ctx, version),
        ["users"] if m == Method::GET => Some(throttled(state, ctx, list_cost(&q, 2), 0, |s| {
            list_users(s, &q, ctx)
        })),
        ["users"] if m == Method::POST => {
            Some(throttled(state, ctx, 1, 1, |s| create_user(s, req, ctx)))
        }
        ["users", "delta" | "delta()"] if m == Method::GET => {
            Some(throttled(state, ctx, list_cost(&q, 1), 0, |s| {
                delta(s, &q, ctx)
            }))
        }
        ["users", key] if m == Method::GET => {
            Some(throttled(state, ctx, list_cost(&q, 1), 0, |s| {
                get_user(s, key, &q, ctx)
            }))
        }
        ["users", key] if m == Method::PATCH => Some(throttled(state, ctx, 1, 1, |s| {
            patch_user(s, key, req, ctx)
        })),
        ["users", key] if m == Method::DELETE => {
            Some(throttled(state, ctx, 1, 1, |s| delete_user(s, key, ctx)))
        }
        ["users", key, "transitiveMemberOf"] if m == Method::GET => {
            Some(throttled(state, ctx, 1, 0, |s| {
                crate::groups::transitive_member_of(s, ctx, key)
            }))
        }
        ["users", key, "authentication", "emailMethods"] => {
            let writes = u32::from(m != Method::GET);
            Some(throttled(state, ctx, 1, writes, |s| {
                crate::email_methods::route(s, req, ctx, key, None)
            }))
        }
        ["users", key, "authentication", "emailMethods", id] => {
            let writes = u32::from(m != Method::GET);
            Some(throttled(state, ctx, 1, writes, |s| {
                crate::email_methods::route(s, req, ctx, key, Some(id))
            }))
        }
        ["policies", "authenticationMethodsPolicy"] if m == Method::GET => {
            Some(throttled(state, ctx, 1, 0, |s| crate::policy::get(s, ctx)))
        }
        ["identityGovernance", "lifecycleWorkflows", "workflows", wid, "tasks", tid, "taskProcessingResults", rid, action]
            if m == Method::POST
                && (*action == "resume"
                    || *action == "microsoft.graph.identityGovernance.resume") =>
        {
            Some(crate::lcw::resume(state, req, ctx, version, wid, tid, rid))
        }
        _ => {
            let seg = segs.first().copied().unwrap_or("");
            let code = if matches!(segs.first(), Some(&"users")) && segs.len() <= 2 {
                return Some(graph_error(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "Request_BadRequest",
                    "The requested method is not supported on this resource.",
                    ctx,
                ));
            } else {
                "BadRequest"
            };
            Some(graph_error(
                StatusCode::BAD_REQUEST,
                code,
                &format!("Resource not found for the segment '{seg}'."),
                ctx,
            ))
        }
    }
}

/// ResourceUnit cost (https://learn.microsoft.com/graph/throttling-limits#identity-and-access-service-limits):
/// base (2 for GET users list, 1 otherwise), `$select` −1, `$expand` +1, `$top` < 20 −1, minimum 1.
fn list_cost(q: &Query, base: i32) -> u32 {
    let mut c = base;
    if q.get("$select").is_some() {
        c -= 1;
    }
    if q.get("$expand").is_some() {
        c += 1;
    }
    if q.get("$top")
        .and_then(|t| t.parse::<i64>().ok())
        .is_some_and(|t| t < 20)
    {
        c -= 1;
    }
    c.max(1) as u32
}

/// Applies the identity quotas for the calling app, then runs `f`. Every response carries
/// `x-ms-resource-unit`; a rejection is a 429 with `Retry-After`, `x-ms-throttle-scope` and
/// `x-ms-throttle-information` (https://learn.microsoft.com/graph/throttling-limits).
fn throttled(
    state: &State,
    ctx: &Ctx,
    ru: u32,
    writes: u32,
    f: impl FnOnce(&State) -> SandboxResponse,
) -> SandboxResponse {
    let app = ctx
        .caller
        .as_ref()
        .map(|c| c.app_id.clone())
        .unwrap_or_default();
    let verdict = {
        let mut g = state.lock();
        let users = g.dir.len();
        g.throttle.admit(&app, users, ru, writes, Instant::now())
    };
    let mut resp = match verdict {
        Ok(()) => f(state),
        Err(t) => {
            let mut r = graph_error(
                StatusCode::TOO_MANY_REQUESTS,
                "TooManyRequests",
                "Too many requests. Retry after the time in the Retry-After header.",
                ctx,
            );
            set_header(
                &mut r,
                "retry-after",
                &crate::state::format_retry_after(t.retry_after.as_secs_f64()),
            );
            let scope = format!("{}/Limit/{}/{}", t.scope, app, state.identity.tenant_id());
            set_header(&mut r, "x-ms-throttle-scope", &scope);
            set_header(&mut r, "x-ms-throttle-information", t.information);
            state.lock().counters.throttled += 1;
            r
        }
    };
    set_header(&mut resp, "x-ms-resource-unit", &ru.to_string());
    resp
}

/// Parses and validates `$select` against the user type.
fn parse_select(q: &Query, ctx: &Ctx) -> Result<Option<Vec<String>>, SandboxResponse> {
    let Some(sel) = q.get("$select") else {
        return Ok(None);
    };
    let mut out = Vec::new();
    for p in sel.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let Some(known) = KNOWN_PROPERTIES.iter().find(|k| k.eq_ignore_ascii_case(p)) else {
            return Err(graph_error(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                &format!("Could not find a property named '{p}' on type 'microsoft.graph.user'."),
                ctx,
            ));
        };
        if !out.iter().any(|o: &String| o == known) {
            out.push((*known).to_string());
        }
    }
    Ok(Some(out))
}

pub(crate) fn project(
    props: &Map<String, Value>,
    select: Option<&[String]>,
    force_id: bool,
) -> Value {
    let mut m = Map::new();
    let mut put = |k: &str| {
        m.insert(k.to_string(), props.get(k).cloned().unwrap_or(Value::Null));
    };
    match select {
        Some(sel) => {
            if force_id && !sel.iter().any(|s| s == "id") {
                put("id");
            }
            for k in sel {
                put(k);
            }
        }
        None => {
            for k in DEFAULT_PROPERTIES {
                put(k);
            }
        }
    }
    Value::Object(m)
}

fn context_url(state: &State, select: Option<&[String]>, suffix: &str) -> String {
    match select {
        Some(sel) => format!(
            "{}/v1.0/$metadata#users({}){}",
            state.base_url,
            sel.join(","),
            suffix
        ),
        None => format!("{}/v1.0/$metadata#users{}", state.base_url, suffix),
    }
}

fn parse_filter(q: &Query, ctx: &Ctx, count: bool) -> Result<Option<Expr>, SandboxResponse> {
    let Some(f) = q.get("$filter") else {
        return Ok(None);
    };
    match filter::parse(f) {
        Ok(e) => {
            // Advanced queries need `ConsistencyLevel: eventual` and `$count=true`
            // (https://learn.microsoft.com/graph/aad-advanced-queries).
            if filter::is_advanced(&e) && !(ctx.consistency_eventual && count) {
                return Err(graph_error(StatusCode::BAD_REQUEST, "Request_UnsupportedQuery", "Unsupported Query.", ctx));
            }
            Ok(Some(e))
        }
        Err(FilterError::Syntax(msg)) => Err(graph_error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            &format!("Invalid filter clause: {msg}"),
            ctx,
        )),
        Err(FilterError::Unsupported(p)) => Err(graph_error(
            StatusCode::BAD_REQUEST,
            "Request_UnsupportedQuery",
            &format!("Unsupported or invalid query filter clause specified for property '{p}' of resource 'User'."),
            ctx,
        )),
    }
}

fn parse_top(q: &Query, ctx: &Ctx, default: usize) -> Result<usize, SandboxResponse> {
    match q.get("$top") {
        None => Ok(default),
        Some(t) => match t.parse::<i64>() {
            // $top is 1..=999 on users (https://learn.microsoft.com/graph/api/user-list).
            Ok(n) if (1..=999).contains(&n) => Ok(n as usize),
            _ => Err(graph_error(
                StatusCode::BAD_REQUEST,
                "Request_BadRequest",
                &format!(
                    "Invalid page size specified: '{t}'. Must be between 1 and 999 inclusive."
                ),
                ctx,
            )),
        },
    }
}

fn check_unsupported_options(q: &Query, ctx: &Ctx) -> Result<(), SandboxResponse> {
    for opt in ["$skip", "$orderby", "$search"] {
        if q.get(opt).is_some() {
            return Err(graph_error(
                StatusCode::BAD_REQUEST,
                "Request_UnsupportedQuery",
                &format!("The query option '{opt}' is not supported by entra-sandbox for users."),
                ctx,
            ));
        }
    }
    Ok(())
}

fn encode_skip(last_id: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("RFNwdAIAAQ:{last_id}"))
}

fn decode_skip(tok: &str) -> Option<String> {
    use base64::Engine;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(tok)
        .ok()?;
    let s = String::from_utf8(raw).ok()?;
    s.strip_prefix("RFNwdAIAAQ:").map(str::to_string)
}

/// `GET /users` (https://learn.microsoft.com/graph/api/user-list): default page 100, `$top` ≤ 999,
/// `@odata.nextLink` with an opaque `$skiptoken`, `@odata.count` with `$count=true`.
fn list_users(state: &State, q: &Query, ctx: &Ctx) -> SandboxResponse {
    let count = q
        .get("$count")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let r = (|| {
        check_unsupported_options(q, ctx)?;
        if count && !ctx.consistency_eventual {
            // $count needs ConsistencyLevel: eventual (https://learn.microsoft.com/graph/aad-advanced-queries).
            return Err(graph_error(
                StatusCode::BAD_REQUEST,
                "Request_BadRequest",
                "$count is not currently supported.",
                ctx,
            ));
        }
        let select = parse_select(q, ctx)?;
        let filter = parse_filter(q, ctx, count)?;
        let top = parse_top(q, ctx, 100)?;
        let after = match q.get("$skiptoken") {
            None => None,
            Some(t) => Some(decode_skip(t).ok_or_else(|| {
                graph_error(
                    StatusCode::BAD_REQUEST,
                    "Request_BadRequest",
                    "Invalid paging token.",
                    ctx,
                )
            })?),
        };
        Ok((select, filter, top, after))
    })();
    let (select, filter, top, after) = match r {
        Ok(x) => x,
        Err(e) => return e,
    };
    let g = state.lock();
    let users = g.dir.users();
    let start = after
        .as_deref()
        .map(|a| g.dir.position_after(a))
        .unwrap_or(0);
    let matches =
        |u: &crate::store::StoredUser| filter.as_ref().is_none_or(|f| filter::eval(f, &u.props));
    // The page is written straight into the response buffer (no intermediate `Value`s), so a
    // 999-user page costs one pass over the selected properties.
    let mut page: Vec<u8> = Vec::with_capacity(256 * top.min(users.len()).max(1));
    page.push(b'[');
    let mut n_page = 0usize;
    let mut last = None;
    let mut more = false;
    let mut i = start;
    while i < users.len() {
        let u = &users[i];
        if matches(u) {
            if n_page == top {
                more = true;
                break;
            }
            if n_page > 0 {
                page.push(b',');
            }
            write_projected(&mut page, &u.props, select.as_deref());
            n_page += 1;
            last = Some(u.id.as_str());
        }
        i += 1;
    }
    page.push(b']');
    let mut body: Vec<u8> = Vec::with_capacity(page.len() + 512);
    body.extend_from_slice(b"{\"@odata.context\":");
    write_json(
        &mut body,
        &Value::String(context_url(state, select.as_deref(), "")),
    );
    if count {
        let n = users.iter().filter(|u| matches(u)).count();
        body.extend_from_slice(format!(",\"@odata.count\":{n}").as_bytes());
    }
    if more {
        if let Some(last) = last {
            let rest = q.without(&["$skiptoken"]);
            let sep = if rest.is_empty() { "" } else { "&" };
            let link = format!(
                "{}/v1.0/users?{rest}{sep}$skiptoken={}",
                state.base_url,
                encode_skip(last)
            );
            body.extend_from_slice(b",\"@odata.nextLink\":");
            write_json(&mut body, &Value::String(link));
        }
    }
    drop(g);
    body.extend_from_slice(b",\"value\":");
    body.extend_from_slice(&page);
    body.push(b'}');
    json_bytes(StatusCode::OK, body)
}

fn write_json(buf: &mut Vec<u8>, v: &Value) {
    // Writing to a Vec cannot fail for a `Value`; fall back to null if it ever did.
    if serde_json::to_writer(&mut *buf, v).is_err() {
        buf.extend_from_slice(b"null");
    }
}

/// Writes the projection of `props` (as [`project`] builds it, without `@odata` members) as JSON.
fn write_projected(buf: &mut Vec<u8>, props: &Map<String, Value>, select: Option<&[String]>) {
    buf.push(b'{');
    let mut first = true;
    let mut put = |buf: &mut Vec<u8>, k: &str| {
        if !first {
            buf.push(b',');
        }
        first = false;
        if serde_json::to_writer(&mut *buf, k).is_err() {
            buf.extend_from_slice(b"\"\"");
        }
        buf.push(b':');
        match props.get(k) {
            Some(v) => write_json(buf, v),
            None => buf.extend_from_slice(b"null"),
        }
    };
    match select {
        Some(sel) => {
            for k in sel {
                put(buf, k);
            }
        }
        None => {
            for k in DEFAULT_PROPERTIES {
                put(buf, k);
            }
        }
    }
    buf.push(b'}');
}

pub(crate) fn not_found(key: &str, ctx: &Ctx) -> SandboxResponse {
    graph_error(
        StatusCode::NOT_FOUND,
        "Request_ResourceNotFound",
        &format!("Resource '{key}' does not exist or one of its queried reference-property objects are not present."),
        ctx,
    )
}

/// `GET /users/{id | userPrincipalName}` (https://learn.microsoft.com/graph/api/user-get).
fn get_user(state: &State, key: &str, q: &Query, ctx: &Ctx) -> SandboxResponse {
    let select = match parse_select(q, ctx) {
        Ok(s) => s,
        Err(e) => return e,
    };
    let g = state.lock();
    let Some(u) = g.dir.find(key) else {
        return not_found(key, ctx);
    };
    let mut v = project(&u.props, select.as_deref(), false);
    if let Value::Object(m) = &mut v {
        m.insert(
            "@odata.context".into(),
            Value::String(context_url(state, select.as_deref(), "/$entity")),
        );
    }
    SandboxResponse::json(StatusCode::OK, &v)
}

fn bad(ctx: &Ctx, code: &str, msg: &str) -> SandboxResponse {
    graph_error(StatusCode::BAD_REQUEST, code, msg, ctx)
}

fn invalid_value(prop: &str, ctx: &Ctx) -> SandboxResponse {
    bad(
        ctx,
        "Request_BadRequest",
        &format!("Invalid value specified for property '{prop}' of resource 'User'."),
    )
}

/// `PATCH /users/{id}` (https://learn.microsoft.com/graph/api/user-update) → 204.
fn patch_user(state: &State, key: &str, req: &SandboxRequest, ctx: &Ctx) -> SandboxResponse {
    state.lock().counters.patches += 1;
    let Some((id, synced, privileged)) = ({
        let g = state.lock();
        g.dir.find(key).map(|u| {
            (
                u.id.clone(),
                u.props.get("onPremisesSyncEnabled") == Some(&Value::Bool(true)),
                g.dir.privileged.contains(&u.id),
            )
        })
    }) else {
        return not_found(key, ctx);
    };
    let body: Map<String, Value> = match serde_json::from_slice::<Value>(&req.body) {
        Ok(Value::Object(m)) => m,
        _ => {
            return bad(
                ctx,
                "BadRequest",
                "Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format.",
            )
        }
    };
    for k in body.keys() {
        if k.starts_with("@odata.") {
            continue;
        }
        if !KNOWN_PROPERTIES.contains(&k.as_str()) {
            return bad(
                ctx,
                "Request_BadRequest",
                &format!(
                    "Property '{k}' does not exist as a declared property or extension property."
                ),
            );
        }
        if READ_ONLY.contains(&k.as_str()) {
            return bad(
                ctx,
                "Request_BadRequest",
                &format!("Property '{k}' is read-only and cannot be set."),
            );
        }
    }
    if synced && body.keys().any(|k| ON_PREM_MASTERED.contains(&k.as_str())) {
        return bad(ctx, "Request_BadRequest", MSG_ON_PREM);
    }
    if let Some(v) = body.get("otherMails") {
        // "Can store up to 250 values, each with a limit of 250 characters"; no accent characters
        // (https://learn.microsoft.com/graph/api/resources/user#properties).
        let Value::Array(items) = v else {
            return invalid_value("otherMails", ctx);
        };
        if items.len() > 250 {
            return invalid_value("otherMails", ctx);
        }
        for it in items {
            match it.as_str() {
                Some(s) if s.chars().count() <= 250 && s.is_ascii() && !s.is_empty() => {}
                _ => return invalid_value("otherMails", ctx),
            }
        }
    }
    if let Some(v) = body.get("usageLocation") {
        // "A two-letter country code (ISO standard 3166)"; not nullable.
        match v.as_str() {
            Some(s) if is_iso_alpha2(s) => {}
            _ => return invalid_value("usageLocation", ctx),
        }
    }
    if let Some(v) = body.get("employeeId") {
        if v.as_str().is_some_and(|s| s.chars().count() > 16) {
            return invalid_value("employeeId", ctx);
        }
    }
    let mut g = state.lock();
    if privileged
        && !g.app_has_privileged_role
        && body.keys().any(|k| SENSITIVE.contains(&k.as_str()))
    {
        return graph_error(
            StatusCode::FORBIDDEN,
            "Authorization_RequestDenied",
            MSG_DENIED,
            ctx,
        );
    }
    let changes: Map<String, Value> = body
        .into_iter()
        .filter(|(k, _)| !k.starts_with("@odata."))
        .collect();
    let changed = g.dir.apply(&id, &changes);
    g.counters.writes += 1;
    if !changed.is_empty() {
        g.counters.effective_patches += 1;
    }
    SandboxResponse::empty(StatusCode::NO_CONTENT)
}

/// `POST /users` (https://learn.microsoft.com/graph/api/user-post-users): recorded and answered.
fn create_user(state: &State, req: &SandboxRequest, ctx: &Ctx) -> SandboxResponse {
    state.lock().counters.creates += 1;
    let Ok(Value::Object(mut body)) = serde_json::from_slice::<Value>(&req.body) else {
        return bad(ctx, "BadRequest", "Unable to read JSON request payload.");
    };
    for required in [
        "accountEnabled",
        "displayName",
        "mailNickname",
        "passwordProfile",
        "userPrincipalName",
    ] {
        if !body.contains_key(required) {
            return bad(
                ctx,
                "Request_BadRequest",
                &format!("Property '{required}' is required when creating the entity."),
            );
        }
    }
    body.remove("passwordProfile");
    body.remove("id");
    let id = uuid::Uuid::new_v4().to_string();
    body.insert("id".into(), Value::String(id.clone()));
    body.insert("onPremisesSyncEnabled".into(), Value::Null);
    let mut g = state.lock();
    match g.dir.upsert(body) {
        Ok(_) => {
            g.counters.writes += 1;
            let u = g
                .dir
                .find(&id)
                .map(|u| project(&u.props, None, false))
                .unwrap_or(Value::Null);
            SandboxResponse::json(StatusCode::CREATED, &u)
        }
        Err(e) => bad(ctx, "Request_BadRequest", &e.to_string()),
    }
}

/// `DELETE /users/{id}` (https://learn.microsoft.com/graph/api/user-delete): soft delete (delta
/// reports `@removed: {"reason": "changed"}`).
fn delete_user(state: &State, key: &str, ctx: &Ctx) -> SandboxResponse {
    let mut g = state.lock();
    g.counters.deletes += 1;
    let Some(id) = g.dir.resolve_id(key) else {
        return not_found(key, ctx);
    };
    g.dir.remove(&id, false);
    g.counters.writes += 1;
    SandboxResponse::empty(StatusCode::NO_CONTENT)
}

/// Directory delta tokens are valid for 7 days (https://learn.microsoft.com/graph/delta-query-overview).
const DELTA_TOKEN_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);

/// `GET /users/delta` (https://learn.microsoft.com/graph/api/user-delta).
fn delta(state: &State, q: &Query, ctx: &Ctx) -> SandboxResponse {
    let token = q.get("$skiptoken").or_else(|| q.get("$deltatoken"));
    let is_latest = q
        .get("$deltatoken")
        .is_some_and(|t| t.eq_ignore_ascii_case("latest"));
    let mut g = state.lock();
    let cursor = match token {
        Some(_) if is_latest => return delta_latest(state, &mut g, q, ctx),
        Some(t) => delta_resume_cursor(state, &g, t, q, ctx),
        None => delta_first_cursor(&g, q, ctx),
    };
    let cursor = match cursor {
        Ok(c) => c,
        Err(e) => return e,
    };
    let page = delta_page(&g, &cursor);
    let body = delta_body(state, &mut g, &cursor, page);
    drop(g);
    json_bytes(
        StatusCode::OK,
        serde_json::to_vec(&body).unwrap_or_default(),
    )
}

/// `{base}/v1.0/users/delta?{param}={tok}`: a nextLink (`$skiptoken`) or deltaLink (`$deltatoken`).
fn delta_link(state: &State, param: &str, tok: &str) -> String {
    format!("{}/v1.0/users/delta?{param}={tok}", state.base_url)
}

/// `$deltatoken=latest`: an empty page whose deltaLink starts from the current state.
fn delta_latest(state: &State, g: &mut Inner, q: &Query, ctx: &Ctx) -> SandboxResponse {
    let select = match parse_select(q, ctx) {
        Ok(s) => s,
        Err(e) => return e,
    };
    let seq = g.dir.seq();
    let cur = DeltaCursor {
        since: seq,
        upto: seq,
        select: select.clone(),
        filter: None,
        after: None,
        top: 100,
    };
    let tok = state.new_token(g, cur);
    let body = json!({
        "@odata.context": context_url(state, select.as_deref(), ""),
        "@odata.deltaLink": delta_link(state, "$deltatoken", &tok),
        "value": [],
    });
    SandboxResponse::json(StatusCode::OK, &body)
}

/// The cursor behind a `$skiptoken` (next page) or `$deltatoken` (next round) issued earlier.
fn delta_resume_cursor(
    state: &State,
    g: &Inner,
    token: &str,
    q: &Query,
    ctx: &Ctx,
) -> Result<DeltaCursor, SandboxResponse> {
    let lifetime = DELTA_TOKEN_LIFETIME.div_f64(state.time_scale.max(f64::MIN_POSITIVE));
    match g.tokens.get(token) {
        None => {
            // Unknown token: 400 syncStateNotFound (delta-query-overview: "40X-series error with
            // error codes such as syncStateNotFound").
            Err(graph_error(
                StatusCode::BAD_REQUEST,
                "syncStateNotFound",
                "The sync state could not be found. Restart the synchronization with a new delta request.",
                ctx,
            ))
        }
        Some(e) if e.expired || e.issued.elapsed() > lifetime => {
            Err(delta_expired(state, &e.cursor, ctx))
        }
        Some(e) => {
            let mut c = e.cursor.clone();
            if q.get("$deltatoken").is_some() {
                // A new round from the deltaLink.
                c.since = c.upto;
                c.upto = g.dir.seq();
                c.after = None;
            }
            Ok(c)
        }
    }
}

/// Expired token: 410 Gone + Location to restart the full sync (delta-query-overview,
/// "synchronization reset"), code syncStateNotFound.
fn delta_expired(state: &State, cursor: &DeltaCursor, ctx: &Ctx) -> SandboxResponse {
    let sel = cursor
        .select
        .as_ref()
        .map(|s| format!("?$select={}", s.join(",")))
        .unwrap_or_default();
    let mut r = graph_error(
        StatusCode::GONE,
        "syncStateNotFound",
        "The sync state has expired. Restart the synchronization with a new delta request.",
        ctx,
    );
    set_header(
        &mut r,
        "location",
        &format!("{}/v1.0/users/delta{sel}", state.base_url),
    );
    r
}

/// The cursor of a first delta request (no token): a full sync up to the current state.
fn delta_first_cursor(g: &Inner, q: &Query, ctx: &Ctx) -> Result<DeltaCursor, SandboxResponse> {
    let select = parse_select(q, ctx)?;
    let filter = delta_filter(q, ctx)?;
    let top = parse_top(q, ctx, 100)?;
    Ok(DeltaCursor {
        since: 0,
        upto: g.dir.seq(),
        select,
        filter,
        after: None,
        top,
    })
}

/// `$filter` on users/delta: only `id eq` (or `or` of them) is supported.
fn delta_filter(q: &Query, ctx: &Ctx) -> Result<Option<Expr>, SandboxResponse> {
    if q.get("$filter").is_none() {
        return Ok(None);
    }
    let f = parse_filter(q, ctx, false)?;
    if f.as_ref().is_some_and(|f| !only_ids(f)) {
        return Err(bad(
            ctx,
            "Request_UnsupportedQuery",
            "Unsupported query filter for delta; only 'id eq' is supported.",
        ));
    }
    Ok(f)
}

/// Whether a filter is `id eq` or an `or` of them.
fn only_ids(e: &Expr) -> bool {
    match e {
        Expr::Or(a, b) => only_ids(a) && only_ids(b),
        Expr::Eq(p, _) => p == "id",
        _ => false,
    }
}

/// One page of delta results: the records, the id of the last user on it, and whether more follow.
struct DeltaPage {
    value: Vec<Value>,
    last: Option<String>,
    more: bool,
}

/// Collects up to `cursor.top` changed users after `cursor.after`; on the last page of a round
/// (not a full sync) the removals follow.
fn delta_page(g: &Inner, cursor: &DeltaCursor) -> DeltaPage {
    let start = cursor
        .after
        .as_deref()
        .map(|a| g.dir.position_after(a))
        .unwrap_or(0);
    let mut page = DeltaPage {
        value: Vec::new(),
        last: None,
        more: false,
    };
    for u in g.dir.users().iter().skip(start) {
        if delta_qualifies(cursor, u) {
            if page.value.len() == cursor.top {
                page.more = true;
                break;
            }
            page.value.push(delta_record(g, cursor, u));
            page.last = Some(u.id.clone());
        }
    }
    if !page.more && cursor.since > 0 {
        push_removed(g, cursor, &mut page.value);
    }
    page
}

/// One user's delta record. A user created in this round (or every user of a full round) comes
/// whole; an updated one comes as "their id with at least the properties that have been updated"
/// (<https://learn.microsoft.com/graph/delta-query-overview#resource-representation-in-the-delta-query-response>):
/// here exactly those, unless the sandbox was started with `full_delta_records`.
fn delta_record(g: &Inner, cursor: &DeltaCursor, u: &StoredUser) -> Value {
    let since = cursor.since;
    if g.full_delta_records || since == 0 || u.created_seq > since {
        return project(&u.props, cursor.select.as_deref(), true);
    }
    let defaults: Vec<String>;
    let wanted: &[String] = match cursor.select.as_deref() {
        Some(sel) => sel,
        None => {
            defaults = DEFAULT_PROPERTIES.iter().map(|p| p.to_string()).collect();
            &defaults
        }
    };
    let changed: Vec<String> = wanted
        .iter()
        .filter(|p| p.as_str() != "id" && u.prop_seq.get(p.as_str()).is_some_and(|s| *s > since))
        .cloned()
        .collect();
    project(&u.props, Some(&changed), true)
}

/// Whether a user belongs in this round: it matches the filter and was created after `since`,
/// or changed after it (only the selected properties count when there is a `$select`).
fn delta_qualifies(cursor: &DeltaCursor, u: &StoredUser) -> bool {
    let since = cursor.since;
    if cursor
        .filter
        .as_ref()
        .is_some_and(|f| !filter::eval(f, &u.props))
    {
        return false;
    }
    if since == 0 || u.created_seq > since {
        return true;
    }
    match &cursor.select {
        None => u.changed_seq > since,
        Some(sel) => sel
            .iter()
            .any(|p| u.prop_seq.get(p).is_some_and(|s| *s > since)),
    }
}

/// Appends `{"id", "@removed": {"reason"}}` for each user removed after `cursor.since` that the
/// filter (on `id`) wants.
fn push_removed(g: &Inner, cursor: &DeltaCursor, page: &mut Vec<Value>) {
    for t in g.dir.tombstones() {
        let wanted = cursor.filter.as_ref().is_none_or(|f| {
            let mut m = Map::new();
            m.insert("id".into(), Value::String(t.id.clone()));
            filter::eval(f, &m)
        });
        if t.seq > cursor.since && wanted {
            page.push(json!({"id": t.id, "@removed": {"reason": t.reason}}));
        }
    }
}

/// The response body: the page with a nextLink when more follow, else a deltaLink for the next
/// round.
fn delta_body(state: &State, g: &mut Inner, cursor: &DeltaCursor, page: DeltaPage) -> Value {
    let mut body = Map::new();
    body.insert(
        "@odata.context".into(),
        Value::String(context_url(state, cursor.select.as_deref(), "")),
    );
    let mut next = cursor.clone();
    let (key, param) = if page.more {
        next.after = page.last;
        ("@odata.nextLink", "$skiptoken")
    } else {
        next.after = None;
        ("@odata.deltaLink", "$deltatoken")
    };
    let tok = state.new_token(g, next);
    body.insert(key.into(), json!(delta_link(state, param, &tok)));
    body.insert("value".into(), Value::Array(page.value));
    Value::Object(body)
}

pub(crate) const LCW_APP_ROLE: &str = LCW_ROLE;
pub(crate) const DENIED: &str = MSG_DENIED;
