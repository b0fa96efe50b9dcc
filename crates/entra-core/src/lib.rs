//! `entra-core`: the pure enrichment engine of entra-enrich.
//!
//! scope → source values → validation → diff → plan, with no I/O. Every function here is
//! deterministic and cheap to test.
//!
//! ```
//! use entra_core::{
//!     plan_user, EmployeeIdIndex, EnrichPolicy, HrIndex, Outcome, SourceValues, UserRecord,
//! };
//! use serde_json::json;
//!
//! let policy = EnrichPolicy::default(); // hybrid users, Replace, usageLocation on
//! let hr: HrIndex = [("E1001", SourceValues::new(Some("jane@example.org"), Some("Germany")))]
//!     .into_iter()
//!     .collect();
//! let user = UserRecord::from_json(json!({
//!     "id": "0d4e…", "employeeId": "E1001", "onPremisesSyncEnabled": true,
//!     "otherMails": [], "usageLocation": null
//! }))
//! .unwrap();
//!
//! // Pass 1 over the in-scope users: find employeeIds shared by several users.
//! let mut targets = EmployeeIdIndex::new();
//! if policy.scope.matches(&user) {
//!     targets.insert(user.employee_id().unwrap_or(""), user.id());
//! }
//! // Pass 2: decide.
//! let duplicate = user.employee_id().is_some_and(|e| targets.is_duplicate(e));
//! let decision = plan_user(&policy, &user, hr.lookup_user(&user), duplicate);
//! assert_eq!(decision.outcome, Outcome::Updated { properties: vec!["otherMails", "usageLocation"] });
//! let body = serde_json::to_value(decision.patch.as_ref().unwrap()).unwrap();
//! assert_eq!(body, json!({"otherMails": ["jane@example.org"], "usageLocation": "DE"}));
//! ```

#![forbid(unsafe_code)]

pub mod address;
pub mod country;
pub mod index;
pub mod outcome;
pub mod patch;
pub mod path;
pub mod pii;
pub mod plan;
pub mod properties;
pub mod scope;
pub mod source;
pub mod sspr;
pub mod user;

pub use address::AddressBook;
pub use country::resolve_country;
pub use index::{employee_id_key, DuplicateEmployeeId, EmployeeIdIndex};
pub use outcome::{Outcome, DENIED_PRIVILEGED_FIX};
pub use patch::{AlternateEmail, Change, CountryCode, InvalidValue, OtherMails, UserPatch};
pub use path::{PathError, PropertyPath};
pub use plan::{
    plan_rollback, plan_user, plan_user_among, Decision, EnrichPolicy, FieldIssue, ModeError,
    OtherMailsMode, RecordedValues, RollbackRefusal, OTHER_MAILS, USAGE_LOCATION,
};
pub use scope::{ScopeError, ScopeFilter, DEFAULT_SCOPE};
pub use source::{HrIndex, SourceLookup, SourceSpec, SourceValues};
pub use sspr::{address_fingerprint, plan_email_method, EmailMethodPlan, SsprEmailTarget};
pub use user::{UserError, UserRecord};
