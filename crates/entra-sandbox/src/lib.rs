//! `entra-sandbox`: a local, faithful emulator of the Microsoft Graph v1.0 and Entra ID endpoints that
//! entra-enrich uses. See the crate README for what it emulates and where it knowingly differs.

#![forbid(unsafe_code)]

pub mod http;
pub mod identity;
