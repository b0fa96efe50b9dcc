//! SOAP 1.1 for Workday Web Services: requests written with quick-xml (every value escaped), answers
//! read into a small element tree with names resolved to their namespace, so any prefix works.
//!
//! Envelope and WS-Security UsernameToken (PasswordText): treestryder/powershell_module_workdayapi
//! `source/public/Invoke-WorkdayRequest.ps1`. Fault shape (HTTP 500, `faultcode`, `faultstring`,
//! `detail/Validation_Fault/Validation_Error/{Message,Detail_Message,Xpath}`): the same project's
//! `Invoke-WorkdayRequestHelper.psm1`.
//!
//! The sandbox reads and writes SOAP with its own code on purpose: an emulator that shared the
//! client's parser would share its mistakes, and the tests would not see them.

use quick_xml::events::{BytesDecl, BytesText, Event};
use quick_xml::name::{Namespace, ResolveResult};
use quick_xml::reader::NsReader;
use quick_xml::Writer;

pub(crate) const SOAP_ENV_NS: &str = "http://schemas.xmlsoap.org/soap/envelope/";
pub(crate) const BSVC_NS: &str = "urn:com.workday/bsvc";
pub(crate) const WSSE_NS: &str =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd";
const PASSWORD_TEXT: &str =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordText";

pub(crate) type W = Writer<Vec<u8>>;
pub(crate) type XResult = std::io::Result<()>;

/// `<name>text</name>`, escaped.
pub(crate) fn leaf(w: &mut W, name: &str, text: &str) -> XResult {
    w.create_element(name)
        .write_text_content(BytesText::new(text))?;
    Ok(())
}

/// `<bsvc:ID bsvc:type="{ty}">{value}</bsvc:ID>`.
pub(crate) fn id(w: &mut W, ty: &str, value: &str) -> XResult {
    w.create_element("bsvc:ID")
        .with_attribute(("bsvc:type", ty))
        .write_text_content(BytesText::new(value))?;
    Ok(())
}

/// The envelope: the UsernameToken header, then `body` in `soapenv:Body`.
pub(crate) fn envelope(
    username: &str,
    password: &str,
    body: impl FnOnce(&mut W) -> XResult,
) -> std::io::Result<Vec<u8>> {
    let mut w = Writer::new(Vec::with_capacity(1024));
    w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    w.create_element("soapenv:Envelope")
        .with_attribute(("xmlns:soapenv", SOAP_ENV_NS))
        .with_attribute(("xmlns:bsvc", BSVC_NS))
        .write_inner_content(|w| {
            w.create_element("soapenv:Header")
                .write_inner_content(|w| {
                    w.create_element("wsse:Security")
                        .with_attribute(("xmlns:wsse", WSSE_NS))
                        .write_inner_content(|w| {
                            w.create_element("wsse:UsernameToken")
                                .write_inner_content(|w| {
                                    leaf(w, "wsse:Username", username)?;
                                    w.create_element("wsse:Password")
                                        .with_attribute(("Type", PASSWORD_TEXT))
                                        .write_text_content(BytesText::new(password))?;
                                    Ok(())
                                })?;
                            Ok(())
                        })?;
                    Ok(())
                })?;
            w.create_element("soapenv:Body").write_inner_content(body)?;
            Ok(())
        })?;
    Ok(w.into_inner())
}

/// One element of an answer.
#[derive(Debug, Clone, Default)]
pub(crate) struct El {
    ns: Option<String>,
    name: String,
    attrs: Vec<(String, String)>,
    text: String,
    pub(crate) children: Vec<El>,
}

impl El {
    pub(crate) fn is(&self, ns: &str, name: &str) -> bool {
        self.ns.as_deref() == Some(ns) && self.name == name
    }
    /// Child elements `{ns}name` in the Workday namespace.
    pub(crate) fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a El> + 'a {
        self.children.iter().filter(move |c| c.is(BSVC_NS, name))
    }
    pub(crate) fn child(&self, name: &str) -> Option<&El> {
        self.children.iter().find(|c| c.is(BSVC_NS, name))
    }
    /// A child in any namespace (or none), by local name: SOAP's own `faultcode`, `faultstring`.
    pub(crate) fn plain_child(&self, name: &str) -> Option<&El> {
        self.children.iter().find(|c| c.name == name)
    }
    pub(crate) fn path(&self, names: &[&str]) -> Option<&El> {
        names.iter().try_fold(self, |el, n| el.child(n))
    }
    pub(crate) fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    pub(crate) fn text(&self) -> &str {
        self.text.trim()
    }
    /// Every descendant (depth first) named `name` in the Workday namespace.
    pub(crate) fn find_all<'a>(&'a self, name: &'a str, out: &mut Vec<&'a El>) {
        for c in &self.children {
            if c.is(BSVC_NS, name) {
                out.push(c);
            }
            c.find_all(name, out);
        }
    }
}

/// `true`/`1`, `false`/`0` (xsd:boolean).
pub(crate) fn xsd_bool(s: Option<&str>) -> bool {
    matches!(s.map(str::trim), Some("true" | "1"))
}

/// Parses an answer. A DOCTYPE is refused (no entity expansion from Workday's side either).
pub(crate) fn parse(body: &str) -> Result<El, String> {
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
                let text = t.xml10_content().map_err(|e| e.to_string())?;
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&text);
                }
                None
            }
            Event::CData(t) => {
                let text = t.decode().map_err(|e| e.to_string())?;
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&text);
                }
                None
            }
            Event::GeneralRef(r) => {
                let resolved = match r.resolve_char_ref().map_err(|e| e.to_string())? {
                    Some(c) => c.to_string(),
                    None => {
                        let name = r.decode().map_err(|e| e.to_string())?;
                        quick_xml::escape::resolve_predefined_entity(&name)
                            .ok_or_else(|| "an unknown entity".to_string())?
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
                if a.key.as_namespace_binding().is_some() {
                    continue;
                }
                let value = a
                    .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                    .map_err(|e| e.to_string())?;
                el.attrs.push((
                    String::from_utf8_lossy(a.key.local_name().as_ref()).into_owned(),
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
        return Err("an element is not closed".into());
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
