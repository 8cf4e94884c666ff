//! `cache-config`: the block cache and the memtables, resized at runtime
//! with no restart.
//!
//! - The block cache's capacity (RocksDB's `SetCapacity` on the one shared
//!   LRU cache), with the write buffer manager's limit at half of it, as at
//!   open (the memtables are charged to the cache).
//! - Every family's memtable size (`write_buffer_size`, through
//!   `SetOptions`; RocksDB rewrites its OPTIONS file).
//!
//! A choice is kept in `sys` (`memory/block-cache-mb`,
//! `memory/write-buffer-mb`) over the config, and applied again at open.

use std::sync::atomic::Ordering;

use rocksdb::WriteBatch;
use serde::Serialize;

use super::{Cf, Engine};
use crate::error::{Error, Result};

const CACHE_KEY: &str = "memory/block-cache-mb";
const WRITE_BUFFER_KEY: &str = "memory/write-buffer-mb";

/// The smallest block cache `cache-config` sets, MiB.
pub const MIN_CACHE_MB: usize = 8;
/// The largest memtable `cache-config` sets, MiB.
pub const MAX_WRITE_BUFFER_MB: usize = 4096;

/// The memory settings in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CacheConfig {
    pub block_cache_mb: usize,
    pub write_buffer_mb: usize,
}

fn parse_mb(raw: &[u8], key: &str) -> Result<usize> {
    std::str::from_utf8(raw)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| Error::corruption(format!("{key} in sys is not a number of MiB")))
}

impl Engine {
    pub fn cache_config(&self) -> CacheConfig {
        CacheConfig {
            block_cache_mb: self.memory.capacity.load(Ordering::Relaxed) >> 20,
            write_buffer_mb: self.memory.write_buffer.load(Ordering::Relaxed) >> 20,
        }
    }

    /// The block cache's capacity as RocksDB reports it, bytes.
    pub fn block_cache_capacity(&self) -> Option<u64> {
        // (A family's: the default family, which the store does not use,
        // has RocksDB's own small cache.)
        self.db
            .property_int_value_cf(self.cf(Cf::Kv), "rocksdb.block-cache-capacity")
            .ok()
            .flatten()
    }

    /// Resize the block cache and/or the memtables now and after a restart.
    /// The cache is at most half of `limits.memory-mb`.
    pub fn set_cache_config(
        &self,
        block_cache_mb: Option<usize>,
        write_buffer_mb: Option<usize>,
    ) -> Result<CacheConfig> {
        let max_cache = self.limits().memory_mb / 2;
        if let Some(mb) = block_cache_mb {
            if !(MIN_CACHE_MB..=max_cache).contains(&mb) {
                return Err(Error::invalid(format!(
                    "a block cache of {mb} MiB is out of range {MIN_CACHE_MB}..={max_cache} MiB \
                     (at most half of limits.memory-mb, {} MiB)",
                    self.limits().memory_mb
                )));
            }
        }
        if let Some(mb) = write_buffer_mb {
            if !(1..=MAX_WRITE_BUFFER_MB).contains(&mb) {
                return Err(Error::invalid(format!(
                    "a write buffer of {mb} MiB is out of range 1..={MAX_WRITE_BUFFER_MB} MiB"
                )));
            }
        }
        if block_cache_mb.is_none() && write_buffer_mb.is_none() {
            return Err(Error::invalid(
                "nothing to change: give --size (the block cache) and/or --write-buffer (each \
                 column family's memtable)",
            ));
        }
        self.apply_cache_config(block_cache_mb, write_buffer_mb)?;
        let mut b = WriteBatch::default();
        if let Some(mb) = block_cache_mb {
            b.put_cf(self.cf(Cf::Sys), CACHE_KEY, mb.to_string());
        }
        if let Some(mb) = write_buffer_mb {
            b.put_cf(self.cf(Cf::Sys), WRITE_BUFFER_KEY, mb.to_string());
        }
        self.write(b)?;
        Ok(self.cache_config())
    }

    fn apply_cache_config(
        &self,
        block_cache_mb: Option<usize>,
        write_buffer_mb: Option<usize>,
    ) -> Result<()> {
        if let Some(mb) = write_buffer_mb {
            let bytes = (mb << 20).to_string();
            for cf in Cf::ALL {
                self.db
                    .set_options_cf(self.cf(cf), &[("write_buffer_size", bytes.as_str())])
                    .map_err(|e| {
                        Error::internal(format!("setting the memtable size of {}: {e}", cf.name()))
                    })?;
            }
            self.memory.write_buffer.store(mb << 20, Ordering::Relaxed);
        }
        if let Some(mb) = block_cache_mb {
            let bytes = mb << 20;
            // The cache is shared by handle: resizing a clone resizes it.
            let mut cache = self.memory.cache.clone();
            cache.set_capacity(bytes);
            self.memory.write_buffers.set_buffer_size(bytes / 2);
            self.memory.capacity.store(bytes, Ordering::Relaxed);
        }
        Ok(())
    }

    /// At open: the sizes a `cache-config` chose, over the config's.
    pub(crate) fn apply_stored_cache_config(&self) -> Result<()> {
        // A value this build cannot read or apply must not keep the store
        // from opening: the config's size serves, with a warning.
        let read = |key: &str| -> Option<usize> {
            let raw = self.get(Cf::Sys, key.as_bytes()).ok().flatten()?;
            match parse_mb(&raw, key) {
                Ok(mb) => Some(mb),
                Err(e) => {
                    tracing::warn!(error = %e, "ignoring a stored cache size");
                    None
                }
            }
        };
        let cache =
            read(CACHE_KEY).filter(|mb| (MIN_CACHE_MB..=self.limits().memory_mb / 2).contains(mb));
        let write_buffer =
            read(WRITE_BUFFER_KEY).filter(|mb| (1..=MAX_WRITE_BUFFER_MB).contains(mb));
        if let Err(e) = self.apply_cache_config(cache, write_buffer) {
            tracing::warn!(error = %e, "cannot apply the stored cache sizes; the config's serve");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::config::Config;

    fn options_value(dir: &std::path::Path, name: &str) -> Vec<String> {
        // The newest OPTIONS file RocksDB wrote.
        let mut files: Vec<_> = std::fs::read_dir(dir.join("db"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("OPTIONS-")
            })
            .collect();
        files.sort();
        let text = std::fs::read_to_string(files.last().unwrap()).unwrap();
        text.lines()
            .filter_map(|l| {
                l.trim()
                    .strip_prefix(&format!("{name}="))
                    .map(str::to_string)
            })
            .collect()
    }

    #[test]
    fn the_cache_and_memtables_resize_now_and_after_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            data_dir: dir.path().to_path_buf(),
            sync: "never".into(),
            ..Config::default()
        };
        {
            let e = Engine::open(&config, std::sync::Arc::new(ManualClock::new(0))).unwrap();
            assert_eq!(
                e.cache_config().block_cache_mb,
                config.rocksdb.block_cache_mb
            );
            let c = e.set_cache_config(Some(96), Some(8)).unwrap();
            assert_eq!(
                c,
                CacheConfig {
                    block_cache_mb: 96,
                    write_buffer_mb: 8
                }
            );
            assert_eq!(e.memory().block_cache_capacity, 96 << 20);
            assert_eq!(
                e.block_cache_capacity(),
                Some(96 << 20),
                "RocksDB's own figure"
            );
            let sizes = options_value(dir.path(), "write_buffer_size");
            // Every family of the store (the default one, unused, keeps
            // RocksDB's own).
            let eight = (8u64 << 20).to_string();
            let resized = sizes.iter().filter(|s| **s == eight).count();
            assert_eq!(resized, Cf::ALL.len(), "{sizes:?}");
            // Out of range: refused, nothing changed.
            let err = e.set_cache_config(Some(100_000), None).unwrap_err();
            assert!(
                err.message.contains("at most half of limits.memory-mb"),
                "{}",
                err.message
            );
            assert!(e.set_cache_config(None, Some(0)).is_err());
            assert!(e.set_cache_config(None, None).is_err());
            assert_eq!(e.cache_config().block_cache_mb, 96);
        }
        let e = Engine::open(&config, std::sync::Arc::new(ManualClock::new(0))).unwrap();
        assert_eq!(
            e.cache_config(),
            CacheConfig {
                block_cache_mb: 96,
                write_buffer_mb: 8
            },
            "kept over the config"
        );
        assert_eq!(e.memory().block_cache_capacity, 96 << 20);
    }
}
