//! Checkpoint, cursor and audit storage for entra-enrich.
//!
//! One small trait, [`StateStore`], with two implementations:
//!
//! * [`FileStore`] — a directory on local disk (`ENRICH_STATE_DIR`), used by the CLI that
//!   on-call engineers run. Atomic replace (temp file + fsync + rename), content-hash ETags,
//!   conditional writes serialised by an in-process mutex plus an advisory `flock` lock file,
//!   and append-only logs written with `O_APPEND` and fsynced per line.
//! * [`BlobStore`] — an Azure Blob Storage container, used by the Azure Functions custom handler.
//!   Versioned documents are block blobs written with `If-Match` / `If-None-Match: *`; logs are
//!   append blobs. It uses the official `azure_storage_blob` crate and a token credential
//!   (managed identity in production).
//!
//! The crate reads no settings: the app validates `ENRICH_STATE_DIR`, `ENRICH_STATE_BLOB_URL` and the
//! host's storage setting with the rest of its configuration and passes the directory
//! ([`FileStore::new`]) or the container URL ([`BlobStore::new`]).
//!
//! Keys are `/`-separated relative names such as `checkpoints/new-hire-watch.json` or
//! `audit/<run-id>.jsonl`; see [`validate_key`] for the exact rules.
//!
//! With the `testing` feature, [`testing`] starts Azurite on loopback over HTTPS with OAuth, so
//! other crates can run their checkpoint tests against a real Blob API.

mod blob;
mod error;
mod file;
mod key;
#[cfg(feature = "testing")]
pub mod testing;

use async_trait::async_trait;
use bytes::Bytes;
use std::fmt;

pub use blob::{BlobStore, BlobStoreOptions, DEFAULT_CONTAINER};
pub use error::{KeyProblem, StateError};
pub use file::FileStore;
pub use key::{validate_key, validate_prefix, MAX_KEY_LEN};

/// An opaque version tag for a stored document.
///
/// Compare it only for equality and pass it back in [`WriteCondition::IfMatch`]. Its format
/// depends on the store: [`FileStore`] uses `sha256-<hex of the content>`, [`BlobStore`] uses the
/// blob's HTTP ETag as returned by the service (e.g. `"0x8DC..."`, quotes included).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ETag(String);

impl ETag {
    /// Wraps a tag previously obtained from a store (e.g. one persisted alongside a run).
    pub fn new(tag: impl Into<String>) -> Self {
        Self(tag.into())
    }

    /// The tag as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ETag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A document together with the version it was read at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Versioned {
    /// The document's bytes, exactly as written.
    pub bytes: Bytes,
    /// The version tag to pass to [`WriteCondition::IfMatch`] for an optimistic update.
    pub etag: ETag,
}

/// The precondition of a [`StateStore::put`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WriteCondition {
    /// Unconditional overwrite (or create).
    Any,
    /// Replace only if the current version is exactly this one; fails with
    /// [`StateError::Conflict`] if the document changed or no longer exists.
    IfMatch(ETag),
    /// Create only: fails with [`StateError::Conflict`] if the document already exists.
    IfNoneMatch,
}

/// Small, versioned key/value documents plus append-only logs.
///
/// Guarantees shared by every implementation (the behavioural test suite in
/// `crates/entra-state/tests/` runs the same cases against both):
///
/// * `put` with [`WriteCondition::IfMatch`] / [`WriteCondition::IfNoneMatch`] is a
///   compare-and-swap: of several writers racing with the same precondition, exactly one
///   succeeds and the others get [`StateError::Conflict`].
/// * A document is never observed half-written.
/// * `append` adds one line, or a batch of `\n`-separated lines, as one atomic write (a
///   trailing `\n` is added if missing), creates the log on first use, and returns only once
///   the data is durable. Concurrent appends never interleave within a call's payload.
///   Keep one payload under 4 MiB (the Append Block limit of older service versions).
/// * Documents (`put`) and logs (`append`) should use distinct keys; mixing them on one key is
///   not supported.
#[async_trait]
pub trait StateStore: Send + Sync {
    /// Reads a document; `Ok(None)` if it does not exist.
    async fn get(&self, key: &str) -> Result<Option<Versioned>, StateError>;

    /// Writes a document if `cond` holds and returns its new version.
    async fn put(&self, key: &str, bytes: Bytes, cond: WriteCondition) -> Result<ETag, StateError>;

    /// Like [`StateStore::put`], for documents that need not outlive the machine: leases and claims,
    /// whose holder is gone too if the machine crashes. The same compare-and-swap; a store may skip
    /// its fsyncs and replace in place ([`FileStore`] does: a reader racing a replace may then see a
    /// torn document, and any compare-and-swap it bases on it fails). A blob is durable anyway.
    async fn put_volatile(
        &self,
        key: &str,
        bytes: Bytes,
        cond: WriteCondition,
    ) -> Result<ETag, StateError> {
        self.put(key, bytes, cond).await
    }

    /// Appends one line (or a batch of `\n`-separated lines, written atomically) to the
    /// append-only log at `key`, creating the log if needed. An empty payload is rejected.
    async fn append(&self, key: &str, line: Bytes) -> Result<(), StateError>;

    /// Reads a whole append-only log back (`\n`-terminated lines, oldest first);
    /// `Ok(None)` if no line was ever appended.
    async fn read_log(&self, key: &str) -> Result<Option<Bytes>, StateError>;

    /// Lists the keys (documents and logs) that start with `prefix`, sorted.
    /// `prefix` may be empty, and may end with `/`.
    async fn list(&self, prefix: &str) -> Result<Vec<String>, StateError>;

    /// Deletes a document or log; returns whether it existed. Meant for checkpoint clean-up only.
    async fn delete(&self, key: &str) -> Result<bool, StateError>;
}

/// Checks an append payload (one or more lines) and returns it `\n`-terminated.
pub(crate) fn normalize_line(key: &str, line: Bytes) -> Result<Bytes, StateError> {
    if line.is_empty() || line.as_ref() == b"\n" {
        return Err(StateError::InvalidLogLine {
            key: key.to_owned(),
            reason: "the line is empty",
        });
    }
    if line.last() == Some(&b'\n') {
        Ok(line)
    } else {
        let mut v = Vec::with_capacity(line.len() + 1);
        v.extend_from_slice(&line);
        v.push(b'\n');
        Ok(Bytes::from(v))
    }
}
