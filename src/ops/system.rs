//! The daemon as a whole: health, statistics, WAL checkpoint.

use clap::Args;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{Blocking, Store};
use crate::clock::{Clock, SystemClock};
use crate::engine::Cf;
use crate::error::Result;
use crate::metrics::{exposition, HostDisk, Sample};

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

/// Store size, column families, counters, actor states and published records; detailed adds every metric (WAL sync latency, cache hit rate, compaction, disk, snapshots).
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema, Args)]
#[serde(deny_unknown_fields)]
pub struct StorageStatsParams {
    /// Add every metric of GET /metrics (as name → value, from the same sample: the latest tick's).
    #[serde(default)]
    #[arg(long)]
    pub detailed: bool,
}

impl Blocking<Store> for StorageStatsParams {
    fn run(self, s: &Store) -> Result<Value> {
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
