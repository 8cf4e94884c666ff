//! Uploading a backup: a checkpoint's files as content-addressed objects
//! (or encrypted ones under random names), then the manifest, last; and
//! recording a WAL-based incremental, whose segments are already there.

use std::collections::HashSet;
use std::fs;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use futures::stream::{self, StreamExt, TryStreamExt};
use object_store::ObjectStoreExt;
use serde::Serialize;

use super::manifest::{check_name, FORMAT_VERSION};
use super::{
    crypto, io_err, sha256, wal, BackupFile, BackupManifest, Encoding, EncryptionInfo, Target,
    PARALLEL,
};
use crate::clock::iso_ms;
use crate::error::{Error, Result};
use crate::fs::hex;

const ZSTD_LEVEL: i32 = 3;

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
        self.catalog_add(&name, &m.checksum).await?;
        Ok(BackupManifest {
            encryption: m.encryption,
            checksum: m.checksum,
            ..opened
        })
    }
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
