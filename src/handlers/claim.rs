//! One writer per user: short leases in the state store.
//!
//! Serverless delivers events at least once and sometimes at the same moment (a relay retrying while
//! the first attempt still runs, the watch and lcw-joiner seeing the same new hire, several Flex
//! Consumption instances). Before a handler writes a user it claims the user:
//!
//! - The claim is a conditional create of `claims/users/{id}.json` (`If-None-Match: *` on blob storage,
//!   `O_EXCL`-style create on files), so of two handlers exactly one holds it.
//! - It carries a lease ([`LEASE`]). A claim whose holder crashed is taken over with `If-Match` on its
//!   ETag once the lease has run out, so a killed instance blocks a user for at most the lease.
//! - Releasing stamps the record (`released`), again with `If-Match`, and keeps it: a handler that read
//!   the user *before* somebody else's write was released knows its read is stale
//!   ([`Claimed::Stale`]) and leaves the user, instead of writing the same value a second time.
//!
//! Handlers that read after claiming (lcw-joiner, `enrich`, the watch re-reads) pass no read time;
//! the backfill, which plans from a listing, passes the time it read the page.
//!
//! Cost: nothing for users that need no write (they are never claimed); for a write, one create and
//! one release, or a read, a replace and a release when the user was claimed before.

use std::sync::Arc;
use std::time::Duration;

use entra_state::{ETag, StateError, StateStore, WriteCondition};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// How long a claim protects a user. Longer than lcw-joiner's deadline and a `$batch` write under the
/// caller's deadline, short enough that a crashed instance blocks a user for two minutes at most.
pub const LEASE: Duration = Duration::from_secs(120);

/// Clock skew tolerated between instances when deciding whether a read is older than a release.
const SKEW_MS: i64 = 2_000;

/// Storage requests a release may take before it gives up (it is best effort: the lease ends anyway).
const RELEASE_TIMEOUT: Duration = Duration::from_secs(5);

/// What a claim record holds. No personal data: ids, handler names and times.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
struct ClaimRecord {
    /// Unique per handler invocation (`{handler}/{run id}`).
    holder: String,
    /// `lcw-joiner`, `new-hire-watch`, `backfill`, `enrich`.
    handler: String,
    /// Unix milliseconds.
    acquired: i64,
    expires: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    released: Option<i64>,
}

impl ClaimRecord {
    fn is_free(&self, now: i64) -> bool {
        self.released.is_some() || self.expires <= now
    }

    /// The latest moment the holder could have written: its release, or the end of its lease.
    fn last_possible_write(&self) -> i64 {
        self.released.unwrap_or(self.expires)
    }
}

/// The answer to [`Claims::acquire`].
#[derive(Debug)]
pub enum Claimed {
    /// This handler holds the claim; write, then [`ClaimGuard::release`].
    Held(ClaimGuard),
    /// Another handler holds it right now.
    Busy {
        /// The holder's handler name.
        handler: String,
        /// Time until its lease ends.
        retry_after: Duration,
    },
    /// Another handler wrote (or may have written) the user after `read_at`: the caller's read is
    /// stale, and its plan must not be written.
    Stale {
        /// The handler that wrote it.
        handler: String,
    },
}

/// Counts of claim work, for summaries and benchmarks.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ClaimStats {
    pub acquired: u64,
    /// Left to another handler (busy or stale).
    pub left_to_others: u64,
    /// State-store requests the claims took (acquire and release).
    pub storage_requests: u64,
}

/// Claims for one handler invocation.
#[derive(Clone)]
pub struct Claims {
    store: Arc<dyn StateStore>,
    holder: String,
    handler: &'static str,
    lease: Duration,
    stats: Arc<std::sync::Mutex<ClaimStats>>,
}

/// The state-store key of a user's claim. Object ids are GUIDs; anything else is refused by
/// [`entra_state::validate_key`] at the store, never written under a different name.
pub fn user_claim_key(user_id: &str) -> String {
    format!("claims/users/{user_id}.json")
}

/// The state-store key of an alternate email's claim: one writer per address, so two new hires given
/// one address at the same moment cannot both get it. The key is a SHA-256 of the lower-cased
/// address: no address appears in a key (keys are listed, logged and shown in the portal).
pub fn address_claim_key(address: &str) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(address.trim().to_lowercase().as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("claims/addresses/{hex}.json")
}

/// The state-store key of a callout's claim (one per `taskProcessingResult.id`).
pub fn callout_claim_key(task_processing_result_id: &str) -> String {
    format!("claims/callouts/{task_processing_result_id}.json")
}

fn now_ms() -> i64 {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// Unix milliseconds of `t` (a read time handed to [`Claims::acquire`]).
pub fn unix_ms(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

impl Claims {
    /// Claims held as `handler` for the invocation `run`.
    pub fn new(store: Arc<dyn StateStore>, handler: &'static str, run: &str) -> Self {
        Self {
            store,
            holder: format!("{handler}/{run}"),
            handler,
            lease: LEASE,
            stats: Arc::default(),
        }
    }

    /// The same claims held for one part of the invocation (a user), so two parts of one invocation
    /// (the watch enriching two users) do not take each other's claims as their own.
    pub fn scoped(&self, part: &str) -> Self {
        Self {
            holder: format!("{}/{part}", self.holder),
            ..self.clone()
        }
    }

    /// A different lease (tests of expiry).
    pub fn with_lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    pub fn stats(&self) -> ClaimStats {
        self.stats.lock().map(|s| *s).unwrap_or_default()
    }

    fn count(&self, f: impl FnOnce(&mut ClaimStats)) {
        if let Ok(mut s) = self.stats.lock() {
            f(&mut s);
        }
    }

    fn record(&self, now: i64) -> ClaimRecord {
        ClaimRecord {
            holder: self.holder.clone(),
            handler: self.handler.to_string(),
            acquired: now,
            expires: now + self.lease.as_millis() as i64,
            released: None,
        }
    }

    /// Claims `key`. `read_at` (Unix ms) is when the caller read the data its write is based on, or
    /// `None` when it reads after claiming.
    pub async fn acquire(&self, key: &str, read_at: Option<i64>) -> Result<Claimed, StateError> {
        let now = now_ms();
        let mine = self.record(now);
        let bytes = serde_json::to_vec(&mine).unwrap_or_default();
        self.count(|s| s.storage_requests += 1);
        match self
            .store
            .put_volatile(key, bytes.clone().into(), WriteCondition::IfNoneMatch)
            .await
        {
            Ok(etag) => return Ok(self.held(key, etag, mine)),
            Err(StateError::Conflict { .. }) => {}
            Err(e) => return Err(e),
        }
        self.count(|s| s.storage_requests += 1);
        let Some(current) = self.store.get(key).await? else {
            // Deleted between our create and our read: someone cleans up; treat as busy briefly.
            return Ok(self.busy("unknown", Duration::from_secs(1)));
        };
        let theirs: Option<ClaimRecord> = serde_json::from_slice(&current.bytes).ok();
        if let Some(theirs) = &theirs {
            // Our own claim (a resumed backfill run after a kill) is ours to take again.
            let ours = theirs.holder == self.holder;
            if !theirs.is_free(now) && !ours {
                let left = Duration::from_millis((theirs.expires - now).max(0) as u64);
                return Ok(self.busy(&theirs.handler, left));
            }
            let stale = read_at.is_some_and(|r| theirs.last_possible_write() + SKEW_MS >= r);
            if stale && !ours {
                self.count(|s| s.left_to_others += 1);
                return Ok(Claimed::Stale {
                    handler: theirs.handler.clone(),
                });
            }
        }
        // Free (released or expired, or an unreadable record): take it over, if nobody did first.
        self.count(|s| s.storage_requests += 1);
        match self
            .store
            .put_volatile(key, bytes.into(), WriteCondition::IfMatch(current.etag))
            .await
        {
            Ok(etag) => Ok(self.held(key, etag, mine)),
            Err(StateError::Conflict { .. }) => Ok(self.busy("unknown", Duration::from_secs(1))),
            Err(e) => Err(e),
        }
    }

    fn held(&self, key: &str, etag: ETag, record: ClaimRecord) -> Claimed {
        self.count(|s| s.acquired += 1);
        Claimed::Held(ClaimGuard {
            claims: self.clone(),
            key: key.to_string(),
            etag,
            record,
            released: false,
        })
    }

    fn busy(&self, handler: &str, retry_after: Duration) -> Claimed {
        self.count(|s| s.left_to_others += 1);
        Claimed::Busy {
            handler: handler.to_string(),
            retry_after,
        }
    }
}

/// A held claim. Release it with [`ClaimGuard::release`]; a guard dropped unreleased (a cancelled
/// future, a deadline) releases itself in the background, and the lease covers a killed process.
#[derive(Debug)]
pub struct ClaimGuard {
    claims: Claims,
    key: String,
    etag: ETag,
    record: ClaimRecord,
    released: bool,
}

impl std::fmt::Debug for Claims {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Claims")
            .field("holder", &self.holder)
            .finish()
    }
}

impl ClaimGuard {
    /// When the lease ends (Unix ms): the holder must have finished writing by then.
    pub fn expires_ms(&self) -> i64 {
        self.record.expires
    }

    /// Stamps the claim released, so the next handler may take it at once.
    pub async fn release(mut self) {
        self.released = true;
        release(
            self.claims.clone(),
            self.key.clone(),
            self.etag.clone(),
            self.record.clone(),
        )
        .await;
    }
}

impl Drop for ClaimGuard {
    fn drop(&mut self) {
        if self.released {
            return;
        }
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let (claims, key, etag, record) = (
                self.claims.clone(),
                self.key.clone(),
                self.etag.clone(),
                self.record.clone(),
            );
            rt.spawn(release(claims, key, etag, record));
        }
    }
}

async fn release(claims: Claims, key: String, etag: ETag, mut record: ClaimRecord) {
    record.released = Some(now_ms());
    let bytes = serde_json::to_vec(&record).unwrap_or_default();
    claims.count(|s| s.storage_requests += 1);
    let put = claims
        .store
        .put_volatile(&key, bytes.into(), WriteCondition::IfMatch(etag));
    match tokio::time::timeout(RELEASE_TIMEOUT, put).await {
        Ok(Ok(_)) => {}
        // Our lease ran out and another handler took the claim: theirs now, nothing to release.
        Ok(Err(StateError::Conflict { .. })) => {
            tracing::warn!(key = %key, "claim was taken over before it was released (the lease ran out)")
        }
        Ok(Err(e)) => {
            tracing::warn!(key = %key, error = %e, "could not release a claim; it ends with its lease")
        }
        Err(_) => tracing::warn!(key = %key, "releasing a claim timed out; it ends with its lease"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use entra_state::FileStore;

    fn store() -> (tempfile::TempDir, Arc<dyn StateStore>) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store: Arc<dyn StateStore> = Arc::new(FileStore::new(dir.path()).expect("store"));
        (dir, store)
    }

    #[test]
    fn an_address_claim_key_names_no_address_and_ignores_case() {
        let key = address_claim_key(" Jane.Doe@Example.org ");
        assert_eq!(key, address_claim_key("jane.doe@example.org"));
        assert!(
            key.starts_with("claims/addresses/") && key.ends_with(".json"),
            "{key}"
        );
        assert!(
            !key.to_lowercase().contains("jane") && !key.contains('@'),
            "{key}"
        );
        assert_ne!(key, address_claim_key("john.doe@example.org"));
    }

    #[tokio::test]
    async fn one_of_many_concurrent_claimants_holds_the_claim() {
        let (_d, store) = store();
        let key = user_claim_key("0c5e7f1a-1111-4222-8333-944455556666");
        let attempts = (0..16).map(|i| {
            let claims = Claims::new(store.clone(), "lcw-joiner", &format!("run-{i}"));
            let key = key.clone();
            async move { claims.acquire(&key, None).await.expect("store works") }
        });
        let answers = futures::future::join_all(attempts).await;
        let held = answers
            .iter()
            .filter(|a| matches!(a, Claimed::Held(_)))
            .count();
        let busy = answers
            .iter()
            .filter(|a| matches!(a, Claimed::Busy { handler, .. } if handler == "lcw-joiner"))
            .count();
        assert_eq!((held, busy), (1, 15));
    }

    #[tokio::test]
    async fn a_released_claim_is_free_and_marks_older_reads_stale() {
        let (_d, store) = store();
        let key = user_claim_key("u1");
        let read_before = now_ms();
        let joiner = Claims::new(store.clone(), "lcw-joiner", "a");
        let Claimed::Held(guard) = joiner.acquire(&key, None).await.expect("acquire") else {
            panic!("first claim is held")
        };
        let watch = Claims::new(store.clone(), "new-hire-watch", "b");
        assert!(matches!(
            watch.acquire(&key, None).await.expect("acquire"),
            Claimed::Busy { .. }
        ));
        guard.release().await;
        // A read taken before the joiner's release is stale: the joiner may have written since.
        assert!(matches!(
            watch.acquire(&key, Some(read_before)).await.expect("acquire"),
            Claimed::Stale { handler } if handler == "lcw-joiner"
        ));
        // Reading after claiming is always fine.
        assert!(matches!(
            watch.acquire(&key, None).await.expect("acquire"),
            Claimed::Held(_)
        ));
    }

    #[tokio::test]
    async fn a_crashed_holder_blocks_only_until_its_lease_ends() {
        let (_d, store) = store();
        let key = user_claim_key("u2");
        let crashed =
            Claims::new(store.clone(), "backfill", "killed").with_lease(Duration::from_millis(300));
        let Claimed::Held(guard) = crashed.acquire(&key, None).await.expect("acquire") else {
            panic!("held")
        };
        std::mem::forget(guard); // a killed process releases nothing
        let next = Claims::new(store.clone(), "lcw-joiner", "next");
        match next.acquire(&key, None).await.expect("acquire") {
            Claimed::Busy { retry_after, .. } => assert!(retry_after <= Duration::from_millis(300)),
            other => panic!("expected busy, got {other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(350)).await;
        assert!(matches!(
            next.acquire(&key, None).await.expect("acquire"),
            Claimed::Held(_)
        ));
    }

    #[tokio::test]
    async fn a_dropped_guard_releases_itself() {
        let (_d, store) = store();
        let key = user_claim_key("u3");
        let a = Claims::new(store.clone(), "new-hire-watch", "a");
        let guard = a.acquire(&key, None).await.expect("acquire");
        drop(guard);
        let b = Claims::new(store.clone(), "lcw-joiner", "b");
        let mut held = false;
        for _ in 0..50 {
            if matches!(
                b.acquire(&key, None).await.expect("acquire"),
                Claimed::Held(_)
            ) {
                held = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(held, "the dropped claim was released in the background");
    }

    #[tokio::test]
    async fn the_holder_may_reclaim_after_its_own_release() {
        let (_d, store) = store();
        let key = user_claim_key("u4");
        let read_at = now_ms();
        let backfill = Claims::new(store.clone(), "backfill", "run");
        let Claimed::Held(g) = backfill
            .acquire(&key, Some(read_at))
            .await
            .expect("acquire")
        else {
            panic!("held")
        };
        g.release().await;
        // A retry round of the same run is not stale against its own release.
        assert!(matches!(
            backfill
                .acquire(&key, Some(read_at))
                .await
                .expect("acquire"),
            Claimed::Held(_)
        ));
        assert_eq!(backfill.stats().acquired, 2);
    }

    #[tokio::test]
    async fn a_resumed_run_takes_back_the_claims_its_killed_process_left() {
        let (_d, store) = store();
        let key = user_claim_key("u5");
        let killed = Claims::new(store.clone(), "backfill", "20261202T000000Z-abc123");
        let Claimed::Held(g) = killed.acquire(&key, Some(now_ms())).await.expect("acquire") else {
            panic!("held")
        };
        std::mem::forget(g);
        let resumed = Claims::new(store.clone(), "backfill", "20261202T000000Z-abc123");
        let Claimed::Held(_taken_back) = resumed
            .acquire(&key, Some(now_ms()))
            .await
            .expect("acquire")
        else {
            panic!("the resumed run takes its claim back")
        };
        let other = Claims::new(store, "lcw-joiner", "x");
        assert!(matches!(
            other.acquire(&key, None).await.expect("acquire"),
            Claimed::Busy { .. }
        ));
    }
}
