//! FileStore: the shared behavioural suite on a temp dir, plus crash and cross-instance tests.

mod suite;

use bytes::Bytes;
use entra_state::{FileStore, StateStore, WriteCondition};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

fn fresh() -> (tempfile::TempDir, FileStore) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = FileStore::new(dir.path().join("state")).expect("file store");
    (dir, store)
}

macro_rules! suite_tests {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let (_dir, store) = fresh();
            suite::$name(&store).await;
        }
    )*};
}

suite_tests!(
    get_missing_is_none,
    put_get_round_trip,
    if_none_match_creates_only_once,
    if_match_with_stale_etag_conflicts,
    racing_conditional_writers_exactly_one_wins,
    append_lines_read_back_in_order,
    list_by_prefix,
    delete_reports_existence,
    key_validation_errors,
    volatile_puts_are_compare_and_swap_too,
);

#[test]
fn every_suite_case_has_a_file_test() {
    // Guards against adding a case to the suite and forgetting it here.
    assert_eq!(suite::CASES.len(), 10);
}

#[tokio::test]
async fn etag_is_the_documented_content_hash() {
    let (_dir, store) = fresh();
    let e = store
        .put("a.json", Bytes::from_static(b"abc"), WriteCondition::Any)
        .await
        .expect("put");
    assert_eq!(
        e.as_str(),
        "sha256-ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
}

#[tokio::test]
async fn layout_is_plain_files_under_the_root() {
    let (dir, store) = fresh();
    store
        .put(
            "checkpoints/new-hire-watch.json",
            Bytes::from_static(b"{\"x\":1}"),
            WriteCondition::Any,
        )
        .await
        .expect("put");
    let on_disk =
        std::fs::read(dir.path().join("state/checkpoints/new-hire-watch.json")).expect("read");
    assert_eq!(on_disk, b"{\"x\":1}");
}

#[tokio::test]
async fn survives_a_crash_that_left_temp_files_behind() {
    let (dir, store) = fresh();
    let key = "checkpoints/new-hire-watch.json";
    let e1 = store
        .put(key, Bytes::from_static(b"committed"), WriteCondition::Any)
        .await
        .expect("put");
    // Simulate a writer killed between "write temp file" and "rename": a half-written temp file
    // next to the target (and one at the root).
    let ckpt_dir = dir.path().join("state/checkpoints");
    std::fs::write(ckpt_dir.join(".tmp-0123456789abcdef"), b"{\"half\":").expect("temp");
    std::fs::write(dir.path().join("state/.tmp-deadbeef"), b"garbage").expect("temp");

    let reopened = FileStore::new(dir.path().join("state")).expect("reopen");
    let got = reopened.get(key).await.expect("get").expect("present");
    assert_eq!(got.bytes, Bytes::from_static(b"committed"));
    assert_eq!(got.etag, e1);
    assert_eq!(reopened.list("").await.expect("list"), vec![key.to_owned()]);
    // Conditional writes still work against the committed version.
    reopened
        .put(
            key,
            Bytes::from_static(b"next"),
            WriteCondition::IfMatch(e1),
        )
        .await
        .expect("IfMatch after crash");
    assert_eq!(
        reopened.list("checkpoints/").await.expect("list"),
        vec![key.to_owned()]
    );
}

#[tokio::test]
async fn torn_log_tail_is_hidden_then_terminated() {
    let (dir, store) = fresh();
    let key = "audit/run.jsonl";
    store
        .append(key, Bytes::from_static(b"{\"seq\":1}"))
        .await
        .expect("append");
    // Simulate a writer that died mid-line (power loss): a fragment without '\n'.
    let path = dir.path().join("state/audit/run.jsonl");
    let mut raw = std::fs::read(&path).expect("read");
    raw.extend_from_slice(b"{\"seq\":2,\"tru");
    std::fs::write(&path, &raw).expect("write");
    assert_eq!(
        store.read_log(key).await.expect("read_log"),
        Some(Bytes::from_static(b"{\"seq\":1}\n")),
        "read_log returns complete lines only"
    );
    store
        .append(key, Bytes::from_static(b"{\"seq\":3}"))
        .await
        .expect("append");
    assert_eq!(
        store.read_log(key).await.expect("read_log"),
        Some(Bytes::from_static(
            b"{\"seq\":1}\n{\"seq\":2,\"tru\n{\"seq\":3}\n"
        )),
        "the next append terminates the fragment so it cannot merge with the new record"
    );
}

/// Two FileStore values (separate in-process mutexes) on one directory, like two processes:
/// only the advisory lock file serialises them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn separate_instances_on_one_dir_still_race_safely() {
    let dir = tempfile::tempdir().expect("tempdir");
    let stores: Vec<FileStore> = (0..8)
        .map(|_| FileStore::new(dir.path()).expect("store"))
        .collect();
    let key = "checkpoints/backfill.json";
    let e0 = stores[0]
        .put(key, Bytes::from_static(b"v0"), WriteCondition::Any)
        .await
        .expect("v0");
    for round in 0..5 {
        let current = stores[0]
            .get(key)
            .await
            .expect("get")
            .expect("present")
            .etag;
        let results = futures::future::join_all(stores.iter().enumerate().map(|(i, s)| {
            let c = current.clone();
            async move {
                s.put(
                    key,
                    Bytes::from(format!("r{round}-w{i}")),
                    WriteCondition::IfMatch(c),
                )
                .await
            }
        }))
        .await;
        let wins = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(wins, 1, "round {round}: {results:?}");
    }
    assert_ne!(
        stores[0]
            .get(key)
            .await
            .expect("get")
            .expect("present")
            .etag,
        e0
    );
}

const CHILD_ENV: &str = "ENTRA_STATE_TEST_CRASH_CHILD_DIR";

/// Child half of `audit_line_survives_kill_9`: appends one line, says so, then waits to be killed.
/// Ignored so that it only runs when the parent test starts it.
#[tokio::test]
#[ignore = "helper process for audit_line_survives_kill_9"]
async fn crash_child_append_then_wait() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else {
        panic!("{CHILD_ENV} not set: this helper is started by audit_line_survives_kill_9");
    };
    let store = FileStore::new(dir).expect("store");
    store
        .append(
            "audit/crash.jsonl",
            Bytes::from_static(b"{\"op\":\"patch\",\"user\":\"u1\"}"),
        )
        .await
        .expect("append");
    println!("APPENDED");
    std::thread::sleep(std::time::Duration::from_secs(60));
}

#[tokio::test]
async fn audit_line_survives_kill_9() {
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = std::env::current_exe().expect("current exe");
    let mut child = Command::new(exe)
        .args([
            "--exact",
            "crash_child_append_then_wait",
            "--ignored",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(CHILD_ENV, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn child");
    let stdout = child.stdout.take().expect("stdout");
    let mut saw = false;
    for line in BufReader::new(stdout).lines() {
        if line.expect("line").contains("APPENDED") {
            saw = true;
            break;
        }
    }
    child
        .kill()
        .expect("SIGKILL the child right after the write");
    let _ = child.wait();
    assert!(saw, "child never reported the append");
    let store = FileStore::new(dir.path()).expect("store");
    assert_eq!(
        store.read_log("audit/crash.jsonl").await.expect("read_log"),
        Some(Bytes::from_static(b"{\"op\":\"patch\",\"user\":\"u1\"}\n"))
    );
}

#[test]
fn new_fails_early_when_the_path_is_a_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").expect("write");
    match FileStore::new(&file) {
        Err(entra_state::StateError::Io { path, .. }) => assert_eq!(path, file),
        other => panic!("expected an Io error naming the path, got {other:?}"),
    }
}

#[cfg(unix)]
#[tokio::test]
async fn state_files_are_private_to_the_owner() {
    use std::os::unix::fs::PermissionsExt;
    let (_dir, store) = fresh();
    store
        .put(
            "checkpoints/a.json",
            Bytes::from_static(b"{}"),
            WriteCondition::Any,
        )
        .await
        .expect("put");
    store
        .put_volatile(
            "claims/users/u.json",
            Bytes::from_static(b"{}"),
            WriteCondition::IfNoneMatch,
        )
        .await
        .expect("claim");
    store
        .append("audit/run.jsonl", Bytes::from_static(b"{\"after\":\"x\"}"))
        .await
        .expect("append");
    for key in [
        "checkpoints/a.json",
        "claims/users/u.json",
        "audit/run.jsonl",
    ] {
        let mode = std::fs::metadata(store.root().join(key))
            .expect("file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{key}: {mode:o}");
    }
    let dir_mode = std::fs::metadata(store.root().join("audit"))
        .expect("dir")
        .permissions()
        .mode();
    assert_eq!(dir_mode & 0o777, 0o700, "audit/: {dir_mode:o}");
}
