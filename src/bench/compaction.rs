//! `bench --compaction`: foreground write latency during a full compaction,
//! with RocksDB's rate limiter off and on (`[maintenance] max-mb-per-sec`),
//! in one run.
//!
//! For each setting a fresh daemon gets `--count` keys of 1 KiB (random
//! hex, which kv's lz4 barely shrinks) written
//! twice (the second pass overwrites the first, so half the table files is
//! garbage) and flushed; then one client writes single durable entries
//! (`storage_write`, `sync = always`) in a loop while `compact --full` runs,
//! and the latencies of the writes that overlapped it are kept.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use serde_json::{json, Value};

use super::harness::Daemon;
use super::load::{raw_load, RawRpc};
use super::quantization::call_err;
use super::BenchArgs;
use crate::error::{Error, Result};

/// The limit measured against none, MB/s.
const LIMIT_MB: u64 = 16;

/// 1 KiB of pseudo-random hex: what block compression cannot shrink much
/// (kv is lz4), so the compaction has real bytes to write.
fn noise(seed: u64) -> String {
    use std::fmt::Write as _;
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut s = String::with_capacity(1024);
    while s.len() < 1024 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let _ = write!(s, "{x:016x}");
    }
    s
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

pub(super) async fn run(dir: &Path, args: &BenchArgs) -> Result<(String, Value)> {
    let keys = args.count.max(1000);
    let mut lines = vec![format!(
        "{:<26} {:>10} {:>10} {:>10} {:>12} {:>10}",
        "rate limiter", "writes", "p50 ms", "p99 ms", "compaction s", "SST MB"
    )];
    let mut rows = Vec::new();
    for limit in [0, LIMIT_MB] {
        let env = [(
            "RUVECTOR_STORAGE__MAINTENANCE__MAX_MB_PER_SEC",
            limit.to_string(),
        )];
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let d = Daemon::start_env(
            &dir.join(format!("compaction-{limit}")),
            args,
            "always",
            &env,
        )
        .await?;
        for pass in 0..2u64 {
            raw_load(
                d.client.url(),
                2,
                keys.div_ceil(100),
                "storage_write",
                move |b| {
                    let entries: Vec<Value> = (b * 100..((b + 1) * 100).min(keys))
                        .map(|i| json!({"key": format!("k{i:08}"), "value": noise(i as u64 * 2 + pass)}))
                        .collect();
                    json!({ "entries": entries }).to_string()
                },
            )
            .await?;
            d.client
                .call("wal_checkpoint", json!({}))
                .await
                .map_err(call_err)?;
        }
        let done = Arc::new(AtomicBool::new(false));
        let (url, stop) = (d.client.url().to_string(), done.clone());
        let writer = tokio::spawn(async move {
            let mut rpc = RawRpc::connect(&url).await?;
            let mut lat = Vec::new();
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                let params = format!(r#"{{"key":"fg{i:08}","value":"foreground write"}}"#);
                rpc.call("storage_write", &params).await?;
                lat.push(t.elapsed().as_secs_f64() * 1000.0);
                i += 1;
            }
            Ok::<_, Error>(lat)
        });
        let t = Instant::now();
        let report = d
            .client
            .call("storage_compact", json!({"full": true}))
            .await
            .map_err(call_err)?;
        let secs = t.elapsed().as_secs_f64();
        done.store(true, Ordering::Relaxed);
        let mut lat = writer.await.map_err(|e| Error::internal(e.to_string()))??;
        d.stop();
        lat.sort_by(f64::total_cmp);
        let (p50, p99) = (percentile(&lat, 0.5), percentile(&lat, 0.99));
        let sst_mb = report["sst_bytes_before"].as_f64().unwrap_or(0.0) / 1e6;
        let name = if limit == 0 {
            "none".to_string()
        } else {
            format!("{limit} MB/s")
        };
        eprintln!("  rate limiter {name}: {} writes, p50 {p50:.2} ms, p99 {p99:.2} ms, compaction {secs:.1} s", lat.len());
        lines.push(format!(
            "{name:<26} {:>10} {p50:>10.2} {p99:>10.2} {secs:>12.1} {sst_mb:>10.1}",
            lat.len()
        ));
        rows.push(
            json!({"limit_mb_per_sec": limit, "writes": lat.len(), "p50_ms": p50,
            "p99_ms": p99, "compaction_secs": secs, "sst_mb": sst_mb}),
        );
    }
    let p99 = |i: usize| rows[i]["p99_ms"].as_f64().unwrap_or(0.0);
    let ratio = p99(1) / p99(0).max(1e-9);
    lines.push(format!(
        "\nforeground write p99 during compact --full, limited / unlimited: {ratio:.2}x"
    ));
    Ok((
        lines.join("\n"),
        json!({"keys": keys, "value_bytes": 1024, "value": "pseudo-random hex", "runs": rows, "p99_limited_vs_unlimited": ratio}),
    ))
}
