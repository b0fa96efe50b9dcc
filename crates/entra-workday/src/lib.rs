//! Workday as entra-enrich's HR source: a Report-as-a-Service (RaaS) custom report in JSON, read row
//! by row, matched by `Employee_ID`. See `auth` for the sign-in, `field` for which column holds what,
//! `report` for the parser, `client` for the calls and their time limits.

pub mod auth;
pub mod client;
pub mod error;
pub mod field;
pub mod report;
mod soap;
pub mod wws;

pub use auth::{Secret, SecretFetch, WorkdayAuth};
pub use client::{RaasClient, RaasOptions, REPORT_URL_SETTING};
pub use error::{redact_url, WorkdayError, WorkdayErrorKind};
pub use field::{FieldPath, FieldPathError, FieldValue};
pub use report::{read_report, ReportError, ReportFields, WorkerRow};
pub use wws::{contact_from_answer, WorkerContact, WorkerEmail, WwsClient, WWS_URL_SETTING};
