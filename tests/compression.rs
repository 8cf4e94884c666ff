//! Per-type compression through the daemon: `compress` changes a family's
//! compression at runtime (refusing bad input without changing anything),
//! `--rewrite` applies it to the files already there, the choice survives
//! a SIGKILL and restart, and `analyze-compression` predicts what it
//! stores; all from JSON-RPC and the CLI.

mod common;

use common::*;
use serde_json::{json, Value};

/// Values like a swarm's key/values: JSON with repeated field names.
fn kv_batch(from: usize, n: usize) -> Value {
    let entries: Vec<Value> = (from..from + n)
        .map(|i| {
            json!({"key": format!("task/{i:06}"), "value": json!({
                "agent": format!("coder-{}", i % 17), "status": "done",
                "summary": format!("refactored module {} and ran {} tests", i % 101, i % 13),
            }).to_string()})
        })
        .collect();
    json!({"entries": entries})
}

async fn kv_compression(c: &ruvector_storage::client::Client) -> String {
    let s = ok(c, "storage_stats", json!({})).await;
    s["store"]["compression"]["kv"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compress_sets_rewrites_and_keeps_a_family_s_compression() {
    let dir = tempfile::tempdir().unwrap();
    let d = start(dir.path());
    let c = d.client();
    for i in 0..6 {
        ok(&c, "storage_write", kv_batch(i * 1000, 1000)).await;
    }
    assert_eq!(kv_compression(&c).await, "lz4", "the kv default");

    // Bad input says what and why, and changes nothing.
    for (params, says) in [
        (
            json!({"type": "kv", "algorithm": "brotli"}),
            "expected zstd, lz4, snappy or none",
        ),
        (
            json!({"type": "kv", "algorithm": "zstd", "level": 42}),
            "expected 1 to 19",
        ),
        (
            json!({"type": "kv", "algorithm": "lz4", "level": 3}),
            "zstd only",
        ),
        (
            json!({"type": "blobs", "algorithm": "zstd"}),
            "expected one of kv, vectors, metadata",
        ),
        (json!({"type": "kv"}), "nothing to do"),
    ] {
        let (_, message) = err(&c, "storage_compress", params.clone()).await;
        assert!(message.contains(says), "{params}: {message}");
    }
    assert_eq!(kv_compression(&c).await, "lz4", "bad input changed nothing");

    // The prediction first, then the choice applied to what is there.
    let analysis = ok(
        &c,
        "analyze_compression",
        json!({"type": "kv", "show_ratio": true}),
    )
    .await;
    let kv = &analysis["families"][0];
    assert_eq!(kv["family"], "kv");
    let predicted = kv["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["compression"] == "zstd:9")
        .unwrap()["predicted_ratio"]
        .as_f64()
        .unwrap();
    let r = ok(
        &c,
        "storage_compress",
        json!({"type": "kv", "algorithm": "zstd", "level": 9, "rewrite": true}),
    )
    .await;
    assert_eq!(
        (r["compression"].as_str(), r["previous"].as_str()),
        (Some("zstd:9"), Some("lz4"))
    );
    let actual = r["rewrite"]["ratio_after"].as_f64().unwrap();
    assert!(
        (actual / predicted - 1.0).abs() < 0.10,
        "zstd:9 stores {actual}, predicted {predicted}: {r}"
    );
    assert!(actual > 2.0, "JSON compresses: {r}");

    // SIGKILL: the choice was written with the data, and holds.
    d.kill9();
    let d = start(dir.path());
    let c = d.client();
    assert_eq!(kv_compression(&c).await, "zstd:9");
    let got = ok(&c, "storage_read", json!({"key": "task/004321"})).await;
    assert!(got["value"].as_str().unwrap().contains("coder-"), "{got}");

    // The CLI: the same two operations, rendered.
    let (code, out, e) = cli(&[
        "compress",
        "--type",
        "kv",
        "--algorithm",
        "lz4",
        "--connect",
        &d.url,
    ]);
    assert_eq!(code, 0, "{e}");
    assert!(out.contains("kv: lz4 (was zstd:9)"), "{out}");
    let (code, out, e) = cli(&[
        "analyze-compression",
        "--type",
        "kv",
        "--show-ratio",
        "--connect",
        &d.url,
    ]);
    assert_eq!(code, 0, "{e}");
    for want in ["kv", "lz4", "zstd:19", "predicted", "MB/s"] {
        assert!(out.contains(want), "{want}: {out}");
    }
    let (code, _, e) = cli(&[
        "compress",
        "--type",
        "kv",
        "--algorithm",
        "gzip",
        "--connect",
        &d.url,
    ]);
    assert_ne!(code, 0);
    assert!(e.contains("expected zstd, lz4, snappy or none"), "{e}");
    // Back to the configured one.
    ok(
        &c,
        "storage_compress",
        json!({"type": "kv", "algorithm": "zstd", "level": 1}),
    )
    .await;
    let (code, out, e) = cli(&["compress", "--type", "kv", "--reset", "--connect", &d.url]);
    assert_eq!(code, 0, "{e}");
    assert!(out.contains("kv: lz4 (was zstd:1)"), "{out}");
    assert_eq!(kv_compression(&c).await, "lz4");
}
