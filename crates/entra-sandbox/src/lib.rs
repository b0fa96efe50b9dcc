//! `entra-sandbox`: a local, faithful emulator of the Microsoft Graph v1.0 and Entra ID endpoints that
//! entra-enrich uses, of a Workday Report-as-a-Service report ([`workday`]) and of Workday Web Services
//! ([`wws`]). See the crate README
//! for what it emulates and where it knowingly differs.
//!
//! ```no_run
//! # async fn demo() -> Result<(), entra_sandbox::SandboxError> {
//! let sb = entra_sandbox::Sandbox::start(entra_sandbox::SandboxOptions::default()).await?;
//! let token = sb.mint_graph_token(&sb.managed_identity_app_id());
//! let url = format!("{}/v1.0/users?$select=id,employeeId", sb.graph_base_url());
//! # let _ = (token, url); Ok(()) }
//! ```

#![forbid(unsafe_code)]

pub mod http;
pub mod identity;

mod batch;
pub mod email_methods;
pub mod error;
pub mod faults;
pub mod filter;
pub mod graph;
mod groups;
mod inspect;
mod lcw;
pub mod policy;
pub mod record;
pub mod sdk;
mod server;
mod state;
pub mod store;
pub mod tenant;
pub mod throttle;
pub mod workday;
pub mod wws;

pub use error::SandboxError;
pub use faults::{FaultAction, FaultRule, FaultTrigger};
pub use record::{Counters, RecordedRequest};
pub use server::{Sandbox, SandboxOptions, TenantSource};
pub use state::ResumeRecord;
pub use workday::WorkdayOptions;
pub use wws::WWS_VERSION;
