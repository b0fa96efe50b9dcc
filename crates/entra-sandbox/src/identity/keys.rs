//! The sandbox's signing keys: pre-generated 2048-bit RSA keys committed under `crates/entra-sandbox/keys/`
//! (generated with `openssl genrsa 2048`). They are TEST KEYS: public in this repository, trusted by nothing
//! but the sandbox. Generating RSA keys at start-up would be slow in debug builds.
//!
//! The JWK of each key (`n`, `e`) is derived from the private key itself (jsonwebtoken's
//! `Jwk::from_encoding_key`), never written by hand; its `kid` is the RFC 7638 SHA-256 thumbprint.

use jsonwebtoken::jwk::{Jwk, KeyAlgorithm, PublicKeyUse, ThumbprintHash};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use serde_json::Value;

use super::IdentityError;

const PEMS: [&str; 3] = [
    include_str!("../../keys/sandbox-test-signing-key-1.pem"),
    include_str!("../../keys/sandbox-test-signing-key-2.pem"),
    include_str!("../../keys/sandbox-test-signing-key-3.pem"),
];

pub(crate) struct SigningKey {
    pub(crate) kid: String,
    pub(crate) encoding: EncodingKey,
    pub(crate) decoding: DecodingKey,
    /// The JWKS entry, as served.
    pub(crate) jwk_json: Value,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

pub(crate) fn load_all() -> Result<Vec<SigningKey>, IdentityError> {
    PEMS.iter()
        .enumerate()
        .map(|(index, pem)| load(pem).map_err(|source| IdentityError::SigningKey { index, source }))
        .collect()
}

fn load(pem: &str) -> Result<SigningKey, jsonwebtoken::errors::Error> {
    let encoding = EncodingKey::from_rsa_pem(pem.as_bytes())?;
    let mut jwk = Jwk::from_encoding_key(&encoding, Algorithm::RS256)?;
    let kid = jwk.thumbprint(ThumbprintHash::SHA256);
    jwk.common.key_id = Some(kid.clone());
    // Entra's JWKS entries carry `kty`, `use: "sig"`, `kid`, `n`, `e` (plus `x5t`/`x5c`, which the sandbox
    // does not have: its keys have no certificate).
    // https://learn.microsoft.com/entra/identity-platform/access-tokens#validate-the-signature
    jwk.common.public_key_use = Some(PublicKeyUse::Signature);
    jwk.common.key_algorithm = Some(KeyAlgorithm::RS256);
    let decoding = DecodingKey::from_jwk(&jwk)?;
    let jwk_json = serde_json::to_value(&jwk)?;
    Ok(SigningKey {
        kid,
        encoding,
        decoding,
        jwk_json,
    })
}
