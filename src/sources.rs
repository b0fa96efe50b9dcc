//! HR sources read from files: a CSV export keyed by `employeeId` (Workday "Worker" report or any HRIS).
//! Workday as a live source is on the roadmap; it becomes one more loader producing an [`HrIndex`].

use std::path::Path;

use entra_core::{HrIndex, SourceValues};

/// Why an HR file could not be used. Never quotes a personal email.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot read HR file {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("HR file {path} has no `{column}` column (accepted headers: {accepted}); add it or rename the header")]
    MissingColumn {
        path: String,
        column: &'static str,
        accepted: &'static str,
    },
    #[error("HR file {path}, line {line}: {reason}")]
    Row {
        path: String,
        line: u64,
        reason: String,
    },
}

const EMPLOYEE_ID: &[&str] = &[
    "employeeid",
    "employee_id",
    "employee id",
    "worker_id",
    "workerid",
];
const PERSONAL_EMAIL: &[&str] = &[
    "personalemail",
    "personal_email",
    "personal email",
    "email_address_personal",
];
const COUNTRY: &[&str] = &[
    "country",
    "countrycode",
    "country_code",
    "country code",
    "usagelocation",
];

fn find(headers: &csv::StringRecord, names: &[&str]) -> Option<usize> {
    headers.iter().position(|h| {
        names.contains(
            &h.trim()
                .trim_start_matches('\u{feff}')
                .to_ascii_lowercase()
                .as_str(),
        )
    })
}

/// Loads a CSV HR export: a header line with `employeeId`, `personalEmail` and (optionally) `country`.
pub fn load_hr_csv(path: &Path) -> Result<HrIndex, SourceError> {
    let shown = path.display().to_string();
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_path(path)
        .map_err(|e| SourceError::Read {
            path: shown.clone(),
            reason: e.to_string(),
        })?;
    let headers = reader
        .headers()
        .map_err(|e| SourceError::Read {
            path: shown.clone(),
            reason: e.to_string(),
        })?
        .clone();
    let eid = find(&headers, EMPLOYEE_ID).ok_or(SourceError::MissingColumn {
        path: shown.clone(),
        column: "employeeId",
        accepted: "employeeId, employee_id, Worker_ID",
    })?;
    let email = find(&headers, PERSONAL_EMAIL).ok_or(SourceError::MissingColumn {
        path: shown.clone(),
        column: "personalEmail",
        accepted: "personalEmail, personal_email",
    })?;
    let country = find(&headers, COUNTRY);
    let mut records = Vec::new();
    for row in reader.records() {
        let row = row.map_err(|e| SourceError::Row {
            path: shown.clone(),
            line: e.position().map(|p| p.line()).unwrap_or(0),
            reason: "malformed CSV row (check quoting)".into(),
        })?;
        let Some(id) = row.get(eid).map(str::trim).filter(|s| !s.is_empty()) else {
            continue;
        };
        let cell = |i: usize| {
            row.get(i)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        records.push((
            id.to_string(),
            SourceValues {
                personal_email: cell(email),
                country: country.and_then(cell),
            },
        ));
    }
    Ok(HrIndex::from_records(records))
}
