//! (d) point reads: raw RocksDB `get_pinned_cf` against the engine's
//! in-process `kv_get` on the same store, then `storage_read` over
//! JSON-RPC with 1 and 32 clients.

use std::sync::Arc;
use std::time::Instant;

use serde_json::json;

use crate::client::Client;
use crate::engine::{Cf, Engine};
use crate::error::{Error, Result};

use super::harness::rate;
use super::load::raw_load;
use super::{BenchArgs, Report};

/// (d) on `de` in-process and on the daemon at `c` over JSON-RPC.
pub(super) async fn run(
    de: &Arc<Engine>,
    c: &Client,
    args: &BenchArgs,
    r: &mut Report,
) -> Result<()> {
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
    Ok(())
}
