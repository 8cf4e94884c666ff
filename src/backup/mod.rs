//! Backups to object storage (`object_store`): a checkpoint's files go up
//! as content-addressed objects, then a manifest, last.
//!
//! Layout under the destination URL:
//!
//! | object                         | what                                             |
//! |--------------------------------|--------------------------------------------------|
//! | `objects/<h2>/<sha256>`        | one file's bytes; SSTs raw (already compressed), others zstd |
//! | `backups/<name>.json`          | the manifest: every file with size, SHA-256, object; written last |
//! | `wal/<first>-<last>.seg`       | archived WAL batches ([`wal`]); `.eseg` when encrypted |
//!
//! An object is named by the SHA-256 of the file it holds, so a file
//! already in the target (from an earlier backup, or an interrupted one) is
//! never uploaded again: every backup is incremental and deduplicated, and
//! every manifest is complete on its own (restore needs no chain walk). A
//! backup is visible only once its manifest exists; the manifest carries its
//! own SHA-256, so a damaged manifest is detected, not trusted.
//!
//! An incremental backup is one of two kinds, whichever is smaller:
//! - *files*: the checkpoint's files, of which only the new ones are
//!   uploaded (compaction rewrites SSTs, so after scattered updates most
//!   of the store is new files);
//! - *WAL*: no files; the archived WAL segments from a `base` backup (one
//!   with files) up to this backup's sequence. Restoring it is a
//!   point-in-time restore of the base to exactly that sequence.

pub mod crypto;
pub mod params;
pub mod progress;
pub mod prune;
mod service;
pub mod target;
pub mod wal;

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use futures::stream::{self, StreamExt, TryStreamExt};
use object_store::path::Path as ObjPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use service::{default_destination, Service};
pub use target::Target;

use crate::clock::iso_ms;
use crate::error::{Error, Result};
use crate::fs::hex;

pub const FORMAT_VERSION: u32 = 1;
/// Files uploaded or downloaded at once.
const PARALLEL: usize = 4;
/// Objects larger than this go up as multipart uploads.
const MULTIPART_BYTES: usize = 16 << 20;
const PART_BYTES: usize = 8 << 20;
const ZSTD_LEVEL: i32 = 3;

/// How a file is stored in its object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    Raw,
    Zstd,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupFile {
    pub name: String,
    pub size: u64,
    /// SHA-256 of the file (lower-case hex); also its object's name.
    pub sha256: String,
    /// CRC32C of the file (as in snapshot manifests).
    pub crc32c: String,
    pub encoding: Encoding,
    /// Bytes of the object.
    pub stored_size: u64,
    /// Encrypted backups: the object's own AES-256-GCM key (base64; only
    /// ever stored inside the sealed file list) and its random name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_name: Option<String>,
}

impl BackupFile {
    pub fn object(&self) -> String {
        self.object_name
            .clone()
            .unwrap_or_else(|| object_name(&self.sha256))
    }
}

/// How an encrypted backup's file list is protected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncryptionInfo {
    pub algorithm: String,
    /// The key-encryption key that wrapped the data key.
    pub kek: crypto::KeyRef,
    /// The per-backup data key, sealed under the KEK (base64).
    pub wrapped_dek: String,
    /// The file list, sealed under the data key with the manifest's clear
    /// fields as AAD (base64).
    pub sealed_files: String,
}

fn object_name(sha: &str) -> String {
    format!("objects/{}/{sha}", &sha[..2.min(sha.len())])
}

/// `backups/<name>.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackupManifest {
    pub format_version: u32,
    pub name: String,
    /// `full` (every object uploaded) or `incremental` (objects already in
    /// the target skipped).
    pub kind: String,
    /// The newest backup in the target when this one was made.
    pub parent: Option<String>,
    pub created_at: String,
    pub created_at_ms: i64,
    /// Sequence range this backup adds over its parent (`first` is the
    /// parent's `sequence + 1`, or 0); `sequence` is the store's exact last
    /// sequence in the checkpoint.
    pub first_sequence: u64,
    pub sequence: u64,
    pub files: Vec<BackupFile>,
    /// WAL-based incrementals: the backup with files this one rolls
    /// forward from, and the segments that carry it there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub wal: Vec<wal::WalObject>,
    /// The base's own checksum: a base replaced under the same name (a
    /// copy from another store, say) is refused, not rolled forward.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_checksum: Option<String>,
    /// The store history this backup belongs to
    /// ([`crate::engine::Engine::history`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<String>,
    pub total_bytes: u64,
    pub uploaded_bytes: u64,
    pub uploaded_objects: u64,
    /// Set for encrypted backups (`files` is then stored sealed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<EncryptionInfo>,
    /// SHA-256 of this manifest serialised with `checksum` empty.
    #[serde(default)]
    pub checksum: String,
}

fn sha256(b: &[u8]) -> String {
    hex(&Sha256::digest(b))
}

impl BackupManifest {
    /// Encrypted, and the file list not opened. (A WAL-based incremental
    /// has no files; what it needs, its segment list, is in the clear.)
    pub fn is_sealed(&self) -> bool {
        self.encryption.is_some() && self.files.is_empty() && self.base.is_none()
    }

    /// A WAL-based incremental (no files; restored from its base).
    pub fn is_wal(&self) -> bool {
        self.base.is_some()
    }

    /// What the sealed file list authenticates: everything but itself.
    fn aad(&self) -> Result<Vec<u8>> {
        let mut m = self.clone();
        m.files = Vec::new();
        m.checksum = String::new();
        if let Some(e) = m.encryption.as_mut() {
            e.sealed_files = String::new();
        }
        serde_json::to_vec(&m).map_err(|e| Error::internal(e.to_string()))
    }

    fn compute_checksum(&self) -> Result<String> {
        let mut m = self.clone();
        m.checksum = String::new();
        let body = serde_json::to_vec(&m).map_err(|e| Error::internal(e.to_string()))?;
        Ok(sha256(&body))
    }

    /// Parse and check a manifest's bytes.
    pub fn decode(name: &str, bytes: &[u8]) -> Result<BackupManifest> {
        let m: BackupManifest = serde_json::from_slice(bytes).map_err(|e| {
            Error::corruption(format!("backup {name:?}: manifest is not valid JSON: {e}"))
        })?;
        if m.format_version != FORMAT_VERSION {
            return Err(Error::corruption(format!(
                "backup {name:?}: manifest format {} is not supported (expects {FORMAT_VERSION})",
                m.format_version
            )));
        }
        let want = m.compute_checksum()?;
        if m.checksum != want {
            return Err(Error::corruption(format!(
                "backup {name:?}: manifest checksum mismatch (stored {}, computed {want}): it was altered or damaged",
                m.checksum
            )));
        }
        m.check_files()?;
        Ok(m)
    }

    /// Every file entry is safe to act on: a plain file name (a restore
    /// writes `dir/name`), a SHA-256 in hex, an object under `objects/`.
    fn check_files(&self) -> Result<()> {
        for f in &self.files {
            let bad = |why: &str| {
                Err(Error::corruption(format!(
                    "backup {:?}: file entry {:?} {why}",
                    self.name, f.name
                )))
            };
            if f.name.is_empty()
                || f.name == "."
                || f.name == ".."
                || f.name.contains(['/', '\\', '\0'])
            {
                return bad("is not a plain file name");
            }
            if f.sha256.len() != 64 || !f.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                return bad("has no valid SHA-256");
            }
            if let Some(o) = &f.object_name {
                if !o.starts_with("objects/") || o.split('/').any(|p| p.is_empty() || p == "..") {
                    return bad("names an object outside objects/");
                }
            }
        }
        if (self.base.is_some() && !self.files.is_empty())
            || (self.base.is_none() && !self.wal.is_empty())
        {
            return Err(Error::corruption(format!(
                "backup {:?}: a WAL-based backup has a base and segments and no files",
                self.name
            )));
        }
        for w in &self.wal {
            if !wal::is_segment_object(&w.object)
                || w.sha256.len() != 64
                || !w.sha256.bytes().all(|b| b.is_ascii_hexdigit())
            {
                return Err(Error::corruption(format!(
                    "backup {:?}: WAL entry {:?} is not a segment under wal/ with a SHA-256",
                    self.name, w.object
                )));
            }
        }
        Ok(())
    }
}

/// A problem found by verify.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BadObject {
    pub object: String,
    pub file: String,
    pub problem: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    pub name: String,
    pub ok: bool,
    pub files_checked: usize,
    pub bytes_read: u64,
    pub read_data: bool,
    pub bad: Vec<BadObject>,
    pub seconds: f64,
}

fn check_name(name: &str) -> Result<()> {
    crate::snapshot::check_name(name)
        .map_err(|e| Error::invalid(e.message.replace("snapshot", "backup")))
}

fn io_err(what: impl std::fmt::Display) -> impl FnOnce(std::io::Error) -> Error {
    move |e| Error::io(format!("{what}: {e}"))
}

/// What [`Target::upload`] backs up.
pub struct UploadSpec<'a> {
    /// A checkpoint directory.
    pub dir: &'a Path,
    /// Its files: (name, CRC32C hex).
    pub files: &'a [(String, String)],
    pub name: &'a str,
    /// The checkpoint's exact last sequence.
    pub sequence: u64,
    /// Upload every object even if present.
    pub full: bool,
    pub encrypt: bool,
    pub now_ms: i64,
    /// The store's history id.
    pub history: Option<String>,
}

/// What [`Target::commit_wal`] records: a WAL-based incremental backup.
pub struct WalBackupSpec<'a> {
    pub name: &'a str,
    /// The newest backup in the target.
    pub parent: &'a BackupManifest,
    /// The backup with files it rolls forward from.
    pub base: &'a BackupManifest,
    pub sequence: u64,
    /// Segments carrying `base.sequence` to `sequence`.
    pub wal: Vec<wal::WalObject>,
    /// What this backup itself uploaded (segments the archiver shipped
    /// earlier are reused).
    pub uploaded_bytes: u64,
    pub uploaded_objects: u64,
    pub encrypt: bool,
    pub now_ms: i64,
    /// The store's history id (must be the base's).
    pub history: String,
}

/// Upload statistics.
#[derive(Debug, Default, Clone, Serialize)]
pub struct UploadStats {
    pub uploaded_objects: u64,
    pub uploaded_bytes: u64,
    pub skipped_objects: u64,
}

impl Target {
    fn manifest_path(&self, name: &str) -> ObjPath {
        self.path(&format!("backups/{name}.json"))
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

    /// Back up the files of a checkpoint directory (`files`: name, crc32c).
    /// Objects already present are skipped unless `full`.
    pub async fn upload(&self, spec: UploadSpec<'_>) -> Result<BackupManifest> {
        let UploadSpec {
            dir,
            files,
            name,
            sequence,
            full,
            encrypt,
            now_ms,
            history,
        } = spec;
        check_name(name)?;
        let kek = match (encrypt, &self.keyring) {
            (false, _) => None,
            (true, Some(k)) => Some(k.current()),
            (true, None) => {
                return Err(Error::invalid(
                    "encryption needs a keyring: set [backup] keyring (a 0600 file)",
                ))
            }
        };
        if self.exists(name).await? {
            return Err(Error::exists(format!(
                "backup {name:?} already exists in {}",
                self.url
            )));
        }
        let previous = self.list().await?;
        // Encrypted objects are reused through the keys in earlier
        // (opened) manifests: SHA-256 → (object, key).
        let reusable: std::collections::HashMap<String, (String, String)> = if encrypt {
            previous
                .iter()
                .flat_map(|m| m.files.iter())
                .filter_map(|f| Some((f.sha256.clone(), (f.object_name.clone()?, f.key.clone()?))))
                .collect()
        } else {
            Default::default()
        };
        let reusable = Arc::new(reusable);
        let parent = previous.into_iter().last();
        let bytes_total = files
            .iter()
            .map(|(f, _)| fs::metadata(dir.join(f)).map(|m| m.len()).unwrap_or(0))
            .sum();
        self.progress
            .phase("uploading", files.len() as u64, bytes_total);
        let existing = if full {
            HashSet::new()
        } else {
            self.existing_objects().await?
        };
        let existing = Arc::new(existing);
        let results: Vec<(BackupFile, bool)> = stream::iter(files.iter().cloned())
            .map(|(file, crc)| {
                let path = dir.join(&file);
                let existing = existing.clone();
                let reusable = reusable.clone();
                async move {
                    let (mut entry, body) =
                        tokio::task::spawn_blocking(move || encode_file(&path, &file, crc))
                            .await
                            .map_err(|e| Error::internal(format!("encoding task failed: {e}")))??;
                    let body = if encrypt {
                        if let Some((obj, key)) = reusable.get(&entry.sha256) {
                            if existing.contains(obj) {
                                let stored = self
                                    .store
                                    .head(&self.path(obj))
                                    .await
                                    .map_err(|e| self.err(&format!("checking {obj}"), e))?;
                                entry.object_name = Some(obj.clone());
                                entry.key = Some(key.clone());
                                entry.stored_size = stored.size;
                                self.progress.advance(entry.size);
                                return Ok((entry, false));
                            }
                        }
                        let key = crypto::random::<32>()?;
                        let sealed = crypto::seal(&key, entry.sha256.as_bytes(), &body)?;
                        entry.key = Some(crypto::encode_b64(&key));
                        entry.object_name = Some(format!(
                            "objects/{}/e-{}",
                            &entry.sha256[..2],
                            hex(&crypto::random::<16>()?)
                        ));
                        entry.stored_size = sealed.len() as u64;
                        Bytes::from(sealed)
                    } else {
                        body
                    };
                    let object = entry.object();
                    if existing.contains(&object) {
                        self.progress.advance(entry.size);
                        return Ok((entry, false));
                    }
                    self.put_object(&object, body).await?;
                    self.progress.advance(entry.size);
                    Ok::<_, Error>((entry, true))
                }
            })
            .buffered(PARALLEL)
            .try_collect()
            .await?;
        let m = BackupManifest {
            format_version: FORMAT_VERSION,
            name: name.to_string(),
            kind: if full { "full" } else { "incremental" }.to_string(),
            first_sequence: parent.as_ref().map(|p| p.sequence + 1).unwrap_or(0),
            parent: parent.map(|p| p.name),
            created_at: iso_ms(now_ms),
            created_at_ms: now_ms,
            sequence,
            total_bytes: results.iter().map(|(f, _)| f.size).sum(),
            uploaded_bytes: results
                .iter()
                .filter(|(_, up)| *up)
                .map(|(f, _)| f.stored_size)
                .sum(),
            uploaded_objects: results.iter().filter(|(_, up)| *up).count() as u64,
            files: results.into_iter().map(|(f, _)| f).collect(),
            base: None,
            wal: Vec::new(),
            base_checksum: None,
            history,
            encryption: None,
            checksum: String::new(),
        };
        self.write_manifest(m, kek).await
    }

    /// Record a WAL-based incremental backup (its segments are already in
    /// the target).
    pub async fn commit_wal(&self, spec: WalBackupSpec<'_>) -> Result<BackupManifest> {
        check_name(spec.name)?;
        let kek = match (spec.encrypt, &self.keyring) {
            (false, _) => None,
            (true, Some(k)) => Some(k.current()),
            (true, None) => {
                return Err(Error::invalid(
                    "encryption needs a keyring: set [backup] keyring (a 0600 file)",
                ))
            }
        };
        if spec.base.is_wal() {
            return Err(Error::internal(format!(
                "backup {:?} has no files and cannot be a base",
                spec.base.name
            )));
        }
        if spec.base.history.as_deref() != Some(spec.history.as_str()) {
            return Err(Error::invalid(format!(
                "base backup {:?} is of another store history ({}; the store is {}): the store was restored since, or the backup came from another store",
                spec.base.name,
                spec.base.history.as_deref().unwrap_or("not recorded"),
                spec.history
            )));
        }
        // The segments must carry the base exactly to the sequence.
        let mut next = spec.base.sequence + 1;
        for w in &spec.wal {
            if w.first > next || w.last < next {
                return Err(Error::internal(format!(
                    "WAL segment {} does not continue at sequence {next}",
                    w.object
                )));
            }
            next = w.last + 1;
        }
        if next <= spec.sequence || spec.sequence < spec.base.sequence {
            return Err(Error::internal(format!(
                "the WAL segments reach sequence {} but the backup is at {}",
                next - 1,
                spec.sequence
            )));
        }
        if self.exists(spec.name).await? {
            return Err(Error::exists(format!(
                "backup {:?} already exists in {}",
                spec.name, self.url
            )));
        }
        let m = BackupManifest {
            format_version: FORMAT_VERSION,
            name: spec.name.to_string(),
            kind: "incremental".to_string(),
            parent: Some(spec.parent.name.clone()),
            created_at: iso_ms(spec.now_ms),
            created_at_ms: spec.now_ms,
            first_sequence: spec.parent.sequence + 1,
            sequence: spec.sequence,
            files: Vec::new(),
            base: Some(spec.base.name.clone()),
            base_checksum: Some(spec.base.checksum.clone()),
            history: Some(spec.history),
            total_bytes: spec.wal.iter().map(|w| w.size).sum(),
            wal: spec.wal,
            uploaded_bytes: spec.uploaded_bytes,
            uploaded_objects: spec.uploaded_objects,
            encryption: None,
            checksum: String::new(),
        };
        m.check_files()?;
        self.write_manifest(m, kek).await
    }

    /// Seal (with a KEK) and write a manifest, last; returns it opened.
    async fn write_manifest(
        &self,
        mut m: BackupManifest,
        kek: Option<(crypto::KeyRef, &[u8; 32])>,
    ) -> Result<BackupManifest> {
        let name = m.name.clone();
        let opened = m.clone();
        if let Some((kref, kek)) = kek {
            let (dek, wrapped_dek) = crypto::new_data_key(kek, &name)?;
            let files = serde_json::to_vec(&m.files).map_err(|e| Error::internal(e.to_string()))?;
            m.files = Vec::new();
            m.encryption = Some(EncryptionInfo {
                algorithm: crypto::ALGORITHM.to_string(),
                kek: kref,
                wrapped_dek,
                sealed_files: String::new(),
            });
            let sealed = crypto::seal(&dek, &m.aad()?, &files)?;
            if let Some(e) = m.encryption.as_mut() {
                e.sealed_files = crypto::encode_b64(&sealed);
            }
        }
        m.checksum = m.compute_checksum()?;
        let body = serde_json::to_vec_pretty(&m).map_err(|e| Error::internal(e.to_string()))?;
        // What a reader will parse back must pass its own checks.
        BackupManifest::decode(&name, &body)?;
        self.put_object(&format!("backups/{name}.json"), Bytes::from(body))
            .await?;
        Ok(BackupManifest {
            encryption: m.encryption,
            checksum: m.checksum,
            ..opened
        })
    }

    pub async fn exists(&self, name: &str) -> Result<bool> {
        match self.store.head(&self.manifest_path(name)).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(self.err(&format!("checking backup {name}"), e)),
        }
    }

    /// The manifest of a backup (checked; an encrypted one opened).
    pub async fn manifest(&self, name: &str) -> Result<BackupManifest> {
        let m = self.manifest_clear(name).await?;
        self.unseal(m)
    }

    /// The manifest as stored (checked; an encrypted file list left sealed).
    pub async fn manifest_clear(&self, name: &str) -> Result<BackupManifest> {
        check_name(name)?;
        let bytes = match self.store.get(&self.manifest_path(name)).await {
            Ok(r) => r
                .bytes()
                .await
                .map_err(|e| self.err(&format!("reading backup {name}"), e))?,
            Err(object_store::Error::NotFound { .. }) => {
                return Err(Error::not_found(format!(
                    "no backup {name:?} in {}",
                    self.url
                )))
            }
            Err(e) => return Err(self.err(&format!("reading backup {name}"), e)),
        };
        BackupManifest::decode(name, &bytes)
    }

    /// Open an encrypted manifest's file list with the keyring.
    pub fn unseal(&self, mut m: BackupManifest) -> Result<BackupManifest> {
        let Some(enc) = m.encryption.clone() else {
            return Ok(m);
        };
        let Some(keyring) = &self.keyring else {
            return Err(Error::invalid(format!(
                "backup {:?} is encrypted ({}, key {:?}); configure [backup] keyring to read it",
                m.name, enc.algorithm, enc.kek.id
            )));
        };
        let kek = keyring.get(&enc.kek)?;
        let what = format!("backup {:?}", m.name);
        let dek = crypto::unwrap_data_key(kek, &m.name, &enc.wrapped_dek, &what)?;
        let files = crypto::open(
            &dek,
            &m.aad()?,
            &crypto::decode_b64(&enc.sealed_files, &what)?,
            &format!("{what}: file list"),
        )?;
        m.files = serde_json::from_slice(&files)
            .map_err(|e| Error::corruption(format!("{what}: file list: {e}")))?;
        m.check_files()?;
        Ok(m)
    }

    /// Every backup, oldest first. A manifest that fails its checks is an
    /// error naming it (a listing never hides damage).
    pub async fn list(&self) -> Result<Vec<BackupManifest>> {
        let prefix = self.path("backups");
        let metas: Vec<object_store::ObjectMeta> = self
            .store
            .list(Some(&prefix))
            .try_collect()
            .await
            .map_err(|e| self.err("listing backups", e))?;
        let mut out = Vec::new();
        for m in metas {
            let Some(file) = m.location.filename() else {
                continue;
            };
            let Some(name) = file.strip_suffix(".json") else {
                continue;
            };
            let m = self.manifest_clear(name).await?;
            out.push(if m.encryption.is_some() && self.keyring.is_some() {
                self.unseal(m)?
            } else {
                m
            });
        }
        out.sort_by(|a, b| {
            (a.created_at_ms, a.sequence, &a.name).cmp(&(b.created_at_ms, b.sequence, &b.name))
        });
        Ok(out)
    }

    /// The named backup, or the newest.
    pub async fn resolve(&self, name: Option<&str>) -> Result<BackupManifest> {
        match name {
            Some(n) => self.manifest(n).await,
            None => self
                .list()
                .await?
                .pop()
                .ok_or_else(|| Error::not_found(format!("no backups in {}", self.url))),
        }
    }

    /// Check every object: present with the right size; with `read_fraction`
    /// (0..=1) that share of files is downloaded, decoded and checksummed.
    /// A WAL-based backup is checked with its base's files and its
    /// segments.
    pub async fn verify(&self, m: &BackupManifest, read_fraction: f64) -> Result<VerifyReport> {
        let started = std::time::Instant::now();
        let mut bad_base = None;
        let mut files = m.files.clone();
        if let Some(base) = &m.base {
            match self.manifest(base).await {
                Ok(b) => files.extend(b.files),
                Err(e) => {
                    bad_base = Some(BadObject {
                        object: format!("backups/{base}.json"),
                        file: format!("base backup {base}"),
                        problem: e.message,
                    })
                }
            }
        }
        let files_checked = files.len() + m.wal.len();
        let segments = stream::iter(m.wal.iter().cloned())
            .map(|w| async move {
                let bad = |problem: String| BadObject {
                    object: w.object.clone(),
                    file: format!("WAL {}..={}", w.first, w.last),
                    problem,
                };
                let read = read_fraction >= 1.0 || sample(&w.sha256) < read_fraction;
                if !read {
                    return self
                        .check_size(&w.object, w.size)
                        .await
                        .map(|p| (p.map(bad), 0));
                }
                let body = match self.get_object(&w.object).await {
                    Ok(b) => b,
                    Err(e) if e.kind == crate::error::ErrorKind::NotFound => {
                        return Ok((Some(bad("missing".into())), 0))
                    }
                    Err(e) => return Err(e),
                };
                let n = body.len() as u64;
                let got = sha256(&body);
                if got != w.sha256 {
                    return Ok((
                        Some(bad(format!(
                            "SHA-256 {got} does not match the manifest's {}",
                            w.sha256
                        ))),
                        n,
                    ));
                }
                let decoded = wal::decode(self.keyring.as_deref(), &w.object, &body);
                Ok((decoded.err().map(|e| bad(e.message)), n))
            })
            .buffer_unordered(PARALLEL)
            .try_collect::<Vec<(Option<BadObject>, u64)>>()
            .await?;
        let checks: Vec<(Option<BadObject>, u64)> = stream::iter(files)
            .map(|f| async move {
                let object = f.object();
                let bad = |problem: String| BadObject {
                    object: object.clone(),
                    file: f.name.clone(),
                    problem,
                };
                let read = read_fraction >= 1.0 || sample(&f.sha256) < read_fraction;
                if !read {
                    return self
                        .check_size(&object, f.stored_size)
                        .await
                        .map(|p| (p.map(bad), 0));
                }
                let body = match self.get_object(&object).await {
                    Ok(b) => b,
                    Err(e) if e.kind == crate::error::ErrorKind::NotFound => {
                        return Ok((Some(bad("missing".into())), 0))
                    }
                    Err(e) => return Err(e),
                };
                let n = body.len() as u64;
                Ok((decode_object(&f, body).err().map(|e| bad(e.message)), n))
            })
            .buffer_unordered(PARALLEL)
            .try_collect()
            .await?;
        let checks: Vec<(Option<BadObject>, u64)> = checks.into_iter().chain(segments).collect();
        let bytes_read = checks.iter().map(|(_, n)| n).sum();
        let bad: Vec<BadObject> = bad_base
            .into_iter()
            .chain(checks.into_iter().filter_map(|(b, _)| b))
            .collect();
        Ok(VerifyReport {
            name: m.name.clone(),
            ok: bad.is_empty(),
            files_checked,
            bytes_read,
            read_data: read_fraction > 0.0,
            bad,
            seconds: started.elapsed().as_secs_f64(),
        })
    }

    /// Files downloaded at once: from a local target a restore is bound by
    /// the CPU (hashing, copying into the page cache), so one stream per
    /// core (measured: 2 streams on 2 cores restore ~15% faster than 4);
    /// from a remote one by latency, so [`PARALLEL`] or more.
    fn download_streams(&self) -> usize {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        if self.is_local() {
            cores
        } else {
            PARALLEL.max(cores)
        }
    }

    /// Copy a raw object into `path`, hashing on the way; its size and
    /// SHA-256 must match the manifest's.
    async fn stream_to_file(&self, f: &BackupFile, path: &Path) -> Result<u64> {
        use object_store::GetResultPayload;
        use std::io::Read;
        let object = f.object();
        let r = self
            .store
            .get(&self.path(&object))
            .await
            .map_err(|e| self.err(&format!("reading {object}"), e))?;
        check_stored_size(f, r.meta.size)?;
        let path = path.to_path_buf();
        let task_failed =
            |e: tokio::task::JoinError| Error::internal(format!("restore task failed: {e}"));
        let out = match r.payload {
            // A local target: read the file object_store opened, through
            // one reused buffer.
            GetResultPayload::File(mut file, _) => tokio::task::spawn_blocking(move || {
                let mut out = HashingFile::create(path)?;
                let mut buf = vec![0u8; 1 << 20];
                loop {
                    let got = file.read(&mut buf).map_err(io_err(out.path.display()))?;
                    if got == 0 {
                        return Ok::<_, Error>(out);
                    }
                    out.write(&buf[..got])?;
                }
            })
            .await
            .map_err(task_failed)??,
            // A remote target: chunks as they arrive, written by a
            // blocking task.
            GetResultPayload::Stream(mut s) => {
                let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(16);
                let writer = tokio::task::spawn_blocking(move || {
                    let mut out = HashingFile::create(path)?;
                    while let Some(chunk) = rx.blocking_recv() {
                        out.write(&chunk)?;
                    }
                    Ok::<_, Error>(out)
                });
                while let Some(chunk) = s
                    .try_next()
                    .await
                    .map_err(|e| self.err(&format!("reading {object}"), e))?
                {
                    if tx.send(chunk).await.is_err() {
                        break;
                    }
                }
                drop(tx);
                writer.await.map_err(task_failed)??
            }
        };
        check_content(f, out.bytes, &hex(&out.hash.finalize()))?;
        Ok(out.bytes)
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

    /// Download a backup's files into `dir` (created, must be empty),
    /// checking each against its SHA-256. Raw unencrypted objects (SSTs)
    /// stream through a small buffer, hashed as they are written (a file
    /// whose SHA-256 does not match fails the download, and the caller
    /// removes the directory); others are decoded whole, then written.
    /// Each file's fsync starts as soon as it is written and runs beside the
    /// next downloads (the disk writes back while the CPU hashes); all are
    /// awaited, then the directory is fsynced.
    pub async fn download(&self, m: &BackupManifest, dir: &Path) -> Result<u64> {
        fs::create_dir_all(dir).map_err(io_err(dir.display()))?;
        self.progress.phase(
            "downloading",
            m.files.len() as u64,
            m.files.iter().map(|f| f.size).sum(),
        );
        let fsync = |path: PathBuf, n: u64| {
            let synced = tokio::task::spawn_blocking(move || {
                fs::File::open(&path)
                    .and_then(|f| f.sync_all())
                    .map_err(io_err(path.display()))
            });
            (synced, n)
        };
        // After a failure no new file starts, and every file already
        // started (and its fsync) finishes before this returns: nothing
        // writes into `dir` once the caller sees the error and removes it.
        let failed = std::sync::atomic::AtomicBool::new(false);
        let failed = &failed;
        let results: Vec<Result<Option<_>>> = stream::iter(m.files.iter().cloned())
            .map(|f| async move {
                if failed.load(std::sync::atomic::Ordering::Relaxed) {
                    return Ok(None);
                }
                let r = self.download_file(f, dir, fsync).await;
                if r.is_err() {
                    failed.store(true, std::sync::atomic::Ordering::Relaxed);
                }
                r.map(Some)
            })
            .buffer_unordered(self.download_streams())
            .collect()
            .await;
        let mut total = 0;
        let mut first_error = None;
        for r in results {
            match r {
                Ok(Some((synced, n))) => match synced.await {
                    Ok(Ok(())) => total += n,
                    Ok(Err(e)) => {
                        first_error.get_or_insert(e);
                    }
                    Err(e) => {
                        first_error
                            .get_or_insert(Error::internal(format!("fsync task failed: {e}")));
                    }
                },
                Ok(None) => {}
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        if let Some(e) = first_error {
            return Err(e);
        }
        crate::fs::fsync_dir(dir)?;
        Ok(total)
    }

    /// One file of [`Target::download`]: written, its fsync started.
    async fn download_file<T>(
        &self,
        f: BackupFile,
        dir: &Path,
        fsync: impl Fn(PathBuf, u64) -> T,
    ) -> Result<T> {
        let path = dir.join(&f.name);
        if f.key.is_none() && f.encoding == Encoding::Raw {
            let n = self.stream_to_file(&f, &path).await?;
            self.progress.advance(n);
            return Ok(fsync(path, n));
        }
        let body = self.get_object(&f.object()).await?;
        let (path, n) = tokio::task::spawn_blocking(move || {
            let data = decode_object(&f, body)?;
            fs::write(&path, &data).map_err(io_err(path.display()))?;
            Ok::<_, Error>((path, data.len() as u64))
        })
        .await
        .map_err(|e| Error::internal(format!("restore task failed: {e}")))??;
        self.progress.advance(n);
        Ok(fsync(path, n))
    }
}

/// A stable pseudo-random number in [0, 1) for a file (subset sampling).
fn sample(sha: &str) -> f64 {
    u32::from_str_radix(&sha[..8.min(sha.len())], 16).unwrap_or(0) as f64 / (u32::MAX as f64 + 1.0)
}

/// Read a file, hash it, and encode it for its object.
fn encode_file(path: &Path, name: &str, crc32c: String) -> Result<(BackupFile, Bytes)> {
    let data = fs::read(path).map_err(io_err(path.display()))?;
    let sha = sha256(&data);
    let size = data.len() as u64;
    let (encoding, body) = if name.ends_with(".sst") {
        (Encoding::Raw, Bytes::from(data))
    } else {
        let z = zstd::bulk::compress(&data, ZSTD_LEVEL)
            .map_err(io_err(format!("compressing {name}")))?;
        (Encoding::Zstd, Bytes::from(z))
    };
    Ok((
        BackupFile {
            name: name.to_string(),
            size,
            sha256: sha,
            crc32c,
            encoding,
            stored_size: body.len() as u64,
            key: None,
            object_name: None,
        },
        body,
    ))
}

/// A restored file being written, hashed as it goes.
struct HashingFile {
    out: fs::File,
    path: PathBuf,
    hash: Sha256,
    bytes: u64,
}

impl HashingFile {
    fn create(path: PathBuf) -> Result<HashingFile> {
        Ok(HashingFile {
            out: fs::File::create(&path).map_err(io_err(path.display()))?,
            path,
            hash: Sha256::new(),
            bytes: 0,
        })
    }

    fn write(&mut self, b: &[u8]) -> Result<()> {
        use std::io::Write;
        self.hash.update(b);
        self.out.write_all(b).map_err(io_err(self.path.display()))?;
        self.bytes += b.len() as u64;
        Ok(())
    }
}

/// An object's stored size against its manifest entry.
fn check_stored_size(f: &BackupFile, stored: u64) -> Result<()> {
    if stored != f.stored_size {
        return Err(Error::corruption(format!(
            "{}: object is {stored} bytes, the manifest says {}",
            f.name, f.stored_size
        )));
    }
    Ok(())
}

/// A file's restored size and SHA-256 against its manifest entry.
fn check_content(f: &BackupFile, size: u64, sha: &str) -> Result<()> {
    if size != f.size {
        return Err(Error::corruption(format!(
            "{}: {size} bytes, the manifest says {}",
            f.name, f.size
        )));
    }
    if sha != f.sha256 {
        return Err(Error::corruption(format!(
            "{}: SHA-256 {sha} does not match the manifest's {}",
            f.name, f.sha256
        )));
    }
    Ok(())
}

/// Decode an object's bytes into the file, checking size and SHA-256.
fn decode_object(f: &BackupFile, body: Bytes) -> Result<Bytes> {
    check_stored_size(f, body.len() as u64)?;
    let body = match &f.key {
        None => body,
        Some(k) => {
            let key: [u8; 32] = crypto::decode_b64(k, &f.name)?.try_into().map_err(|_| {
                Error::corruption(format!("{}: object key is not 32 bytes", f.name))
            })?;
            Bytes::from(crypto::open(&key, f.sha256.as_bytes(), &body, &f.name)?)
        }
    };
    let data = match f.encoding {
        Encoding::Raw => body,
        Encoding::Zstd => Bytes::from(
            zstd::bulk::decompress(&body, f.size as usize + 1)
                .map_err(|e| Error::corruption(format!("{}: zstd: {e}", f.name)))?,
        ),
    };
    check_content(f, data.len() as u64, &sha256(&data))?;
    Ok(data)
}

/// Is `dir` absent or an empty directory?
pub fn is_empty_dir(dir: &Path) -> Result<bool> {
    match fs::read_dir(dir) {
        Ok(mut it) => Ok(it.next().is_none()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(Error::io(format!("{}: {e}", dir.display()))),
    }
}

/// A sibling scratch path for building `dest` before it is renamed in.
pub fn partial_path(dest: &Path) -> PathBuf {
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "restore".into());
    dest.with_file_name(format!(".{name}.partial-{}", std::process::id()))
}

#[cfg(test)]
mod tests;
