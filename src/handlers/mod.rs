//! Handlers: the product's jobs, each a plain async function over an [`EnrichContext`], called by the
//! transport adapters (command line, Azure Functions custom handler, AWS Lambda).
//!
//! - [`enrich`]: one user, by object id or `employeeId`.
//! - [`backfill`]: every in-scope user, resumable, rate-aware, dry-runnable, audited.
//! - [`watch`]: new-hire-watch, Graph `users/delta` → enrich what changed.
//! - [`lcw_joiner`]: a Lifecycle Workflows custom task extension callout → enrich → resume.
//! - [`rollback`]: restore the before-values of one run.
//! - [`writeback`]: a joiner's work email and username back to Workday, queued when Workday is down.
//! - [`claim`]: one writer per user (and per callout), whichever handler and instance gets there first.

pub mod apply;
pub mod audit;
pub mod backfill;
pub mod claim;
pub mod context;
pub mod doctor;
pub mod doctor_user;
pub mod email_method;
pub mod enrich;
pub mod lcw_joiner;
pub mod report;
pub mod rollback;
pub mod watch;
pub mod writeback;

pub use context::{EnrichContext, RunId};
