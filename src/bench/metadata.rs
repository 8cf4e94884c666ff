//! `bench --quantization`, metadata part: the embedding set's texts
//! (`base.txt` beside `base.npy`) stored as metadata `{"text": …}` of their
//! vectors, then the `metadata` family rewritten with each compression —
//! none, lz4, zstd:3, and lz4 with a zstd dictionary on the bottommost
//! level — reporting the ratio `analyze-compression` predicted and the one
//! the rewritten table files have.

use std::path::Path;

use base64::Engine as _;
use serde_json::{json, Value};

use super::harness::Daemon;
use super::quantization::call_err;
use super::BenchArgs;
use crate::codec;
use crate::error::Result;
use crate::npy::Matrix;

/// (spec shown, `storage_compress` params)
const SPECS: [(&str, &str, Option<i32>, bool); 4] = [
    ("none", "none", None, false),
    ("lz4", "lz4", None, false),
    ("zstd:3", "zstd", Some(3), false),
    ("lz4+dict", "lz4", None, true),
];

/// Lines for the report and the JSON rows; nothing when there is no
/// `base.txt` beside the vectors.
pub(super) async fn run(
    dir: &Path,
    args: &BenchArgs,
    base_path: &Path,
    base: &Matrix,
) -> Result<Option<(Vec<String>, Value)>> {
    let texts_path = base_path.with_file_name("base.txt");
    let Ok(texts) = std::fs::read_to_string(&texts_path) else {
        return Ok(None);
    };
    let texts: Vec<&str> = texts.lines().take(base.rows).collect();
    let d = Daemon::start(&dir.join("metadata"), args, &args.sync).await?;
    d.client
        .call(
            "collection_create",
            json!({"name": "m", "dimension": base.dim}),
        )
        .await
        .map_err(call_err)?;
    for (b, chunk) in texts.chunks(500).enumerate() {
        let vectors: Vec<Value> = chunk
            .iter()
            .enumerate()
            .map(|(j, t)| {
                let i = b * 500 + j;
                json!({"id": format!("v{i:06}"), "metadata": {"text": t},
                    "vector_b64": base64::engine::general_purpose::STANDARD
                        .encode(codec::f32_to_le(base.row(i)))})
            })
            .collect();
        d.client
            .call(
                "vector_upsert",
                json!({"collection": "m", "vectors": vectors}),
            )
            .await
            .map_err(call_err)?;
    }
    d.client
        .call("wal_checkpoint", json!({}))
        .await
        .map_err(call_err)?;
    let analysis = d
        .client
        .call(
            "analyze_compression",
            json!({"type": "metadata", "show_ratio": true}),
        )
        .await
        .map_err(call_err)?;
    let predicted = |spec: &str| {
        analysis["families"][0]["candidates"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["compression"] == spec))
            .and_then(|c| c["predicted_ratio"].as_f64())
            .unwrap_or(0.0)
    };
    let mut lines = vec![format!(
        "{} texts as metadata {{\"text\": …}}: {:<10} {:>10} {:>10} {:>10}",
        texts.len(),
        "compression",
        "predicted",
        "actual",
        "stored MB"
    )];
    let mut rows = Vec::new();
    for (shown, algorithm, level, dictionary) in SPECS {
        let mut params = json!({"type": "metadata", "algorithm": algorithm,
            "dictionary": dictionary, "rewrite": true});
        if let Some(l) = level {
            params["level"] = json!(l);
        }
        let r = d
            .client
            .call("storage_compress", params)
            .await
            .map_err(call_err)?;
        let actual = r["rewrite"]["ratio_after"].as_f64().unwrap_or(0.0);
        let bytes = r["rewrite"]["sst_bytes_after"].as_f64().unwrap_or(0.0);
        let p = predicted(shown);
        eprintln!("  metadata {shown}: predicted {p:.3}, actual {actual:.3}");
        lines.push(format!(
            "{:<40} {shown:<10} {p:>10.3} {actual:>10.3} {:>10.3}",
            "",
            bytes / 1e6
        ));
        rows.push(
            json!({"compression": shown, "predicted_ratio": p, "ratio": actual,
            "sst_bytes": bytes}),
        );
    }
    d.stop();
    Ok(Some((lines, json!(rows))))
}
