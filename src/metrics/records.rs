//! The records the daemon publishes about itself (`swarm/storage/*` in
//! `ruvector/storage`, `ruvector/metrics`, `ruvector/errors`) and the store
//! figures behind them.

use serde::Serialize;
use serde_json::json;

use crate::engine::{Cf, Engine};

pub const STATUS_NAMESPACE: &str = "ruvector/storage";
pub const STATUS_KEY: &str = "swarm/storage/status";
pub const VECTOR_STORAGE_KEY: &str = "swarm/storage/vector_storage";

/// Figures behind `swarm/storage/vector_storage`.
#[derive(Debug, Clone, Serialize, Default)]
pub struct VectorStorageRecord {
    pub vectors_stored: u64,
    pub storage_format: String,
    pub compression: String,
    pub size_bytes: u64,
    pub compression_ratio: f64,
    /// Bytes written to the store since open (for throughput deltas).
    #[serde(skip)]
    pub write_bytes_total: u64,
    #[serde(skip)]
    pub writes_total: u64,
    #[serde(skip)]
    pub reads_total: u64,
    /// (used, available) bytes of the filesystem holding the data dir.
    #[serde(skip)]
    pub disk: Option<(u64, u64)>,
    #[serde(skip)]
    pub store_bytes: u64,
    /// I/O counters of the data directory's block device, when known.
    #[serde(skip)]
    pub disk_io: Option<crate::metrics::DiskIo>,
    /// Committed indexes (for `swarm/storage/index_persistence`).
    #[serde(skip)]
    pub indexes: Vec<crate::engine::indexes::IndexInfo>,
}

/// Parse `rocksdb.aggregated-table-properties` (`name=value; …`).
fn table_prop(text: &str, name: &str) -> u64 {
    text.split(';')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| k.trim() == name)
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0)
}

/// Read the figures (blocking RocksDB property calls).
pub fn collect_storage(engine: &Engine) -> VectorStorageRecord {
    storage_record(engine, &engine.stats())
}

/// The figures, from stats already read.
pub fn storage_record(engine: &Engine, stats: &crate::engine::StoreStats) -> VectorStorageRecord {
    let mut raw = 0u64;
    let mut data = 0u64;
    for cf in [Cf::Vectors, Cf::Metadata] {
        if let Ok(Some(text)) = engine
            .db()
            .property_value_cf(engine.cf(cf), "rocksdb.aggregated-table-properties")
        {
            raw += table_prop(&text, "raw key size") + table_prop(&text, "raw value size");
            data += table_prop(&text, "data block size");
        }
    }
    let cf_bytes = |name: &str| {
        stats
            .column_families
            .iter()
            .filter(|c| c.name == name)
            .map(|c| c.sst_bytes + c.memtable_bytes)
            .sum::<u64>()
    };
    let data_dir = engine.path().parent().unwrap_or(engine.path());
    let vectors = stats
        .column_families
        .iter()
        .find(|c| c.name == "vectors")
        .map(|c| c.estimate_num_keys)
        .unwrap_or(0);
    VectorStorageRecord {
        vectors_stored: vectors,
        storage_format: "float32".into(),
        compression: stats.compression.clone(),
        size_bytes: cf_bytes("vectors") + cf_bytes("metadata"),
        compression_ratio: if data > 0 {
            (raw as f64 / data as f64 * 100.0).round() / 100.0
        } else {
            1.0
        },
        write_bytes_total: stats.write_bytes,
        writes_total: stats.writes,
        reads_total: stats.reads,
        disk: crate::metrics::disk_space(data_dir),
        store_bytes: stats.disk_bytes,
        disk_io: crate::metrics::disk_io(data_dir),
        indexes: match engine.index_list() {
            Ok((list, _)) => list,
            Err(e) => {
                tracing::warn!(error = %e, "cannot list indexes for the status record");
                Vec::new()
            }
        },
    }
}

pub const INDEX_PERSISTENCE_KEY: &str = "swarm/storage/index_persistence";

/// A snapshot or backup: when it was made and the store sequence it holds.
#[derive(Debug, Clone, Copy)]
pub struct Cut<'a> {
    pub at: &'a str,
    pub sequence: u64,
}

/// The seed's `swarm/storage/index_persistence` record: the most recently
/// committed index in the seed's fields (`last_snapshot` / `last_backup`:
/// the newest snapshot / backup whose sequence is at or after the index's
/// commit, so holding it), and every index in `indexes`. Fields are null
/// while there is none.
pub fn index_persistence_record(
    indexes: &[crate::engine::indexes::IndexInfo],
    newest_snapshot: Option<Cut>,
    last_backup: Option<Cut>,
) -> serde_json::Value {
    let latest = indexes.iter().max_by_key(|i| i.committed_at_ms);
    let holds = |cut: Option<Cut>, i: &crate::engine::indexes::IndexInfo| {
        cut.filter(|c| i.committed_sequence > 0 && c.sequence >= i.committed_sequence)
            .map(|c| c.at.to_string())
    };
    let snapshot = |i: &crate::engine::indexes::IndexInfo| holds(newest_snapshot, i);
    let backup = |i: &crate::engine::indexes::IndexInfo| holds(last_backup, i);
    json!({
        "index_type": latest.map(|i| &i.index_type),
        "index_file": latest.map(|i| format!("indexes/{}", i.name)),
        "name": latest.map(|i| &i.name),
        "size_bytes": latest.map(|i| i.size_bytes),
        "sha256": latest.map(|i| &i.sha256),
        // Served from RocksDB's block cache, not a memory-mapped file.
        "mmap_enabled": false,
        "last_snapshot": latest.and_then(snapshot),
        "last_backup": latest.and_then(backup),
        "committed_at": latest.map(|i| &i.committed_at),
        "count": indexes.len(),
        "total_size_bytes": indexes.iter().map(|i| i.size_bytes).sum::<u64>(),
        "indexes": indexes.iter().map(|i| json!({
            "name": i.name, "index_type": i.index_type, "size_bytes": i.size_bytes,
            "sha256": i.sha256, "committed_at": i.committed_at,
            "last_snapshot": snapshot(i), "last_backup": backup(i),
        })).collect::<Vec<_>>(),
    })
}

pub const METRICS_NAMESPACE: &str = "ruvector/metrics";
pub const METRICS_KEY: &str = "swarm/storage/metrics";
pub const ERRORS_NAMESPACE: &str = "ruvector/errors";
pub const ERRORS_KEY: &str = "swarm/storage/errors";

/// What an operator (or agent) should do about an error of this origin.
pub fn recovery_action(origin: &str) -> &'static str {
    match origin {
        "disk" => "free space: prune snapshots (snapshot prune), compact, or grow the volume",
        "scheduler" => "fix the schedule file and send SIGHUP; the previous schedule keeps running",
        "snapshot" => "check disk space and the snapshot named in the error, then retry",
        "backup" => "check the destination and the WAL archive (backup verify --read-data, wal archive); a backup that fell back to files is complete",
        "persistence" => "retry; if it persists, verify and restore the newest verified snapshot",
        _ => "retry_or_alert",
    }
}

#[cfg(test)]
mod tests {
    use super::{index_persistence_record, table_prop, Cut};
    use crate::engine::indexes::IndexInfo;

    fn info(name: &str, at_ms: i64) -> IndexInfo {
        IndexInfo {
            name: name.into(),
            index_type: "hnsw".into(),
            size_bytes: 100,
            sha256: "ab".into(),
            source: None,
            metadata: None,
            committed_at: crate::clock::iso_ms(at_ms),
            committed_at_ms: at_ms,
            committed_sequence: at_ms as u64 / 1000,
            blob: "b".into(),
        }
    }

    #[test]
    fn index_persistence_names_the_newest_index_and_what_holds_it() {
        let none = index_persistence_record(&[], None, None);
        assert_eq!(none["count"], 0);
        assert!(none["index_type"].is_null() && none["last_snapshot"].is_null());
        assert_eq!(none["mmap_enabled"], false);
        // Committed at sequences 1000 and 2000.
        let list = [info("old", 1_000_000), info("new", 2_000_000)];
        let snap_at = crate::clock::iso_ms(9_999_999);
        let backup_at = crate::clock::iso_ms(2_500_000);
        let snap = Cut {
            at: &snap_at,
            sequence: 1500,
        };
        let backup = Cut {
            at: &backup_at,
            sequence: 2000,
        };
        let r = index_persistence_record(&list, Some(snap), Some(backup));
        assert_eq!(r["name"], "new");
        assert_eq!(r["index_file"], "indexes/new");
        assert_eq!(r["size_bytes"], 100);
        assert_eq!(r["total_size_bytes"], 200);
        // The snapshot's sequence predates "new" (whatever its clock says):
        // it holds only "old".
        assert!(r["last_snapshot"].is_null(), "{r}");
        assert_eq!(r["indexes"][0]["last_snapshot"], snap_at);
        assert_eq!(r["last_backup"], backup_at);
        // Not yet known to be committed at a sequence: held by nothing.
        let mut unknown = list[0].clone();
        unknown.committed_sequence = 0;
        let r = index_persistence_record(&[unknown], Some(snap), Some(backup));
        assert!(
            r["last_snapshot"].is_null() && r["last_backup"].is_null(),
            "{r}"
        );
    }

    #[test]
    fn parses_aggregated_table_properties() {
        let t = "# data blocks=3; # entries=10; raw key size=120; raw value size=4000; data block size=2100; index block size (user-key? 1, delta-value? 1)=50";
        assert_eq!(table_prop(t, "raw key size"), 120);
        assert_eq!(table_prop(t, "raw value size"), 4000);
        assert_eq!(table_prop(t, "data block size"), 2100);
        assert_eq!(table_prop(t, "missing"), 0);
    }
}
