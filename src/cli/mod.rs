//! The command line (clap). `serve` runs the daemon; `mcp` runs the MCP
//! stdio server; every other command is a JSON-RPC client of the daemon
//! found through `--data-dir` (its `daemon.json`) or `--connect URL`.
//!
//! A client command is a struct whose fields are the method's named params:
//! it is serialised as-is (`None` and empty lists left out), so a flag and
//! the param it feeds are declared once.

mod index;
mod output;
mod run;

pub use run::main;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use serde::Serialize;
use serde_json::Value;

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

/// Declares client commands: `Name => "rpc_method" { fields }`. Each field
/// is a flag (`--field-name`) and a named param of the method.
macro_rules! client_commands {
    ($( $(#[$doc:meta])* $name:ident => $method:literal $(, $serde:meta)? { $( $(#[$fdoc:meta])* $field:ident : $ty:ty, )* } )*) => {
        $(
            $(#[$doc])*
            #[derive(Debug, Args, Serialize)]
            $( #[serde($serde)] )?
            pub struct $name {
                $( $(#[$fdoc])* #[serde(skip_serializing_if = "Skip::skip")] pub $field: $ty, )*
                #[command(flatten)]
                #[serde(skip)]
                pub conn: Conn,
            }
            impl ClientCommand for $name {
                const METHOD: &'static str = $method;
                fn conn(&self) -> &Conn {
                    &self.conn
                }
            }
        )*
    };
}

/// A command that is one JSON-RPC call.
pub trait ClientCommand: Serialize {
    const METHOD: &'static str;
    fn conn(&self) -> &Conn;
}

/// Which values are left out of the params (so the daemon's defaults apply).
trait Skip {
    fn skip(&self) -> bool {
        false
    }
}
impl<T> Skip for Option<T> {
    fn skip(&self) -> bool {
        self.is_none()
    }
}
impl<T> Skip for Vec<T> {
    fn skip(&self) -> bool {
        self.is_empty()
    }
}
impl Skip for bool {
    fn skip(&self) -> bool {
        !*self
    }
}
impl Skip for String {}
impl Skip for u64 {}
impl Skip for usize {}

client_commands! {
    /// Write a key/value pair.
    Write => "storage_write" {
        #[arg(long)] key: String,
        #[arg(long)] value: String,
    }
    /// Read a key.
    Read => "storage_read" {
        #[arg(long)] key: String,
    }
    /// Delete a key.
    Delete => "storage_delete" {
        #[arg(long)] key: String,
    }
    /// List keys with a prefix, a page at a time.
    Scan => "storage_scan" {
        #[arg(long, default_value = "")] prefix: String,
        #[arg(long, default_value_t = 100)] limit: usize,
        /// The next_cursor of the previous page.
        #[arg(long)] cursor: Option<String>,
    }
    /// Daemon health.
    Health => "system_health" {}
    /// Store a value (v3 memory_store).
    MemoryStore => "memory_store" {
        #[arg(long)] key: String,
        #[arg(long)] value: String,
        #[arg(long)] namespace: Option<String>,
        /// Time to live, seconds.
        #[arg(long)] ttl: Option<f64>,
        /// Comma-separated tags.
        #[arg(long, value_delimiter = ',')] tags: Vec<String>,
        /// Overwrite an existing key.
        #[arg(long)] upsert: bool,
    }
    /// Read one entry.
    MemoryRetrieve => "memory_retrieve" {
        #[arg(long)] key: String,
        #[arg(long)] namespace: Option<String>,
    }
    /// List entries, newest first.
    MemoryList => "memory_list" {
        #[arg(long)] namespace: Option<String>,
        #[arg(long)] limit: Option<u32>,
        #[arg(long, value_delimiter = ',')] tags: Vec<String>,
    }
    /// Delete one entry.
    MemoryDelete => "memory_delete" {
        #[arg(long)] key: String,
        #[arg(long)] namespace: Option<String>,
    }
    /// Relevance search (BM25).
    MemorySearch => "memory_search" {
        #[arg(long)] query: String,
        #[arg(long)] namespace: Option<String>,
        #[arg(long)] limit: Option<u32>,
        #[arg(long)] threshold: Option<f64>,
    }
    /// Entry counts per namespace and bytes on disk.
    MemoryStats => "memory_stats" {}
    /// Create a collection.
    CollectionCreate => "collection_create" {
        #[arg(long)] name: String,
        #[arg(long)] dimension: usize,
        /// cosine | euclidean | dot.
        #[arg(long, default_value = "cosine")] metric: String,
    }
    /// List collections.
    CollectionList => "collection_list" {}
    /// Create a snapshot.
    SnapshotCreate => "snapshot_create" {
        /// Default: snap-YYYYMMDD-HHMMSS-mmm.
        #[arg(long)] name: Option<String>,
        /// Verify it right after creating it.
        #[arg(long)] verify: bool,
    }
    /// List snapshots.
    SnapshotList => "snapshot_list" {
        /// Add each snapshot's exclusive bytes (its delta).
        #[arg(long)] with_size: bool,
    }
    /// Replace the live store with a snapshot (keeps an undo snapshot).
    SnapshotRestore => "snapshot_restore" {
        #[arg(long)] name: String,
    }
    /// Delete a snapshot (needs --confirm).
    SnapshotDelete => "snapshot_delete" {
        #[arg(long)] name: String,
        /// Required: deleting is not undoable.
        #[arg(long)] confirm: bool,
    }
    /// Re-check checksums and read all of a snapshot (default: newest).
    SnapshotVerify => "snapshot_verify" {
        #[arg(long)] name: Option<String>,
    }
    /// Apply a retention policy (restic's keep-* rules).
    SnapshotPrune => "snapshot_prune", rename_all = "kebab-case" {
        /// Print the plan; delete nothing.
        #[arg(long)] dry_run: bool,
        #[arg(long)] keep_last: Option<u32>,
        #[arg(long)] keep_hourly: Option<u32>,
        #[arg(long)] keep_daily: Option<u32>,
        #[arg(long)] keep_weekly: Option<u32>,
        #[arg(long)] keep_monthly: Option<u32>,
        /// e.g. 36h, 7d, 2w.
        #[arg(long)] keep_within: Option<String>,
    }
    /// Flush memtables and fsync the WAL.
    WalCheckpoint => "wal_checkpoint" {
        #[arg(long)] force: bool,
    }
    /// Jobs with last run, next run and last result.
    ScheduleList => "schedule_list" {}
    /// Back up the store to object storage.
    BackupCreate => "backup_create" {
        /// file:///abs/dir, s3://bucket/prefix, az://container/prefix, gs://bucket/prefix.
        #[arg(long)] destination: Option<String>,
        /// Upload every object even if the target has it.
        #[arg(long, conflicts_with = "incremental")] full: bool,
        /// Skip objects the target already has (the default).
        #[arg(long)] incremental: bool,
        /// Encrypt with AES-256-GCM (key from [backup] keyring).
        #[arg(long)] encrypt: bool,
        /// Incremental as: files (new checkpoint files), wal (the archived
        /// WAL since the base backup) or auto (WAL while it is under half
        /// the base's size).
        #[arg(long, value_parser = ["auto", "files", "wal"], conflicts_with = "full")] method: Option<String>,
        #[arg(long)] name: Option<String>,
    }
    /// Backups in a location, oldest first.
    BackupList => "backup_list" {
        #[arg(long)] location: Option<String>,
    }
    /// Check a backup's objects; exit 5 when one is bad.
    BackupVerify => "backup_verify" {
        #[arg(long)] location: Option<String>,
        #[arg(long)] name: Option<String>,
        /// Download and checksum every object.
        #[arg(long, conflicts_with = "read_data_subset")] read_data: bool,
        /// Download and checksum this share, e.g. 10%.
        #[arg(long, value_name = "P%")] read_data_subset: Option<String>,
    }
    /// Restore a backup into the running daemon, or into --to PATH.
    BackupRestore => "backup_restore" {
        #[arg(long)] from: Option<String>,
        #[arg(long)] name: Option<String>,
        /// An empty directory (or --force) to restore into instead of the daemon.
        #[arg(long)] to: Option<String>,
        #[arg(long)] force: bool,
        /// Point-in-time: replay the WAL archive up to this sequence.
        #[arg(long, conflicts_with = "to_time")] to_sequence: Option<u64>,
        /// Point-in-time: up to the last batch committed at or before this
        /// time (RFC 3339, e.g. 2026-11-25T10:00:00Z, or epoch ms).
        #[arg(long)] to_time: Option<String>,
    }
    /// Delete backups by keep-* rules; PITR-safe (plan first with --dry-run).
    BackupPrune => "backup_prune", rename_all = "kebab-case" {
        #[arg(long)] location: Option<String>,
        /// Print the plan; delete nothing.
        #[arg(long)] dry_run: bool,
        #[arg(long)] keep_last: Option<u32>,
        #[arg(long)] keep_hourly: Option<u32>,
        #[arg(long)] keep_daily: Option<u32>,
        #[arg(long)] keep_weekly: Option<u32>,
        #[arg(long)] keep_monthly: Option<u32>,
        /// e.g. 36h, 7d, 2w.
        #[arg(long)] keep_within: Option<String>,
    }
    /// Replicate backups to another location (only what it lacks).
    BackupCopy => "backup_copy" {
        #[arg(long)] from: Option<String>,
        #[arg(long)] to: String,
        #[arg(long)] name: Option<String>,
    }
    /// Restore the newest backup into a scratch dir, read it all, publish the result.
    BackupDrill => "backup_drill" {}
    /// The running backup, restore or drill, with its progress.
    BackupStatus => "backup_status" {}
    /// Ship the WAL batches not yet archived (one pass).
    WalArchive => "wal_archive" {
        #[arg(long)] to: Option<String>,
    }
    /// Print archived changes after a sequence (from the WAL archive).
    WalReplay => "wal_replay" {
        #[arg(long)] from: Option<String>,
        #[arg(long)] from_sequence: u64,
        #[arg(long, default_value_t = 1000)] limit: usize,
    }
    /// Stored indexes and unfinished uploads.
    IndexList => "index_list" {}
    /// Delete a stored index (or abandon one of its uploads).
    IndexDelete => "index_delete" {
        #[arg(long)] name: String,
        /// Abandon this unfinished upload instead.
        #[arg(long)] upload_id: Option<String>,
    }
    /// Stream changes (one JSON line each) as they are committed; resume
    /// with --from-sequence <last sequence seen>.
    WalTail => "storage_subscribeChanges" {
        /// Start after this sequence (default: from now on).
        #[arg(long)] from_sequence: Option<u64>,
        /// Key/value keys starting with this (repeatable).
        #[arg(long = "prefix", value_name = "PREFIX")] #[serde(rename = "prefixes")] prefix: Vec<String>,
        /// Memory namespaces: exact, or a prefix ending in / or * (repeatable).
        #[arg(long = "namespace", value_name = "NS")] #[serde(rename = "namespaces")] namespace: Vec<String>,
        /// Vector collections (repeatable).
        #[arg(long = "collection", value_name = "NAME")] #[serde(rename = "collections")] collection: Vec<String>,
        /// Exit after this many events (default: follow until interrupted).
        #[arg(long)] #[serde(skip)] limit: Option<u64>,
    }
}

/// `stats [--detailed]`: `storage_stats`, rendered with more or less detail.
#[derive(Debug, Args)]
pub struct Stats {
    /// Include column families, actor states, published records and every metric.
    #[arg(long)]
    pub detailed: bool,
    #[command(flatten)]
    pub conn: Conn,
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
    /// Serve MCP (stdio, or streamable HTTP with --http), as a client of
    /// the daemon (started if needed).
    Mcp {
        #[arg(long, default_value = DEFAULT_DATA_DIR)]
        data_dir: PathBuf,
        /// Use this daemon instead of finding/starting one for --data-dir.
        #[arg(long)]
        connect: Option<String>,
        /// Serve MCP over streamable HTTP at http://ADDR/mcp instead of
        /// stdio (loopback only; port 0 picks one, printed on stdout).
        #[arg(long, value_name = "ADDR")]
        http: Option<std::net::SocketAddr>,
    },
    Write(Write),
    Read(Read),
    Delete(Delete),
    Scan(Scan),
    /// Store statistics.
    Stats(Stats),
    Health(Health),
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
    /// Backups to object storage.
    #[command(subcommand)]
    Backup(BackupCmd),
    /// Index files (HNSW, IVF, …) stored for index agents.
    #[command(subcommand)]
    Index(IndexCmd),
    /// Measure ingest, durable writes, reads and snapshots (see README).
    Bench(crate::bench::BenchArgs),
}

#[derive(Debug, Subcommand)]
pub enum MemoryCmd {
    Store(MemoryStore),
    Retrieve(MemoryRetrieve),
    List(MemoryList),
    Delete(MemoryDelete),
    Search(MemorySearch),
    Stats(MemoryStats),
}

#[derive(Debug, Subcommand)]
pub enum CollectionCmd {
    Create(CollectionCreate),
    List(CollectionList),
}

#[derive(Debug, Subcommand)]
pub enum SnapshotCmd {
    Create(SnapshotCreate),
    List(SnapshotList),
    Restore(SnapshotRestore),
    Delete(SnapshotDelete),
    Verify(SnapshotVerify),
    Prune(SnapshotPrune),
}

#[derive(Debug, Subcommand)]
pub enum WalCmd {
    Checkpoint(WalCheckpoint),
    Tail(WalTail),
    Archive(WalArchive),
    Replay(WalReplay),
}

#[derive(Debug, Subcommand)]
pub enum BackupCmd {
    Create(BackupCreate),
    List(BackupList),
    Verify(BackupVerify),
    Restore(BackupRestore),
    Prune(BackupPrune),
    Copy(BackupCopy),
    Drill(BackupDrill),
    Status(BackupStatus),
}

/// A local path given on the command line, made absolute (the daemon runs
/// elsewhere); URLs pass through.
fn absolute(p: &mut Option<String>) -> Result<()> {
    if let Some(v) = p.as_mut() {
        if !v.contains("://") {
            let abs = std::path::absolute(&*v).map_err(|e| Error::invalid(format!("{v}: {e}")))?;
            *v = abs.display().to_string();
        }
    }
    Ok(())
}

#[derive(Debug, Subcommand)]
pub enum IndexCmd {
    Put(index::IndexPut),
    Get(index::IndexGet),
    List(IndexList),
    Delete(IndexDelete),
}

#[derive(Debug, Subcommand)]
pub enum ScheduleCmd {
    List(ScheduleList),
}

async fn call(conn: &Conn, method: &str, params: Value) -> Result<Value> {
    let client = Client::connect(&conn.target()).await?;
    client
        .call(method, params)
        .await
        .map_err(|e| e.into_error())
}

/// Make the call a command stands for and render its result.
async fn send<C: ClientCommand>(cmd: &C) -> Result<String> {
    let params = serde_json::to_value(cmd).map_err(|e| Error::internal(e.to_string()))?;
    let v = call(cmd.conn(), C::METHOD, params).await?;
    rendered(cmd, v)
}

/// A long backup operation: [`send`], with a progress bar on stderr while
/// it runs when stderr is a terminal (polling `backup_status`), and the
/// final figures when it is done.
async fn send_with_progress<C: ClientCommand>(cmd: &C) -> Result<String> {
    use crate::backup::progress::{render, Snapshot};
    use std::io::{IsTerminal, Write};
    if !std::io::stderr().is_terminal() || cmd.conn().json {
        return send(cmd).await;
    }
    let params = serde_json::to_value(cmd).map_err(|e| Error::internal(e.to_string()))?;
    let client = Client::connect(&cmd.conn().target()).await?;
    let poller = client.clone();
    let status = || async {
        poller
            .call("backup_status", serde_json::json!({}))
            .await
            .ok()
    };
    let draw = |s: &Value, end: &str| {
        if let Ok(snap) = serde_json::from_value::<Snapshot>(s.clone()) {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K{}{end}", render(&snap, 30));
            let _ = err.flush();
        }
    };
    let call = client.call(C::METHOD, params);
    tokio::pin!(call);
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let result = loop {
        tokio::select! {
            r = &mut call => break r,
            _ = tick.tick() => {
                if let Some(s) = status().await {
                    draw(&s["running"], "");
                }
            }
        }
    };
    if let Some(s) = status().await {
        draw(&s["last"], "\n");
    }
    rendered(cmd, result.map_err(|e| e.into_error())?)
}

fn rendered<C: ClientCommand>(cmd: &C, v: Value) -> Result<String> {
    let text = output::render(cmd.conn(), C::METHOD, &v, false);
    if (C::METHOD == "snapshot_verify" || C::METHOD == "backup_verify") && v["ok"] == false {
        return Err(Error::corruption(text));
    }
    Ok(text)
}

/// `wal tail`: print each change as a JSON line as it arrives.
async fn tail(cmd: &WalTail) -> Result<String> {
    use std::io::Write as _;
    let params = serde_json::to_value(cmd).map_err(|e| Error::internal(e.to_string()))?;
    let client = Client::connect(&cmd.conn.target()).await?;
    let mut sub = client
        .subscribe(WalTail::METHOD, params, crate::rpc::changes::UNSUBSCRIBE)
        .await?;
    let mut seen = 0u64;
    let mut out = std::io::stdout().lock();
    while cmd.limit.is_none_or(|n| seen < n) {
        match sub.next().await {
            Some(Ok(event)) => {
                writeln!(out, "{event}")
                    .and_then(|_| out.flush())
                    .map_err(|e| Error::io(format!("writing to stdout: {e}")))?;
                seen += 1;
            }
            Some(Err(e)) => {
                return Err(Error::corruption(format!(
                    "a change event did not decode: {e}"
                )))
            }
            None => {
                return Err(Error::unavailable(format!(
                    "the change stream ended after {seen} events (daemon stopped, store restored, \
                     or the client fell behind); resume with --from-sequence <last sequence>"
                )))
            }
        }
    }
    Ok(String::new())
}

/// Run a client command; returns the text to print.
pub async fn run_client(command: Command) -> Result<String> {
    match command {
        Command::Write(c) => send(&c).await,
        Command::Read(c) => send(&c).await,
        Command::Delete(c) => send(&c).await,
        Command::Scan(c) => send(&c).await,
        Command::Health(c) => send(&c).await,
        Command::Stats(s) => {
            let v = call(
                &s.conn,
                "storage_stats",
                serde_json::json!({"detailed": s.detailed}),
            )
            .await?;
            Ok(output::render(&s.conn, "storage_stats", &v, s.detailed))
        }
        Command::Memory(m) => match m {
            MemoryCmd::Store(c) => send(&c).await,
            MemoryCmd::Retrieve(c) => send(&c).await,
            MemoryCmd::List(c) => send(&c).await,
            MemoryCmd::Delete(c) => send(&c).await,
            MemoryCmd::Search(c) => send(&c).await,
            MemoryCmd::Stats(c) => send(&c).await,
        },
        Command::Collection(CollectionCmd::Create(c)) => send(&c).await,
        Command::Collection(CollectionCmd::List(c)) => send(&c).await,
        Command::Snapshot(s) => match s {
            SnapshotCmd::Create(c) => send(&c).await,
            SnapshotCmd::List(c) => send(&c).await,
            SnapshotCmd::Restore(c) => send(&c).await,
            SnapshotCmd::Delete(c) if !c.confirm => Err(Error::invalid(format!(
                "deleting snapshot {:?} needs --confirm; nothing was deleted",
                c.name
            ))),
            SnapshotCmd::Delete(c) => send(&c).await,
            SnapshotCmd::Verify(c) => send(&c).await,
            SnapshotCmd::Prune(c) => send(&c).await,
        },
        Command::Wal(WalCmd::Checkpoint(c)) => send(&c).await,
        Command::Wal(WalCmd::Tail(c)) => tail(&c).await,
        Command::Wal(WalCmd::Archive(mut c)) => {
            absolute(&mut c.to)?;
            send(&c).await
        }
        Command::Wal(WalCmd::Replay(mut c)) => {
            absolute(&mut c.from)?;
            send(&c).await
        }
        Command::Schedule(ScheduleCmd::List(c)) => send(&c).await,
        Command::Backup(b) => match b {
            BackupCmd::Create(mut c) => {
                absolute(&mut c.destination)?;
                send_with_progress(&c).await
            }
            BackupCmd::List(mut c) => {
                absolute(&mut c.location)?;
                send(&c).await
            }
            BackupCmd::Verify(mut c) => {
                absolute(&mut c.location)?;
                send(&c).await
            }
            BackupCmd::Restore(mut c) => {
                absolute(&mut c.from)?;
                absolute(&mut c.to)?;
                send_with_progress(&c).await
            }
            BackupCmd::Prune(mut c) => {
                absolute(&mut c.location)?;
                send(&c).await
            }
            BackupCmd::Copy(mut c) => {
                absolute(&mut c.from)?;
                let mut to = Some(c.to.clone());
                absolute(&mut to)?;
                c.to = to.unwrap_or_default();
                send(&c).await
            }
            BackupCmd::Drill(c) => send_with_progress(&c).await,
            BackupCmd::Status(c) => send(&c).await,
        },
        Command::Index(i) => match i {
            IndexCmd::Put(c) => index::put(&c).await,
            IndexCmd::Get(c) => index::get(&c).await,
            IndexCmd::List(c) => send(&c).await,
            IndexCmd::Delete(c) => send(&c).await,
        },
        other => Err(Error::internal(format!("not a client command: {other:?}"))),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn params_of(args: &[&str]) -> Value {
        let cli =
            Cli::try_parse_from(std::iter::once("ruvector-storage").chain(args.iter().copied()))
                .unwrap();
        let v = match cli.command {
            Command::Memory(MemoryCmd::Store(c)) => serde_json::to_value(&c),
            Command::Snapshot(SnapshotCmd::Prune(c)) => serde_json::to_value(&c),
            Command::Scan(c) => serde_json::to_value(&c),
            other => panic!("unexpected {other:?}"),
        };
        v.unwrap()
    }

    #[test]
    fn flags_become_the_methods_params() {
        assert_eq!(
            params_of(&["memory", "store", "--key", "k", "--value", "v", "--tags", "a,b"]),
            serde_json::json!({"key": "k", "value": "v", "tags": ["a", "b"]})
        );
        assert_eq!(
            params_of(&["snapshot", "prune", "--keep-last", "3", "--dry-run"]),
            serde_json::json!({"dry-run": true, "keep-last": 3})
        );
        assert_eq!(
            params_of(&["scan", "--prefix", "p"]),
            serde_json::json!({"prefix": "p", "limit": 100})
        );
        // Every params object parses as the daemon's params type.
        for (m, args) in [
            (
                "memory_store",
                &["memory", "store", "--key", "k", "--value", "v", "--upsert"][..],
            ),
            (
                "snapshot_prune",
                &["snapshot", "prune", "--keep-within", "7d"][..],
            ),
        ] {
            let p = params_of(args).to_string();
            crate::ops::Op::parse(m, Some(&p)).unwrap();
        }
    }
}
