//! Cheap request recording and counters for tests and the `/_sandbox/*` inspection routes.

use std::collections::BTreeMap;

use serde::Serialize;

/// One request as the sandbox saw it (top-level HTTP request or `$batch` item).
#[derive(Debug, Clone, Serialize)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: Vec<(String, String)>,
    /// UTF-8 (lossy) body; `None` when body recording is off or the body was empty.
    pub body: Option<String>,
    pub status: u16,
    /// True for a sub-request executed inside `POST /$batch`.
    pub batch_item: bool,
    /// Route template, e.g. `PATCH /v1.0/users/{id}`.
    pub route: String,
}

/// Counters the tests read back.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Counters {
    /// Every request handled (top-level and batch items).
    pub requests: u64,
    /// Successful writes (2xx POST/PATCH/PUT/DELETE on Graph routes).
    pub writes: u64,
    /// `PATCH /users/{id}` received (any outcome).
    pub patches: u64,
    /// `PATCH /users/{id}` that changed at least one property.
    pub effective_patches: u64,
    /// 429 answers (quota or injected).
    pub throttled: u64,
    /// `POST /users` received.
    pub creates: u64,
    /// `DELETE /users/{id}` received.
    pub deletes: u64,
    pub resumes: u64,
    pub faults_injected: u64,
    /// Count per route template, e.g. `"GET /v1.0/users"`.
    pub per_route: BTreeMap<String, u64>,
}
