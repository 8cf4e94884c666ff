//! `bench --quantization`: what each vector format costs and keeps, through
//! the daemon's own paths, in one run.
//!
//! On a real embedding set (`--vectors base.npy`, with `queries.npy` beside
//! it; e.g. ../shared/data/minilm-dev), for each setting a fresh daemon
//! ingests the base vectors (`vector_upsert`, base64), flushes and
//! compacts, and reports the collection's stored bytes (SST bytes of `vectors`, plus `originals`
//! when kept; keys included) against f32's, and the recall@10 of
//! `vector_search` against exact f32 search (computed here). Then, at 40k
//! vectors: int8 ingest as a ratio to f32 ingest through the same RPC path,
//! and `vector_search` queries a second from one client (each the best of
//! two alternating rounds).

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use base64::Engine as _;
use serde_json::{json, Value};

use super::harness::{rate, Daemon};
use super::load::raw_load;
use super::BenchArgs;
use crate::codec;
use crate::error::{Error, Result};
use crate::npy::Matrix;
use crate::quant::dot_f32;

/// (name, quantization, originals, rescore)
const SETTINGS: [(&str, &str, &str, bool); 8] = [
    ("f32", "none", "keep", false),
    ("f16", "f16", "drop", false),
    ("int8", "int8", "drop", false),
    ("int6", "int6", "drop", false),
    ("int4", "int4", "drop", false),
    ("binary", "binary", "drop", false),
    ("int8, originals kept, rescore", "int8", "keep", true),
    ("int4, originals kept, rescore", "int4", "keep", true),
];

/// Vectors of the ingest and search-speed runs.
const SPEED_ROWS: usize = 40_000;

pub(super) fn call_err(e: crate::client::CallError) -> Error {
    e.into_error()
}

/// Ingest `rows` vectors (base cycled, ids distinct) into `collection`.
pub(super) async fn ingest(
    d: &Daemon,
    args: &BenchArgs,
    m: &Arc<Matrix>,
    collection: &str,
    rows: usize,
) -> Result<f64> {
    let batch = args.batch;
    let (m2, c2) = (m.clone(), collection.to_string());
    let took = raw_load(
        d.client.url(),
        args.ingest_clients,
        rows.div_ceil(batch),
        "vector_upsert",
        move |b| {
            let vectors: Vec<Value> = (b * batch..((b + 1) * batch).min(rows))
                .map(|i| json!({"id": format!("v{i:06}"), "vector_b64":
                    base64::engine::general_purpose::STANDARD.encode(codec::f32_to_le(m2.row(i % m2.rows)))}))
                .collect();
            json!({"collection": c2, "vectors": vectors}).to_string()
        },
    )
    .await?;
    Ok(rate(rows, took))
}

/// SST bytes of the store's `vectors` and `originals` families at rest:
/// flushed, then rewritten to the bottommost level (`compress --rewrite`;
/// level 0, where a flush lands, is not compressed).
pub(super) async fn stored_bytes(d: &Daemon) -> Result<f64> {
    d.client
        .call("wal_checkpoint", json!({}))
        .await
        .map_err(call_err)?;
    for family in ["vectors", "originals"] {
        d.client
            .call("storage_compress", json!({"type": family, "rewrite": true}))
            .await
            .map_err(call_err)?;
    }
    let stats = d
        .client
        .call("storage_stats", json!({}))
        .await
        .map_err(call_err)?;
    let cfs = stats
        .pointer("/store/column_families")
        .or_else(|| stats.get("column_families"))
        .and_then(Value::as_array)
        .ok_or_else(|| Error::internal(format!("storage_stats has no column_families: {stats}")))?;
    Ok(cfs
        .iter()
        .filter(|c| matches!(c["name"].as_str(), Some("vectors" | "originals")))
        .map(|c| c["sst_bytes"].as_f64().unwrap_or(0.0))
        .sum())
}

/// Exact top 10 of every query (cosine; the rows are unit-norm, so dot).
fn exact_top10(base: &Matrix, queries: &Matrix) -> Vec<Vec<String>> {
    (0..queries.rows)
        .map(|q| {
            let mut s: Vec<(f32, usize)> = (0..base.rows)
                .map(|i| (dot_f32(queries.row(q), base.row(i)), i))
                .collect();
            s.sort_by(|a, b| b.0.total_cmp(&a.0));
            s.iter().take(10).map(|(_, i)| format!("v{i:06}")).collect()
        })
        .collect()
}

/// Run every query through `vector_search`: (recall@10, queries/s).
async fn search(
    d: &Daemon,
    collection: &str,
    queries: &Matrix,
    exact: Option<&[Vec<String>]>,
    rescore: bool,
) -> Result<(f64, f64)> {
    let ask = |q: usize| json!({"collection": collection, "vector": queries.row(q), "k": 10, "rescore": rescore});
    // The first search builds the in-memory copy; not timed.
    d.client
        .call("vector_search", ask(0))
        .await
        .map_err(call_err)?;
    let mut hits = 0;
    let t = Instant::now();
    for q in 0..queries.rows {
        let out = d
            .client
            .call("vector_search", ask(q))
            .await
            .map_err(call_err)?;
        if let Some(exact) = exact {
            let got = out["results"].as_array().cloned().unwrap_or_default();
            hits += got
                .iter()
                .filter(|h| {
                    h["id"]
                        .as_str()
                        .is_some_and(|id| exact[q].iter().any(|e| e == id))
                })
                .count();
        }
    }
    let qps = rate(queries.rows, t.elapsed());
    Ok((hits as f64 / (10 * queries.rows) as f64, qps))
}

pub(super) async fn run(dir: &Path, args: &BenchArgs) -> Result<(String, Value)> {
    let base_path = args.vectors.clone().ok_or_else(|| {
        Error::invalid("bench --quantization needs --vectors base.npy (queries.npy beside it), e.g. ../shared/data/minilm-dev/base.npy")
    })?;
    let queries_path = base_path.with_file_name("queries.npy");
    let base = Arc::new(crate::npy::load(&base_path)?);
    let queries = crate::npy::load(&queries_path).map_err(|e| {
        e.context(format!(
            "queries beside the base vectors ({})",
            queries_path.display()
        ))
    })?;
    let exact = exact_top10(&base, &queries);
    let mut lines = vec![format!(
        "{:<32} {:>12} {:>9} {:>10} {:>12}",
        "setting", "stored MB", "smaller", "recall@10", "ingest v/s"
    )];
    let mut rows = Vec::new();
    let mut f32_bytes = 0.0;
    for (i, (name, quantization, originals, rescore)) in SETTINGS.into_iter().enumerate() {
        let d = Daemon::start(&dir.join(format!("quant-{i}")), args, &args.sync).await?;
        d.client
            .call(
                "collection_create",
                json!({"name": "q", "dimension": base.dim,
                "quantization": quantization, "originals": originals}),
            )
            .await
            .map_err(call_err)?;
        let ingest_vps = ingest(&d, args, &base, "q", base.rows).await?;
        let bytes = stored_bytes(&d).await?;
        if i == 0 {
            f32_bytes = bytes;
        }
        let (recall, _) = search(&d, "q", &queries, Some(&exact), rescore).await?;
        d.stop();
        let smaller = f32_bytes / bytes.max(1.0);
        eprintln!(
            "  {name:<32} {:>10.2} MB {smaller:>7.2}x recall@10 {recall:.4}",
            bytes / 1e6
        );
        lines.push(format!(
            "{name:<32} {:>12.2} {smaller:>8.2}x {recall:>10.4} {ingest_vps:>12.0}",
            bytes / 1e6
        ));
        rows.push(
            json!({"setting": name, "quantization": quantization, "originals": originals,
            "rescore": rescore, "stored_bytes": bytes, "smaller_than_f32": smaller,
            "recall_at_10": recall, "ingest_vps": ingest_vps}),
        );
    }
    // Ingest and search speed at 40k: f32 against int8, same path, one run,
    // alternating (f32, int8, f32, int8) and keeping each one's best, so a
    // slow moment of the machine does not land on one side only.
    let mut speed = serde_json::Map::new();
    for round in 0..2 {
        for (name, quantization) in [("f32", "none"), ("int8", "int8")] {
            let d =
                Daemon::start(&dir.join(format!("speed-{name}-{round}")), args, &args.sync).await?;
            d.client
                .call(
                    "collection_create",
                    json!({"name": "s", "dimension": base.dim,
                    "quantization": quantization, "originals": "drop"}),
                )
                .await
                .map_err(call_err)?;
            let vps = ingest(&d, args, &base, "s", SPEED_ROWS).await?;
            let (_, qps) = search(&d, "s", &queries, None, false).await?;
            d.stop();
            eprintln!("  {SPEED_ROWS} × {} {name} (round {}): ingest {vps:.0} vectors/s, search {qps:.1} queries/s", base.dim, round + 1);
            for (key, v) in [
                (format!("{name}_ingest_vps"), vps),
                (format!("{name}_search_qps"), qps),
            ] {
                let best = speed
                    .get(&key)
                    .and_then(Value::as_f64)
                    .unwrap_or(0.0)
                    .max(v);
                speed.insert(key, json!(best));
            }
        }
    }
    let num = |k: &str| speed.get(k).and_then(Value::as_f64).unwrap_or(0.0);
    let ratio = num("int8_ingest_vps") / num("f32_ingest_vps").max(1e-9);
    lines.push(String::new());
    lines.push(format!(
        "ingest of {SPEED_ROWS} vectors, int8 / f32 through vector_upsert: {ratio:.2}x ({:.0} vs {:.0} vectors/s)",
        num("int8_ingest_vps"),
        num("f32_ingest_vps")
    ));
    lines.push(format!(
        "vector_search over {SPEED_ROWS} × {}, one client: int8 {:.1} queries/s, f32 {:.1} queries/s",
        base.dim,
        num("int8_search_qps"),
        num("f32_search_qps")
    ));
    speed.insert("int8_vs_f32_ingest".into(), json!(ratio));
    let metadata = match super::metadata::run(dir, args, &base_path, &base).await? {
        Some((more, rows)) => {
            lines.push(String::new());
            lines.extend(more);
            rows
        }
        None => Value::Null,
    };
    let (more, dedup) = super::dedup::run(dir, args, &base).await?;
    lines.push(String::new());
    lines.extend(more);
    let json = json!({"config": {"vectors": base_path.display().to_string(), "rows": base.rows,
        "dim": base.dim, "queries": queries.rows, "sync": args.sync, "compression": args.compression,
        "batch": args.batch, "ingest_clients": args.ingest_clients},
        "settings": rows, "speed": speed, "metadata": metadata, "dedup": dedup});
    Ok((lines.join("\n"), json))
}
