//! A RaaS JSON report read row by row: `{"Report_Entry": [row, …]}`, each row an object keyed by the
//! report's column aliases (Workday/raas-python `raas/raas.py` reads `r.json()["Report_Entry"]`;
//! faros-ai/airbyte-connectors `sources/workday-source/src/workday.ts` reads `res.data?.Report_Entry`).
//!
//! The parser holds one row at a time, so a 100,000-worker report costs the memory of one row plus
//! what the caller keeps. A body that is not a JSON object, or has no `Report_Entry` array, is an
//! error, and the caller writes nothing from it: every row is read before any is used.

use std::fmt;
use std::io::Read;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use crate::field::{FieldPath, FieldValue};

/// Which columns hold what.
#[derive(Debug, Clone)]
pub struct ReportFields {
    pub employee_id: FieldPath,
    pub personal_email: FieldPath,
    pub country: Option<FieldPath>,
}

/// One worker, as the report gave it. Values are trimmed; an ambiguous one is counted, not kept.
#[derive(Clone, PartialEq, Eq)]
pub struct WorkerRow {
    pub employee_id: Option<String>,
    pub personal_email: FieldValue,
    pub country: FieldValue,
}

impl fmt::Debug for WorkerRow {
    // A personal email is a password-reset factor: never in a debug line. Nor is the country, which a
    // misconfigured path could point at an email column.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shape = |v: &FieldValue| match v {
            FieldValue::Missing => "missing".to_string(),
            FieldValue::One(_) => "present".to_string(),
            FieldValue::Many(n) => format!("{n} values"),
        };
        f.debug_struct("WorkerRow")
            .field("employee_id", &self.employee_id)
            .field("personal_email", &shape(&self.personal_email))
            .field("country", &shape(&self.country))
            .finish()
    }
}

impl ReportFields {
    /// The worker in `row`.
    pub fn worker(&self, row: &Value) -> WorkerRow {
        WorkerRow {
            employee_id: self.employee_id.extract(row).one(),
            personal_email: self.personal_email.extract(row),
            country: self
                .country
                .as_ref()
                .map_or(FieldValue::Missing, |c| c.extract(row)),
        }
    }
}

/// Why a report body could not be used. Never quotes a value from it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    #[error("the report is not JSON in the RaaS shape ({0}); check that the URL names a RaaS report and asks for format=json")]
    NotJson(String),
    #[error("the report has no Report_Entry array; check that the URL names a web-service-enabled advanced report")]
    NoEntries,
    #[error("row {row} of the report is not an object")]
    Row { row: u64 },
    #[error("the report could not be read: {0}")]
    Read(String),
}

/// Reads `body`, calling `each` with every row's worker in order; returns how many rows it read.
pub fn read_report(
    body: impl Read,
    fields: &ReportFields,
    each: &mut dyn FnMut(WorkerRow),
) -> Result<u64, ReportError> {
    let mut de = serde_json::Deserializer::from_reader(std::io::BufReader::new(body));
    let mut rows = 0;
    let found = de
        .deserialize_map(Report {
            fields,
            each,
            rows: &mut rows,
        })
        .map_err(classify)?;
    de.end().map_err(classify)?;
    if !found {
        return Err(ReportError::NoEntries);
    }
    Ok(rows)
}

/// A serde error as a report error: a failed read is I/O, the rest is the body's shape. The message
/// is serde's position text ("expected … at line 1 column 5"), never the offending value.
fn classify(e: serde_json::Error) -> ReportError {
    if let Some(row) = row_of(&e) {
        return ReportError::Row { row };
    }
    match e.classify() {
        serde_json::error::Category::Io => ReportError::Read(e.to_string()),
        _ => ReportError::NotJson(format!("line {} column {}", e.line(), e.column())),
    }
}

const ROW_MARK: &str = "entra-enrich: row ";

fn row_of(e: &serde_json::Error) -> Option<u64> {
    let text = e.to_string();
    let rest = text.split(ROW_MARK).nth(1)?;
    rest.split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

struct Report<'a> {
    fields: &'a ReportFields,
    each: &'a mut dyn FnMut(WorkerRow),
    rows: &'a mut u64,
}

impl<'de> Visitor<'de> for Report<'_> {
    /// Whether `Report_Entry` was there.
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object with a Report_Entry array")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        let mut found = false;
        while let Some(key) = map.next_key::<String>()? {
            if key == "Report_Entry" && !found {
                found = true;
                map.next_value_seed(Rows {
                    fields: self.fields,
                    each: &mut *self.each,
                    rows: &mut *self.rows,
                })?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }
}

struct Rows<'a> {
    fields: &'a ReportFields,
    each: &'a mut dyn FnMut(WorkerRow),
    rows: &'a mut u64,
}

impl<'de> DeserializeSeed<'de> for Rows<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Rows<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Report_Entry as an array of rows")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(row) = seq.next_element::<Value>()? {
            *self.rows += 1;
            if !row.is_object() {
                return Err(serde::de::Error::custom(format!(
                    "{ROW_MARK}{}",
                    *self.rows
                )));
            }
            (self.each)(self.fields.worker(&row));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields() -> ReportFields {
        ReportFields {
            employee_id: FieldPath::parse("Employee_ID").expect("path"),
            personal_email: FieldPath::parse("Email_Addresses[Usage=HOME].Email_Address")
                .expect("path"),
            country: Some(FieldPath::parse("Country").expect("path")),
        }
    }

    fn read(body: &str) -> Result<Vec<WorkerRow>, ReportError> {
        let mut out = Vec::new();
        read_report(body.as_bytes(), &fields(), &mut |w| out.push(w))?;
        Ok(out)
    }

    #[test]
    fn rows_in_order_with_other_keys_ignored() {
        let body = r#"{"Other": {"x": [1, 2]}, "Report_Entry": [
            {"Employee_ID": "E1", "Country": "GB", "Email_Addresses": [{"Usage": "HOME", "Email_Address": "a@example.org"}]},
            {"Employee_ID": "E2"}
        ], "Trailer": 1}"#;
        let rows = read(body).expect("report");
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].employee_id.as_deref(), Some("E1"));
        assert_eq!(
            rows[0].personal_email,
            FieldValue::One("a@example.org".into())
        );
        assert_eq!(rows[0].country, FieldValue::One("GB".into()));
        assert_eq!(rows[1].personal_email, FieldValue::Missing);
        assert!(!format!("{:?}", rows[0]).contains("a@example.org"));
    }

    #[test]
    fn an_empty_report_is_zero_rows() {
        assert_eq!(read(r#"{"Report_Entry": []}"#).expect("report").len(), 0);
    }

    #[test]
    fn bodies_that_are_not_a_report_are_refused_without_quoting_them() {
        let cases = [
            ("<wd:Report_Data/>", "not JSON"),
            ("", "not JSON"),
            (r#"{"Report_Entry": [{"Employee_ID": "E1"}"#, "not JSON"),
            (
                r#"{"Report_Entry": [{"a": "secret@example.org"}]} trailing"#,
                "not JSON",
            ),
            (r#"{"Report_Data": []}"#, "no Report_Entry"),
            (r#"["secret@example.org"]"#, "not JSON"),
            (r#"{"Report_Entry": {"Employee_ID": "E1"}}"#, "not JSON"),
            (
                r#"{"Report_Entry": [{"Employee_ID": "E1"}, "secret@example.org"]}"#,
                "row 2",
            ),
        ];
        for (body, expected) in cases {
            let e = read(body).expect_err(body);
            let text = e.to_string();
            assert!(text.contains(expected), "{body}: {text}");
            assert!(!text.contains("secret@"), "{text}");
        }
    }
}
