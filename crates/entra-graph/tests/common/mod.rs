//! The Graph client's test helpers, on the workspace's shared loopback server and fake credential.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use entra_graph::{GraphClient, GraphClientOptions, RetryPolicy};
pub(crate) use entra_test_support::{FakeCredential, Reply, TestServer};

/// Fast retries for tests.
pub(crate) fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(40),
        deadline: Duration::from_secs(10),
    }
}

pub(crate) fn options(server: &TestServer) -> (GraphClientOptions, Arc<FakeCredential>) {
    let cred = Arc::new(FakeCredential::default());
    let mut o = GraphClientOptions::new(server.base_url(), cred.clone());
    o.retry = fast_retry();
    o.max_writes_per_minute = 600_000;
    o.request_timeout = Duration::from_secs(5);
    (o, cred)
}

pub(crate) fn client(server: &TestServer) -> (GraphClient, Arc<FakeCredential>) {
    let (o, cred) = options(server);
    (GraphClient::new(o).expect("client"), cred)
}

pub(crate) fn patch(mails: &[&str], country: Option<&str>) -> entra_core::UserPatch {
    use entra_core::{AlternateEmail, Change, CountryCode, OtherMails, UserPatch};
    let other_mails = if mails.is_empty() {
        None
    } else {
        Some(
            OtherMails::new(
                mails
                    .iter()
                    .map(|m| AlternateEmail::parse(m).expect("valid mail")),
            )
            .expect("mails"),
        )
    };
    UserPatch {
        other_mails,
        usage_location: country.map(|c| Change::Set(CountryCode::parse(c).expect("country"))),
    }
}
