//! A missing Azurite must FAIL tests with an install hint, never skip them.
//! Own test binary (own process), so setting AZURITE_BIN cannot affect other tests.

use entra_state::testing::{Azurite, TestingError};

#[test]
fn missing_azurite_is_an_error_that_says_how_to_install_it() {
    std::env::set_var(
        entra_state::testing::ENV_AZURITE_BIN,
        "/nonexistent/azurite-blob",
    );
    match Azurite::start() {
        Err(e @ TestingError::NotInstalled { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains("scripts/bootstrap.sh"), "{msg}");
            assert!(msg.contains("/nonexistent/azurite-blob"), "{msg}");
        }
        other => panic!("expected NotInstalled, got {other:?}"),
    }
}
