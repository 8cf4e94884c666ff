//! The command line (clap). `serve` runs the daemon; `mcp` runs the MCP
//! server; `init`, `bench`, `index put|get` and `wal tail` are written
//! here. Every other command is one operation of the table in
//! [`crate::ops`]: its subcommand, flags and help are generated from the
//! operation's params type, and running it is one JSON-RPC call to the
//! daemon found through `--data-dir` (its `daemon.json`) or `--connect URL`.

mod call;
mod index;
mod output;
mod run;

pub use run::main;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use serde::Serialize;

use crate::client::{Client, Target};
use crate::config::{Config, Overrides, DEFAULT_DATA_DIR};
use crate::error::{Error, Result};
use crate::ops::{OpInfo, OPS};

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

    async fn client(&self) -> Result<Client> {
        Client::connect(&self.target()).await
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

/// `wal tail`: follow the change stream (a JSON-RPC subscription).
#[derive(Debug, Args, Serialize)]
pub struct WalTail {
    /// Start after this sequence (default: from now on).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_sequence: Option<u64>,
    /// Key/value keys starting with this (repeatable).
    #[arg(long = "prefix", value_name = "PREFIX")]
    #[serde(rename = "prefixes")]
    pub prefix: Vec<String>,
    /// Memory namespaces: exact, or a prefix ending in / or * (repeatable).
    #[arg(long = "namespace", value_name = "NS")]
    #[serde(rename = "namespaces")]
    pub namespace: Vec<String>,
    /// Vector collections (repeatable).
    #[arg(long = "collection", value_name = "NAME")]
    #[serde(rename = "collections")]
    pub collection: Vec<String>,
    /// Exit after this many events (default: follow until interrupted).
    #[arg(long)]
    #[serde(skip)]
    pub limit: Option<u64>,
    #[command(flatten)]
    #[serde(skip)]
    pub conn: Conn,
}

/// The commands that are not one operation call.
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
    /// Write-ahead log.
    #[command(subcommand)]
    Wal(WalCmd),
    /// Index files (HNSW, IVF, …) stored for index agents.
    #[command(subcommand)]
    Index(IndexCmd),
    /// Measure ingest, durable writes, reads and snapshots (see README).
    Bench(crate::bench::BenchArgs),
}

#[derive(Debug, Subcommand)]
pub enum WalCmd {
    /// Stream changes (one JSON line each) as they are committed; resume
    /// with --from-sequence <last sequence seen>.
    Tail(WalTail),
}

#[derive(Debug, Subcommand)]
pub enum IndexCmd {
    Put(index::IndexPut),
    Get(index::IndexGet),
}

/// Help of the command groups the operation table creates.
const GROUPS: &[(&str, &str)] = &[
    ("memory", "Swarm memory (claude-flow compatible)."),
    ("collection", "Vector collections."),
    ("vector", "Vectors of a collection."),
    ("snapshot", "Point-in-time snapshots."),
    ("backup", "Backups to object storage."),
    ("schedule", "Cron jobs."),
    ("wal", "Write-ahead log."),
    (
        "index",
        "Index files (HNSW, IVF, …) stored for index agents.",
    ),
    ("maintenance", "Maintenance jobs on the live store."),
];

/// The whole command tree: the commands above plus one per operation.
pub fn command() -> clap::Command {
    let mut root = Cli::command();
    for op in OPS {
        let (leaf, groups) = match op.cli.split_last() {
            Some(x) => x,
            None => continue,
        };
        let sub = (op.args)(Conn::augment_args(
            clap::Command::new(*leaf).about(op.description()),
        ));
        let mut at = &mut root;
        for g in groups {
            if at.find_subcommand(g).is_none() {
                let about = GROUPS.iter().find(|(n, _)| n == g).map_or("", |(_, a)| a);
                *at = std::mem::take(at).subcommand(
                    clap::Command::new(*g)
                        .about(about)
                        .subcommand_required(true)
                        .arg_required_else_help(true),
                );
            }
            at = match at.find_subcommand_mut(g) {
                Some(c) => c,
                None => return root,
            };
        }
        *at = std::mem::take(at).subcommand(sub);
    }
    root
}

/// What the command line asks for.
pub enum Parsed {
    /// One operation: its params (JSON) and how to reach the daemon.
    Op {
        op: &'static OpInfo,
        params: serde_json::Value,
        conn: Conn,
    },
    Other(Cli),
}

/// Parse the command line.
pub fn parse_from<I, T>(args: I) -> std::result::Result<(Option<PathBuf>, Parsed), clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let matches = command().try_get_matches_from(args)?;
    let config = matches.get_one::<PathBuf>("config").cloned();
    let mut path = Vec::new();
    let mut leaf = &matches;
    while let Some((name, m)) = leaf.subcommand() {
        path.push(name.to_string());
        leaf = m;
    }
    if let Some(op) = OPS
        .iter()
        .find(|o| o.cli.iter().copied().eq(path.iter().map(String::as_str)))
    {
        let conn = Conn::from_arg_matches(leaf)?;
        let params = (op.from_args)(leaf)
            .map_err(|e| clap::Error::raw(clap::error::ErrorKind::ValueValidation, e.message))?;
        return Ok((config, Parsed::Op { op, params, conn }));
    }
    Ok((config, Parsed::Other(Cli::from_arg_matches(&matches)?)))
}

/// `wal tail`: print each change as a JSON line as it arrives.
async fn tail(cmd: &WalTail) -> Result<String> {
    use std::io::Write as _;
    let params = serde_json::to_value(cmd).map_err(|e| Error::internal(e.to_string()))?;
    let client = Client::connect(&cmd.conn.target()).await?;
    let mut sub = client
        .subscribe(
            crate::rpc::changes::SUBSCRIBE,
            params,
            crate::rpc::changes::UNSUBSCRIBE,
        )
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

/// Run a command that is not an operation call; returns the text to print.
pub async fn run_other(command: Command) -> Result<String> {
    match command {
        Command::Wal(WalCmd::Tail(c)) => tail(&c).await,
        Command::Index(IndexCmd::Put(c)) => index::put(&c).await,
        Command::Index(IndexCmd::Get(c)) => index::get(&c).await,
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
        crate::fs::write_atomic(&cfg_path, cfg.as_bytes())?;
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
mod tests;
