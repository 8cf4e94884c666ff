//! Prometheus exposition of the seed's storage metrics: storage size (total,
//! used, available), write and read throughput counters, compression
//! ratio, WAL sync latency, compaction progress, snapshot count and size,
//! cache hit rate (RocksDB statistics) and the 80% disk alert. Served as
//! `GET /metrics` on the JSON-RPC port; `promtool check metrics` accepts it.

use std::fmt::Write as _;
use std::path::Path;

use rocksdb::statistics::{Histogram, Ticker};

use crate::engine::Engine;

pub mod records;
use crate::status::StatusBoard;

/// Disk usage at or above this fraction raises the alert.
pub const DISK_ALERT_RATIO: f64 = 0.8;

/// (used, available) bytes of the filesystem holding `path`, as `df`
/// counts them (blocks reserved for root are neither).
pub fn disk_space(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs writes into the zeroed struct we pass; the path is a valid C string.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return None;
    }
    let frsize = st.f_frsize as u64;
    let used = (st.f_blocks as u64).saturating_sub(st.f_bfree as u64) * frsize;
    Some((used, st.f_bavail as u64 * frsize))
}

/// Cumulative I/O counters of the block device holding a path, from
/// `/proc/diskstats` (the line whose major:minor is the path's `st_dev`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskIo {
    pub device: String,
    pub reads: u64,
    pub writes: u64,
    pub read_bytes: u64,
    pub written_bytes: u64,
    /// Milliseconds the device had I/O in flight (`io_ticks`): its rate
    /// over an interval is the device's utilisation, 0..1.
    pub io_time_ms: u64,
}

/// The counters of the block device holding `path`; `None` when the path
/// is not on a block device the kernel accounts for (tmpfs, overlayfs, …).
pub fn disk_io(path: &Path) -> Option<DiskIo> {
    use std::os::unix::fs::MetadataExt;
    let dev = std::fs::metadata(path).ok()?.dev();
    let text = std::fs::read_to_string("/proc/diskstats").ok()?;
    parse_diskstats(&text, libc::major(dev), libc::minor(dev))
}

/// Find `major minor` in `/proc/diskstats` text (fields per
/// Documentation/admin-guide/iostats.rst; sectors are 512 bytes).
pub fn parse_diskstats(text: &str, major: u32, minor: u32) -> Option<DiskIo> {
    text.lines().find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 14 || f[0].parse::<u32>().ok()? != major || f[1].parse::<u32>().ok()? != minor
        {
            return None;
        }
        let n = |i: usize| f[i].parse::<u64>().ok();
        Some(DiskIo {
            device: f[2].to_string(),
            reads: n(3)?,
            read_bytes: n(5)? * 512,
            writes: n(7)?,
            written_bytes: n(9)? * 512,
            io_time_ms: n(12)?,
        })
    })
}

/// Utilisation of a device between two readings `secs` apart, 0..1.
pub fn io_utilisation(before: &DiskIo, after: &DiskIo, secs: f64) -> f64 {
    if before.device != after.device || secs <= 0.0 {
        return 0.0;
    }
    (after.io_time_ms.saturating_sub(before.io_time_ms) as f64 / (secs * 1000.0)).clamp(0.0, 1.0)
}

struct Out(String);

impl Out {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }
    fn sample(&mut self, name: &str, labels: &str, value: f64) {
        if labels.is_empty() {
            let _ = writeln!(self.0, "{name} {value}");
        } else {
            let _ = writeln!(self.0, "{name}{{{labels}}} {value}");
        }
    }
    fn one(&mut self, name: &str, kind: &str, help: &str, value: f64) {
        self.family(name, kind, help);
        self.sample(name, "", value);
    }
}

/// The samples of an exposition as `{"name{labels}": value}` (for
/// `stats --detailed`: the same numbers as `/metrics`).
pub fn samples(text: &str) -> serde_json::Map<String, serde_json::Value> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            let v: f64 = value.parse().ok()?;
            Some((name.to_string(), serde_json::json!(v)))
        })
        .collect()
}

/// Render every metric (blocking: RocksDB properties and statvfs).
pub fn render(engine: &Engine, board: &StatusBoard, data_dir: &Path) -> String {
    let st = engine.stats();
    let mut o = Out(String::with_capacity(4096));
    let (used, avail) = disk_space(data_dir).unwrap_or((0, 0));
    let total = used + avail;
    let usage = if total > 0 {
        used as f64 / total as f64
    } else {
        0.0
    };
    o.family(
        "ruvector_storage_disk_bytes",
        "gauge",
        "Filesystem holding the data directory, bytes (as df counts them).",
    );
    o.sample(
        "ruvector_storage_disk_bytes",
        "kind=\"total\"",
        total as f64,
    );
    o.sample("ruvector_storage_disk_bytes", "kind=\"used\"", used as f64);
    o.sample(
        "ruvector_storage_disk_bytes",
        "kind=\"available\"",
        avail as f64,
    );
    o.one(
        "ruvector_storage_disk_usage_ratio",
        "gauge",
        "Used fraction of that filesystem (df's Use%).",
        usage,
    );
    o.one(
        "ruvector_storage_disk_usage_alert",
        "gauge",
        "1 when disk usage is at or above 80%.",
        if usage >= DISK_ALERT_RATIO { 1.0 } else { 0.0 },
    );
    if let Some(io) = disk_io(data_dir) {
        let label = format!("device=\"{}\"", io.device);
        for (name, help, v) in [
            (
                "ruvector_storage_disk_io_time_seconds_total",
                "Seconds the data directory's block device had I/O in flight; its rate() is the device's utilisation (0..1).",
                io.io_time_ms as f64 / 1000.0,
            ),
            (
                "ruvector_storage_disk_reads_completed_total",
                "Reads completed by the data directory's block device.",
                io.reads as f64,
            ),
            (
                "ruvector_storage_disk_writes_completed_total",
                "Writes completed by the data directory's block device.",
                io.writes as f64,
            ),
            (
                "ruvector_storage_disk_read_bytes_total",
                "Bytes read by the data directory's block device.",
                io.read_bytes as f64,
            ),
            (
                "ruvector_storage_disk_written_bytes_total",
                "Bytes written by the data directory's block device.",
                io.written_bytes as f64,
            ),
        ] {
            o.family(name, "counter", help);
            o.sample(name, &label, v);
        }
    }
    if let Some(u) = board
        .records()
        .get("disk_io")
        .and_then(|r| r["utilisation"].as_f64())
    {
        o.one(
            "ruvector_storage_disk_io_utilisation",
            "gauge",
            "Fraction of the last status interval the data directory's block device was busy.",
            u,
        );
    }
    o.family(
        "ruvector_storage_store_bytes",
        "gauge",
        "Bytes of the store: live (SST + memtables) and on disk.",
    );
    o.sample(
        "ruvector_storage_store_bytes",
        "kind=\"live\"",
        st.size_bytes as f64,
    );
    o.sample(
        "ruvector_storage_store_bytes",
        "kind=\"on_disk\"",
        st.disk_bytes as f64,
    );
    o.family(
        "ruvector_storage_keys",
        "gauge",
        "Estimated keys per column family.",
    );
    for cf in &st.column_families {
        o.sample(
            "ruvector_storage_keys",
            &format!("cf=\"{}\"", cf.name),
            cf.estimate_num_keys as f64,
        );
    }
    o.one(
        "ruvector_storage_writes_total",
        "counter",
        "Write batches applied.",
        st.writes as f64,
    );
    o.one(
        "ruvector_storage_write_bytes_total",
        "counter",
        "Bytes of write batches applied.",
        st.write_bytes as f64,
    );
    o.one(
        "ruvector_storage_reads_total",
        "counter",
        "Point reads.",
        st.reads as f64,
    );
    o.one(
        "ruvector_storage_read_bytes_total",
        "counter",
        "Bytes returned by point reads.",
        st.read_bytes as f64,
    );
    let rec = records::storage_record(engine, &st);
    o.one(
        "ruvector_storage_compression_ratio",
        "gauge",
        "Raw key+value bytes over SST data bytes (vectors and metadata).",
        rec.compression_ratio,
    );
    let opts = engine.db_options();
    let sync = opts.get_histogram_data(Histogram::WalFileSyncMicros);
    o.family(
        "ruvector_storage_wal_sync_seconds",
        "summary",
        "WAL fsync latency.",
    );
    for (q, v) in [
        ("0.5", sync.median()),
        ("0.95", sync.p95()),
        ("0.99", sync.p99()),
    ] {
        let v = if v.is_finite() { v / 1e6 } else { 0.0 };
        o.sample(
            "ruvector_storage_wal_sync_seconds",
            &format!("quantile=\"{q}\""),
            v,
        );
    }
    o.sample(
        "ruvector_storage_wal_sync_seconds_sum",
        "",
        sync.sum() as f64 / 1e6,
    );
    o.sample(
        "ruvector_storage_wal_sync_seconds_count",
        "",
        sync.count() as f64,
    );
    let (hits, misses) = (
        opts.get_ticker_count(Ticker::BlockCacheHit),
        opts.get_ticker_count(Ticker::BlockCacheMiss),
    );
    o.one(
        "ruvector_storage_block_cache_hits_total",
        "counter",
        "Block cache hits.",
        hits as f64,
    );
    o.one(
        "ruvector_storage_block_cache_misses_total",
        "counter",
        "Block cache misses.",
        misses as f64,
    );
    o.one(
        "ruvector_storage_block_cache_hit_ratio",
        "gauge",
        "Block cache hits over lookups since start.",
        if hits + misses > 0 {
            hits as f64 / (hits + misses) as f64
        } else {
            0.0
        },
    );
    o.one(
        "ruvector_storage_compaction_pending_bytes",
        "gauge",
        "Bytes compaction still has to rewrite (RocksDB estimate).",
        engine.property_sum("rocksdb.estimate-pending-compaction-bytes") as f64,
    );
    o.one(
        "ruvector_storage_compactions_running",
        "gauge",
        "Compactions running now.",
        engine.property_sum("rocksdb.num-running-compactions") as f64,
    );
    let snaps = board
        .records()
        .get("snapshots")
        .cloned()
        .unwrap_or_default();
    o.one(
        "ruvector_storage_snapshots",
        "gauge",
        "Complete snapshots.",
        snaps["count"].as_f64().unwrap_or(0.0),
    );
    o.family(
        "ruvector_storage_snapshot_bytes",
        "gauge",
        "Bytes of all snapshots, and held by snapshots alone.",
    );
    o.sample(
        "ruvector_storage_snapshot_bytes",
        "kind=\"total\"",
        snaps["total_bytes"].as_f64().unwrap_or(0.0),
    );
    o.sample(
        "ruvector_storage_snapshot_bytes",
        "kind=\"exclusive\"",
        snaps["exclusive_bytes"].as_f64().unwrap_or(0.0),
    );
    o.one(
        "ruvector_storage_uptime_seconds",
        "gauge",
        "Seconds since the store was opened.",
        st.uptime_secs as f64,
    );
    let backup = board.records().remove("backup").unwrap_or_default();
    if let Some(at) = backup["last_backup_at_ms"].as_i64() {
        let age =
            (crate::clock::Clock::now_ms(&crate::clock::SystemClock) - at).max(0) as f64 / 1000.0;
        o.one(
            "ruvector_storage_backup_age_seconds",
            "gauge",
            "Seconds since the last successful backup.",
            age,
        );
    }
    let archive = &backup["wal_archive"];
    if let Some(started) = archive["last_pass_started_ms"].as_i64() {
        let lag = (crate::clock::Clock::now_ms(&crate::clock::SystemClock) - started).max(0) as f64
            / 1000.0;
        o.one(
            "ruvector_storage_wal_archive_lag_seconds",
            "gauge",
            "Upper bound on the age of the oldest write not yet archived (the RPO now): seconds since the start of the last archive pass that succeeded.",
            lag,
        );
        o.one(
            "ruvector_storage_wal_archive_lag_sequences",
            "gauge",
            "Sequences the store was ahead of the archive when the last pass ended.",
            archive["lag_sequences"].as_f64().unwrap_or(0.0),
        );
    }
    o.0
}

#[cfg(test)]
mod tests {
    use super::*;

    const DISKSTATS: &str = "   7       0 loop0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0
 254       0 vda 3728721 41198 100966082 8040852 2759874 418362 1193274624 4033060 0 580628 12220287 247878 22 2261331304 114312 767446 32061
 254       1 vda1 10 80 20 160
";

    #[test]
    fn diskstats_line_of_the_device_is_parsed() {
        let io = parse_diskstats(DISKSTATS, 254, 0).expect("vda");
        assert_eq!(io.device, "vda");
        assert_eq!(io.reads, 3_728_721);
        assert_eq!(io.read_bytes, 100_966_082 * 512);
        assert_eq!(io.writes, 2_759_874);
        assert_eq!(io.written_bytes, 1_193_274_624 * 512);
        assert_eq!(io.io_time_ms, 580_628);
        // A partition line in the pre-2.6.25 short form has no io_ticks.
        assert_eq!(parse_diskstats(DISKSTATS, 254, 1), None);
        assert_eq!(parse_diskstats(DISKSTATS, 8, 0), None);
    }

    #[test]
    fn utilisation_is_busy_time_over_elapsed_time() {
        let a = parse_diskstats(DISKSTATS, 254, 0).unwrap();
        let mut b = a.clone();
        b.io_time_ms += 250;
        assert!((io_utilisation(&a, &b, 1.0) - 0.25).abs() < 1e-9);
        b.io_time_ms += 10_000;
        assert_eq!(io_utilisation(&a, &b, 1.0), 1.0, "clamped");
        b.device = "sdb".into();
        assert_eq!(io_utilisation(&a, &b, 1.0), 0.0, "another device");
    }
}
