//! How the backup code opens a location: the default destination and the
//! keyring come from the config, every target reports to one progress, and
//! an optional layer wraps every object store (the tests' fault injection).
//! The daemon's backup service has one; a restore on a bare machine (the
//! CLI, no daemon) makes its own.

use std::path::PathBuf;
use std::sync::Arc;

use object_store::ObjectStore;

use super::progress::Progress;
use super::{crypto, Target};
use crate::clock::{iso_ms, Clock, SystemClock};
use crate::config::Config;
use crate::error::{Error, Result};

/// A layer over every object store opened (the tests' fault injection; a
/// metrics store would go here too).
pub type StoreLayer = Arc<dyn Fn(Arc<dyn ObjectStore>) -> Arc<dyn ObjectStore> + Send + Sync>;

/// Opens locations for one service (or one offline restore).
#[derive(Clone)]
pub struct Locations {
    pub(super) config: Arc<Config>,
    pub(super) progress: Arc<Progress>,
    pub(super) layer: Option<StoreLayer>,
    /// A keyring file given for this run (default: the config's).
    pub(super) keyring: Option<PathBuf>,
}

impl Locations {
    pub fn new(config: Arc<Config>, progress: Arc<Progress>) -> Self {
        Locations {
            config,
            progress,
            layer: None,
            keyring: None,
        }
    }

    /// Use this keyring file instead of the configured one.
    pub fn with_keyring(mut self, path: Option<PathBuf>) -> Self {
        self.keyring = path;
        self
    }

    /// Wrap every store opened (e.g. a fault-injecting wrapper).
    pub fn with_layer(mut self, layer: Option<StoreLayer>) -> Self {
        self.layer = layer;
        self
    }

    /// The keyring file: given, else `[backup] keyring`, else
    /// `<data-dir>/backup-keyring.json`.
    pub fn keyring_path(&self) -> PathBuf {
        self.keyring
            .clone()
            .or_else(|| self.config.backup.keyring.clone())
            .unwrap_or_else(|| self.config.data_dir.join("backup-keyring.json"))
    }

    /// Open a location to write to, through the layer if there is one.
    pub fn open(&self, url: &str) -> Result<Target> {
        self.open_for(url, true)
    }

    /// Open a location (created when missing only if `create`).
    fn open_for(&self, url: &str, create: bool) -> Result<Target> {
        let mut t = Target::open_for(url, create)?;
        if let Some(layer) = &self.layer {
            t.store = layer(t.store);
        }
        Ok(t)
    }

    /// A target to write to (default: the configured destination, created
    /// when missing) with the keyring attached when there is one — created
    /// when `create_keyring` (an encrypted backup is about to be made) —
    /// and the shared progress.
    pub fn target_with(&self, url: Option<&str>, create_keyring: bool) -> Result<Target> {
        self.target_for(url, true, create_keyring)
    }

    fn target_for(&self, url: Option<&str>, create: bool, create_keyring: bool) -> Result<Target> {
        let url = match url {
            Some(u) => u.to_string(),
            None => default_destination(&self.config)?,
        };
        let path = self.keyring_path();
        let keyring = if create_keyring {
            Some(crypto::Keyring::load_or_create(
                &path,
                &iso_ms(SystemClock.now_ms()),
            )?)
        } else if path.exists() {
            Some(crypto::Keyring::load(&path)?)
        } else if self.keyring.is_some() {
            return Err(Error::invalid(format!(
                "the keyring {} does not exist",
                path.display()
            )));
        } else {
            None
        };
        Ok(self
            .open_for(&url, create)?
            .with_keyring(keyring.map(Arc::new))
            .with_progress(self.progress.clone()))
    }

    /// A target to read (list, verify, restore, prune, drill): a missing
    /// local location is "not found", not created.
    pub fn target(&self, url: Option<&str>) -> Result<Target> {
        self.target_for(url, false, false)
    }
}

/// The default destination: `[backup] destination`, else
/// `<data-dir>/backups` (absolute).
pub fn default_destination(config: &Config) -> Result<String> {
    if let Some(d) = &config.backup.destination {
        return Ok(d.clone());
    }
    let dir = std::path::absolute(config.data_dir.join("backups"))
        .map_err(|e| Error::io(format!("resolving the backup directory: {e}")))?;
    Ok(format!("file://{}", dir.display()))
}
