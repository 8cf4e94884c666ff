//! The daemon as a whole: health, statistics, WAL checkpoint.

use clap::Args;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{Blocking, Store};
use crate::clock::{Clock, SystemClock};
use crate::engine::Cf;
use crate::error::{Error, Result};
use crate::metrics::{exposition, history, HostDisk, Sample};

/// Daemon health: overall status, version, pid and each actor's state.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema, Args)]
#[serde(deny_unknown_fields)]
pub struct SystemHealthParams {}

impl Blocking<Store> for SystemHealthParams {
    fn run(self, s: &Store) -> Result<Value> {
        let e = s.engine.get()?;
        // A real read proves the store answers.
        e.get(Cf::Sys, b"schema_version")?;
        Ok(
            json!({"status": s.status.overall(), "version": env!("CARGO_PKG_VERSION"),
            "pid": std::process::id(), "store": e.path().display().to_string(),
            "latest_sequence": e.db().latest_sequence_number(),
            "actors": s.status.snapshot()}),
        )
    }
}

/// Store size, column families, counters, actor states and published records; detailed adds every metric (WAL sync latency, cache hit rate, compaction, disk, snapshots); history returns the metrics history instead (a point per status tick: the ruvector/metrics figures, write MB/s and RSS; min/max/last and values per metric, and its encoded size against the JSON records).
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema, Args)]
#[serde(deny_unknown_fields)]
pub struct StorageStatsParams {
    /// Add every metric of GET /metrics (as name → value, from the same sample: the latest tick's).
    #[serde(default)]
    #[arg(long, conflicts_with = "history")]
    pub detailed: bool,
    /// Return the metrics history (the CLI draws a sparkline per metric).
    #[serde(default)]
    #[arg(long)]
    pub history: bool,
    /// History window back from now: a whole number and s, m, h or d (default 24h).
    #[serde(default)]
    #[arg(long, requires = "history")]
    pub since: Option<String>,
    /// History of these metrics only (comma-separated; default all): total_size_gb, available_space_gb, usage_percentage, write_iops, read_iops, compression_ratio, backup_age_hours, disk_io_utilization, write_mbs, memory_rss_mb.
    #[serde(default)]
    #[arg(long, requires = "history")]
    pub metric: Option<String>,
    /// Most values returned per metric; more points are averaged in buckets (default 60).
    #[serde(default)]
    #[arg(long, requires = "history")]
    #[schemars(range(min = 1, max = 10000))]
    pub points: Option<usize>,
}

/// Values per metric of a history when `points` is not given.
pub const DEFAULT_HISTORY_POINTS: usize = 60;

impl StorageStatsParams {
    fn history(self, s: &Store) -> Result<Value> {
        let e = s.engine.get()?;
        let window = history::parse_since(self.since.as_deref().unwrap_or("24h"))?;
        let selected = history::select(self.metric.as_deref())?;
        let width = self.points.unwrap_or(DEFAULT_HISTORY_POINTS);
        if !(1..=10_000).contains(&width) {
            return Err(Error::invalid(format!(
                "points = {width}: expected 1 to 10000"
            )));
        }
        let until = e.clock().now_ms();
        let since = until.saturating_sub(window);
        let read = e.series_read(since)?;
        let h = history::summarize(
            &read,
            since,
            until,
            &selected,
            width,
            e.series_retention_ms(),
        );
        Ok(json!({ "history": h }))
    }
}

impl Blocking<Store> for StorageStatsParams {
    fn run(self, s: &Store) -> Result<Value> {
        if self.history {
            return self.history(s);
        }
        if self.since.is_some() || self.metric.is_some() || self.points.is_some() {
            return Err(Error::invalid(
                "storage_stats: since, metric and points apply to the history: add history = true",
            ));
        }
        let e = s.engine.get()?;
        let st = e.stats();
        let key_estimate = |name: &str| {
            st.column_families
                .iter()
                .find(|c| c.name == name)
                .map(|c| c.estimate_num_keys)
                .unwrap_or(0)
        };
        Ok(json!({
            "store": st,
            "vectors_estimate": key_estimate("vectors"),
            "kv_keys_estimate": key_estimate("kv"),
            "memory_entries_estimate": key_estimate("memory"),
            // Ids per distinct vector stored, per dedup collection (exact:
            // walks their keys).
            "dedup": e.dedup_all()?,
            "actors": s.status.snapshot(),
            "records": s.status.records(),
            "metrics": self.detailed.then(|| {
                let sample = s.metrics.get_or_take(|| {
                    Sample::take(&e, &s.status, &HostDisk, SystemClock.now_ms())
                });
                exposition::json(&sample)
            }),
        }))
    }
}

/// Flush memtables to SST files and fsync the WAL; reports the memtable bytes it moved to disk.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema, Args)]
#[serde(deny_unknown_fields)]
pub struct WalCheckpointParams {}

impl Blocking<Store> for WalCheckpointParams {
    fn run(self, s: &Store) -> Result<Value> {
        let e = s.engine.get()?;
        let t = std::time::Instant::now();
        let before = e.memtable_bytes();
        e.flush()?;
        Ok(json!({
            "memtable_bytes_before": before,
            "memtable_bytes_after": e.memtable_bytes(),
            "latest_sequence": e.db().latest_sequence_number(),
            "duration_ms": t.elapsed().as_secs_f64() * 1000.0}))
    }
}

/// Resize the block cache (--size, e.g. 512MB or 2GB; at most half of limits.memory-mb) and each column family's memtable (--write-buffer, e.g. 64MB) at runtime, with no restart; kept across restarts. Without either, shows the sizes in force.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema, Args)]
#[serde(deny_unknown_fields)]
pub struct CacheConfigParams {
    /// The block cache: bytes, or with a unit (KB, MB, GB; binary: 1GB = 1024 MiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[arg(long)]
    pub size: Option<String>,
    /// Each column family's memtable, same units.
    #[serde(
        default,
        alias = "write-buffer",
        skip_serializing_if = "Option::is_none"
    )]
    #[arg(long)]
    pub write_buffer: Option<String>,
}

/// A size as MiB: `4GB`, `256MB`, `512MiB`, `65536KB` or plain bytes
/// (binary units); a whole number of MiB.
pub fn parse_mib(what: &str, text: &str) -> Result<usize> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().map_err(|_| {
        Error::invalid(format!(
            "{what} {text:?} is not a size: give a number with KB, MB or GB (e.g. 512MB)"
        ))
    })?;
    let shift = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 0,
        "K" | "KB" | "KIB" => 10,
        "M" | "MB" | "MIB" => 20,
        "G" | "GB" | "GIB" => 30,
        other => {
            return Err(Error::invalid(format!(
                "{what} {text:?}: unknown unit {other:?}; use KB, MB or GB"
            )))
        }
    };
    let bytes = n
        .checked_mul(1u64 << shift)
        .ok_or_else(|| Error::invalid(format!("{what} {text:?} is too large")))?;
    if bytes % (1 << 20) != 0 {
        return Err(Error::invalid(format!(
            "{what} {text:?} is not a whole number of MiB"
        )));
    }
    Ok((bytes >> 20) as usize)
}

impl Blocking<Store> for CacheConfigParams {
    fn run(self, s: &Store) -> Result<Value> {
        let e = s.engine.get()?;
        let before = e.cache_config();
        let size = self
            .size
            .as_deref()
            .map(|t| parse_mib("--size", t))
            .transpose()?;
        let write_buffer = self
            .write_buffer
            .as_deref()
            .map(|t| parse_mib("--write-buffer", t))
            .transpose()?;
        if size.is_none() && write_buffer.is_none() {
            return Ok(json!({"current": before,
                "rocksdb_block_cache_capacity": e.block_cache_capacity()}));
        }
        let after = e.set_cache_config(size, write_buffer)?;
        Ok(json!({"previous": before, "current": after,
            "rocksdb_block_cache_capacity": e.block_cache_capacity()}))
    }
}

#[cfg(test)]
mod size_tests {
    use super::parse_mib;

    #[test]
    fn sizes_parse_in_binary_units_and_bad_ones_say_why() {
        assert_eq!(parse_mib("--size", "4GB").unwrap(), 4096);
        assert_eq!(parse_mib("--size", "256MB").unwrap(), 256);
        assert_eq!(parse_mib("--size", "512MiB").unwrap(), 512);
        assert_eq!(parse_mib("--size", "1048576").unwrap(), 1);
        assert_eq!(parse_mib("--size", "2048 KB").unwrap(), 2);
        for bad in ["", "MB", "12TB", "1.5GB", "100KB", "99999999999999999GB"] {
            let e = parse_mib("--size", bad).unwrap_err();
            assert!(e.message.contains("--size"), "{bad}: {}", e.message);
        }
    }
}
