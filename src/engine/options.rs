//! How a store directory is opened: the RocksDB options of the database
//! and of each column family (the `sys` counter merge operator, the
//! `memory` TTL compaction filter), the live store's memory (one block
//! cache with the memtables charged to it), and the small, bounded opens of
//! store directories other than the live one (snapshots, restored backups).

use std::path::Path;

use rocksdb::{
    BlockBasedOptions, Cache, ColumnFamilyDescriptor, MergeOperands, Options, WriteBufferManager,
    DB,
};

use super::Cf;
use crate::clock::{Clock, SystemClock};
use crate::codec;
use crate::config::Config;
use crate::error::{Error, Result};

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
    // Index and filter blocks live in the block cache (bounded by it), the
    // L0 ones pinned there (every read consults them).
    table.set_cache_index_and_filter_blocks(true);
    table.set_pin_l0_filter_and_index_blocks_in_cache(true);
    opts.set_block_based_table_factory(&table);
    // Erase the cached blocks of a table file once compaction makes it
    // obsolete, instead of leaving them to age out of the LRU: a store that
    // rewrites a fixed key space otherwise fills the whole cache with
    // blocks no read can reach (seen: 118 MiB cached of ~20 MB live after
    // 11 minutes of the soak). 300 is the value RocksDB means to make its
    // default; it stops trying on a file once most of its blocks are found
    // already gone.
    set_uncache_aggressiveness(&mut opts, UNCACHE_AGGRESSIVENESS);
    opts.set_write_buffer_size(r.write_buffer_size_mb * 1024 * 1024);
    opts.set_max_write_buffer_number(r.max_write_buffer_number);
    opts.set_target_file_size_base(r.target_file_size_mb * 1024 * 1024);
    super::compression::set_open_options(&mut opts, &config.compression_of(cf.name()));
    match cf {
        Cf::Memory => {
            opts.set_compaction_filter("ruvector-ttl", ttl_filter);
            // Rewrite memory SSTs at least daily so expired entries are
            // removed even when nothing else triggers a compaction.
            opts.set_periodic_compaction_seconds(86_400);
        }
        Cf::Sys => opts.set_merge_operator_associative("ruvector-counter", counter_merge),
        Cf::Series => {
            opts.set_merge_operator_associative("ruvector-append", super::series::concat_merge)
        }
        _ => {}
    }
    opts
}

/// See `ColumnFamilyOptions::uncache_aggressiveness` in RocksDB's
/// `options.h`: 300 keeps erasing a dead file's blocks while about 5% or
/// more of the attempts find one.
const UNCACHE_AGGRESSIVENESS: u32 = 300;

/// The rocksdb crate does not wrap this column family option.
fn set_uncache_aggressiveness(opts: &mut Options, value: u32) {
    use rocksdb::AsRawPtr;
    // SAFETY: `opts` owns a live `rocksdb_options_t` for the duration of
    // the call; the setter only stores the integer.
    unsafe {
        librocksdb_sys::rocksdb_options_set_uncache_aggressiveness(opts.as_raw_ptr(), value);
    }
}

/// The block cache of a store opened for anything but serving (a snapshot
/// verified, a backup restored or drilled, a history forked): small, and
/// its own, so nothing is shared with the live store.
const SCRATCH_CACHE_BYTES: usize = 8 << 20;
/// Table files a scratch open keeps open (each holds a reader in memory).
const SCRATCH_MAX_OPEN_FILES: i32 = 256;
/// Memtables of a scratch open, all families together.
const SCRATCH_WRITE_BUFFERS: usize = 32 << 20;

/// The options every open shares.
fn db_options(config: &Config) -> Options {
    let mut db_opts = Options::default();
    db_opts.create_if_missing(true);
    db_opts.create_missing_column_families(true);
    db_opts.set_max_background_jobs(config.rocksdb.max_background_jobs);
    let limit = config.maintenance.max_mb_per_sec;
    if limit > 0 {
        // Flush and compaction writes share it (RocksDB's default: 100 ms
        // refills, flushes served before compactions).
        db_opts.set_ratelimiter((limit * 1_000_000) as i64, 100_000, 10);
    }
    db_opts.set_bytes_per_sync(1 << 20);
    db_opts.set_keep_log_file_num(5);
    // Concurrent writers join one write group: one WAL write + one fsync.
    db_opts.set_enable_pipelined_write(false);
    // Followers of a write group sleep instead of spinning: with many
    // writer threads on few cores, spinning starves the group leader.
    db_opts.set_enable_write_thread_adaptive_yield(false);
    // Keep obsolete WAL files (in db/archive/) for change data capture and
    // WAL archiving; RocksDB deletes them past either limit.
    db_opts.set_wal_ttl_seconds(config.cdc.wal_retention_secs);
    db_opts.set_wal_size_limit_mb(config.cdc.wal_retention_mb);
    db_opts
}

fn cfs(config: &Config, cache: &Cache) -> Vec<ColumnFamilyDescriptor> {
    Cf::ALL
        .iter()
        .map(|cf| ColumnFamilyDescriptor::new(cf.name(), cf_options(config, cache, *cf)))
        .collect()
}

/// DB options and column family descriptors for a store that is not the
/// live one (a snapshot, a restored backup, a drill): an 8 MiB block cache
/// of its own, at most 256 open table files, 32 MiB of memtables, no
/// statistics.
pub(crate) fn descriptors(config: &Config) -> (Options, Vec<ColumnFamilyDescriptor>) {
    let mut db_opts = db_options(config);
    db_opts.set_max_open_files(SCRATCH_MAX_OPEN_FILES);
    // Opens that write (a PITR replay, a history fork) flush their
    // memtables at 32 MiB in all, not at every family's full write buffers.
    db_opts.set_write_buffer_manager(&WriteBufferManager::new_write_buffer_manager(
        SCRATCH_WRITE_BUFFERS,
        false,
    ));
    let cache = Cache::new_lru_cache(SCRATCH_CACHE_BYTES);
    (db_opts, cfs(config, &cache))
}

/// The live store's memory: one block cache, and the write buffer manager
/// that charges every memtable to it (so blocks, index and filter blocks
/// and memtables share one limit, `rocksdb.block-cache-mb` — not a strict
/// one: an insert over capacity evicts rather than fails, and a memtable is
/// never refused), flushing when memtables reach half of it.
pub(crate) struct LiveMemory {
    pub(crate) cache: Cache,
    /// The cache's capacity, bytes (`cache-config` changes it).
    pub(crate) capacity: std::sync::atomic::AtomicUsize,
    pub(crate) write_buffers: WriteBufferManager,
    /// Each family's memtable size, bytes.
    pub(crate) write_buffer: std::sync::atomic::AtomicUsize,
}

/// DB options, column families and memory of the live store.
pub(crate) fn live_descriptors(
    config: &Config,
) -> (Options, Vec<ColumnFamilyDescriptor>, LiveMemory) {
    let mut db_opts = db_options(config);
    // Tickers and histograms for metrics (cache hit rate, WAL sync latency).
    db_opts.enable_statistics();
    let cache_bytes = config.rocksdb.block_cache_mb * 1024 * 1024;
    let cache = Cache::new_lru_cache(cache_bytes);
    let write_buffers = WriteBufferManager::new_write_buffer_manager_with_cache(
        cache_bytes / 2,
        false,
        cache.clone(),
    );
    db_opts.set_write_buffer_manager(&write_buffers);
    let cfs = cfs(config, &cache);
    (
        db_opts,
        cfs,
        LiveMemory {
            cache,
            capacity: cache_bytes.into(),
            write_buffers,
            write_buffer: (config.rocksdb.write_buffer_size_mb * 1024 * 1024).into(),
        },
    )
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::engine::Engine;
    use std::sync::Arc;

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

    /// Compaction takes the blocks of the files it replaces out of the
    /// block cache: without it they stay until the LRU pushes them out, and
    /// a store rewriting a fixed key space fills the whole cache with them.
    #[test]
    fn blocks_of_compacted_away_files_leave_the_cache() {
        let (_dir, e) = crate::engine::testutil::open_temp(ManualClock::new(0));
        // Two overlapping files in L0 (~10 MB each), so compaction must
        // rewrite both.
        for round in 0..2u64 {
            let entries: Vec<(String, String)> = (0..20_000u64)
                .map(|i| {
                    let seed = (i * 2 + round).wrapping_mul(0x9E37_79B9_7F4A_7C15);
                    let value: String =
                        (0..32).map(|j| format!("{:x}", seed >> (j % 60))).collect();
                    (format!("key-{i:05}"), value)
                })
                .collect();
            e.kv_put_many(&entries).unwrap();
            e.flush().unwrap();
        }
        for i in 0..20_000 {
            assert!(e.kv_get(&format!("key-{i:05}")).unwrap().is_some());
        }
        let m = e.memory();
        let cached = m.block_cache.saturating_sub(m.memtables);
        assert!(cached > 4_000_000, "reads cached {cached} bytes");
        e.compact(Cf::Kv);
        let m = e.memory();
        let after = m.block_cache.saturating_sub(m.memtables);
        assert!(
            after * 4 < cached,
            "{after} bytes still cached after compaction, of {cached} before"
        );
    }
}
