//! Backup encryption: AES-256-GCM (ring).
//!
//! - Each object is sealed under its own random 256-bit key; the keys live
//!   in the backup's file list, which is itself sealed under a random
//!   per-backup data key (DEK).
//! - The DEK is wrapped by a key-encryption key (KEK) named by a
//!   [`KeyRef`]: `{provider: "keyring", id}` today, so a KMS provider can be
//!   added later without changing the format.
//! - The manifest's clear fields (name, times, sequences) are the AAD of the
//!   sealed file list: changing any of them makes the manifest fail to open.
//! - The keyring is a JSON file that must be mode 0600; a new key is
//!   appended by rotation and old backups keep naming the key they used.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

pub const ALGORITHM: &str = "AES-256-GCM";

/// Which KEK wrapped a DEK.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRef {
    /// `keyring` (a local file); a KMS provider would add its own name.
    pub provider: String,
    pub id: String,
}

#[derive(Clone, Serialize, Deserialize)]
struct KeyEntry {
    id: String,
    /// base64 of 32 bytes.
    key: String,
    created_at: String,
}

#[derive(Clone, Serialize, Deserialize, Default)]
struct KeyringFile {
    keys: Vec<KeyEntry>,
}

/// The local keyring.
#[derive(Clone)]
pub struct Keyring {
    path: PathBuf,
    keys: Vec<(String, [u8; 32])>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<&str> = self.keys.iter().map(|(id, _)| id.as_str()).collect();
        f.debug_struct("Keyring")
            .field("path", &self.path)
            .field("ids", &ids)
            .finish()
    }
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

pub use crate::fs::random;

impl Keyring {
    /// Load a keyring; it must exist with mode 0600 (no group/other bits).
    pub fn load(path: &Path) -> Result<Keyring> {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(path)
            .map_err(|e| Error::invalid(format!("keyring {}: {e}", path.display())))?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(Error::invalid(format!(
                "keyring {} has mode {mode:o}; it must be 0600 (chmod 600 {})",
                path.display(),
                path.display()
            )));
        }
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::invalid(format!("keyring {}: {e}", path.display())))?;
        let file: KeyringFile = serde_json::from_str(&text)
            .map_err(|e| Error::invalid(format!("keyring {}: not valid: {e}", path.display())))?;
        let mut keys = Vec::new();
        for k in file.keys {
            let bytes = b64().decode(k.key.trim()).map_err(|e| {
                Error::invalid(format!("keyring {}: key {:?}: {e}", path.display(), k.id))
            })?;
            let key: [u8; 32] = bytes.try_into().map_err(|_| {
                Error::invalid(format!(
                    "keyring {}: key {:?} is not 32 bytes",
                    path.display(),
                    k.id
                ))
            })?;
            keys.push((k.id, key));
        }
        if keys.is_empty() {
            return Err(Error::invalid(format!(
                "keyring {} holds no keys",
                path.display()
            )));
        }
        Ok(Keyring {
            path: path.to_path_buf(),
            keys,
        })
    }

    /// Load, or create with one new key (mode 0600) if the file is missing.
    pub fn load_or_create(path: &Path, now: &str) -> Result<Keyring> {
        if !path.exists() {
            Self::add_key(path, now)?;
            tracing::warn!(keyring = %path.display(), "created a backup keyring; keep a copy of it somewhere else, encrypted backups cannot be read without it");
        }
        Self::load(path)
    }

    /// Append a new key (rotation); new backups use it, old ones keep theirs.
    pub fn add_key(path: &Path, now: &str) -> Result<String> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut file: KeyringFile = if path.exists() {
            Self::load(path)?;
            serde_json::from_str(
                &std::fs::read_to_string(path).map_err(|e| Error::io(e.to_string()))?,
            )
            .map_err(|e| Error::invalid(e.to_string()))?
        } else {
            KeyringFile::default()
        };
        let id = format!("k{}", file.keys.len() + 1);
        file.keys.push(KeyEntry {
            id: id.clone(),
            key: b64().encode(random::<32>()?),
            created_at: now.to_string(),
        });
        let body = serde_json::to_vec_pretty(&file).map_err(|e| Error::internal(e.to_string()))?;
        let tmp = path.with_extension("tmp");
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| Error::io(format!("{}: {e}", tmp.display())))?;
        f.write_all(&body)
            .and_then(|_| f.sync_all())
            .map_err(|e| Error::io(format!("{}: {e}", tmp.display())))?;
        std::fs::rename(&tmp, path).map_err(|e| Error::io(format!("{}: {e}", path.display())))?;
        Ok(id)
    }

    /// The key new backups use (the newest).
    pub fn current(&self) -> (KeyRef, &[u8; 32]) {
        let (id, key) = self
            .keys
            .last()
            .unwrap_or_else(|| unreachable!("load refuses an empty keyring"));
        (
            KeyRef {
                provider: "keyring".into(),
                id: id.clone(),
            },
            key,
        )
    }

    pub fn get(&self, r: &KeyRef) -> Result<&[u8; 32]> {
        if r.provider != "keyring" {
            return Err(Error::invalid(format!(
                "key provider {:?} is not supported by this build (only keyring)",
                r.provider
            )));
        }
        self.keys
            .iter()
            .find(|(id, _)| *id == r.id)
            .map(|(_, k)| k)
            .ok_or_else(|| {
                Error::invalid(format!(
                    "key {:?} is not in the keyring {}: this backup was encrypted with another keyring",
                    r.id,
                    self.path.display()
                ))
            })
    }
}

/// `nonce || ciphertext || tag`.
pub fn seal(key: &[u8; 32], aad: &[u8], plain: &[u8]) -> Result<Vec<u8>> {
    let k = LessSafeKey::new(
        UnboundKey::new(&AES_256_GCM, key).map_err(|_| Error::internal("AES key setup failed"))?,
    );
    let nonce_bytes = random::<{ NONCE_LEN }>()?;
    let mut buf = plain.to_vec();
    k.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce_bytes),
        Aad::from(aad),
        &mut buf,
    )
    .map_err(|_| Error::internal("AES-GCM seal failed"))?;
    let mut out = Vec::with_capacity(NONCE_LEN + buf.len());
    out.extend_from_slice(&nonce_bytes);
    out.extend_from_slice(&buf);
    Ok(out)
}

/// Open what [`seal`] made; `what` names it in the error.
pub fn open(key: &[u8; 32], aad: &[u8], sealed: &[u8], what: &str) -> Result<Vec<u8>> {
    if sealed.len() < NONCE_LEN + 16 {
        return Err(Error::corruption(format!(
            "{what}: too short to be encrypted data"
        )));
    }
    let k = LessSafeKey::new(
        UnboundKey::new(&AES_256_GCM, key).map_err(|_| Error::internal("AES key setup failed"))?,
    );
    let (n, ct) = sealed.split_at(NONCE_LEN);
    let mut nonce = [0u8; NONCE_LEN];
    nonce.copy_from_slice(n);
    let mut buf = ct.to_vec();
    let plain = k
        .open_in_place(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad),
            &mut buf,
        )
        .map_err(|_| {
            Error::corruption(format!(
                "{what}: authentication failed (wrong key, or the data was altered)"
            ))
        })?;
    Ok(plain.to_vec())
}

/// A new random data key, and it wrapped by `kek` (base64) for `label` —
/// the backup or object it protects, bound in as associated data so a
/// wrapped key cannot be moved to another.
pub fn new_data_key(kek: &[u8; 32], label: &str) -> Result<([u8; 32], String)> {
    let dek = random::<32>()?;
    let wrapped = seal(kek, format!("dek:{label}").as_bytes(), &dek)?;
    Ok((dek, encode_b64(&wrapped)))
}

/// Unwrap what [`new_data_key`] made; `what` names it in the error.
pub fn unwrap_data_key(kek: &[u8; 32], label: &str, wrapped: &str, what: &str) -> Result<[u8; 32]> {
    let dek = open(
        kek,
        format!("dek:{label}").as_bytes(),
        &decode_b64(wrapped, what)?,
        &format!("{what}: data key"),
    )?;
    dek.try_into()
        .map_err(|_| Error::corruption(format!("{what}: data key is not 32 bytes")))
}

pub fn encode_b64(b: &[u8]) -> String {
    b64().encode(b)
}

pub fn decode_b64(s: &str, what: &str) -> Result<Vec<u8>> {
    b64()
        .decode(s)
        .map_err(|e| Error::corruption(format!("{what}: not base64: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_and_wrong_key_or_aad_fails() {
        let k = random::<32>().unwrap();
        let s = seal(&k, b"aad", b"secret value").unwrap();
        assert!(!s.windows(6).any(|w| w == b"secret"));
        assert_eq!(open(&k, b"aad", &s, "x").unwrap(), b"secret value");
        let other = random::<32>().unwrap();
        assert!(open(&other, b"aad", &s, "x")
            .unwrap_err()
            .message
            .contains("wrong key"));
        assert!(open(&k, b"AAD", &s, "x").is_err());
    }

    #[test]
    fn keyring_permissions_are_enforced() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("keyring.json");
        let r = Keyring::load_or_create(&p, "now").unwrap();
        assert_eq!(r.current().0.id, "k1");
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        Keyring::add_key(&p, "later").unwrap();
        assert_eq!(Keyring::load(&p).unwrap().current().0.id, "k2");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(Keyring::load(&p).unwrap_err().message.contains("0600"));
    }
}
