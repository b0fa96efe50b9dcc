//! Workday Web Services answers (`Get_Workers`, faults), fed as Workday's body with a status from
//! the first byte. Properties: no panic; a fault or a bad body is an error, never a made-up worker;
//! a worker read has only WORK or HOME-style usages in upper case.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((first, body)) = data.split_first() else {
        return;
    };
    let status = if first % 2 == 0 { 200 } else { 500 };
    let text = String::from_utf8_lossy(body);
    if let Ok(contact) = entra_workday::contact_from_answer("E1", status, &text) {
        assert_eq!(contact.employee_id, "E1");
        for e in &contact.emails {
            assert_eq!(e.usage, e.usage.to_ascii_uppercase());
        }
        assert!(text.contains("Envelope"), "a worker from a body that is no envelope");
    }
});
