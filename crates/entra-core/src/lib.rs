//! `entra-core`: the pure enrichment engine of entra-enrich.
//!
//! scope → source values → validation → diff → plan, with no I/O. Every function here is
//! deterministic and cheap to test.

#![forbid(unsafe_code)]

pub mod patch;
pub mod pii;

pub use patch::{AlternateEmail, Change, CountryCode, InvalidValue, OtherMails, UserPatch};
