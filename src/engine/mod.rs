//! The RocksDB store: column families, key encoding, write options and the
//! durability policy. Plain blocking code, no actix: the persistence actor
//! calls it from its own threads.
//!
//! Column families:
//!
//! | CF         | key                          | value                         |
//! |------------|------------------------------|-------------------------------|
//! | `kv`       | user key (UTF-8)             | `Raw` codec + bytes           |
//! | `vectors`  | collection `\0` id           | `F32Le` floats or `Quantized` codes |
//! | `originals`| collection `\0` id           | `F32Le` floats of a quantized vector (kept) |
//! | `metadata` | collection `\0` id           | `Json` codec + object         |
//! | `memory`   | namespace `\0` key           | `MemoryV1` codec (expiry+JSON)|
//! | `sys`      | `collection/<name>`, `ctr/…` | `Json` / u64 counters (merge) |
//! | `indexes`  | `m\0`/`s\0` name, `u\0` upload, `c\0` blob `\0` offset | `Json` records / `Raw` chunks |
//! | `series`   | `m\0` chunk start (ms, u64 BE) | `Series` chunk of the metrics history (appended by merges) |
//!
//! This file holds the [`Engine`] itself: open, the commit path (every
//! batch with its commit mark), point reads, flush. Beside it: `options`
//! (RocksDB options, read-only opens of other store directories),
//! `history` (the history id), `stats` (counters and figures),
//! `background` (the interval WAL syncer), `slot` (the slot and its gate),
//! `batch` (WAL batch decoding and commit marks), and one file per data
//! family: `kv`, `vectors`, `indexes`, `series`.

mod background;
pub mod batch;
pub mod cache;
pub mod compression;
mod history;
pub mod indexes;
mod kv;
pub mod layout;
mod options;
pub mod series;
mod slot;
mod stats;
mod vectors;

pub use history::fork_history;
pub use kv::ScanPage;
pub use options::read_all_read_only;
pub(crate) use options::{descriptors, open_read_only};
pub use slot::{EngineSlot, Pass, Quiesced};
pub use stats::{CfStats, Counters, StoreMemory, StoreStats};
pub use vectors::{
    decode_count, decode_ref, CollectionInfo, DedupFigures, Hit, Metric, Originals, ReEncode,
    SearchOut, SearchRequest, Step, Storage, VectorFormat, VectorInput, VectorOut, VectorSample,
    DEFAULT_CALIBRATION_SAMPLE, MAX_K,
};

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use rocksdb::{ColumnFamily, Options, WriteBatch, WriteOptions, DB};

use crate::clock::Clock;
use crate::config::{Config, Limits, SyncPolicy};
use crate::error::{Error, Result};

/// The column families, in creation order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cf {
    Kv,
    Vectors,
    Metadata,
    Memory,
    Sys,
    /// Index files (HNSW, IVF, …) stored for index agents.
    Indexes,
    /// The f32 vectors of quantized collections that keep them.
    Originals,
    /// The daemon's metrics history.
    Series,
}

impl Cf {
    pub const ALL: [Cf; 8] = [
        Cf::Kv,
        Cf::Vectors,
        Cf::Metadata,
        Cf::Memory,
        Cf::Sys,
        Cf::Indexes,
        Cf::Originals,
        Cf::Series,
    ];
    pub fn name(self) -> &'static str {
        match self {
            Cf::Kv => "kv",
            Cf::Vectors => "vectors",
            Cf::Metadata => "metadata",
            Cf::Memory => "memory",
            Cf::Sys => "sys",
            Cf::Indexes => "indexes",
            Cf::Originals => "originals",
            Cf::Series => "series",
        }
    }

    /// Families added after the first release: stores (and snapshots, and
    /// backups) made before lack them until opened read-write.
    pub fn added_later(self) -> bool {
        matches!(self, Cf::Indexes | Cf::Originals | Cf::Series)
    }
}

/// Schema version stored in `sys` under `schema_version`.
pub const SCHEMA_VERSION: u32 = 1;

/// The open store. Share it as `Arc<Engine>`.
pub struct Engine {
    db: DB,
    /// The options the store was opened with (they hold its statistics).
    db_opts: Options,
    /// Its block cache and write buffer manager (for their figures).
    memory: options::LiveMemory,
    path: PathBuf,
    sync: SyncPolicy,
    /// The block compression of each column family.
    compression: compression::Specs,
    /// SST data block size, bytes (`rocksdb.block-size-kb`).
    block_size: usize,
    limits: Limits,
    clock: Arc<dyn Clock>,
    counters: Counters,
    opened_at: Instant,
    /// Serialises schema changes (collection creation, calibration, and
    /// the upserts of a collection waiting for its calibration).
    /// Upserts and deletes of a collection hold it shared (exclusive while
    /// the collection awaits its calibration or is being re-encoded), so a
    /// descriptor change never interleaves with a write that read the
    /// descriptor before it.
    pub(crate) ddl_lock: std::sync::RwLock<()>,
    /// Calibration records of quantized collections, read once.
    quantizers: vectors::Quantizers,
    /// Exact-search indexes of collections, kept in memory.
    search: vectors::SearchCache,
    /// Stripe locks of dedup collections' writes (see `vectors::dedup`).
    dedup_locks: vectors::DedupLocks,
    /// Serialises index uploads, commits and deletes (see `indexes`).
    pub(crate) index_lock: std::sync::Mutex<()>,
    /// RocksDB's column family ids (as they appear in the WAL), by [`Cf`].
    pub(crate) cf_ids: [u32; Cf::ALL.len()],
    /// See [`Engine::history`]; fixed while the store is open.
    history: String,
    /// The open chunk of the metrics history (see `series`).
    series: series::SeriesState,
    /// `metrics-history-retention-secs`, in ms.
    series_retention_ms: i64,
    /// The `interval` WAL syncer thread and its stop flag.
    syncer: std::sync::Mutex<Option<(Arc<AtomicBool>, std::thread::JoinHandle<()>)>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("path", &self.path)
            .field("sync", &self.sync)
            .finish()
    }
}

impl Engine {
    /// Open (creating if needed) the store under `<data_dir>/db`.
    pub fn open(config: &Config, clock: Arc<dyn Clock>) -> Result<Arc<Engine>> {
        let path = config.data_dir.join("db");
        std::fs::create_dir_all(&path)
            .map_err(|e| Error::io(format!("cannot create {}: {e}", path.display())))?;
        let (db_opts, cfs, memory) = options::live_descriptors(config);
        let db = DB::open_cf_descriptors(&db_opts, &path, cfs).map_err(|e| {
            let err = Error::from(e);
            if err.message.contains("/LOCK") || err.message.contains("lock hold") {
                Error::unavailable(format!(
                    "the store at {} is locked by another process (is a daemon already running for this data dir?): {}",
                    path.display(),
                    err.message
                ))
            } else {
                err.context(format!("opening the store at {}", path.display()))
            }
        })?;
        let engine = Arc::new(Engine {
            db,
            db_opts,
            memory,
            path,
            sync: config.sync_policy(),
            compression: compression::Specs::from_config(config),
            block_size: config.rocksdb.block_size_kb * 1024,
            limits: config.limits.clone(),
            clock,
            counters: Counters::default(),
            opened_at: Instant::now(),
            syncer: Default::default(),
            ddl_lock: Default::default(),
            quantizers: Default::default(),
            search: Default::default(),
            dedup_locks: Default::default(),
            index_lock: Default::default(),
            cf_ids: [0; Cf::ALL.len()],
            history: String::new(),
            series: Default::default(),
            series_retention_ms: i64::try_from(config.metrics_history_retention_secs)
                .unwrap_or(i64::MAX)
                .saturating_mul(1000),
        });
        let mut engine = engine;
        let ids = engine.learn_cf_ids()?;
        match Arc::get_mut(&mut engine) {
            Some(e) => e.cf_ids = ids,
            None => return Err(Error::internal("engine shared before it was opened")),
        }
        engine.check_schema()?;
        engine.apply_compression()?;
        engine.apply_stored_cache_config()?;
        let history = engine.load_history()?;
        match Arc::get_mut(&mut engine) {
            Some(e) => e.history = history,
            None => return Err(Error::internal("engine shared before it was opened")),
        }
        engine.start_background();
        Ok(engine)
    }

    /// The column family ids RocksDB assigned, read from a probe batch
    /// (the Rust binding does not expose them).
    fn learn_cf_ids(&self) -> Result<[u32; Cf::ALL.len()]> {
        let mut probe = WriteBatch::default();
        for cf in Cf::ALL {
            probe.put_cf(self.cf(cf), b"", b"");
        }
        let parsed = batch::parse_batch(probe.data())?;
        let mut ids = [0u32; Cf::ALL.len()];
        for (i, r) in parsed.records.iter().enumerate() {
            match r {
                batch::Record::Put { cf, .. } if i < ids.len() => ids[i] = *cf,
                _ => {
                    return Err(Error::internal(
                        "probe batch did not decode as one put per column family",
                    ))
                }
            }
        }
        Ok(ids)
    }

    /// The [`Cf`] of a RocksDB column family id (None: `default`).
    pub fn cf_of(&self, id: u32) -> Option<Cf> {
        Cf::ALL
            .iter()
            .zip(self.cf_ids)
            .find(|(_, i)| *i == id)
            .map(|(cf, _)| *cf)
    }

    fn check_schema(&self) -> Result<()> {
        let sys = self.cf(Cf::Sys);
        match self.db.get_pinned_cf(sys, b"schema_version")? {
            None => {
                let mut b = WriteBatch::default();
                b.put_cf(sys, b"schema_version", SCHEMA_VERSION.to_le_bytes());
                self.write(b)
            }
            Some(v) if v.as_ref() == SCHEMA_VERSION.to_le_bytes() => Ok(()),
            Some(v) => Err(Error::corruption(format!(
                "store schema version {:?} is not supported by this build (expects {SCHEMA_VERSION})",
                v.as_ref()
            ))),
        }
    }

    pub fn cf(&self, cf: Cf) -> &ColumnFamily {
        // Every CF is created at open; a missing handle cannot happen after a
        // successful open, so this indexes a fixed set.
        self.db
            .cf_handle(cf.name())
            .unwrap_or_else(|| unreachable!("column family {} opened at start", cf.name()))
    }

    pub fn db(&self) -> &DB {
        &self.db
    }
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }
    /// SST data block size, bytes.
    pub fn block_size(&self) -> usize {
        self.block_size
    }
    pub fn limits(&self) -> &Limits {
        &self.limits
    }
    pub fn sync_policy(&self) -> SyncPolicy {
        self.sync
    }
    pub fn counters(&self) -> &Counters {
        &self.counters
    }
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Apply a batch atomically under the durability policy. With
    /// `sync = always` the call returns only after the WAL is fsynced;
    /// concurrent callers are grouped by RocksDB's write thread into one
    /// WAL write and one fsync (group commit).
    ///
    /// Every batch carries a commit mark (WAL log data, see [`batch`]):
    /// its commit time and which puts overwrite an existing key.
    pub fn write(&self, mut batch: WriteBatch) -> Result<()> {
        let mark = batch::mark_for(self, &batch, self.clock.now_ms())?;
        batch.put_log_data(mark.encode());
        let bytes = batch.size_in_bytes() as u64;
        let mut wo = WriteOptions::default();
        wo.set_sync(self.sync == SyncPolicy::Always);
        self.db.write_opt(batch, &wo)?;
        self.counters.writes.fetch_add(1, Ordering::Relaxed);
        self.counters
            .write_bytes
            .fetch_add(bytes, Ordering::Relaxed);
        Ok(())
    }

    /// Write without fsync regardless of policy (bookkeeping such as access
    /// counters, where losing the last increments in a crash is acceptable).
    pub fn write_relaxed(&self, mut batch: WriteBatch) -> Result<()> {
        let mark = batch::mark_for(self, &batch, self.clock.now_ms())?;
        batch.put_log_data(mark.encode());
        let mut wo = WriteOptions::default();
        wo.set_sync(false);
        self.db.write_opt(batch, &wo)?;
        Ok(())
    }

    pub fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.get_with(cf, key, |v| Ok(v.to_vec()))
    }

    /// Point read that decodes straight from RocksDB's pinned buffer.
    pub fn get_with<R>(
        &self,
        cf: Cf,
        key: &[u8],
        decode: impl FnOnce(&[u8]) -> Result<R>,
    ) -> Result<Option<R>> {
        let v = self.db.get_pinned_cf(self.cf(cf), key)?;
        self.counters.reads.fetch_add(1, Ordering::Relaxed);
        match v {
            None => Ok(None),
            Some(v) => {
                self.counters
                    .read_bytes
                    .fetch_add(v.len() as u64, Ordering::Relaxed);
                decode(&v).map(Some)
            }
        }
    }

    /// Read a u64 counter kept in `sys` by the merge operator.
    pub fn counter(&self, key: &[u8]) -> Result<i64> {
        Ok(self
            .db
            .get_pinned_cf(self.cf(Cf::Sys), key)?
            .map(|v| {
                let mut a = [0u8; 8];
                if v.len() == 8 {
                    a.copy_from_slice(&v);
                }
                i64::from_le_bytes(a)
            })
            .unwrap_or(0))
    }

    /// Read every block of every live SST file (data, index, filter and
    /// meta blocks) and check its checksum: RocksDB's `VerifyChecksum`,
    /// which the `rocksdb` crate does not wrap. The error names the file.
    pub fn verify_checksums(&self) -> Result<()> {
        use rocksdb::AsRawPtr;
        /// Read options of the C API, destroyed on drop.
        struct RawReadOptions(*mut librocksdb_sys::rocksdb_readoptions_t);
        impl Drop for RawReadOptions {
            fn drop(&mut self) {
                // SAFETY: created by rocksdb_readoptions_create, freed once.
                unsafe { librocksdb_sys::rocksdb_readoptions_destroy(self.0) }
            }
        }
        let mut err: *mut std::ffi::c_char = std::ptr::null_mut();
        // SAFETY: the options are created and freed here; the database
        // outlives the call; `err` is left null or set to a string that we
        // copy and free.
        unsafe {
            let ro = RawReadOptions(librocksdb_sys::rocksdb_readoptions_create());
            // A check should not evict what serving reads keep cached.
            librocksdb_sys::rocksdb_readoptions_set_fill_cache(ro.0, 0);
            librocksdb_sys::rocksdb_verify_checksum_with_options(
                self.db.as_raw_ptr(),
                ro.0,
                &mut err,
            );
            if err.is_null() {
                return Ok(());
            }
            let msg = std::ffi::CStr::from_ptr(err).to_string_lossy().into_owned();
            librocksdb_sys::rocksdb_free(err.cast());
            Err(Error::corruption(format!("rocksdb: {msg}")))
        }
    }

    /// Barrier: everything acknowledged so far is in the WAL on disk and the
    /// memtables are flushed to SST files.
    pub fn flush(&self) -> Result<()> {
        self.db.flush_wal(true)?;
        self.counters.wal_syncs.fetch_add(1, Ordering::Relaxed);
        let cfs: Vec<&ColumnFamily> = Cf::ALL.iter().map(|c| self.cf(*c)).collect();
        self.db
            .flush_cfs_opt(&cfs, &rocksdb::FlushOptions::default())?;
        Ok(())
    }

    /// fsync the WAL only.
    pub fn sync_wal(&self) -> Result<()> {
        self.db.flush_wal(true)?;
        self.counters.wal_syncs.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Compact one column family fully (runs compaction filters, e.g. TTL).
    pub fn compact(&self, cf: Cf) {
        self.db
            .compact_range_cf(self.cf(cf), None::<&[u8]>, None::<&[u8]>);
    }

    pub fn db_options(&self) -> &Options {
        &self.db_opts
    }
}

/// Key of an item inside a named group: `group \0 item`.
pub fn composite_key(group: &str, item: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(group.len() + 1 + item.len());
    k.extend_from_slice(group.as_bytes());
    k.push(0);
    k.extend_from_slice(item.as_bytes());
    k
}

/// Prefix of every item of a group: `group \0`.
pub fn group_prefix(group: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(group.len() + 1);
    k.extend_from_slice(group.as_bytes());
    k.push(0);
    k
}

#[cfg(test)]
pub(crate) mod testutil {
    use super::*;
    use crate::clock::ManualClock;

    pub fn open_temp(clock: ManualClock) -> (tempfile::TempDir, Arc<Engine>) {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            data_dir: dir.path().to_path_buf(),
            sync: "never".into(),
            ..Config::default()
        };
        let engine = Engine::open(&config, Arc::new(clock)).unwrap();
        (dir, engine)
    }
}
