//! [`BlobStore`]: the Azure Blob Storage store used by the Functions custom handler.
//!
//! Storage behaviour relied on (Blob REST API):
//! * Documents are **block blobs** written with one Put Blob. A conditional Put Blob with
//!   `If-Match: <etag>` fails with `412 ConditionNotMet` if the blob changed, and with
//!   `If-None-Match: *` fails with `409 BlobAlreadyExists` if it exists; the service evaluates
//!   the condition and the write atomically, so of racing writers exactly one wins.
//!   <https://learn.microsoft.com/rest/api/storageservices/specifying-conditional-headers-for-blob-service-operations>,
//!   <https://learn.microsoft.com/rest/api/storageservices/put-blob>,
//!   <https://learn.microsoft.com/azure/storage/blobs/concurrency-manage#optimistic-concurrency>.
//! * Every write changes the blob's ETag, returned on Put Blob and Get Blob.
//!   <https://learn.microsoft.com/rest/api/storageservices/get-blob>.
//! * Logs are **append blobs**: Append Block commits each block atomically at the end of the
//!   blob before answering `201`; an append blob holds at most 50,000 blocks (one block per
//!   line here, so one log per run, e.g. `audit/<run-id>.jsonl`, stays far below it).
//!   <https://learn.microsoft.com/rest/api/storageservices/append-block>,
//!   <https://learn.microsoft.com/rest/api/storageservices/understanding-block-blobs--append-blobs--and-page-blobs#about-append-blobs>.
//! * `/` in a blob name is an ordinary character and List Blobs filters by name `prefix`.
//!   <https://learn.microsoft.com/rest/api/storageservices/list-blobs>,
//!   <https://learn.microsoft.com/rest/api/storageservices/naming-and-referencing-containers--blobs--and-metadata>.
//! * The container is created on first write if missing (Create Container answers
//!   `409 ContainerAlreadyExists` when it exists, which is fine). The identity needs the
//!   *Storage Blob Data Contributor* role on the account or container, which includes
//!   `containers/write`.
//!   <https://learn.microsoft.com/rest/api/storageservices/create-container>,
//!   <https://learn.microsoft.com/azure/role-based-access-control/built-in-roles/storage#storage-blob-data-contributor>.
//!
//! Production configuration: this crate reads no settings. The app reads them once, with the rest of
//! its configuration (`ENRICH_STATE_BLOB_URL`, or the identity-based Functions host setting
//! `AzureWebJobsStorage__blobServiceUri` plus [`DEFAULT_CONTAINER`]), and passes the container URL
//! and its credential to [`BlobStore::new`]. The credential is a `ManagedIdentityCredential`.

use crate::{
    normalize_line, validate_key, validate_prefix, ETag, StateError, StateStore, Versioned,
    WriteCondition,
};
use async_trait::async_trait;
use azure_core::credentials::TokenCredential;
use azure_core::error::ErrorKind;
use azure_core::http::{
    ClientOptions, NoFormat, RequestContent, RetryOptions, StatusCode, Transport,
};
use azure_storage_blob::models::{
    AppendBlobClientCreateOptions, BlobContainerClientListBlobsOptions,
    BlockBlobClientUploadOptions, StorageErrorCode,
};
use azure_storage_blob::{BlobClient, BlobContainerClient, BlobContainerClientOptions};
use bytes::Bytes;
use futures::TryStreamExt;
use std::sync::Arc;
use url::Url;

/// The state container's name when only the blob service is known (the Functions host's
/// `AzureWebJobsStorage__blobServiceUri`).
pub const DEFAULT_CONTAINER: &str = "entra-enrich-state";

/// Options of [`BlobStore::new`].
#[derive(Clone, Debug, Default)]
pub struct BlobStoreOptions {
    /// HTTP client to use instead of the SDK default (tests: one trusting a test CA). Build it
    /// without automatic gzip/deflate decompression, as the SDK's own default does.
    pub transport: Option<reqwest::Client>,
    /// Blob-name prefix for every key (e.g. `prod/`); a `/` is appended if missing.
    pub prefix: Option<String>,
    /// Retry policy; `None` keeps the SDK default (exponential). Tests should pass
    /// `RetryOptions::none()` so a TLS or auth error fails fast instead of retrying.
    pub retry: Option<RetryOptions>,
}

/// A [`StateStore`] in one Azure Blob Storage container.
pub struct BlobStore {
    container: BlobContainerClient,
    prefix: String,
}

impl std::fmt::Debug for BlobStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobStore")
            .field("container_url", &self.container.url().as_str())
            .field("prefix", &self.prefix)
            .finish()
    }
}

fn blob_err(key: &str, op: &'static str, source: azure_core::Error) -> StateError {
    StateError::Blob {
        key: key.to_owned(),
        op,
        source: Box::new(source),
    }
}

fn error_code(e: &azure_core::Error) -> Option<&str> {
    match e.kind() {
        ErrorKind::HttpResponse {
            error_code: Some(code),
            ..
        } => Some(code.as_str()),
        _ => None,
    }
}

fn is_code(e: &azure_core::Error, code: StorageErrorCode) -> bool {
    error_code(e) == Some(code.as_ref())
}

fn content(bytes: &Bytes) -> RequestContent<Bytes, NoFormat> {
    // `RequestContent::from` resolves to an inherent `from(Vec<u8>)`; use the trait impl.
    <RequestContent<Bytes, NoFormat> as From<Bytes>>::from(bytes.clone())
}

fn is_not_found(e: &azure_core::Error) -> bool {
    e.http_status() == Some(StatusCode::NotFound)
}

impl BlobStore {
    /// A store in the container at `container_url`, authenticating with `credential`
    /// (scope `https://storage.azure.com/.default`). The URL must be `https`.
    /// No request is made here; the container is created on first write if missing.
    pub fn new(
        container_url: Url,
        credential: Arc<dyn TokenCredential>,
        options: BlobStoreOptions,
    ) -> Result<Self, StateError> {
        let prefix = match options.prefix {
            None => String::new(),
            Some(p) if p.is_empty() => String::new(),
            Some(mut p) => {
                if !p.ends_with('/') {
                    p.push('/');
                }
                validate_prefix(&p)?;
                p
            }
        };
        if container_url.scheme() != "https" {
            return Err(StateError::Config(format!(
                "the state container URL must use https (token auth), got {container_url}"
            )));
        }
        let mut client_options = ClientOptions::default();
        if let Some(client) = options.transport {
            client_options.transport = Some(Transport::new(Arc::new(client)));
        }
        if let Some(retry) = options.retry {
            client_options.retry = retry;
        }
        let container = BlobContainerClient::new(
            container_url.clone(),
            Some(credential),
            Some(BlobContainerClientOptions {
                client_options,
                ..Default::default()
            }),
        )
        .map_err(|e| {
            StateError::Config(format!("invalid state container URL {container_url}: {e}"))
        })?;
        Ok(Self { container, prefix })
    }

    /// The container URL.
    pub fn container_url(&self) -> &Url {
        self.container.url()
    }

    /// Creates the container if it does not exist (also done lazily on first write).
    pub async fn ensure_container(&self) -> Result<(), StateError> {
        match self.container.create(None).await {
            Ok(_) => Ok(()),
            Err(e) if is_code(&e, StorageErrorCode::ContainerAlreadyExists) => Ok(()),
            Err(e) => Err(blob_err("", "create container", e)),
        }
    }

    fn blob(&self, key: &str) -> BlobClient {
        self.container.blob_client(&format!("{}{key}", self.prefix))
    }

    async fn upload(
        &self,
        key: &str,
        bytes: &Bytes,
        cond: &WriteCondition,
    ) -> Result<ETag, azure_core::Error> {
        let mut opts = BlockBlobClientUploadOptions::default();
        match cond {
            WriteCondition::Any => {}
            WriteCondition::IfMatch(tag) => opts.if_match = Some(tag.as_str().into()),
            WriteCondition::IfNoneMatch => opts = opts.if_not_exists(),
        }
        let result = self.blob(key).upload(content(bytes), Some(opts)).await?;
        result.etag.map(|t| ETag(t.to_string())).ok_or_else(|| {
            azure_core::Error::with_message(ErrorKind::DataConversion, "Put Blob returned no ETag")
        })
    }

    async fn download(&self, key: &str) -> Result<Option<(Bytes, Option<ETag>)>, StateError> {
        let result = match self.blob(key).download(None).await {
            Ok(r) => r,
            Err(e) if is_not_found(&e) => return Ok(None),
            Err(e) => return Err(blob_err(key, "get", e)),
        };
        let etag = result.properties.etag.as_ref().map(|t| ETag(t.to_string()));
        let bytes = result
            .body
            .collect()
            .await
            .map_err(|e| blob_err(key, "get body", e))?;
        Ok(Some((bytes, etag)))
    }

    async fn create_append_blob(&self, key: &str) -> Result<(), StateError> {
        let opts = AppendBlobClientCreateOptions {
            if_none_match: Some("*".into()),
            ..Default::default()
        };
        match self.blob(key).append_blob_client().create(Some(opts)).await {
            Ok(_) => Ok(()),
            // Another writer created it first: fine, we only need it to exist.
            Err(e) if is_code(&e, StorageErrorCode::BlobAlreadyExists) => Ok(()),
            Err(e) => Err(blob_err(key, "create append blob", e)),
        }
    }

    async fn append_block(&self, key: &str, line: &Bytes) -> Result<(), azure_core::Error> {
        self.blob(key)
            .append_blob_client()
            .append_block(content(line), line.len() as u64, None)
            .await
            .map(|_| ())
    }
}

#[async_trait]
impl StateStore for BlobStore {
    async fn get(&self, key: &str) -> Result<Option<Versioned>, StateError> {
        validate_key(key)?;
        match self.download(key).await? {
            None => Ok(None),
            Some((bytes, Some(etag))) => Ok(Some(Versioned { bytes, etag })),
            Some((_, None)) => Err(blob_err(
                key,
                "get",
                azure_core::Error::with_message(
                    ErrorKind::DataConversion,
                    "Get Blob returned no ETag",
                ),
            )),
        }
    }

    async fn put(&self, key: &str, bytes: Bytes, cond: WriteCondition) -> Result<ETag, StateError> {
        validate_key(key)?;
        let mut created_container = false;
        loop {
            let err = match self.upload(key, &bytes, &cond).await {
                Ok(tag) => return Ok(tag),
                Err(e) => e,
            };
            let status = err.http_status();
            if status == Some(StatusCode::PreconditionFailed)
                || is_code(&err, StorageErrorCode::BlobAlreadyExists)
            {
                let detail = match &cond {
                    WriteCondition::IfNoneMatch => {
                        "create-only write, but the document already exists".to_owned()
                    }
                    WriteCondition::IfMatch(tag) => {
                        format!("expected version {tag}, but the document changed")
                    }
                    WriteCondition::Any => format!("service refused the write: {err}"),
                };
                return Err(StateError::Conflict {
                    key: key.to_owned(),
                    detail,
                });
            }
            if matches!(cond, WriteCondition::IfMatch(_)) && is_not_found(&err) {
                return Err(StateError::Conflict {
                    key: key.to_owned(),
                    detail: "expected an existing version, but the document does not exist"
                        .to_owned(),
                });
            }
            if !created_container && is_code(&err, StorageErrorCode::ContainerNotFound) {
                created_container = true;
                self.ensure_container().await?;
                continue;
            }
            return Err(blob_err(key, "put", err));
        }
    }

    async fn append(&self, key: &str, line: Bytes) -> Result<(), StateError> {
        validate_key(key)?;
        let line = normalize_line(key, line)?;
        match self.append_block(key, &line).await {
            Ok(()) => return Ok(()),
            Err(e) if is_code(&e, StorageErrorCode::ContainerNotFound) => {
                self.ensure_container().await?;
                self.create_append_blob(key).await?;
            }
            Err(e) if is_code(&e, StorageErrorCode::BlobNotFound) || is_not_found(&e) => {
                self.create_append_blob(key).await?;
            }
            Err(e) => return Err(blob_err(key, "append", e)),
        }
        self.append_block(key, &line)
            .await
            .map_err(|e| blob_err(key, "append", e))
    }

    async fn read_log(&self, key: &str) -> Result<Option<Bytes>, StateError> {
        validate_key(key)?;
        Ok(self.download(key).await?.map(|(bytes, _)| bytes))
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StateError> {
        validate_prefix(prefix)?;
        let opts = BlobContainerClientListBlobsOptions {
            prefix: Some(format!("{}{prefix}", self.prefix)),
            ..Default::default()
        };
        let mut pages = self
            .container
            .list_blobs(Some(opts))
            .map_err(|e| blob_err(prefix, "list", e))?
            .into_pages();
        let mut out = Vec::new();
        loop {
            let page = match pages.try_next().await {
                Ok(Some(p)) => p,
                Ok(None) => break,
                Err(e) if is_not_found(&e) => break, // no container yet: nothing stored
                Err(e) => return Err(blob_err(prefix, "list", e)),
            };
            let model = page
                .into_model()
                .map_err(|e| blob_err(prefix, "list (parse)", e))?;
            for item in model.blob_items {
                let Some(name) = item.name.as_deref() else {
                    continue;
                };
                if let Some(key) = name.strip_prefix(&self.prefix) {
                    if validate_key(key).is_ok() {
                        out.push(key.to_owned());
                    }
                }
            }
        }
        out.sort();
        Ok(out)
    }

    async fn delete(&self, key: &str) -> Result<bool, StateError> {
        validate_key(key)?;
        match self.blob(key).delete(None).await {
            Ok(_) => Ok(true),
            Err(e) if is_not_found(&e) => Ok(false),
            Err(e) => Err(blob_err(key, "delete", e)),
        }
    }
}
