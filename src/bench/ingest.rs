//! (a) raw RocksDB `WriteBatch` ingest against (b) the daemon's JSON-RPC
//! batch API (`vector_upsert`, base64), same vectors, same durability.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use rocksdb::{WriteBatch, WriteOptions};
use serde_json::{json, Value};

use crate::codec;
use crate::engine::{composite_key, Cf, Engine};
use crate::error::{Error, Result};
use crate::npy::Matrix;

use super::harness::{rate, Daemon};
use super::load::raw_load;
use super::{BenchArgs, Report};

/// (a): `--count` vectors written straight into `engine` in batches of
/// `--batch`; returns the rate, which (b) is compared with.
pub(super) async fn raw(
    engine: &Arc<Engine>,
    args: &BenchArgs,
    m: Arc<Matrix>,
    r: &mut Report,
) -> Result<f64> {
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
                    codec::encode_f32(m.row(i % m.rows)),
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
    Ok(raw_ingest)
}

/// (b): the same vectors through `vector_upsert` on `d`, from
/// `--ingest-clients` connections; compared with (a)'s `raw_ingest`.
pub(super) async fn rpc(
    d: &Daemon,
    args: &BenchArgs,
    m: &Matrix,
    raw_ingest: f64,
    r: &mut Report,
) -> Result<()> {
    let c = &d.client;
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
    Ok(())
}
