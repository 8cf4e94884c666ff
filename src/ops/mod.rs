//! Every operation the daemon serves, declared once.
//!
//! An operation is a params type — it derives `serde` (JSON-RPC params and
//! MCP arguments), `schemars::JsonSchema` (the MCP tool's input schema) and
//! `clap::Args` (the CLI flags), and its doc comment is the tool's
//! description and the command's help — plus one line in the [`ops!`] table
//! below: method name, CLI path, effect, and what a token needs to run it.
//! The JSON-RPC methods (`rpc`), the MCP tools (`mcp`), the CLI
//! subcommands (`cli`), the routing to actors (`actors::Router`) and the
//! permission check ([`crate::auth`])
//! are all generated from that table.
//!
//! The implementation is a [`Blocking`] impl (run on the persistence
//! actor's threads, or by the scheduler) or a [`Job`] impl (run by an async
//! actor) on the params type, in the module of its area.
//!
//! # Adding a method
//!
//! 1. A params type with its doc comment, e.g. in `ops/storage.rs`:
//!    `/// Count keys with a prefix.` `struct StorageCountParams { prefix: String }`
//!    deriving `Debug, Clone, Serialize, Deserialize, JsonSchema, Args`.
//! 2. Its implementation: `impl Blocking<Store> for StorageCountParams`.
//! 3. A line in the table:
//!    `StorageCount(StorageCountParams) => "storage_count", cli ["count"], ReadOnly, |p| Access::read_prefix(&p.prefix);`
//!
//! `ruvector-storage count --prefix a`, the JSON-RPC method `storage_count`
//! and the MCP tool `storage_count` then exist, with the same names,
//! defaults and checks.

mod index;
mod memory;
mod schedule;
pub mod schema;
mod storage;
mod system;
mod vectors;

pub use index::*;
pub use memory::*;
pub use schedule::*;
pub use storage::*;
pub use system::*;
pub use vectors::*;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::auth::Access;
use crate::backup::params as backup;
use crate::bus::KeyLocks;
use crate::engine::EngineSlot;
use crate::error::{Error, Result};
use crate::maintenance::params as maintenance;
use crate::snapshot::params as snapshot;
use crate::status::StatusBoard;

/// What every params type is.
pub trait Params:
    DeserializeOwned + Serialize + schemars::JsonSchema + clap::Args + Send + 'static
{
}
impl<T> Params for T where
    T: DeserializeOwned + Serialize + schemars::JsonSchema + clap::Args + Send + 'static
{
}

/// An operation run synchronously against a context (the persistence
/// actor's threads for [`Store`]; the scheduler for its own state).
pub trait Blocking<C> {
    fn run(self, ctx: &C) -> Result<Value>;
}

/// A future an async actor runs (it holds what it needs; not `Send`:
/// actix runs it on the actor's arbiter).
pub type JobFuture = Pin<Box<dyn Future<Output = Result<Value>> + 'static>>;

/// An operation run by an async actor against its service.
pub trait Job<S> {
    fn run(self, service: Arc<S>) -> JobFuture;
}

/// Which actor serves an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Persistence,
    Snapshot,
    Backup,
    Maintenance,
    Scheduler,
}

/// What an operation does to the store, for MCP tool annotations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    ReadOnly,
    Write,
    /// Deletes or replaces data (MCP `destructiveHint`).
    Destructive,
}

/// What the persistence operations run against.
#[derive(Debug, Clone)]
pub struct Store {
    pub engine: Arc<EngineSlot>,
    pub locks: Arc<KeyLocks>,
    pub status: Arc<StatusBoard>,
    /// The metrics actor's latest sample (`storage_stats {detailed}`).
    pub metrics: Arc<crate::metrics::Latest>,
}

/// Why a request could not even be turned into an [`Op`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    UnknownMethod(String),
    /// The params do not fit; the message names the field.
    Params(String),
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ParseError::UnknownMethod(m) => write!(f, "unknown method {m:?}"),
            ParseError::Params(m) => f.write_str(m),
        }
    }
}

/// Parse named params, naming the field that does not fit.
fn parse_params<P: DeserializeOwned>(method: &str, raw: &str) -> Result<P, ParseError> {
    let de = &mut serde_json::Deserializer::from_str(raw);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        ParseError::Params(if path == "." || path.is_empty() {
            format!("{method}: invalid params: {inner}")
        } else {
            format!("{method}: invalid params: {path}: {inner}")
        })
    })
}

/// A CLI flag that holds JSON (an entry of a list, a metadata object).
pub(crate) fn json_arg<T: DeserializeOwned>(s: &str) -> std::result::Result<T, String> {
    serde_json::from_str(s).map_err(|e| format!("not valid JSON for this flag: {e}"))
}

/// The params a CLI command's flags stand for, as JSON.
fn from_args<P: Params>(m: &clap::ArgMatches) -> Result<Value> {
    let p = <P as clap::FromArgMatches>::from_arg_matches(m)
        .map_err(|e| Error::invalid(e.to_string()))?;
    serde_json::to_value(&p).map_err(|e| Error::internal(format!("params to JSON: {e}")))
}

/// One operation as the doors see it.
#[derive(Debug, Clone, Copy)]
pub struct OpInfo {
    pub method: &'static str,
    pub route: Route,
    /// The CLI subcommand path, e.g. `["backup", "create"]`.
    pub cli: &'static [&'static str],
    pub effect: Effect,
    /// The params' JSON schema (the MCP tool's input schema).
    pub schema: fn() -> schema::Object,
    /// Add the params' flags to a clap command.
    pub args: fn(clap::Command) -> clap::Command,
    /// The params of parsed flags, as JSON.
    pub from_args: fn(&clap::ArgMatches) -> Result<Value>,
}

impl OpInfo {
    /// The params type's doc comment.
    pub fn description(&self) -> String {
        match (self.schema)().get("description") {
            Some(Value::String(s)) => s.clone(),
            _ => String::new(),
        }
    }

    pub fn find(method: &str) -> Option<&'static OpInfo> {
        OPS.iter().find(|o| o.method == method)
    }
}

/// Declares the operations, grouped by the actor that serves them:
/// `Route(sync|async Context) => RouteEnum { Variant(Params) => "method",
/// cli [path…], Effect, |params| access; … }`.
macro_rules! ops {
    (@run sync $ctx:ty, $enum:ident, $( $variant:ident $params:ty ),*) => {
        impl $enum {
            /// Run it (blocking).
            pub fn run(self, ctx: &$ctx) -> Result<Value> {
                match self { $( Self::$variant(p) => <$params as Blocking<$ctx>>::run(p, ctx), )* }
            }
        }
    };
    (@run async $ctx:ty, $enum:ident, $( $variant:ident $params:ty ),*) => {
        impl $enum {
            /// The future that runs it.
            pub fn run(self, service: &Arc<$ctx>) -> JobFuture {
                match self { $( Self::$variant(p) => <$params as Job<$ctx>>::run(p, service.clone()), )* }
            }
        }
    };
    ($(
        $route:ident ( $style:ident $ctx:ty ) => $enum:ident {
            $( $variant:ident ( $params:ty ) => $method:literal, cli [ $($cli:literal),+ ],
               $effect:ident, |$p:pat_param| $access:expr; )*
        }
    )*) => {
        $(
            #[doc = concat!("The operations the ", stringify!($route), " route serves.")]
            #[derive(Debug, Clone)]
            pub enum $enum { $( $variant($params), )* }

            impl $enum {
                pub fn method(&self) -> &'static str {
                    match self { $( Self::$variant(_) => $method, )* }
                }
                fn access(&self) -> Access {
                    match self { $( Self::$variant($p) => $access, )* }
                }
            }

            ops!(@run $style $ctx, $enum, $( $variant $params ),*);
        )*

        /// One request, routed to the actor that serves it.
        #[derive(Debug, Clone)]
        pub enum Op { $( $route($enum), )* }

        /// Every operation, in table order.
        pub static OPS: &[OpInfo] = &[ $( $(
            OpInfo {
                method: $method,
                route: Route::$route,
                cli: &[ $($cli),+ ],
                effect: Effect::$effect,
                schema: schema::input_schema::<$params>,
                args: <$params as clap::Args>::augment_args,
                from_args: from_args::<$params>,
            },
        )* )* ];

        impl Op {
            /// Parse named params (a JSON object; absent means `{}`).
            pub fn parse(method: &str, params: Option<&str>) -> std::result::Result<Op, ParseError> {
                let raw = params.unwrap_or("{}");
                match method {
                    $( $( $method => parse_params::<$params>($method, raw)
                        .map(|p| Op::$route($enum::$variant(p))), )* )*
                    other => Err(ParseError::UnknownMethod(other.to_string())),
                }
            }

            pub fn method(&self) -> &'static str {
                match self { $( Op::$route(o) => o.method(), )* }
            }

            /// The params as JSON (as a client would send them).
            pub fn params_json(&self) -> Value {
                match self { $( $( Op::$route($enum::$variant(p)) =>
                    serde_json::to_value(p).unwrap_or(Value::Null), )* )* }
            }

            pub fn route(&self) -> Route {
                match self { $( Op::$route(_) => Route::$route, )* }
            }

            /// What a token must grant to run it.
            pub fn access(&self) -> Access {
                match self { $( Op::$route(o) => o.access(), )* }
            }
        }
    };
}

ops! {
    Persistence(sync Store) => PersistenceOp {
        StorageWrite(StorageWriteParams) => "storage_write", cli ["write"], Write,
            |p| Access::Write(p.keys());
        StorageRead(StorageReadParams) => "storage_read", cli ["read"], ReadOnly,
            |p| Access::read(&p.key);
        StorageDelete(StorageDeleteParams) => "storage_delete", cli ["delete"], Destructive,
            |p| Access::Write(p.keys());
        StorageScan(StorageScanParams) => "storage_scan", cli ["scan"], ReadOnly,
            |p| Access::ReadPrefix(p.prefix.clone());
        StorageStats(StorageStatsParams) => "storage_stats", cli ["stats"], ReadOnly,
            |_| Access::Open;
        CollectionCreate(CollectionCreateParams) => "collection_create", cli ["collection", "create"], Write,
            |p| Access::write(&p.name);
        CollectionList(CollectionListParams) => "collection_list", cli ["collection", "list"], ReadOnly,
            |_| Access::Open;
        VectorUpsert(VectorUpsertParams) => "vector_upsert", cli ["vector", "upsert"], Write,
            |p| Access::write(&p.collection);
        VectorGet(VectorGetParams) => "vector_get", cli ["vector", "get"], ReadOnly,
            |p| Access::read(&p.collection);
        VectorDelete(VectorDeleteParams) => "vector_delete", cli ["vector", "delete"], Destructive,
            |p| Access::write(&p.collection);
        VectorSearch(VectorSearchParams) => "vector_search", cli ["vector", "search"], ReadOnly,
            |p| Access::read(&p.collection);
        MemoryUsage(MemoryUsageParams) => "memory_usage", cli ["memory", "usage"], Write,
            |p| p.access();
        MemoryStore(MemoryStoreParams) => "memory_store", cli ["memory", "store"], Write,
            |p| Access::write(&p.namespace);
        MemoryRetrieve(MemoryRetrieveParams) => "memory_retrieve", cli ["memory", "retrieve"], ReadOnly,
            |p| Access::read(&p.namespace);
        MemorySearch(MemorySearchParams) => "memory_search", cli ["memory", "search"], ReadOnly,
            |p| Access::read_namespace_or_all(&p.namespace, "search");
        MemoryDelete(MemoryDeleteParams) => "memory_delete", cli ["memory", "delete"], Destructive,
            |p| Access::write(&p.namespace);
        MemoryList(MemoryListParams) => "memory_list", cli ["memory", "list"], ReadOnly,
            |p| Access::read_namespace_or_all(&p.namespace, "list");
        MemoryStats(MemoryStatsParams) => "memory_stats", cli ["memory", "stats"], ReadOnly,
            |_| Access::ReadAll("count entries");
        SystemHealth(SystemHealthParams) => "system_health", cli ["health"], ReadOnly,
            |_| Access::Open;
        WalCheckpoint(WalCheckpointParams) => "wal_checkpoint", cli ["wal", "checkpoint"], Write,
            |_| Access::Admin;
        CacheConfig(CacheConfigParams) => "cache_config", cli ["cache-config"], Write,
            |_| Access::Admin;
        IndexUpload(IndexUploadParams) => "index_upload", cli ["index", "upload"], Write,
            |p| Access::write(&p.name);
        IndexCommit(IndexCommitParams) => "index_commit", cli ["index", "commit"], Destructive,
            |p| Access::write(&p.name);
        IndexRead(IndexReadParams) => "index_read", cli ["index", "read"], ReadOnly,
            |p| Access::read(&p.name);
        IndexList(IndexListParams) => "index_list", cli ["index", "list"], ReadOnly,
            |_| Access::ReadAll("list indexes");
        IndexDelete(IndexDeleteParams) => "index_delete", cli ["index", "delete"], Destructive,
            |p| Access::write(&p.name);
    }
    Snapshot(async crate::snapshot::Service) => SnapshotOp {
        SnapshotCreate(snapshot::CreateParams) => "snapshot_create", cli ["snapshot", "create"], Write,
            |_| Access::Admin;
        SnapshotList(snapshot::ListParams) => "snapshot_list", cli ["snapshot", "list"], ReadOnly,
            |_| Access::Open;
        SnapshotRestore(snapshot::RestoreParams) => "snapshot_restore", cli ["snapshot", "restore"], Destructive,
            |_| Access::Admin;
        SnapshotDelete(snapshot::DeleteParams) => "snapshot_delete", cli ["snapshot", "delete"], Destructive,
            |_| Access::Admin;
        SnapshotVerify(snapshot::VerifyParams) => "snapshot_verify", cli ["snapshot", "verify"], ReadOnly,
            |_| Access::Admin;
        SnapshotPrune(snapshot::PruneParams) => "snapshot_prune", cli ["snapshot", "prune"], Destructive,
            |_| Access::Admin;
    }
    Backup(async crate::backup::Service) => BackupOp {
        BackupCreate(backup::CreateParams) => "backup_create", cli ["backup", "create"], Write,
            |_| Access::Admin;
        BackupList(backup::ListParams) => "backup_list", cli ["backup", "list"], ReadOnly,
            |_| Access::Admin;
        BackupVerify(backup::VerifyParams) => "backup_verify", cli ["backup", "verify"], ReadOnly,
            |_| Access::Admin;
        BackupRestore(backup::RestoreParams) => "backup_restore", cli ["backup", "restore"], Destructive,
            |_| Access::Admin;
        BackupPrune(backup::PruneParams) => "backup_prune", cli ["backup", "prune"], Destructive,
            |_| Access::Admin;
        BackupCopy(backup::CopyParams) => "backup_copy", cli ["backup", "copy"], Write,
            |_| Access::Admin;
        BackupDrill(backup::DrillParams) => "backup_drill", cli ["backup", "drill"], Write,
            |_| Access::Admin;
        BackupStatus(backup::StatusParams) => "backup_status", cli ["backup", "status"], ReadOnly,
            |_| Access::Admin;
        WalArchive(backup::WalArchiveParams) => "wal_archive", cli ["wal", "archive"], Write,
            |_| Access::Admin;
        WalReplay(backup::WalReplayParams) => "wal_replay", cli ["wal", "replay"], ReadOnly,
            |_| Access::Admin;
    }
    Maintenance(async crate::maintenance::Service) => MaintenanceOp {
        StorageCheck(maintenance::CheckParams) => "storage_check", cli ["check"], ReadOnly,
            |_| Access::Admin;
        StorageCompress(maintenance::CompressParams) => "storage_compress", cli ["compress"], Write,
            |_| Access::Admin;
        StorageCompact(maintenance::CompactParams) => "storage_compact", cli ["compact"], Write,
            |_| Access::Admin;
        AnalyzeCompression(maintenance::AnalyzeCompressionParams) => "analyze_compression", cli ["analyze-compression"], ReadOnly,
            |_| Access::Admin;
        MaintenanceCancel(maintenance::CancelParams) => "maintenance_cancel", cli ["maintenance", "cancel"], Write,
            |_| Access::Admin;
        MaintenanceStatus(maintenance::StatusParams) => "maintenance_status", cli ["maintenance", "status"], ReadOnly,
            |_| Access::Admin;
    }
    Scheduler(sync crate::schedule::Jobs) => SchedulerOp {
        ScheduleList(ScheduleListParams) => "schedule_list", cli ["schedule", "list"], ReadOnly,
            |_| Access::Open;
    }
}

/// Every JSON-RPC method name (also the MCP tool names), in table order.
pub fn methods() -> impl Iterator<Item = &'static str> {
    OPS.iter().map(|o| o.method)
}

/// `Job` impls that each call one method of a service.
macro_rules! jobs {
    ($svc:ty { $( $params:ty => |$p:ident, $s:ident| $body:expr; )* }) => {
        $( impl Job<$svc> for $params {
            fn run(self, $s: Arc<$svc>) -> JobFuture {
                let $p = self;
                Box::pin($body)
            }
        } )*
    };
}

jobs!(crate::snapshot::Service {
    snapshot::CreateParams => |p, s| s.create(p);
    snapshot::ListParams => |p, s| s.list(p);
    snapshot::RestoreParams => |p, s| s.restore(p.name);
    snapshot::DeleteParams => |p, s| s.delete(p);
    snapshot::VerifyParams => |p, s| s.verify(p);
    snapshot::PruneParams => |p, s| s.prune(p);
});

jobs!(crate::backup::Service {
    backup::CreateParams => |p, s| s.create(p);
    backup::ListParams => |p, s| s.list(p);
    backup::VerifyParams => |p, s| s.verify(p);
    backup::RestoreParams => |p, s| s.restore(p);
    backup::PruneParams => |p, s| s.prune(p);
    backup::CopyParams => |p, s| s.copy(p);
    backup::DrillParams => |_p, s| s.drill();
    backup::StatusParams => |_p, s| s.status();
    backup::WalArchiveParams => |p, s| s.wal_archive(p);
    backup::WalReplayParams => |p, s| s.wal_replay(p);
});

jobs!(crate::maintenance::Service {
    maintenance::CheckParams => |p, s| s.check(p);
    maintenance::CompressParams => |p, s| s.compress(p);
    maintenance::CompactParams => |p, s| s.compact(p);
    maintenance::AnalyzeCompressionParams => |p, s| s.analyze_compression(p);
    maintenance::CancelParams => |_p, s| s.cancel_job();
    maintenance::StatusParams => |_p, s| s.status();
});

#[cfg(test)]
mod tests;
