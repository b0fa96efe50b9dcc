//! `entra-enrich`: writes the cloud-only Entra ID attributes (`otherMails`, `usageLocation`) that Cloud
//! Sync cannot, within minutes of an account appearing, with no redundant writes.
//!
//! Layers (dependencies point inward): transport adapters ([`adapters`]) → handlers ([`handlers`]) →
//! the pure engine (`entra_core`) and the clients (`entra_graph`, `entra_state`, `entra_lcw`).

#![forbid(unsafe_code)]

pub mod adapters;
pub mod app;
pub mod config;
pub mod handlers;
pub mod sources;
