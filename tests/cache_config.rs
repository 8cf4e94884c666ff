//! `cache-config` through the CLI: the block cache and memtables resize on
//! a running daemon, the sizes survive a restart, and a size over the
//! budget is refused with the reason and changes nothing.

mod common;

use common::*;
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_sizes_change_at_runtime_and_stay() {
    let dir = tempfile::tempdir().unwrap();
    let d = start(dir.path());
    let (code, out, e) = cli(&[
        "cache-config",
        "--size",
        "96MB",
        "--write-buffer",
        "8MB",
        "--connect",
        &d.url,
    ]);
    assert_eq!(code, 0, "{e}");
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|_| json!({"text": out}));
    assert!(v.to_string().contains("96"), "{out}");
    let now = ok(&d.client(), "cache_config", json!({})).await;
    assert_eq!(now["rocksdb_block_cache_capacity"], 96u64 << 20, "{now}");
    // Over half of limits.memory-mb (512): refused, nothing changed.
    let (code, _, e) = cli(&["cache-config", "--size", "1GB", "--connect", &d.url]);
    assert_eq!(code, 2, "{e}");
    assert!(e.contains("at most half of limits.memory-mb"), "{e}");
    d.terminate();

    let d = start(dir.path());
    let now = ok(&d.client(), "cache_config", json!({})).await;
    assert_eq!(
        now["current"],
        json!({"block_cache_mb": 96, "write_buffer_mb": 8}),
        "{now}"
    );
    assert_eq!(now["rocksdb_block_cache_capacity"], 96u64 << 20, "{now}");
}
