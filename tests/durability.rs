//! Durability is proven with SIGKILL: every write acknowledged under
//! `sync = "always"` must be there after the daemon is killed mid-stream
//! and restarted, and every batch is all-or-nothing.
//!
//! Every wait has a deadline ([`WAIT`]): writers that stop early or calls
//! that never return fail the test, naming what it was waiting for.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

/// How long any one wait may take: generous, since the machine is shared.
const WAIT: Duration = Duration::from_secs(120);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_writes_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let d = start(dir.path());
    let c = d.client();
    ok(
        &c,
        "collection_create",
        json!({"name": "v", "dimension": 8}),
    )
    .await;
    let acked_kv: Arc<Mutex<Vec<String>>> = Arc::default();
    let acked_batches: Arc<Mutex<Vec<usize>>> = Arc::default();
    let acked_mem: Arc<Mutex<Vec<String>>> = Arc::default();
    // Why each writer stopped: before the kill, nothing may stop one.
    let stopped: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut tasks = Vec::new();
    for w in 0..16 {
        let (c, kv, batches, mem, stopped) = (
            c.clone(),
            acked_kv.clone(),
            acked_batches.clone(),
            acked_mem.clone(),
            stopped.clone(),
        );
        tasks.push(tokio::spawn(async move {
            for i in 0.. {
                let key = format!("w{w}-{i}");
                let res = match w % 4 {
                    0 => c.call("vector_upsert", json!({"collection": "v", "vectors": (0..20).map(|j| json!({
                        "id": format!("b{w}-{i}-{j}"), "vector": [j, 1, 2, 3, 4, 5, 6, 7]})).collect::<Vec<_>>()})).await,
                    1 => c.call("memory_store", json!({"key": key, "value": {"n": i}, "namespace": "dur"})).await,
                    _ => c.call("storage_write", json!({"key": key, "value": format!("value-{i}")})).await,
                };
                match (res, w % 4) {
                    (Ok(_), 0) => batches.lock().unwrap().push(w * 1_000_000 + i),
                    (Ok(_), 1) => mem.lock().unwrap().push(key),
                    (Ok(_), _) => kv.lock().unwrap().push(key),
                    (Err(e), _) => {
                        // The daemon died under us (after the kill), or a bug.
                        stopped.lock().unwrap().push(format!("writer {w} at write {i}: {e}"));
                        return;
                    }
                }
            }
        }));
    }
    // Let a few hundred writes be acknowledged, then kill without warning.
    let deadline = Instant::now() + WAIT;
    loop {
        let n = acked_kv.lock().unwrap().len();
        if n >= 600 {
            break;
        }
        let early = stopped.lock().unwrap().clone();
        assert!(
            early.is_empty(),
            "writers stopped before the kill, with {n} of 600 kv writes acknowledged: {early:?}"
        );
        assert!(
            Instant::now() < deadline,
            "waited {WAIT:?} for 600 acknowledged kv writes before the kill, got {n} \
             ({} vector batches, {} memory entries)",
            acked_batches.lock().unwrap().len(),
            acked_mem.lock().unwrap().len()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    d.kill9();
    // Each writer ends at its first failed call once the daemon is gone.
    let deadline = tokio::time::Instant::from_std(Instant::now() + WAIT);
    for (w, t) in tasks.into_iter().enumerate() {
        match tokio::time::timeout_at(deadline, t).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("writer {w} panicked: {e}"),
            Err(_) => panic!(
                "writer {w} still running {WAIT:?} after the daemon was killed: a call never failed"
            ),
        }
    }
    let kv = acked_kv.lock().unwrap().clone();
    let mem = acked_mem.lock().unwrap().clone();
    let batches = acked_batches.lock().unwrap().clone();
    assert!(kv.len() >= 600 && !mem.is_empty() && !batches.is_empty());

    let d = start(dir.path());
    let c = d.client();
    for key in &kv {
        let r = ok(&c, "storage_read", json!({"key": key})).await;
        let i = key.rsplit('-').next().unwrap();
        assert_eq!(
            r["value"],
            format!("value-{i}"),
            "acknowledged write {key} lost"
        );
    }
    for key in &mem {
        let r = ok(
            &c,
            "memory_retrieve",
            json!({"key": key, "namespace": "dur"}),
        )
        .await;
        assert_eq!(r["found"], true, "acknowledged memory entry {key} lost");
    }
    for b in &batches {
        let (w, i) = (b / 1_000_000, b % 1_000_000);
        let ids: Vec<String> = (0..20).map(|j| format!("b{w}-{i}-{j}")).collect();
        let r = ok(
            &c,
            "vector_get",
            json!({"collection": "v", "ids": ids, "include_vector": false}),
        )
        .await;
        assert_eq!(
            r["missing"],
            json!([]),
            "acknowledged batch b{w}-{i} incomplete"
        );
    }
    // Unacknowledged batches in flight at the kill: each is all or nothing.
    for w in (0..16).filter(|w| w % 4 == 0) {
        let next = batches.iter().filter(|b| *b / 1_000_000 == w).count();
        let ids: Vec<String> = (0..20).map(|j| format!("b{w}-{next}-{j}")).collect();
        let r = ok(
            &c,
            "vector_get",
            json!({"collection": "v", "ids": ids, "include_vector": false}),
        )
        .await;
        let missing = r["missing"].as_array().unwrap().len();
        assert!(
            missing == 0 || missing == 20,
            "batch b{w}-{next} half-applied: {missing} of 20 missing"
        );
    }
}
