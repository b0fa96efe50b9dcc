//! The HR CSV reader (`--source csv:PATH`), fed the file's bytes. Properties: no panic; an error
//! never quotes a cell (no address in it); every record kept has an employeeId.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match entra_enrich::sources::parse_hr_csv("fuzz.csv", data) {
        Ok(read) => {
            assert!(read.rows >= read.unmatched + read.blank_ids);
            for (key, _) in read.index.records() {
                assert!(!key.trim().is_empty());
            }
        }
        Err(e) => {
            let text = e.to_string();
            assert!(!text.contains('@'), "a cell was quoted: {text}");
        }
    }
});
