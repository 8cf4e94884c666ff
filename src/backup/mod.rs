//! Backups to object storage (`object_store`): a checkpoint's files go up
//! as content-addressed objects, then a manifest, last.
//!
//! Layout under the destination URL:
//!
//! | object                         | what                                             |
//! |--------------------------------|--------------------------------------------------|
//! | `objects/<h2>/<sha256>`        | one file's bytes; SSTs raw (already compressed), others zstd |
//! | `backups/<name>.json`          | the manifest: every file with size, SHA-256, object; written last |
//!
//! An object is named by the SHA-256 of the file it holds, so a file
//! already in the target (from an earlier backup, or an interrupted one) is
//! never uploaded again: every backup is incremental and deduplicated, and
//! every manifest is complete on its own (restore needs no chain walk). A
//! backup is visible only once its manifest exists; the manifest carries its
//! own SHA-256, so a damaged manifest is detected, not trusted.

pub mod prune;
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

pub use target::Target;

use crate::clock::iso_ms;
use crate::error::{Error, Result};

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
}

impl BackupFile {
    pub fn object(&self) -> String {
        object_name(&self.sha256)
    }
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
    pub total_bytes: u64,
    pub uploaded_bytes: u64,
    pub uploaded_objects: u64,
    /// SHA-256 of this manifest serialised with `checksum` empty.
    #[serde(default)]
    pub checksum: String,
}

fn hex(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

fn sha256(b: &[u8]) -> String {
    hex(&Sha256::digest(b))
}

impl BackupManifest {
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
        Ok(m)
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
    pub async fn upload(
        &self,
        dir: &Path,
        files: &[(String, String)],
        name: &str,
        sequence: u64,
        full: bool,
        now_ms: i64,
    ) -> Result<BackupManifest> {
        check_name(name)?;
        if self.exists(name).await? {
            return Err(Error::exists(format!(
                "backup {name:?} already exists in {}",
                self.url
            )));
        }
        let parent = self.list().await?.into_iter().last();
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
                async move {
                    let (entry, body) =
                        tokio::task::spawn_blocking(move || encode_file(&path, &file, crc))
                            .await
                            .map_err(|e| Error::internal(format!("encoding task failed: {e}")))??;
                    let object = entry.object();
                    if existing.contains(&object) {
                        return Ok((entry, false));
                    }
                    self.put_object(&object, body).await?;
                    Ok::<_, Error>((entry, true))
                }
            })
            .buffered(PARALLEL)
            .try_collect()
            .await?;
        let mut m = BackupManifest {
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
            checksum: String::new(),
        };
        m.checksum = m.compute_checksum()?;
        let body = serde_json::to_vec_pretty(&m).map_err(|e| Error::internal(e.to_string()))?;
        self.put_object(&format!("backups/{name}.json"), Bytes::from(body))
            .await?;
        Ok(m)
    }

    pub async fn exists(&self, name: &str) -> Result<bool> {
        match self.store.head(&self.manifest_path(name)).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(self.err(&format!("checking backup {name}"), e)),
        }
    }

    /// The manifest of a backup (checked).
    pub async fn manifest(&self, name: &str) -> Result<BackupManifest> {
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
            out.push(self.manifest(name).await?);
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
    pub async fn verify(&self, m: &BackupManifest, read_fraction: f64) -> Result<VerifyReport> {
        let started = std::time::Instant::now();
        let checks: Vec<(Option<BadObject>, u64)> = stream::iter(m.files.iter().cloned())
            .map(|f| async move {
                let object = f.object();
                let bad = |problem: String| BadObject {
                    object: object.clone(),
                    file: f.name.clone(),
                    problem,
                };
                let read = read_fraction >= 1.0 || sample(&f.sha256) < read_fraction;
                if !read {
                    return match self.store.head(&self.path(&object)).await {
                        Ok(meta) if meta.size == f.stored_size => Ok((None, 0)),
                        Ok(meta) => Ok((
                            Some(bad(format!(
                                "size {} but the manifest says {}",
                                meta.size, f.stored_size
                            ))),
                            0,
                        )),
                        Err(object_store::Error::NotFound { .. }) => {
                            Ok((Some(bad("missing".into())), 0))
                        }
                        Err(e) => Err(self.err(&format!("checking {object}"), e)),
                    };
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
        let bytes_read = checks.iter().map(|(_, n)| n).sum();
        let bad: Vec<BadObject> = checks.into_iter().filter_map(|(b, _)| b).collect();
        Ok(VerifyReport {
            name: m.name.clone(),
            ok: bad.is_empty(),
            files_checked: m.files.len(),
            bytes_read,
            read_data: read_fraction > 0.0,
            bad,
            seconds: started.elapsed().as_secs_f64(),
        })
    }

    /// Download a backup's files into `dir` (created, must be empty),
    /// checking each against its SHA-256 before it is written.
    pub async fn download(&self, m: &BackupManifest, dir: &Path) -> Result<u64> {
        fs::create_dir_all(dir).map_err(io_err(dir.display()))?;
        let sizes: Vec<u64> = stream::iter(m.files.iter().cloned())
            .map(|f| async move {
                let body = self.get_object(&f.object()).await?;
                let path = dir.join(&f.name);
                tokio::task::spawn_blocking(move || {
                    let data = decode_object(&f, body)?;
                    write_synced(&path, &data)?;
                    Ok::<_, Error>(data.len() as u64)
                })
                .await
                .map_err(|e| Error::internal(format!("restore task failed: {e}")))?
            })
            .buffer_unordered(PARALLEL)
            .try_collect()
            .await?;
        crate::snapshot::fsync_dir(dir)?;
        Ok(sizes.iter().sum())
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
    let (encoding, body) = if name.ends_with(".sst") {
        (Encoding::Raw, Bytes::from(data.clone()))
    } else {
        let z = zstd::bulk::compress(&data, ZSTD_LEVEL)
            .map_err(io_err(format!("compressing {name}")))?;
        (Encoding::Zstd, Bytes::from(z))
    };
    Ok((
        BackupFile {
            name: name.to_string(),
            size: data.len() as u64,
            sha256: sha,
            crc32c,
            encoding,
            stored_size: body.len() as u64,
        },
        body,
    ))
}

/// Decode an object's bytes into the file, checking size and SHA-256.
fn decode_object(f: &BackupFile, body: Bytes) -> Result<Vec<u8>> {
    if body.len() as u64 != f.stored_size {
        return Err(Error::corruption(format!(
            "{}: object is {} bytes, the manifest says {}",
            f.name,
            body.len(),
            f.stored_size
        )));
    }
    let data = match f.encoding {
        Encoding::Raw => body.to_vec(),
        Encoding::Zstd => zstd::bulk::decompress(&body, f.size as usize + 1)
            .map_err(|e| Error::corruption(format!("{}: zstd: {e}", f.name)))?,
    };
    if data.len() as u64 != f.size {
        return Err(Error::corruption(format!(
            "{}: {} bytes, the manifest says {}",
            f.name,
            data.len(),
            f.size
        )));
    }
    let got = sha256(&data);
    if got != f.sha256 {
        return Err(Error::corruption(format!(
            "{}: SHA-256 {got} does not match the manifest's {}",
            f.name, f.sha256
        )));
    }
    Ok(data)
}

fn write_synced(path: &Path, data: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut f = fs::File::create(path).map_err(io_err(path.display()))?;
    f.write_all(data).map_err(io_err(path.display()))?;
    f.sync_all().map_err(io_err(path.display()))
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
