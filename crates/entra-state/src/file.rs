//! [`FileStore`]: the local-directory store used by the CLI.
//!
//! Layout: the document or log for key `a/b.json` is the file `<dir>/a/b.json`, so on-call
//! engineers can read state with ordinary tools. Names starting with `.` are the store's own
//! (`.entra-state.lock`, `.tmp-*` temp files) and are never keys (see [`crate::validate_key`]).
//!
//! Guarantees:
//! * **Atomic replace.** `put` writes a temp file in the target's directory, `fsync`s it, renames
//!   it over the target (`rename(2)` is atomic within a file system) and `fsync`s the directory.
//!   A crash leaves either the old or the new document, possibly plus an orphan `.tmp-*` file,
//!   which every operation ignores.
//! * **ETag** = `sha256-<hex SHA-256 of the content>`. Deterministic and cheap to verify by hand;
//!   the cost is the ABA case: if a document is rewritten to byte-identical content, an old ETag
//!   matches again (harmless for checkpoints, whose meaning is their content).
//! * **Conditional writes** (and appends and deletes) run under an in-process mutex plus an
//!   exclusive advisory lock (`flock(2)` on Unix, `LockFileEx` on Windows, via `fs4`) on
//!   `<dir>/.entra-state.lock`. Every process and every `FileStore` value using the same
//!   directory is therefore serialised, and of racing `IfMatch`/`IfNoneMatch` writers exactly
//!   one wins. For `put` the lock covers only the check and the rename: the temp file is written
//!   and fsynced before it, the directory fsynced after it, so writers to different keys (claims,
//!   checkpoints) pay their fsyncs in parallel. A create-only `put` (`IfNoneMatch`) takes no lock
//!   at all: it `link(2)`s the complete temp file to the target, which fails atomically if the
//!   target exists (`O_EXCL` semantics, without a half-written file ever being visible). The lock is released by the kernel if the process dies. Advisory locks are not
//!   reliable on network file systems (NFS/SMB): keep `ENRICH_STATE_DIR` on a local disk.
//! * **Durable appends.** `append` opens the log with `O_APPEND`, writes the whole line with one
//!   `write_all`, and `fdatasync`s before returning (plus a directory `fsync` when the log was
//!   just created), so a line is on disk once `append` returns, even if the process is killed
//!   right after. If a previous writer died mid-line (a torn tail without `\n`), the next append
//!   first terminates that fragment, and `read_log` returns only complete lines.
//! * Limitation: a key cannot be both a document and a "folder" (`a` and `a/b`), unlike blobs.

use crate::{
    normalize_line, validate_key, validate_prefix, ETag, StateError, StateStore, Versioned,
    WriteCondition,
};
use async_trait::async_trait;
use bytes::Bytes;
use sha2::{Digest, Sha256};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

const LOCK_FILE: &str = ".entra-state.lock";
const TEMP_PREFIX: &str = ".tmp-";

/// A [`StateStore`] in a local directory. Cheap to clone; clones share the in-process lock.
///
/// File I/O runs on Tokio's blocking pool, so the methods must be awaited inside a Tokio runtime.
#[derive(Clone, Debug)]
pub struct FileStore {
    root: PathBuf,
    mutex: Arc<Mutex<Option<File>>>,
}

impl FileStore {
    /// A store rooted at `dir`, which is created if missing (so a bad or unwritable path fails
    /// here, before any work). Sub-directories for keys are created on first write.
    pub fn new(dir: impl Into<PathBuf>) -> Result<Self, StateError> {
        let root = dir.into();
        fs::create_dir_all(&root).map_err(|e| StateError::io(&root, e))?;
        if !root.is_dir() {
            return Err(StateError::io(
                &root,
                io::Error::other("the state directory path is not a directory"),
            ));
        }
        Ok(Self {
            root,
            mutex: Arc::new(Mutex::new(None)),
        })
    }

    /// The directory this store writes to.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path_of(&self, key: &str) -> PathBuf {
        let mut p = self.root.clone();
        p.extend(key.split('/'));
        p
    }

    async fn blocking<T, F>(&self, what: PathBuf, f: F) -> Result<T, StateError>
    where
        T: Send + 'static,
        F: FnOnce(Inner) -> Result<T, StateError> + Send + 'static,
    {
        let inner = Inner {
            root: self.root.clone(),
            mutex: self.mutex.clone(),
        };
        tokio::task::spawn_blocking(move || f(inner))
            .await
            .map_err(|e| {
                StateError::io(what, io::Error::other(format!("state worker failed: {e}")))
            })?
    }
}

/// What a blocking worker needs.
struct Inner {
    root: PathBuf,
    mutex: Arc<Mutex<Option<File>>>,
}

/// Both locks: the in-process mutex (which keeps the lock file open between operations) and the
/// `flock` on that file; released (in reverse order) on drop.
struct Locked<'a> {
    guard: std::sync::MutexGuard<'a, Option<File>>,
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        if let Some(file) = self.guard.as_ref() {
            // Closing the file would release it too; it stays open for the next operation.
            let _ = fs4::FileExt::unlock(file);
        }
    }
}

impl Inner {
    fn lock(&self) -> Result<Locked<'_>, StateError> {
        // A poisoned mutex still holds a valid (or no) file: the lock stays usable.
        let mut guard = self.mutex.lock().unwrap_or_else(|p| p.into_inner());
        let path = self.root.join(LOCK_FILE);
        if guard.is_none() {
            fs::create_dir_all(&self.root).map_err(|e| StateError::io(&self.root, e))?;
            let file = OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)
                .map_err(|e| StateError::io(&path, e))?;
            *guard = Some(file);
        }
        if let Some(file) = guard.as_ref() {
            fs4::FileExt::lock(file).map_err(|e| StateError::io(&path, e))?;
        }
        Ok(Locked { guard })
    }

    /// Creates the parent directories of `path` (inside root), fsyncing each new entry's parent.
    fn ensure_parent(&self, path: &Path) -> Result<PathBuf, StateError> {
        let parent = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| self.root.clone());
        if !parent.is_dir() {
            let mut missing = Vec::new();
            let mut cur = parent.as_path();
            while !cur.is_dir() {
                missing.push(cur.to_path_buf());
                match cur.parent() {
                    Some(p) => cur = p,
                    None => break,
                }
            }
            for dir in missing.iter().rev() {
                match private_dir(dir) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                    Err(e) => return Err(StateError::io(dir, e)),
                }
                if let Some(p) = dir.parent() {
                    sync_dir(p)?;
                }
            }
        }
        Ok(parent)
    }
}

fn etag_of(bytes: &[u8]) -> ETag {
    let digest = Sha256::digest(bytes);
    let mut s = String::with_capacity(7 + 64);
    s.push_str("sha256-");
    for b in digest.iter() {
        s.push(char::from(HEX[usize::from(b >> 4)]));
        s.push(char::from(HEX[usize::from(b & 0x0f)]));
    }
    ETag(s)
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn read_opt(path: &Path) -> Result<Option<Vec<u8>>, StateError> {
    match fs::read(path) {
        Ok(b) => Ok(Some(b)),
        // A path component is a file (key `a.json/b` next to document `a.json`): no such key.
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
            ) =>
        {
            Ok(None)
        }
        Err(e) => Err(StateError::io(path, e)),
    }
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> Result<(), StateError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StateError::io(dir, e))
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> Result<(), StateError> {
    // Directories cannot be opened for fsync on Windows; NTFS journals the rename itself.
    Ok(())
}

/// The state holds the audit log's personal emails (the before- and after-values rollback needs):
/// files are created readable by the owner only (0600), directories 0700.
#[cfg(unix)]
fn private(options: &mut OpenOptions) -> &mut OpenOptions {
    use std::os::unix::fs::OpenOptionsExt;
    options.mode(0o600)
}

#[cfg(not(unix))]
fn private(options: &mut OpenOptions) -> &mut OpenOptions {
    options
}

#[cfg(unix)]
fn private_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new().mode(0o700).create(dir)
}

#[cfg(not(unix))]
fn private_dir(dir: &Path) -> io::Result<()> {
    fs::create_dir(dir)
}

/// Writes `bytes` to a new temp file in `dir` (fsynced when `sync`); the caller renames it into place.
fn write_temp(dir: &Path, bytes: &[u8], sync: bool) -> Result<PathBuf, StateError> {
    let tmp = dir.join(format!("{TEMP_PREFIX}{}", uuid::Uuid::new_v4().simple()));
    let result = (|| {
        let mut f = private(OpenOptions::new().write(true).create_new(true))
            .open(&tmp)
            .map_err(|e| StateError::io(&tmp, e))?;
        f.write_all(bytes).map_err(|e| StateError::io(&tmp, e))?;
        if sync {
            f.sync_all().map_err(|e| StateError::io(&tmp, e))?;
        }
        Ok(())
    })();
    match result {
        Ok(()) => Ok(tmp),
        Err(e) => {
            // Best effort: a leftover temp file is ignored by every operation anyway.
            let _ = fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// A volatile replace (a claim's release or takeover): rewrites the existing file under the lock,
/// with no new inode and no rename. A reader racing it may see a torn document; it can only act on
/// it through a compare-and-swap, which then fails (the content changed), and a document torn by a
/// crash is simply replaced by the next compare-and-swap against what it reads.
fn replace_in_place(
    inner: &Inner,
    path: &Path,
    key: &str,
    cond: &WriteCondition,
    bytes: &[u8],
) -> Result<ETag, StateError> {
    let _locked = inner.lock()?;
    check_condition(path, key, cond)?;
    let mut f = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| StateError::io(path, e))?;
    f.write_all(bytes).map_err(|e| StateError::io(path, e))?;
    f.set_len(bytes.len() as u64)
        .map_err(|e| StateError::io(path, e))?;
    Ok(etag_of(bytes))
}

fn check_condition(path: &Path, key: &str, cond: &WriteCondition) -> Result<(), StateError> {
    let conflict = |detail: String| StateError::Conflict {
        key: key.to_owned(),
        detail,
    };
    match cond {
        WriteCondition::Any => Ok(()),
        WriteCondition::IfNoneMatch if path.exists() => Err(conflict(
            "create-only write, but the document already exists".into(),
        )),
        WriteCondition::IfNoneMatch => Ok(()),
        WriteCondition::IfMatch(want) => match read_opt(path)? {
            None => Err(conflict(format!(
                "expected version {want}, but the document does not exist"
            ))),
            Some(cur) if &etag_of(&cur) != want => Err(conflict(format!(
                "expected version {want}, found {}",
                etag_of(&cur)
            ))),
            Some(_) => Ok(()),
        },
    }
}

fn append_line(dir: &Path, path: &Path, line: &[u8]) -> Result<(), StateError> {
    let existed = path.exists();
    let mut f = private(OpenOptions::new().append(true).read(true).create(true))
        .open(path)
        .map_err(|e| StateError::io(path, e))?;
    let len = f.metadata().map_err(|e| StateError::io(path, e))?.len();
    let mut buf = Vec::with_capacity(line.len() + 1);
    if len > 0 {
        // Terminate a torn last line left by a writer that died mid-write.
        let mut last = [0u8; 1];
        f.seek(SeekFrom::Start(len - 1))
            .and_then(|_| f.read_exact(&mut last))
            .map_err(|e| StateError::io(path, e))?;
        if last[0] != b'\n' {
            tracing::warn!(path = %path.display(), "terminating a torn last line in an append log");
            buf.push(b'\n');
        }
    }
    buf.extend_from_slice(line);
    // O_APPEND: the write goes to the end of the file regardless of the read position.
    f.write_all(&buf).map_err(|e| StateError::io(path, e))?;
    f.sync_data().map_err(|e| StateError::io(path, e))?;
    if !existed {
        sync_dir(dir)?;
    }
    Ok(())
}

fn walk(dir: &Path, rel: &str, out: &mut Vec<String>) -> Result<(), StateError> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(StateError::io(dir, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| StateError::io(dir, e))?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue; // not UTF-8, so not a key
        };
        if name.starts_with('.') {
            continue; // lock and temp files
        }
        let key = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        if validate_key(&key).is_err() {
            continue;
        }
        let ft = entry
            .file_type()
            .map_err(|e| StateError::io(entry.path(), e))?;
        if ft.is_dir() {
            walk(&entry.path(), &key, out)?;
        } else if ft.is_file() {
            out.push(key);
        }
    }
    Ok(())
}

/// Whether a `put` fsyncs (documents) or not (claims: see [`StateStore::put_volatile`]).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Durability {
    Synced,
    Volatile,
}

impl FileStore {
    async fn put_with(
        &self,
        key: &str,
        bytes: Bytes,
        cond: WriteCondition,
        durability: Durability,
    ) -> Result<ETag, StateError> {
        validate_key(key)?;
        let path = self.path_of(key);
        let key = key.to_owned();
        self.blocking(path.clone(), move |inner| {
            // The content is written (and fsynced) before the lock is taken, and the directory after
            // it is released: the lock covers only the check and the rename (the compare-and-swap),
            // so concurrent writers (claims, checkpoints) pay their fsyncs in parallel.
            let dir = inner.ensure_parent(&path)?;
            if durability == Durability::Volatile && matches!(cond, WriteCondition::IfMatch(_)) {
                return replace_in_place(&inner, &path, &key, &cond, &bytes);
            }
            let tmp = write_temp(&dir, &bytes, durability == Durability::Synced)?;
            let swapped = match cond {
                // Create-only needs no lock: link(2) of the complete temp file fails atomically
                // when the target exists (the classic lock-file idiom), in any process.
                WriteCondition::IfNoneMatch => match fs::hard_link(&tmp, &path) {
                    Ok(()) => Ok(()),
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                        Err(StateError::Conflict {
                            key: key.clone(),
                            detail: "create-only write, but the document already exists".into(),
                        })
                    }
                    // A file system without hard links: check and rename under the lock.
                    Err(_) => inner.lock().and_then(|_locked| {
                        check_condition(&path, &key, &cond)?;
                        fs::rename(&tmp, &path).map_err(|e| StateError::io(&path, e))
                    }),
                },
                _ => inner.lock().and_then(|_locked| {
                    check_condition(&path, &key, &cond)?;
                    fs::rename(&tmp, &path).map_err(|e| StateError::io(&path, e))
                }),
            };
            // After a link (or a failure) the temp name is left over; after a rename it is gone.
            let _ = fs::remove_file(&tmp);
            swapped?;
            if durability == Durability::Synced {
                sync_dir(&dir)?;
            }
            Ok(etag_of(&bytes))
        })
        .await
    }
}

#[async_trait]
impl StateStore for FileStore {
    async fn get(&self, key: &str) -> Result<Option<Versioned>, StateError> {
        validate_key(key)?;
        let path = self.path_of(key);
        self.blocking(path.clone(), move |_| {
            Ok(read_opt(&path)?.map(|b| Versioned {
                etag: etag_of(&b),
                bytes: Bytes::from(b),
            }))
        })
        .await
    }

    async fn put(&self, key: &str, bytes: Bytes, cond: WriteCondition) -> Result<ETag, StateError> {
        self.put_with(key, bytes, cond, Durability::Synced).await
    }

    async fn put_volatile(
        &self,
        key: &str,
        bytes: Bytes,
        cond: WriteCondition,
    ) -> Result<ETag, StateError> {
        self.put_with(key, bytes, cond, Durability::Volatile).await
    }

    async fn append(&self, key: &str, line: Bytes) -> Result<(), StateError> {
        validate_key(key)?;
        let line = normalize_line(key, line)?;
        let path = self.path_of(key);
        self.blocking(path.clone(), move |inner| {
            let _locked = inner.lock()?;
            let dir = inner.ensure_parent(&path)?;
            append_line(&dir, &path, &line)
        })
        .await
    }

    async fn read_log(&self, key: &str) -> Result<Option<Bytes>, StateError> {
        validate_key(key)?;
        let path = self.path_of(key);
        self.blocking(path.clone(), move |_| {
            Ok(read_opt(&path)?.map(|mut b| {
                // Only complete lines: drop a torn tail (a writer killed mid-line).
                let keep = b.iter().rposition(|&c| c == b'\n').map_or(0, |i| i + 1);
                b.truncate(keep);
                Bytes::from(b)
            }))
        })
        .await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StateError> {
        validate_prefix(prefix)?;
        let prefix = prefix.to_owned();
        self.blocking(self.root.clone(), move |inner| {
            // Walk only the deepest directory the prefix fully names.
            let (dir_rel, _) = prefix.rsplit_once('/').unwrap_or(("", ""));
            let mut start = inner.root.clone();
            if !dir_rel.is_empty() {
                start.extend(dir_rel.split('/'));
            }
            let mut out = Vec::new();
            walk(&start, dir_rel, &mut out)?;
            out.retain(|k| k.starts_with(&prefix));
            out.sort();
            Ok(out)
        })
        .await
    }

    async fn delete(&self, key: &str) -> Result<bool, StateError> {
        validate_key(key)?;
        let path = self.path_of(key);
        self.blocking(path.clone(), move |inner| {
            let _locked = inner.lock()?;
            match fs::remove_file(&path) {
                Ok(()) => {
                    if let Some(dir) = path.parent() {
                        sync_dir(dir)?;
                    }
                    Ok(true)
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                    ) =>
                {
                    Ok(false)
                }
                Err(e) => Err(StateError::io(&path, e)),
            }
        })
        .await
    }
}
