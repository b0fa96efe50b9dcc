//! The backfill report: every user not updated, with the reason, as JSON and CSV, and a summary table.
//! Personal emails are masked unless the operator asks for them (`--show-pii`).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use entra_core::pii::mask_email;
use entra_core::Outcome;
use serde::Serialize;

use super::apply::UserResult;

/// One report line.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportRow {
    pub user_id: String,
    pub user_principal_name: Option<String>,
    pub employee_id: Option<String>,
    /// The provisioning-log code, e.g. `DuplicateTargetEntries`.
    pub outcome: String,
    /// The reason, and the fix where there is one.
    pub detail: String,
    /// The HR personal email involved, masked unless `--show-pii`.
    pub personal_email: Option<String>,
}

impl ReportRow {
    /// A row for `result`, keeping the personal email (masking happens at rendering).
    pub fn from_result(result: &UserResult, personal_email: Option<&str>) -> Self {
        let mut detail = result.outcome.describe();
        for issue in &result.issues {
            let _ = write!(detail, "; {}: {}", issue.field, issue.reason);
        }
        Self {
            user_id: result.user_id.clone(),
            user_principal_name: result.user_principal_name.clone(),
            employee_id: result.employee_id.clone(),
            outcome: result.report_code().to_string(),
            detail,
            personal_email: personal_email.map(str::to_string),
        }
    }

    fn shown(&self, show_pii: bool) -> Self {
        let mut row = self.clone();
        if !show_pii {
            row.personal_email = row.personal_email.as_deref().map(mask_email);
        }
        row
    }
}

/// True when a result belongs in the report: every user not fully updated, that is anything but a
/// clean update (`EntryExportUpdate`) or an unchanged user (`NoChangeRequired`). The outcome table
/// counts by the same [`UserResult::report_code`], so its other rows add up to the report.
pub fn belongs_in_report(result: &UserResult) -> bool {
    !is_fully_updated_code(result.report_code())
}

/// `EntryExportUpdate` and `NoChangeRequired`: the codes that are not in the report.
pub fn is_fully_updated_code(code: &str) -> bool {
    code == Outcome::Unchanged.code() || code == FULL_UPDATE
}

const FULL_UPDATE: &str = "EntryExportUpdate";

/// The report as a JSON array.
pub fn render_json(rows: &[ReportRow], show_pii: bool) -> Vec<u8> {
    let shown: Vec<ReportRow> = rows.iter().map(|r| r.shown(show_pii)).collect();
    serde_json::to_vec_pretty(&shown).unwrap_or_default()
}

/// The report as CSV with a header line. Every cell is neutralised against spreadsheet formulas.
pub fn render_csv(rows: &[ReportRow], show_pii: bool) -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let _ = w.write_record([
        "userId",
        "userPrincipalName",
        "employeeId",
        "outcome",
        "detail",
        "personalEmail",
    ]);
    for r in rows {
        let r = r.shown(show_pii);
        let cells = [
            r.user_id.as_str(),
            r.user_principal_name.as_deref().unwrap_or(""),
            r.employee_id.as_deref().unwrap_or(""),
            r.outcome.as_str(),
            r.detail.as_str(),
            r.personal_email.as_deref().unwrap_or(""),
        ];
        let _ = w.write_record(cells.map(|c| neutralise_formula(c).into_owned()));
    }
    w.into_inner().unwrap_or_default()
}

/// OWASP's CSV-injection advice (<https://owasp.org/www-community/attacks/CSV_Injection>): a cell
/// that starts with `=`, `+`, `-`, `@`, a tab or a carriage return is prefixed with `'`, so that a
/// spreadsheet shows it as text instead of running it as a formula. Values come from HR and from
/// the directory: treat them as hostile.
pub fn neutralise_formula(cell: &str) -> std::borrow::Cow<'_, str> {
    match cell.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{cell}").into(),
        _ => cell.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(upn: &str, email: &str) -> ReportRow {
        ReportRow {
            user_id: "0c5e7f1a-1111-4222-8333-944455556666".into(),
            user_principal_name: Some(upn.into()),
            employee_id: Some("100001".into()),
            outcome: "InvalidValue".into(),
            detail: "the HR value for otherMails is invalid".into(),
            personal_email: Some(email.into()),
        }
    }

    #[test]
    fn formulas_in_report_cells_are_neutralised() {
        let rows = [
            row(
                "=HYPERLINK(\"http://evil.example\",\"x\")@contoso.com",
                "=1+1@evil.example",
            ),
            row("+cmd@contoso.com", "-2@example.org"),
            row("@SUM(A1)", "\tx@example.org"),
        ];
        let csv = String::from_utf8(render_csv(&rows, true)).expect("utf-8");
        let mut reader = csv::Reader::from_reader(csv.as_bytes());
        for record in reader.records() {
            let record = record.expect("a CSV row");
            for cell in record.iter() {
                assert!(
                    !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                    "a cell a spreadsheet would run: {cell:?}"
                );
            }
            assert!(record.get(1).is_some_and(|c| c.starts_with('\'')));
        }
        // Ordinary cells are untouched.
        assert_eq!(neutralise_formula("jane@contoso.com"), "jane@contoso.com");
        assert_eq!(neutralise_formula(""), "");
    }
}

/// Counts of outcomes by provisioning-log code.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Tally {
    pub by_outcome: BTreeMap<String, u64>,
}

impl Tally {
    pub fn add(&mut self, outcome: &Outcome) {
        self.add_code(outcome.code());
    }

    /// Counts a result by its report code (see [`UserResult::report_code`]).
    pub fn add_result(&mut self, result: &UserResult) {
        self.add_code(result.report_code());
    }

    fn add_code(&mut self, code: &str) {
        *self.by_outcome.entry(code.to_string()).or_default() += 1;
    }

    /// Users the report lists: every row but clean updates and unchanged users.
    pub fn not_fully_updated(&self) -> u64 {
        self.by_outcome
            .iter()
            .filter(|(code, _)| !is_fully_updated_code(code))
            .map(|(_, n)| n)
            .sum()
    }

    pub fn get(&self, code: &str) -> u64 {
        self.by_outcome.get(code).copied().unwrap_or(0)
    }

    pub fn total(&self) -> u64 {
        self.by_outcome.values().sum()
    }

    /// An aligned two-column table for a terminal.
    pub fn table(&self) -> String {
        let width = self
            .by_outcome
            .keys()
            .map(String::len)
            .max()
            .unwrap_or(7)
            .max("outcome".len());
        let mut out = String::new();
        let _ = writeln!(out, "  {:<width$}  {:>8}", "outcome", "users");
        let _ = writeln!(out, "  {:-<width$}  {:->8}", "", "");
        for (code, n) in &self.by_outcome {
            let _ = writeln!(out, "  {code:<width$}  {n:>8}");
        }
        let _ = writeln!(out, "  {:-<width$}  {:->8}", "", "");
        let _ = writeln!(out, "  {:<width$}  {:>8}", "total", self.total());
        out
    }
}
