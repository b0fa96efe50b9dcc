//! The behavioural suite every `StateStore` must pass. Each case gets a fresh, empty store.
#![allow(dead_code)]

use bytes::Bytes;
use entra_state::{ETag, KeyProblem, StateError, StateStore, WriteCondition};
use futures::future::join_all;

/// (name, case) pairs, so a backend can run them all against fresh stores.
pub(crate) type Case =
    for<'a> fn(
        &'a dyn StateStore,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'a>>;

macro_rules! cases {
    ($($name:ident),* $(,)?) => {
        pub(crate) const CASES: &[(&str, Case)] = &[
            $((stringify!($name), |s| Box::pin($name(s))),)*
        ];
    };
}

cases!(
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

const CKPT: &str = "checkpoints/new-hire-watch.json";

fn assert_conflict<T: std::fmt::Debug>(r: Result<T, StateError>, what: &str) {
    match r {
        Err(StateError::Conflict { .. }) => {}
        other => panic!("{what}: expected StateError::Conflict, got {other:?}"),
    }
}

pub(crate) async fn get_missing_is_none(s: &dyn StateStore) {
    assert_eq!(s.get(CKPT).await.expect("get"), None);
    assert_eq!(
        s.read_log("audit/none.jsonl").await.expect("read_log"),
        None
    );
}

pub(crate) async fn put_get_round_trip(s: &dyn StateStore) {
    let v1 = Bytes::from_static(br#"{"deltaLink":"https://graph/delta?token=1"}"#);
    let e1 = s
        .put(CKPT, v1.clone(), WriteCondition::Any)
        .await
        .expect("put v1");
    let got = s.get(CKPT).await.expect("get v1").expect("v1 present");
    assert_eq!(got.bytes, v1);
    assert_eq!(got.etag, e1, "get must return the etag put returned");

    // Overwrite: new content, new etag; binary-safe.
    let v2 = Bytes::from_static(b"\x00\xffbinary\n\r\tbytes");
    let e2 = s
        .put(CKPT, v2.clone(), WriteCondition::Any)
        .await
        .expect("put v2");
    assert_ne!(e1, e2, "a changed document must get a new etag");
    let got = s.get(CKPT).await.expect("get v2").expect("v2 present");
    assert_eq!((got.bytes, got.etag), (v2, e2));

    // Nested keys and an empty document.
    let deep = "checkpoints/backfill/2026/progress.json";
    let e3 = s
        .put(deep, Bytes::new(), WriteCondition::IfNoneMatch)
        .await
        .expect("put empty");
    let got = s
        .get(deep)
        .await
        .expect("get empty")
        .expect("empty present");
    assert!(got.bytes.is_empty());
    assert_eq!(got.etag, e3);
}

pub(crate) async fn if_none_match_creates_only_once(s: &dyn StateStore) {
    let first = Bytes::from_static(b"first");
    let e = s
        .put(CKPT, first.clone(), WriteCondition::IfNoneMatch)
        .await
        .expect("create");
    assert_conflict(
        s.put(
            CKPT,
            Bytes::from_static(b"second"),
            WriteCondition::IfNoneMatch,
        )
        .await,
        "second create-only put",
    );
    let got = s.get(CKPT).await.expect("get").expect("present");
    assert_eq!(
        (got.bytes, got.etag),
        (first, e),
        "the losing create must not change the document"
    );
}

pub(crate) async fn if_match_with_stale_etag_conflicts(s: &dyn StateStore) {
    let e1 = s
        .put(CKPT, Bytes::from_static(b"v1"), WriteCondition::Any)
        .await
        .expect("v1");
    let e2 = s
        .put(
            CKPT,
            Bytes::from_static(b"v2"),
            WriteCondition::IfMatch(e1.clone()),
        )
        .await
        .expect("IfMatch with the current etag must succeed");
    assert_conflict(
        s.put(
            CKPT,
            Bytes::from_static(b"v3"),
            WriteCondition::IfMatch(e1.clone()),
        )
        .await,
        "IfMatch with a stale etag",
    );
    assert_conflict(
        s.put(
            CKPT,
            Bytes::from_static(b"v3"),
            WriteCondition::IfMatch(ETag::new("\"0xBOGUS\"")),
        )
        .await,
        "IfMatch with a made-up etag",
    );
    let got = s.get(CKPT).await.expect("get").expect("present");
    assert_eq!((got.bytes, got.etag), (Bytes::from_static(b"v2"), e2));
    // IfMatch on a document that does not exist is a conflict too.
    assert_conflict(
        s.put(
            "checkpoints/missing.json",
            Bytes::from_static(b"x"),
            WriteCondition::IfMatch(e1),
        )
        .await,
        "IfMatch on a missing document",
    );
    assert_eq!(s.get("checkpoints/missing.json").await.expect("get"), None);
}

pub(crate) async fn racing_conditional_writers_exactly_one_wins(s: &dyn StateStore) {
    const N: usize = 8;
    // Two timer instances (here: eight) read the same version and race to advance it.
    let e0 = s
        .put(CKPT, Bytes::from_static(b"v0"), WriteCondition::Any)
        .await
        .expect("v0");
    let results = join_all((0..N).map(|i| {
        let e0 = e0.clone();
        async move {
            s.put(
                CKPT,
                Bytes::from(format!("writer-{i}")),
                WriteCondition::IfMatch(e0),
            )
            .await
        }
    }))
    .await;
    let winners: Vec<usize> = results
        .iter()
        .enumerate()
        .filter(|(_, r)| r.is_ok())
        .map(|(i, _)| i)
        .collect();
    assert_eq!(
        winners.len(),
        1,
        "exactly one IfMatch writer must win, results: {results:?}"
    );
    for r in &results {
        if let Err(e) = r {
            assert!(
                matches!(e, StateError::Conflict { .. }),
                "losers must get Conflict, got {e:?}"
            );
        }
    }
    let got = s.get(CKPT).await.expect("get").expect("present");
    assert_eq!(got.bytes, Bytes::from(format!("writer-{}", winners[0])));

    // Same for create-only.
    let key = "checkpoints/lease.json";
    let results = join_all((0..N).map(|i| async move {
        s.put(
            key,
            Bytes::from(format!("owner-{i}")),
            WriteCondition::IfNoneMatch,
        )
        .await
    }))
    .await;
    let winners: Vec<usize> = results
        .iter()
        .enumerate()
        .filter(|(_, r)| r.is_ok())
        .map(|(i, _)| i)
        .collect();
    assert_eq!(
        winners.len(),
        1,
        "exactly one IfNoneMatch writer must win, results: {results:?}"
    );
    let got = s.get(key).await.expect("get").expect("present");
    assert_eq!(got.bytes, Bytes::from(format!("owner-{}", winners[0])));
}

pub(crate) async fn append_lines_read_back_in_order(s: &dyn StateStore) {
    let key = "audit/run-0001.jsonl";
    s.append(key, Bytes::from_static(br#"{"seq":1,"op":"patch"}"#))
        .await
        .expect("append 1");
    s.append(key, Bytes::from_static(b"{\"seq\":2}\n"))
        .await
        .expect("append 2");
    s.append(key, Bytes::from_static(br#"{"seq":3}"#))
        .await
        .expect("append 3");
    let log = s
        .read_log(key)
        .await
        .expect("read_log")
        .expect("log present");
    assert_eq!(
        log,
        Bytes::from_static(b"{\"seq\":1,\"op\":\"patch\"}\n{\"seq\":2}\n{\"seq\":3}\n")
    );
    // A batch of lines (the audit writer appends one batch per patch) lands as a unit, in order.
    s.append(key, Bytes::from_static(b"{\"seq\":4}\n{\"seq\":5}"))
        .await
        .expect("append batch");
    let log = s
        .read_log(key)
        .await
        .expect("read_log")
        .expect("log present");
    assert_eq!(
        log,
        Bytes::from_static(
            b"{\"seq\":1,\"op\":\"patch\"}\n{\"seq\":2}\n{\"seq\":3}\n{\"seq\":4}\n{\"seq\":5}\n"
        )
    );
    // An empty payload is rejected and writes nothing.
    for empty in [Bytes::new(), Bytes::from_static(b"\n")] {
        match s.append(key, empty).await {
            Err(StateError::InvalidLogLine { key: k, .. }) => assert_eq!(k, key),
            other => panic!("expected InvalidLogLine, got {other:?}"),
        }
    }
    assert_eq!(
        s.read_log(key).await.expect("read_log").expect("present"),
        log
    );
    // Concurrent batch appends: all land, and each batch's two lines stay adjacent.
    let other = "audit/run-0002.jsonl";
    join_all((0..10).map(|i| async move {
        s.append(
            other,
            Bytes::from(format!(
                "{{\"n\":{i},\"part\":1}}\n{{\"n\":{i},\"part\":2}}\n"
            )),
        )
        .await
        .expect("concurrent append")
    }))
    .await;
    let log = s.read_log(other).await.expect("read_log").expect("present");
    let text = String::from_utf8(log.to_vec()).expect("utf8");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 20, "{text}");
    let mut seen: Vec<String> = Vec::new();
    for pair in lines.chunks(2) {
        let n = pair[0].trim_end_matches(",\"part\":1}").to_owned();
        assert!(pair[0].ends_with(",\"part\":1}"), "batch split: {text}");
        assert_eq!(
            pair[1],
            format!("{n},\"part\":2}}"),
            "batch interleaved: {text}"
        );
        seen.push(n);
    }
    seen.sort();
    let mut want: Vec<String> = (0..10).map(|i| format!("{{\"n\":{i}")).collect();
    want.sort();
    assert_eq!(seen, want);
}

pub(crate) async fn list_by_prefix(s: &dyn StateStore) {
    for k in [
        "checkpoints/b.json",
        "checkpoints/a.json",
        "checkpoints-old.json",
        "checkpoints/sub/c.json",
    ] {
        s.put(k, Bytes::from_static(b"{}"), WriteCondition::Any)
            .await
            .expect("put");
    }
    s.append("audit/r1.jsonl", Bytes::from_static(b"{}"))
        .await
        .expect("append");
    assert_eq!(
        s.list("checkpoints/").await.expect("list"),
        vec![
            "checkpoints/a.json",
            "checkpoints/b.json",
            "checkpoints/sub/c.json"
        ]
    );
    assert_eq!(
        s.list("checkpoints").await.expect("list"),
        vec![
            "checkpoints-old.json",
            "checkpoints/a.json",
            "checkpoints/b.json",
            "checkpoints/sub/c.json"
        ]
    );
    assert_eq!(
        s.list("checkpoints/a").await.expect("list"),
        vec!["checkpoints/a.json"]
    );
    assert_eq!(
        s.list("audit/").await.expect("list"),
        vec!["audit/r1.jsonl"]
    );
    assert_eq!(
        s.list("nothing/").await.expect("list"),
        Vec::<String>::new()
    );
    assert_eq!(
        s.list("").await.expect("list all"),
        vec![
            "audit/r1.jsonl",
            "checkpoints-old.json",
            "checkpoints/a.json",
            "checkpoints/b.json",
            "checkpoints/sub/c.json"
        ]
    );
}

pub(crate) async fn delete_reports_existence(s: &dyn StateStore) {
    s.put(CKPT, Bytes::from_static(b"x"), WriteCondition::Any)
        .await
        .expect("put");
    assert!(
        s.delete(CKPT).await.expect("delete"),
        "deleting an existing key returns true"
    );
    assert_eq!(s.get(CKPT).await.expect("get"), None);
    assert!(
        !s.delete(CKPT).await.expect("delete again"),
        "deleting a missing key returns false"
    );
    // After delete, a create-only put succeeds again.
    s.put(CKPT, Bytes::from_static(b"y"), WriteCondition::IfNoneMatch)
        .await
        .expect("recreate");
    assert_eq!(s.list("checkpoints/").await.expect("list"), vec![CKPT]);
}

fn assert_invalid<T: std::fmt::Debug>(r: Result<T, StateError>, key: &str, want: KeyProblem) {
    match r {
        Err(StateError::InvalidKey { key: k, problem }) => {
            assert_eq!(k, key);
            assert_eq!(problem, want, "key {key:?}");
        }
        other => panic!("key {key:?}: expected InvalidKey({want:?}), got {other:?}"),
    }
}

pub(crate) async fn key_validation_errors(s: &dyn StateStore) {
    let bad = [
        ("../etc/passwd", KeyProblem::DotSegment),
        ("checkpoints/../x.json", KeyProblem::DotSegment),
        ("/abs.json", KeyProblem::LeadingSlash),
        ("", KeyProblem::Empty),
        ("a//b", KeyProblem::EmptySegment),
        ("dir/", KeyProblem::TrailingSlash),
        ("a b.json", KeyProblem::InvalidChar(' ')),
        ("a%2Fb", KeyProblem::InvalidChar('%')),
        ("x/.tmp-1", KeyProblem::HiddenSegment),
    ];
    for (key, want) in bad {
        assert_invalid(s.get(key).await, key, want);
        assert_invalid(
            s.put(key, Bytes::from_static(b"x"), WriteCondition::Any)
                .await,
            key,
            want,
        );
        assert_invalid(s.append(key, Bytes::from_static(b"x")).await, key, want);
        assert_invalid(s.read_log(key).await, key, want);
        assert_invalid(s.delete(key).await, key, want);
    }
    assert_invalid(s.list("/x").await, "/x", KeyProblem::LeadingSlash);
    assert_invalid(s.list("../").await, "../", KeyProblem::DotSegment);
    let msg = s
        .get("a/../b")
        .await
        .map(|_| ())
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        msg.contains("\"a/../b\"") && msg.contains("'..'"),
        "message names key and problem: {msg}"
    );
    // Nothing was written by any rejected call.
    assert_eq!(s.list("").await.expect("list"), Vec::<String>::new());
}

/// `put_volatile` (claims, leases) keeps `put`'s compare-and-swap: of racing claimants exactly one
/// creates, and a takeover with the read ETag succeeds once.
pub(crate) async fn volatile_puts_are_compare_and_swap_too(s: &dyn StateStore) {
    const N: usize = 8;
    let key = "claims/users/0c5e7f1a-1111-4222-8333-944455556666.json";
    let results = join_all((0..N).map(|i| async move {
        s.put_volatile(
            key,
            Bytes::from(format!("holder-{i}")),
            WriteCondition::IfNoneMatch,
        )
        .await
    }))
    .await;
    let winners: Vec<usize> = (0..N).filter(|i| results[*i].is_ok()).collect();
    assert_eq!(
        winners.len(),
        1,
        "exactly one claimant creates: {results:?}"
    );
    for r in &results {
        if let Err(e) = r {
            assert!(matches!(e, StateError::Conflict { .. }), "{e:?}");
        }
    }
    let held = s.get(key).await.expect("get").expect("present");
    assert_eq!(held.bytes, Bytes::from(format!("holder-{}", winners[0])));
    let takeovers = join_all((0..N).map(|i| {
        let etag = held.etag.clone();
        async move {
            s.put_volatile(
                key,
                Bytes::from(format!("next-{i}")),
                WriteCondition::IfMatch(etag),
            )
            .await
        }
    }))
    .await;
    assert_eq!(
        takeovers.iter().filter(|r| r.is_ok()).count(),
        1,
        "{takeovers:?}"
    );
}
