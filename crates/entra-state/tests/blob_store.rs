//! BlobStore on Azurite (HTTPS, --oauth basic, loopback): the shared behavioural suite plus
//! blob-specific checks. Needs Azurite: run `scripts/bootstrap.sh` once. Never skipped.

mod suite;

use bytes::Bytes;
use entra_state::testing::{unique_container, Azurite};
use entra_state::{BlobStore, BlobStoreOptions, StateError, StateStore, WriteCondition};
use std::time::Instant;

fn start_azurite() -> Azurite {
    match Azurite::start() {
        Ok(a) => a,
        Err(e) => panic!("{e}"),
    }
}

/// One Azurite for the whole suite; each case runs on its own key prefix in a container that
/// does not exist yet (so "create the container on first write" is exercised too).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blob_store_passes_the_suite_on_azurite() {
    let t0 = Instant::now();
    let azurite = start_azurite();
    let started = t0.elapsed();
    let container = unique_container("suite");
    for (name, case) in suite::CASES {
        let store = azurite
            .blob_store(&container, Some(&format!("case-{name}")))
            .expect("blob store");
        let t = Instant::now();
        eprintln!("blob suite: {name} ...");
        case(&store).await;
        eprintln!("blob suite: {name} ok ({:?})", t.elapsed());
    }
    eprintln!(
        "blob suite: Azurite start {started:?}, total {:?}",
        t0.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blob_store_specifics_on_azurite() {
    let azurite = start_azurite();
    let container = unique_container("specific");

    // Reads on a container that does not exist yet: nothing there, no error.
    let store = azurite.blob_store(&container, None).expect("store");
    assert_eq!(store.get("checkpoints/x.json").await.expect("get"), None);
    assert_eq!(store.list("").await.expect("list"), Vec::<String>::new());
    assert!(!store.delete("checkpoints/x.json").await.expect("delete"));

    // The first append creates the container and the append blob.
    store
        .append("audit/r.jsonl", Bytes::from_static(b"{\"n\":1}"))
        .await
        .expect("append");
    assert_eq!(
        store.read_log("audit/r.jsonl").await.expect("read_log"),
        Some(Bytes::from_static(b"{\"n\":1}\n"))
    );

    // Prefixes isolate stores sharing a container, and '/' in names round-trips (the SDK
    // percent-encodes it in the URL path; the service decodes it).
    let a = azurite.blob_store(&container, Some("tenant-a")).expect("a");
    let b = azurite
        .blob_store(&container, Some("tenant-b/"))
        .expect("b");
    a.put(
        "checkpoints/c.json",
        Bytes::from_static(b"A"),
        WriteCondition::IfNoneMatch,
    )
    .await
    .expect("a put");
    b.put(
        "checkpoints/c.json",
        Bytes::from_static(b"B"),
        WriteCondition::IfNoneMatch,
    )
    .await
    .expect("b put");
    assert_eq!(
        a.get("checkpoints/c.json")
            .await
            .expect("get")
            .expect("a")
            .bytes,
        Bytes::from_static(b"A")
    );
    assert_eq!(b.list("").await.expect("list"), vec!["checkpoints/c.json"]);
    let unprefixed = store.list("").await.expect("list");
    assert_eq!(
        unprefixed,
        vec![
            "audit/r.jsonl",
            "tenant-a/checkpoints/c.json",
            "tenant-b/checkpoints/c.json"
        ]
    );

    // ETags are the service's; a document key cannot be appended to (it is a block blob).
    let doc = a
        .get("checkpoints/c.json")
        .await
        .expect("get")
        .expect("doc");
    assert!(
        doc.etag.as_str().contains("0x"),
        "Azure-style etag, got {}",
        doc.etag
    );
    match a
        .append("checkpoints/c.json", Bytes::from_static(b"x"))
        .await
    {
        Err(StateError::Blob { op, .. }) => assert_eq!(op, "append"),
        other => panic!("append to a block blob must fail, got {other:?}"),
    }
}

#[tokio::test]
async fn blob_store_rejects_non_https_and_bad_prefix() {
    let cred: std::sync::Arc<dyn azure_core::credentials::TokenCredential> =
        std::sync::Arc::new(entra_state::testing::FakeStorageCredential::default());
    let http = url::Url::parse("http://127.0.0.1:10000/devstoreaccount1/c").expect("url");
    assert!(matches!(
        BlobStore::new(http, cred.clone(), BlobStoreOptions::default()),
        Err(StateError::Config(_))
    ));
    let https = url::Url::parse("https://acct.blob.core.windows.net/c").expect("url");
    let opts = BlobStoreOptions {
        prefix: Some("../x".into()),
        ..Default::default()
    };
    assert!(matches!(
        BlobStore::new(https, cred, opts),
        Err(StateError::InvalidKey { .. })
    ));
}

#[tokio::test]
async fn azurite_enforces_oauth_and_tls_trust() {
    let azurite = start_azurite();
    let container = unique_container("auth");
    let bad_token = BlobStore::new(
        azurite.container_url(&container),
        // A token Azurite must refuse: proves requests really go through `--oauth basic`.
        std::sync::Arc::new(entra_test_support::FakeCredential::fixed("not-a-jwt")),
        azurite.store_options(None).expect("options"),
    )
    .expect("store");
    match bad_token
        .put("k.json", Bytes::from_static(b"x"), WriteCondition::Any)
        .await
    {
        Err(StateError::Blob { source, .. }) => {
            let status = source.http_status().map(u16::from);
            assert!(
                matches!(status, Some(401) | Some(403)),
                "expected 401/403, got {source:?}"
            );
        }
        other => panic!("a garbage token must be refused, got {other:?}"),
    }
    // A client that does not trust the test CA must fail the TLS handshake.
    let untrusting = BlobStore::new(
        azurite.container_url(&container),
        azurite.credential(),
        BlobStoreOptions {
            transport: Some(
                reqwest::Client::builder()
                    .no_proxy()
                    .build()
                    .expect("client"),
            ),
            retry: Some(azure_core::http::RetryOptions::none()),
            prefix: None,
        },
    )
    .expect("store");
    assert!(matches!(
        untrusting.get("k.json").await,
        Err(StateError::Blob { .. })
    ));
}
