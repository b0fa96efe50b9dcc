//! The caller's bearer token (JOSE header, claims, signature) and the JWKS document, as lcw-joiner's
//! caller check reads them. Properties: no panic; no token made without the private key is ever
//! accepted; the WWW-Authenticate answer stays printable ASCII.
#![no_main]
use std::sync::OnceLock;

use entra_lcw::{CallerValidator, ValidatorOptions};
use libfuzzer_sys::fuzz_target;

/// A 2048-bit RSA public key whose private half is not in this repository.
const N: &str = include_str!("../jwt-key-n.txt");

fn runtime() -> &'static (tokio::runtime::Runtime, CallerValidator) {
    static R: OnceLock<(tokio::runtime::Runtime, CallerValidator)> = OnceLock::new();
    R.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let opts = ValidatorOptions::new(
            url::Url::parse("http://127.0.0.1:9").expect("url"),
            "5a1dbe0c-7e57-4e11-9a11-5a4db0c7e2a1",
            "api://entra-enrich",
            vec!["7d1c0f5e-3a9b-4c2d-8e6f-0a1b2c3d4e5f".into()],
        );
        let v = CallerValidator::new(opts).expect("validator");
        let jwks = serde_json::json!({"keys": [{"kty": "RSA", "use": "sig", "kid": "k1", "n": N.trim(), "e": "AQAB"}]});
        let issuer = "https://login.microsoftonline.com/5a1dbe0c-7e57-4e11-9a11-5a4db0c7e2a1/v2.0";
        rt.block_on(v.preload_keys(issuer, &jwks)).expect("keys");
        (rt, v)
    })
}

fuzz_target!(|data: &[u8]| {
    let (rt, validator) = runtime();
    let token = String::from_utf8_lossy(data);
    let header = format!("Bearer {token}");
    match rt.block_on(validator.validate(Some(&header))) {
        Ok(_) => panic!("a token not signed by the key was accepted"),
        Err(e) => {
            let w = e.www_authenticate();
            assert!(w.chars().all(|c| c.is_ascii_graphic() || c == ' '), "{w:?}");
        }
    }
    if let Ok(doc) = serde_json::from_slice::<serde_json::Value>(data) {
        let _ = entra_lcw::auth::parse_jwks(&doc);
    }
});
