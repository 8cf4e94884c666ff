//! Point-in-time snapshots: RocksDB checkpoints (hard links, so creation
//! costs O(files), not O(bytes)) under `<data>/snapshots/<name>/`, each
//! completed by a manifest written last. Plain blocking code; the snapshot
//! actor drives it.
//!
//! A snapshot is born in `.tmp-<name>/`: checkpoint, checksums, manifest
//! (`snapshot.json`, fsynced), then one rename makes it visible. A directory
//! without a readable manifest is never listed or restored, and is removed
//! when the store is opened. Deletion renames to `.deleting-<name>` first.

pub mod params;
pub mod restore;
pub mod retention;
mod service;

pub use service::Service;

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::clock::iso_ms;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::fs::{crc32c_file, fsync_dir, write_atomic};

pub const MANIFEST: &str = "snapshot.json";
pub const VERIFY_RECORD: &str = "verify.json";
pub const FORMAT_VERSION: u32 = 1;
const CHECKSUM_CACHE: &str = ".sst-checksums.json";
const MAX_NAME: usize = 128;

/// Why a snapshot was taken.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    Default,
    schemars::JsonSchema,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    #[default]
    Manual,
    Scheduled,
    // Taken automatically by a restore: the state it replaced.
    Undo,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    pub name: String,
    pub size: u64,
    /// CRC32C of the whole file, lower-case hex.
    pub crc32c: String,
}

/// `snapshot.json`: everything needed to check the snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format_version: u32,
    pub name: String,
    pub kind: Kind,
    pub created_at: String,
    pub created_at_ms: i64,
    /// Latest RocksDB sequence number when the checkpoint was cut (an upper
    /// bound: writes racing the checkpoint may be counted but not included).
    pub latest_sequence: u64,
    pub files: Vec<FileEntry>,
    pub total_bytes: u64,
}

/// `verify.json`, written beside the manifest by each verification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerifyRecord {
    pub verified_at: String,
    pub verified_at_ms: i64,
    pub ok: bool,
    pub bad_files: Vec<BadFile>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BadFile {
    pub file: String,
    pub problem: String,
}

/// One row of `snapshot list`.
#[derive(Debug, Clone, Serialize)]
pub struct SnapshotInfo {
    pub name: String,
    pub kind: Kind,
    pub created_at: String,
    pub created_at_ms: i64,
    pub latest_sequence: u64,
    pub files: usize,
    pub total_bytes: u64,
    /// Bytes held by this snapshot alone (files linked nowhere else: not by
    /// the live store, not by another snapshot) — its incremental cost.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exclusive_bytes: Option<u64>,
    pub verified: Option<bool>,
    pub verified_at: Option<String>,
}

/// Result of `snapshot verify`.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    pub name: String,
    pub ok: bool,
    pub files_checked: usize,
    pub bytes_checked: u64,
    pub keys_read: u64,
    pub bad_files: Vec<BadFile>,
    pub seconds: f64,
    pub mb_per_s: f64,
}

/// Names: 1..=128 bytes of letters, digits, `-`, `_`, `.`, `:`; not starting
/// with `.`; so never a path separator or `..`.
pub fn check_name(name: &str) -> Result<()> {
    if name.is_empty() || name.len() > MAX_NAME {
        return Err(Error::invalid(format!(
            "snapshot name {name:?} must be 1..={MAX_NAME} bytes"
        )));
    }
    if name.starts_with('.') {
        return Err(Error::invalid(format!(
            "snapshot name {name:?} must not start with '.'"
        )));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':')))
    {
        return Err(Error::invalid(format!(
            "snapshot name {name:?} contains {c:?}; use letters, digits, '-', '_', '.' and ':'"
        )));
    }
    Ok(())
}

/// Default name: `snap-YYYYMMDD-HHMMSS-mmm` (UTC).
pub fn default_name(prefix: &str, now_ms: i64) -> String {
    let t = chrono::DateTime::from_timestamp_millis(now_ms).unwrap_or_default();
    format!("{prefix}-{}", t.format("%Y%m%d-%H%M%S-%3f"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
struct FileId {
    ino: u64,
    size: u64,
    mtime_ns: i64,
}

fn io_err(what: impl std::fmt::Display) -> impl FnOnce(std::io::Error) -> Error {
    move |e| Error::io(format!("{what}: {e}"))
}

/// The snapshot directory of one data dir.
#[derive(Debug)]
pub struct SnapshotStore {
    root: PathBuf,
    /// CRC32C of immutable SST files, keyed by file name and identity, so a
    /// snapshot only reads the SST files that are new since the last one.
    crc_cache: Mutex<HashMap<String, (FileId, u32)>>,
    /// Serialises create/delete/restore/prune.
    pub(crate) mutate: Mutex<()>,
}

impl SnapshotStore {
    /// Open `<data>/snapshots`, removing leftovers of interrupted work.
    pub fn open(data_dir: &Path) -> Result<SnapshotStore> {
        let root = data_dir.join("snapshots");
        fs::create_dir_all(&root).map_err(io_err(format!("creating {}", root.display())))?;
        let store = SnapshotStore {
            crc_cache: Mutex::new(load_cache(&root)),
            root,
            mutate: Mutex::new(()),
        };
        store.clean_incomplete()?;
        Ok(store)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn dir(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// Remove `.tmp-*` / `.deleting-*` directories and directories without
    /// a manifest file (never complete snapshots). A manifest that exists
    /// but cannot be read or parsed is left alone with a warning: it may be
    /// from a newer version, or damaged, and deleting it is not ours to do.
    pub fn clean_incomplete(&self) -> Result<Vec<String>> {
        let mut removed = Vec::new();
        for entry in fs::read_dir(&self.root).map_err(io_err(self.root.display()))? {
            let entry = entry.map_err(io_err(self.root.display()))?;
            if !entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                continue;
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            if name.starts_with('.') || !path.join(MANIFEST).exists() {
                tracing::warn!(dir = %path.display(), "removing incomplete snapshot");
                fs::remove_dir_all(&path)
                    .map_err(io_err(format!("removing {}", path.display())))?;
                removed.push(name);
            } else if let Err(e) = read_manifest(&path) {
                tracing::warn!(dir = %path.display(), error = %e, "snapshot with an unreadable manifest: not listed, not restored, kept");
            }
        }
        if !removed.is_empty() {
            fsync_dir(&self.root)?;
        }
        Ok(removed)
    }

    fn checksum(&self, path: &Path, file_name: &str) -> Result<(u64, u32)> {
        let md = fs::metadata(path).map_err(io_err(path.display()))?;
        let id = FileId {
            ino: md.ino(),
            size: md.len(),
            mtime_ns: md.mtime() * 1_000_000_000 + md.mtime_nsec(),
        };
        let cacheable = file_name.ends_with(".sst");
        if cacheable {
            let cache = self.crc_cache.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((cid, crc)) = cache.get(file_name) {
                if *cid == id {
                    return Ok((md.len(), *crc));
                }
            }
        }
        let (crc, n) = crc32c_file(path).map_err(io_err(format!("reading {}", path.display())))?;
        if cacheable {
            self.crc_cache
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(file_name.to_string(), (id, crc));
        }
        Ok((n, crc))
    }

    /// Checksum live SST files not yet in the cache (so the next snapshot is
    /// fast), and drop cache entries of files that no longer exist.
    pub fn warm_cache(&self, engine: &Engine) -> Result<usize> {
        let live = engine.db().live_files()?;
        let mut n = 0;
        for f in &live {
            let name = f.name.trim_start_matches('/').to_string();
            let path = engine.path().join(&name);
            let known = self
                .crc_cache
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .contains_key(&name);
            if !known && path.exists() {
                self.checksum(&path, &name)?;
                n += 1;
            }
        }
        let live_names: std::collections::HashSet<String> = live
            .iter()
            .map(|f| f.name.trim_start_matches('/').to_string())
            .collect();
        let snapshot_names = self.all_file_names()?;
        self.crc_cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|k, _| live_names.contains(k) || snapshot_names.contains(k));
        self.save_cache()?;
        Ok(n)
    }

    fn all_file_names(&self) -> Result<std::collections::HashSet<String>> {
        Ok(self
            .manifests()?
            .into_iter()
            .flat_map(|m| m.files.into_iter().map(|f| f.name))
            .collect())
    }

    fn save_cache(&self) -> Result<()> {
        let cache = self
            .crc_cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let body = serde_json::to_vec(&cache.into_iter().collect::<Vec<_>>())
            .map_err(|e| Error::internal(e.to_string()))?;
        write_atomic(&self.root.join(CHECKSUM_CACHE), &body)
    }

    /// Cut a checkpoint of the live store and make it a snapshot.
    pub fn create(&self, engine: &Engine, name: &str, kind: Kind, now_ms: i64) -> Result<Manifest> {
        check_name(name)?;
        let _g = self.mutate.lock().unwrap_or_else(|p| p.into_inner());
        let final_dir = self.dir(name);
        if final_dir.exists() {
            return Err(Error::exists(format!("snapshot {name:?} already exists")));
        }
        let tmp = self.root.join(format!(".tmp-{name}"));
        if tmp.exists() {
            fs::remove_dir_all(&tmp).map_err(io_err(tmp.display()))?;
        }
        let made = self.build(engine, name, kind, now_ms, &tmp);
        if made.is_err() {
            let _ = fs::remove_dir_all(&tmp);
            return made;
        }
        fs::rename(&tmp, &final_dir).map_err(io_err(format!("publishing snapshot {name}")))?;
        fsync_dir(&self.root)?;
        let _ = self.save_cache();
        made
    }

    /// Checkpoint, checksums and manifest in `tmp`.
    fn build(
        &self,
        engine: &Engine,
        name: &str,
        kind: Kind,
        now_ms: i64,
        tmp: &Path,
    ) -> Result<Manifest> {
        let checkpoint = rocksdb::checkpoint::Checkpoint::new(engine.db())?;
        checkpoint
            .create_checkpoint(tmp)
            .map_err(|e| Error::from(e).context(format!("checkpoint into {}", tmp.display())))?;
        // The checkpoint's own sequence (a read-only open of it), not the
        // live store's, which may already be past it.
        // (Default options: opening to read the sequence uses none of them.)
        let latest_sequence =
            crate::engine::open_read_only(tmp, &crate::config::Config::default())?
                .latest_sequence_number();
        let mut files = Vec::new();
        let mut total = 0;
        let mut names: Vec<String> = fs::read_dir(tmp)
            .map_err(io_err(tmp.display()))?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        for file in names {
            let path = tmp.join(&file);
            if !file.ends_with(".sst") {
                // Copied (not linked) by the checkpoint: make them durable.
                fs::File::open(&path)
                    .and_then(|f| f.sync_all())
                    .map_err(io_err(path.display()))?;
            }
            let (size, crc) = self.checksum(&path, &file)?;
            total += size;
            files.push(FileEntry {
                name: file,
                size,
                crc32c: format!("{crc:08x}"),
            });
        }
        let manifest = Manifest {
            format_version: FORMAT_VERSION,
            name: name.to_string(),
            kind,
            created_at: iso_ms(now_ms),
            created_at_ms: now_ms,
            latest_sequence,
            files,
            total_bytes: total,
        };
        let body =
            serde_json::to_vec_pretty(&manifest).map_err(|e| Error::internal(e.to_string()))?;
        write_atomic(&tmp.join(MANIFEST), &body)?;
        Ok(manifest)
    }

    /// Complete snapshots, oldest first.
    pub fn manifests(&self) -> Result<Vec<Manifest>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.root).map_err(io_err(self.root.display()))? {
            let entry = entry.map_err(io_err(self.root.display()))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || !entry.path().is_dir() {
                continue;
            }
            if let Ok(m) = read_manifest(&entry.path()) {
                out.push(m);
            }
        }
        out.sort_by(|a, b| {
            a.created_at_ms
                .cmp(&b.created_at_ms)
                .then(a.name.cmp(&b.name))
        });
        Ok(out)
    }

    pub fn manifest(&self, name: &str) -> Result<Manifest> {
        check_name(name)?;
        let dir = self.dir(name);
        if !dir.is_dir() {
            return Err(Error::not_found(format!(
                "snapshot {name:?} does not exist (see snapshot list)"
            )));
        }
        read_manifest(&dir)
    }

    pub fn verify_record(&self, name: &str) -> Option<VerifyRecord> {
        fs::read(self.dir(name).join(VERIFY_RECORD))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
    }

    pub fn list(&self, with_size: bool) -> Result<Vec<SnapshotInfo>> {
        let mut out = Vec::new();
        for m in self.manifests()? {
            let dir = self.dir(&m.name);
            let exclusive_bytes = if with_size {
                let mut n = 0;
                for f in &m.files {
                    if let Ok(md) = fs::metadata(dir.join(&f.name)) {
                        if md.nlink() == 1 {
                            n += md.len();
                        }
                    }
                }
                Some(n)
            } else {
                None
            };
            let v = self.verify_record(&m.name);
            out.push(SnapshotInfo {
                kind: m.kind,
                created_at: m.created_at.clone(),
                created_at_ms: m.created_at_ms,
                latest_sequence: m.latest_sequence,
                files: m.files.len(),
                total_bytes: m.total_bytes,
                exclusive_bytes,
                verified: v.as_ref().map(|v| v.ok),
                verified_at: v.map(|v| v.verified_at),
                name: m.name,
            });
        }
        Ok(out)
    }

    pub fn delete(&self, name: &str, confirm: bool) -> Result<Manifest> {
        let m = self.manifest(name)?;
        if !confirm {
            return Err(Error::invalid(format!(
                "deleting snapshot {name:?} needs --confirm (confirm: true); nothing was deleted"
            )));
        }
        let _g = self.mutate.lock().unwrap_or_else(|p| p.into_inner());
        self.delete_locked(name)?;
        Ok(m)
    }

    pub(crate) fn delete_locked(&self, name: &str) -> Result<()> {
        let dir = self.dir(name);
        let doomed = self.root.join(format!(".deleting-{name}"));
        fs::rename(&dir, &doomed).map_err(io_err(format!("deleting snapshot {name}")))?;
        fsync_dir(&self.root)?;
        fs::remove_dir_all(&doomed).map_err(io_err(doomed.display()))?;
        Ok(())
    }

    /// Check every file against the manifest (size and CRC32C), then open
    /// the snapshot read-only and read every key of every column family.
    pub fn verify(
        &self,
        name: &str,
        config: &crate::config::Config,
        now_ms: i64,
    ) -> Result<VerifyReport> {
        let m = self.manifest(name)?;
        let dir = self.dir(name);
        let t = Instant::now();
        let mut bad = Vec::new();
        let mut bytes = 0;
        for f in &m.files {
            let path = dir.join(&f.name);
            match crc32c_file(&path) {
                Err(e) => bad.push(BadFile {
                    file: f.name.clone(),
                    problem: format!("unreadable: {e}"),
                }),
                Ok((crc, n)) => {
                    bytes += n;
                    if n != f.size {
                        bad.push(BadFile {
                            file: f.name.clone(),
                            problem: format!("size {n}, manifest says {}", f.size),
                        });
                    } else if format!("{crc:08x}") != f.crc32c {
                        bad.push(BadFile {
                            file: f.name.clone(),
                            problem: format!("crc32c {crc:08x}, manifest says {}", f.crc32c),
                        });
                    }
                }
            }
        }
        let mut keys = 0;
        if bad.is_empty() {
            match crate::engine::read_all_read_only(&dir, config) {
                Ok(n) => keys = n,
                Err(e) => bad.push(BadFile {
                    file: "(store)".into(),
                    problem: format!("opening read-only and reading every key failed: {e}"),
                }),
            }
        }
        let secs = t.elapsed().as_secs_f64();
        let record = VerifyRecord {
            verified_at: iso_ms(now_ms),
            verified_at_ms: now_ms,
            ok: bad.is_empty(),
            bad_files: bad.clone(),
        };
        if let Ok(body) = serde_json::to_vec_pretty(&record) {
            // The record is advisory; failing to write it does not change the verdict.
            let _ = write_atomic(&dir.join(VERIFY_RECORD), &body);
        }
        Ok(VerifyReport {
            name: name.to_string(),
            ok: bad.is_empty(),
            files_checked: m.files.len(),
            bytes_checked: bytes,
            keys_read: keys,
            bad_files: bad,
            seconds: secs,
            mb_per_s: bytes as f64 / 1e6 / secs.max(1e-9),
        })
    }

    /// Drop cached checksums (a restore starts a new file lineage).
    pub fn forget_checksums(&self) {
        self.crc_cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        let _ = self.save_cache();
    }
}

fn read_manifest(dir: &Path) -> Result<Manifest> {
    let path = dir.join(MANIFEST);
    let bytes = fs::read(&path).map_err(io_err(path.display()))?;
    let m: Manifest = serde_json::from_slice(&bytes).map_err(|e| {
        Error::corruption(format!("{} is not a valid manifest: {e}", path.display()))
    })?;
    if m.format_version != FORMAT_VERSION {
        return Err(Error::corruption(format!(
            "{}: format version {} is not supported (expects {FORMAT_VERSION})",
            path.display(),
            m.format_version
        )));
    }
    Ok(m)
}

fn load_cache(root: &Path) -> HashMap<String, (FileId, u32)> {
    fs::read(root.join(CHECKSUM_CACHE))
        .ok()
        .and_then(|b| serde_json::from_slice::<Vec<(String, (FileId, u32))>>(&b).ok())
        .map(|v| v.into_iter().collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests;
