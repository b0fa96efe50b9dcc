//! Azurite-on-loopback harness for tests (feature `testing`).
//!
//! The official `azure_storage_blob` crate only authenticates with a token credential, and a
//! token credential requires `https`. Azurite accepts that with `--oauth basic` over HTTPS: it
//! checks the JWT's `iss`, `aud`, `nbf`, `iat` and `exp`, but not its signature. So this module
//! (a) generates a throw-away CA and a leaf certificate for `127.0.0.1`/`localhost` (rustls
//! refuses a self-signed CA certificate used directly as the server certificate,
//! `CaUsedAsEndEntity`), (b) starts `azurite-blob` bound to 127.0.0.1 on a free port with that
//! certificate, (c) mints unsigned but well-formed storage JWTs ([`FakeStorageCredential`]), and
//! (d) builds a `reqwest::Client` that trusts only the test CA.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use entra_state::{testing::Azurite, StateStore, WriteCondition};
//! let azurite = Azurite::start()?; // FAILS (never skips) if Azurite is not installed
//! let store = azurite.blob_store("checkpoints-test", None)?;
//! store.put("checkpoints/x.json", "{}".into(), WriteCondition::IfNoneMatch).await?;
//! # Ok(()) }
//! ```
//!
//! Azurite is found at `$AZURITE_BIN` (the `azurite-blob` executable), else at
//! `<workspace>/.tools/node_modules/.bin/azurite-blob`, which `scripts/bootstrap.sh` installs.
//! The process is stopped when the [`Azurite`] value is dropped, and also if the test process
//! dies (a small `sh` guard kills it when its stdin pipe closes).

use crate::{BlobStore, BlobStoreOptions};
use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};
use azure_core::http::RetryOptions;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};
use time::OffsetDateTime;
use url::Url;

/// Environment variable overriding the `azurite-blob` executable.
pub const ENV_AZURITE_BIN: &str = "AZURITE_BIN";
/// The emulator's well-known account name.
pub const AZURITE_ACCOUNT: &str = "devstoreaccount1";
/// How long [`Azurite::start`] waits for the emulator to listen.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Errors of the test harness.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TestingError {
    #[error(
        "Azurite is not installed: {} does not exist. Run `scripts/bootstrap.sh` from the repo root \
         (it installs azurite@3.37.0 into .tools/ with npm), or set {ENV_AZURITE_BIN} to an azurite-blob executable",
        path.display()
    )]
    NotInstalled { path: PathBuf },

    #[error("Azurite ({}) did not start: {reason}\n--- Azurite output ---\n{output}", bin.display())]
    StartFailed {
        bin: PathBuf,
        reason: String,
        output: String,
    },

    #[error("test TLS certificate generation failed: {0}")]
    Cert(String),

    #[error("test harness I/O error: {0}")]
    Io(#[from] std::io::Error),

    #[error("test HTTP client: {0}")]
    Client(String),

    #[error(transparent)]
    State(#[from] crate::StateError),
}

/// A throw-away CA and a leaf certificate for `127.0.0.1` and `localhost`, PEM-encoded.
#[derive(Clone, Debug)]
pub struct TestTls {
    pub ca_cert_pem: String,
    pub leaf_cert_pem: String,
    pub leaf_key_pem: String,
}

impl TestTls {
    /// Generates a fresh CA + leaf pair (ECDSA P-256, valid from yesterday for a week).
    pub fn generate() -> Result<Self, TestingError> {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
            KeyPair, KeyUsagePurpose,
        };
        let err = |e: rcgen::Error| TestingError::Cert(e.to_string());
        let now = OffsetDateTime::now_utc();
        let day = time::Duration::days(1);

        let ca_key = KeyPair::generate().map_err(err)?;
        let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
        ca.distinguished_name
            .push(DnType::CommonName, "entra-state test CA");
        ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        ca.not_before = now - day;
        ca.not_after = now + day * 7;
        let ca_cert = ca.self_signed(&ca_key).map_err(err)?;

        let leaf_key = KeyPair::generate().map_err(err)?;
        let mut leaf = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .map_err(err)?;
        leaf.distinguished_name
            .push(DnType::CommonName, "azurite-test");
        leaf.is_ca = IsCa::ExplicitNoCa;
        leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        leaf.not_before = now - day;
        leaf.not_after = now + day * 7;
        let issuer = Issuer::new(ca, &ca_key);
        let leaf_cert = leaf.signed_by(&leaf_key, &issuer).map_err(err)?;

        Ok(Self {
            ca_cert_pem: ca_cert.pem(),
            leaf_cert_pem: leaf_cert.pem(),
            leaf_key_pem: leaf_key.serialize_pem(),
        })
    }

    /// A client that trusts only this CA, ignores proxy variables (loopback only) and does
    /// not decompress bodies (like the SDK's own default client).
    pub fn http_client(&self) -> Result<reqwest::Client, TestingError> {
        let ca = reqwest::Certificate::from_pem(self.ca_cert_pem.as_bytes())
            .map_err(|e| TestingError::Client(e.to_string()))?;
        reqwest::Client::builder()
            .tls_certs_only([ca])
            .no_proxy()
            .no_gzip()
            .no_deflate()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| TestingError::Client(e.to_string()))
    }
}

/// Mints unsigned but well-formed Entra ID access tokens for Azure Storage, as accepted by
/// Azurite's `--oauth basic` (it does not verify signatures). Never use outside tests.
#[derive(Clone, Debug)]
pub struct FakeStorageCredential {
    tenant_id: String,
}

impl Default for FakeStorageCredential {
    fn default() -> Self {
        Self {
            tenant_id: "00000000-0000-4000-8000-000000000001".to_owned(),
        }
    }
}

impl FakeStorageCredential {
    /// A credential whose tokens carry this tenant id in `iss` and `tid`.
    pub fn new(tenant_id: impl Into<String>) -> Self {
        Self {
            tenant_id: tenant_id.into(),
        }
    }

    /// The JWT for `now`: `iss https://sts.windows.net/<tid>/`, `aud https://storage.azure.com`,
    /// `iat`/`nbf` one minute back (clock skew), `exp` an hour ahead; signature is a dummy.
    pub fn token_at(&self, now: OffsetDateTime) -> (String, OffsetDateTime) {
        let iat = now.unix_timestamp() - 60;
        let exp = now + time::Duration::hours(1);
        let header = serde_json::json!({ "alg": "RS256", "typ": "JWT", "kid": "entra-state-test" });
        let claims = serde_json::json!({
            "aud": "https://storage.azure.com",
            "iss": format!("https://sts.windows.net/{}/", self.tenant_id),
            "iat": iat,
            "nbf": iat,
            "exp": exp.unix_timestamp(),
            "tid": self.tenant_id,
            "oid": "00000000-0000-4000-8000-0000000000aa",
            "sub": "00000000-0000-4000-8000-0000000000aa",
            "appid": "00000000-0000-4000-8000-0000000000bb",
            "ver": "1.0",
        });
        let token = format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string()),
            URL_SAFE_NO_PAD.encode(b"unsigned-test-token"),
        );
        (token, exp)
    }
}

#[async_trait::async_trait]
impl TokenCredential for FakeStorageCredential {
    async fn get_token(
        &self,
        _scopes: &[&str],
        _options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        let (token, exp) = self.token_at(OffsetDateTime::now_utc());
        Ok(AccessToken::new(token, exp))
    }
}

/// A running `azurite-blob` on `https://127.0.0.1:<port>` with `--oauth basic`, in-memory.
/// Stopped on drop.
pub struct Azurite {
    process: GuardedProcess,
    port: u16,
    account_url: Url,
    tls: TestTls,
    _dir: tempfile::TempDir,
}

/// The `sh` guard and the Azurite it started; stops both on drop.
struct GuardedProcess {
    guard: Child,
    guard_stdin: Option<ChildStdin>,
    azurite_pid: Option<u32>,
    output: Arc<Mutex<String>>,
}

impl GuardedProcess {
    fn output(&self) -> String {
        self.output.lock().map(|o| o.clone()).unwrap_or_default()
    }
}

impl std::fmt::Debug for Azurite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Azurite").field("port", &self.port).finish()
    }
}

/// Where the harness looks for `azurite-blob`.
pub fn azurite_bin() -> PathBuf {
    if let Some(p) = std::env::var_os(ENV_AZURITE_BIN).filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let rel = Path::new(".tools")
        .join("node_modules")
        .join(".bin")
        .join("azurite-blob");
    // <workspace>/crates/entra-state -> <workspace>
    let from_manifest = Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .map(|ws| ws.join(&rel));
    if let Some(p) = from_manifest.as_ref().filter(|p| p.exists()) {
        return p.clone();
    }
    if let Ok(cwd) = std::env::current_dir() {
        if let Some(p) = cwd.ancestors().map(|d| d.join(&rel)).find(|p| p.exists()) {
            return p;
        }
    }
    from_manifest.unwrap_or(rel)
}

fn spawn_reader(
    stream: impl Read + Send + 'static,
    output: Arc<Mutex<String>>,
    tx: mpsc::Sender<Event>,
) {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if let Some(pid) = line.strip_prefix("azurite-guard-pid ") {
                let _ = tx.send(Event::Pid(pid.trim().parse().ok()));
                continue;
            }
            if let Some(port) = parse_listen_port(&line) {
                let _ = tx.send(Event::Port(port));
            }
            if let Ok(mut o) = output.lock() {
                o.push_str(&line);
                o.push('\n');
            }
        }
        let _ = tx.send(Event::Closed);
    });
}

enum Event {
    Pid(Option<u32>),
    Port(u16),
    Closed,
}

/// Parses Azurite's "Azurite Blob service successfully listens on https://127.0.0.1:PORT".
fn parse_listen_port(line: &str) -> Option<u16> {
    let (_, rest) = line.split_once("successfully listens on ")?;
    let url = Url::parse(rest.trim()).ok()?;
    url.port()
}

impl Azurite {
    /// Starts Azurite (blob only) on 127.0.0.1, an OS-chosen port, HTTPS with a fresh test CA,
    /// `--oauth basic`, in-memory, telemetry off. Blocks until it listens (at most
    /// [`START_TIMEOUT`]). Fails with [`TestingError::NotInstalled`] — whose message says to run
    /// `scripts/bootstrap.sh` — if the executable is missing.
    pub fn start() -> Result<Self, TestingError> {
        Self::start_from(&azurite_bin())
    }

    /// Starts the `azurite-blob` executable at `bin` ([`Azurite::start`] finds it with [`azurite_bin`]).
    pub fn start_from(bin: &Path) -> Result<Self, TestingError> {
        let bin = bin.to_path_buf();
        if !bin.exists() {
            return Err(TestingError::NotInstalled { path: bin });
        }
        let tls = TestTls::generate()?;
        let dir = tempfile::Builder::new().prefix("azurite-").tempdir()?;
        let cert = dir.path().join("leaf.pem");
        let key = dir.path().join("leaf-key.pem");
        std::fs::write(&cert, &tls.leaf_cert_pem)?;
        std::fs::write(&key, &tls.leaf_key_pem)?;

        // The guard shell runs Azurite in the background and kills it as soon as its stdin
        // (a pipe from this process) closes: on drop, or when the test process dies.
        let script = r#""$@" & pid=$!
echo "azurite-guard-pid $pid"
read _unused
kill "$pid" 2>/dev/null
wait "$pid""#;
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg("azurite-guard")
            .arg(&bin)
            .args(["--blobHost", "127.0.0.1", "--blobPort", "0"])
            .args(["--inMemoryPersistence", "--extentMemoryLimit", "256"])
            .args(["--disableTelemetry", "--silent", "--oauth", "basic"])
            .arg("--cert")
            .arg(&cert)
            .arg("--key")
            .arg(&key)
            .current_dir(dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| TestingError::StartFailed {
                bin: bin.clone(),
                reason: format!("cannot run sh: {e}"),
                output: String::new(),
            })?;
        let output = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        if let Some(out) = child.stdout.take() {
            spawn_reader(out, output.clone(), tx.clone());
        }
        if let Some(err) = child.stderr.take() {
            spawn_reader(err, output.clone(), tx);
        }
        let mut process = GuardedProcess {
            guard_stdin: child.stdin.take(),
            guard: child,
            azurite_pid: None,
            output,
        };
        let failed = |process: &GuardedProcess, reason: &str| TestingError::StartFailed {
            bin: bin.clone(),
            reason: reason.to_owned(),
            output: process.output(),
        };

        let deadline = Instant::now() + START_TIMEOUT;
        let mut closed = 0;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(Event::Pid(pid)) => process.azurite_pid = pid,
                Ok(Event::Port(port)) => {
                    let raw = format!("https://127.0.0.1:{port}/{AZURITE_ACCOUNT}");
                    let account_url = Url::parse(&raw)
                        .map_err(|e| failed(&process, &format!("bad URL {raw}: {e}")))?;
                    return Ok(Self {
                        process,
                        port,
                        account_url,
                        tls,
                        _dir: dir,
                    });
                }
                Ok(Event::Closed) => {
                    closed += 1;
                    if closed == 2 {
                        return Err(failed(&process, "Azurite exited before listening"));
                    }
                }
                Err(_) => {
                    return Err(failed(
                        &process,
                        &format!("no 'successfully listens on' line within {START_TIMEOUT:?}"),
                    ))
                }
            }
        }
    }

    /// The port Azurite listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `https://127.0.0.1:<port>/devstoreaccount1`.
    pub fn account_url(&self) -> Url {
        self.account_url.clone()
    }

    /// `https://127.0.0.1:<port>/devstoreaccount1/<container>`.
    pub fn container_url(&self, container: &str) -> Url {
        let mut url = self.account_url();
        if let Ok(mut segs) = url.path_segments_mut() {
            segs.push(container);
        }
        url
    }

    /// The test TLS material (e.g. to build another client).
    pub fn tls(&self) -> &TestTls {
        &self.tls
    }

    /// A `reqwest::Client` trusting the test CA; pass it as the SDK transport.
    pub fn http_client(&self) -> Result<reqwest::Client, TestingError> {
        self.tls.http_client()
    }

    /// A [`FakeStorageCredential`] as a `TokenCredential`.
    pub fn credential(&self) -> Arc<dyn TokenCredential> {
        Arc::new(FakeStorageCredential::default())
    }

    /// Store options for this emulator: test-CA transport, retries off, and `prefix`.
    pub fn store_options(&self, prefix: Option<&str>) -> Result<BlobStoreOptions, TestingError> {
        Ok(BlobStoreOptions {
            transport: Some(self.http_client()?),
            prefix: prefix.map(str::to_owned),
            retry: Some(RetryOptions::none()),
        })
    }

    /// A [`BlobStore`] on `container` (created on first write), keys under `prefix`.
    pub fn blob_store(
        &self,
        container: &str,
        prefix: Option<&str>,
    ) -> Result<BlobStore, TestingError> {
        Ok(BlobStore::new(
            self.container_url(container),
            self.credential(),
            self.store_options(prefix)?,
        )?)
    }

    /// Everything Azurite printed so far (for diagnostics).
    pub fn output(&self) -> String {
        self.process.output()
    }
}

impl Drop for GuardedProcess {
    fn drop(&mut self) {
        // Closing the guard's stdin makes it kill Azurite and exit.
        drop(self.guard_stdin.take());
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            match self.guard.try_wait() {
                Ok(Some(_)) => return,
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                Err(_) => break,
            }
        }
        if let Some(pid) = self.azurite_pid {
            let _ = Command::new("kill")
                .args(["-9", &pid.to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        let _ = self.guard.kill();
        let _ = self.guard.wait();
    }
}

/// A container name unique to this call (lowercase, valid for Azure): `<stem>-<random>`.
pub fn unique_container(stem: &str) -> String {
    let stem: String = stem
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .take(30)
        .collect();
    format!(
        "{}-{}",
        if stem.is_empty() { "t" } else { &stem },
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_listen_line() {
        assert_eq!(
            parse_listen_port(
                "Azurite Blob service successfully listens on https://127.0.0.1:41729"
            ),
            Some(41729)
        );
        assert_eq!(
            parse_listen_port("Azurite Blob service is starting on 127.0.0.1:0"),
            None
        );
    }

    #[test]
    fn fake_token_has_the_claims_azurite_checks() {
        let now = OffsetDateTime::now_utc();
        let (token, exp) = FakeStorageCredential::new("tid-1").token_at(now);
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3);
        let claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap_or_default())
                .unwrap_or_default();
        assert_eq!(claims["aud"], "https://storage.azure.com");
        assert_eq!(claims["iss"], "https://sts.windows.net/tid-1/");
        assert!(claims["iat"]
            .as_i64()
            .is_some_and(|t| t <= now.unix_timestamp()));
        assert!(claims["nbf"]
            .as_i64()
            .is_some_and(|t| t <= now.unix_timestamp()));
        assert_eq!(claims["exp"].as_i64(), Some(exp.unix_timestamp()));
        assert!(exp > now);
    }

    #[test]
    fn unique_container_names_are_valid() {
        let a = unique_container("Suite_Case");
        assert!(a.starts_with("suitecase-"));
        assert!(a.len() <= 63);
        assert_ne!(a, unique_container("Suite_Case"));
    }
}
