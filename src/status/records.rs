//! The summary records on the board, typed. Each is published on the bus as
//! `swarm/storage/<name>` (namespace `ruvector/storage`) and shown under
//! `records` in `storage_stats`; JSON is made only there, from these types,
//! so the field names below are what agents read.

use serde::Serialize;
use serde_json::Value;

/// Every record written today; absent ones are neither shown nor published.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Records {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup: Option<BackupRecord>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compaction: Option<super::CompactionRecord>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disk_io: Option<DiskIoRecord>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_bus: Option<Vec<ExternalTargetStatus>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub integrity: Option<IntegrityReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshots: Option<SnapshotsRecord>,
}

impl Records {
    /// Each present record as `(name, JSON)`, in name order.
    pub fn to_json(&self) -> Vec<(String, Value)> {
        match serde_json::to_value(self) {
            Ok(Value::Object(map)) => map.into_iter().collect(),
            // Plain structs of strings and numbers always serialise to an object.
            _ => Vec::new(),
        }
    }
}

/// How the last operation of a service went (`last_operation` of the
/// `snapshots` and `backup` records).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LastOperation {
    /// Its method, e.g. `snapshot_create`.
    pub operation: String,
    pub ok: bool,
    /// Why it failed (null when it did not).
    pub error: Option<String>,
    pub duration_ms: f64,
    /// When it ended (ISO 8601, UTC).
    pub at: String,
}

/// `swarm/storage/snapshots`: the snapshots that exist, and the last
/// operation on them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SnapshotsRecord {
    #[serde(flatten)]
    pub list: SnapshotList,
    pub last_operation: Option<LastOperation>,
    /// When the record was made (ISO 8601, UTC).
    pub timestamp: String,
}

/// The snapshot list, or why it could not be read.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum SnapshotList {
    Listed(SnapshotSummary),
    Failed { error: String },
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SnapshotSummary {
    pub count: usize,
    pub total_bytes: u64,
    /// Bytes held by snapshots alone (not by the live store).
    pub exclusive_bytes: u64,
    pub newest: Option<NewestSnapshot>,
    /// The newest snapshot whose last verification passed.
    pub newest_verified: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NewestSnapshot {
    pub name: String,
    pub created_at: String,
    /// The store sequence it holds.
    pub latest_sequence: u64,
}

impl SnapshotsRecord {
    /// The summary, when the list could be read.
    pub fn summary(&self) -> Option<&SnapshotSummary> {
        match &self.list {
            SnapshotList::Listed(s) => Some(s),
            SnapshotList::Failed { .. } => None,
        }
    }
}

/// Outcome of a backup create.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Ok,
    Failed,
}

/// `swarm/storage/backup`: the last create, restore or drill, the newest
/// backup and the WAL archive. Parts appear once they happened.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct BackupRecord {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_operation: Option<LastOperation>,
    /// The last drill's report, as `backup_drill` returned it (or
    /// `{ok: false, error, at}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drill: Option<Value>,
    /// How the last `backup_create` went.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_result: Option<Outcome>,
    /// The newest backup made by this daemon (kept when a later one fails).
    #[serde(flatten)]
    pub last_backup: Option<LastBackup>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wal_archive: Option<WalArchiveRecord>,
}

/// The newest backup, in the record's top-level fields. A field the
/// create's result lacked is null.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LastBackup {
    /// Its name.
    pub last_backup: Option<String>,
    pub last_backup_at_ms: Option<i64>,
    pub last_backup_at: Option<String>,
    /// The store sequence it holds.
    pub last_backup_sequence: Option<u64>,
    pub bytes_uploaded: Option<u64>,
    pub destination: Option<String>,
}

/// The last WAL archive pass that succeeded.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WalArchiveRecord {
    pub location: String,
    pub archived_sequence: u64,
    pub store_sequence: u64,
    pub lag_sequences: u64,
    pub last_pass_at: String,
    pub last_pass_bytes: u64,
    /// Everything committed before this instant (ms) is archived.
    pub last_pass_started_ms: i64,
}

/// `swarm/storage/disk_io`: the data directory's block device.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DiskIoRecord {
    pub device: String,
    /// Fraction of the last interval it had I/O in flight, 0..1.
    pub utilisation: f64,
    pub interval_secs: f64,
}

/// One target of the external bus (`swarm/storage/external_bus` is a list).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExternalTargetStatus {
    pub name: String,
    pub endpoint: String,
    pub sent: u64,
    pub failures: u64,
    /// Records waiting to be sent.
    pub pending: usize,
    pub last_success_ms: u64,
    pub last_error: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn op() -> LastOperation {
        LastOperation {
            operation: "snapshot_create".into(),
            ok: true,
            error: None,
            duration_ms: 1.5,
            at: "2024-01-01T00:00:00.000Z".into(),
        }
    }

    #[test]
    fn snapshots_record_has_the_published_shape() {
        let r = SnapshotsRecord {
            list: SnapshotList::Listed(SnapshotSummary {
                count: 2,
                total_bytes: 10,
                exclusive_bytes: 4,
                newest: Some(NewestSnapshot {
                    name: "b".into(),
                    created_at: "t".into(),
                    latest_sequence: 7,
                }),
                newest_verified: None,
            }),
            last_operation: Some(op()),
            timestamp: "now".into(),
        };
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            json!({"count": 2, "total_bytes": 10, "exclusive_bytes": 4,
                "newest": {"name": "b", "created_at": "t", "latest_sequence": 7},
                "newest_verified": null,
                "last_operation": {"operation": "snapshot_create", "ok": true, "error": null,
                    "duration_ms": 1.5, "at": "2024-01-01T00:00:00.000Z"},
                "timestamp": "now"})
        );
        let failed = SnapshotsRecord {
            list: SnapshotList::Failed {
                error: "disk".into(),
            },
            last_operation: None,
            timestamp: "now".into(),
        };
        assert_eq!(
            serde_json::to_value(&failed).unwrap(),
            json!({"error": "disk", "last_operation": null, "timestamp": "now"})
        );
    }

    #[test]
    fn backup_record_shows_only_what_happened() {
        let mut r = BackupRecord::default();
        assert_eq!(serde_json::to_value(&r).unwrap(), json!({}));
        r.wal_archive = Some(WalArchiveRecord {
            location: "file:///b".into(),
            archived_sequence: 5,
            store_sequence: 6,
            lag_sequences: 1,
            last_pass_at: "t".into(),
            last_pass_bytes: 9,
            last_pass_started_ms: 3,
        });
        r.last_result = Some(Outcome::Ok);
        r.last_backup = Some(LastBackup {
            last_backup: Some("b1".into()),
            last_backup_at_ms: Some(1),
            last_backup_sequence: Some(5),
            ..LastBackup::default()
        });
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            json!({"last_result": "ok", "last_backup": "b1", "last_backup_at_ms": 1,
                "last_backup_at": null, "last_backup_sequence": 5, "bytes_uploaded": null,
                "destination": null,
                "wal_archive": {"location": "file:///b", "archived_sequence": 5,
                    "store_sequence": 6, "lag_sequences": 1, "last_pass_at": "t",
                    "last_pass_bytes": 9, "last_pass_started_ms": 3}})
        );
    }

    #[test]
    fn records_are_named_by_their_field() {
        let r = Records {
            disk_io: Some(DiskIoRecord {
                device: "vda".into(),
                utilisation: 0.5,
                interval_secs: 1.0,
            }),
            external_bus: Some(vec![]),
            ..Records::default()
        };
        let names: Vec<String> = r.to_json().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["disk_io", "external_bus"]);
        assert_eq!(
            serde_json::to_value(&r).unwrap()["disk_io"],
            json!({"device": "vda", "utilisation": 0.5, "interval_secs": 1.0})
        );
    }
}

/// One thing found wrong.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Problem {
    pub column_family: String,
    /// The key, printable (bytes that are not UTF-8 as `\xNN`), at most 200 chars.
    pub key: String,
    pub problem: String,
}

/// What was read of one column family.
#[derive(Debug, Clone, Serialize, PartialEq, Default)]
pub struct CfReport {
    pub name: String,
    pub keys: u64,
    pub bytes: u64,
    pub problems: u64,
}

/// `swarm/storage/integrity`: the result of the last `check` (the
/// maintenance module makes it; the record keeps the first 10 problems).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct IntegrityReport {
    pub ok: bool,
    /// Every block and value was read (`--verify-integrity`).
    pub deep: bool,
    /// The store sequence the check read at.
    pub sequence: u64,
    pub column_families: Vec<CfReport>,
    pub problems_total: u64,
    /// The first problems found (at most 100).
    pub problems: Vec<Problem>,
    pub collections: usize,
    pub indexes_checked: usize,
    pub access_counters: u64,
    /// Access counters whose entry is gone (entries expired by the
    /// compaction filter leave them; harmless, reported for GC).
    pub orphan_access_counters: u64,
    pub seconds: f64,
    pub mb_per_s: f64,
    pub checked_at: String,
}
