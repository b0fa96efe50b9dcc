//! Workday Report-as-a-Service (RaaS): one web-service-enabled custom report of workers (personal
//! email, country, work email), served from the same loopback server as Graph, with the same
//! request recording and fault injection, but none of Graph's throttling, headers or error bodies.
//!
//! - URL `GET /ccx/service/customreport2/{tenant}/{reportOwner}/{reportName}?format=json[&Prompt=value…]`;
//!   prompts are query parameters. Source: GitHub wilsonliaows/docs
//!   `connectors/workday/workday_raas.md` (Workato docs); Workday/raas-python `raas/raas.py`
//!   (`{base_url}/ccx/service/customreport2/{tenant_name}`).
//! - JSON response: an object with a `Report_Entry` array, rows keyed by the report's column aliases;
//!   a multi-instance field is an array of objects. Sources: Workday/raas-python `raas/raas.py`
//!   (`r.json()["Report_Entry"]`); faros-ai/airbyte-connectors
//!   `sources/workday-source/src/workday.ts` (`res.data?.Report_Entry`).
//! - Without `format=json` the report comes back as XML (`wd:Report_Data` / `wd:Report_Entry` in the
//!   namespace `urn:com.workday.report/{reportName}`); the sandbox answers a minimal form of it.
//! - Auth: HTTP Basic with an Integration System User (`user@tenant`), source faros `workday.ts`
//!   (`Authorization: Basic base64(user:pass)`); or the OAuth 2.0 refresh-token grant
//!   `POST {base}/ccx/oauth2/{tenant}/token` (form: `grant_type=refresh_token`, `refresh_token`,
//!   `client_id`, `client_secret`) → `{"access_token","token_type","expires_in"}`, then
//!   `Authorization: Bearer …`. Source: Workday/raas-python `raas/raas.py` (`create_bearer_token`)
//!   and README. Error codes of the token endpoint follow RFC 6749 §5.2 (`invalid_request`,
//!   `invalid_client` with 401, `invalid_grant`, `unsupported_grant_type`).
//! - Paging: not documented for RaaS and neither client pages: the whole report is one response.
//!
//! NOT DOCUMENTED by Workday, and chosen here: every RaaS error body (`{"error": "<message>"}`,
//! `application/json`), the 404 for an unknown tenant, owner or report, the 400 for an unknown query
//! parameter or an unsupported `format`, and that an empty prompt value means "no filter" (an
//! optional prompt left blank).

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use serde_json::{json, Map, Value};

use crate::http::{SandboxRequest, SandboxResponse};
use crate::state::{set_header, State};
use crate::tenant::SplitMix64;

/// The Workday tenant name in the sandbox's URLs.
pub const WORKDAY_TENANT: &str = "entra_sandbox";
/// The report owner (the account that owns the custom report) in the RaaS URL.
pub const WORKDAY_REPORT_OWNER: &str = "isu_entra_enrich";
/// The web-service-enabled custom report the sandbox serves.
pub const WORKDAY_REPORT: &str = "Entra_Enrich_Workers";
/// The Integration System User (`user@tenant`) for HTTP Basic.
pub const WORKDAY_USERNAME: &str = "ISU_Entra_Enrich@entra_sandbox";
/// The ISU's initial password (see [`crate::Sandbox::set_workday_password`] for a rotation).
pub const WORKDAY_PASSWORD: &str = "Sandbox-ISU-Passw0rd!";
/// The registered API client's id (Workday shows client ids base64-like).
pub const WORKDAY_CLIENT_ID: &str = "ZW50cmEtZW5yaWNoLXNhbmRib3gtcmFhcw";
/// The registered API client's secret.
pub const WORKDAY_CLIENT_SECRET: &str = "sandbox-raas-client-secret-0123456789abcdefghijklmnop";
/// The refresh token generated for the ISU ("Manage Refresh Tokens for Integrations").
pub const WORKDAY_REFRESH_TOKEN: &str = "sandbox-raas-refresh-token-zyxwvutsrqponmlkjihgfedcba9876";
/// The report's one prompt.
pub const WORKDAY_PROMPT: &str = "Employee_ID";

/// Lifetime of an access token, in sandbox seconds (divided by `SandboxOptions::time_scale`).
pub const WORKDAY_TOKEN_LIFETIME_SECS: u64 = 3600;

/// Workday options of the sandbox.
#[derive(Debug, Clone, Default)]
pub struct WorkdayOptions {
    /// The tenant's users get `onPremisesExtensionAttributes.extensionAttribute1` cleared (null), so
    /// the personal email exists only in Workday.
    pub personal_email_only_in_workday: bool,
    /// How many workers without an Entra account to generate (default: about 5 % of the workers
    /// derived from Entra users, at least one).
    pub extra_workers: Option<usize>,
}

/// One report row: its `Employee_ID` (trimmed, for the prompt) and its serialized JSON, so a large
/// report is a concatenation, not a serialization.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub(crate) employee_id: Option<String>,
    pub(crate) json: Box<[u8]>,
}

impl Row {
    pub(crate) fn from_value(v: &Value) -> Row {
        let employee_id = v
            .get(WORKDAY_PROMPT)
            .and_then(Value::as_str)
            .map(|s| s.trim().to_string());
        Row {
            employee_id,
            json: serde_json::to_vec(v).unwrap_or_default().into_boxed_slice(),
        }
    }

    pub(crate) fn value(&self) -> Value {
        serde_json::from_slice(&self.json).unwrap_or(Value::Null)
    }
}

/// The Workday side of the sandbox state.
#[derive(Debug)]
pub(crate) struct Workday {
    pub(crate) rows: Arc<Vec<Row>>,
    pub(crate) password: String,
    /// Issued access tokens → when they expire.
    tokens: HashMap<String, Instant>,
    /// Web Services (SOAP) state of the workers written since the start ([`crate::wws`]); the
    /// others are derived from their rows.
    pub(crate) wws: HashMap<String, crate::wws::WwsWorker>,
}

impl Default for Workday {
    fn default() -> Self {
        Workday {
            rows: Arc::new(Vec::new()),
            password: WORKDAY_PASSWORD.to_string(),
            tokens: HashMap::new(),
            wws: HashMap::new(),
        }
    }
}

impl Workday {
    pub(crate) fn with_rows(rows: Vec<Row>) -> Self {
        Workday {
            rows: Arc::new(rows),
            ..Default::default()
        }
    }
    pub(crate) fn rows(&self) -> Vec<Value> {
        self.rows.iter().map(Row::value).collect()
    }
    pub(crate) fn set_rows(&mut self, rows: &[Value]) {
        self.rows = Arc::new(rows.iter().map(Row::from_value).collect());
    }
    /// Replaces the first row with the same (trimmed) `Employee_ID`, or appends.
    pub(crate) fn upsert(&mut self, row: &Value) {
        let row = Row::from_value(row);
        let rows = Arc::make_mut(&mut self.rows);
        let slot = row
            .employee_id
            .as_ref()
            .and_then(|id| rows.iter().position(|r| r.employee_id.as_ref() == Some(id)));
        match slot.and_then(|i| rows.get_mut(i)) {
            Some(existing) => *existing = row,
            None => rows.push(row),
        }
    }
    pub(crate) fn set_password(&mut self, password: &str) {
        self.password = password.to_string();
    }
    /// Every access token issued so far expires now.
    pub(crate) fn expire_tokens(&mut self) {
        self.tokens.clear();
    }
}

// ---------------------------------------------------------------------------------------------
// Seeded population
// ---------------------------------------------------------------------------------------------

/// Country codes and the names Workday shows for them (a small table: the countries the generated
/// tenant uses).
const COUNTRIES: &[(&str, &str)] = &[
    ("AU", "Australia"),
    ("BR", "Brazil"),
    ("CA", "Canada"),
    ("CH", "Switzerland"),
    ("DE", "Germany"),
    ("ES", "Spain"),
    ("FR", "France"),
    ("GB", "United Kingdom"),
    ("IN", "India"),
    ("IT", "Italy"),
    ("JP", "Japan"),
    ("NL", "Netherlands"),
    ("SE", "Sweden"),
    ("US", "United States of America"),
];
/// Other spellings of a name in [`COUNTRIES`] found in directory data.
const COUNTRY_ALIASES: &[(&str, &str)] = &[("United States", "US"), ("UK", "GB")];

/// `Country` and `Country_Name` from a directory value: a known code or name gives both; anything
/// else is kept as it is in `Country` (HR data can be wrong too), without a name.
fn country_fields(raw: &str) -> (Option<Cow<'_, str>>, Option<&'static str>) {
    let raw = raw.trim();
    if raw.is_empty() {
        return (None, None);
    }
    if let Some((code, name)) = COUNTRIES.iter().find(|(c, _)| *c == raw) {
        return (Some(Cow::Borrowed(*code)), Some(*name));
    }
    let by_name = COUNTRIES
        .iter()
        .find(|(_, n)| n.eq_ignore_ascii_case(raw))
        .map(|(c, _)| *c)
        .or_else(|| {
            COUNTRY_ALIASES
                .iter()
                .find(|(a, _)| a.eq_ignore_ascii_case(raw))
                .map(|(_, c)| *c)
        });
    if let Some((code, name)) = by_name.and_then(|c| COUNTRIES.iter().find(|(k, _)| *k == c)) {
        return (Some(Cow::Borrowed(*code)), Some(*name));
    }
    (Some(Cow::Borrowed(raw)), None)
}

/// Appends `s` as a JSON string (RFC 8259 §7: `"`, `\\` and control characters escaped). Written
/// by hand: generating 100,000 rows through a serializer is several times slower in debug builds.
fn push_json_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if b != b'"' && b != b'\\' && b >= 0x20 {
            continue;
        }
        out.extend_from_slice(bytes.get(start..i).unwrap_or_default());
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            c => out.extend_from_slice(format!("\\u{c:04x}").as_bytes()),
        }
        start = i + 1;
    }
    out.extend_from_slice(bytes.get(start..).unwrap_or_default());
    out.push(b'"');
}

/// Appends `"key":"value"` (with a leading comma unless first) when `value` is present.
fn push_field(out: &mut Vec<u8>, key: &str, value: Option<&str>) {
    let Some(v) = value else { return };
    if out.len() > 1 {
        out.push(b',');
    }
    push_json_str(out, key);
    out.push(b':');
    push_json_str(out, v);
}

fn non_empty(s: Option<&str>) -> Option<&str> {
    s.map(str::trim).filter(|s| !s.is_empty())
}

/// One worker row, serialized: `Employee_ID`, `Worker`, `Personal_Email`, `Country`, `Country_Name`,
/// `Email_Addresses` (the HOME address, then the WORK one = the UPN; a multi-instance field, so an
/// array of objects). Keys are absent when the value is empty: our inference that RaaS omits empty
/// fields (neither public client relies on an empty key being present).
fn worker_row(
    employee_id: Option<&str>,
    worker: Option<&str>,
    personal: Option<&str>,
    country_raw: Option<&str>,
    work_email: Option<&str>,
) -> Row {
    let employee_id = non_empty(employee_id);
    let personal = non_empty(personal);
    let work = non_empty(work_email);
    let (country, country_name) = country_fields(country_raw.unwrap_or(""));
    let mut out = Vec::with_capacity(256);
    out.push(b'{');
    push_field(&mut out, "Employee_ID", employee_id);
    push_field(&mut out, "Worker", non_empty(worker));
    push_field(&mut out, "Personal_Email", personal);
    push_field(&mut out, "Country", country.as_deref());
    push_field(&mut out, "Country_Name", country_name);
    if personal.is_some() || work.is_some() {
        if out.len() > 1 {
            out.push(b',');
        }
        out.extend_from_slice(br#""Email_Addresses":["#);
        let entries = [("HOME", personal), ("WORK", work)];
        let mut first = true;
        for (usage, address) in entries {
            let Some(address) = address else { continue };
            if !first {
                out.push(b',');
            }
            first = false;
            out.extend_from_slice(br#"{"Usage":"#);
            push_json_str(&mut out, usage);
            out.extend_from_slice(br#","Email_Address":"#);
            push_json_str(&mut out, address);
            out.push(b'}');
        }
        out.push(b']');
    }
    out.push(b'}');
    Row {
        employee_id: employee_id.map(str::to_string),
        json: out.into_boxed_slice(),
    }
}

fn text<'a>(m: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    m.get(key).and_then(Value::as_str)
}

fn extension<'a>(m: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    m.get("onPremisesExtensionAttributes")
        .and_then(|e| e.get(key))
        .and_then(Value::as_str)
}

/// A second personal address for a duplicated worker (`local.2@domain`), when `p` has both parts.
fn alternate_email(p: &str) -> Option<String> {
    let (local, domain) = p.split_once('@')?;
    (!local.is_empty() && !domain.is_empty()).then(|| format!("{local}.2@{domain}"))
}

/// What a worker without an Entra account has as a personal email.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ExtraEmail {
    Valid,
    Missing,
    Invalid,
    Accented,
}

/// The first three extras are one of each anomaly, the rest spread by bucket (5 % missing, 3 %
/// invalid, 3 % accented).
fn extra_email_kind(k: usize) -> ExtraEmail {
    match k {
        0 => ExtraEmail::Missing,
        1 => ExtraEmail::Invalid,
        2 => ExtraEmail::Accented,
        _ => match (k * 37 + 11) % 100 {
            0..=4 => ExtraEmail::Missing,
            5..=7 => ExtraEmail::Invalid,
            8..=10 => ExtraEmail::Accented,
            _ => ExtraEmail::Valid,
        },
    }
}

/// First `Employee_ID` of the workers without an Entra account (8 digits; generated users have 6).
const EXTRA_ID_BASE: usize = 20_000_000;

/// The seeded Workday population, deterministic in `(users, seed, opts)`:
/// one worker per user with an `employeeId` (personal email from `extensionAttribute1`, country from
/// `extensionAttribute2`, work email = UPN), in tenant order; one or two of them with a second row
/// (same `Employee_ID`, another personal email); then the workers without an Entra account.
pub(crate) fn seed_rows(
    users: &[Map<String, Value>],
    seed: u64,
    opts: &WorkdayOptions,
) -> Vec<Row> {
    let mut rng = SplitMix64::new(seed ^ 0x5745_4F52_4B44_4159);
    let from_entra: Vec<&Map<String, Value>> = users
        .iter()
        .filter(|u| non_empty(text(u, "employeeId")).is_some())
        .collect();
    // Candidates for a duplicated row: a personal address with both parts.
    let candidates: Vec<usize> = from_entra
        .iter()
        .enumerate()
        .filter(|(_, u)| {
            extension(u, "extensionAttribute1").is_some_and(|p| alternate_email(p).is_some())
        })
        .map(|(i, _)| i)
        .collect();
    let mut duplicated = Vec::new();
    if !candidates.is_empty() {
        let first = rng.below(candidates.len());
        duplicated.extend(candidates.get(first));
        if rng.below(2) == 1 && candidates.len() > 1 {
            duplicated.extend(candidates.get((first + candidates.len() / 2) % candidates.len()));
        }
    }
    let extra = opts
        .extra_workers
        .unwrap_or_else(|| (from_entra.len() * 5).div_ceil(100).max(1));
    let mut rows = Vec::with_capacity(from_entra.len() + duplicated.len() + extra);
    for (i, u) in from_entra.iter().enumerate() {
        let employee_id = text(u, "employeeId");
        let worker = text(u, "displayName");
        let personal = extension(u, "extensionAttribute1");
        let country = extension(u, "extensionAttribute2");
        let upn = text(u, "userPrincipalName");
        rows.push(worker_row(employee_id, worker, personal, country, upn));
        if duplicated.contains(&i) {
            let alt = personal.and_then(alternate_email);
            rows.push(worker_row(
                employee_id,
                worker,
                alt.as_deref(),
                country,
                upn,
            ));
        }
    }
    for k in 0..extra {
        rows.push(extra_worker(&mut rng, k));
    }
    rows
}

/// Worker `k` without an Entra account (no WORK address: no account, no UPN).
fn extra_worker(rng: &mut SplitMix64, k: usize) -> Row {
    use crate::tenant::{ACCENTED_FIRST, FIRST, LAST, PERSONAL_DOMAINS};
    let first = rng.pick(FIRST);
    let last = rng.pick(LAST);
    let domain = rng.pick(PERSONAL_DOMAINS);
    let (code, _) = COUNTRIES
        .get(rng.below(COUNTRIES.len()))
        .copied()
        .unwrap_or(("US", ""));
    let accented = rng.pick(ACCENTED_FIRST);
    let (fl, ll) = (first.to_lowercase(), last.to_lowercase());
    let personal = match extra_email_kind(k) {
        ExtraEmail::Valid => Some(format!("{fl}.{ll}.{k}@{domain}")),
        ExtraEmail::Missing => None,
        ExtraEmail::Invalid if k.is_multiple_of(2) => Some(format!("{fl}{k}@")),
        ExtraEmail::Invalid => Some(format!("{fl}.{ll} at {domain}")),
        ExtraEmail::Accented => Some(format!("{}.{ll}{k}@exämple.org", accented.to_lowercase())),
    };
    let id = (EXTRA_ID_BASE + k).to_string();
    let name = format!("{first} {last}");
    worker_row(
        Some(&id),
        Some(&name),
        personal.as_deref(),
        Some(code),
        None,
    )
}

/// Clears `extensionAttribute1` of every user that has extension attributes
/// ([`WorkdayOptions::personal_email_only_in_workday`]).
pub(crate) fn clear_personal_emails(users: &mut [Map<String, Value>]) {
    for u in users {
        if let Some(Value::Object(ext)) = u.get_mut("onPremisesExtensionAttributes") {
            ext.insert("extensionAttribute1".into(), Value::Null);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Routes
// ---------------------------------------------------------------------------------------------

/// The route template of a `/ccx/…` path, e.g. `/ccx/service/customreport2/{tenant}/{owner}/{report}`.
pub(crate) fn route_template(path: &str) -> String {
    let segs: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    match segs.as_slice() {
        ["", "ccx", "service", "customreport2", _, _, _] => {
            "/ccx/service/customreport2/{tenant}/{owner}/{report}".into()
        }
        ["", "ccx", "oauth2", _, "token"] => "/ccx/oauth2/{tenant}/token".into(),
        ["", "ccx", "service", _, "Human_Resources", _] => {
            "/ccx/service/{tenant}/Human_Resources/{version}".into()
        }
        ["", "ccx", "service", _, "Human_Resources"] => {
            "/ccx/service/{tenant}/Human_Resources".into()
        }
        _ => path.to_string(),
    }
}

/// The body of every RaaS error (our choice, see the module comment).
fn error(status: StatusCode, message: &str) -> SandboxResponse {
    SandboxResponse::json(status, &json!({ "error": message }))
}

fn unauthorized() -> SandboxResponse {
    let mut r = error(StatusCode::UNAUTHORIZED, "Unauthorized");
    set_header(&mut r, "www-authenticate", r#"Basic realm="Workday""#);
    r
}

/// The answer of an injected status fault on a Workday route: the RaaS error body, `Retry-After`
/// (seconds) when given or for a 429.
pub(crate) fn fault_response(status: u16, retry_after: Option<f64>) -> SandboxResponse {
    let st = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    let mut r = error(st, "Injected fault (entra-sandbox).");
    if let Some(ra) = retry_after.or((status == 429).then_some(1.0)) {
        set_header(&mut r, "retry-after", &crate::state::format_retry_after(ra));
    }
    r
}

/// Routes every `/ccx/…` request.
pub(crate) fn route(state: &State, req: &SandboxRequest) -> SandboxResponse {
    let path = req.path.trim_end_matches('/');
    let segs: Vec<&str> = path.split('/').collect();
    match segs.as_slice() {
        ["", "ccx", "service", "customreport2", tenant, owner, report] => {
            if req.method != Method::GET {
                let mut r = error(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed.");
                set_header(&mut r, "allow", "GET");
                return r;
            }
            report_get(state, req, tenant, owner, report)
        }
        ["", "ccx", "oauth2", tenant, "token"] => {
            if req.method != Method::POST {
                let mut r = error(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed.");
                set_header(&mut r, "allow", "POST");
                return r;
            }
            token(state, req, tenant)
        }
        ["", "ccx", "service", tenant, "Human_Resources", rest @ ..] if rest.len() <= 1 => {
            if req.method != Method::POST {
                let mut r = error(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed.");
                set_header(&mut r, "allow", "POST");
                return r;
            }
            if *tenant != WORKDAY_TENANT {
                return error(
                    StatusCode::NOT_FOUND,
                    &format!("Tenant not found: {tenant}."),
                );
            }
            match rest.first() {
                Some(v) if !crate::wws::is_version(v) => error(
                    StatusCode::NOT_FOUND,
                    &format!("Unknown web service version: {v}."),
                ),
                _ => crate::wws::handle(state, req),
            }
        }
        _ => error(StatusCode::NOT_FOUND, "Not found."),
    }
}

fn authorization(req: &SandboxRequest) -> Option<(&str, &str)> {
    let v = req
        .headers
        .get(http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .trim();
    let (scheme, rest) = v.split_once(' ')?;
    Some((scheme, rest.trim()))
}

/// `user:password` of a Basic credential.
fn basic_credentials(encoded: &str) -> Option<(String, String)> {
    use base64::Engine;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

/// Whether the request carries the ISU's current password or a live token the sandbox issued.
fn authorized(w: &Workday, req: &SandboxRequest) -> bool {
    match authorization(req) {
        Some((scheme, cred)) if scheme.eq_ignore_ascii_case("basic") => {
            basic_credentials(cred).is_some_and(|(u, p)| u == WORKDAY_USERNAME && p == w.password)
        }
        Some((scheme, tok)) if scheme.eq_ignore_ascii_case("bearer") => w
            .tokens
            .get(tok)
            .is_some_and(|expires| *expires > Instant::now()),
        _ => false,
    }
}

enum Format {
    Json,
    Xml,
}

/// `GET /ccx/service/customreport2/{tenant}/{owner}/{report}`: 401, 404, 400, then the report.
fn report_get(
    state: &State,
    req: &SandboxRequest,
    tenant: &str,
    owner: &str,
    report: &str,
) -> SandboxResponse {
    let rows = {
        let g = state.lock();
        if !authorized(&g.workday, req) {
            return unauthorized();
        }
        g.workday.rows.clone()
    };
    if tenant != WORKDAY_TENANT || owner != WORKDAY_REPORT_OWNER || report != WORKDAY_REPORT {
        return error(
            StatusCode::NOT_FOUND,
            &format!("Report not found: {tenant}/{owner}/{report}."),
        );
    }
    let mut format = Format::Xml;
    let mut prompts: Vec<String> = Vec::new();
    for (k, v) in url::form_urlencoded::parse(req.query.as_bytes()) {
        match k.as_ref() {
            "format" if v == "json" => format = Format::Json,
            "format" if v == "xml" || v == "simplexml" => format = Format::Xml,
            "format" => {
                return error(
                    StatusCode::BAD_REQUEST,
                    &format!("Unsupported format: {v}."),
                )
            }
            WORKDAY_PROMPT => {
                let v = v.trim();
                if !v.is_empty() {
                    prompts.push(v.to_string());
                }
            }
            other => {
                return error(
                    StatusCode::BAD_REQUEST,
                    &format!("Unknown query parameter: {other}."),
                )
            }
        }
    }
    let selected = rows.iter().filter(|r| {
        prompts.is_empty()
            || r.employee_id
                .as_ref()
                .is_some_and(|id| prompts.iter().any(|p| p == id))
    });
    match format {
        Format::Json => json_report(selected),
        Format::Xml => xml_report(report, selected),
    }
}

/// `{"Report_Entry":[…]}` by concatenating the serialized rows.
fn json_report<'a>(rows: impl Iterator<Item = &'a Row>) -> SandboxResponse {
    let mut body = Vec::with_capacity(64 * 1024);
    body.extend_from_slice(br#"{"Report_Entry":["#);
    for (i, r) in rows.enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(&r.json);
    }
    body.extend_from_slice(b"]}");
    with_body(body, "application/json")
}

fn with_body(body: Vec<u8>, content_type: &'static str) -> SandboxResponse {
    let mut headers = HeaderMap::new();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static(content_type),
    );
    SandboxResponse {
        status: StatusCode::OK,
        headers,
        body: Bytes::from(body),
    }
}

fn xml_escape(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
}

/// A column alias as an XML name (aliases are XML names in Workday; rows set by a test may not be).
fn xml_name(key: &str) -> String {
    let mut s: String = key
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '_' || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if !s.starts_with(|c: char| c.is_alphabetic() || c == '_') {
        s.insert(0, '_');
    }
    s
}

fn xml_field(key: &str, v: &Value, out: &mut String) {
    let name = xml_name(key);
    match v {
        Value::Null => {}
        // A multi-instance field: one element per instance.
        Value::Array(items) => {
            for item in items {
                xml_field(key, item, out);
            }
        }
        Value::Object(m) => {
            out.push_str(&format!("<wd:{name}>"));
            for (k, v) in m {
                xml_field(k, v, out);
            }
            out.push_str(&format!("</wd:{name}>"));
        }
        Value::String(s) => {
            out.push_str(&format!("<wd:{name}>"));
            xml_escape(s, out);
            out.push_str(&format!("</wd:{name}>"));
        }
        other => out.push_str(&format!("<wd:{name}>{other}</wd:{name}>")),
    }
}

/// `<wd:Report_Data xmlns:wd="urn:com.workday.report/{report}"><wd:Report_Entry>…`, one element per
/// field (a minimal form: no `wd:Descriptor` attributes or reference ids).
fn xml_report<'a>(report: &str, rows: impl Iterator<Item = &'a Row>) -> SandboxResponse {
    let mut out = String::from("<?xml version='1.0' encoding='UTF-8'?>");
    out.push_str(r#"<wd:Report_Data xmlns:wd="urn:com.workday.report/"#);
    xml_escape(report, &mut out);
    out.push_str(r#"">"#);
    for r in rows {
        out.push_str("<wd:Report_Entry>");
        if let Value::Object(m) = r.value() {
            for (k, v) in &m {
                xml_field(k, v, &mut out);
            }
        }
        out.push_str("</wd:Report_Entry>");
    }
    out.push_str("</wd:Report_Data>");
    with_body(out.into_bytes(), "application/xml")
}

/// The token endpoint's errors: RFC 6749 §5.2 (`{"error","error_description"}`; 401 and
/// `WWW-Authenticate` for `invalid_client`).
fn oauth_error(status: StatusCode, code: &str, description: &str) -> SandboxResponse {
    let mut r = SandboxResponse::json(
        status,
        &json!({"error": code, "error_description": description}),
    );
    set_header(&mut r, "cache-control", "no-store");
    if status == StatusCode::UNAUTHORIZED {
        set_header(&mut r, "www-authenticate", r#"Basic realm="Workday""#);
    }
    r
}

/// `POST /ccx/oauth2/{tenant}/token`, refresh-token grant (Workday/raas-python
/// `create_bearer_token`): client credentials in the form, or as HTTP Basic (RFC 6749 §2.3.1).
fn token(state: &State, req: &SandboxRequest, tenant: &str) -> SandboxResponse {
    if tenant != WORKDAY_TENANT {
        return error(
            StatusCode::NOT_FOUND,
            &format!("Tenant not found: {tenant}."),
        );
    }
    let form_type = req
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim()
                .to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        });
    if !form_type {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "The body must be application/x-www-form-urlencoded.",
        );
    }
    let form: HashMap<String, String> = url::form_urlencoded::parse(&req.body)
        .into_owned()
        .collect();
    let field = |k: &str| form.get(k).map(String::as_str);
    match field("grant_type") {
        None => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "grant_type is required.",
            )
        }
        Some("refresh_token") => {}
        Some(_) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "Only the refresh_token grant is supported.",
            )
        }
    }
    let basic = match authorization(req) {
        Some((scheme, cred)) if scheme.eq_ignore_ascii_case("basic") => basic_credentials(cred),
        _ => None,
    };
    let (client_id, client_secret) = match (&basic, field("client_id"), field("client_secret")) {
        (Some((id, secret)), _, _) => (Some(id.as_str()), Some(secret.as_str())),
        (None, id, secret) => (id, secret),
    };
    if client_id != Some(WORKDAY_CLIENT_ID) || client_secret != Some(WORKDAY_CLIENT_SECRET) {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Client authentication failed.",
        );
    }
    match field("refresh_token") {
        None => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "refresh_token is required.",
            )
        }
        Some(WORKDAY_REFRESH_TOKEN) => {}
        Some(_) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_grant",
                "The refresh token is invalid or revoked.",
            )
        }
    }
    let lifetime = Duration::from_secs_f64(WORKDAY_TOKEN_LIFETIME_SECS as f64 / state.time_scale);
    let access_token = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    {
        let mut g = state.lock();
        let now = Instant::now();
        g.workday.tokens.retain(|_, expires| *expires > now);
        g.workday
            .tokens
            .insert(access_token.clone(), now + lifetime);
    }
    let mut r = SandboxResponse::json(
        StatusCode::OK,
        &json!({
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": WORKDAY_TOKEN_LIFETIME_SECS,
        }),
    );
    set_header(&mut r, "cache-control", "no-store");
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn countries_map_codes_names_and_keep_the_rest() {
        assert_eq!(
            country_fields("GB"),
            (Some(Cow::Borrowed("GB")), Some("United Kingdom"))
        );
        assert_eq!(
            country_fields("United States"),
            (Some(Cow::Borrowed("US")), Some("United States of America"))
        );
        assert_eq!(country_fields("germany").1, Some("Germany"));
        assert_eq!(
            country_fields("Germny"),
            (Some(Cow::Borrowed("Germny")), None)
        );
        assert_eq!(country_fields("  "), (None, None));
    }

    #[test]
    fn templates() {
        assert_eq!(
            route_template("/ccx/service/customreport2/t/o/r"),
            "/ccx/service/customreport2/{tenant}/{owner}/{report}"
        );
        assert_eq!(
            route_template("/ccx/oauth2/t/token"),
            "/ccx/oauth2/{tenant}/token"
        );
        assert_eq!(
            route_template("/ccx/service/t/Human_Resources/v44.2"),
            "/ccx/service/{tenant}/Human_Resources/{version}"
        );
    }

    #[test]
    fn seeding_is_deterministic() {
        let (users, _) = crate::tenant::generate(200, 3);
        let opts = WorkdayOptions {
            extra_workers: Some(100_000),
            ..Default::default()
        };
        let rows = seed_rows(&users, 3, &opts);
        assert!(rows.len() > 100_000);
        let again = seed_rows(&users, 3, &opts);
        assert!(rows.iter().zip(&again).all(|(a, b)| a.json == b.json));
        let body = json_report(rows.iter());
        assert!(body.body.len() > 10_000_000);
    }

    #[test]
    fn rows_are_valid_json_with_escapes() {
        let row = worker_row(
            Some(" E1 "),
            Some("A \"B\" \\ C\n\u{1}"),
            Some("zoë@exämple.org"),
            Some("United States"),
            Some("a@contoso.com"),
        );
        let v: Value = serde_json::from_slice(&row.json).unwrap_or(Value::Null);
        assert_eq!(
            v,
            json!({"Employee_ID": "E1", "Worker": "A \"B\" \\ C\n\u{1}", "Personal_Email": "zoë@exämple.org",
                   "Country": "US", "Country_Name": "United States of America",
                   "Email_Addresses": [{"Usage": "HOME", "Email_Address": "zoë@exämple.org"},
                                       {"Usage": "WORK", "Email_Address": "a@contoso.com"}]})
        );
        assert_eq!(row.employee_id.as_deref(), Some("E1"));
        let empty = worker_row(None, None, Some(" "), None, None);
        assert_eq!(&*empty.json, b"{}");
        let work_only = worker_row(Some("E2"), None, None, None, Some("w@x.org"));
        let v: Value = serde_json::from_slice(&work_only.json).unwrap_or(Value::Null);
        assert_eq!(
            v,
            json!({"Employee_ID": "E2", "Email_Addresses": [{"Usage": "WORK", "Email_Address": "w@x.org"}]})
        );
    }

    #[test]
    fn xml_escapes_and_repeats_multi_instance_fields() {
        let row = Row::from_value(&json!({"Worker": "A & B", "Email_Addresses": [
            {"Usage": "HOME", "Email_Address": "a@x.org"}, {"Usage": "WORK", "Email_Address": "b@y.org"}]}));
        let r = xml_report("R", std::iter::once(&row));
        let text = String::from_utf8_lossy(&r.body).into_owned();
        assert!(text.contains("<wd:Worker>A &amp; B</wd:Worker>"), "{text}");
        assert_eq!(text.matches("<wd:Email_Addresses>").count(), 2, "{text}");
        assert!(text.contains(r#"xmlns:wd="urn:com.workday.report/R""#));
    }
}
