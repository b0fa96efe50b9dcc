//! Key Vault, as the Azure SDK meets it, for the start-up tests of every door: the workspace's
//! `FakeKeyVault` transport, with every other Azure SDK call (the Entra token endpoint) sent to the
//! sandbox by its own transport.

use std::sync::Arc;

use entra_sandbox::Sandbox;
use entra_test_support::{FakeCredential, FakeKeyVault};

/// The settings of an app whose Graph credential is a client secret kept in Key Vault.
pub(crate) fn client_secret_in_key_vault(sandbox: &Sandbox) -> Vec<(&'static str, String)> {
    vec![
        ("ENRICH_CREDENTIAL", "client-secret".to_string()),
        ("AZURE_TENANT_ID", sandbox.tenant_id()),
        (
            "AZURE_CLIENT_ID",
            entra_sandbox::identity::DEFAULT_CLIENT_ID.to_string(),
        ),
        (
            "ENRICH_KEYVAULT_URL",
            "https://entra-enrich-test.vault.azure.net/".to_string(),
        ),
        (
            "ENRICH_CLIENT_SECRET_NAME",
            "graph-client-secret".to_string(),
        ),
    ]
}

/// The vault (holding the sandbox app's client secret) and the sandbox's authority, behind one
/// transport.
#[derive(Debug)]
pub(crate) struct VaultAndAuthority {
    vault: Arc<FakeKeyVault>,
}

impl VaultAndAuthority {
    /// The vault, down until [`VaultAndAuthority::restore`]; tokens come from `sandbox`.
    pub(crate) fn down(sandbox: &Sandbox) -> Self {
        let vault = FakeKeyVault::with_secret(entra_sandbox::identity::DEFAULT_CLIENT_SECRET)
            .with_others(Arc::new(sandbox.sdk_client()));
        vault.set_down(true);
        VaultAndAuthority {
            vault: Arc::new(vault),
        }
    }

    /// App options whose Azure SDK calls reach this vault (the ambient identity that reads it is a
    /// fake: the vault only checks that a token is sent), a failed start retried after `floor`.
    pub(crate) fn app_options(&self, floor: std::time::Duration) -> entra_enrich::app::AppOptions {
        entra_enrich::app::AppOptions {
            transport: Some(self.vault.transport()),
            ambient_credential: Some(Arc::new(FakeCredential::with_prefix("ambient-token"))),
            start_retry_floor: floor,
            key_vault_timeout: std::time::Duration::from_secs(2),
            ..Default::default()
        }
    }

    /// Key Vault requests received so far.
    pub(crate) fn requests(&self) -> usize {
        self.vault.requests().len()
    }

    /// Brings the vault back.
    pub(crate) fn restore(&self) {
        self.vault.set_down(false);
    }
}
