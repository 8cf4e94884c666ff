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
