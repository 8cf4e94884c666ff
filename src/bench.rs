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
//! (j) index files stored and read back, against `cp`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use clap::Args;
use rocksdb::{WriteBatch, WriteOptions};
use serde_json::{json, Map, Value};

use crate::client::{read_daemon_info, Client};
use crate::clock::SystemClock;
use crate::codec;
use crate::config::Config;
use crate::engine::{composite_key, Cf, Engine};
use crate::error::{Error, Result};
use crate::npy::Matrix;

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
    /// Block compression on both sides: zstd | lz4 | none.
    #[arg(long, default_value = "zstd")]
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
    /// Another MCP stdio server to drive with the same memory_store loop,
    /// e.g. "npx -y claude-flow@3.43.0 mcp start".
    #[arg(long)]
    pub compare_mcp: Option<String>,
    /// Where to write the JSON results.
    #[arg(long, default_value = "bench-results.json")]
    pub out: PathBuf,
    /// Scratch directory (default: a fresh temporary directory).
    #[arg(long)]
    pub dir: Option<PathBuf>,
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

/// Vectors to ingest: from the .npy file (cycled) or deterministic noise.
fn source(args: &BenchArgs) -> Result<Matrix> {
    if let Some(p) = &args.vectors {
        return crate::npy::load(p);
    }
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let rows = args.count.min(10_000);
    let data = (0..rows * args.dim)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        })
        .collect();
    Ok(Matrix {
        rows,
        dim: args.dim,
        data,
    })
}

fn bench_config(dir: &Path, args: &BenchArgs, sync: &str) -> Config {
    let mut c = Config {
        data_dir: dir.to_path_buf(),
        sync: sync.to_string(),
        ..Config::default()
    };
    c.rocksdb.compression = args.compression.clone();
    c
}

/// A daemon child process for the benchmark.
struct Daemon {
    child: std::process::Child,
    client: Client,
    ready: Duration,
}

impl Daemon {
    async fn start(dir: &Path, args: &BenchArgs, sync: &str) -> Result<Daemon> {
        Self::start_env(dir, args, sync, &[]).await
    }

    async fn start_env(
        dir: &Path,
        args: &BenchArgs,
        sync: &str,
        env: &[(&str, &str)],
    ) -> Result<Daemon> {
        let exe = std::env::current_exe().map_err(|e| Error::io(e.to_string()))?;
        std::fs::create_dir_all(dir)?;
        let t0 = Instant::now();
        let child = std::process::Command::new(exe)
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--sync",
                sync,
                "--log-level",
                "warn",
                "--data-dir",
            ])
            .arg(dir)
            .env("RUVECTOR_STORAGE__ROCKSDB__COMPRESSION", &args.compression)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| Error::io(format!("starting the daemon: {e}")))?;
        loop {
            if let Ok(Some(info)) = read_daemon_info(dir) {
                let client = Client::new(&info.url, Duration::from_secs(120))?;
                if client.health().await.is_ok() {
                    return Ok(Daemon {
                        child,
                        client,
                        ready: t0.elapsed(),
                    });
                }
            }
            if t0.elapsed() > Duration::from_secs(30) {
                return Err(Error::unavailable(
                    "bench daemon did not become ready in 30 s",
                ));
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    fn rss_mb(&self) -> f64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .ok()
            .and_then(|s| {
                s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| {
                    l.split_whitespace()
                        .nth(1)
                        .and_then(|kb| kb.parse::<f64>().ok())
                })
            })
            .map(|kb| kb / 1024.0)
            .unwrap_or(0.0)
    }

    /// User + system CPU seconds the daemon has used.
    fn cpu_secs(&self) -> f64 {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default();
        // Fields after the parenthesised command name; utime and stime are 14 and 15.
        let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
        let f: Vec<f64> = rest
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
        match (f.get(11), f.get(12)) {
            (Some(u), Some(s)) => (u + s) / hz,
            _ => 0.0,
        }
    }

    fn stop(mut self) {
        // SAFETY: plain kill(2) on our own child.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let _ = self.child.wait();
    }
}

fn rate(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64().max(1e-9)
}

fn threads<F>(n: usize, total: usize, f: F) -> Result<Duration>
where
    F: Fn(usize) -> Result<()> + Sync,
{
    let t = Instant::now();
    let per = total / n;
    std::thread::scope(|s| {
        let hs: Vec<_> = (0..n)
            .map(|c| {
                let f = &f;
                s.spawn(move || (0..per).try_for_each(|i| f(c * per + i)))
            })
            .collect();
        hs.into_iter().try_for_each(|h| {
            h.join()
                .unwrap_or_else(|_| Err(Error::internal("bench thread panicked")))
        })
    })?;
    Ok(t.elapsed())
}

pub async fn run(args: BenchArgs) -> Result<String> {
    let _tmp;
    let dir = match &args.dir {
        Some(d) => d.clone(),
        None => {
            _tmp = tempfile_dir()?;
            _tmp.0.clone()
        }
    };
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
    let m2 = m.clone();
    let (e2, count, batch, sync_always) = (
        engine.clone(),
        args.count,
        args.batch,
        args.sync == "always",
    );
    let raw_time = tokio::task::spawn_blocking(move || -> Result<Duration> {
        let t = Instant::now();
        let mut wo = WriteOptions::default();
        wo.set_sync(sync_always);
        let cf = e2.cf(Cf::Vectors);
        for start in (0..count).step_by(batch) {
            let mut b = WriteBatch::default();
            for i in start..(start + batch).min(count) {
                b.put_cf(
                    cf,
                    composite_key("bench", &format!("v{i}")),
                    codec::encode_f32(m2.row(i % m2.rows)),
                );
            }
            e2.db().write_opt(b, &wo)?;
        }
        Ok(t.elapsed())
    })
    .await
    .map_err(|e| Error::internal(e.to_string()))??;
    let raw_ingest = rate(args.count, raw_time);
    r.add(
        "raw_ingest_vps",
        "(a) raw RocksDB WriteBatch ingest",
        raw_ingest,
        "vectors/s",
    );

    // (g) snapshots of the store (a) just built.
    let (e3, cfg) = (engine.clone(), bench_config(&raw_dir, &args, &args.sync));
    let snaps = tokio::task::spawn_blocking(move || snapshot_bench(&e3, &cfg))
        .await
        .map_err(|e| Error::internal(e.to_string()))??;
    for (key, name, value, unit) in snaps {
        r.add(key, name, value, unit);
    }
    // (h) backups of that store against restic, same data, same disk.
    for (key, name, value, unit) in
        backup_bench(&engine, &raw_dir, &dir, args.count, m.clone()).await?
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
    let c = d.client.clone();
    c.call(
        "collection_create",
        json!({"name": "bench", "dimension": m.dim}),
    )
    .await
    .map_err(|e| e.into_error())?;
    let bodies: Vec<Value> = (0..args.count)
        .step_by(args.batch)
        .map(|start| {
            let vectors: Vec<Value> = (start..(start + args.batch).min(args.count))
                .map(|i| json!({"id": format!("v{i}"), "vector_b64":
                    base64::engine::general_purpose::STANDARD.encode(codec::f32_to_le(m.row(i % m.rows)))}))
                .collect();
            json!({"collection": "bench", "vectors": vectors})
        })
        .collect();
    let bodies: Arc<Vec<String>> = Arc::new(bodies.iter().map(|b| b.to_string()).collect());
    let n_batches = bodies.len();
    let cpu0 = d.cpu_secs();
    let b2 = bodies.clone();
    let took = raw_load(
        c.url(),
        args.ingest_clients,
        n_batches,
        "vector_upsert",
        move |i| b2[i].clone(),
    )
    .await?;
    r.add(
        "rpc_ingest_daemon_cpu_share",
        "    daemon CPU share of the ingest",
        (d.cpu_secs() - cpu0) / took.as_secs_f64(),
        "cores",
    );
    let rpc_ingest = rate(args.count, took);
    r.add(
        "rpc_ingest_vps",
        &format!(
            "(b) JSON-RPC vector_upsert ingest (base64, {} connections)",
            args.ingest_clients
        ),
        rpc_ingest,
        "vectors/s",
    );
    r.add(
        "ratio_rpc_vs_raw_ingest",
        "    ratio (b)/(a)",
        rpc_ingest / raw_ingest,
        "x",
    );

    // (c) durable single writes: in-process threads and JSON-RPC clients.
    let durable_dir = dir.join("durable");
    let de = Engine::open(
        &bench_config(&durable_dir, &args, "always"),
        Arc::new(SystemClock),
    )?;
    let mut inproc = Vec::new();
    for n in [1usize, 32] {
        let de = de.clone();
        let total = args.writes;
        let took = tokio::task::spawn_blocking(move || {
            threads(n, total, |i| {
                de.kv_put_many(&[(format!("w{n}-{i}"), "x".repeat(100))])
            })
        })
        .await
        .map_err(|e| Error::internal(e.to_string()))??;
        inproc.push(rate(args.writes, took));
    }
    r.add(
        "inproc_durable_1",
        "(c) sync=always writes in-process, 1 thread",
        inproc[0],
        "writes/s",
    );
    r.add(
        "inproc_durable_32",
        "(c) sync=always writes in-process, 32 threads",
        inproc[1],
        "writes/s",
    );
    r.add(
        "ratio_inproc_32_vs_1",
        "    ratio 32/1",
        inproc[1] / inproc[0],
        "x",
    );
    let durable = if args.sync == "always" {
        None
    } else {
        Some(Daemon::start(&dir.join("daemon-durable"), &args, "always").await?)
    };
    let dc = durable
        .as_ref()
        .map(|d| d.client.clone())
        .unwrap_or_else(|| c.clone());
    let mut rpc_w = Vec::new();
    let durable_daemon = durable.as_ref().unwrap_or(&d);
    for n in [1usize, 32] {
        let cpu0 = durable_daemon.cpu_secs();
        let took = raw_load(dc.url(), n, args.writes, "storage_write", move |i| {
            format!("{{\"key\":\"r{n}-{i}\",\"value\":\"{}\"}}", "x".repeat(100))
        })
        .await?;
        let cpu_us = (durable_daemon.cpu_secs() - cpu0) * 1e6 / args.writes as f64;
        r.add(
            &format!("rpc_durable_{n}_daemon_cpu_us"),
            &format!("    daemon CPU per write, {n} client(s)"),
            cpu_us,
            "us",
        );
        r.add(
            &format!("rpc_durable_{n}_cpu_share"),
            &format!("    daemon CPU share of the run, {n} client(s)"),
            (durable_daemon.cpu_secs() - cpu0) / took.as_secs_f64(),
            "cores",
        );
        rpc_w.push(rate(args.writes, took));
    }
    r.add(
        "rpc_durable_1",
        "(c) sync=always storage_write over JSON-RPC, 1 client",
        rpc_w[0],
        "writes/s",
    );
    r.add(
        "rpc_durable_32",
        "(c) sync=always storage_write over JSON-RPC, 32 clients",
        rpc_w[1],
        "writes/s",
    );
    r.add(
        "ratio_rpc_32_vs_1",
        "    ratio 32/1",
        rpc_w[1] / rpc_w[0],
        "x",
    );
    if let Some(d) = durable {
        d.stop();
    }

    // (i) continuous WAL archiving (default interval) under paced writes.
    let ad = Daemon::start_env(
        &dir.join("daemon-archive"),
        &args,
        &args.sync,
        &[("RUVECTOR_STORAGE__BACKUP__ARCHIVE_WAL", "true")],
    )
    .await?;
    let lag = archive_lag(&ad.client, 5000.0, Duration::from_secs(10)).await?;
    ad.stop();
    r.add(
        "archive_write_rate",
        "(i) paced storage_write rate while archiving",
        lag.rate,
        "writes/s",
    );
    r.add(
        "archive_lag_p50_ms",
        "(i) WAL archive lag, commit → archived, p50",
        lag.p50_ms,
        "ms",
    );
    r.add("archive_lag_p99_ms", "    p99", lag.p99_ms, "ms");
    r.add("archive_lag_max_ms", "    max", lag.max_ms, "ms");

    // (j) an index file stored and read back through the daemon vs cp.
    let id = Daemon::start(&dir.join("daemon-index"), &args, &args.sync).await?;
    let (put, get, copy) = index_bench(&dir, &dir.join("daemon-index"), 256 << 20)?;
    id.stop();
    r.add(
        "index_put_mb_s",
        "(j) index put, 256 MiB (chunked upload + SHA-256 commit)",
        put,
        "MB/s",
    );
    r.add("index_get_mb_s", "(j) index get to a file", get, "MB/s");
    r.add("index_cp_mb_s", "(j) cp of the same file", copy, "MB/s");
    r.add("index_put_vs_cp", "(j) index put ÷ cp", put / copy, "x");
    r.add("index_get_vs_cp", "(j) index get ÷ cp", get / copy, "x");

    // (d) point reads: raw get vs engine.kv_get (in-process) vs storage_read.
    let keys = 10_000usize;
    let de2 = de.clone();
    let reads = args.reads;
    let (raw_reads, engine_reads) = tokio::task::spawn_blocking(move || -> Result<(f64, f64)> {
        for chunk in (0..keys).collect::<Vec<_>>().chunks(1000) {
            let entries: Vec<(String, String)> = chunk
                .iter()
                .map(|i| (format!("k{i:06}"), "v".repeat(100)))
                .collect();
            de2.kv_put_many(&entries)?;
        }
        de2.flush()?;
        let cf = de2.cf(Cf::Kv);
        let key = |i: usize| format!("k{:06}", (i * 7919) % keys);
        let mut best = (0.0f64, 0.0f64);
        for _ in 0..3 {
            let t = Instant::now();
            for i in 0..reads {
                std::hint::black_box(de2.db().get_pinned_cf(cf, key(i).as_bytes())?);
            }
            best.0 = best.0.max(rate(reads, t.elapsed()));
            let t = Instant::now();
            for i in 0..reads {
                std::hint::black_box(de2.kv_get(&key(i))?);
            }
            best.1 = best.1.max(rate(reads, t.elapsed()));
        }
        Ok(best)
    })
    .await
    .map_err(|e| Error::internal(e.to_string()))??;
    r.add(
        "raw_reads",
        "(d) raw RocksDB get_pinned_cf",
        raw_reads,
        "reads/s",
    );
    r.add(
        "inproc_reads",
        "(d) in-process engine kv_get",
        engine_reads,
        "reads/s",
    );
    r.add(
        "ratio_inproc_vs_raw_reads",
        "    ratio in-process/raw",
        engine_reads / raw_reads,
        "x",
    );
    for i in 0..100 {
        c.call(
            "storage_write",
            json!({"key": format!("k{i:03}"), "value": "v".repeat(100)}),
        )
        .await
        .map_err(|e| e.into_error())?;
    }
    for n in [1usize, 32] {
        let total = (args.reads / 10).max(n);
        let took = raw_load(c.url(), n, total, "storage_read", |i| {
            format!("{{\"key\":\"k{:03}\"}}", i % 100)
        })
        .await?;
        r.add(
            &format!("rpc_reads_{n}"),
            &format!("(d) storage_read over JSON-RPC, {n} client(s)"),
            rate(total, took),
            "reads/s",
        );
    }

    // (e) MCP memory_store over stdio, one client, sequential calls.
    let exe = std::env::current_exe().map_err(|e| Error::io(e.to_string()))?;
    let mut ours = tokio::process::Command::new(exe);
    ours.args(["mcp", "--connect", c.url()])
        .stderr(Stdio::null());
    let mcp_rate = mcp_store_rate(ours, args.mcp_calls).await?;
    r.add(
        "mcp_store_per_s",
        "(e) MCP memory_store (ruvector-storage, stdio)",
        mcp_rate,
        "calls/s",
    );
    if let Some(cmd) = &args.compare_mcp {
        let mut theirs = tokio::process::Command::new("sh");
        theirs
            .args(["-c", cmd])
            .stderr(Stdio::null())
            .current_dir(&dir);
        let other = mcp_store_rate(theirs, (args.mcp_calls / 10).max(20)).await?;
        r.add(
            "mcp_compare_per_s",
            "(e) MCP memory_store (comparison server)",
            other,
            "calls/s",
        );
        r.add(
            "ratio_mcp_vs_compare",
            "    ratio ours/theirs",
            mcp_rate / other,
            "x",
        );
    }
    d.stop();

    let table = r
        .rows
        .iter()
        .map(|row| format!("{:<60} {:>14.2} {}", row.name, row.value, row.unit))
        .collect::<Vec<_>>()
        .join("\n");
    let body = serde_json::to_string_pretty(&Value::Object(r.json))
        .map_err(|e| Error::internal(e.to_string()))?;
    std::fs::write(&args.out, body)
        .map_err(|e| Error::io(format!("writing {}: {e}", args.out.display())))?;
    Ok(format!(
        "{table}\n\nresults written to {}",
        args.out.display()
    ))
}

/// (g): snapshot create (first, with cold checksum cache, and steady state)
/// and verify throughput on the ingested store.
fn snapshot_bench(
    engine: &Engine,
    config: &Config,
) -> Result<Vec<(&'static str, &'static str, f64, &'static str)>> {
    use crate::snapshot::{Kind, SnapshotStore};
    engine.flush()?;
    let store = SnapshotStore::open(&config.data_dir)?;
    let store_bytes = crate::fs::dir_size(engine.path());
    let t = Instant::now();
    store.create(engine, "bench-first", Kind::Manual, 1)?;
    let first_ms = t.elapsed().as_secs_f64() * 1000.0;
    // Steady state: a few more writes, then the next snapshot.
    let mut times = Vec::new();
    for i in 0..5 {
        let entries: Vec<(String, String)> = (0..100)
            .map(|j| (format!("snap-bench-{i}-{j}"), "x".repeat(100)))
            .collect();
        engine.kv_put_many(&entries)?;
        let t = Instant::now();
        store.create(engine, &format!("bench-{i}"), Kind::Manual, 2 + i)?;
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(|a, b| a.total_cmp(b));
    // Verify twice; the second run reads from the page cache.
    store.verify("bench-4", config, 10)?;
    let report = store.verify("bench-4", config, 11)?;
    if !report.ok {
        return Err(Error::corruption(format!(
            "bench snapshot failed verification: {:?}",
            report.bad_files
        )));
    }
    Ok(vec![
        (
            "snapshot_store_mb",
            "(g) store size on disk",
            store_bytes as f64 / 1e6,
            "MB",
        ),
        (
            "snapshot_first_create_ms",
            "(g) snapshot create, first (checksums every SST)",
            first_ms,
            "ms",
        ),
        (
            "snapshot_create_ms",
            "(g) snapshot create, steady state (median of 5)",
            times[2],
            "ms",
        ),
        (
            "snapshot_verify_mb_s",
            "(g) snapshot verify (checksums + read every key)",
            report.mb_per_s,
            "MB/s",
        ),
    ])
}

/// Run a command, timed; None when the program is missing.
/// Write every dirty page to disk (`sync`): (h) starts each timed step
/// from a clean page cache state and ends it with its data on disk, so a
/// tool that does not fsync is not measured against one that does.
fn flush_all() -> Result<()> {
    let st = std::process::Command::new("sync")
        .status()
        .map_err(|e| Error::io(format!("sync: {e}")))?;
    if !st.success() {
        return Err(Error::io("sync failed"));
    }
    Ok(())
}

/// [`timed`], between two [`flush_all`]s, the second one timed.
fn timed_synced(program: &str, args: &[&str], env: &[(&str, &str)]) -> Result<Option<Duration>> {
    flush_all()?;
    let t = Instant::now();
    let ran = timed(program, args, env)?;
    flush_all()?;
    Ok(ran.map(|_| t.elapsed()))
}

fn timed(program: &str, args: &[&str], env: &[(&str, &str)]) -> Result<Option<Duration>> {
    let mut cmd = std::process::Command::new(program);
    cmd.args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let t = Instant::now();
    match cmd.output() {
        Ok(o) if o.status.success() => Ok(Some(t.elapsed())),
        Ok(o) => Err(Error::io(format!(
            "{program} {args:?} failed: {}",
            String::from_utf8_lossy(&o.stderr)
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(format!("{program}: {e}"))),
    }
}

/// (j): MB/s of `index put` and `index get` (the CLI, over JSON-RPC, each
/// step ending with a timed `sync`) and of `cp` of the same file, synced
/// the same way: the cost of keeping an index in the store instead of
/// beside it.
fn index_bench(scratch: &Path, data_dir: &Path, bytes: usize) -> Result<(f64, f64, f64)> {
    let file = scratch.join("index-bench.idx");
    // Incompressible, like a graph of float vectors and neighbour ids.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let body: Vec<u8> = (0..bytes / 8)
        .flat_map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()
        })
        .collect();
    std::fs::write(&file, &body).map_err(|e| Error::io(format!("{}: {e}", file.display())))?;
    drop(body);
    let exe = std::env::current_exe().map_err(|e| Error::io(e.to_string()))?;
    let exe = exe.to_string_lossy().into_owned();
    let (f, d) = (file.to_string_lossy(), data_dir.to_string_lossy());
    let got = scratch.join("index-bench.out");
    let copied = scratch.join("index-bench.cp");
    let (g, c) = (got.to_string_lossy(), copied.to_string_lossy());
    let none = || Error::internal("(j) a program is missing");
    let put = timed_synced(
        &exe,
        &[
            "index",
            "put",
            "--name",
            "bench",
            "--type",
            "hnsw",
            "--file",
            &f,
            "--data-dir",
            &d,
        ],
        &[],
    )?
    .ok_or_else(none)?;
    let get = timed_synced(
        &exe,
        &[
            "index",
            "get",
            "--name",
            "bench",
            "-o",
            &g,
            "--data-dir",
            &d,
        ],
        &[],
    )?
    .ok_or_else(none)?;
    let cp = timed_synced("cp", &[&f, &c], &[])?.ok_or_else(none)?;
    if std::fs::read(&got)? != std::fs::read(&file)? {
        return Err(Error::corruption("(j) index get returned other bytes"));
    }
    for p in [&file, &got, &copied] {
        let _ = std::fs::remove_file(p);
    }
    let mb = bytes as f64 / 1e6;
    Ok((
        mb / put.as_secs_f64(),
        mb / get.as_secs_f64(),
        mb / cp.as_secs_f64(),
    ))
}

/// (h): full backup, 1% incremental (both methods), restore and verify
/// --read-data of the store (a) built, to a local target, beside restic on
/// the same checkpoint.
async fn backup_bench(
    engine: &Arc<Engine>,
    raw_dir: &Path,
    dir: &Path,
    count: usize,
    m: Arc<Matrix>,
) -> Result<Vec<(&'static str, &'static str, f64, &'static str)>> {
    use crate::backup::{wal::Archive, Target, UploadSpec, WalBackupSpec};
    use crate::snapshot::{Kind, SnapshotStore};
    let store = SnapshotStore::open(raw_dir)?;
    let files_of = |name: &str| -> Result<Vec<(String, String)>> {
        Ok(store
            .manifest(name)?
            .files
            .iter()
            .map(|f| (f.name.clone(), f.crc32c.clone()))
            .collect())
    };
    let snap = store.dir("bench-4");
    let files = files_of("bench-4")?;
    let target = Target::open(&format!("file://{}", dir.join("backups").display()))?;
    let seq = engine.db().latest_sequence_number();
    let history = engine.history().to_string();
    flush_all()?;
    let t = Instant::now();
    let full = target
        .upload(UploadSpec {
            dir: &snap,
            files: &files,
            name: "full",
            sequence: seq,
            full: true,
            encrypt: false,
            now_ms: 1,
            history: Some(history.clone()),
        })
        .await?;
    flush_all()?;
    let backup_s = t.elapsed().as_secs_f64();
    let mb = full.total_bytes as f64 / 1e6;
    // 1% of the vectors change (to another real embedding plus noise of
    // ±0.005 per component, so each is new content as a re-embedded text
    // would be — the source cycles 10 000 rows), in batches of 1000; then an
    // incremental backup of each kind.
    let (e2, m2) = (engine.clone(), m);
    tokio::task::spawn_blocking(move || -> Result<()> {
        let cf = e2.cf(Cf::Vectors);
        let changed: Vec<usize> = (0..count).step_by(100).collect();
        for chunk in changed.chunks(1000) {
            let mut b = WriteBatch::default();
            for &i in chunk {
                let mut v = m2.row((i + 7) % m2.rows).to_vec();
                let mut x = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
                for f in v.iter_mut() {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    *f += ((x >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.01;
                }
                b.put_cf(
                    cf,
                    composite_key("bench", &format!("v{i}")),
                    codec::encode_f32(&v),
                );
            }
            e2.db().write(b)?;
        }
        e2.flush()?;
        Ok(())
    })
    .await
    .map_err(|e| Error::internal(e.to_string()))??;
    let archive = Archive::new(&target);
    let upto = engine.db().latest_sequence_number();
    let (mut after, mut known, mut wal_uploaded) = (seq, std::collections::HashMap::new(), 0);
    while after < upto {
        let r = archive.pass(engine.clone(), after).await?;
        if r.batches == 0 {
            break;
        }
        if let (Some(o), Some(h)) = (r.segment, r.sha256) {
            known.insert(o, h);
        }
        wal_uploaded += r.bytes;
        after = r.to_sequence;
    }
    let inc_wal = target
        .commit_wal(WalBackupSpec {
            name: "incremental-wal",
            parent: &full,
            base: &full,
            sequence: upto,
            wal: archive
                .vouch(archive.cover(seq, upto).await?, &known)
                .await?,
            uploaded_bytes: wal_uploaded,
            uploaded_objects: known.len() as u64,
            encrypt: false,
            now_ms: 2,
            history: history.clone(),
        })
        .await?;
    store.create(engine, "bench-changed", Kind::Manual, 50)?;
    let inc = target
        .upload(UploadSpec {
            dir: &store.dir("bench-changed"),
            files: &files_of("bench-changed")?,
            name: "incremental",
            sequence: engine.db().latest_sequence_number(),
            full: false,
            encrypt: false,
            now_ms: 3,
            history: Some(history),
        })
        .await?;
    flush_all()?;
    let t = Instant::now();
    target.download(&full, &dir.join("restored")).await?;
    flush_all()?;
    let restore_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let v = target.verify(&full, 1.0).await?;
    flush_all()?;
    let verify_s = t.elapsed().as_secs_f64();
    if !v.ok {
        return Err(Error::corruption(format!(
            "bench backup failed verification: {:?}",
            v.bad
        )));
    }
    let mut out = vec![
        ("backup_mb", "(h) checkpoint backed up", mb, "MB"),
        (
            "backup_full_mb_s",
            "(h) full backup to a local target",
            mb / backup_s,
            "MB/s",
        ),
        (
            "backup_incremental_ratio",
            "(h) WAL incremental after 1% of vectors changed ÷ full (bytes uploaded)",
            inc_wal.total_bytes as f64 / full.uploaded_bytes.max(1) as f64,
            "ratio",
        ),
        (
            "backup_incremental_files_ratio",
            "(h) files incremental after 1% of vectors changed ÷ full (bytes uploaded)",
            inc.uploaded_bytes as f64 / full.uploaded_bytes.max(1) as f64,
            "ratio",
        ),
        (
            "backup_restore_mb_s",
            "(h) restore from the local target",
            mb / restore_s,
            "MB/s",
        ),
        (
            "backup_verify_mb_s",
            "(h) verify --read-data",
            mb / verify_s,
            "MB/s",
        ),
    ];
    // restic 0.14 (Debian package restic) on the same checkpoint.
    let repo = dir.join("restic");
    let repo_s = repo.display().to_string();
    let env = [
        ("RESTIC_PASSWORD", "bench"),
        ("RESTIC_REPOSITORY", repo_s.as_str()),
    ];
    let snap_s = snap.display().to_string();
    let restored = dir.join("restic-restored").display().to_string();
    if timed("restic", &["init"], &env)?.is_some() {
        let b = timed_synced("restic", &["backup", &snap_s], &env)?.unwrap_or_default();
        let r = timed_synced(
            "restic",
            &["restore", "latest", "--target", &restored],
            &env,
        )?
        .unwrap_or_default();
        let c = timed_synced("restic", &["check", "--read-data"], &env)?.unwrap_or_default();
        let (rb, rr, rc) = (
            mb / b.as_secs_f64(),
            mb / r.as_secs_f64(),
            mb / c.as_secs_f64(),
        );
        out.extend([
            (
                "restic_backup_mb_s",
                "(h) restic 0.14 backup, same checkpoint",
                rb,
                "MB/s",
            ),
            ("restic_restore_mb_s", "(h) restic restore", rr, "MB/s"),
            (
                "restic_check_mb_s",
                "(h) restic check --read-data",
                rc,
                "MB/s",
            ),
            (
                "backup_vs_restic",
                "(h) backup ÷ restic backup",
                (mb / backup_s) / rb,
                "ratio",
            ),
            (
                "restore_vs_restic",
                "(h) restore ÷ restic restore",
                (mb / restore_s) / rr,
                "ratio",
            ),
            (
                "verify_vs_restic",
                "(h) verify --read-data ÷ restic check --read-data",
                (mb / verify_s) / rc,
                "ratio",
            ),
        ]);
    } else {
        eprintln!("restic is not installed (apt-get install restic): (h) has no comparison");
    }
    Ok(out)
}

/// Drive an MCP stdio server with sequential `memory_store` calls.
async fn mcp_store_rate(cmd: tokio::process::Command, calls: usize) -> Result<f64> {
    use rmcp::model::CallToolRequestParams;
    use rmcp::ServiceExt;
    let transport = rmcp::transport::TokioChildProcess::new(cmd)
        .map_err(|e| Error::io(format!("starting MCP server: {e}")))?;
    let client = ().serve(transport).await.map_err(|e| Error::io(format!("MCP initialize: {e}")))?;
    let tools = client
        .list_all_tools()
        .await
        .map_err(|e| Error::io(format!("tools/list: {e}")))?;
    let v3 = tools.iter().any(|t| t.name == "memory_store");
    let args = |i: usize| -> Map<String, Value> {
        let v = if v3 {
            json!({"key": format!("bench/{i}"), "value": format!("value {i}"), "namespace": "bench", "upsert": true})
        } else {
            json!({"action": "store", "key": format!("bench/{i}"), "value": format!("value {i}"), "namespace": "bench"})
        };
        v.as_object().cloned().unwrap_or_default()
    };
    let name = if v3 { "memory_store" } else { "memory_usage" };
    let t = Instant::now();
    for i in 0..calls {
        let res = client
            .call_tool(CallToolRequestParams::new(name).with_arguments(args(i)))
            .await
            .map_err(|e| Error::io(format!("tools/call {name}: {e}")))?;
        if res.is_error == Some(true) {
            return Err(Error::internal(format!("{name} failed: {:?}", res.content)));
        }
    }
    let r = rate(calls, t.elapsed());
    let _ = client.cancel().await;
    Ok(r)
}

/// A minimal keep-alive HTTP/1.1 JSON-RPC client, so the benchmark measures
/// the daemon rather than a heavyweight client sharing its two cores.
struct RawRpc {
    stream: tokio::io::BufStream<tokio::net::TcpStream>,
    next_id: u64,
}

impl RawRpc {
    async fn connect(url: &str) -> Result<RawRpc> {
        let addr = url.trim_start_matches("http://").trim_end_matches('/');
        let stream = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| Error::unavailable(format!("connecting to {addr}: {e}")))?;
        stream
            .set_nodelay(true)
            .map_err(|e| Error::io(e.to_string()))?;
        Ok(RawRpc {
            stream: tokio::io::BufStream::new(stream),
            next_id: 0,
        })
    }

    /// Send one call whose params are already serialised; fail on a JSON-RPC error.
    async fn call(&mut self, method: &str, params_json: &str) -> Result<()> {
        use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
        self.next_id += 1;
        let body = format!(
            "{{\"jsonrpc\":\"2.0\",\"id\":{},\"method\":\"{method}\",\"params\":{params_json}}}",
            self.next_id
        );
        let head = format!(
            "POST / HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        let io = |e: std::io::Error| Error::io(format!("bench client: {e}"));
        self.stream.write_all(head.as_bytes()).await.map_err(io)?;
        self.stream.write_all(body.as_bytes()).await.map_err(io)?;
        self.stream.flush().await.map_err(io)?;
        let mut len = 0usize;
        let mut line = String::new();
        loop {
            line.clear();
            if self.stream.read_line(&mut line).await.map_err(io)? == 0 {
                return Err(Error::unavailable("daemon closed the connection"));
            }
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut buf = vec![0u8; len];
        self.stream.read_exact(&mut buf).await.map_err(io)?;
        if buf.windows(8).any(|w| w == b"\"error\":") {
            return Err(Error::internal(format!(
                "{method} failed: {}",
                String::from_utf8_lossy(&buf)
            )));
        }
        Ok(())
    }
}

/// `clients` connections, each making `total / clients` calls in sequence.
/// What (i) measured.
struct Lag {
    rate: f64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
}

/// Paced single-key writes at `rate` for `span` from 16 clients; every
/// 20 ms the store's latest sequence is sampled, and each sample's lag is
/// the time until the archiver's `archived_sequence` (in `storage_stats`)
/// reaches it.
async fn archive_lag(c: &Client, rate: f64, span: Duration) -> Result<Lag> {
    const CLIENTS: usize = 16;
    let start = tokio::time::Instant::now();
    let period = Duration::from_secs_f64(CLIENTS as f64 / rate);
    let writers: Vec<_> = (0..CLIENTS)
        .map(|w| {
            let c = c.clone();
            tokio::spawn(async move {
                let mut n = 0u64;
                let mut next = start + period.mul_f64(w as f64 / CLIENTS as f64);
                while next < start + span {
                    tokio::time::sleep_until(next).await;
                    c.call(
                        "storage_write",
                        json!({"key": format!("lag-{w}-{n}"), "value": "x".repeat(100)}),
                    )
                    .await
                    .map_err(|e| e.into_error())?;
                    n += 1;
                    next += period;
                }
                Ok::<u64, Error>(n)
            })
        })
        .collect();
    let mut pending: Vec<(Instant, u64)> = Vec::new();
    let mut lags: Vec<f64> = Vec::new();
    let deadline = Instant::now() + span + Duration::from_secs(10);
    loop {
        let now = Instant::now();
        let writing = start.elapsed() < span;
        if writing {
            let h = c.health().await?;
            if let Some(s) = h["latest_sequence"].as_u64() {
                pending.push((now, s));
            }
        }
        let stats = c
            .call("storage_stats", json!({}))
            .await
            .map_err(|e| e.into_error())?;
        let archived = stats["records"]["backup"]["wal_archive"]["archived_sequence"]
            .as_u64()
            .unwrap_or(0);
        let at = Instant::now();
        pending.retain(|(t, s)| {
            if *s <= archived {
                lags.push(at.duration_since(*t).as_secs_f64() * 1000.0);
                false
            } else {
                true
            }
        });
        if !writing && pending.is_empty() {
            break;
        }
        if at > deadline {
            return Err(Error::unavailable(format!(
                "(i) the WAL archive did not catch up: {} samples pending, archived sequence {archived}",
                pending.len()
            )));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut written = 0u64;
    for w in writers {
        written += w
            .await
            .map_err(|e| Error::internal(format!("writer task: {e}")))??;
    }
    if lags.is_empty() {
        return Err(Error::internal("(i) no lag samples"));
    }
    lags.sort_by(|a, b| a.total_cmp(b));
    let q = |p: f64| lags[((lags.len() - 1) as f64 * p).round() as usize];
    Ok(Lag {
        rate: written as f64 / span.as_secs_f64(),
        p50_ms: q(0.5),
        p99_ms: q(0.99),
        max_ms: q(1.0),
    })
}

async fn raw_load<F>(
    url: &str,
    clients: usize,
    total: usize,
    method: &'static str,
    params: F,
) -> Result<Duration>
where
    F: Fn(usize) -> String + Clone + Send + 'static,
{
    let mut conns = Vec::new();
    for _ in 0..clients {
        conns.push(RawRpc::connect(url).await?);
    }
    let per = total / clients;
    let t = Instant::now();
    let tasks: Vec<_> = conns
        .into_iter()
        .enumerate()
        .map(|(c, mut conn)| {
            let params = params.clone();
            tokio::spawn(async move {
                for i in 0..per {
                    conn.call(method, &params(c * per + i)).await?;
                }
                Ok::<(), Error>(())
            })
        })
        .collect();
    for task in tasks {
        task.await.map_err(|e| Error::internal(e.to_string()))??;
    }
    Ok(t.elapsed())
}

struct TempDir(PathBuf);
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn tempfile_dir() -> Result<TempDir> {
    let p = std::env::temp_dir().join(format!("ruvector-bench-{}", std::process::id()));
    std::fs::create_dir_all(&p)?;
    Ok(TempDir(p))
}
