//! `check --verify-integrity` on the live store, through the daemon: a
//! healthy store passes while it serves, one flipped byte in an SST file is
//! found and named (exit 5), and the result is published as a record.

mod common;

use common::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_finds_a_flipped_byte_and_publishes_its_result() {
    let dir = tempfile::tempdir().unwrap();
    let d = start(dir.path());
    let c = d.client();
    let entries: Vec<_> = (0..3000)
        .map(|i| json!({"key": format!("key-{i:05}"), "value": "v".repeat(200)}))
        .collect();
    for chunk in entries.chunks(500) {
        ok(&c, "storage_write", json!({"entries": chunk})).await;
    }
    ok(
        &c,
        "collection_create",
        json!({"name": "c", "dimension": 2}),
    )
    .await;
    ok(
        &c,
        "vector_upsert",
        json!({"collection": "c", "vectors": [{"id": "a", "vector": [1, 2]}]}),
    )
    .await;
    ok(&c, "memory_store", json!({"key": "m", "value": "x"})).await;
    ok(&c, "wal_checkpoint", json!({})).await;
    let data = dir.path().to_str().unwrap();

    let (code, out, err) = cli(&["check", "--verify-integrity", "--data-dir", data]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("OK") && out.contains("kv"), "{out}");
    let r = ok(&c, "storage_check", json!({"verify_integrity": true})).await;
    assert_eq!(r["ok"], true, "{r}");
    let kv = r["column_families"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "kv")
        .unwrap()
        .clone();
    assert_eq!(kv["keys"], 3000, "every key was read: {r}");

    // Damage the biggest SST while the daemon runs, once the compactions
    // the flush started are over (a file being compacted away would take
    // the damage with it: the check would rightly find nothing).
    settle(&dir.path().join("db"));
    let sst = std::fs::read_dir(dir.path().join("db"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "sst"))
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap();
    let mut bytes = std::fs::read(&sst).unwrap();
    let at = bytes.len() / 3;
    bytes[at] ^= 0x10;
    std::fs::write(&sst, bytes).unwrap();

    let (code, out, err) = cli(&["check", "--verify-integrity", "--data-dir", data]);
    assert_eq!(code, 5, "a damaged store fails the command: {out}{err}");
    assert!(
        err.contains("PROBLEM") && err.contains(sst.file_name().unwrap().to_str().unwrap()),
        "the problem names the damaged file: {err}"
    );
    // The quick check reads records, not blocks: it cannot see this damage.
    let quick = ok(&c, "storage_check", json!({})).await;
    assert_eq!(quick["deep"], false);

    // The result is on the status board, published as swarm/storage/integrity.
    let stats = ok(&c, "storage_stats", json!({})).await;
    let rec = &stats["records"]["integrity"];
    assert!(rec.is_object(), "{stats}");
    let status = ok(&c, "maintenance_status", json!({})).await;
    assert_eq!(status["last"]["operation"], "check", "{status}");
    assert!(status["running"].is_null(), "{status}");
    let health = ok(&c, "system_health", json!({})).await;
    assert!(
        health["actors"]["compaction"]["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("problem")),
        "the damage is recorded as the compaction actor's error: {health}"
    );
}

/// Wait until the store's SST files (names and sizes) stay the same for a
/// second.
fn settle(db: &std::path::Path) {
    let files = || {
        let mut v: Vec<(String, u64)> = std::fs::read_dir(db)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.path().extension().is_some_and(|x| x == "sst"))
            .map(|e| {
                let len = e.metadata().map(|m| m.len()).unwrap_or(0);
                (e.file_name().to_string_lossy().into_owned(), len)
            })
            .collect();
        v.sort();
        v
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut last = files();
    let mut stable = 0;
    while stable < 4 {
        assert!(
            std::time::Instant::now() < deadline,
            "compactions did not settle"
        );
        std::thread::sleep(std::time::Duration::from_millis(250));
        let now = files();
        stable = if now == last { stable + 1 } else { 0 };
        last = now;
    }
}
