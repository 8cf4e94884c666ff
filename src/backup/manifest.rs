//! The manifest of a backup (`backups/<name>.json`): every file with its
//! size, SHA-256, CRC32C, encoding and object; the parent, base and
//! sequence range; and the manifest's own SHA-256, so a damaged manifest is
//! detected, not trusted. An encrypted backup keeps its file list sealed
//! ([`EncryptionInfo`]).

use serde::{Deserialize, Serialize};

use super::{crypto, sha256, wal};
use crate::error::{Error, Result};

pub const FORMAT_VERSION: u32 = 1;

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
    pub(super) fn aad(&self) -> Result<Vec<u8>> {
        let mut m = self.clone();
        m.files = Vec::new();
        m.checksum = String::new();
        if let Some(e) = m.encryption.as_mut() {
            e.sealed_files = String::new();
        }
        serde_json::to_vec(&m).map_err(|e| Error::internal(e.to_string()))
    }

    pub(super) fn compute_checksum(&self) -> Result<String> {
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
    pub(super) fn check_files(&self) -> Result<()> {
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

pub(super) fn check_name(name: &str) -> Result<()> {
    crate::snapshot::check_name(name)
        .map_err(|e| Error::invalid(e.message.replace("snapshot", "backup")))
}
