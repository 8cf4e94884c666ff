//! How a store directory is opened: the RocksDB options of the database
//! and of each column family (the `sys` counter merge operator, the
//! `memory` TTL compaction filter), and read-only opens of store
//! directories other than the live one (snapshots, restored backups).

use std::path::Path;

use rocksdb::{
    BlockBasedOptions, Cache, ColumnFamilyDescriptor, DBCompressionType, MergeOperands, Options, DB,
};

use super::Cf;
use crate::clock::{Clock, SystemClock};
use crate::codec;
use crate::config::{Compression, Config};
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
}
