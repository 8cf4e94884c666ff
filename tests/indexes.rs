//! Index persistence: an index agent's files stored in the daemon, read
//! back byte for byte, durable across SIGKILL, carried by snapshots, and
//! reported in `ruvector/storage` `swarm/storage/index_persistence`.

mod common;

use std::time::{Duration, Instant};

use base64::Engine as _;
use common::*;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

fn content(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed;
    (0..n)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 56) as u8
        })
        .collect()
}

fn hex(b: &[u8]) -> String {
    Sha256::digest(b)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Wait for the published record to satisfy `pred`.
async fn record_until(
    c: &ruvector_storage::client::Client,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = ok(
            c,
            "memory_retrieve",
            json!({"namespace": "ruvector/storage", "key": "swarm/storage/index_persistence"}),
        )
        .await;
        let v = match &r["value"] {
            Value::String(s) => serde_json::from_str(s).unwrap_or(Value::Null),
            v => v.clone(),
        };
        if pred(&v) {
            return v;
        }
        assert!(Instant::now() < deadline, "record never matched: {r}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn indexes_round_trip_survive_sigkill_ride_in_snapshots_and_are_published() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let dirs = dir.to_str().unwrap();
    let env = [("RUVECTOR_STORAGE__STATUS_INTERVAL_SECS", "1")];
    let d = start_with(&dir, &env, &[]);
    let c = d.client();
    let start_seq = ok(&c, "system_health", json!({})).await["latest_sequence"]
        .as_u64()
        .unwrap();
    // 10 MiB and a bit: three chunks of the CLI's 4 MiB, the last one short.
    let v1 = content((10 << 20) + 123, 1);
    let f1 = tmp.path().join("hnsw-v1.idx");
    std::fs::write(&f1, &v1).unwrap();
    let (code, out, e) = cli(&[
        "index",
        "put",
        "--name",
        "hnsw-v2",
        "--type",
        "hnsw",
        "--file",
        f1.to_str().unwrap(),
        "--metadata",
        r#"{"m":16,"ef_construction":200}"#,
        "--data-dir",
        dirs,
    ]);
    assert_eq!(code, 0, "{out}{e}");
    let list = ok(&c, "index_list", json!({})).await;
    let idx = &list["indexes"][0];
    assert_eq!(list["count"], 1, "{list}");
    assert_eq!(idx["size_bytes"], v1.len());
    assert_eq!(idx["sha256"], hex(&v1));
    assert_eq!(idx["metadata"]["m"], 16);
    assert_eq!(list["uploads"], json!([]));
    // Published in the seed's shape; no snapshot holds it yet.
    let r = record_until(&c, |v| v["name"] == "hnsw-v2").await;
    assert_eq!(r["index_type"], "hnsw");
    assert_eq!(r["size_bytes"], v1.len());
    assert_eq!(r["mmap_enabled"], false);
    assert!(r["last_snapshot"].is_null(), "{r}");
    ok(&c, "snapshot_create", json!({"name": "with-v1"})).await;
    let r = record_until(&c, |v| v["last_snapshot"].is_string()).await;
    assert_eq!(r["sha256"], hex(&v1));

    // Bad input is refused with the reason and changes nothing.
    let (_, m) = err(
        &c,
        "index_upload",
        json!({"name": "hnsw-v2", "data": "%%%"}),
    )
    .await;
    assert!(m.contains("base64"), "{m}");
    let up = ok(
        &c,
        "index_upload",
        json!({"name": "hnsw-v2", "data": "AAAA"}),
    )
    .await;
    let (_, m) = err(
        &c,
        "index_commit",
        json!({"name": "hnsw-v2", "upload_id": up["upload_id"],
        "index_type": "hnsw", "sha256": hex(b"something else")}),
    )
    .await;
    assert!(m.contains("nothing was committed"), "{m}");
    let (_, m) = err(
        &c,
        "index_upload",
        json!({"name": "hnsw-v2", "upload_id": up["upload_id"],
        "offset": 99, "data": "AAAA"}),
    )
    .await;
    assert!(m.contains("starts at offset 3"), "{m}");
    ok(
        &c,
        "index_delete",
        json!({"name": "hnsw-v2", "upload_id": up["upload_id"]}),
    )
    .await;
    let (code, m) = err(&c, "index_read", json!({"name": "nope"})).await;
    assert!(m.contains("no index"), "{code} {m}");
    assert_eq!(
        ok(&c, "index_list", json!({})).await["indexes"][0]["sha256"],
        hex(&v1)
    );

    // Replace it; the replacement is acknowledged, so it survives SIGKILL.
    let v2 = content(777_777, 2);
    let f2 = tmp.path().join("hnsw-v2.idx");
    std::fs::write(&f2, &v2).unwrap();
    let (code, out, e) = cli(&[
        "index",
        "put",
        "--name",
        "hnsw-v2",
        "--type",
        "hnsw",
        "--file",
        f2.to_str().unwrap(),
        "--data-dir",
        dirs,
    ]);
    assert_eq!(code, 0, "{out}{e}");
    assert!(out.contains("replacing"), "{out}");
    let r = record_until(&c, |v| v["size_bytes"] == v2.len()).await;
    assert!(
        r["last_snapshot"].is_null(),
        "the snapshot predates v2: {r}"
    );
    // Change data capture shows the commits (not the chunks).
    let mut sub = c
        .subscribe(
            ruvector_storage::rpc::changes::SUBSCRIBE,
            json!({"from_sequence": start_seq}),
            ruvector_storage::rpc::changes::UNSUBSCRIBE,
        )
        .await
        .unwrap();
    let mut index_events = Vec::new();
    while index_events.len() < 2 {
        match tokio::time::timeout(Duration::from_secs(20), sub.next()).await {
            Ok(Some(Ok(ev))) if ev["kind"] == "index" => index_events.push(ev),
            Ok(Some(Ok(_))) => {}
            other => panic!("after {index_events:?}: {other:?}"),
        }
    }
    assert_eq!(index_events[0]["op"], "insert", "{index_events:?}");
    assert_eq!(index_events[1]["op"], "update", "{index_events:?}");
    assert_eq!(index_events[1]["key"], "hnsw-v2");
    assert_eq!(index_events[1]["value"]["sha256"], hex(&v2));
    assert!(index_events[1]["value"].get("blob").is_none());
    drop(sub);
    // A reader that pinned v1's SHA-256 is told v2 replaced it.
    let (_, m) = err(
        &c,
        "index_read",
        json!({"name": "hnsw-v2", "offset": 4096, "sha256": hex(&v1)}),
    )
    .await;
    assert!(m.contains("replaced while it was being read"), "{m}");
    // A crash in the middle of an upload leaves the committed index.
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    ok(
        &c,
        "index_upload",
        json!({"name": "hnsw-v2", "data": b64(&v1[..1 << 20])}),
    )
    .await;
    d.kill9();
    let d = start_with(&dir, &env, &[]);
    let c = d.client();
    let got = tmp.path().join("got.idx");
    // `index get` into a file; its bytes.
    let get = || {
        let (code, out, e) = cli(&[
            "index",
            "get",
            "--name",
            "hnsw-v2",
            "-o",
            got.to_str().unwrap(),
            "--data-dir",
            dirs,
        ]);
        assert_eq!(code, 0, "{out}{e}");
        std::fs::read(&got).unwrap()
    };
    assert!(get() == v2, "v2 after SIGKILL");
    let list = ok(&c, "index_list", json!({})).await;
    assert_eq!(list["uploads"][0]["received"], 1 << 20, "{list}");
    // The snapshot holds v1: restoring it brings v1 back.
    ok(&c, "snapshot_restore", json!({"name": "with-v1"})).await;
    assert!(get() == v1, "v1 from the snapshot");
    // A read across chunk boundaries, over JSON-RPC.
    let part = ok(
        &c,
        "index_read",
        json!({"name": "hnsw-v2", "offset": (4 << 20) - 5, "length": 10}),
    )
    .await;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(part["data"].as_str().unwrap())
        .unwrap();
    assert_eq!(bytes, v1[(4 << 20) - 5..(4 << 20) + 5]);
    assert_eq!(part["eof"], false);
    assert!(ok(&c, "index_delete", json!({"name": "hnsw-v2"})).await["deleted"] == true);
    let r = record_until(&c, |v| v["count"] == 0).await;
    assert!(r["name"].is_null(), "{r}");
}
