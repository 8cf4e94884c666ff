//! The daemon over JSON-RPC: data operations, bad input, status records,
//! graceful shutdown, the one-owner lock, and the CLI as a client.

mod common;

use base64::Engine as _;
use common::*;
use serde_json::{json, Value};

#[tokio::test]
async fn kv_round_trip_scan_and_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let d = start(dir.path());
    let c = d.client();
    let r = ok(
        &c,
        "storage_write",
        json!({"key": "vector:123", "value": "[0.1, 0.2, 0.3]"}),
    )
    .await;
    assert_eq!(r["written"], 1);
    let r = ok(&c, "storage_read", json!({"key": "vector:123"})).await;
    assert_eq!(
        (r["found"].clone(), r["value"].clone()),
        (json!(true), json!("[0.1, 0.2, 0.3]"))
    );
    let entries: Vec<Value> = (0..15)
        .map(|i| json!({"key": format!("s:{i:02}"), "value": i.to_string()}))
        .collect();
    ok(&c, "storage_write", json!({"entries": entries})).await;
    let p1 = ok(&c, "storage_scan", json!({"prefix": "s:", "limit": 10})).await;
    assert_eq!(p1["count"], 10);
    let p2 = ok(
        &c,
        "storage_scan",
        json!({"prefix": "s:", "limit": 10, "cursor": p1["next_cursor"]}),
    )
    .await;
    assert_eq!(p2["count"], 5);
    assert_eq!(p2["entries"][0]["key"], "s:10");
    assert!(p2["next_cursor"].is_null());

    // Bad input: clear errors, nothing changed.
    let big = "k".repeat(5000);
    let (code, msg) = err(
        &c,
        "storage_write",
        json!({"entries": [{"key": "fresh", "value": "1"}, {"key": big, "value": "2"}]}),
    )
    .await;
    assert_eq!(code, -32001);
    assert!(msg.contains("entries[1]") && msg.contains("limit"), "{msg}");
    assert_eq!(
        ok(&c, "storage_read", json!({"key": "fresh"})).await["found"],
        false
    );
    let (code, msg) = err(&c, "storage_write", json!({"kee": "x"})).await;
    assert_eq!(code, -32602, "{msg}");
    let (code, _) = err(&c, "no_such_method", json!({})).await;
    assert_eq!(code, -32601);
    let (code, msg) = err(&c, "storage_scan", json!({"prefix": "s:", "limit": 0})).await;
    assert_eq!(code, -32001, "{msg}");
    let r = ok(
        &c,
        "storage_delete",
        json!({"keys": ["s:00", "s:01", "nope"]}),
    )
    .await;
    assert_eq!(r["deleted"], 2);
    assert_eq!(
        ok(&c, "storage_read", json!({"key": "s:00"})).await["found"],
        false
    );
}

#[tokio::test]
async fn vectors_batches_are_all_or_nothing_and_errors_name_the_item() {
    let dir = tempfile::tempdir().unwrap();
    let d = start(dir.path());
    let c = d.client();
    ok(
        &c,
        "collection_create",
        json!({"name": "docs", "dimension": 4, "metric": "cosine"}),
    )
    .await;
    let b64 = base64::engine::general_purpose::STANDARD.encode(
        [1.5f32, -2.0, 0.25, 8.0]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect::<Vec<u8>>(),
    );
    let r = ok(
        &c,
        "vector_upsert",
        json!({"collection": "docs", "vectors": [
        {"id": "a", "vector": [0.1, 0.2, 0.3, 0.4], "metadata": {"lang": "en"}},
        {"id": "b", "vector_b64": b64}]}),
    )
    .await;
    assert_eq!(r["upserted"], 2);
    let r = ok(
        &c,
        "vector_get",
        json!({"collection": "docs", "ids": ["a", "b", "c"]}),
    )
    .await;
    assert_eq!(r["vectors"][0]["metadata"], json!({"lang": "en"}));
    assert_eq!(r["vectors"][1]["vector"], json!([1.5, -2.0, 0.25, 8.0]));
    assert_eq!(r["missing"], json!(["c"]));
    let r = ok(
        &c,
        "vector_get",
        json!({"collection": "docs", "ids": ["b"], "encoding": "base64"}),
    )
    .await;
    assert_eq!(r["vectors"][0]["vector_b64"], json!(b64));

    let nan = base64::engine::general_purpose::STANDARD.encode(
        [1.0f32, f32::NAN, 0.0, 0.0]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect::<Vec<u8>>(),
    );
    let bad_batches = [
        (
            json!([{"id": "n1", "vector": [1, 2, 3, 4]}, {"id": "n2", "vector": [1, 2, 3]}]),
            "vectors[1] (id \"n2\")",
            "dimension 3",
        ),
        (
            json!([{"id": "n1", "vector": [1, 2, 3, 4]}, {"id": "n2", "vector_b64": nan}]),
            "vectors[1]",
            "NaN",
        ),
        (
            json!([{"id": "n1", "vector": [1, 2, 3, 4]}, {"id": "", "vector": [1, 2, 3, 4]}]),
            "vectors[1]",
            "empty",
        ),
        (
            json!([{"id": "n1", "vector": [1, 2, 3, 4]}, {"id": "x".repeat(600), "vector": [1, 2, 3, 4]}]),
            "vectors[1]",
            "limit",
        ),
        (
            json!([{"id": "n1", "vector": [1, 2, 3, 4]}, {"id": "n2", "vector": [1, 2, 3, 4], "metadata": "x"}]),
            "vectors[1]",
            "object",
        ),
        (
            json!([{"id": "n1", "vector": [1, 2, 3, 4]}, {"id": "n2", "vector": [1, 2, 3e39, 4]}]),
            "vectors[1]",
            "finite",
        ),
    ];
    for (vectors, who, why) in bad_batches {
        let (code, msg) = err(
            &c,
            "vector_upsert",
            json!({"collection": "docs", "vectors": vectors}),
        )
        .await;
        assert_eq!(code, -32001, "{msg}");
        assert!(msg.contains(who) && msg.contains(why), "{msg}");
        let r = ok(
            &c,
            "vector_get",
            json!({"collection": "docs", "ids": ["n1", "n2"]}),
        )
        .await;
        assert_eq!(
            r["missing"],
            json!(["n1", "n2"]),
            "nothing of a failed batch is written"
        );
    }
    let (code, _) = err(
        &c,
        "vector_upsert",
        json!({"collection": "nope", "vectors": [{"id": "a", "vector": [1]}]}),
    )
    .await;
    assert_eq!(code, -32004);
    let list = ok(&c, "collection_list", json!({})).await;
    assert_eq!(list["collections"][0]["vectors"], 2);
    let r = ok(
        &c,
        "vector_delete",
        json!({"collection": "docs", "ids": ["a"]}),
    )
    .await;
    assert_eq!(r["deleted"], 1);
}

#[tokio::test]
async fn oversized_request_is_refused_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = start_with(
        dir.path(),
        &[("RUVECTOR_STORAGE__LIMITS__MAX_REQUEST_BYTES", "65536")],
        &[],
    );
    let c = d.client();
    let big = "v".repeat(100_000);
    match c
        .call("storage_write", json!({"key": "big", "value": big}))
        .await
    {
        Ok(v) => panic!("oversized request accepted: {v}"),
        Err(e) => assert!(
            e.to_string().to_lowercase().contains("too") || e.to_string().contains("413"),
            "{e}"
        ),
    }
    // The server closed that connection; a new client sees nothing written.
    assert_eq!(
        ok(&d.client(), "storage_read", json!({"key": "big"})).await["found"],
        false
    );
}

#[tokio::test]
async fn status_records_are_published_on_the_bus() {
    let dir = tempfile::tempdir().unwrap();
    let d = start_with(
        dir.path(),
        &[("RUVECTOR_STORAGE__STATUS_INTERVAL_SECS", "1")],
        &[],
    );
    let c = d.client();
    ok(
        &c,
        "collection_create",
        json!({"name": "v", "dimension": 2}),
    )
    .await;
    ok(
        &c,
        "vector_upsert",
        json!({"collection": "v", "vectors": [{"id": "1", "vector": [1, 2]}]}),
    )
    .await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let (status, storage) = loop {
        let s = ok(
            &c,
            "memory_retrieve",
            json!({"key": "swarm/storage/status", "namespace": "ruvector/storage"}),
        )
        .await;
        let v = ok(&c, "memory_usage", json!({"action": "retrieve", "key": "swarm/storage/vector_storage", "namespace": "ruvector/storage"})).await;
        if s["found"] == true
            && v["found"] == true
            && v["value"]["vectors_stored"].as_u64() >= Some(1)
        {
            break (s, v);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "status records never appeared: {s} {v}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let sv: Value = serde_json::from_str(status["value"].as_str().unwrap()).unwrap();
    assert_eq!(sv["actors"]["persistence"]["state"], "running");
    assert_eq!(sv["actors"]["metrics"]["state"], "running");
    assert!(sv["uptime_secs"].is_number());
    let v = &storage["value"];
    for field in [
        "vectors_stored",
        "storage_format",
        "compression",
        "size_bytes",
        "compression_ratio",
        "write_throughput_mbs",
    ] {
        assert!(!v[field].is_null(), "vector_storage lacks {field}: {v}");
    }
    // Each data type with its own compression (the defaults here).
    assert_eq!(v["compression"]["vectors"], "zstd:3", "{v}");
    assert_eq!(v["compression"]["metadata"], "lz4+dict", "{v}");
    // The seed's metrics record, in its own namespace.
    let m = ok(&c, "memory_usage", json!({"action": "retrieve", "key": "swarm/storage/metrics", "namespace": "ruvector/metrics"})).await;
    assert_eq!(m["found"], true, "{m}");
    for field in [
        "total_size_gb",
        "available_space_gb",
        "usage_percentage",
        "write_iops",
        "read_iops",
        "compression_ratio",
        "timestamp",
    ] {
        assert!(
            m["value"][field].is_number(),
            "metrics record lacks {field}: {m}"
        );
    }
    assert!(m["value"]["available_space_gb"].as_f64().unwrap() > 0.0);
    // Disk I/O utilisation needs two ticks (when the data dir is on a
    // block device, as it is on this machine's ext4).
    if ruvector_storage::metrics::disk_io(dir.path()).is_some() {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let m = ok(&c, "memory_usage", json!({"action": "retrieve", "key": "swarm/storage/metrics", "namespace": "ruvector/metrics"})).await;
            if let Some(u) = m["value"]["disk_io_utilization"].as_f64() {
                assert!((0.0..=1.0).contains(&u), "{m}");
                break;
            }
            assert!(std::time::Instant::now() < deadline, "{m}");
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    }
}

#[tokio::test]
async fn sigterm_shuts_down_cleanly_and_data_survives() {
    let dir = tempfile::tempdir().unwrap();
    let d = start(dir.path());
    let c = d.client();
    ok(
        &c,
        "storage_write",
        json!({"key": "persist", "value": "me"}),
    )
    .await;
    let status = d.terminate();
    assert!(status.success(), "exit status {status}");
    assert!(
        !dir.path().join("daemon.json").exists(),
        "daemon.json removed at clean shutdown"
    );
    let d = start(dir.path());
    assert_eq!(
        ok(&d.client(), "storage_read", json!({"key": "persist"})).await["value"],
        "me"
    );
}

#[tokio::test]
async fn a_second_daemon_on_the_same_data_dir_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = start(dir.path());
    let out = std::process::Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("locked by another process"), "{err}");
    // The first daemon still owns and serves the store.
    ok(
        &d.client(),
        "storage_write",
        json!({"key": "k", "value": "v"}),
    )
    .await;
    let info = ruvector_storage::client::read_daemon_info(dir.path())
        .unwrap()
        .unwrap();
    assert_eq!(info.pid, d.child.id());
}

/// A data dir whose top level is itself a RocksDB store (a store restored
/// into the wrong directory) is refused: the daemon must never serve an
/// empty store next to data.
#[tokio::test]
async fn serve_refuses_a_store_at_the_top_of_the_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    {
        let d = start(dir.path());
        ok(
            &d.client(),
            "storage_write",
            json!({"key": "k", "value": "v"}),
        )
        .await;
        assert!(d.terminate().success());
    }
    // Move the store's files to the top of a new data dir.
    let wrong = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(dir.path().join("db")).unwrap() {
        let e = e.unwrap();
        if e.path().is_file() {
            std::fs::copy(e.path(), wrong.path().join(e.file_name())).unwrap();
        }
    }
    let (code, _, stderr) = cli(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        wrong.path().to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("top level") && stderr.contains("CURRENT") && stderr.contains("/db"),
        "the error says what it found and where the store belongs: {stderr}"
    );
    assert!(
        !wrong.path().join("db").exists(),
        "no empty store was created"
    );
}

#[test]
fn bad_config_fails_fast_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, stderr) = cli(&[
        "serve",
        "--sync",
        "sometimes",
        "--data-dir",
        dir.path().to_str().unwrap(),
    ]);
    assert_ne!(code, 0);
    assert!(stderr.contains("sync"), "{stderr}");
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, "[rocksdb]\nblock-cache = 5\n").unwrap();
    let (code, _, stderr) = cli(&[
        "--config",
        cfg.to_str().unwrap(),
        "serve",
        "--data-dir",
        dir.path().to_str().unwrap(),
    ]);
    assert_ne!(code, 0);
    assert!(stderr.contains("block-cache"), "{stderr}");
    assert!(
        !dir.path().join("db").exists(),
        "nothing created on a bad config"
    );
}

#[test]
fn cli_is_a_client_of_the_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let dd = dir.path().to_str().unwrap();
    let (code, _, stderr) = cli(&["read", "--key", "x", "--data-dir", dd]);
    assert_eq!(code, 4, "no daemon: exit 4");
    assert!(stderr.contains("no ruvector-storage daemon"), "{stderr}");
    let d = start(dir.path());
    let (code, out, e) = cli(&[
        "write",
        "--key",
        "vector:123",
        "--value",
        "[0.1, 0.2]",
        "--data-dir",
        dd,
    ]);
    assert_eq!(code, 0, "{e}");
    assert!(out.contains("wrote 1"), "{out}");
    let (_, out, _) = cli(&["read", "--key", "vector:123", "--data-dir", dd]);
    assert_eq!(out.trim(), "[0.1, 0.2]");
    let (_, out, _) = cli(&["read", "--key", "vector:123", "--connect", &d.url, "--json"]);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["found"], true);
    let (_, out, _) = cli(&["scan", "--prefix", "vector:", "--data-dir", dd]);
    assert!(out.contains("vector:123"), "{out}");
    let (code, _, e) = cli(&[
        "memory",
        "store",
        "--key",
        "plan",
        "--value",
        "v1",
        "--namespace",
        "ns",
        "--tags",
        "a,b",
        "--data-dir",
        dd,
    ]);
    assert_eq!(code, 0, "{e}");
    let (code, _, e) = cli(&[
        "memory",
        "store",
        "--key",
        "plan",
        "--value",
        "v2",
        "--namespace",
        "ns",
        "--data-dir",
        dd,
    ]);
    assert_eq!(code, 1, "create-only store of an existing key fails");
    assert!(e.contains("upsert"), "{e}");
    let (_, out, _) = cli(&[
        "memory",
        "retrieve",
        "--key",
        "plan",
        "--namespace",
        "ns",
        "--json",
        "--data-dir",
        dd,
    ]);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["value"], "v1");
    assert_eq!(v["tags"], json!(["a", "b"]));
    let (_, out, _) = cli(&[
        "memory",
        "search",
        "--query",
        "plan",
        "--namespace",
        "ns",
        "--json",
        "--data-dir",
        dd,
    ]);
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap()["results"][0]["key"],
        "plan"
    );
    let (_, out, _) = cli(&["stats", "--detailed", "--data-dir", dd]);
    assert!(
        out.contains("column family") && out.contains("persistence"),
        "{out}"
    );
    let (code, out, _) = cli(&["delete", "--key", "vector:123", "--data-dir", dd]);
    assert_eq!(code, 0);
    assert!(out.contains("deleted 1"), "{out}");
}

#[test]
fn init_creates_a_data_dir_and_config() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("data");
    let (code, out, e) = cli(&[
        "init",
        "--path",
        target.to_str().unwrap(),
        "--engine",
        "rocksdb",
    ]);
    assert_eq!(code, 0, "{e}");
    assert!(out.contains("ruvector-storage.toml"));
    let cfg = std::fs::read_to_string(target.join("ruvector-storage.toml")).unwrap();
    assert!(
        cfg.contains(&format!("data-dir = {:?}", target.display().to_string())),
        "{cfg}"
    );
    let (code, _, e) = cli(&[
        "init",
        "--path",
        target.to_str().unwrap(),
        "--engine",
        "leveldb",
    ]);
    assert_eq!(code, 2);
    assert!(e.contains("leveldb"));
}
