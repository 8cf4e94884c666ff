//! The RocksDB store: column families, key encoding, write options and the
//! durability policy. Plain blocking code, no actix: the persistence actor
//! calls it from its own threads.
//!
//! Column families:
//!
//! | CF         | key                          | value                         |
//! |------------|------------------------------|-------------------------------|
//! | `kv`       | user key (UTF-8)             | `Raw` codec + bytes           |
//! | `vectors`  | collection `\0` id           | `F32Le` codec + floats        |
//! | `metadata` | collection `\0` id           | `Json` codec + object         |
//! | `memory`   | namespace `\0` key           | `MemoryV1` codec (expiry+JSON)|
//! | `sys`      | `collection/<name>`, `ctr/…` | `Json` / u64 counters (merge) |

pub mod batch;
pub mod indexes;
mod kv;
pub mod layout;
mod slot;
mod vectors;

pub use kv::ScanPage;
pub use slot::{EngineSlot, Pass, Quiesced};
pub use vectors::{CollectionInfo, Metric, VectorInput, VectorOut};

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use rocksdb::{
    BlockBasedOptions, Cache, ColumnFamily, ColumnFamilyDescriptor, DBCompressionType,
    MergeOperands, Options, WriteBatch, WriteOptions, DB,
};
use serde::Serialize;

use crate::clock::{Clock, SystemClock};
use crate::codec;
use crate::config::{Compression, Config, Limits, SyncPolicy};
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
}

impl Cf {
    pub const ALL: [Cf; 6] = [
        Cf::Kv,
        Cf::Vectors,
        Cf::Metadata,
        Cf::Memory,
        Cf::Sys,
        Cf::Indexes,
    ];
    pub fn name(self) -> &'static str {
        match self {
            Cf::Kv => "kv",
            Cf::Vectors => "vectors",
            Cf::Metadata => "metadata",
            Cf::Memory => "memory",
            Cf::Sys => "sys",
            Cf::Indexes => "indexes",
        }
    }

    /// Families added after the first release: stores (and snapshots, and
    /// backups) made before lack them until opened read-write.
    pub fn added_later(self) -> bool {
        matches!(self, Cf::Indexes)
    }
}

/// Schema version stored in `sys` under `schema_version`.
pub const SCHEMA_VERSION: u32 = 1;

/// Operation counters (monotonic since open).
#[derive(Debug, Default)]
pub struct Counters {
    pub writes: AtomicU64,
    pub write_bytes: AtomicU64,
    pub reads: AtomicU64,
    pub read_bytes: AtomicU64,
    pub wal_syncs: AtomicU64,
}

/// Per-column-family figures from RocksDB properties.
#[derive(Debug, Clone, Serialize)]
pub struct CfStats {
    pub name: &'static str,
    pub estimate_num_keys: u64,
    pub sst_bytes: u64,
    pub live_data_bytes: u64,
    pub memtable_bytes: u64,
}

/// A point-in-time summary of the store.
#[derive(Debug, Clone, Serialize)]
pub struct StoreStats {
    pub path: String,
    pub sync: String,
    pub compression: String,
    pub latest_sequence: u64,
    pub size_bytes: u64,
    pub disk_bytes: u64,
    pub column_families: Vec<CfStats>,
    pub writes: u64,
    pub write_bytes: u64,
    pub reads: u64,
    pub read_bytes: u64,
    pub uptime_secs: u64,
}

/// The open store. Share it as `Arc<Engine>`.
pub struct Engine {
    db: DB,
    /// The options the store was opened with (they hold its statistics).
    db_opts: Options,
    path: PathBuf,
    sync: SyncPolicy,
    compression: Compression,
    limits: Limits,
    clock: Arc<dyn Clock>,
    counters: Counters,
    opened_at: Instant,
    /// Serialises schema changes (collection creation).
    pub(crate) ddl_lock: std::sync::Mutex<()>,
    /// Serialises index uploads, commits and deletes (see `indexes`).
    pub(crate) index_lock: std::sync::Mutex<()>,
    /// RocksDB's column family ids (as they appear in the WAL), by [`Cf`].
    pub(crate) cf_ids: [u32; Cf::ALL.len()],
    /// See [`Engine::history`]; fixed while the store is open.
    history: String,
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

/// Sum of u64 little-endian counters: the `sys` merge operator.
fn counter_merge(_key: &[u8], existing: Option<&[u8]>, ops: &MergeOperands) -> Option<Vec<u8>> {
    let read = |b: &[u8]| -> i64 {
        let mut a = [0u8; 8];
        if b.len() == 8 {
            a.copy_from_slice(b);
        }
        i64::from_le_bytes(a)
    };
    let mut total = existing.map(read).unwrap_or(0);
    for op in ops {
        total = total.saturating_add(read(op));
    }
    Some(total.to_le_bytes().to_vec())
}

/// Drop memory entries whose TTL has passed (physical removal of what reads
/// already hide). Uses the wall clock: compaction runs in RocksDB's threads.
fn ttl_filter(_level: u32, _key: &[u8], value: &[u8]) -> rocksdb::CompactionDecision {
    match codec::memory_expiry(value) {
        Some(exp) if exp > 0 && exp <= SystemClock.now_ms() => rocksdb::CompactionDecision::Remove,
        _ => rocksdb::CompactionDecision::Keep,
    }
}

fn cf_options(config: &Config, cache: &Cache, cf: Cf) -> Options {
    let r = &config.rocksdb;
    let mut opts = Options::default();
    let mut table = BlockBasedOptions::default();
    table.set_block_cache(cache);
    table.set_block_size(r.block_size_kb * 1024);
    if r.bloom_bits_per_key > 0.0 {
        table.set_bloom_filter(r.bloom_bits_per_key, false);
    }
    table.set_cache_index_and_filter_blocks(true);
    opts.set_block_based_table_factory(&table);
    opts.set_write_buffer_size(r.write_buffer_size_mb * 1024 * 1024);
    opts.set_max_write_buffer_number(r.max_write_buffer_number);
    opts.set_target_file_size_base(r.target_file_size_mb * 1024 * 1024);
    match config.compression() {
        Compression::Zstd => {
            opts.set_compression_type(DBCompressionType::Zstd);
            opts.set_compression_options(-14, r.zstd_level, 0, 0);
        }
        Compression::Lz4 => opts.set_compression_type(DBCompressionType::Lz4),
        Compression::None => opts.set_compression_type(DBCompressionType::None),
    }
    match cf {
        Cf::Memory => {
            opts.set_compaction_filter("ruvector-ttl", ttl_filter);
            // Rewrite memory SSTs at least daily so expired entries are
            // removed even when nothing else triggers a compaction.
            opts.set_periodic_compaction_seconds(86_400);
        }
        Cf::Sys => opts.set_merge_operator_associative("ruvector-counter", counter_merge),
        _ => {}
    }
    opts
}

/// DB options and column family descriptors for a store (live or snapshot).
pub(crate) fn descriptors(config: &Config) -> (Options, Vec<ColumnFamilyDescriptor>) {
    let mut db_opts = Options::default();
    db_opts.create_if_missing(true);
    db_opts.create_missing_column_families(true);
    db_opts.set_max_background_jobs(config.rocksdb.max_background_jobs);
    db_opts.set_bytes_per_sync(1 << 20);
    db_opts.set_keep_log_file_num(5);
    // Concurrent writers join one write group: one WAL write + one fsync.
    db_opts.set_enable_pipelined_write(false);
    // Followers of a write group sleep instead of spinning: with many
    // writer threads on few cores, spinning starves the group leader.
    db_opts.set_enable_write_thread_adaptive_yield(false);
    // Tickers and histograms for metrics (cache hit rate, WAL sync latency).
    db_opts.enable_statistics();
    // Keep obsolete WAL files (in db/archive/) for change data capture and
    // WAL archiving; RocksDB deletes them past either limit.
    db_opts.set_wal_ttl_seconds(config.cdc.wal_retention_secs);
    db_opts.set_wal_size_limit_mb(config.cdc.wal_retention_mb);
    let cache = Cache::new_lru_cache(config.rocksdb.block_cache_mb * 1024 * 1024);
    let cfs = Cf::ALL
        .iter()
        .map(|cf| ColumnFamilyDescriptor::new(cf.name(), cf_options(config, &cache, *cf)))
        .collect();
    (db_opts, cfs)
}

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

/// Open a store directory (a snapshot, a restored backup) read-only, with
/// the column families it has: a store written before a column family was
/// added (see [`Cf::added_later`]) has no such family until opened
/// read-write.
pub(crate) fn open_read_only(dir: &Path, config: &Config) -> Result<DB> {
    let (mut opts, cfs) = descriptors(config);
    opts.create_if_missing(false);
    let present = DB::list_cf(&opts, dir)?;
    let cfs: Vec<_> = cfs
        .into_iter()
        .filter(|d| present.iter().any(|p| p == d.name()))
        .collect();
    Ok(DB::open_cf_descriptors_read_only(&opts, dir, cfs, false)?)
}

/// Open a store directory read-only and read every key of every column
/// family with block checksums verified; returns the number of keys.
pub fn read_all_read_only(dir: &Path, config: &Config) -> Result<u64> {
    let db = open_read_only(dir, config)?;
    let mut keys = 0;
    for cf in Cf::ALL {
        let Some(handle) = db.cf_handle(cf.name()) else {
            if cf.added_later() {
                continue;
            }
            return Err(Error::corruption(format!(
                "column family {} is missing",
                cf.name()
            )));
        };
        let mut ro = rocksdb::ReadOptions::default();
        ro.set_verify_checksums(true);
        ro.fill_cache(false);
        let mut it = db.raw_iterator_cf_opt(handle, ro);
        it.seek_to_first();
        while it.valid() {
            keys += 1;
            it.next();
        }
        it.status()?;
    }
    Ok(keys)
}

impl Engine {
    /// Open (creating if needed) the store under `<data_dir>/db`.
    pub fn open(config: &Config, clock: Arc<dyn Clock>) -> Result<Arc<Engine>> {
        let path = config.data_dir.join("db");
        std::fs::create_dir_all(&path)
            .map_err(|e| Error::io(format!("cannot create {}: {e}", path.display())))?;
        let (db_opts, cfs) = descriptors(config);
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
            path,
            sync: config.sync_policy(),
            compression: config.compression(),
            limits: config.limits.clone(),
            clock,
            counters: Counters::default(),
            opened_at: Instant::now(),
            syncer: Default::default(),
            ddl_lock: Default::default(),
            index_lock: Default::default(),
            cf_ids: [0; Cf::ALL.len()],
            history: String::new(),
        });
        let mut engine = engine;
        let ids = engine.learn_cf_ids()?;
        match Arc::get_mut(&mut engine) {
            Some(e) => e.cf_ids = ids,
            None => return Err(Error::internal("engine shared before it was opened")),
        }
        engine.check_schema()?;
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

    /// This store's history id: random, set when the store is created and
    /// replaced whenever a restore rewinds it ([`fork_history`], on the
    /// closed store, so it never changes while open). Backups and the WAL
    /// archive carry it, so batches of two histories that share sequence
    /// numbers are never chained together.
    pub fn history(&self) -> &str {
        &self.history
    }

    /// Read the history id at open (creating it for a new store).
    fn load_history(&self) -> Result<String> {
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

    /// Bytes in the memtables of every column family (what a flush writes).
    pub fn memtable_bytes(&self) -> u64 {
        self.property_sum("rocksdb.cur-size-all-mem-tables")
    }

    /// Start our background threads (the `interval` WAL syncer).
    pub fn start_background(self: &Arc<Self>) {
        if let SyncPolicy::Interval(every) = self.sync {
            let stop = Arc::new(AtomicBool::new(false));
            if let Some(h) = spawn_wal_syncer(Arc::downgrade(self), every, stop.clone()) {
                *self.syncer.lock().unwrap_or_else(|p| p.into_inner()) = Some((stop, h));
            }
        }
    }

    /// Stop and join background threads of ours that hold the engine, so
    /// that dropping the last `Arc` really closes RocksDB on this thread.
    pub fn stop_background(&self) {
        let syncer = self.syncer.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some((stop, handle)) = syncer {
            stop.store(true, Ordering::SeqCst);
            handle.thread().unpark();
            let _ = handle.join();
        }
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

    /// An integer property summed over all column families.
    pub fn property_sum(&self, name: &str) -> u64 {
        Cf::ALL.iter().map(|cf| self.prop(*cf, name)).sum()
    }

    fn prop(&self, cf: Cf, name: &str) -> u64 {
        self.db
            .property_int_value_cf(self.cf(cf), name)
            .ok()
            .flatten()
            .unwrap_or(0)
    }

    /// Figures from RocksDB properties plus the counters.
    pub fn stats(&self) -> StoreStats {
        let column_families: Vec<CfStats> = Cf::ALL
            .iter()
            .map(|cf| CfStats {
                name: cf.name(),
                estimate_num_keys: self.prop(*cf, "rocksdb.estimate-num-keys"),
                sst_bytes: self.prop(*cf, "rocksdb.total-sst-files-size"),
                live_data_bytes: self.prop(*cf, "rocksdb.estimate-live-data-size"),
                memtable_bytes: self.prop(*cf, "rocksdb.cur-size-all-mem-tables"),
            })
            .collect();
        let size_bytes = column_families
            .iter()
            .map(|c| c.sst_bytes + c.memtable_bytes)
            .sum();
        StoreStats {
            path: self.path.display().to_string(),
            sync: self.sync.to_string(),
            compression: self.compression.as_str().to_string(),
            latest_sequence: self.db.latest_sequence_number(),
            size_bytes,
            disk_bytes: crate::fs::dir_size(&self.path),
            column_families,
            writes: self.counters.writes.load(Ordering::Relaxed),
            write_bytes: self.counters.write_bytes.load(Ordering::Relaxed),
            reads: self.counters.reads.load(Ordering::Relaxed),
            read_bytes: self.counters.read_bytes.load(Ordering::Relaxed),
            uptime_secs: self.opened_at.elapsed().as_secs(),
        }
    }
}

/// `sync = interval:<ms>`: fsync the WAL in the background until stopped
/// (see [`Engine::stop_background`]) or the engine is dropped.
fn spawn_wal_syncer(
    engine: Weak<Engine>,
    every: Duration,
    stop: Arc<AtomicBool>,
) -> Option<std::thread::JoinHandle<()>> {
    let spawned = std::thread::Builder::new()
        .name("wal-syncer".into())
        .spawn(move || loop {
            std::thread::park_timeout(every);
            if stop.load(Ordering::SeqCst) {
                return;
            }
            let Some(engine) = engine.upgrade() else {
                return;
            };
            if let Err(e) = engine.sync_wal() {
                tracing::error!(error = %e, "periodic WAL sync failed");
            }
        });
    match spawned {
        Ok(h) => Some(h),
        Err(e) => {
            tracing::error!(error = %e, "cannot start the WAL sync thread; WAL is synced only at flush");
            None
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    /// A store from before the `indexes` family (a snapshot or backup taken
    /// by an earlier version) verifies read-only and opens read-write.
    #[test]
    fn a_store_without_later_families_still_verifies_and_opens() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            data_dir: dir.path().to_path_buf(),
            ..Config::default()
        };
        let db_dir = dir.path().join("db");
        {
            let (opts, _) = descriptors(&config);
            let old: Vec<&str> = Cf::ALL
                .iter()
                .filter(|c| !c.added_later())
                .map(|c| c.name())
                .collect();
            let db = DB::open_cf(&opts, &db_dir, &old).unwrap();
            db.put_cf(db.cf_handle("kv").unwrap(), b"k", b"\x01v")
                .unwrap();
        }
        assert!(read_all_read_only(&db_dir, &config).unwrap() >= 1);
        let e = Engine::open(&config, Arc::new(ManualClock::new(0))).unwrap();
        assert_eq!(e.kv_get("k").unwrap().as_deref(), Some("v"));
        assert!(e.index_list().unwrap().0.is_empty());
    }
}
