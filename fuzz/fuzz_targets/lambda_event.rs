//! A Lambda event as the runtime hands it over, routed by shape. Properties: no panic; the
//! invocation error sent back to Lambda never carries an unmasked email.
#![no_main]
use entra_enrich::adapters::lambda::{classify, Event};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(event) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    match classify(&event) {
        Ok(Event::Http(req)) => {
            let _ = req.header("authorization");
        }
        Ok(Event::Job(job)) => assert!(!job.name().is_empty()),
        Err(e) => {
            let d: lambda_runtime::Diagnostic = e.into();
            let text = d.error_message;
            assert!(no_address(&text), "an address in: {text}");
        }
    }
});

/// No token of `text` is a valid email address (a masked one, `j***@e***.org`, is not).
fn no_address(text: &str) -> bool {
    text.split(|c: char| c.is_whitespace() || "\"'(),;<>[]{}`".contains(c))
        .all(|t| entra_core::AlternateEmail::parse(t).is_err())
}
