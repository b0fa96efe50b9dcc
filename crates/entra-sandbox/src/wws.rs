//! Workday Web Services (SOAP 1.1, `Human_Resources`): `Get_Workers`, the work-email writeback
//! `Change_Work_Contact_Information` and the username writeback `Workday_Account_for_Worker_Update`,
//! on the same workers as the RaaS report ([`crate::workday`]), with the same recording and fault
//! injection.
//!
//! - URL `POST /ccx/service/{tenant}/Human_Resources[/vNN.N]`. Sources: ENTRA
//!   `docs/identity/saas-apps/workday-writeback-tutorial.md`; singer-io/tap-workday
//!   `tap_workday/client.py`.
//! - Auth: WS-Security `UsernameToken` with a `PasswordText` password in the SOAP header, the ISU of
//!   the RaaS report. Source: treestryder/powershell_module_workdayapi
//!   `source/public/Invoke-WorkdayRequest.ps1`.
//! - Faults: HTTP 500 with a SOAP 1.1 `Fault`, `faultcode` `SOAP-ENV:Client.validationError` and a
//!   `wd:Validation_Fault/wd:Validation_Error/{Message, Detail_Message, Xpath}` detail. Source:
//!   treestryder `source/tests/Invoke-WorkdayRequestHelper.psm1` and the note in
//!   `Invoke-WorkdayRequest.ps1` ("when Workday returns an error in the XML, it also sets the HTTP
//!   status as 500").
//! - `Get_Workers` response shape (`Worker_Data/Personal_Data/Contact_Data/Email_Address_Data` with
//!   `Usage_Data[@Public]/Type_Data[@Primary]/Type_Reference/ID[@type=Communication_Usage_Type_ID]`):
//!   treestryder `source/public/Get-WorkdayWorkerEmail.ps1`; paging (`Response_Filter/Page|Count`,
//!   `Response_Results`): ENTRA `docs/identity/app-provisioning/workday-integration-reference.md`.
//! - `Change_Work_Contact_Information` and its email rules (only WORK maintained here; one primary
//!   WORK email; `Replace_All` deletes the non-primary addresses and can't be combined with `Delete`
//!   or an `Email_Reference`; a primary can't become non-primary nor the reverse): GitHub
//!   benjaminhansen/workday-wsdl `src/StructType/Change_Work_Contact_Information_Business_Process_DataType.php`,
//!   `Person_Email_Information_DataType.php`, `Person_Email_DataType.php`.
//! - `Workday_Account_for_Worker_Update` (`Worker_Reference/Employee_Reference/Integration_ID_Reference/
//!   ID[@System_ID="WD-EMPLID"]`, `Workday_Account_for_Worker_Data/User_Name`): treestryder
//!   `source/public/Set-WorkdayWorkerUserId.ps1`.
//!
//! NOT DOCUMENTED by the sources, and chosen here: the `faultcode` of a bad or missing
//! `UsernameToken` (`SOAP-ENV:Client.authenticationError`), a `Processing_Fault`
//! (`SOAP-ENV:Client.processingError`) for an unknown operation or a malformed envelope, every fault
//! message text, a `Validation_Fault` (not an empty `Response_Data`) for an unknown `Employee_ID`,
//! the email syntax check (one `@`, both parts non-empty, no whitespace), the `Email_ID` values,
//! that writes apply at once whatever the `Event_Effective_Date`, and that user names are not
//! checked for uniqueness.

use std::collections::HashSet;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode};
use quick_xml::events::{BytesDecl, BytesText, Event};
use quick_xml::name::{Namespace, ResolveResult};
use quick_xml::reader::NsReader;
use quick_xml::Writer;
use serde_json::{json, Value};

use crate::http::{SandboxRequest, SandboxResponse};
use crate::state::State;
use crate::workday::{Row, Workday};

/// The `Human_Resources` version [`crate::Sandbox::wws_url`] names (any `vNN.N` is served).
pub const WWS_VERSION: &str = "v44.2";
/// The Workday Web Services namespace (prefix `bsvc` or `wd` in clients; any prefix is accepted).
pub const BSVC_NS: &str = "urn:com.workday/bsvc";
/// SOAP 1.1 envelope namespace.
pub const SOAP_ENV_NS: &str = "http://schemas.xmlsoap.org/soap/envelope/";
/// WS-Security 1.0 `wsse` namespace.
pub const WSSE_NS: &str =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd";
/// The `PasswordText` type URI of a `wsse:Password` (the default when `Type` is absent).
const PASSWORD_TEXT: &str = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordText";

/// Default and largest `Response_Filter/Count` (999 is our choice: the maximum is not documented).
const DEFAULT_COUNT: usize = 100;
const MAX_COUNT: usize = 999;

/// `WORK` or `HOME` (`Communication_Usage_Type_ID`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Usage {
    Work,
    Home,
}

impl Usage {
    fn id(self) -> &'static str {
        match self {
            Usage::Work => "WORK",
            Usage::Home => "HOME",
        }
    }
    fn descriptor(self) -> &'static str {
        match self {
            Usage::Work => "Work",
            Usage::Home => "Home",
        }
    }
    fn parse(s: &str) -> Option<Usage> {
        if s.eq_ignore_ascii_case("WORK") {
            Some(Usage::Work)
        } else if s.eq_ignore_ascii_case("HOME") {
            Some(Usage::Home)
        } else {
            None
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Email {
    pub(crate) address: String,
    pub(crate) usage: Usage,
    pub(crate) primary: bool,
}

/// A worker as the web services see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WwsWorker {
    pub(crate) employee_id: String,
    pub(crate) user_name: Option<String>,
    pub(crate) emails: Vec<Email>,
}

impl WwsWorker {
    pub(crate) fn to_json(&self) -> Value {
        json!({
            "employeeId": self.employee_id,
            "userName": self.user_name,
            "emails": self.emails.iter().map(|e| json!({
                "address": e.address, "usage": e.usage.id(), "primary": e.primary,
            })).collect::<Vec<_>>(),
        })
    }
}

/// FNV-1a, for the deterministic per-worker choices of the seeded state.
fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The seeded state of a worker, from its report rows: every HOME address (the first primary), a
/// primary WORK email (the row's WORK address = the UPN) for about half of them, and a user name
/// (the UPN) for about half, both chosen by a hash of the `Employee_ID`.
fn derive(rows: &[Row], employee_id: &str) -> Option<WwsWorker> {
    let mut homes: Vec<String> = Vec::new();
    let mut work: Option<String> = None;
    let mut found = false;
    for r in rows
        .iter()
        .filter(|r| r.employee_id.as_deref() == Some(employee_id))
    {
        found = true;
        let v = r.value();
        let mut push_home = |a: &str| {
            let a = a.trim();
            if !a.is_empty() && !homes.iter().any(|h| h == a) {
                homes.push(a.to_string());
            }
        };
        if let Some(p) = v.get("Personal_Email").and_then(Value::as_str) {
            push_home(p);
        }
        for e in v
            .get("Email_Addresses")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let addr = e.get("Email_Address").and_then(Value::as_str).unwrap_or("");
            match e.get("Usage").and_then(Value::as_str) {
                Some("HOME") => push_home(addr),
                Some("WORK") if work.is_none() && !addr.trim().is_empty() => {
                    work = Some(addr.trim().to_string())
                }
                _ => {}
            }
        }
    }
    if !found {
        return None;
    }
    let h = fnv(employee_id);
    let mut emails: Vec<Email> = homes
        .into_iter()
        .enumerate()
        .map(|(i, address)| Email {
            address,
            usage: Usage::Home,
            primary: i == 0,
        })
        .collect();
    if h & 1 == 0 {
        if let Some(w) = &work {
            emails.push(Email {
                address: w.clone(),
                usage: Usage::Work,
                primary: true,
            });
        }
    }
    let user_name = if (h >> 1) & 1 == 0 { work } else { None };
    Some(WwsWorker {
        employee_id: employee_id.to_string(),
        user_name,
        emails,
    })
}

impl Workday {
    /// The worker's current web-services state.
    pub(crate) fn wws_worker(&self, employee_id: &str) -> Option<WwsWorker> {
        let id = employee_id.trim();
        match self.wws.get(id) {
            Some(w) => Some(w.clone()),
            None => derive(&self.rows, id),
        }
    }

    /// Stores `w` and makes the WORK column of its report rows follow its primary WORK email.
    pub(crate) fn put_wws_worker(&mut self, w: WwsWorker) {
        let work = w
            .emails
            .iter()
            .find(|e| e.usage == Usage::Work && e.primary)
            .map(|e| e.address.clone());
        let id = w.employee_id.clone();
        let has_rows = self
            .rows
            .iter()
            .any(|r| r.employee_id.as_deref() == Some(id.as_str()));
        if has_rows {
            let rows = std::sync::Arc::make_mut(&mut self.rows);
            for r in rows
                .iter_mut()
                .filter(|r| r.employee_id.as_deref() == Some(id.as_str()))
            {
                let mut v = r.value();
                let Some(m) = v.as_object_mut() else { continue };
                let mut list: Vec<Value> = m
                    .get("Email_Addresses")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                list.retain(|e| e.get("Usage").and_then(Value::as_str) != Some("WORK"));
                if let Some(a) = &work {
                    list.push(json!({"Usage": "WORK", "Email_Address": a}));
                }
                if list.is_empty() {
                    m.remove("Email_Addresses");
                } else {
                    m.insert("Email_Addresses".into(), Value::Array(list));
                }
                *r = Row::from_value(&v);
            }
        }
        self.wws.insert(id, w);
    }

    /// Every `Employee_ID` (report order, distinct) plus workers only the web services know.
    fn wws_ids(&self) -> Vec<String> {
        let mut seen = HashSet::new();
        let mut ids: Vec<String> = self
            .rows
            .iter()
            .filter_map(|r| r.employee_id.clone())
            .filter(|id| seen.insert(id.clone()))
            .collect();
        let mut extra: Vec<&String> = self.wws.keys().filter(|k| !seen.contains(*k)).collect();
        extra.sort();
        ids.extend(extra.into_iter().cloned());
        ids
    }
}

/// `Sandbox::set_worker_emails`: the worker's addresses, replaced; `false` for an unknown worker.
pub(crate) fn set_emails(
    w: &mut Workday,
    employee_id: &str,
    emails: &[(&str, &str, bool)],
) -> bool {
    let Some(mut worker) = w.wws_worker(employee_id) else {
        return false;
    };
    worker.emails = emails
        .iter()
        .map(|(a, u, p)| Email {
            address: a.to_string(),
            usage: Usage::parse(u).unwrap_or(Usage::Work),
            primary: *p,
        })
        .collect();
    w.put_wws_worker(worker);
    true
}

/// `Sandbox::set_worker_user_name`; `false` for an unknown worker.
pub(crate) fn set_user_name(w: &mut Workday, employee_id: &str, user_name: Option<&str>) -> bool {
    let Some(mut worker) = w.wws_worker(employee_id) else {
        return false;
    };
    worker.user_name = user_name.map(str::to_string);
    w.put_wws_worker(worker);
    true
}

/// `vNN.N` (digits, a dot, digits).
pub(crate) fn is_version(v: &str) -> bool {
    let Some(rest) = v.strip_prefix('v') else {
        return false;
    };
    let Some((major, minor)) = rest.split_once('.') else {
        return false;
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    digits(major) && digits(minor)
}

// ---------------------------------------------------------------------------------------------
// Parsing: a small element tree, names resolved to namespace URIs
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Default)]
struct El {
    ns: Option<String>,
    name: String,
    /// Attributes by local name (their prefix is ignored; `xmlns` declarations are left out).
    attrs: Vec<(String, String)>,
    text: String,
    children: Vec<El>,
}

impl El {
    fn is(&self, ns: &str, name: &str) -> bool {
        self.ns.as_deref() == Some(ns) && self.name == name
    }
    /// Child elements `bsvc:{name}`.
    fn all<'a, 'n>(&'a self, name: &'n str) -> impl Iterator<Item = &'a El> + use<'a, 'n> {
        self.children.iter().filter(move |c| c.is(BSVC_NS, name))
    }
    fn child(&self, name: &str) -> Option<&El> {
        self.all(name).next()
    }
    fn path(&self, names: &[&str]) -> Option<&El> {
        names.iter().try_fold(self, |el, n| el.child(n))
    }
    fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    fn text(&self) -> &str {
        self.text.trim()
    }
    /// The text of the first `bsvc:ID` child whose attribute `attr` is `value`.
    fn id_where(&self, attr: &str, value: &str) -> Option<&str> {
        self.all("ID")
            .find(|id| id.attr(attr) == Some(value))
            .map(El::text)
    }
}

fn xsd_bool(s: Option<&str>) -> Option<bool> {
    match s.map(str::trim) {
        Some("true") | Some("1") => Some(true),
        Some("false") | Some("0") => Some(false),
        _ => None,
    }
}

fn parse(body: &str) -> Result<El, String> {
    let mut reader = NsReader::from_str(body);
    let mut stack: Vec<El> = Vec::new();
    let mut root: Option<El> = None;
    loop {
        let (res, ev) = reader.read_resolved_event().map_err(|e| e.to_string())?;
        let ns = match res {
            ResolveResult::Bound(Namespace(n)) => Some(String::from_utf8_lossy(n).into_owned()),
            _ => None,
        };
        let start = match ev {
            Event::Start(e) => Some((e, false)),
            Event::Empty(e) => Some((e, true)),
            Event::End(_) => {
                let el = stack.pop().ok_or("unbalanced end tag")?;
                attach(&mut stack, &mut root, el)?;
                None
            }
            Event::Text(t) => {
                if let Some(top) = stack.last_mut() {
                    top.text
                        .push_str(&t.xml10_content().map_err(|e| e.to_string())?);
                }
                None
            }
            Event::CData(t) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&t.decode().map_err(|e| e.to_string())?);
                }
                None
            }
            Event::GeneralRef(r) => {
                let resolved = match r.resolve_char_ref().map_err(|e| e.to_string())? {
                    Some(c) => c.to_string(),
                    None => {
                        let name = r.decode().map_err(|e| e.to_string())?;
                        quick_xml::escape::resolve_predefined_entity(&name)
                            .ok_or_else(|| format!("unknown entity &{name};"))?
                            .to_string()
                    }
                };
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&resolved);
                }
                None
            }
            Event::DocType(_) => return Err("a DOCTYPE is not allowed".into()),
            Event::Eof => break,
            _ => None,
        };
        if let Some((e, empty)) = start {
            let mut el = El {
                ns,
                name: String::from_utf8_lossy(e.local_name().as_ref()).into_owned(),
                ..Default::default()
            };
            for a in e.attributes() {
                let a = a.map_err(|e| e.to_string())?;
                let key = a.key;
                if key.as_namespace_binding().is_some() {
                    continue;
                }
                let value = a
                    .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                    .map_err(|e| e.to_string())?;
                el.attrs.push((
                    String::from_utf8_lossy(key.local_name().as_ref()).into_owned(),
                    value.into_owned(),
                ));
            }
            if empty {
                attach(&mut stack, &mut root, el)?;
            } else {
                stack.push(el);
            }
        }
    }
    if !stack.is_empty() {
        return Err("unclosed element".into());
    }
    root.ok_or_else(|| "no root element".into())
}

fn attach(stack: &mut [El], root: &mut Option<El>, el: El) -> Result<(), String> {
    match stack.last_mut() {
        Some(parent) => parent.children.push(el),
        None if root.is_none() => *root = Some(el),
        None => return Err("more than one root element".into()),
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------------------------

type W = Writer<Vec<u8>>;
type XResult = std::io::Result<()>;

/// Writes `<name>text</name>` (escaped).
fn leaf(w: &mut W, name: &str, text: &str) -> XResult {
    w.create_element(name)
        .write_text_content(BytesText::new(text))?;
    Ok(())
}

/// Writes `<wd:ID wd:type="{ty}">{value}</wd:ID>`.
fn id(w: &mut W, ty: &str, value: &str) -> XResult {
    w.create_element("wd:ID")
        .with_attribute(("wd:type", ty))
        .write_text_content(BytesText::new(value))?;
    Ok(())
}

/// A SOAP envelope around `body`, as `text/xml` with `status`.
fn envelope(status: StatusCode, body: impl FnOnce(&mut W) -> XResult) -> SandboxResponse {
    let mut w = Writer::new(Vec::with_capacity(1024));
    let written = (|| -> XResult {
        w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
        w.create_element("SOAP-ENV:Envelope")
            .with_attribute(("xmlns:SOAP-ENV", SOAP_ENV_NS))
            .with_attribute(("xmlns:wd", BSVC_NS))
            .write_inner_content(|w| {
                w.create_element("SOAP-ENV:Body")
                    .write_inner_content(body)?;
                Ok(())
            })?;
        Ok(())
    })();
    if written.is_err() {
        return SandboxResponse::empty(StatusCode::INTERNAL_SERVER_ERROR);
    }
    let mut headers = HeaderMap::new();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/xml; charset=utf-8"),
    );
    SandboxResponse {
        status,
        headers,
        body: Bytes::from(w.into_inner()),
    }
}

/// A Validation_Fault (research §2 shape).
fn validation_fault(message: &str, detail: &str, xpath: &str) -> SandboxResponse {
    envelope(StatusCode::INTERNAL_SERVER_ERROR, |w| {
        w.create_element("SOAP-ENV:Fault")
            .write_inner_content(|w| {
                leaf(w, "faultcode", "SOAP-ENV:Client.validationError")?;
                leaf(w, "faultstring", "Validation error occurred. ")?;
                w.create_element("detail").write_inner_content(|w| {
                    w.create_element("wd:Validation_Fault")
                        .write_inner_content(|w| {
                            w.create_element("wd:Validation_Error")
                                .write_inner_content(|w| {
                                    leaf(w, "wd:Message", message)?;
                                    leaf(w, "wd:Detail_Message", detail)?;
                                    leaf(w, "wd:Xpath", xpath)
                                })?;
                            Ok(())
                        })?;
                    Ok(())
                })?;
                Ok(())
            })?;
        Ok(())
    })
}

/// A fault with a `Processing_Fault` detail (`faultcode` is ours: see the module comment).
fn processing_fault(faultcode: &str, message: &str) -> SandboxResponse {
    envelope(StatusCode::INTERNAL_SERVER_ERROR, |w| {
        w.create_element("SOAP-ENV:Fault")
            .write_inner_content(|w| {
                leaf(w, "faultcode", faultcode)?;
                leaf(w, "faultstring", message)?;
                w.create_element("detail").write_inner_content(|w| {
                    w.create_element("wd:Processing_Fault")
                        .write_inner_content(|w| {
                            leaf(w, "wd:Detail_Message", message)?;
                            Ok(())
                        })?;
                    Ok(())
                })?;
                Ok(())
            })?;
        Ok(())
    })
}

fn auth_fault() -> SandboxResponse {
    processing_fault(
        "SOAP-ENV:Client.authenticationError",
        "invalid username or password",
    )
}

fn invalid_id(value: &str, ty: &str, xpath: &str) -> SandboxResponse {
    validation_fault(
        &format!("Invalid ID value. '{value}' is not a valid ID value for type = '{ty}'"),
        &format!("No instance of type {ty} has the ID '{value}'."),
        xpath,
    )
}

// ---------------------------------------------------------------------------------------------
// Dispatch
// ---------------------------------------------------------------------------------------------

/// `POST /ccx/service/{tenant}/Human_Resources[/{version}]` (tenant and version already checked).
pub(crate) fn handle(state: &State, req: &SandboxRequest) -> SandboxResponse {
    let Ok(body) = std::str::from_utf8(&req.body) else {
        return processing_fault(
            "SOAP-ENV:Client.processingError",
            "The request is not UTF-8.",
        );
    };
    let root = match parse(body) {
        Ok(r) => r,
        Err(e) => {
            return processing_fault(
                "SOAP-ENV:Client.processingError",
                &format!("The request is not well-formed XML: {e}"),
            )
        }
    };
    if !root.is(SOAP_ENV_NS, "Envelope") {
        return processing_fault(
            "SOAP-ENV:Client.processingError",
            "The request is not a SOAP 1.1 envelope.",
        );
    }
    let soap = |name: &'static str| move |c: &&El| c.is(SOAP_ENV_NS, name);
    let token = root
        .children
        .iter()
        .find(soap("Header"))
        .and_then(|h| h.children.iter().find(|c| c.is(WSSE_NS, "Security")))
        .and_then(|s| s.children.iter().find(|c| c.is(WSSE_NS, "UsernameToken")));
    let field = |name: &str| token.and_then(|t| t.children.iter().find(|c| c.is(WSSE_NS, name)));
    let user = field("Username").map(El::text);
    let password = field("Password");
    let text_type = password
        .and_then(|p| p.attr("Type"))
        .is_none_or(|t| t == PASSWORD_TEXT);
    let op = root
        .children
        .iter()
        .find(soap("Body"))
        .and_then(|b| b.children.first());
    let mut g = state.lock();
    let w = &mut g.workday;
    let authorized = text_type
        && user == Some(crate::workday::WORKDAY_USERNAME)
        && password.is_some_and(|p| p.text == w.password);
    if !authorized {
        return auth_fault();
    }
    let Some(op) = op else {
        return processing_fault(
            "SOAP-ENV:Client.processingError",
            "The SOAP Body has no request element.",
        );
    };
    if op.ns.as_deref() != Some(BSVC_NS) {
        return processing_fault(
            "SOAP-ENV:Client.processingError",
            &format!(
                "The request element {} is not in the namespace {BSVC_NS}.",
                op.name
            ),
        );
    }
    match op.name.as_str() {
        "Get_Workers_Request" => get_workers(w, op),
        "Change_Work_Contact_Information_Request" => change_work_contact(w, op),
        "Workday_Account_for_Worker_Update_Request" => account_update(w, op),
        other => processing_fault(
            "SOAP-ENV:Client.processingError",
            &format!("The operation {other} is not supported by the sandbox."),
        ),
    }
}

/// The `wd:version` attribute of the request, echoed (the sandbox's version when absent).
fn version_of(op: &El) -> String {
    op.attr("version").unwrap_or(WWS_VERSION).to_string()
}

fn get_workers(w: &Workday, op: &El) -> SandboxResponse {
    const XP: &str = "/wd:Get_Workers_Request[1]/wd:Request_References[1]";
    let personal = xsd_bool(
        op.path(&["Response_Group", "Include_Personal_Information"])
            .map(El::text),
    )
    .unwrap_or(false);
    let (workers, total, page, pages) = match op.child("Request_References") {
        Some(refs) => {
            let mut out = Vec::new();
            for (i, r) in refs.all("Worker_Reference").enumerate() {
                let xpath = format!("{XP}/wd:Worker_Reference[{}]/wd:ID[1]", i + 1);
                let Some(eid) = r.id_where("type", "Employee_ID") else {
                    return validation_fault(
                        "Worker_Reference needs an ID of type Employee_ID.",
                        "Only Employee_ID references are supported by the sandbox.",
                        &xpath,
                    );
                };
                match w.wws_worker(eid) {
                    Some(worker) => out.push(worker),
                    None => return invalid_id(eid, "Employee_ID", &xpath),
                }
            }
            let n = out.len();
            (out, n, 1, usize::from(n > 0))
        }
        None => {
            let filter = op.child("Response_Filter");
            let num = |name: &str| {
                filter
                    .and_then(|f| f.child(name))
                    .and_then(|e| e.text().parse::<usize>().ok())
            };
            let count = num("Count").unwrap_or(DEFAULT_COUNT).clamp(1, MAX_COUNT);
            let page = num("Page").unwrap_or(1).max(1);
            let ids = w.wws_ids();
            let total = ids.len();
            let pages = total.div_ceil(count);
            let workers = ids
                .iter()
                .skip((page - 1).saturating_mul(count))
                .take(count)
                .filter_map(|id| w.wws_worker(id))
                .collect();
            (workers, total, page, pages)
        }
    };
    let version = version_of(op);
    envelope(StatusCode::OK, |x| {
        x.create_element("wd:Get_Workers_Response")
            .with_attribute(("wd:version", version.as_str()))
            .write_inner_content(|x| {
                x.create_element("wd:Response_Results")
                    .write_inner_content(|x| {
                        leaf(x, "wd:Total_Results", &total.to_string())?;
                        leaf(x, "wd:Total_Pages", &pages.to_string())?;
                        leaf(x, "wd:Page_Results", &workers.len().to_string())?;
                        leaf(x, "wd:Page", &page.to_string())
                    })?;
                x.create_element("wd:Response_Data")
                    .write_inner_content(|x| {
                        for worker in &workers {
                            write_worker(x, worker, personal)?;
                        }
                        Ok(())
                    })?;
                Ok(())
            })?;
        Ok(())
    })
}

/// The `Email_ID` of an address (stable: derived from the worker and the address).
fn email_id(employee_id: &str, address: &str) -> String {
    format!(
        "EMAIL_REFERENCE-{}-{:016x}",
        employee_id,
        fnv(&address.to_ascii_lowercase())
    )
}

fn write_worker(x: &mut W, worker: &WwsWorker, personal: bool) -> XResult {
    x.create_element("wd:Worker").write_inner_content(|x| {
        x.create_element("wd:Worker_Reference")
            .write_inner_content(|x| id(x, "Employee_ID", &worker.employee_id))?;
        x.create_element("wd:Worker_Data")
            .write_inner_content(|x| {
                leaf(x, "wd:Worker_ID", &worker.employee_id)?;
                if let Some(u) = &worker.user_name {
                    leaf(x, "wd:User_ID", u)?;
                }
                if personal {
                    x.create_element("wd:Personal_Data")
                        .write_inner_content(|x| {
                            x.create_element("wd:Contact_Data")
                                .write_inner_content(|x| {
                                    for e in &worker.emails {
                                        write_email(x, &worker.employee_id, e)?;
                                    }
                                    Ok(())
                                })?;
                            Ok(())
                        })?;
                }
                Ok(())
            })?;
        Ok(())
    })?;
    Ok(())
}

fn write_email(x: &mut W, employee_id: &str, e: &Email) -> XResult {
    x.create_element("wd:Email_Address_Data")
        .write_inner_content(|x| {
            leaf(x, "wd:Email_Address", &e.address)?;
            x.create_element("wd:Usage_Data")
                .with_attribute(("wd:Public", if e.usage == Usage::Work { "1" } else { "0" }))
                .write_inner_content(|x| {
                    x.create_element("wd:Type_Data")
                        .with_attribute(("wd:Primary", if e.primary { "1" } else { "0" }))
                        .write_inner_content(|x| {
                            x.create_element("wd:Type_Reference")
                                .with_attribute(("wd:Descriptor", e.usage.descriptor()))
                                .write_inner_content(|x| {
                                    id(x, "Communication_Usage_Type_ID", e.usage.id())
                                })?;
                            Ok(())
                        })?;
                    Ok(())
                })?;
            x.create_element("wd:Email_Reference")
                .write_inner_content(|x| id(x, "Email_ID", &email_id(employee_id, &e.address)))?;
            Ok(())
        })?;
    Ok(())
}

/// One `@`, both parts non-empty, no whitespace or control characters (our check).
fn valid_email(a: &str) -> bool {
    let Some((local, domain)) = a.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.is_empty()
        && !domain.contains('@')
        && !a.chars().any(|c| c.is_whitespace() || c.is_control())
}

fn event_response(op_name: &str, version: &str) -> SandboxResponse {
    let wid = uuid::Uuid::new_v4().simple().to_string();
    envelope(StatusCode::OK, |x| {
        x.create_element(op_name)
            .with_attribute(("wd:version", version))
            .write_inner_content(|x| {
                x.create_element("wd:Event_Reference")
                    .write_inner_content(|x| id(x, "WID", &wid))?;
                Ok(())
            })?;
        Ok(())
    })
}

fn change_work_contact(w: &mut Workday, op: &El) -> SandboxResponse {
    const XP: &str =
        "/wd:Change_Work_Contact_Information_Request[1]/wd:Change_Work_Contact_Information_Data[1]";
    let Some(data) = op.child("Change_Work_Contact_Information_Data") else {
        return validation_fault(
            "Change_Work_Contact_Information_Data is required.",
            "The request has no Change_Work_Contact_Information_Data element.",
            "/wd:Change_Work_Contact_Information_Request[1]",
        );
    };
    let person_xp = format!("{XP}/wd:Person_Reference[1]/wd:ID[1]");
    let Some(eid) = data
        .child("Person_Reference")
        .and_then(|p| p.id_where("type", "Employee_ID"))
    else {
        return validation_fault(
            "Person_Reference needs an ID of type Employee_ID.",
            "The Workday Writeback app joins on the WorkerID (Employee_ID).",
            &person_xp,
        );
    };
    let Some(mut worker) = w.wws_worker(eid) else {
        return invalid_id(eid, "Employee_ID", &person_xp);
    };
    let Some(contact) = data.child("Person_Contact_Information_Data") else {
        return validation_fault(
            "Person_Contact_Information_Data is required.",
            "The request has no Person_Contact_Information_Data element.",
            XP,
        );
    };
    let pxp =
        format!("{XP}/wd:Person_Contact_Information_Data[1]/wd:Person_Email_Information_Data[1]");
    if let Some(info) = contact.child("Person_Email_Information_Data") {
        let replace_all = xsd_bool(info.attr("Replace_All")).unwrap_or(false);
        if replace_all {
            worker
                .emails
                .retain(|e| e.usage != Usage::Work || e.primary);
        }
        for (i, entry) in info.all("Email_Information_Data").enumerate() {
            let exp = format!("{pxp}/wd:Email_Information_Data[{}]", i + 1);
            if let Err(fault) = apply_email(&mut worker, entry, replace_all, &exp) {
                return *fault;
            }
        }
        let primaries = worker
            .emails
            .iter()
            .filter(|e| e.usage == Usage::Work && e.primary)
            .count();
        let others = worker
            .emails
            .iter()
            .filter(|e| e.usage == Usage::Work && !e.primary)
            .count();
        if primaries != 1 && (primaries > 1 || others > 0) {
            return validation_fault(
                "A worker must have exactly one primary work email address before additional ones can be added.",
                "Only one work email address can be primary.",
                &pxp,
            );
        }
    }
    w.put_wws_worker(worker);
    event_response(
        "wd:Change_Work_Contact_Information_Response",
        &version_of(op),
    )
}

fn fail(r: SandboxResponse) -> Result<(), Box<SandboxResponse>> {
    Err(Box::new(r))
}

/// Applies one `Email_Information_Data` to `worker`, or the fault it gives.
fn apply_email(
    worker: &mut WwsWorker,
    entry: &El,
    replace_all: bool,
    exp: &str,
) -> Result<(), Box<SandboxResponse>> {
    let delete = xsd_bool(entry.attr("Delete")).unwrap_or(false);
    let reference = entry
        .child("Email_Reference")
        .and_then(|r| r.id_where("type", "Email_ID"))
        .map(str::to_string);
    if replace_all && (delete || reference.is_some()) {
        return fail(validation_fault(
            "Delete and Email_Reference cannot be used when Replace_All is true.",
            "Replace_All deletes all non-primary email addresses and creates new ones.",
            exp,
        ));
    }
    let existing = match &reference {
        Some(r) => match worker
            .emails
            .iter()
            .position(|e| email_id(&worker.employee_id, &e.address) == *r)
        {
            Some(i) => Some(i),
            None => {
                return fail(invalid_id(
                    r,
                    "Email_ID",
                    &format!("{exp}/wd:Email_Reference[1]/wd:ID[1]"),
                ))
            }
        },
        None => None,
    };
    if delete {
        let Some(i) = existing else {
            return fail(validation_fault(
                "Email_Reference is required to delete an email address.",
                "Delete needs the Email_Reference of the address to delete.",
                exp,
            ));
        };
        if worker.emails.get(i).is_some_and(|e| e.usage == Usage::Home) {
            return fail(home_fault(exp));
        }
        worker.emails.remove(i);
        return Ok(());
    }
    let uxp = format!("{exp}/wd:Usage_Data[1]/wd:Type_Data[1]/wd:Type_Reference[1]/wd:ID[1]");
    let type_data = entry.path(&["Usage_Data", "Type_Data"]);
    let usage_id = type_data
        .and_then(|t| t.child("Type_Reference"))
        .and_then(|r| r.id_where("type", "Communication_Usage_Type_ID"));
    let usage = match usage_id {
        None => {
            return fail(validation_fault(
                "Usage_Data with a Communication_Usage_Type_ID is required.",
                "The email address has no usage type.",
                &uxp,
            ))
        }
        Some(u) => match Usage::parse(u) {
            Some(Usage::Work) => Usage::Work,
            Some(Usage::Home) => return fail(home_fault(&uxp)),
            None => return fail(invalid_id(u, "Communication_Usage_Type_ID", &uxp)),
        },
    };
    let primary = xsd_bool(type_data.and_then(|t| t.attr("Primary"))).unwrap_or(false);
    let axp = format!("{exp}/wd:Email_Data[1]/wd:Email_Address[1]");
    let address = entry
        .path(&["Email_Data", "Email_Address"])
        .map(El::text)
        .unwrap_or("");
    if !valid_email(address) {
        return fail(validation_fault(
            &format!("Invalid Email Address: '{address}'"),
            "An email address needs one '@', a local part and a domain, and no spaces.",
            &axp,
        ));
    }
    match existing {
        Some(i) => {
            let Some(e) = worker.emails.get_mut(i) else {
                return Ok(());
            };
            if e.usage == Usage::Home {
                return fail(home_fault(exp));
            }
            if e.primary != primary {
                return fail(validation_fault(
                    "A primary email address cannot be changed into an additional one, nor the reverse.",
                    "Change the Primary flag by adding a new address instead.",
                    &format!("{exp}/wd:Usage_Data[1]/wd:Type_Data[1]"),
                ));
            }
            e.address = address.to_string();
        }
        None if primary => {
            // The new primary WORK email replaces the old one; a non-primary copy of it goes.
            worker.emails.retain(|e| {
                !(e.usage == Usage::Work && (e.primary || e.address.eq_ignore_ascii_case(address)))
            });
            worker.emails.push(Email {
                address: address.to_string(),
                usage,
                primary: true,
            });
        }
        None => {
            let known = worker
                .emails
                .iter()
                .any(|e| e.usage == Usage::Work && e.address.eq_ignore_ascii_case(address));
            if !known {
                worker.emails.push(Email {
                    address: address.to_string(),
                    usage,
                    primary: false,
                });
            }
        }
    }
    Ok(())
}

fn home_fault(xpath: &str) -> SandboxResponse {
    validation_fault(
        "Only Work Contact Information can be maintained through this web service. To maintain Home Contact Information, use the Change Home Contact Information web service.",
        "Communication_Usage_Type_ID HOME is not allowed in Change_Work_Contact_Information.",
        xpath,
    )
}

fn account_update(w: &mut Workday, op: &El) -> SandboxResponse {
    const XP: &str = "/wd:Workday_Account_for_Worker_Update_Request[1]/wd:Worker_Reference[1]";
    let wr = op.child("Worker_Reference");
    let eid = wr.and_then(|r| {
        ["Employee_Reference", "Contingent_Worker_Reference"]
            .iter()
            .filter_map(|k| r.child(k))
            .filter_map(|e| e.child("Integration_ID_Reference"))
            .find_map(|i| i.id_where("System_ID", "WD-EMPLID"))
            .or_else(|| r.id_where("type", "Employee_ID"))
    });
    let Some(eid) = eid else {
        return validation_fault(
            "Worker_Reference needs an Employee_Reference/Integration_ID_Reference/ID with System_ID WD-EMPLID, or an ID of type Employee_ID.",
            "The worker could not be identified.",
            XP,
        );
    };
    let Some(mut worker) = w.wws_worker(eid) else {
        return invalid_id(
            eid,
            "Employee_ID",
            &format!("{XP}/wd:Employee_Reference[1]/wd:Integration_ID_Reference[1]/wd:ID[1]"),
        );
    };
    let user = op
        .path(&["Workday_Account_for_Worker_Data", "User_Name"])
        .map(El::text)
        .unwrap_or("");
    if user.is_empty() {
        return validation_fault(
            "User Name is required.",
            "Workday_Account_for_Worker_Data/User_Name is empty or missing.",
            "/wd:Workday_Account_for_Worker_Update_Request[1]/wd:Workday_Account_for_Worker_Data[1]/wd:User_Name[1]",
        );
    }
    worker.user_name = Some(user.to_string());
    w.put_wws_worker(worker);
    let version = version_of(op);
    envelope(StatusCode::OK, |x| {
        x.create_element("wd:Workday_Account_for_Worker_Update_Response")
            .with_attribute(("wd:version", version.as_str()))
            .write_empty()?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert!(is_version("v44.2"));
        assert!(is_version("v9.0"));
        assert!(!is_version("v44"));
        assert!(!is_version("44.2"));
        assert!(!is_version("v4a.2"));
    }

    #[test]
    fn parses_any_prefix_and_entities() {
        let el = parse(
            r#"<x:A xmlns:x="urn:com.workday/bsvc"><x:B x:type="T">a &amp; b&#x21;</x:B><C/></x:A>"#,
        )
        .unwrap_or_default();
        assert!(el.is(BSVC_NS, "A"));
        assert_eq!(el.id_where("type", "T"), None);
        let b = el.child("B");
        assert_eq!(b.map(El::text), Some("a & b!"));
        assert_eq!(b.and_then(|b| b.attr("type")), Some("T"));
        assert_eq!(el.children.len(), 2);
        assert!(el.child("C").is_none());
        assert!(parse("<a><b></a>").is_err());
        assert!(parse("<a/><b/>").is_err());
    }

    #[test]
    fn faults_escape_values() {
        let r = validation_fault("a<b & \"c\"", "d", "/x");
        let text = String::from_utf8_lossy(&r.body).into_owned();
        assert!(
            text.contains("<wd:Message>a&lt;b &amp; &quot;c&quot;</wd:Message>"),
            "{text}"
        );
        assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn email_syntax() {
        assert!(valid_email("a@b.org"));
        assert!(!valid_email("a@"));
        assert!(!valid_email("a b@c.org"));
        assert!(!valid_email("a@b@c"));
        assert!(!valid_email("nope"));
    }
}
