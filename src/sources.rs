//! HR sources read from files: a CSV export keyed by `employeeId` (Workday "Worker" report or any HRIS).
//! Workday, the live source, is in [`workday`].

pub mod workday;

use std::path::Path;

use entra_core::{HrIndex, SourceValues};

/// Why an HR file could not be used. Never quotes a personal email (nor any cell).
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
    #[error("HR file {path} is empty; export the report with a header line (employeeId, personalEmail, optionally country) and one row per worker")]
    Empty { path: String },
    #[error("HR file {path} has a header line but no rows; export the report again with its data")]
    NoRows { path: String },
    #[error("HR file {path} is not UTF-8 ({found}); re-export it as \"CSV UTF-8 (Comma delimited)\" (Excel: Save As, CSV UTF-8)")]
    Encoding { path: String, found: &'static str },
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

/// Bytes looked at to detect the encoding and the delimiter.
const SNIFF_BYTES: usize = 64 * 1024;

/// Where the columns are, and how the file is delimited: checked once, when the file is opened.
#[derive(Debug, Clone, Copy)]
struct Layout {
    delimiter: u8,
    employee_id: usize,
    personal_email: usize,
    country: Option<usize>,
}

/// What one full read of an HR file found.
#[derive(Debug, Default)]
pub struct HrRead {
    /// The records whose employeeId was wanted (duplicates kept ambiguous, as [`HrIndex`] does).
    pub index: HrIndex,
    /// Data rows in the file.
    pub rows: u64,
    /// Rows with an employeeId that was not wanted: no in-scope user carries it.
    pub unmatched: u64,
    /// Rows with a blank employeeId (never matched, never written).
    pub blank_ids: u64,
}

/// An HR row no in-scope user matched, for the report.
#[derive(Debug, Clone)]
pub struct UnmatchedRow {
    /// The line in the file (1 is the header).
    pub line: u64,
    pub employee_id: String,
    pub personal_email: Option<String>,
}

/// A CSV HR export, checked when opened (encoding, delimiter, columns, at least one row) and read
/// row by row on demand, so memory grows with the rows kept, not with the file.
#[derive(Debug, Clone)]
pub struct HrFile {
    path: std::path::PathBuf,
    layout: Layout,
}

/// Opens a CSV HR export: a header line with `employeeId`, `personalEmail` and (optionally) `country`.
///
/// Read strictly, because a value read from the wrong column becomes someone's password-reset address:
/// - the delimiter is detected from the header line: comma, semicolon (Excel in many locales) or tab;
/// - the file must be UTF-8 (a BOM is fine); UTF-16 and Windows-1252 are refused with the fix;
/// - a row whose field count differs from the header's (an unquoted comma in a name, a stray quote)
///   refuses the **whole file**: one shifted row means the export is not what it seems, and a partial
///   run would hide that. Every read goes through the whole file before any value is used;
/// - an empty file and a header with no rows are errors.
impl HrFile {
    pub fn open(path: &Path) -> Result<Self, SourceError> {
        let shown = path.display().to_string();
        let head = sniff(path).map_err(|e| read_error(&shown, &e))?;
        let layout = check_head(&shown, &head)?;
        let file = std::fs::File::open(path).map_err(|e| read_error(&shown, &e))?;
        let mut reader = csv_reader(layout, file);
        header_layout(&shown, &mut reader, layout.delimiter)?;
        let mut first = csv::StringRecord::new();
        let has_row = reader
            .read_record(&mut first)
            .map_err(|e| row_error(&shown, &e))?;
        if !has_row {
            return Err(SourceError::NoRows { path: shown });
        }
        Ok(Self {
            path: path.to_path_buf(),
            layout,
        })
    }

    /// The path, as given.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads every row (strictly), keeping those whose employeeId key ([`entra_core::employee_id_key`])
    /// `wanted` accepts.
    pub fn read(&self, wanted: &dyn Fn(&str) -> bool) -> Result<HrRead, SourceError> {
        let shown = self.path.display().to_string();
        let file = std::fs::File::open(&self.path).map_err(|e| read_error(&shown, &e))?;
        read_rows(&shown, self.layout, file, wanted, &mut |_| {})
    }

    /// Reads every row and calls `each` with those whose employeeId `wanted` refuses.
    pub fn unmatched(
        &self,
        wanted: &dyn Fn(&str) -> bool,
        each: &mut dyn FnMut(UnmatchedRow),
    ) -> Result<u64, SourceError> {
        let shown = self.path.display().to_string();
        let file = std::fs::File::open(&self.path).map_err(|e| read_error(&shown, &e))?;
        read_rows(&shown, self.layout, file, &|k| wanted(k), each).map(|r| r.unmatched)
    }
}

/// Loads a whole CSV HR export into memory (small files, tests); see [`HrFile`] for the rules.
pub fn load_hr_csv(path: &Path) -> Result<HrIndex, SourceError> {
    Ok(HrFile::open(path)?.read(&|_| true)?.index)
}

/// Parses an HR export held in memory, by the same rules as [`HrFile`] (the fuzz target's entry).
pub fn parse_hr_csv(name: &str, bytes: &[u8]) -> Result<HrRead, SourceError> {
    let head = &bytes[..bytes.len().min(SNIFF_BYTES)];
    let layout = check_head(name, head)?;
    let read = read_rows(name, layout, bytes, &|_| true, &mut |_| {})?;
    if read.rows == 0 {
        return Err(SourceError::NoRows { path: name.into() });
    }
    Ok(read)
}

fn read_error(shown: &str, e: &dyn std::fmt::Display) -> SourceError {
    SourceError::Read {
        path: shown.to_string(),
        reason: e.to_string(),
    }
}

/// Emptiness, encoding and delimiter, from the first bytes.
fn check_head(shown: &str, head: &[u8]) -> Result<Layout, SourceError> {
    if head.iter().all(u8::is_ascii_whitespace) {
        return Err(SourceError::Empty { path: shown.into() });
    }
    if let Some(found) = foreign_encoding(head) {
        return Err(SourceError::Encoding {
            path: shown.into(),
            found,
        });
    }
    Ok(Layout {
        delimiter: delimiter(head),
        employee_id: 0,
        personal_email: 0,
        country: None,
    })
}

fn csv_reader<R: std::io::Read>(layout: Layout, input: R) -> csv::Reader<R> {
    csv::ReaderBuilder::new()
        .delimiter(layout.delimiter)
        .trim(csv::Trim::All)
        .from_reader(input)
}

/// Finds the columns in the header line.
fn header_layout<R: std::io::Read>(
    shown: &str,
    reader: &mut csv::Reader<R>,
    delimiter: u8,
) -> Result<Layout, SourceError> {
    let headers = reader.headers().map_err(|e| row_error(shown, &e))?;
    let employee_id = find(headers, EMPLOYEE_ID).ok_or(SourceError::MissingColumn {
        path: shown.into(),
        column: "employeeId",
        accepted: "employeeId, employee_id, Worker_ID",
    })?;
    let personal_email = find(headers, PERSONAL_EMAIL).ok_or(SourceError::MissingColumn {
        path: shown.into(),
        column: "personalEmail",
        accepted: "personalEmail, personal_email",
    })?;
    Ok(Layout {
        delimiter,
        employee_id,
        personal_email,
        country: find(headers, COUNTRY),
    })
}

/// One strict pass over the rows: one reused record buffer, so memory stays flat however long the
/// file is; only wanted rows are kept.
fn read_rows<R: std::io::Read>(
    shown: &str,
    layout: Layout,
    input: R,
    wanted: &dyn Fn(&str) -> bool,
    unmatched: &mut dyn FnMut(UnmatchedRow),
) -> Result<HrRead, SourceError> {
    let mut reader = csv_reader(layout, input);
    let layout = header_layout(shown, &mut reader, layout.delimiter)?;
    let mut out = HrRead::default();
    let mut row = csv::StringRecord::new();
    while reader
        .read_record(&mut row)
        .map_err(|e| row_error(shown, &e))?
    {
        out.rows += 1;
        let cell = |i: usize| row.get(i).map(str::trim).filter(|s| !s.is_empty());
        let Some(key) = cell(layout.employee_id).and_then(entra_core::employee_id_key) else {
            out.blank_ids += 1;
            continue;
        };
        if !wanted(&key) {
            out.unmatched += 1;
            unmatched(UnmatchedRow {
                line: row.position().map(|p| p.line()).unwrap_or(0),
                employee_id: cell(layout.employee_id).unwrap_or_default().to_string(),
                personal_email: cell(layout.personal_email).map(str::to_string),
            });
            continue;
        }
        let values = SourceValues {
            personal_email: cell(layout.personal_email).map(str::to_string),
            country: layout.country.and_then(cell).map(str::to_string),
        };
        out.index.insert(&key, values);
    }
    Ok(out)
}

fn sniff(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut head = Vec::with_capacity(SNIFF_BYTES);
    std::fs::File::open(path)?
        .take(SNIFF_BYTES as u64)
        .read_to_end(&mut head)?;
    Ok(head)
}

/// The encoding of a file that is not UTF-8, from its first bytes.
fn foreign_encoding(head: &[u8]) -> Option<&'static str> {
    if head.starts_with(&[0xFF, 0xFE]) || head.starts_with(&[0xFE, 0xFF]) {
        return Some("it is UTF-16, as Excel's \"Unicode Text\" saves");
    }
    match std::str::from_utf8(head) {
        Ok(_) => None,
        // Cut inside a multi-byte character at the end of the sniffed bytes: still UTF-8.
        Err(e) if e.error_len().is_none() => None,
        Err(_) => Some("it looks like Windows-1252 or Latin-1, as Excel's plain \"CSV\" saves"),
    }
}

/// Comma, semicolon or tab: whichever the header line holds most of, outside quotes.
fn delimiter(head: &[u8]) -> u8 {
    let line = head.split(|b| *b == b'\n').next().unwrap_or_default();
    let (mut quoted, mut counts) = (false, [0usize; 3]);
    for b in line {
        match b {
            b'"' => quoted = !quoted,
            b',' if !quoted => counts[0] += 1,
            b';' if !quoted => counts[1] += 1,
            b'\t' if !quoted => counts[2] += 1,
            _ => {}
        }
    }
    let best = (0..3).max_by_key(|i| (counts[*i], 3 - i)).unwrap_or(0);
    [b',', b';', b'\t'][best]
}

/// A row the reader refused: the line, and what to do about it. Never quotes the row.
fn row_error(path: &str, e: &csv::Error) -> SourceError {
    let line = e.position().map(|p| p.line()).unwrap_or(0);
    let reason = match e.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!(
            "{len} fields where the header has {expected_len}: an unquoted comma or quote? Quote every cell that holds the delimiter, then export again. The file was not used, so nothing was written"
        ),
        csv::ErrorKind::Utf8 { .. } => "not UTF-8 text; re-export the file as \"CSV UTF-8 (Comma delimited)\"".to_string(),
        _ => "malformed CSV (check the quoting)".to_string(),
    };
    SourceError::Row {
        path: path.to_string(),
        line,
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(bytes: &[u8]) -> Result<HrIndex, SourceError> {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("hr.csv");
        std::fs::write(&path, bytes).expect("write");
        load_hr_csv(&path)
    }

    fn message(bytes: &[u8]) -> String {
        match load(bytes) {
            Ok(i) => panic!("accepted a bad file ({} records)", i.len()),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn a_row_with_an_unquoted_comma_refuses_the_file_and_names_the_line() {
        // The reported case: the manager's address would have become the employee's.
        let csv = b"employeeId,Name,managerEmail,personalEmail,country\n\
100118,\"Roe, Richard\",boss.private@example.org,rich.private@example.org,DE\n\
100119,Doe, Jane,boss.private@example.org,jane.private@example.org,DE\n";
        let m = message(csv);
        assert!(m.contains("line 3"), "{m}");
        assert!(m.contains("6 fields where the header has 5"), "{m}");
        assert!(m.contains("unquoted comma or quote"), "{m}");
        assert!(
            !m.contains("private@"),
            "the message quotes no address: {m}"
        );
        let short = b"employeeId,personalEmail,country\n100120,x@example.org\n";
        assert!(message(short).contains("2 fields where the header has 3"));
    }

    #[test]
    fn semicolon_and_tab_files_are_read_by_their_delimiter() {
        for (csv, sep) in [
            (&b"employeeId;Name;personalEmail;country\n100200;\"Doe; Jane\";jane@example.org;FR\n"[..], "semicolon"),
            (&b"employeeId\tpersonalEmail\tcountry\n100200\tjane@example.org\tFR\n"[..], "tab"),
        ] {
            let index = load(csv).unwrap_or_else(|e| panic!("{sep}: {e}"));
            match index.lookup("100200") {
                entra_core::SourceLookup::Found(v) => {
                    assert_eq!(v.personal_email.as_deref(), Some("jane@example.org"), "{sep}");
                    assert_eq!(v.country.as_deref(), Some("FR"), "{sep}");
                }
                _ => panic!("{sep}: the row was not read"),
            }
        }
    }

    #[test]
    fn non_utf8_files_name_the_encoding_and_the_fix() {
        let cp1252 = b"employeeId,Name,personalEmail\n100300,Ren\xe9e,renee@example.org\n";
        let m = message(cp1252);
        assert!(m.contains("Windows-1252") && m.contains("CSV UTF-8"), "{m}");
        let utf16 = b"\xff\xfee\x00m\x00p\x00";
        assert!(message(utf16).contains("UTF-16"));
        // A UTF-8 BOM (Excel's "CSV UTF-8") is fine.
        assert!(load(b"\xef\xbb\xbfemployeeId,personalEmail\n1,a@example.org\n").is_ok());
    }

    #[test]
    fn empty_and_header_only_files_are_errors_that_say_so() {
        assert!(message(b"").contains("is empty"));
        assert!(message(b"\n  \n").contains("is empty"));
        let m = message(b"employeeId,personalEmail,country\n");
        assert!(m.contains("no rows"), "{m}");
    }
}
