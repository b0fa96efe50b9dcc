//! The Azure SDK's way into the sandbox, with no environment variable set: an `azure_core` HTTP client
//! (as `ClientOptions::transport` allows, <https://docs.rs/azure_core/latest/azure_core/http/struct.ClientOptions.html>)
//! that re-addresses the Microsoft hosts the SDK calls by itself to the sandbox on loopback, and sends
//! everything else on unchanged.
//!
//! - `169.254.169.254`: the Instance Metadata Service. `ManagedIdentityCredential` calls it when no
//!   `IDENTITY_ENDPOINT` is set
//!   (<https://learn.microsoft.com/entra/identity/managed-identities-azure-resources/how-to-use-vm-token#get-a-token-using-http>);
//!   the sandbox serves the same path ([`crate::identity::IMDS_TOKEN_PATH`]).
//! - `login.microsoftonline.com`: the Entra token endpoint, for the client-secret and certificate
//!   credentials.
//!
//! Tests and the demo hand this to the credential instead of setting `IDENTITY_ENDPOINT` in the process,
//! so tests that run in parallel never share an environment.

use std::fmt;
use std::sync::Arc;

use azure_core::http::{AsyncRawResponse, HttpClient, Request, Transport};
use url::Url;

/// The Instance Metadata Service address.
pub const IMDS_HOST: &str = "169.254.169.254";
/// The Entra ID (public cloud) authority host.
pub const LOGIN_HOST: &str = "login.microsoftonline.com";

/// Sends each request whose host is routed to the sandbox there (scheme, host and port replaced, path
/// and query kept), and every other request on unchanged.
pub struct SandboxTransport {
    routes: Vec<(String, Url)>,
    inner: Arc<dyn HttpClient>,
}

impl fmt::Debug for SandboxTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SandboxTransport")
            .field("routes", &self.routes)
            .finish_non_exhaustive()
    }
}

impl SandboxTransport {
    /// IMDS and the Entra authority, both to the sandbox at `base` (`http://127.0.0.1:PORT`).
    pub fn new(base: &Url) -> Self {
        SandboxTransport {
            routes: Vec::new(),
            inner: azure_core::http::new_http_client(None),
        }
        .route(IMDS_HOST, base)
        .route(LOGIN_HOST, base)
    }

    /// Also sends requests for `host` to `base`.
    pub fn route(mut self, host: &str, base: &Url) -> Self {
        self.routes.push((host.to_ascii_lowercase(), base.clone()));
        self
    }

    /// This client as an `azure_core` transport, for `ClientOptions::transport`.
    pub fn into_transport(self) -> Transport {
        Transport::new(Arc::new(self))
    }

    /// The address `url` is sent to.
    pub fn readdress(&self, url: &Url) -> Url {
        let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
        let Some((_, base)) = self.routes.iter().find(|(h, _)| *h == host) else {
            return url.clone();
        };
        let mut target = base.clone();
        target.set_path(url.path());
        target.set_query(url.query());
        target
    }
}

#[async_trait::async_trait]
impl HttpClient for SandboxTransport {
    async fn execute_request(&self, request: &Request) -> azure_core::Result<AsyncRawResponse> {
        let mut request = request.clone();
        let target = self.readdress(request.url());
        *request.url_mut() = target;
        self.inner.execute_request(&request).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_routed_hosts_are_readdressed_and_path_and_query_are_kept() {
        let base = Url::parse("http://127.0.0.1:4321").expect("url");
        let t = SandboxTransport::new(&base);
        let imds = Url::parse(
            "http://169.254.169.254/metadata/identity/oauth2/token?api-version=2019-08-01&resource=x",
        )
        .expect("url");
        assert_eq!(
            t.readdress(&imds).as_str(),
            "http://127.0.0.1:4321/metadata/identity/oauth2/token?api-version=2019-08-01&resource=x"
        );
        let login =
            Url::parse("https://LOGIN.microsoftonline.com/t/oauth2/v2.0/token").expect("url");
        assert_eq!(
            t.readdress(&login).as_str(),
            "http://127.0.0.1:4321/t/oauth2/v2.0/token"
        );
        let vault = Url::parse("https://v.vault.azure.net/secrets/s?api-version=7.5").expect("url");
        assert_eq!(t.readdress(&vault), vault);
    }
}
