//! Every operation the daemon serves, as typed parameters, and the one
//! function that executes them against the store. JSON-RPC methods and MCP
//! tools are generated from the table in [`ops!`]: a method's name, its
//! parameter type and its `Op` variant are written once.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{json, Value};

use crate::bus::tools::{self, *};
use crate::bus::{KeyLocks, MemoryStore};
use crate::engine::{EngineSlot, Metric, VectorInput};
use crate::error::{Error, Result};
use crate::status::StatusBoard;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KvEntryParam {
    pub key: String,
    pub value: String,
}

/// `storage_write`: one `key`/`value`, or several `entries` written atomically.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageWriteParams {
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub value: Option<String>,
    #[serde(default)]
    pub entries: Option<Vec<KvEntryParam>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageReadParams {
    pub key: String,
}

/// `storage_delete`: one `key` or several `keys`, atomically.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageDeleteParams {
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub keys: Option<Vec<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageScanParams {
    #[serde(default)]
    pub prefix: String,
    #[serde(default = "default_scan_limit")]
    pub limit: usize,
    #[serde(default)]
    pub cursor: Option<String>,
}

const fn default_scan_limit() -> usize {
    100
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct NoParams {}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct StorageStatsParams {
    /// Add every metric of `GET /metrics` (as name → value).
    #[serde(default)]
    pub detailed: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CollectionCreateParams {
    pub name: String,
    pub dimension: usize,
    #[serde(default)]
    pub metric: Metric,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VectorUpsertParams {
    pub collection: String,
    pub vectors: Vec<VectorInput>,
}

#[derive(Debug, Clone, Copy, Deserialize, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum VectorEncoding {
    #[default]
    Json,
    Base64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VectorGetParams {
    pub collection: String,
    pub ids: Vec<String>,
    #[serde(default = "yes")]
    pub include_vector: bool,
    #[serde(default)]
    pub encoding: VectorEncoding,
}

const fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VectorDeleteParams {
    pub collection: String,
    pub ids: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct WalCheckpointParams {
    /// Flush memtables even when RocksDB would not (always flushes today).
    #[serde(default)]
    pub force: bool,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct SnapshotCreateParams {
    /// Default: `snap-YYYYMMDD-HHMMSS-mmm`.
    #[serde(default)]
    pub name: Option<String>,
    /// Verify the snapshot right after creating it.
    #[serde(default)]
    pub verify: bool,
    /// Set by the scheduler (not a wire field).
    #[serde(skip)]
    pub scheduled: bool,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct SnapshotListParams {
    #[serde(default)]
    pub with_size: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotNameParams {
    pub name: String,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct SnapshotVerifyParams {
    /// Default: the newest snapshot.
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotDeleteParams {
    pub name: String,
    #[serde(default)]
    pub confirm: bool,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SnapshotPruneParams {
    #[serde(default, alias = "dry_run")]
    pub dry_run: bool,
    /// Only consider snapshots of this kind (manual, scheduled, undo);
    /// others are left out of the plan. Default: all.
    #[serde(default)]
    pub kind: Option<crate::snapshot::Kind>,
    #[serde(flatten)]
    pub policy: crate::snapshot::retention::Policy,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct BackupCreateParams {
    /// Target URL (file:///…, s3://…, az://…, gs://…). Default: `[backup]
    /// destination`, else `<data-dir>/backups`.
    #[serde(default)]
    pub destination: Option<String>,
    /// Upload every object even if the target has it.
    #[serde(default)]
    pub full: bool,
    /// Skip objects the target already has (the default).
    #[serde(default)]
    pub incremental: bool,
    /// Encrypt (AES-256-GCM under a key from the keyring).
    #[serde(default)]
    pub encrypt: bool,
    /// Incremental backups: `files` (new checkpoint files), `wal` (the
    /// archived WAL since the base backup) or `auto` (the default: WAL
    /// while it is under half the base's size, else files).
    #[serde(default)]
    pub method: Option<String>,
    /// Default: `backup-YYYYMMDD-HHMMSS-mmm`.
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct BackupListParams {
    #[serde(default)]
    pub location: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct BackupVerifyParams {
    #[serde(default)]
    pub location: Option<String>,
    /// Default: the newest backup.
    #[serde(default)]
    pub name: Option<String>,
    /// Download, decode and checksum every object.
    #[serde(default, alias = "read-data")]
    pub read_data: bool,
    /// ... or this share of them, e.g. "10%".
    #[serde(default, alias = "read-data-subset")]
    pub read_data_subset: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct BackupRestoreParams {
    #[serde(default)]
    pub from: Option<String>,
    /// Default: the newest backup.
    #[serde(default)]
    pub name: Option<String>,
    /// Restore into this (absolute) directory instead of the running daemon.
    #[serde(default)]
    pub to: Option<String>,
    /// Replace a non-empty `to`.
    #[serde(default)]
    pub force: bool,
    /// Point in time: replay the WAL archive up to this sequence...
    #[serde(default, alias = "to-sequence")]
    pub to_sequence: Option<u64>,
    /// ... or up to the last batch committed at or before this time
    /// (RFC 3339, or milliseconds since the epoch).
    #[serde(default, alias = "to-time")]
    pub to_time: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct BackupPruneParams {
    #[serde(default)]
    pub location: Option<String>,
    #[serde(default, alias = "dry_run")]
    pub dry_run: bool,
    #[serde(flatten)]
    pub policy: crate::snapshot::retention::Policy,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct BackupCopyParams {
    /// Source. Default: `[backup] destination`, else `<data-dir>/backups`.
    #[serde(default)]
    pub from: Option<String>,
    pub to: String,
    /// Only this backup (default: every backup the destination lacks).
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct WalArchiveParams {
    /// Target URL. Default: `[backup] destination`, else `<data-dir>/backups`.
    #[serde(default)]
    pub to: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct WalReplayParams {
    /// Archive location. Default as for `wal_archive`.
    #[serde(default)]
    pub from: Option<String>,
    /// Changes after this sequence.
    #[serde(alias = "from-sequence")]
    pub from_sequence: u64,
    #[serde(default = "default_replay_limit")]
    pub limit: usize,
}

const fn default_replay_limit() -> usize {
    1000
}

/// `index_upload`: append a chunk to an index upload.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndexUploadParams {
    pub name: String,
    /// Continue this upload; absent starts a new one (at offset 0).
    #[serde(default)]
    pub upload_id: Option<String>,
    /// Where this chunk starts: the bytes the upload holds so far.
    #[serde(default)]
    pub offset: u64,
    /// The chunk, base64 (at most 8 MiB decoded).
    pub data: String,
}

/// `index_commit`: make an upload the index's content.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndexCommitParams {
    pub name: String,
    pub upload_id: String,
    /// e.g. hnsw, ivf.
    pub index_type: String,
    /// Expected total bytes (refused if the upload holds another count).
    #[serde(default)]
    pub size: Option<u64>,
    /// Expected SHA-256, hex (refused if the bytes differ).
    #[serde(default)]
    pub sha256: Option<String>,
    /// Where the uploader read it from (informational).
    #[serde(default)]
    pub source: Option<String>,
    /// The index's own parameters (dimension, M, ef, …).
    #[serde(default)]
    pub metadata: Option<Value>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndexReadParams {
    pub name: String,
    #[serde(default)]
    pub offset: u64,
    /// Bytes to return (at most 8 MiB).
    #[serde(default = "default_index_read")]
    pub length: usize,
    /// Refuse if the index's SHA-256 is no longer this (pin it across the
    /// calls of one read so a replacement in between is noticed).
    #[serde(default)]
    pub sha256: Option<String>,
}

const fn default_index_read() -> usize {
    crate::engine::indexes::MAX_CHUNK_BYTES
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndexDeleteParams {
    pub name: String,
    /// Abandon this unfinished upload of the index instead.
    #[serde(default)]
    pub upload_id: Option<String>,
}

/// Declares the operations: `Variant(Params) => "method_name"`.
macro_rules! ops {
    ($( $variant:ident($params:ty) => $method:literal, )*) => {
        /// One request to the persistence actor.
        #[derive(Debug, Clone)]
        pub enum Op { $( $variant($params), )* }

        /// Every JSON-RPC method name (also the MCP tool names).
        pub const METHODS: &[&str] = &[ $( $method, )* ];

        impl Op {
            /// Parse named parameters (a JSON object; absent means `{}`).
            pub fn parse(method: &str, params: Option<&str>) -> std::result::Result<Op, ParseError> {
                let raw = params.unwrap_or("{}");
                match method {
                    $( $method => serde_json::from_str::<$params>(raw)
                        .map(Op::$variant)
                        .map_err(|e| ParseError::Params(format!("{}: invalid params: {e}", $method))), )*
                    other => Err(ParseError::UnknownMethod(other.to_string())),
                }
            }

            pub fn method(&self) -> &'static str {
                match self { $( Op::$variant(_) => $method, )* }
            }
        }
    };
}

ops! {
    StorageWrite(StorageWriteParams) => "storage_write",
    StorageRead(StorageReadParams) => "storage_read",
    StorageDelete(StorageDeleteParams) => "storage_delete",
    StorageScan(StorageScanParams) => "storage_scan",
    StorageStats(StorageStatsParams) => "storage_stats",
    CollectionCreate(CollectionCreateParams) => "collection_create",
    CollectionList(NoParams) => "collection_list",
    VectorUpsert(VectorUpsertParams) => "vector_upsert",
    VectorGet(VectorGetParams) => "vector_get",
    VectorDelete(VectorDeleteParams) => "vector_delete",
    MemoryUsage(MemoryUsageParams) => "memory_usage",
    MemoryStore(MemoryStoreParams) => "memory_store",
    MemoryRetrieve(MemoryKeyParams) => "memory_retrieve",
    MemorySearch(MemorySearchParams) => "memory_search",
    MemoryDelete(MemoryKeyParams) => "memory_delete",
    MemoryList(MemoryListParams) => "memory_list",
    MemoryStats(MemoryStatsParams) => "memory_stats",
    SystemHealth(NoParams) => "system_health",
    WalCheckpoint(WalCheckpointParams) => "wal_checkpoint",
    SnapshotCreate(SnapshotCreateParams) => "snapshot_create",
    SnapshotList(SnapshotListParams) => "snapshot_list",
    SnapshotRestore(SnapshotNameParams) => "snapshot_restore",
    SnapshotDelete(SnapshotDeleteParams) => "snapshot_delete",
    SnapshotVerify(SnapshotVerifyParams) => "snapshot_verify",
    SnapshotPrune(SnapshotPruneParams) => "snapshot_prune",
    ScheduleList(NoParams) => "schedule_list",
    BackupCreate(BackupCreateParams) => "backup_create",
    BackupList(BackupListParams) => "backup_list",
    BackupVerify(BackupVerifyParams) => "backup_verify",
    BackupRestore(BackupRestoreParams) => "backup_restore",
    BackupPrune(BackupPruneParams) => "backup_prune",
    BackupCopy(BackupCopyParams) => "backup_copy",
    BackupDrill(NoParams) => "backup_drill",
    BackupStatus(NoParams) => "backup_status",
    WalArchive(WalArchiveParams) => "wal_archive",
    WalReplay(WalReplayParams) => "wal_replay",
    IndexUpload(IndexUploadParams) => "index_upload",
    IndexCommit(IndexCommitParams) => "index_commit",
    IndexRead(IndexReadParams) => "index_read",
    IndexList(NoParams) => "index_list",
    IndexDelete(IndexDeleteParams) => "index_delete",
}

/// Which actor serves an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Persistence,
    Snapshot,
    Scheduler,
    Backup,
}

/// Why a request could not even be turned into an [`Op`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    UnknownMethod(String),
    Params(String),
}

impl Op {
    pub fn route(&self) -> Route {
        match self {
            Op::SnapshotCreate(_)
            | Op::SnapshotList(_)
            | Op::SnapshotRestore(_)
            | Op::SnapshotDelete(_)
            | Op::SnapshotVerify(_)
            | Op::SnapshotPrune(_) => Route::Snapshot,
            Op::ScheduleList(_) => Route::Scheduler,
            Op::BackupCreate(_)
            | Op::BackupList(_)
            | Op::BackupVerify(_)
            | Op::BackupRestore(_)
            | Op::BackupPrune(_)
            | Op::BackupCopy(_)
            | Op::BackupDrill(_)
            | Op::BackupStatus(_)
            | Op::WalArchive(_)
            | Op::WalReplay(_) => Route::Backup,
            _ => Route::Persistence,
        }
    }
}

/// What an operation runs against.
#[derive(Debug, Clone)]
pub struct Shared {
    pub engine: Arc<EngineSlot>,
    pub locks: Arc<KeyLocks>,
    pub status: Arc<StatusBoard>,
}

/// Run one operation (blocking: call from the persistence actor's threads).
pub fn execute(s: &Shared, op: Op) -> Result<Value> {
    let engine = s.engine.get()?;
    let e = &*engine;
    let memory = MemoryStore::new(e, &s.locks);
    match op {
        Op::StorageWrite(p) => {
            let entries: Vec<(String, String)> = match (p.key, p.value, p.entries) {
                (Some(k), Some(v), None) => vec![(k, v)],
                (None, None, Some(list)) => list.into_iter().map(|x| (x.key, x.value)).collect(),
                (Some(_), None, None) => {
                    return Err(Error::invalid("storage_write: value is required with key"))
                }
                _ => {
                    return Err(Error::invalid(
                        "storage_write: give either key and value, or entries: [{key, value}]",
                    ))
                }
            };
            e.kv_put_many(&entries)?;
            let bytes: usize = entries.iter().map(|(k, v)| k.len() + v.len()).sum();
            Ok(json!({"written": entries.len(), "bytes": bytes,
                "keys": entries.iter().map(|(k, _)| k).collect::<Vec<_>>()}))
        }
        Op::StorageRead(p) => {
            let value = e.kv_get(&p.key)?;
            Ok(json!({"key": p.key, "found": value.is_some(), "value": value}))
        }
        Op::StorageDelete(p) => {
            let keys = match (p.key, p.keys) {
                (Some(k), None) => vec![k],
                (None, Some(ks)) => ks,
                _ => return Err(Error::invalid("storage_delete: give either key or keys")),
            };
            let existed = e.kv_delete(&keys)?;
            Ok(json!({"deleted": existed, "requested": keys.len()}))
        }
        Op::StorageScan(p) => Ok(json!(e.kv_scan(&p.prefix, p.limit, p.cursor.as_deref())?)),
        Op::StorageStats(p) => storage_stats(e, s, p.detailed),
        Op::CollectionCreate(p) => {
            let (info, created) = e.collection_create(&p.name, p.dimension, p.metric)?;
            Ok(json!({"collection": info, "created": created}))
        }
        Op::CollectionList(_) => {
            let list = e.collection_list()?;
            Ok(json!({"collections": list, "count": list.len()}))
        }
        Op::VectorUpsert(p) => {
            let n = e.vector_upsert(&p.collection, &p.vectors)?;
            Ok(json!({"collection": p.collection, "upserted": n}))
        }
        Op::VectorGet(p) => {
            let (found, missing) = e.vector_get(
                &p.collection,
                &p.ids,
                p.include_vector,
                p.encoding == VectorEncoding::Base64,
            )?;
            Ok(json!({"collection": p.collection, "vectors": found, "missing": missing}))
        }
        Op::VectorDelete(p) => {
            let n = e.vector_delete(&p.collection, &p.ids)?;
            Ok(json!({"collection": p.collection, "deleted": n, "requested": p.ids.len()}))
        }
        Op::MemoryUsage(p) => tools::memory_usage(&memory, p),
        Op::MemoryStore(p) => tools::memory_store(&memory, p),
        Op::MemoryRetrieve(p) => tools::memory_retrieve(&memory, p),
        Op::MemorySearch(p) => tools::memory_search(&memory, p),
        Op::MemoryDelete(p) => tools::memory_delete(&memory, p),
        Op::MemoryList(p) => tools::memory_list(&memory, p),
        Op::MemoryStats(p) => tools::memory_stats(&memory, p),
        Op::IndexUpload(p) => {
            let data = crate::engine::indexes::decode_chunk(&p.data)
                .map_err(|e| e.context(format!("index_upload {:?}", p.name)))?;
            let up = e.index_upload(&p.name, p.upload_id.as_deref(), p.offset, &data)?;
            Ok(json!({"name": p.name, "upload_id": up.upload_id, "received": up.received}))
        }
        Op::IndexCommit(p) => {
            let (info, previous) = e.index_commit(
                &p.name,
                &p.upload_id,
                &p.index_type,
                p.size,
                p.sha256.as_deref(),
                p.source,
                p.metadata,
            )?;
            Ok(json!({"index": info, "replaced": previous.map(|p| p.sha256)}))
        }
        Op::IndexRead(p) => {
            use base64::Engine as _;
            let (info, bytes) = e.index_read(&p.name, p.offset, p.length, p.sha256.as_deref())?;
            let end = p.offset + bytes.len() as u64;
            Ok(json!({"name": info.name, "index_type": info.index_type,
                "size_bytes": info.size_bytes, "sha256": info.sha256,
                "offset": p.offset, "length": bytes.len(), "eof": end >= info.size_bytes,
                "data": base64::engine::general_purpose::STANDARD.encode(&bytes)}))
        }
        Op::IndexList(_) => {
            let (indexes, uploads) = e.index_list()?;
            Ok(json!({"count": indexes.len(), "indexes": indexes, "uploads": uploads}))
        }
        Op::IndexDelete(p) => match p.upload_id {
            Some(id) => {
                let aborted = e.index_abort(&p.name, &id)?;
                Ok(json!({"name": p.name, "upload_id": id, "aborted": aborted}))
            }
            None => Ok(json!({"name": p.name, "deleted": e.index_delete(&p.name)?})),
        },
        Op::WalCheckpoint(_) => {
            let t = std::time::Instant::now();
            e.flush()?;
            Ok(json!({"flushed": true, "wal_synced": true,
                "latest_sequence": e.db().latest_sequence_number(),
                "duration_ms": t.elapsed().as_secs_f64() * 1000.0}))
        }
        other @ (Op::SnapshotCreate(_)
        | Op::SnapshotList(_)
        | Op::SnapshotRestore(_)
        | Op::SnapshotDelete(_)
        | Op::SnapshotVerify(_)
        | Op::SnapshotPrune(_)
        | Op::ScheduleList(_)
        | Op::BackupCreate(_)
        | Op::BackupList(_)
        | Op::BackupVerify(_)
        | Op::BackupRestore(_)
        | Op::BackupPrune(_)
        | Op::BackupCopy(_)
        | Op::BackupDrill(_)
        | Op::BackupStatus(_)
        | Op::WalArchive(_)
        | Op::WalReplay(_)) => Err(Error::internal(format!(
            "{} is served by the {:?} actor, not the persistence actor",
            other.method(),
            other.route()
        ))),
        Op::SystemHealth(_) => {
            // A real read proves the store answers.
            e.get(crate::engine::Cf::Sys, b"schema_version")?;
            Ok(
                json!({"status": s.status.overall(), "version": env!("CARGO_PKG_VERSION"),
                "pid": std::process::id(), "store": e.path().display().to_string(),
                "latest_sequence": e.db().latest_sequence_number(),
                "actors": s.status.snapshot()}),
            )
        }
    }
}

fn storage_stats(e: &crate::engine::Engine, s: &Shared, detailed: bool) -> Result<Value> {
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
        "metrics": detailed.then(|| {
            let data_dir = e.path().parent().unwrap_or(e.path());
            crate::metrics::samples(&crate::metrics::render(e, &s.status, data_dir))
        }),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_method_parses_and_maps_back() {
        for m in METHODS {
            let params = match *m {
                "storage_write" => r#"{"key":"k","value":"v"}"#,
                "storage_read" => r#"{"key":"k"}"#,
                "storage_delete" => r#"{"key":"k"}"#,
                "collection_create" => r#"{"name":"c","dimension":3}"#,
                "vector_upsert" => r#"{"collection":"c","vectors":[]}"#,
                "vector_get" | "vector_delete" => r#"{"collection":"c","ids":["a"]}"#,
                "memory_usage" => r#"{"action":"list"}"#,
                "memory_store" => r#"{"key":"k","value":"v"}"#,
                "memory_retrieve" | "memory_delete" => r#"{"key":"k"}"#,
                "memory_search" => r#"{"query":"q"}"#,
                "snapshot_restore" => r#"{"name":"n"}"#,
                "snapshot_delete" => r#"{"name":"n","confirm":true}"#,
                "snapshot_prune" => r#"{"keep-last":2,"dry-run":true}"#,
                "backup_prune" => r#"{"keep-last":2,"dry-run":true}"#,
                "backup_copy" => r#"{"to":"file:///tmp/x"}"#,
                "wal_replay" => r#"{"from_sequence":3}"#,
                "index_upload" => r#"{"name":"i","data":""}"#,
                "index_commit" => r#"{"name":"i","upload_id":"u","index_type":"hnsw"}"#,
                "index_read" | "index_delete" => r#"{"name":"i"}"#,
                _ => "{}",
            };
            let op = Op::parse(m, Some(params)).unwrap_or_else(|e| panic!("{m}: {e:?}"));
            assert_eq!(op.method(), *m);
        }
        assert!(matches!(
            Op::parse("nope", None),
            Err(ParseError::UnknownMethod(_))
        ));
        assert!(matches!(
            Op::parse("storage_read", Some("{\"kee\":1}")),
            Err(ParseError::Params(_))
        ));
        assert!(Op::parse("storage_stats", None).is_ok());
    }
}
