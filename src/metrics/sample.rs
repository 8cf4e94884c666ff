//! One sample of every figure the daemon reports: taken once per tick (on
//! a persistence thread: RocksDB properties, statvfs, `/proc/diskstats`,
//! the indexes column family) and then served, unchanged, by `GET
//! /metrics`, `storage_stats {detailed}` and the bus records.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use rocksdb::statistics::{Histogram, Ticker};

use super::disk::{Disk, DiskIo, DiskSpace};
use crate::alloc::AllocatorStats;
use crate::engine::indexes::IndexInfo;
use crate::engine::{Cf, CfStats, Engine, StoreMemory, StoreStats};
use crate::status::{Records, StatusBoard};

/// Every figure at one instant.
#[derive(Debug, Clone)]
pub struct Sample {
    /// When it was taken: wall clock (ms since the epoch) …
    pub at_ms: i64,
    /// … and monotonic (rates are per second elapsed between samples).
    pub at: Instant,
    /// The filesystem holding the data directory.
    pub disk: Option<DiskSpace>,
    /// The block device holding the data directory.
    pub disk_io: Option<DiskIo>,
    /// Fraction of the time since the previous tick's sample that device
    /// was busy; set by the tick (`None` in a sample taken on its own).
    pub disk_io_utilisation: Option<f64>,
    pub store: StoreStats,
    pub vectors: VectorFigures,
    pub wal_sync: WalSync,
    pub block_cache_hits: u64,
    pub block_cache_misses: u64,
    pub compaction_pending_bytes: u64,
    pub compactions_running: u64,
    pub memory: MemoryFigures,
    /// Committed indexes.
    pub indexes: Vec<IndexInfo>,
    /// The board's records when it was taken.
    pub records: Records,
}

/// The vectors and their metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct VectorFigures {
    pub vectors_stored: u64,
    /// How the collections store vectors (`float32`, `quantized_int8`, …,
    /// `mixed` when they differ).
    pub storage_format: &'static str,
    /// SST and memtable bytes of the vectors and metadata column families.
    pub size_bytes: u64,
    /// Raw key+value bytes over SST data bytes, two decimals (1 while
    /// nothing is in an SST file).
    pub compression_ratio: f64,
}

/// Where the daemon's memory is, bytes.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct MemoryFigures {
    /// `limits.memory-mb`.
    pub budget: u64,
    pub store: StoreMemory,
    /// The allocator's figures (None where it gives none).
    pub allocator: Option<AllocatorStats>,
    /// The process's resident set.
    pub process_rss: Option<u64>,
}

impl MemoryFigures {
    pub fn of(engine: &Engine) -> MemoryFigures {
        MemoryFigures {
            budget: (engine.limits().memory_mb as u64).saturating_mul(1 << 20),
            store: engine.memory(),
            allocator: crate::alloc::allocator(),
            process_rss: crate::alloc::process_rss(),
        }
    }
}

/// WAL fsync latency since the store was opened (RocksDB statistics).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct WalSync {
    /// Seconds: median, 95th and 99th percentile (0 while there is none).
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub sum_secs: f64,
    pub count: u64,
}

impl Sample {
    /// Take a sample (blocking: RocksDB property reads, statvfs, a read of
    /// `/proc/diskstats`, a scan of the indexes column family).
    pub fn take(engine: &Engine, board: &StatusBoard, disk: &dyn Disk, now_ms: i64) -> Sample {
        let store = engine.stats();
        let data_dir = engine.path().parent().unwrap_or(engine.path());
        let opts = engine.db_options();
        let sync = opts.get_histogram_data(Histogram::WalFileSyncMicros);
        let secs = |micros: f64| {
            if micros.is_finite() {
                micros / 1e6
            } else {
                0.0
            }
        };
        Sample {
            at_ms: now_ms,
            at: Instant::now(),
            disk: disk.space(data_dir),
            disk_io: disk.io(data_dir),
            disk_io_utilisation: None,
            vectors: vector_figures(engine, &store),
            wal_sync: WalSync {
                p50: secs(sync.median()),
                p95: secs(sync.p95()),
                p99: secs(sync.p99()),
                sum_secs: sync.sum() as f64 / 1e6,
                count: sync.count(),
            },
            block_cache_hits: opts.get_ticker_count(Ticker::BlockCacheHit),
            block_cache_misses: opts.get_ticker_count(Ticker::BlockCacheMiss),
            compaction_pending_bytes: engine
                .property_sum("rocksdb.estimate-pending-compaction-bytes"),
            compactions_running: engine.property_sum("rocksdb.num-running-compactions"),
            memory: MemoryFigures::of(engine),
            indexes: match engine.index_list() {
                Ok((list, _)) => list,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot list indexes for the metrics sample");
                    Vec::new()
                }
            },
            store,
            records: board.records(),
        }
    }

    /// Used fraction of the data directory's filesystem (0 when unknown).
    pub fn disk_usage(&self) -> f64 {
        self.disk.map_or(0.0, |d| d.usage())
    }

    /// Block cache hits over lookups since start.
    pub fn block_cache_hit_ratio(&self) -> f64 {
        match self.block_cache_hits + self.block_cache_misses {
            0 => 0.0,
            n => self.block_cache_hits as f64 / n as f64,
        }
    }

    /// Seconds from the last successful backup to this sample.
    pub fn backup_age_secs(&self) -> Option<f64> {
        let at = self.records.backup.as_ref()?.last_backup.as_ref()?;
        Some((self.at_ms - at.last_backup_at_ms?).max(0) as f64 / 1000.0)
    }

    /// Seconds from the start of the last archive pass that succeeded to
    /// this sample (an upper bound on the age of unarchived writes), and
    /// the sequences the store was ahead when it ended.
    pub fn wal_archive_lag(&self) -> Option<(f64, u64)> {
        let a = self.records.backup.as_ref()?.wal_archive.as_ref()?;
        Some((
            (self.at_ms - a.last_pass_started_ms).max(0) as f64 / 1000.0,
            a.lag_sequences,
        ))
    }
}

fn vector_figures(engine: &Engine, stats: &StoreStats) -> VectorFigures {
    // Raw: the vectors as f32 (what quantization saves counts), keys and
    // metadata as written; stored: their data blocks on disk.
    let expansion = engine.f32_expansion().unwrap_or_else(|e| {
        tracing::warn!(error = %e, "cannot read the collections for the metrics sample");
        1.0
    });
    let (raw, data) = stats
        .column_families
        .iter()
        .filter(|c| c.name == Cf::Vectors.name() || c.name == Cf::Metadata.name())
        .fold((0.0, 0u64), |(r, d), c| {
            let grown = if c.name == Cf::Vectors.name() {
                c.raw_value_bytes as f64 * (expansion - 1.0)
            } else {
                0.0
            };
            (r + c.raw_bytes as f64 + grown, d + c.stored_bytes)
        });
    let sum = |name: &str, f: fn(&CfStats) -> u64| {
        stats
            .column_families
            .iter()
            .filter(|c| c.name == name)
            .map(f)
            .sum::<u64>()
    };
    let bytes = |name| sum(name, |c| c.sst_bytes + c.memtable_bytes);
    VectorFigures {
        vectors_stored: sum("vectors", |c| c.estimate_num_keys),
        storage_format: engine.storage_format().unwrap_or_else(|e| {
            tracing::warn!(error = %e, "cannot read the collections for the metrics sample");
            "unknown"
        }),
        size_bytes: bytes("vectors") + bytes("metadata"),
        compression_ratio: if data > 0 {
            (raw / data as f64 * 100.0).round() / 100.0
        } else {
            1.0
        },
    }
}

/// The newest tick's sample, shared by the metrics actor (its writer),
/// `GET /metrics` and `storage_stats`.
#[derive(Debug, Default)]
pub struct Latest(Mutex<Option<Arc<Sample>>>);

impl Latest {
    pub fn get(&self) -> Option<Arc<Sample>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn set(&self, sample: Arc<Sample>) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(sample);
    }

    /// The latest sample, or (before the first tick) a new one.
    pub fn get_or_take(&self, take: impl FnOnce() -> Sample) -> Arc<Sample> {
        self.get().unwrap_or_else(|| Arc::new(take()))
    }
}

/// A disk that reads what a test tells it.
#[cfg(test)]
pub(crate) mod testutil {
    use super::*;
    use std::path::Path;

    #[derive(Debug, Default)]
    pub struct FakeDisk {
        pub space: Mutex<Option<DiskSpace>>,
        pub io: Mutex<Option<DiskIo>>,
    }

    impl FakeDisk {
        /// `percent` used of 100 bytes.
        pub fn used(&self, percent: u64) {
            *self.space.lock().unwrap() = Some(DiskSpace {
                used: percent,
                available: 100 - percent,
            });
        }
    }

    impl Disk for FakeDisk {
        fn space(&self, _: &Path) -> Option<DiskSpace> {
            *self.space.lock().unwrap()
        }
        fn io(&self, _: &Path) -> Option<DiskIo> {
            self.io.lock().unwrap().clone()
        }
    }

    /// A sample of a fresh temporary store on `disk`.
    pub fn sample(disk: &FakeDisk, now_ms: i64) -> Sample {
        let (_dir, engine) =
            crate::engine::testutil::open_temp(crate::clock::ManualClock::new(now_ms));
        Sample::take(&engine, &StatusBoard::new(), disk, now_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::testutil::FakeDisk;
    use super::*;
    use crate::clock::ManualClock;

    #[test]
    fn a_sample_reads_the_disk_it_is_given_and_the_board() {
        let (_dir, engine) = crate::engine::testutil::open_temp(ManualClock::new(0));
        let disk = FakeDisk::default();
        disk.used(85);
        let board = StatusBoard::new();
        board.update_backup(|b| {
            b.last_backup = Some(crate::status::LastBackup {
                last_backup_at_ms: Some(1_000),
                ..Default::default()
            })
        });
        let s = Sample::take(&engine, &board, &disk, 61_000);
        assert_eq!(
            s.disk,
            Some(DiskSpace {
                used: 85,
                available: 15
            })
        );
        assert!((s.disk_usage() - 0.85).abs() < 1e-12);
        assert_eq!(s.disk_io, None);
        assert_eq!(s.backup_age_secs(), Some(60.0));
        assert_eq!(s.wal_archive_lag(), None);
        assert_eq!(s.vectors.compression_ratio, 1.0, "nothing in SST files yet");
    }

    #[test]
    fn latest_takes_a_sample_only_before_the_first_tick() {
        let disk = FakeDisk::default();
        let latest = Latest::default();
        let first = latest.get_or_take(|| testutil::sample(&disk, 5));
        assert_eq!(first.at_ms, 5);
        assert!(latest.get().is_none(), "an ad-hoc sample is not stored");
        latest.set(Arc::new(testutil::sample(&disk, 7)));
        let got = latest.get_or_take(|| panic!("must not sample: one is stored"));
        assert_eq!(got.at_ms, 7);
    }
}
