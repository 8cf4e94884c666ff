//! The records the daemon publishes about itself on its memory bus
//! (INTEROP.md §3): `swarm/storage/vector_storage`, `…/index_persistence`
//! and `…/status` in `ruvector/storage`, `swarm/storage/metrics` in
//! `ruvector/metrics`, `swarm/storage/errors` in `ruvector/errors`. Each
//! is a type whose field names are the published ones, made from a
//! [`Sample`] and its [`Rates`].

use serde::Serialize;

use super::tick::Rates;
use super::Sample;
use crate::clock::iso_ms;
use crate::engine::indexes::IndexInfo;
use crate::status::{ErrorEvent, Records};

pub const STATUS_NAMESPACE: &str = "ruvector/storage";
pub const STATUS_KEY: &str = "swarm/storage/status";
pub const VECTOR_STORAGE_KEY: &str = "swarm/storage/vector_storage";
pub const INDEX_PERSISTENCE_KEY: &str = "swarm/storage/index_persistence";
pub const METRICS_NAMESPACE: &str = "ruvector/metrics";
pub const METRICS_KEY: &str = "swarm/storage/metrics";
pub const ERRORS_NAMESPACE: &str = "ruvector/errors";
pub const ERRORS_KEY: &str = "swarm/storage/errors";

fn round(v: f64, decimals: i32) -> f64 {
    let m = 10f64.powi(decimals);
    (v * m).round() / m
}

/// `swarm/storage/vector_storage`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VectorStorageRecord {
    pub vectors_stored: u64,
    pub storage_format: &'static str,
    /// The block compression of each data type.
    pub compression: std::collections::BTreeMap<&'static str, String>,
    pub size_bytes: u64,
    pub compression_ratio: f64,
    /// MB/s written to the store since the previous tick.
    pub write_throughput_mbs: f64,
    pub timestamp: String,
}

impl VectorStorageRecord {
    pub fn new(s: &Sample, rates: &Rates) -> Self {
        VectorStorageRecord {
            vectors_stored: s.vectors.vectors_stored,
            storage_format: s.vectors.storage_format,
            compression: s.store.compression.clone(),
            size_bytes: s.vectors.size_bytes,
            compression_ratio: s.vectors.compression_ratio,
            write_throughput_mbs: round(rates.write_mbs, 3),
            timestamp: iso_ms(s.at_ms),
        }
    }
}

/// `swarm/storage/metrics`: the seed's fields, plus the disk's utilisation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricsRecord {
    /// The store on disk, GB.
    pub total_size_gb: f64,
    /// Available on the data directory's filesystem, GB.
    pub available_space_gb: f64,
    /// Used percentage of that filesystem.
    pub usage_percentage: f64,
    pub write_iops: f64,
    pub read_iops: f64,
    pub compression_ratio: f64,
    /// Hours since the last successful backup (null before the first).
    pub backup_age_hours: Option<f64>,
    /// Busy fraction of the data directory's block device over the last
    /// interval (null when unknown).
    pub disk_io_utilization: Option<f64>,
    /// Milliseconds since the epoch.
    pub timestamp: i64,
}

impl MetricsRecord {
    pub fn new(s: &Sample, rates: &Rates) -> Self {
        let gb = |b: u64| round(b as f64 / 1e9, 3);
        MetricsRecord {
            total_size_gb: gb(s.store.disk_bytes),
            available_space_gb: gb(s.disk.map_or(0, |d| d.available)),
            usage_percentage: round(s.disk_usage() * 100.0, 1),
            write_iops: rates.write_iops.round(),
            read_iops: rates.read_iops.round(),
            compression_ratio: s.vectors.compression_ratio,
            backup_age_hours: s.backup_age_secs().map(|secs| round(secs / 3600.0, 2)),
            disk_io_utilization: rates.disk_io_utilisation,
            timestamp: s.at_ms,
        }
    }
}

/// `swarm/storage/errors`: the latest error and what to do about it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ErrorRecord {
    pub error: String,
    /// What failed: the actor or check that recorded it (`disk`, `backup`, …).
    pub operation: String,
    pub recovery_action: &'static str,
    /// Milliseconds since the epoch.
    pub timestamp: i64,
}

impl From<&ErrorEvent> for ErrorRecord {
    fn from(e: &ErrorEvent) -> Self {
        ErrorRecord {
            error: e.message.clone(),
            operation: e.actor.clone(),
            recovery_action: recovery_action(&e.actor),
            timestamp: e.at_ms,
        }
    }
}

/// What an operator (or agent) should do about an error of this origin.
pub fn recovery_action(origin: &str) -> &'static str {
    match origin {
        "disk" => "free space: prune snapshots (snapshot prune), compact, or grow the volume",
        "scheduler" => "fix the schedule file and send SIGHUP; the previous schedule keeps running",
        "snapshot" => "check disk space and the snapshot named in the error, then retry",
        "backup" => "check the destination and the WAL archive (backup verify --read-data, wal archive); a backup that fell back to files is complete",
        "persistence" => "retry; if it persists, verify and restore the newest verified snapshot",
        "memory" => "see ruvector_storage_memory_bytes for where it is; lower rocksdb.block-cache-mb or raise limits.memory-mb, and report a growth that does not stop",
        "compaction" => "run check --verify-integrity to list the damage; restore the newest verified snapshot (snapshot verify, snapshot restore) or a backup",
        _ => "retry_or_alert",
    }
}

/// A snapshot or backup: when it was made and the store sequence it holds.
#[derive(Debug, Clone, Copy)]
pub struct Cut<'a> {
    pub at: &'a str,
    pub sequence: u64,
}

impl<'a> Cut<'a> {
    /// The newest snapshot and the last backup, from the board's records.
    pub fn of(records: &'a Records) -> (Option<Cut<'a>>, Option<Cut<'a>>) {
        let snapshot = records
            .snapshots
            .as_ref()
            .and_then(|r| r.summary()?.newest.as_ref())
            .map(|n| Cut {
                at: &n.created_at,
                sequence: n.latest_sequence,
            });
        let backup = records
            .backup
            .as_ref()
            .and_then(|b| b.last_backup.as_ref())
            .and_then(|b| {
                Some(Cut {
                    at: b.last_backup_at.as_deref()?,
                    sequence: b.last_backup_sequence?,
                })
            });
        (snapshot, backup)
    }
}

/// `swarm/storage/index_persistence`: the most recently committed index in
/// the seed's fields, and every index in `indexes`. Fields are null while
/// there is none.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IndexPersistenceRecord {
    pub index_type: Option<String>,
    /// `indexes/<name>`.
    pub index_file: Option<String>,
    pub name: Option<String>,
    pub size_bytes: Option<u64>,
    pub sha256: Option<String>,
    /// Whether indexes are served from a memory-mapped file: always false,
    /// they are served from RocksDB's block cache. A constant until
    /// memory-mapped indexes exist (the seed's field is kept for agents
    /// that read it).
    pub mmap_enabled: bool,
    /// The newest snapshot whose sequence is at or after the index's
    /// commit (so holding it).
    pub last_snapshot: Option<String>,
    /// Likewise for the last backup.
    pub last_backup: Option<String>,
    pub committed_at: Option<String>,
    pub count: usize,
    pub total_size_bytes: u64,
    pub indexes: Vec<IndexEntry>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IndexEntry {
    pub name: String,
    pub index_type: String,
    pub size_bytes: u64,
    pub sha256: String,
    pub committed_at: String,
    pub last_snapshot: Option<String>,
    pub last_backup: Option<String>,
}

impl IndexPersistenceRecord {
    pub fn new(
        indexes: &[IndexInfo],
        newest_snapshot: Option<Cut>,
        last_backup: Option<Cut>,
    ) -> Self {
        let latest = indexes.iter().max_by_key(|i| i.committed_at_ms);
        let holds = |cut: Option<Cut>, i: &IndexInfo| {
            cut.filter(|c| i.committed_sequence > 0 && c.sequence >= i.committed_sequence)
                .map(|c| c.at.to_string())
        };
        IndexPersistenceRecord {
            index_type: latest.map(|i| i.index_type.clone()),
            index_file: latest.map(|i| format!("indexes/{}", i.name)),
            name: latest.map(|i| i.name.clone()),
            size_bytes: latest.map(|i| i.size_bytes),
            sha256: latest.map(|i| i.sha256.clone()),
            mmap_enabled: false,
            last_snapshot: latest.and_then(|i| holds(newest_snapshot, i)),
            last_backup: latest.and_then(|i| holds(last_backup, i)),
            committed_at: latest.map(|i| i.committed_at.clone()),
            count: indexes.len(),
            total_size_bytes: indexes.iter().map(|i| i.size_bytes).sum(),
            indexes: indexes
                .iter()
                .map(|i| IndexEntry {
                    name: i.name.clone(),
                    index_type: i.index_type.clone(),
                    size_bytes: i.size_bytes,
                    sha256: i.sha256.clone(),
                    committed_at: i.committed_at.clone(),
                    last_snapshot: holds(newest_snapshot, i),
                    last_backup: holds(last_backup, i),
                })
                .collect(),
        }
    }

    /// From a sample: its indexes, and the snapshot and backup in its records.
    pub fn of(s: &Sample) -> Self {
        let (snapshot, backup) = Cut::of(&s.records);
        IndexPersistenceRecord::new(&s.indexes, snapshot, backup)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

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

    fn to_json(r: &IndexPersistenceRecord) -> Value {
        serde_json::to_value(r).unwrap()
    }

    #[test]
    fn index_persistence_names_the_newest_index_and_what_holds_it() {
        let none = to_json(&IndexPersistenceRecord::new(&[], None, None));
        assert_eq!(none["count"], 0);
        assert!(none["index_type"].is_null() && none["last_snapshot"].is_null());
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
        let r = to_json(&IndexPersistenceRecord::new(
            &list,
            Some(snap),
            Some(backup),
        ));
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
        let r = to_json(&IndexPersistenceRecord::new(
            &[unknown],
            Some(snap),
            Some(backup),
        ));
        assert!(
            r["last_snapshot"].is_null() && r["last_backup"].is_null(),
            "{r}"
        );
    }

    #[test]
    fn index_persistence_has_the_seeds_fields() {
        let r = to_json(&IndexPersistenceRecord::new(
            &[info("a", 1_000)],
            None,
            None,
        ));
        let mut fields: Vec<&str> = r.as_object().unwrap().keys().map(|k| k.as_str()).collect();
        fields.sort();
        assert_eq!(
            fields,
            [
                "committed_at",
                "count",
                "index_file",
                "index_type",
                "indexes",
                "last_backup",
                "last_snapshot",
                "mmap_enabled",
                "name",
                "sha256",
                "size_bytes",
                "total_size_bytes"
            ]
        );
    }

    #[test]
    fn cuts_come_from_the_snapshots_and_backup_records() {
        use crate::status::*;
        let mut records = Records::default();
        assert!(matches!(Cut::of(&records), (None, None)));
        records.snapshots = Some(SnapshotsRecord {
            list: SnapshotList::Listed(SnapshotSummary {
                count: 1,
                newest: Some(NewestSnapshot {
                    name: "s".into(),
                    created_at: "then".into(),
                    latest_sequence: 9,
                }),
                ..Default::default()
            }),
            last_operation: None,
            timestamp: "now".into(),
        });
        records.backup = Some(BackupRecord {
            last_backup: Some(LastBackup {
                last_backup_at: Some("b-at".into()),
                last_backup_sequence: Some(4),
                ..Default::default()
            }),
            ..Default::default()
        });
        let (s, b) = Cut::of(&records);
        let (s, b) = (s.unwrap(), b.unwrap());
        assert_eq!((s.at, s.sequence), ("then", 9));
        assert_eq!((b.at, b.sequence), ("b-at", 4));
    }

    #[test]
    fn errors_record_carries_the_recovery_action_of_its_origin() {
        let e = ErrorEvent {
            seq: 3,
            actor: "disk".into(),
            message: "disk usage 85.0% is at or above 80%".into(),
            at_ms: 42,
        };
        assert_eq!(
            serde_json::to_value(ErrorRecord::from(&e)).unwrap(),
            json!({"error": "disk usage 85.0% is at or above 80%", "operation": "disk",
                "recovery_action": recovery_action("disk"), "timestamp": 42})
        );
        assert!(recovery_action("disk").contains("snapshot prune"));
        assert!(recovery_action("scheduler").contains("SIGHUP"));
        assert_eq!(recovery_action("anything else"), "retry_or_alert");
    }
}
