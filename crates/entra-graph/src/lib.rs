//! `entra-graph`: the Microsoft Graph client of entra-enrich.
//!
//! * reads always send `$select` ([`GraphClient::get_user`], [`GraphClient::list_users`],
//!   [`GraphClient::find_users_by_employee_id`], [`GraphClient::delta_page`]);
//! * writes take only an [`entra_core::UserPatch`] ([`GraphClient::patch_user`],
//!   [`GraphClient::patch_users_batch`]) or go to the LCW `resume` action ([`GraphClient::post_json`]);
//!   nothing here can create or delete a user;
//! * every write passes a shared [`WriteLimiter`]; 429 honours a decimal `Retry-After` and pauses all
//!   writers; 5xx/transport errors back off with full jitter, bounded by attempts and a deadline;
//! * errors are typed ([`GraphError`]) and never carry an unmasked email address.

#![forbid(unsafe_code)]

pub mod client;
pub mod credential;
pub mod deadline;
pub mod error;
pub mod keyvault;
pub mod limiter;
pub mod retry;

pub use client::{
    odata_quote, DeltaCursor, DeltaNext, DeltaPage, GraphClient, GraphClientOptions, GraphStats,
    UserPager, DEFAULT_BASE_URL, DEFAULT_SCOPE, EMAIL_METHOD_ID, MAX_BATCH_SIZE, MAX_PAGE_SIZE,
};
pub use credential::{build_credential, CredentialChoice, CredentialOptions};
pub use error::{GraphError, GraphErrorKind};
pub use keyvault::fetch_secret;
pub use limiter::{WriteLimiter, DEFAULT_MAX_WRITES_PER_MINUTE};
pub use retry::{parse_retry_after, RetryPolicy};
