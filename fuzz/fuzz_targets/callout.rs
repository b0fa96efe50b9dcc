//! The LCW custom-extension callout body, as lcw-joiner receives it: JSON, then the callout parser.
//! Properties: no panic; an accepted callout has its ids; an error never carries a personal email.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(body) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    match entra_lcw::parse_callout(&body) {
        Ok(c) => {
            assert!(!c.subject_id().is_empty());
            assert!(!c.task_processing_result_id().is_empty());
        }
        Err(e) => {
            let text = e.to_string();
            assert!(no_address(&text), "an address in: {text}");
            let _ = e.field();
        }
    }
});

/// No token of `text` is a valid email address (a masked one, `j***@e***.org`, is not).
fn no_address(text: &str) -> bool {
    text.split(|c: char| c.is_whitespace() || "\"'(),;<>[]{}`".contains(c))
        .all(|t| entra_core::AlternateEmail::parse(t).is_err())
}
