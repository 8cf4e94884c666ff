//! `bench --quantization`, dedup part: what a dedup collection stores and
//! how fast it ingests, against the same collection without dedup, on the
//! real embeddings: each vector under two ids (half the ids duplicate), and
//! each under one (no duplicates: what the references cost). int8,
//! originals dropped; stored bytes as in the quantization table.

use std::path::Path;
use std::sync::Arc;

use serde_json::{json, Value};

use super::harness::Daemon;
use super::quantization::{call_err, ingest, stored_bytes};
use super::BenchArgs;
use crate::error::Result;
use crate::npy::Matrix;

pub(super) async fn run(
    dir: &Path,
    args: &BenchArgs,
    base: &Arc<Matrix>,
) -> Result<(Vec<String>, Value)> {
    let mut lines = vec![format!(
        "dedup, int8, originals dropped    {:>10} {:>12} {:>12} {:>10}",
        "ids", "stored MB", "ingest v/s", "ratio"
    )];
    let mut rows = Vec::new();
    let mut plain = [0.0f64; 2];
    for (copies, i) in [(2usize, 0usize), (1, 1)] {
        for dedup in [false, true] {
            let name = format!("dedup-{copies}-{dedup}");
            let d = Daemon::start(&dir.join(&name), args, &args.sync).await?;
            d.client
                .call(
                    "collection_create",
                    json!({"name": "q", "dimension": base.dim, "quantization": "int8",
                           "originals": "drop", "dedup": dedup}),
                )
                .await
                .map_err(call_err)?;
            let ids = base.rows * copies;
            let vps = ingest(&d, args, base, "q", ids).await?;
            let bytes = stored_bytes(&d).await?;
            d.stop();
            if !dedup {
                plain[i] = bytes;
            }
            let smaller = plain[i] / bytes.max(1.0);
            let what = format!(
                "{} ({} copies a vector)",
                if dedup { "dedup on " } else { "dedup off" },
                copies
            );
            eprintln!("  {what}: {:.2} MB, {vps:.0} vectors/s", bytes / 1e6);
            lines.push(format!(
                "{what:<34} {ids:>10} {:>12.2} {vps:>12.0} {smaller:>9.2}x",
                bytes / 1e6
            ));
            rows.push(json!({"copies": copies, "dedup": dedup, "ids": ids,
                "stored_bytes": bytes, "ingest_vps": vps, "smaller_than_without": smaller}));
        }
    }
    Ok((lines, Value::Array(rows)))
}
