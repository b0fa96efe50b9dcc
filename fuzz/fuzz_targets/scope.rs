//! `ENRICH_SCOPE`, the filter that decides who may be written: parse, then every use of the parsed
//! filter. Properties: no panic; an error's position lies within the input.
#![no_main]
use entra_core::{ScopeFilter, UserRecord};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match ScopeFilter::parse(text) {
        Ok(scope) => {
            let user = UserRecord::from_json(serde_json::json!({
                "id": "u1",
                "onPremisesSyncEnabled": true,
                "employeeId": "100001",
                "userType": "Member",
                "accountEnabled": true,
                "department": "Sales",
                "onPremisesExtensionAttributes": {"extensionAttribute1": "x@example.org"}
            }))
            .expect("user");
            let _ = scope.matches(&user);
            let _ = scope.graph_prefilter();
            for p in scope.properties() {
                let _ = entra_core::properties::check_user_property(&p);
            }
        }
        Err(e) => {
            assert!(e.position() <= text.chars().count() + 1, "{e:?}");
            let _ = e.message();
        }
    }
});
