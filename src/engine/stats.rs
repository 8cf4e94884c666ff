//! What the store reports about itself: operation counters, RocksDB
//! properties per column family, and the summary `storage_stats` shows.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

use super::{Cf, Engine};

/// Operation counters (monotonic since open).
#[derive(Debug, Default)]
pub struct Counters {
    pub writes: AtomicU64,
    pub write_bytes: AtomicU64,
    pub reads: AtomicU64,
    pub read_bytes: AtomicU64,
    pub wal_syncs: AtomicU64,
    /// Vector values that fell outside their collection's calibrated
    /// ranges and were clipped (`ruvector_storage_vectors_clipped_total`).
    pub vectors_clipped: AtomicU64,
}

/// Per-column-family figures from RocksDB properties.
#[derive(Debug, Clone, Serialize)]
pub struct CfStats {
    pub name: &'static str,
    pub estimate_num_keys: u64,
    pub sst_bytes: u64,
    pub live_data_bytes: u64,
    pub memtable_bytes: u64,
    /// Keys and values of its table files as written, and their data
    /// blocks as stored (see [`super::compression::Figures`]).
    pub raw_bytes: u64,
    pub raw_value_bytes: u64,
    pub stored_bytes: u64,
}

/// A point-in-time summary of the store.
#[derive(Debug, Clone, Serialize)]
pub struct StoreStats {
    pub path: String,
    pub sync: String,
    /// The block compression of each column family (`compress` sets it).
    pub compression: std::collections::BTreeMap<&'static str, String>,
    pub latest_sequence: u64,
    pub size_bytes: u64,
    pub disk_bytes: u64,
    pub column_families: Vec<CfStats>,
    pub writes: u64,
    pub write_bytes: u64,
    pub vectors_clipped: u64,
    pub reads: u64,
    pub read_bytes: u64,
    pub uptime_secs: u64,
}

/// The live store's memory, bytes (RocksDB's own accounting).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct StoreMemory {
    /// The block cache: data, index and filter blocks, plus the memtables
    /// charged to it.
    pub block_cache: u64,
    /// Of it, pinned (in use by readers, or pinned L0 index and filters).
    pub block_cache_pinned: u64,
    /// Its capacity.
    pub block_cache_capacity: u64,
    /// Memtables of every column family (active, immutable and pinned).
    pub memtables: u64,
    /// Table readers outside the block cache.
    pub table_readers: u64,
    /// In-memory copies of collections for `vector_search`.
    pub search_cache: u64,
}

impl Engine {
    /// Count values clipped by quantization.
    pub(crate) fn count_clipped(&self, n: usize) {
        if n > 0 {
            self.counters
                .vectors_clipped
                .fetch_add(n as u64, Ordering::Relaxed);
        }
    }

    /// Where the store's memory is.
    pub fn memory(&self) -> StoreMemory {
        StoreMemory {
            block_cache: self.memory.cache.get_usage() as u64,
            block_cache_pinned: self.memory.cache.get_pinned_usage() as u64,
            block_cache_capacity: self.memory.capacity.load(Ordering::Relaxed) as u64,
            memtables: self.memory.write_buffers.get_usage() as u64,
            table_readers: self.property_sum("rocksdb.estimate-table-readers-mem"),
            search_cache: self.search_cache_bytes(),
        }
    }

    /// Bytes in the memtables of every column family (what a flush writes).
    pub fn memtable_bytes(&self) -> u64 {
        self.property_sum("rocksdb.cur-size-all-mem-tables")
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
            .map(|cf| (cf, self.compression_figures(*cf)))
            .map(|(cf, f)| CfStats {
                name: cf.name(),
                estimate_num_keys: self.prop(*cf, "rocksdb.estimate-num-keys"),
                sst_bytes: self.prop(*cf, "rocksdb.total-sst-files-size"),
                live_data_bytes: self.prop(*cf, "rocksdb.estimate-live-data-size"),
                memtable_bytes: self.prop(*cf, "rocksdb.cur-size-all-mem-tables"),
                raw_bytes: f.raw_bytes,
                raw_value_bytes: f.raw_value_bytes,
                stored_bytes: f.stored_bytes,
            })
            .collect();
        let size_bytes = column_families
            .iter()
            .map(|c| c.sst_bytes + c.memtable_bytes)
            .sum();
        StoreStats {
            path: self.path.display().to_string(),
            sync: self.sync.to_string(),
            compression: Cf::ALL
                .iter()
                .map(|cf| (cf.name(), self.compression_of(*cf).0.to_string()))
                .collect(),
            latest_sequence: self.db.latest_sequence_number(),
            size_bytes,
            disk_bytes: crate::fs::dir_size(&self.path),
            column_families,
            writes: self.counters.writes.load(Ordering::Relaxed),
            vectors_clipped: self.counters.vectors_clipped.load(Ordering::Relaxed),
            write_bytes: self.counters.write_bytes.load(Ordering::Relaxed),
            reads: self.counters.reads.load(Ordering::Relaxed),
            read_bytes: self.counters.read_bytes.load(Ordering::Relaxed),
            uptime_secs: self.opened_at.elapsed().as_secs(),
        }
    }
}
