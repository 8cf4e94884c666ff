//! Quantized collections through the daemon: the calibration survives a
//! SIGKILL in its middle, codes come back through `vector_get` (decoded and
//! raw), `vector_search` is reachable from JSON-RPC and the CLI, and the
//! clipped values are counted in /metrics.

mod common;

use base64::Engine as _;
use common::*;
use serde_json::{json, Value};

fn vector(i: usize, dim: usize) -> Vec<f32> {
    (0..dim)
        .map(|d| (((i * 31 + d * 17) % 97) as f32 / 97.0 - 0.5) * (1.0 + d as f32 / dim as f32))
        .collect()
}

fn batch(from: usize, n: usize, dim: usize) -> Value {
    let vectors: Vec<Value> = (from..from + n)
        .map(|i| json!({"id": format!("v{i:03}"), "vector": vector(i, dim)}))
        .collect();
    json!({"collection": "q", "vectors": vectors})
}

fn ids(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("v{i:03}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_calibration_killed_midway_loses_nothing_and_completes_later() {
    let dir = tempfile::tempdir().unwrap();
    let dim = 16;
    let d = start_with(
        dir.path(),
        &[("RUVECTOR_STORAGE_CRASH_AT", "calibrate:before-write")],
        &[],
    );
    let c = d.client();
    ok(
        &c,
        "collection_create",
        json!({"name": "q", "dimension": dim, "quantization": "int8", "originals": "keep",
               "calibration_sample": 20}),
    )
    .await;
    ok(&c, "vector_upsert", batch(0, 15, dim)).await;
    // This upsert reaches the sample: its vectors are committed, then the
    // calibration dies before its batch is written.
    assert!(
        c.call("vector_upsert", batch(15, 10, dim)).await.is_err(),
        "the daemon was killed in the calibration"
    );
    d.kill9();

    let d = start(dir.path());
    let c = d.client();
    let list = ok(&c, "collection_list", json!({})).await;
    assert_eq!(list["collections"][0]["vectors"], 25, "{list}");
    assert!(
        list["collections"][0].get("calibration").is_none(),
        "not calibrated: {list}"
    );
    let got = ok(&c, "vector_get", json!({"collection": "q", "ids": ids(25)})).await;
    for (i, v) in got["vectors"].as_array().unwrap().iter().enumerate() {
        let floats: Vec<f32> = serde_json::from_value(v["vector"].clone()).unwrap();
        assert_eq!(
            floats,
            vector(i, dim),
            "v{i:03} is its f32 until calibrated"
        );
    }
    // The next upsert calibrates: everything is re-encoded.
    ok(&c, "vector_upsert", batch(25, 1, dim)).await;
    let raw = ok(
        &c,
        "vector_get",
        json!({"collection": "q", "ids": ids(26), "encoding": "raw"}),
    )
    .await;
    let cal = &raw["calibrations"]["0"];
    assert_eq!(cal["quantization"], "int8");
    let (lo, step): (Vec<f32>, Vec<f32>) = (
        serde_json::from_value(cal["lo"].clone()).unwrap(),
        serde_json::from_value(cal["step"].clone()).unwrap(),
    );
    for (i, v) in raw["vectors"].as_array().unwrap().iter().enumerate() {
        assert_eq!(v["calibration"], 0, "v{i:03} is codes now");
        let codes = base64::engine::general_purpose::STANDARD
            .decode(v["codes_b64"].as_str().unwrap())
            .unwrap();
        assert_eq!(codes.len(), dim, "one byte a dimension");
        for (d, &code) in codes.iter().enumerate() {
            let x = vector(i, dim)[d].clamp(lo[d], lo[d] + 255.0 * step[d]);
            let back = lo[d] + code as f32 * step[d];
            assert!((back - x).abs() <= step[d] / 2.0 + 1e-6, "v{i:03}[{d}]");
        }
    }

    // Rescoring from the kept originals puts the query's own vector first.
    let q = vector(7, dim);
    let r = ok(
        &c,
        "vector_search",
        json!({"collection": "q", "vector": q, "k": 3, "rescore": true, "include_metadata": true}),
    )
    .await;
    assert_eq!(r["rescored"], true);
    assert_eq!(r["scanned"], 26);
    assert_eq!(r["results"][0]["id"], "v007", "{r}");
    assert!((r["results"][0]["score"].as_f64().unwrap() - 1.0).abs() < 1e-5);

    // Values beyond the calibrated ranges are clipped and counted.
    let mut far = vector(0, dim);
    far[0] = 1e3;
    far[1] = -1e3;
    ok(
        &c,
        "vector_upsert",
        json!({"collection": "q", "vectors": [{"id": "far", "vector": far}]}),
    )
    .await;
    // (The figures are the metrics tick's sample: wait for the next one.)
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let metrics = ok(&c, "storage_stats", json!({"detailed": true})).await["metrics"].clone();
        let clipped = metrics
            .as_object()
            .unwrap()
            .iter()
            .find(|(k, _)| k.starts_with("ruvector_storage_vectors_clipped"))
            .and_then(|(_, v)| v.as_f64());
        if clipped == Some(2.0) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "two values clipped, the metrics say {clipped:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }

    // The CLI reaches the same operation.
    let (code, out, e) = cli(&[
        "vector",
        "search",
        "--collection",
        "q",
        &format!(
            "--vector={}",
            q.iter()
                .map(|x| x.to_string())
                .collect::<Vec<_>>()
                .join(",")
        ),
        "--k",
        "1",
        "--json",
        "--connect",
        &d.url,
    ]);
    assert_eq!(code, 0, "{e}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["results"][0]["id"], "v007", "{out}");
}

/// Poll `collection_list` until `q` is `quantization` with no re-encode
/// pending; returns its entry.
async fn settled(c: &ruvector_storage::client::Client, quantization: &str) -> Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        if let Ok(list) = c.call("collection_list", json!({})).await {
            let q = list["collections"][0].clone();
            if q["quantization"] == quantization && q.get("reencode").is_none() {
                return q;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the re-encode to {quantization} never finished"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_re_encode_killed_midway_resumes_at_restart_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let dim = 16;
    let n = 1200;
    let d = start_with(
        dir.path(),
        &[("RUVECTOR_STORAGE_CRASH_AT", "reencode:before-write")],
        &[],
    );
    let c = d.client();
    ok(
        &c,
        "collection_create",
        json!({"name": "q", "dimension": dim}),
    )
    .await;
    for from in (0..n).step_by(300) {
        ok(&c, "vector_upsert", batch(from, 300, dim)).await;
    }
    // Bad requests say what and why.
    for (params, says) in [
        (json!({"collection": "q"}), "give --quantization"),
        (json!({"quantization": "int8"}), "give --collection"),
        (
            json!({"collection": "q", "quantization": "int8", "algorithm": "zstd"}),
            "applies to a whole data type",
        ),
        (
            json!({"collection": "q", "quantization": "none"}),
            "already none",
        ),
        (
            json!({"collection": "nope", "quantization": "int8"}),
            "does not exist",
        ),
    ] {
        let (_, message) = err(&c, "storage_compress", params.clone()).await;
        assert!(message.contains(says), "{params}: {message}");
    }
    // The job's first step dies before its batch is written.
    let _ = c
        .call(
            "storage_compress",
            json!({"collection": "q", "quantization": "int8"}),
        )
        .await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while c.call("system_health", json!({})).await.is_ok() {
        assert!(
            std::time::Instant::now() < deadline,
            "the crash point was never reached"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    d.kill9();

    // Restarted, the daemon finishes the job on its own.
    let d = start(dir.path());
    let c = d.client();
    let q = settled(&c, "int8").await;
    assert_eq!(q["vectors"], n, "{q}");
    let got = ok(
        &c,
        "vector_get",
        json!({"collection": "q", "ids": ids(n), "encoding": "raw"}),
    )
    .await;
    let generations: std::collections::BTreeSet<String> = got["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["calibration"].to_string())
        .collect();
    assert_eq!(
        generations.len(),
        1,
        "every vector in one generation: {generations:?}"
    );
    let got = ok(&c, "vector_get", json!({"collection": "q", "ids": ids(n)})).await;
    for (i, v) in got["vectors"].as_array().unwrap().iter().enumerate() {
        let floats: Vec<f32> = serde_json::from_value(v["vector"].clone()).unwrap();
        let err = floats
            .iter()
            .zip(vector(i, dim))
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(err < 0.02, "v{i:03} decodes within int8 steps: {err}");
    }

    // The CLI: waiting, and reporting what it did.
    let (code, out, e) = cli(&[
        "compress",
        "--collection",
        "q",
        "--quantization",
        "int4",
        "--wait",
        "--connect",
        &d.url,
    ]);
    assert_eq!(code, 0, "{e}");
    assert!(
        out.contains("int8 -> int4") && out.contains(&format!("{n} vectors")),
        "{out}"
    );
    settled(&c, "int4").await;
    let status = ok(&c, "maintenance_status", json!({})).await;
    assert_eq!(status["last"]["files_done"], n, "{status}");
}
