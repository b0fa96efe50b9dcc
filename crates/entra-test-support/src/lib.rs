//! Test support shared by every crate of the workspace, in the spirit of `azure_core_test`: one
//! scriptable loopback HTTP server ([`TestServer`]), one fake credential ([`FakeCredential`]) and
//! Key Vault behind an SDK transport ([`FakeKeyVault`]).
//!
//! Nothing here reads or writes the process environment, so tests that use it may run in parallel.
//! The crate is only ever a dev-dependency (`publish = false`); production builds never link it.

mod credential;
mod key_vault;
mod loopback;

pub use credential::FakeCredential;
pub use key_vault::{FakeKeyVault, VaultRequest};
pub use loopback::{Reply, Seen, TestServer};
