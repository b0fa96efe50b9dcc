//! The Workday RaaS report parser (the body of a report answer) and the field paths that read it.
//! Properties: no panic; an error never quotes the body (no address in it); a path that reaches two
//! values reports them as many, never one; rows come in order with what the paths found.
#![no_main]
use entra_workday::{read_report, FieldPath, FieldValue, ReportFields, WorkerRow};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first line, when it parses, is the personal email's field path; the rest is the body.
    let (path, body) = match data.iter().position(|b| *b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (&b""[..], data),
    };
    let email = std::str::from_utf8(path)
        .ok()
        .and_then(|p| FieldPath::parse(p).ok())
        .unwrap_or_else(|| FieldPath::key("Personal_Email"));
    let fields = ReportFields {
        employee_id: FieldPath::key("Employee_ID"),
        personal_email: email,
        country: Some(FieldPath::key("Country")),
    };
    let mut rows = 0u64;
    match read_report(body, &fields, &mut |row| {
        rows += 1;
        if let FieldValue::Many(n) = &row.personal_email {
            assert!(*n >= 2);
        }
        // Without the employee id, a debug line is one of a few fixed shapes: no value shows.
        let shown = format!("{:?}", WorkerRow { employee_id: None, ..row.clone() });
        let shape = |v: &FieldValue| match v {
            FieldValue::Missing => "missing".to_string(),
            FieldValue::One(_) => "present".to_string(),
            FieldValue::Many(n) => format!("{n} values"),
        };
        let expected = format!(
            "WorkerRow {{ employee_id: None, personal_email: {:?}, country: {:?} }}",
            shape(&row.personal_email),
            shape(&row.country)
        );
        assert_eq!(shown, expected, "a debug line shows a value");
    }) {
        Ok(n) => assert_eq!(n, rows),
        Err(e) => {
            let text = e.to_string();
            assert!(!text.contains('@'), "the body was quoted: {text}");
        }
    }
});
