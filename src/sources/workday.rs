//! Workday as a live HR source: the RaaS report, read for one worker (a joiner) or whole (the
//! backfill), matched by employeeId with the same key as every source ([`entra_core::employee_id_key`]:
//! trimmed, case-insensitive, because Workday IDs such as `E10042` and what Cloud Sync writes to
//! `employeeId` differ at most in case and spaces in practice, and a case-sensitive miss would leave a
//! hire without a reset factor, while a case-only collision is still caught as a duplicate).
//!
//! A joiner without a prompt uses a copy of the full report kept in the state store
//! (`workday/report-cache.json`, holding personal emails like the audit log does, in the same store)
//! and in memory, read again when older than `ENRICH_WORKDAY_CACHE_SECONDS`.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use entra_core::{HrIndex, SourceValues};
use entra_state::{StateStore, WriteCondition};
use entra_workday::{FieldValue, RaasClient, WorkdayError, WorkerRow};
use serde::{Deserialize, Serialize};

/// Where the cached report is kept in the state store.
pub const REPORT_CACHE_KEY: &str = "workday/report-cache.json";

/// The Workday source of one app.
#[derive(Debug)]
pub struct WorkdaySource {
    client: RaasClient,
    cache_ttl: Duration,
    memo: tokio::sync::Mutex<Option<(u64, Arc<HrIndex>)>>,
}

/// What one full read found.
#[derive(Debug, Default)]
pub struct WorkdayRead {
    /// The rows of wanted employeeIds (duplicates kept ambiguous).
    pub index: HrIndex,
    pub rows: u64,
    pub unmatched: u64,
    pub blank_ids: u64,
}

#[derive(Serialize, Deserialize)]
struct CachedReport {
    /// Unix seconds.
    fetched_at: u64,
    /// `[employeeId, personal email, country]` per value kept.
    rows: Vec<(String, Option<String>, Option<String>)>,
}

impl WorkdaySource {
    pub fn new(client: RaasClient, cache_ttl: Duration) -> WorkdaySource {
        WorkdaySource {
            client,
            cache_ttl,
            memo: tokio::sync::Mutex::new(None),
        }
    }

    pub fn client(&self) -> &RaasClient {
        &self.client
    }

    /// The HR records for one employeeId: one prompted call, or the cached full report.
    pub async fn lookup(
        &self,
        state: &dyn StateStore,
        employee_id: &str,
    ) -> Result<Arc<HrIndex>, WorkdayError> {
        if self.client.prompt().is_none() {
            return self.cached_report(state).await;
        }
        let mut index = HrIndex::new();
        for row in self.client.workers_for(employee_id).await? {
            insert_row(&mut index, row);
        }
        Ok(Arc::new(index))
    }

    /// Every row, keeping those whose employeeId key `wanted` accepts. Nothing is kept unless the
    /// whole report was read.
    pub async fn read_all(
        &self,
        wanted: &(dyn Fn(&str) -> bool + Sync),
    ) -> Result<WorkdayRead, WorkdayError> {
        let mut read = WorkdayRead::default();
        let rows = self
            .client
            .for_each_worker(&mut |row: WorkerRow| match row
                .employee_id
                .as_deref()
                .and_then(entra_core::employee_id_key)
            {
                None => read.blank_ids += 1,
                Some(key) if wanted(&key) => insert_row(&mut read.index, row),
                Some(_) => read.unmatched += 1,
            })
            .await?;
        read.rows = rows;
        Ok(read)
    }

    /// The full report from memory, the state store, or Workday, whichever is fresh first.
    async fn cached_report(&self, state: &dyn StateStore) -> Result<Arc<HrIndex>, WorkdayError> {
        let mut memo = self.memo.lock().await;
        let now = unix_now();
        let fresh = |at: u64| now.saturating_sub(at) < self.cache_ttl.as_secs();
        if let Some((_, index)) = memo.as_ref().filter(|(at, _)| fresh(*at)) {
            return Ok(index.clone());
        }
        if let Some(cached) = read_cache(state).await.filter(|c| fresh(c.fetched_at)) {
            let index = Arc::new(index_of(&cached));
            *memo = Some((cached.fetched_at, index.clone()));
            return Ok(index);
        }
        let mut rows = Vec::new();
        self.client
            .for_each_worker(&mut |row: WorkerRow| rows.extend(cache_rows(row)))
            .await?;
        let cached = CachedReport {
            fetched_at: now,
            rows,
        };
        write_cache(state, &cached).await;
        let index = Arc::new(index_of(&cached));
        *memo = Some((now, index.clone()));
        Ok(index)
    }
}

/// Adds one row. A row whose personal email path reached two addresses is kept as two records, so
/// the employeeId is ambiguous and never written: the wrong one of two would be someone's reset.
fn insert_row(index: &mut HrIndex, row: WorkerRow) {
    for (id, email, country) in cache_rows(row) {
        index.insert(&id, SourceValues::new(email.as_deref(), country.as_deref()));
    }
}

fn cache_rows(row: WorkerRow) -> Vec<(String, Option<String>, Option<String>)> {
    let Some(id) = row.employee_id else {
        return Vec::new();
    };
    let country = row.country.one();
    match row.personal_email {
        FieldValue::Many(n) => {
            tracing::warn!(
                values = n,
                "a Workday row has several personal emails; it is refused"
            );
            vec![(id.clone(), None, country.clone()), (id, None, country)]
        }
        email => vec![(id, email.one(), country)],
    }
}

fn index_of(cached: &CachedReport) -> HrIndex {
    let mut index = HrIndex::new();
    for (id, email, country) in &cached.rows {
        index.insert(id, SourceValues::new(email.as_deref(), country.as_deref()));
    }
    index
}

async fn read_cache(state: &dyn StateStore) -> Option<CachedReport> {
    let bytes = state.get(REPORT_CACHE_KEY).await.ok()??.bytes;
    serde_json::from_slice(&bytes).ok()
}

/// Best effort: a failed write only means the next instance reads Workday itself.
async fn write_cache(state: &dyn StateStore, cached: &CachedReport) {
    let Ok(bytes) = serde_json::to_vec(cached) else {
        return;
    };
    if let Err(e) = state
        .put(REPORT_CACHE_KEY, bytes.into(), WriteCondition::Any)
        .await
    {
        tracing::warn!(error = %e, "the Workday report cache could not be stored");
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
