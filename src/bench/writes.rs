//! (c) durable single writes (`sync = always`) with 1 and 32 concurrent
//! writers: in-process threads on the engine, then JSON-RPC clients of a
//! daemon, with the daemon's CPU per write.

use std::path::Path;
use std::sync::Arc;

use crate::engine::Engine;
use crate::error::{Error, Result};

use super::harness::{rate, threads, Daemon};
use super::load::raw_load;
use super::{BenchArgs, Report};

/// (c) on `de` (a `sync = always` store) and over JSON-RPC: on `d` when
/// `--sync always`, else on a `sync = always` daemon of its own.
pub(super) async fn run(
    d: &Daemon,
    de: &Arc<Engine>,
    dir: &Path,
    args: &BenchArgs,
    r: &mut Report,
) -> Result<()> {
    let c = &d.client;
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
        Some(Daemon::start(&dir.join("daemon-durable"), args, "always").await?)
    };
    let dc = durable
        .as_ref()
        .map(|d| d.client.clone())
        .unwrap_or_else(|| c.clone());
    let mut rpc_w = Vec::new();
    let durable_daemon = durable.as_ref().unwrap_or(d);
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
    Ok(())
}
