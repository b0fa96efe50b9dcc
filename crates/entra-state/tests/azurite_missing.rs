//! A missing Azurite must FAIL tests with an install hint, never skip them.

use std::path::Path;

use entra_state::testing::{Azurite, TestingError};

#[test]
fn missing_azurite_is_an_error_that_says_how_to_install_it() {
    match Azurite::start_from(Path::new("/nonexistent/azurite-blob")) {
        Err(e @ TestingError::NotInstalled { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains("scripts/bootstrap.sh"), "{msg}");
            assert!(msg.contains("/nonexistent/azurite-blob"), "{msg}");
            assert!(msg.contains(entra_state::testing::ENV_AZURITE_BIN), "{msg}");
        }
        other => panic!("expected NotInstalled, got {other:?}"),
    }
}
