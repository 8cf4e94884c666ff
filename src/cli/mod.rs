//! The command line (clap). `serve` runs the daemon; `mcp` runs the MCP
//! stdio server; every other command is a JSON-RPC client of the daemon
//! found through `--data-dir` (its `daemon.json`) or `--connect URL`.

mod output;
mod run;

pub use run::main;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use serde_json::{json, Map, Value};

use crate::config::{Config, Overrides, DEFAULT_DATA_DIR};
use crate::error::{Error, Result};
use crate::rpc::client::{Client, Target};

#[derive(Debug, Parser)]
#[command(
    name = "ruvector-storage",
    version,
    about = "Persistence specialist of RuVector swarms: a RocksDB daemon with a swarm memory bus, JSON-RPC and MCP"
)]
pub struct Cli {
    /// Configuration file (TOML). Without it: built-in defaults + RUVECTOR_STORAGE__* env.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

/// How a client command reaches the daemon.
#[derive(Debug, Args, Clone)]
pub struct Conn {
    /// Data directory of the daemon (its daemon.json names the address).
    #[arg(long, value_name = "PATH", default_value = DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,
    /// Daemon URL, e.g. http://127.0.0.1:7411 (overrides --data-dir).
    #[arg(long, value_name = "URL")]
    pub connect: Option<String>,
    /// Print the raw JSON result.
    #[arg(long)]
    pub json: bool,
}

impl Conn {
    fn target(&self) -> Target {
        match &self.connect {
            Some(u) => Target::Url(u.clone()),
            None => Target::DataDir(self.data_dir.clone()),
        }
    }
}

#[derive(Debug, Args, Clone, Default)]
pub struct ServeArgs {
    /// Data directory (default ./ruvector-data).
    #[arg(long, value_name = "PATH")]
    pub data_dir: Option<PathBuf>,
    /// Listen address HOST:PORT (default 127.0.0.1:7411; port 0 picks one).
    #[arg(long, value_name = "HOST:PORT")]
    pub listen: Option<String>,
    /// WAL durability: always | interval:<ms> | never.
    #[arg(long)]
    pub sync: Option<String>,
    /// Log filter, e.g. info or debug.
    #[arg(long)]
    pub log_level: Option<String>,
}

impl ServeArgs {
    pub fn overrides(&self) -> Overrides {
        Overrides {
            data_dir: self.data_dir.clone(),
            listen: self.listen.clone(),
            sync: self.sync.clone(),
            log_level: self.log_level.clone(),
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a data directory with an example configuration file.
    Init {
        /// Data directory to create.
        #[arg(long, default_value = DEFAULT_DATA_DIR)]
        path: PathBuf,
        /// Storage engine (only rocksdb).
        #[arg(long, default_value = "rocksdb")]
        engine: String,
    },
    /// Run the daemon (the only process that opens the store).
    Serve(ServeArgs),
    /// Serve MCP over stdio, as a client of the daemon (started if needed).
    Mcp {
        #[arg(long, default_value = DEFAULT_DATA_DIR)]
        data_dir: PathBuf,
        /// Use this daemon instead of finding/starting one for --data-dir.
        #[arg(long)]
        connect: Option<String>,
    },
    /// Write a key/value pair.
    Write {
        #[arg(long)]
        key: String,
        #[arg(long)]
        value: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// Read a key.
    Read {
        #[arg(long)]
        key: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// Delete a key.
    Delete {
        #[arg(long)]
        key: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// List keys with a prefix.
    Scan {
        #[arg(long, default_value = "")]
        prefix: String,
        #[arg(long, default_value_t = 100)]
        limit: usize,
        #[arg(long)]
        cursor: Option<String>,
        #[command(flatten)]
        conn: Conn,
    },
    /// Store statistics.
    Stats {
        /// Include column families and actor states.
        #[arg(long)]
        detailed: bool,
        #[command(flatten)]
        conn: Conn,
    },
    /// Daemon health.
    Health {
        #[command(flatten)]
        conn: Conn,
    },
    /// Swarm memory (claude-flow compatible).
    #[command(subcommand)]
    Memory(MemoryCmd),
    /// Vector collections.
    #[command(subcommand)]
    Collection(CollectionCmd),
    /// Point-in-time snapshots.
    #[command(subcommand)]
    Snapshot(SnapshotCmd),
    /// Write-ahead log.
    #[command(subcommand)]
    Wal(WalCmd),
    /// Cron jobs.
    #[command(subcommand)]
    Schedule(ScheduleCmd),
    /// Measure ingest, durable writes and reads (see README).
    Bench(crate::bench::BenchArgs),
}

#[derive(Debug, Subcommand)]
pub enum MemoryCmd {
    /// Store a value (v3 memory_store).
    Store {
        #[arg(long)]
        key: String,
        #[arg(long)]
        value: String,
        #[arg(long)]
        namespace: Option<String>,
        /// Time to live, seconds.
        #[arg(long)]
        ttl: Option<f64>,
        /// Comma-separated tags.
        #[arg(long, value_delimiter = ',')]
        tags: Vec<String>,
        /// Overwrite an existing key.
        #[arg(long)]
        upsert: bool,
        #[command(flatten)]
        conn: Conn,
    },
    /// Read one entry.
    Retrieve {
        #[arg(long)]
        key: String,
        #[arg(long)]
        namespace: Option<String>,
        #[command(flatten)]
        conn: Conn,
    },
    /// List entries, newest first.
    List {
        #[arg(long)]
        namespace: Option<String>,
        #[arg(long)]
        limit: Option<u32>,
        #[arg(long, value_delimiter = ',')]
        tags: Vec<String>,
        #[command(flatten)]
        conn: Conn,
    },
    /// Delete one entry.
    Delete {
        #[arg(long)]
        key: String,
        #[arg(long)]
        namespace: Option<String>,
        #[command(flatten)]
        conn: Conn,
    },
    /// Relevance search (BM25).
    Search {
        #[arg(long)]
        query: String,
        #[arg(long)]
        namespace: Option<String>,
        #[arg(long)]
        limit: Option<u32>,
        #[arg(long)]
        threshold: Option<f64>,
        #[command(flatten)]
        conn: Conn,
    },
    /// Entry counts per namespace and bytes on disk.
    Stats {
        #[command(flatten)]
        conn: Conn,
    },
}

#[derive(Debug, Subcommand)]
pub enum SnapshotCmd {
    /// Create a snapshot.
    Create {
        /// Default: snap-YYYYMMDD-HHMMSS-mmm.
        #[arg(long)]
        name: Option<String>,
        /// Verify it right after creating it.
        #[arg(long)]
        verify: bool,
        #[command(flatten)]
        conn: Conn,
    },
    /// List snapshots.
    List {
        /// Add each snapshot's exclusive bytes (its delta).
        #[arg(long)]
        with_size: bool,
        #[command(flatten)]
        conn: Conn,
    },
    /// Replace the live store with a snapshot (keeps an undo snapshot).
    Restore {
        #[arg(long)]
        name: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// Delete a snapshot.
    Delete {
        #[arg(long)]
        name: String,
        /// Required: deleting is not undoable.
        #[arg(long)]
        confirm: bool,
        #[command(flatten)]
        conn: Conn,
    },
    /// Re-check checksums and read all of a snapshot (default: newest).
    Verify {
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        conn: Conn,
    },
    /// Apply a retention policy (restic's keep-* rules).
    Prune {
        /// Print the plan; delete nothing.
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        keep_last: Option<u32>,
        #[arg(long)]
        keep_hourly: Option<u32>,
        #[arg(long)]
        keep_daily: Option<u32>,
        #[arg(long)]
        keep_weekly: Option<u32>,
        #[arg(long)]
        keep_monthly: Option<u32>,
        /// e.g. 36h, 7d, 2w.
        #[arg(long)]
        keep_within: Option<String>,
        #[command(flatten)]
        conn: Conn,
    },
}

#[derive(Debug, Subcommand)]
pub enum WalCmd {
    /// Flush memtables and fsync the WAL.
    Checkpoint {
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        conn: Conn,
    },
}

#[derive(Debug, Subcommand)]
pub enum ScheduleCmd {
    /// Jobs with last run, next run and last result.
    List {
        #[command(flatten)]
        conn: Conn,
    },
}

#[derive(Debug, Subcommand)]
pub enum CollectionCmd {
    /// Create a collection.
    Create {
        #[arg(long)]
        name: String,
        #[arg(long)]
        dimension: usize,
        #[arg(long, default_value = "cosine")]
        metric: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// List collections.
    List {
        #[command(flatten)]
        conn: Conn,
    },
}

/// Named params object, leaving out `None`s and empty lists.
fn params(pairs: Vec<(&str, Value)>) -> Value {
    let mut m = Map::new();
    for (k, v) in pairs {
        let empty = v.is_null() || v.as_array().is_some_and(|a| a.is_empty());
        if !empty {
            m.insert(k.to_string(), v);
        }
    }
    Value::Object(m)
}

async fn call(conn: &Conn, method: &str, p: Value) -> Result<Value> {
    let client = Client::connect(&conn.target()).await?;
    client.call(method, p).await.map_err(|e| e.into_error())
}

/// Run a client command; returns the text to print.
pub async fn run_client(command: Command) -> Result<String> {
    let (conn, method, p) = match command {
        Command::Write { key, value, conn } => {
            (conn, "storage_write", json!({"key": key, "value": value}))
        }
        Command::Read { key, conn } => (conn, "storage_read", json!({"key": key})),
        Command::Delete { key, conn } => (conn, "storage_delete", json!({"key": key})),
        Command::Scan {
            prefix,
            limit,
            cursor,
            conn,
        } => (
            conn,
            "storage_scan",
            params(vec![
                ("prefix", json!(prefix)),
                ("limit", json!(limit)),
                ("cursor", json!(cursor)),
            ]),
        ),
        Command::Stats { detailed, conn } => {
            let v = call(&conn, "storage_stats", json!({})).await?;
            return Ok(output::render(&conn, "storage_stats", &v, detailed));
        }
        Command::Health { conn } => (conn, "system_health", json!({})),
        Command::Memory(m) => match m {
            MemoryCmd::Store {
                key,
                value,
                namespace,
                ttl,
                tags,
                upsert,
                conn,
            } => (
                conn,
                "memory_store",
                params(vec![
                    ("key", json!(key)),
                    ("value", json!(value)),
                    ("namespace", json!(namespace)),
                    ("ttl", json!(ttl)),
                    ("tags", json!(tags)),
                    ("upsert", json!(upsert)),
                ]),
            ),
            MemoryCmd::Retrieve {
                key,
                namespace,
                conn,
            } => (
                conn,
                "memory_retrieve",
                params(vec![("key", json!(key)), ("namespace", json!(namespace))]),
            ),
            MemoryCmd::List {
                namespace,
                limit,
                tags,
                conn,
            } => (
                conn,
                "memory_list",
                params(vec![
                    ("namespace", json!(namespace)),
                    ("limit", json!(limit)),
                    ("tags", json!(tags)),
                ]),
            ),
            MemoryCmd::Delete {
                key,
                namespace,
                conn,
            } => (
                conn,
                "memory_delete",
                params(vec![("key", json!(key)), ("namespace", json!(namespace))]),
            ),
            MemoryCmd::Search {
                query,
                namespace,
                limit,
                threshold,
                conn,
            } => (
                conn,
                "memory_search",
                params(vec![
                    ("query", json!(query)),
                    ("namespace", json!(namespace)),
                    ("limit", json!(limit)),
                    ("threshold", json!(threshold)),
                ]),
            ),
            MemoryCmd::Stats { conn } => (conn, "memory_stats", json!({})),
        },
        Command::Collection(c) => match c {
            CollectionCmd::Create {
                name,
                dimension,
                metric,
                conn,
            } => (
                conn,
                "collection_create",
                json!({"name": name, "dimension": dimension, "metric": metric}),
            ),
            CollectionCmd::List { conn } => (conn, "collection_list", json!({})),
        },
        Command::Snapshot(c) => match c {
            SnapshotCmd::Create { name, verify, conn } => (
                conn,
                "snapshot_create",
                params(vec![("name", json!(name)), ("verify", json!(verify))]),
            ),
            SnapshotCmd::List { with_size, conn } => {
                (conn, "snapshot_list", json!({"with_size": with_size}))
            }
            SnapshotCmd::Restore { name, conn } => {
                (conn, "snapshot_restore", json!({"name": name}))
            }
            SnapshotCmd::Delete {
                name,
                confirm,
                conn,
            } => {
                if !confirm {
                    return Err(Error::invalid(format!(
                        "deleting snapshot {name:?} needs --confirm; nothing was deleted"
                    )));
                }
                (
                    conn,
                    "snapshot_delete",
                    json!({"name": name, "confirm": true}),
                )
            }
            SnapshotCmd::Verify { name, conn } => {
                (conn, "snapshot_verify", params(vec![("name", json!(name))]))
            }
            SnapshotCmd::Prune {
                dry_run,
                keep_last,
                keep_hourly,
                keep_daily,
                keep_weekly,
                keep_monthly,
                keep_within,
                conn,
            } => (
                conn,
                "snapshot_prune",
                params(vec![
                    ("dry-run", json!(dry_run)),
                    ("keep-last", json!(keep_last)),
                    ("keep-hourly", json!(keep_hourly)),
                    ("keep-daily", json!(keep_daily)),
                    ("keep-weekly", json!(keep_weekly)),
                    ("keep-monthly", json!(keep_monthly)),
                    ("keep-within", json!(keep_within)),
                ]),
            ),
        },
        Command::Wal(WalCmd::Checkpoint { force, conn }) => {
            (conn, "wal_checkpoint", json!({"force": force}))
        }
        Command::Schedule(ScheduleCmd::List { conn }) => (conn, "schedule_list", json!({})),
        other => return Err(Error::internal(format!("not a client command: {other:?}"))),
    };
    let v = call(&conn, method, p).await?;
    let text = output::render(&conn, method, &v, false);
    if method == "snapshot_verify" && v["ok"] == false {
        return Err(Error::corruption(text));
    }
    Ok(text)
}

/// `init`: create the data dir and an example config; never opens the store.
pub fn init(path: &std::path::Path, engine: &str) -> Result<String> {
    if engine != "rocksdb" {
        return Err(Error::invalid(format!(
            "engine {engine:?} is not supported; ruvector-storage uses rocksdb"
        )));
    }
    std::fs::create_dir_all(path)
        .map_err(|e| Error::io(format!("cannot create {}: {e}", path.display())))?;
    let cfg_path = path.join("ruvector-storage.toml");
    if !cfg_path.exists() {
        let mut cfg = Config::example_toml();
        cfg = cfg.replacen(
            "data-dir = \"./ruvector-data\"",
            &format!("data-dir = {:?}", path.display().to_string()),
            1,
        );
        crate::daemon::write_atomic(&cfg_path, cfg.as_bytes())?;
    }
    Ok(format!(
        "initialised {} (engine rocksdb)\nconfig: {}\nstart the daemon: ruvector-storage --config {} serve",
        path.display(),
        cfg_path.display(),
        cfg_path.display()
    ))
}

/// Timeout for an MCP process waiting for the daemon it started.
pub const MCP_DAEMON_START_TIMEOUT: Duration = Duration::from_secs(30);
