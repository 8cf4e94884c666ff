//! Where backups go: a URL resolved to an `object_store` and a prefix, and
//! the object calls every workflow makes on it (put, in parts when large;
//! get; delete; head; list).
//!
//! | URL                          | store                                         | credentials (standard environment)       |
//! |------------------------------|-----------------------------------------------|------------------------------------------|
//! | `file:///abs/dir` or a path  | local filesystem (created if missing)          | —                                        |
//! | `s3://bucket/prefix`         | S3 and S3-compatible (`AWS_ENDPOINT_URL`, `AWS_ALLOW_HTTP`) | `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, … |
//! | `az://container/prefix`      | Azure Blob (`AZURE_STORAGE_USE_EMULATOR`, `AZURITE_BLOB_STORAGE_URL`) | `AZURE_STORAGE_ACCOUNT_NAME`, `AZURE_STORAGE_ACCOUNT_KEY`, … |
//! | `gs://bucket/prefix`         | Google Cloud Storage                           | `GOOGLE_SERVICE_ACCOUNT`, …              |

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path as ObjPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};

use super::PARALLEL;
use crate::error::{Error, Result};

/// Objects larger than this go up as multipart uploads.
const MULTIPART_BYTES: usize = 16 << 20;
const PART_BYTES: usize = 8 << 20;

#[derive(Debug, Clone)]
pub struct Target {
    pub url: String,
    pub store: Arc<dyn ObjectStore>,
    pub prefix: ObjPath,
    /// Opens encrypted backups (and encrypts new ones when asked).
    pub keyring: Option<Arc<super::crypto::Keyring>>,
    /// Where uploads and downloads count their files and bytes.
    pub progress: Arc<super::progress::Progress>,
}

/// Check a location URL before anything uses it: it parses, and a
/// `file://` URL names no host (`file://relative/path` would otherwise be
/// read as host `relative`, path `/path`).
pub fn check_url(url: &str) -> Result<url::Url> {
    let bad = |why: String| Error::invalid(format!("backup location {url:?}: {why}"));
    let parsed = url::Url::parse(url).map_err(|e| bad(e.to_string()))?;
    if parsed.scheme() == "file" {
        if let Some(host) = parsed
            .host_str()
            .filter(|h| !h.is_empty() && *h != "localhost")
        {
            return Err(bad(format!(
                "a file:// URL cannot name a host ({host:?}); for a local directory write \
                 file:///absolute/path (three slashes) or just the path"
            )));
        }
    }
    Ok(parsed)
}

impl Target {
    /// Resolve a destination to write to. A bare path is a local directory,
    /// created when missing.
    pub fn open(url: &str) -> Result<Target> {
        Self::open_for(url, true)
    }

    /// Resolve a location; a missing local directory is created only when
    /// `create` (a writer), and is "not found" otherwise — a reader must not
    /// leave an empty location behind (e.g. after a typo in the path).
    pub fn open_for(url: &str, create: bool) -> Result<Target> {
        let bad = |why: String| Error::invalid(format!("backup location {url:?}: {why}"));
        if !url.contains("://") {
            return Self::local(Path::new(url), url, create);
        }
        let parsed = check_url(url)?;
        let prefix = ObjPath::from_url_path(parsed.path()).map_err(|e| bad(e.to_string()))?;
        let store: Arc<dyn ObjectStore> = match parsed.scheme() {
            "file" => return Self::local(Path::new(parsed.path()), url, create),
            "s3" | "s3a" => Arc::new(
                object_store::aws::AmazonS3Builder::from_env()
                    .with_url(url)
                    .build()
                    .map_err(|e| bad(e.to_string()))?,
            ),
            "az" | "azure" | "abfs" | "abfss" => Arc::new(
                object_store::azure::MicrosoftAzureBuilder::from_env()
                    .with_url(url)
                    .build()
                    .map_err(|e| bad(e.to_string()))?,
            ),
            "gs" => Arc::new(
                object_store::gcp::GoogleCloudStorageBuilder::from_env()
                    .with_url(url)
                    .build()
                    .map_err(|e| bad(e.to_string()))?,
            ),
            other => {
                return Err(bad(format!(
                    "scheme {other}:// is not supported (use file://, s3://, az:// or gs://)"
                )))
            }
        };
        Ok(Target {
            url: url.to_string(),
            store,
            prefix,
            keyring: None,
            progress: Arc::default(),
        })
    }

    fn local(dir: &Path, url: &str, create: bool) -> Result<Target> {
        if !dir.is_absolute() {
            return Err(Error::invalid(format!(
                "backup location {url:?}: a local path must be absolute"
            )));
        }
        if !create && !dir.is_dir() {
            return Err(Error::not_found(format!(
                "backup location {url}: {} does not exist (no backups there)",
                dir.display()
            )));
        }
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::io(format!("backup location {}: {e}", dir.display())))?;
        let store = object_store::local::LocalFileSystem::new_with_prefix(dir)
            .map_err(|e| Error::io(format!("backup location {}: {e}", dir.display())))?;
        Ok(Target {
            url: url.to_string(),
            store: Arc::new(store),
            prefix: ObjPath::default(),
            keyring: None,
            progress: Arc::default(),
        })
    }

    pub fn with_keyring(mut self, keyring: Option<Arc<super::crypto::Keyring>>) -> Self {
        self.keyring = keyring;
        self
    }

    /// A local directory (`file://` or a bare path)?
    pub fn is_local(&self) -> bool {
        self.url.starts_with("file://") || !self.url.contains("://")
    }

    pub fn with_progress(mut self, progress: Arc<super::progress::Progress>) -> Self {
        self.progress = progress;
        self
    }

    /// `prefix/rel`.
    pub fn path(&self, rel: &str) -> ObjPath {
        let mut p = self.prefix.clone();
        for part in rel.split('/').filter(|s| !s.is_empty()) {
            p = p.join(part);
        }
        p
    }

    /// Length of `prefix/` in a listed location (to make names relative).
    pub fn prefix_len(&self) -> usize {
        let n = self.prefix.as_ref().len();
        if n == 0 {
            0
        } else {
            n + 1
        }
    }

    /// An object-store error, kept retryable when it may be transient.
    pub fn err(&self, what: &str, e: object_store::Error) -> Error {
        match e {
            object_store::Error::NotFound { .. } => {
                Error::not_found(format!("{what} in {}: not found", self.url))
            }
            other => Error::io(format!("{what} in {}: {other}", self.url)),
        }
    }

    /// Every object name under `objects/`.
    pub async fn existing_objects(&self) -> Result<HashSet<String>> {
        let prefix = self.path("objects");
        let base = self.prefix_len();
        self.store
            .list(Some(&prefix))
            .map_ok(|m| m.location.as_ref()[base..].to_string())
            .try_collect()
            .await
            .map_err(|e| self.err("listing objects", e))
    }

    pub(crate) async fn put_object(&self, rel: &str, body: Bytes) -> Result<()> {
        let path = self.path(rel);
        if body.len() <= MULTIPART_BYTES {
            self.store
                .put(&path, PutPayload::from(body))
                .await
                .map_err(|e| self.err(&format!("uploading {rel}"), e))?;
            return Ok(());
        }
        let upload = self
            .store
            .put_multipart(&path)
            .await
            .map_err(|e| self.err(&format!("starting the multipart upload of {rel}"), e))?;
        let mut w = WriteMultipart::new_with_chunk_size(upload, PART_BYTES);
        for chunk in body.chunks(PART_BYTES) {
            w.wait_for_capacity(PARALLEL)
                .await
                .map_err(|e| self.err(&format!("uploading {rel}"), e))?;
            w.put(body.slice_ref(chunk));
        }
        w.finish()
            .await
            .map_err(|e| self.err(&format!("completing the upload of {rel}"), e))?;
        Ok(())
    }

    pub(crate) async fn delete_object(&self, rel: &str) -> Result<()> {
        match self.store.delete(&self.path(rel)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.err(&format!("deleting {rel}"), e)),
        }
    }

    pub(crate) async fn get_object(&self, rel: &str) -> Result<Bytes> {
        let r = self
            .store
            .get(&self.path(rel))
            .await
            .map_err(|e| self.err(&format!("reading {rel}"), e))?;
        r.bytes()
            .await
            .map_err(|e| self.err(&format!("reading {rel}"), e))
    }

    /// Is the object there with this size? (None: yes; else the problem.)
    pub(crate) async fn check_size(&self, object: &str, size: u64) -> Result<Option<String>> {
        match self.store.head(&self.path(object)).await {
            Ok(meta) if meta.size == size => Ok(None),
            Ok(meta) => Ok(Some(format!(
                "size {} but the manifest says {size}",
                meta.size
            ))),
            Err(object_store::Error::NotFound { .. }) => Ok(Some("missing".into())),
            Err(e) => Err(self.err(&format!("checking {object}"), e)),
        }
    }
}
