//! Reading what a location holds: which backups exist, their manifests
//! (checked, and opened with the keyring when encrypted), the newest; and
//! the catalog (`backups/CATALOG`): every backup of the location with its
//! manifest's checksum, rewritten after each manifest is written or
//! deleted, so a lost manifest is noticed — a listing cannot show what is
//! gone.

use futures::TryStreamExt;
use object_store::path::Path as ObjPath;
use object_store::ObjectStoreExt;

use serde::{Deserialize, Serialize};

use super::manifest::check_name;
use super::{crypto, BackupManifest, Target};
use crate::error::{Error, Result};

impl Target {
    fn manifest_path(&self, name: &str) -> ObjPath {
        self.path(&format!("backups/{name}.json"))
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
                "backup {:?} is encrypted ({}, key {:?}); give its keyring (--keyring FILE, or [backup] keyring) to read it",
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

    /// The names of the manifests the location holds (`backups/<name>.json`).
    pub(super) async fn manifest_names(&self) -> Result<Vec<String>> {
        let prefix = self.path("backups");
        let metas: Vec<object_store::ObjectMeta> = self
            .store
            .list(Some(&prefix))
            .try_collect()
            .await
            .map_err(|e| self.err("listing backups", e))?;
        Ok(metas
            .iter()
            .filter_map(|m| {
                m.location
                    .filename()?
                    .strip_suffix(".json")
                    .map(str::to_string)
            })
            .collect())
    }

    /// Every backup, oldest first. A manifest that fails its checks is an
    /// error naming it (a listing never hides damage).
    pub async fn list(&self) -> Result<Vec<BackupManifest>> {
        let mut out = Vec::new();
        for name in self.manifest_names().await? {
            let m = self.manifest_clear(&name).await?;
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
}

/// The catalog object of a location.
pub const CATALOG: &str = "backups/CATALOG";

/// One backup the catalog records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogEntry {
    pub name: String,
    /// The manifest's own checksum.
    pub checksum: String,
}

impl Target {
    /// The catalog (None: no backup was recorded yet); an error names it
    /// when damaged.
    pub async fn catalog(&self) -> Result<Option<Vec<CatalogEntry>>> {
        match self.get_object(CATALOG).await {
            Ok(b) => {
                let v = super::marker::open(CATALOG, &b)?;
                serde_json::from_str(&v)
                    .map(Some)
                    .map_err(|e| Error::corruption(format!("{CATALOG} does not decode: {e}")))
            }
            Err(e) if e.kind == crate::error::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn write_catalog(&self, mut entries: Vec<CatalogEntry>) -> Result<()> {
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        entries.dedup_by(|a, b| a.name == b.name);
        let v = serde_json::to_string(&entries).map_err(|e| Error::internal(e.to_string()))?;
        self.put_object(CATALOG, bytes::Bytes::from(super::marker::seal(&v)))
            .await
    }

    /// The catalog to change: as stored, or — none yet (a location made
    /// before catalogs), or damaged — every manifest the location holds.
    async fn catalog_or_rebuilt(&self) -> Result<Vec<CatalogEntry>> {
        match self.catalog().await {
            Ok(Some(c)) => Ok(c),
            Ok(None) | Err(_) => {
                let mut out = Vec::new();
                for name in self.manifest_names().await? {
                    if let Ok(m) = self.manifest_clear(&name).await {
                        out.push(CatalogEntry {
                            name: m.name,
                            checksum: m.checksum,
                        });
                    }
                }
                Ok(out)
            }
        }
    }

    /// Record a backup whose manifest was just written.
    pub async fn catalog_add(&self, name: &str, checksum: &str) -> Result<()> {
        let mut entries = self.catalog_or_rebuilt().await?;
        entries.retain(|e| e.name != name);
        entries.push(CatalogEntry {
            name: name.to_string(),
            checksum: checksum.to_string(),
        });
        self.write_catalog(entries).await
    }

    /// Forget backups whose manifests were deleted (prune).
    pub async fn catalog_remove(&self, names: &[String]) -> Result<()> {
        let mut entries = self.catalog_or_rebuilt().await?;
        entries.retain(|e| !names.contains(&e.name));
        self.write_catalog(entries).await
    }
}
