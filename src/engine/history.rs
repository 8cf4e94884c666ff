//! The store's history id: random, made when the store is created,
//! replaced when a restore rewinds it, carried by backups and the WAL
//! archive so that two histories sharing sequence numbers never chain.

use std::path::Path;

use rocksdb::{WriteBatch, DB};

use super::options::descriptors;
use super::{Cf, Engine};
use crate::config::Config;
use crate::error::{Error, Result};

/// `sys` key of the store's history id.
const HISTORY_KEY: &[u8] = b"history_id";

fn new_history_id() -> Result<String> {
    Ok(crate::fs::random::<16>()?
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// Give the closed store in `dir` a new history id, synced: a restored
/// store's history forks from the original's at its sequence.
pub fn fork_history(dir: &Path, config: &Config) -> Result<String> {
    let (mut opts, cfs) = descriptors(config);
    opts.create_if_missing(false);
    let db = DB::open_cf_descriptors(&opts, dir, cfs)?;
    let sys = db
        .cf_handle(Cf::Sys.name())
        .ok_or_else(|| Error::corruption("column family sys is missing"))?;
    let id = new_history_id()?;
    let mut wo = rocksdb::WriteOptions::default();
    wo.set_sync(true);
    db.put_cf_opt(sys, HISTORY_KEY, id.as_bytes(), &wo)?;
    Ok(id)
}

impl Engine {
    /// This store's history id: random, set when the store is created and
    /// replaced whenever a restore rewinds it ([`fork_history`], on the
    /// closed store, so it never changes while open). Backups and the WAL
    /// archive carry it, so batches of two histories that share sequence
    /// numbers are never chained together.
    pub fn history(&self) -> &str {
        &self.history
    }

    /// Read the history id at open (creating it for a new store).
    pub(super) fn load_history(&self) -> Result<String> {
        let sys = self.cf(Cf::Sys);
        if let Some(v) = self.db.get_pinned_cf(sys, HISTORY_KEY)? {
            return Ok(String::from_utf8_lossy(&v).into_owned());
        }
        let id = new_history_id()?;
        let mut b = WriteBatch::default();
        b.put_cf(sys, HISTORY_KEY, id.as_bytes());
        self.write(b)?;
        Ok(id)
    }
}
