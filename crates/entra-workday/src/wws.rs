//! Workday Web Services (SOAP, `Human_Resources`): read a worker's work email and username, write
//! them back. `ENRICH_WORKDAY_WWS_URL` is `https://{host}/ccx/service/{tenant}/Human_Resources/v{NN.N}`
//! (Entra's Workday writeback tutorial; `docs/identity/saas-apps/workday-writeback-tutorial.md`).
//!
//! - `Get_Workers` by `Employee_ID`, with `Include_Personal_Information` (the contact data):
//!   `Worker_Data/Personal_Data/Contact_Data/Email_Address_Data`, one per address, with
//!   `Usage_Data/Type_Data[@Primary]/Type_Reference/ID[@type='Communication_Usage_Type_ID']`
//!   (treestryder `Get-WorkdayWorkerEmail.ps1`).
//! - `Change_Work_Contact_Information` sets the primary WORK email; `Replace_All="false"` keeps the
//!   worker's other addresses (benjaminhansen/workday-wsdl `Person_Email_Information_DataType.php`).
//! - `Workday_Account_for_Worker_Update` sets `User_Name` (treestryder `Set-WorkdayWorkerUserId.ps1`).
//!
//! A SOAP fault is an HTTP 500: a `Validation_Fault` is permanent ([`WorkdayErrorKind::Refused`]),
//! an authentication fault names the credential settings, and a 5xx without a fault or a timeout is
//! transient. Messages name the operation and Workday's words, with any address in them masked.

use std::sync::Arc;
use std::time::Duration;

use crate::auth::WorkdayAuth;
use crate::error::{redact_url, WorkdayError, WorkdayErrorKind};
use crate::soap::{envelope, id, leaf, parse, xsd_bool, El, XResult, SOAP_ENV_NS, W};

/// The setting that holds the endpoint.
pub const WWS_URL_SETTING: &str = "ENRICH_WORKDAY_WWS_URL";

/// One email address of a worker.
#[derive(Clone, PartialEq, Eq)]
pub struct WorkerEmail {
    pub address: String,
    /// `WORK` or `HOME` (`Communication_Usage_Type_ID`).
    pub usage: String,
    pub primary: bool,
}

impl std::fmt::Debug for WorkerEmail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WorkerEmail({}, primary: {})", self.usage, self.primary)
    }
}

/// What Workday holds for a worker, as far as writeback cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerContact {
    pub employee_id: String,
    pub user_name: Option<String>,
    pub emails: Vec<WorkerEmail>,
}

impl WorkerContact {
    /// The primary WORK email, if there is one.
    pub fn work_email(&self) -> Option<&str> {
        self.emails
            .iter()
            .find(|e| e.primary && e.usage.eq_ignore_ascii_case("WORK"))
            .map(|e| e.address.as_str())
    }
}

/// The SOAP client of one tenant's Human_Resources service.
#[derive(Debug, Clone)]
pub struct WwsClient {
    http: reqwest::Client,
    url: url::Url,
    auth: Arc<WorkdayAuth>,
    timeout: Duration,
}

impl WwsClient {
    pub fn new(
        url: &str,
        auth: Arc<WorkdayAuth>,
        http: reqwest::Client,
        timeout: Duration,
    ) -> Result<WwsClient, WorkdayError> {
        let bad = |why: &str| {
            WorkdayError::new(
                WorkdayErrorKind::Refused,
                format!("{WWS_URL_SETTING} {why}; it is https://{{host}}/ccx/service/{{tenant}}/Human_Resources/v{{NN.N}}"),
            )
            .with_setting(WWS_URL_SETTING)
        };
        let url = url::Url::parse(url.trim()).map_err(|_| bad("is not a URL"))?;
        if !crate::client::is_https_or_loopback(&url) || url.password().is_some() {
            return Err(bad(
                "is not an https URL without credentials (plain http only on loopback)",
            ));
        }
        if !url.path().contains("/Human_Resources") {
            return Err(bad("does not name the Human_Resources service"));
        }
        Ok(WwsClient {
            http,
            url,
            auth,
            timeout,
        })
    }

    /// The service version in the URL (`v44.2`), stamped on each request.
    fn version(&self) -> String {
        self.url
            .path_segments()
            .and_then(|mut s| s.next_back().map(str::to_string))
            .filter(|v| v.starts_with('v'))
            .unwrap_or_else(|| "v44.2".to_string())
    }

    /// `Get_Workers` for one `Employee_ID`, with the contact data.
    pub async fn worker(&self, employee_id: &str) -> Result<WorkerContact, WorkdayError> {
        let version = self.version();
        let answer = self
            .call("Get_Workers", |w| {
                w.create_element("bsvc:Get_Workers_Request")
                    .with_attribute(("bsvc:version", version.as_str()))
                    .write_inner_content(|w| {
                        w.create_element("bsvc:Request_References")
                            .write_inner_content(|w| {
                                w.create_element("bsvc:Worker_Reference")
                                    .write_inner_content(|w| id(w, "Employee_ID", employee_id))?;
                                Ok(())
                            })?;
                        w.create_element("bsvc:Response_Group")
                            .write_inner_content(|w| {
                                leaf(w, "bsvc:Include_Reference", "true")?;
                                leaf(w, "bsvc:Include_Personal_Information", "true")
                            })?;
                        Ok(())
                    })?;
                Ok(())
            })
            .await?;
        contact_of(employee_id, &answer)
    }

    /// `Change_Work_Contact_Information`: `address` becomes the worker's primary WORK email; the
    /// other addresses stay (`Replace_All="false"`).
    pub async fn set_work_email(
        &self,
        employee_id: &str,
        address: &str,
        effective_date: &str,
    ) -> Result<(), WorkdayError> {
        let version = self.version();
        self.call("Change_Work_Contact_Information", |w| {
            w.create_element("bsvc:Change_Work_Contact_Information_Request")
                .with_attribute(("bsvc:version", version.as_str()))
                .write_inner_content(|w| {
                    w.create_element("bsvc:Business_Process_Parameters")
                        .write_inner_content(|w| {
                            leaf(w, "bsvc:Auto_Complete", "true")?;
                            leaf(w, "bsvc:Run_Now", "true")
                        })?;
                    w.create_element("bsvc:Change_Work_Contact_Information_Data")
                        .write_inner_content(|w| {
                            w.create_element("bsvc:Person_Reference")
                                .write_inner_content(|w| id(w, "Employee_ID", employee_id))?;
                            leaf(w, "bsvc:Event_Effective_Date", effective_date)?;
                            w.create_element("bsvc:Person_Contact_Information_Data")
                                .write_inner_content(|w| work_email(w, address))?;
                            Ok(())
                        })?;
                    Ok(())
                })?;
            Ok(())
        })
        .await
        .map(|_| ())
    }

    /// `Workday_Account_for_Worker_Update`: the worker's Workday username.
    pub async fn set_user_name(
        &self,
        employee_id: &str,
        user_name: &str,
    ) -> Result<(), WorkdayError> {
        let version = self.version();
        self.call("Workday_Account_for_Worker_Update", |w| {
            w.create_element("bsvc:Workday_Account_for_Worker_Update_Request")
                .with_attribute(("bsvc:version", version.as_str()))
                .write_inner_content(|w| {
                    w.create_element("bsvc:Worker_Reference")
                        .write_inner_content(|w| id(w, "Employee_ID", employee_id))?;
                    w.create_element("bsvc:Workday_Account_for_Worker_Data")
                        .write_inner_content(|w| leaf(w, "bsvc:User_Name", user_name))?;
                    Ok(())
                })?;
            Ok(())
        })
        .await
        .map(|_| ())
    }

    /// Posts one operation and returns the answer's first Body child, or the fault as an error.
    async fn call(
        &self,
        operation: &'static str,
        body: impl FnOnce(&mut W) -> XResult,
    ) -> Result<El, WorkdayError> {
        let (username, password) = self.auth.username_token().await?;
        let xml = envelope(&username, &password, body)
            .map_err(|e| refused(operation, &format!("the request could not be written: {e}")))?;
        let sent = self
            .http
            .post(self.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "text/xml; charset=utf-8")
            .header("SOAPAction", "")
            .body(xml)
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|e| crate::client::transport_error(&format!("Workday {operation}"), &e))?;
        let status = sent.status().as_u16();
        let text = sent
            .text()
            .await
            .map_err(|e| crate::client::transport_error(&format!("Workday {operation}"), &e))?;
        answer_of(operation, status, &text, &self.auth.settings()).map_err(|e| {
            if e.setting == Some(WWS_URL_SETTING) && e.status.is_some() {
                let shown = redact_url(&self.url);
                WorkdayError::new(e.kind, format!("{e} at {shown}"))
                    .with_status(status)
                    .with_setting(WWS_URL_SETTING)
            } else {
                e
            }
        })
    }
}

/// `Get_Workers`' answer (HTTP `status`, body `text`) for `employee_id`: the worker's contact data,
/// or the fault as an error. Pure, so the fuzz target drives it as Workday's answers would.
pub fn contact_from_answer(
    employee_id: &str,
    status: u16,
    text: &str,
) -> Result<WorkerContact, WorkdayError> {
    let answer = answer_of(
        "Get_Workers",
        status,
        text,
        "the integration user's settings",
    )?;
    contact_of(employee_id, &answer)
}

/// The answer's first Body child, or the fault (or a bad status) as an error.
fn answer_of(
    operation: &'static str,
    status: u16,
    text: &str,
    credentials: &str,
) -> Result<El, WorkdayError> {
    let root = parse(text);
    let body = root
        .as_ref()
        .ok()
        .filter(|r| r.is(SOAP_ENV_NS, "Envelope"))
        .and_then(|r| r.children.iter().find(|c| c.is(SOAP_ENV_NS, "Body")));
    let fault = body.and_then(|b| b.children.iter().find(|c| c.is(SOAP_ENV_NS, "Fault")));
    if let Some(fault) = fault {
        return Err(fault_error(operation, fault, credentials));
    }
    if !(200..300).contains(&status) {
        let kind = if status >= 500 || status == 429 {
            WorkdayErrorKind::Transient
        } else {
            WorkdayErrorKind::Refused
        };
        return Err(
            WorkdayError::new(kind, format!("Workday {operation} answered {status}"))
                .with_status(status)
                .with_setting(WWS_URL_SETTING),
        );
    }
    body.and_then(|b| b.children.first().cloned())
        .ok_or_else(|| refused(operation, "the answer is not a SOAP envelope"))
}

/// The WORK email element: primary, public, `Replace_All="false"`, `Delete="false"`.
fn work_email(w: &mut W, address: &str) -> XResult {
    w.create_element("bsvc:Person_Email_Information_Data")
        .with_attribute(("bsvc:Replace_All", "false"))
        .write_inner_content(|w| {
            w.create_element("bsvc:Email_Information_Data")
                .with_attribute(("bsvc:Delete", "false"))
                .write_inner_content(|w| {
                    w.create_element("bsvc:Email_Data")
                        .write_inner_content(|w| leaf(w, "bsvc:Email_Address", address))?;
                    w.create_element("bsvc:Usage_Data")
                        .with_attribute(("bsvc:Public", "true"))
                        .write_inner_content(|w| {
                            w.create_element("bsvc:Type_Data")
                                .with_attribute(("bsvc:Primary", "true"))
                                .write_inner_content(|w| {
                                    w.create_element("bsvc:Type_Reference")
                                        .write_inner_content(|w| {
                                            id(w, "Communication_Usage_Type_ID", "WORK")
                                        })?;
                                    Ok(())
                                })?;
                            Ok(())
                        })?;
                    Ok(())
                })?;
            Ok(())
        })?;
    Ok(())
}

/// The worker of a `Get_Workers_Response`.
fn contact_of(employee_id: &str, answer: &El) -> Result<WorkerContact, WorkdayError> {
    let worker = answer
        .path(&["Response_Data", "Worker", "Worker_Data"])
        .ok_or_else(|| {
            refused(
                "Get_Workers",
                "the answer holds no Worker_Data for the worker",
            )
        })?;
    Ok(worker_contact(employee_id, worker))
}

fn worker_contact(employee_id: &str, worker: &El) -> WorkerContact {
    let mut found = Vec::new();
    worker.find_all("Email_Address_Data", &mut found);
    let emails = found
        .into_iter()
        .filter_map(|e| {
            let address = e.child("Email_Address")?.text().to_string();
            let type_data = e.path(&["Usage_Data", "Type_Data"])?;
            let usage = type_data
                .path(&["Type_Reference"])?
                .all("ID")
                .find(|id| id.attr("type") == Some("Communication_Usage_Type_ID"))?
                .text()
                .to_ascii_uppercase();
            Some(WorkerEmail {
                address,
                usage,
                primary: xsd_bool(type_data.attr("Primary")),
            })
        })
        .collect();
    WorkerContact {
        employee_id: employee_id.to_string(),
        user_name: worker
            .child("User_ID")
            .map(|u| u.text().to_string())
            .filter(|u| !u.is_empty()),
        emails,
    }
}

fn refused(operation: &str, why: &str) -> WorkdayError {
    WorkdayError::new(
        WorkdayErrorKind::Refused,
        format!("Workday {operation}: {why}"),
    )
    .with_setting(WWS_URL_SETTING)
}

/// A SOAP fault as an error: Workday's message (addresses masked), the kind from the fault code.
fn fault_error(operation: &str, fault: &El, credentials: &str) -> WorkdayError {
    let code = fault.plain_child("faultcode").map_or("", El::text);
    let mut messages = Vec::new();
    fault.find_all("Message", &mut messages);
    let said = messages
        .first()
        .map(|m| m.text())
        .or_else(|| fault.plain_child("faultstring").map(El::text))
        .unwrap_or("no message");
    let said = entra_core::pii::mask_emails_in(said);
    if code.contains("authentication") {
        return WorkdayError::new(
            WorkdayErrorKind::Auth,
            format!("Workday refused the credentials for {operation}; check {credentials}"),
        )
        .with_status(500)
        .with_setting(crate::auth::USERNAME_SETTING);
    }
    // `Client.*` faults (validation, processing of what we sent) do not change on a retry.
    let kind = if code.contains("Client") {
        WorkdayErrorKind::Refused
    } else {
        WorkdayErrorKind::Transient
    };
    WorkdayError::new(kind, format!("Workday refused {operation}: {said}")).with_status(500)
}
