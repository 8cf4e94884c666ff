//! (g) snapshots of the store (a) built: create (first, with a cold
//! checksum cache, and steady state) and verify throughput.

use std::time::Instant;

use crate::config::Config;
use crate::engine::Engine;
use crate::error::{Error, Result};

use super::Rows;

/// (g): snapshot create (first, with cold checksum cache, and steady state)
/// and verify throughput on the ingested store.
pub(super) fn bench(engine: &Engine, config: &Config) -> Result<Rows> {
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
