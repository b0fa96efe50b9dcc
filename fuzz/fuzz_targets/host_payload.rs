//! The Azure Functions host's invocation payload (`{Data, Metadata}`), as `serve` decodes it, then the
//! HTTP-trigger and timer views of it. Property: no panic on any input.
#![no_main]
use functions_custom_handler::InvokeRequest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(req) = serde_json::from_slice::<InvokeRequest>(data) else {
        return;
    };
    let _ = req.sys();
    let _ = req.timer("timer");
    if let Ok(http) = req.http_trigger("req") {
        let _ = http.header("authorization");
        let _ = http.header("content-type");
        let _ = http.body_json();
    }
});
