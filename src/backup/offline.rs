//! The backup operations a bare machine runs without a daemon: the CLI
//! calls these itself when recovering (`backup restore --to DIR`), and for
//! `backup list` / `backup verify` when no daemon serves the data dir. They
//! read the backup location and write only the restore's target directory;
//! none of them opens the configured data dir's store. Credentials come from
//! the environment, the keyring from the parameters, `[backup] keyring` or
//! the config's data dir.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{json, Value};

use super::locations::Locations;
use super::params::{ListParams, RestoreParams, VerifyParams};
use super::progress::Progress;
use super::restore::to_data_dir;
use super::service;
use crate::config::Config;
use crate::error::{Error, Result};

fn locations(config: Arc<Config>, progress: Arc<Progress>, keyring: Option<&str>) -> Locations {
    Locations::new(config, progress).with_keyring(keyring.map(PathBuf::from))
}

/// `backup restore --to DIR` (`progress` is drawn by the caller).
pub async fn restore(
    config: Arc<Config>,
    p: RestoreParams,
    progress: Arc<Progress>,
) -> Result<Value> {
    let to =
        p.to.clone()
            .ok_or_else(|| Error::invalid("a restore without a daemon needs --to DIR"))?;
    let loc = locations(config, progress.clone(), p.keyring.as_deref());
    progress.begin("backup_restore");
    let r = to_data_dir(&loc, &p, Path::new(&to), None).await;
    progress.end();
    r
}

/// `backup list`.
pub async fn list(config: Arc<Config>, p: ListParams) -> Result<Value> {
    let loc = locations(config, Arc::default(), p.keyring.as_deref());
    service::list(&loc, &p).await
}

/// `backup verify`.
pub async fn verify(config: Arc<Config>, p: VerifyParams) -> Result<Value> {
    let loc = locations(config, Arc::default(), p.keyring.as_deref());
    Ok(json!(service::verify(&loc, &p).await?))
}
