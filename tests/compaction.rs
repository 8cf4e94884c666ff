//! `compact` through the daemon: the incremental plan names the family full
//! of garbage and why, a dry run changes nothing, the compaction shrinks
//! it, `--full` takes every family, the result is the `compaction` record,
//! and bad requests say what is allowed.

mod common;

use common::*;
use serde_json::{json, Value};

fn sst(stats: &Value, family: &str) -> u64 {
    stats["store"]["column_families"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == family)
        .and_then(|c| c["sst_bytes"].as_u64())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compact_plans_from_the_garbage_and_reclaims_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = start(dir.path());
    let c = d.client();
    let keys: Vec<String> = (0..2000).map(|i| format!("k{i:05}")).collect();
    for round in 0..2 {
        let entries: Vec<Value> = keys
            .iter()
            .map(|k| json!({"key": k, "value": format!("{round}{}", "v".repeat(300) + k)}))
            .collect();
        ok(&c, "storage_write", json!({"entries": entries})).await;
        ok(&c, "wal_checkpoint", json!({})).await;
    }
    ok(&c, "storage_delete", json!({"keys": &keys[..1500]})).await;
    ok(&c, "wal_checkpoint", json!({})).await;
    let before = ok(&c, "storage_stats", json!({})).await;

    // The plan, through the CLI: kv is selected, with its reason.
    let (code, out, e) = cli(&["compact", "--incremental", "--dry-run", "--connect", &d.url]);
    assert_eq!(code, 0, "{e}");
    let plan: Value = serde_json::from_str(&out).unwrap_or_else(|_| json!({"text": out}));
    let text = plan.to_string();
    assert!(text.contains("kv"), "{out}");
    let dry = ok(
        &c,
        "storage_compact",
        json!({"incremental": true, "dry_run": true}),
    )
    .await;
    let kv = dry["plan"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["family"] == "kv")
        .unwrap()
        .clone();
    assert_eq!(kv["selected"], true, "{dry}");
    assert!(kv["why"].as_str().unwrap().contains('%'), "{kv}");
    assert_eq!(dry["compacted"], json!([]));
    let same = ok(&c, "storage_stats", json!({})).await;
    assert_eq!(
        sst(&same, "kv"),
        sst(&before, "kv"),
        "a dry run compacts nothing"
    );

    let r = ok(
        &c,
        "storage_compact",
        json!({"incremental": true, "threshold": 0.3}),
    )
    .await;
    let compacted: Vec<&str> = r["compacted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["family"].as_str().unwrap())
        .collect();
    assert!(compacted.contains(&"kv"), "{r}");
    let after = ok(&c, "storage_stats", json!({})).await;
    assert!(
        sst(&after, "kv") * 2 < sst(&before, "kv"),
        "{} -> {}",
        sst(&before, "kv"),
        sst(&after, "kv")
    );
    // The data is what was written last.
    let read = ok(&c, "storage_read", json!({"key": "k01999"})).await;
    assert!(read["value"].as_str().unwrap().starts_with('1'), "{read}");
    let gone = ok(&c, "storage_read", json!({"key": "k00001"})).await;
    assert_eq!(gone["found"], false);

    let full = ok(&c, "storage_compact", json!({"full": true})).await;
    assert_eq!(full["mode"], "full");
    assert!(full["compacted"].as_array().unwrap().len() >= 2, "{full}");
    let records = ok(&c, "storage_stats", json!({})).await["records"].clone();
    assert_eq!(records["compaction"]["running"], false, "{records}");
    assert_eq!(records["compaction"]["last"]["mode"], "full", "{records}");

    for (params, says) in [
        (json!({}), "give --full"),
        (json!({"full": true, "incremental": true}), "not both"),
        (
            json!({"incremental": true, "threshold": 1.5}),
            "out of range",
        ),
        (
            json!({"full": true, "threshold": 0.2}),
            "goes with --incremental",
        ),
    ] {
        let (_, message) = err(&c, "storage_compact", params.clone()).await;
        assert!(message.contains(says), "{params}: {message}");
    }
}
