//! `ruvector-storage bench`: the seed's "benchmark storage before
//! production". Every comparison is a ratio measured in the same run, on the
//! same machine, with the same durability settings on both sides.
//!
//! (a) raw RocksDB WriteBatch ingest vs (b) the daemon's JSON-RPC batch API;
//! (c) durable single writes with 1 and 32 concurrent clients (in-process
//! and over JSON-RPC); (d) point reads, raw vs in-process vs JSON-RPC;
//! (e) MCP `memory_store` over stdio, optionally against another MCP server;
//! (f) daemon start-up time and idle RSS; (g) snapshots; (h) backups
//! against restic; (i) continuous WAL archive lag under 5k writes/s;
//! (j) index files stored and read back, against `cp`. Two modes run
//! instead: `--soak` (memory under a steady load, see `soak`) and
//! `--quantization` (each vector format's size, recall and speed, see
//! `quantization`).
//!
//! The driver ([`run`]) runs them in that order of data: (a) builds a
//! store that (g) and (h) then snapshot and back up; one daemon serves (f),
//! (b), (d) and (e); (c) and (d) share one in-process `sync = always` store;
//! (i) and (j) run daemons of their own. Each family is a module.

mod archive;
mod backups;
mod compaction;
mod dedup;
mod harness;
mod indexes;
mod ingest;
mod load;
mod mcp;
mod metadata;
mod quantization;
mod reads;
mod snapshots;
mod soak;
mod writes;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use serde_json::{json, Map, Value};

use crate::clock::SystemClock;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::npy::Matrix;

use harness::{bench_config, tempfile_dir, Daemon};

#[derive(Debug, Args, Clone)]
pub struct BenchArgs {
    /// Vectors to ingest.
    #[arg(long, default_value_t = 100_000)]
    pub count: usize,
    /// .npy file (float32, rows × dim); rows are reused with new ids to reach --count.
    #[arg(long)]
    pub vectors: Option<PathBuf>,
    /// Dimension of synthetic vectors when --vectors is not given.
    #[arg(long, default_value_t = 384)]
    pub dim: usize,
    /// Vectors per batch.
    #[arg(long, default_value_t = 1000)]
    pub batch: usize,
    /// Concurrent JSON-RPC connections for the ingest (a loader keeps a
    /// request in flight while the previous one commits).
    #[arg(long, default_value_t = 2)]
    pub ingest_clients: usize,
    /// Durability for the ingest runs, on both sides: always | interval:<ms> | never.
    #[arg(long, default_value = "always")]
    pub sync: String,
    /// Block compression on both sides: per-type (each data type its
    /// default) or one spec for all (zstd, zstd:9, lz4, snappy, none).
    #[arg(long, default_value = "per-type")]
    pub compression: String,
    /// Durable single writes per measurement.
    #[arg(long, default_value_t = 3000)]
    pub writes: usize,
    /// Point reads per measurement.
    #[arg(long, default_value_t = 100_000)]
    pub reads: usize,
    /// Sequential MCP memory_store calls.
    #[arg(long, default_value_t = 1000)]
    pub mcp_calls: usize,
    /// Size of the index file stored and read back in (j), in MiB.
    #[arg(long, default_value_t = 256)]
    pub index_mib: usize,
    /// How long (i) paces writes while the WAL is archived, in seconds.
    #[arg(long, default_value_t = 10)]
    pub archive_secs: u64,
    /// Another MCP stdio server to drive with the same memory_store loop,
    /// e.g. "npx -y claude-flow@3.43.0 mcp start".
    #[arg(long)]
    pub compare_mcp: Option<String>,
    /// Run the memory soak instead of (a)–(j) for this long (e.g. 30m, 3m):
    /// steady writes with accelerated schedules; RSS, latency, errors and
    /// jobs per minute.
    #[arg(long, value_name = "DURATION", value_parser = soak::parse_duration)]
    pub soak: Option<Duration>,
    /// The soak's warm-up, after which RSS growth is measured (default: a
    /// third of the soak, at most 2m).
    #[arg(long, value_name = "DURATION", requires = "soak", value_parser = soak::parse_duration)]
    pub soak_warmup: Option<Duration>,
    /// Measure the vector formats instead of (a)–(j): stored bytes against
    /// f32, recall@10 of vector_search, int8 ingest and search speed (needs
    /// --vectors base.npy with queries.npy beside it).
    #[arg(long, conflicts_with = "soak")]
    pub quantization: bool,
    /// Measure foreground write latency during `compact --full` with
    /// RocksDB's rate limiter off and at 16 MB/s instead of (a)–(j)
    /// (--count keys of 1 KiB, written twice).
    #[arg(long, conflicts_with_all = ["soak", "quantization"])]
    pub compaction: bool,
    /// Where to write the JSON results.
    #[arg(long, default_value = "bench-results.json")]
    pub out: PathBuf,
    /// Scratch directory (default: a fresh temporary directory).
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

impl BenchArgs {
    /// Refuse sizes that would panic (a zero batch or client count) or
    /// report a figure for work that was not done (fewer writes than the
    /// 32 writers of (c), each making `writes / 32`).
    fn check(&self) -> Result<()> {
        let sizes = [
            ("count", self.count, 1),
            ("dim", self.dim, 1),
            ("batch", self.batch, 1),
            ("ingest-clients", self.ingest_clients, 1),
            ("writes", self.writes, 32),
            ("reads", self.reads, 1),
            ("mcp-calls", self.mcp_calls, 1),
            ("index-mib", self.index_mib, 1),
            ("archive-secs", self.archive_secs as usize, 1),
        ];
        for (flag, value, min) in sizes {
            if value < min {
                return Err(Error::invalid(format!(
                    "--{flag} must be at least {min}, not {value}"
                )));
            }
        }
        Ok(())
    }
}

struct Row {
    name: String,
    value: f64,
    unit: &'static str,
}

struct Report {
    rows: Vec<Row>,
    json: Map<String, Value>,
}

impl Report {
    fn add(&mut self, key: &str, name: &str, value: f64, unit: &'static str) {
        eprintln!("  {name:<58} {value:>12.1} {unit}");
        self.rows.push(Row {
            name: name.to_string(),
            value,
            unit,
        });
        self.json.insert(key.to_string(), json!(value));
    }
}

/// Figures a measurement returns to be added in order: key, name, value, unit.
type Rows = Vec<(&'static str, &'static str, f64, &'static str)>;

/// Deterministic noise in [-0.5, 0.5) (xorshift; `state` must not be 0).
fn noise(state: &mut u64) -> f32 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    (*state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
}

/// Vectors to ingest: from the .npy file (cycled) or deterministic noise.
fn source(args: &BenchArgs) -> Result<Matrix> {
    if let Some(p) = &args.vectors {
        return crate::npy::load(p);
    }
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let rows = args.count.min(10_000);
    let data = (0..rows * args.dim).map(|_| noise(&mut state)).collect();
    Ok(Matrix {
        rows,
        dim: args.dim,
        data,
    })
}

/// Run every measurement; returns the table (the JSON goes to `--out`).
pub async fn run(args: BenchArgs) -> Result<String> {
    args.check()?;
    let _tmp;
    let dir = match &args.dir {
        Some(d) => d.clone(),
        None => {
            _tmp = tempfile_dir()?;
            _tmp.0.clone()
        }
    };
    if let Some(length) = args.soak {
        let (table, json) = soak::run(&dir, &args, length).await?;
        return finish(&args, table, &json);
    }
    if args.quantization {
        let (table, json) = quantization::run(&dir, &args).await?;
        return finish(&args, table, &json);
    }
    if args.compaction {
        let (table, json) = compaction::run(&dir, &args).await?;
        return finish(&args, table, &json);
    }
    let m = Arc::new(source(&args)?);
    let mut r = Report {
        rows: Vec::new(),
        json: Map::new(),
    };
    r.json.insert("config".into(), json!({"count": args.count, "dim": m.dim, "batch": args.batch,
        "sync": args.sync, "compression": args.compression,
        "source": args.vectors.as_ref().map(|p| p.display().to_string()).unwrap_or("synthetic".into())}));
    eprintln!(
        "ruvector-storage bench: {} × {}-dim vectors, batches of {}, sync={}, compression={}",
        args.count, m.dim, args.batch, args.sync, args.compression
    );

    // (a) raw RocksDB WriteBatch ingest.
    let raw_dir = dir.join("raw");
    let engine = Engine::open(
        &bench_config(&raw_dir, &args, &args.sync),
        Arc::new(SystemClock),
    )?;
    let raw_ingest = ingest::raw(&engine, &args, m.clone(), &mut r).await?;

    // (g) snapshots of the store (a) just built.
    let (e3, cfg) = (engine.clone(), bench_config(&raw_dir, &args, &args.sync));
    let snaps = tokio::task::spawn_blocking(move || snapshots::bench(&e3, &cfg))
        .await
        .map_err(|e| Error::internal(e.to_string()))??;
    for (key, name, value, unit) in snaps {
        r.add(key, name, value, unit);
    }
    // (h) backups of that store against restic, same data, same disk.
    for (key, name, value, unit) in
        backups::bench(&engine, &raw_dir, &dir, args.count, m.clone()).await?
    {
        r.add(key, name, value, unit);
    }
    drop(engine);

    // (f) start-up and idle RSS, then (b) JSON-RPC ingest.
    let d = Daemon::start(&dir.join("daemon"), &args, &args.sync).await?;
    r.add(
        "ready_ms",
        "(f) daemon ready to serve (empty store)",
        d.ready.as_secs_f64() * 1000.0,
        "ms",
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    r.add("idle_rss_mb", "(f) idle daemon RSS", d.rss_mb(), "MB");
    ingest::rpc(&d, &args, &m, raw_ingest, &mut r).await?;

    // (c) durable single writes: in-process threads and JSON-RPC clients.
    let durable_dir = dir.join("durable");
    let de = Engine::open(
        &bench_config(&durable_dir, &args, "always"),
        Arc::new(SystemClock),
    )?;
    writes::run(&d, &de, &dir, &args, &mut r).await?;

    // (i) continuous WAL archiving (default interval) under paced writes.
    archive::run(&dir, &args, &mut r).await?;

    // (j) an index file stored and read back through the daemon vs cp.
    indexes::run(&dir, &args, &mut r).await?;

    // (d) point reads: raw get vs engine.kv_get (in-process) vs storage_read.
    reads::run(&de, &d.client, &args, &mut r).await?;

    // (e) MCP memory_store over stdio, one client, sequential calls.
    mcp::run(&d.client, &dir, &args, &mut r).await?;
    d.stop();

    let table = r
        .rows
        .iter()
        .map(|row| format!("{:<60} {:>14.2} {}", row.name, row.value, row.unit))
        .collect::<Vec<_>>()
        .join("\n");
    finish(&args, table, &Value::Object(r.json))
}

/// Write the JSON results; the table, saying where they went.
fn finish(args: &BenchArgs, table: String, json: &Value) -> Result<String> {
    write_json(&args.out, json)?;
    Ok(format!(
        "{table}\n\nresults written to {}",
        args.out.display()
    ))
}

fn write_json(out: &std::path::Path, v: &Value) -> Result<()> {
    let body = serde_json::to_string_pretty(v).map_err(|e| Error::internal(e.to_string()))?;
    std::fs::write(out, body).map_err(|e| Error::io(format!("writing {}: {e}", out.display())))
}
