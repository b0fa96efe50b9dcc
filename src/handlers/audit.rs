//! The audit log: one JSON line per property written, appended (and flushed) right after Graph accepts
//! the write. It is what `rollback` reads, and what an auditor asks for.
//!
//! The log holds before- and after-values, which include personal emails: it lives in the state store
//! (a private blob container or the local state directory), never in application logs.

use std::sync::Arc;

use entra_core::{UserPatch, UserRecord};
use entra_state::StateStore;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::RunId;

/// One written property.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditRecord {
    /// RFC 3339 UTC.
    pub time: String,
    pub run_id: String,
    pub user_id: String,
    pub employee_id: Option<String>,
    /// `otherMails`, `usageLocation` or `authenticationEmail` (the email authentication method).
    pub property: String,
    pub before: Value,
    pub after: Value,
    /// What wrote it: `backfill`, `enrich`, `new-hire-watch`, `lcw-joiner`, `rollback`.
    pub handler: String,
    /// Where it was written when not in Entra: `workday` (writeback's `workEmail`, `userName`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

impl AuditRecord {
    /// The record with every address in its before- and after-values masked (`j***@e***.org`), for
    /// sharing in a ticket. A masked record cannot drive a rollback.
    pub fn masked(&self) -> Self {
        Self {
            before: mask_value(&self.before),
            after: mask_value(&self.after),
            ..self.clone()
        }
    }
}

fn mask_value(v: &Value) -> Value {
    match v {
        Value::String(s) => Value::String(entra_core::pii::mask_emails_in(s)),
        Value::Array(items) => Value::Array(items.iter().map(mask_value).collect()),
        Value::Object(m) => {
            Value::Object(m.iter().map(|(k, v)| (k.clone(), mask_value(v))).collect())
        }
        other => other.clone(),
    }
}

/// Errors reading or writing the audit log.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("audit log: {0}")]
    Store(#[from] entra_state::StateError),
    #[error("audit log {key}, line {line}: not an audit record ({reason})")]
    Corrupt {
        key: String,
        line: usize,
        reason: String,
    },
}

/// Appends the audit records of one run.
#[derive(Clone)]
pub struct AuditLog {
    store: Arc<dyn StateStore>,
    run_id: RunId,
    handler: &'static str,
}

/// The state-store key of a run's audit log.
pub fn audit_key(run_id: &RunId) -> String {
    format!("audit/{}.jsonl", run_id.as_str())
}

impl AuditLog {
    pub fn new(store: Arc<dyn StateStore>, run_id: RunId, handler: &'static str) -> Self {
        Self {
            store,
            run_id,
            handler,
        }
    }

    pub fn run_id(&self) -> &RunId {
        &self.run_id
    }

    /// What writes under this log: `lcw-joiner`, `new-hire-watch`, `backfill`, …
    pub fn handler(&self) -> &'static str {
        self.handler
    }

    /// Records every property of `patch`, with its before-value read from `before`.
    pub async fn record(&self, before: &UserRecord, patch: &UserPatch) -> Result<(), AuditError> {
        let lines = self.lines(before, patch, &now_rfc3339());
        if !lines.is_empty() {
            self.store
                .append(&audit_key(&self.run_id), lines.into())
                .await?;
        }
        Ok(())
    }

    /// Records one property written outside a [`UserPatch`] (the email authentication method), with
    /// its before- and after-value (`None`: there was none, or it was deleted).
    pub async fn record_value(
        &self,
        user: &UserRecord,
        property: &str,
        before: Option<&str>,
        after: Option<&str>,
    ) -> Result<(), AuditError> {
        self.record_one(user, None, property, before, after).await
    }

    /// Records one property written outside Entra (`target`: `workday`).
    pub async fn record_target(
        &self,
        user: &UserRecord,
        target: &str,
        property: &str,
        before: Option<&str>,
        after: Option<&str>,
    ) -> Result<(), AuditError> {
        self.record_one(user, Some(target), property, before, after)
            .await
    }

    async fn record_one(
        &self,
        user: &UserRecord,
        target: Option<&str>,
        property: &str,
        before: Option<&str>,
        after: Option<&str>,
    ) -> Result<(), AuditError> {
        let record = AuditRecord {
            time: now_rfc3339(),
            run_id: self.run_id.to_string(),
            user_id: user.id().to_string(),
            employee_id: user.employee_id().map(str::to_string),
            property: property.to_string(),
            before: before.map_or(Value::Null, |b| Value::String(b.to_string())),
            after: after.map_or(Value::Null, |a| Value::String(a.to_string())),
            handler: self.handler.to_string(),
            target: target.map(str::to_string),
        };
        let mut line = serde_json::to_vec(&record).unwrap_or_default();
        line.push(b'\n');
        self.store
            .append(&audit_key(&self.run_id), line.into())
            .await?;
        Ok(())
    }

    /// Records several users' writes in one append (one flush): what a `$batch` wrote.
    pub async fn record_many(&self, writes: &[(UserRecord, UserPatch)]) -> Result<(), AuditError> {
        let time = now_rfc3339();
        let mut lines = Vec::new();
        for (before, patch) in writes {
            lines.extend(self.lines(before, patch, &time));
        }
        if !lines.is_empty() {
            self.store
                .append(&audit_key(&self.run_id), lines.into())
                .await?;
        }
        Ok(())
    }

    /// The JSON lines for one user's write.
    fn lines(&self, before: &UserRecord, patch: &UserPatch, time: &str) -> Vec<u8> {
        let time = time.to_string();
        let after = serde_json::to_value(patch).unwrap_or(Value::Null);
        let mut lines = Vec::new();
        for property in patch.property_names() {
            let record = AuditRecord {
                time: time.clone(),
                run_id: self.run_id.to_string(),
                user_id: before.id().to_string(),
                employee_id: before.employee_id().map(str::to_string),
                property: property.to_string(),
                before: before
                    .as_json()
                    .get(property)
                    .cloned()
                    .unwrap_or(Value::Null),
                after: after.get(property).cloned().unwrap_or(Value::Null),
                handler: self.handler.to_string(),
                target: None,
            };
            let mut line = serde_json::to_vec(&record).unwrap_or_default();
            line.push(b'\n');
            lines.extend_from_slice(&line);
        }
        lines
    }
}

/// Reads every record of a run (an empty list when the run wrote nothing).
pub async fn read_run(
    store: &dyn StateStore,
    run_id: &RunId,
) -> Result<Vec<AuditRecord>, AuditError> {
    let key = audit_key(run_id);
    let Some(bytes) = store.read_log(&key).await? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for (i, line) in bytes.split(|b| *b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice::<AuditRecord>(line) {
            Ok(r) => out.push(r),
            // A line cut short by a crash mid-append is the only expected damage: skip a torn last line.
            Err(e) if i + 1 == bytes.split(|b| *b == b'\n').count() => {
                tracing::warn!(key = %key, line = i + 1, error = %e, "ignoring a torn last audit line");
            }
            Err(e) => {
                return Err(AuditError::Corrupt {
                    key,
                    line: i + 1,
                    reason: e.to_string(),
                })
            }
        }
    }
    Ok(out)
}

/// RFC 3339 UTC now.
pub fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
