//! Dedup collections through the daemon: a SIGKILL amid concurrent
//! upserts, updates and deletes of identical vectors keeps every
//! acknowledged write, and the reference counts still agree with the
//! references (the deep integrity check recounts them); the listing, stats
//! and the CLI report the dedup ratio.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::*;
use serde_json::{json, Value};

const DIM: usize = 16;
const POOL: usize = 5;
const IDS: u64 = 20;

fn pool_vector(p: usize) -> Vec<f32> {
    (0..DIM).map(|d| ((p * 7 + d) % 13) as f32 - 6.0).collect()
}

/// What a writer knows when its daemon dies: the state of each id it
/// wrote, as last acknowledged, and what the request in flight would
/// have made of some of them.
type State = HashMap<String, Option<usize>>;

async fn writer(c: ruvector_storage::client::Client, w: u64) -> (State, State) {
    let mut acked = State::new();
    let mut x = w * 7919 + 17;
    let mut next = || {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        x >> 33
    };
    loop {
        let mut flight = State::new();
        let n = 1 + next() % 4;
        for _ in 0..n {
            let id = format!("w{w}-{}", next() % IDS);
            flight.insert(id, None);
        }
        let delete = next() % 4 == 0;
        let result = if delete {
            let ids: Vec<&String> = flight.keys().collect();
            c.call("vector_delete", json!({"collection": "d", "ids": ids}))
                .await
        } else {
            for v in flight.values_mut() {
                *v = Some((next() % POOL as u64) as usize);
            }
            let vectors: Vec<Value> = flight
                .iter()
                .map(|(id, p)| json!({"id": id, "vector": pool_vector(p.unwrap_or(0))}))
                .collect();
            c.call(
                "vector_upsert",
                json!({"collection": "d", "vectors": vectors}),
            )
            .await
        };
        match result {
            Ok(_) => acked.extend(flight),
            Err(_) => return (acked, flight),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigkill_amid_dedup_writes_keeps_every_acknowledged_one_and_the_counts() {
    let dir = tempfile::tempdir().unwrap();
    let d = start(dir.path());
    let c = d.client();
    let created = ok(
        &c,
        "collection_create",
        json!({"name": "d", "dimension": DIM, "dedup": true}),
    )
    .await;
    assert_eq!(created["collection"]["dedup"], true, "{created}");
    let writers: Vec<_> = (0..3)
        .map(|w| tokio::spawn(writer(d.client(), w)))
        .collect();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    d.kill9();
    let mut outcomes = Vec::new();
    for w in writers {
        outcomes.push(w.await.unwrap());
    }
    let acked_writes: usize = outcomes.iter().map(|(a, _)| a.len()).sum();
    assert!(acked_writes > 20, "the writers wrote ({acked_writes} ids)");

    let d = start(dir.path());
    let c = d.client();
    for (acked, flight) in &outcomes {
        let ids: Vec<&String> = acked.keys().chain(flight.keys()).collect();
        let got = ok(&c, "vector_get", json!({"collection": "d", "ids": ids})).await;
        let mut now: HashMap<String, Vec<f32>> = HashMap::new();
        for v in got["vectors"].as_array().unwrap() {
            now.insert(
                v["id"].as_str().unwrap().to_string(),
                serde_json::from_value(v["vector"].clone()).unwrap(),
            );
        }
        for id in ids {
            let have = now.get(id.as_str());
            let before = acked.get(id).copied().flatten().map(pool_vector);
            let ok_states: Vec<Option<Vec<f32>>> = match flight.get(id) {
                // The request in flight may or may not have landed.
                Some(f) => vec![before, f.map(pool_vector)],
                None => vec![before],
            };
            assert!(
                ok_states.iter().any(|s| s.as_ref() == have),
                "{id}: has {have:?}, acknowledged {:?}",
                acked.get(id)
            );
        }
    }
    let check = ok(&c, "storage_check", json!({"verify_integrity": true})).await;
    assert_eq!(check["ok"], true, "{check}");
    // Each distinct vector is stored once.
    let stats = ok(&c, "storage_stats", json!({})).await;
    let dedup = &stats["dedup"][0];
    assert_eq!(dedup["collection"], "d", "{stats}");
    let (ids, unique) = (
        dedup["vectors"].as_u64().unwrap(),
        dedup["unique_vectors"].as_u64().unwrap(),
    );
    assert!(unique <= POOL as u64 && ids > unique, "{dedup}");
    let ratio = dedup["dedup_ratio"].as_f64().unwrap();
    assert!((ratio - ids as f64 / unique as f64).abs() < 1e-9, "{dedup}");
    let list = ok(&c, "collection_list", json!({})).await;
    assert_eq!(list["collections"][0]["unique_vectors"], unique, "{list}");
    // analyze-compression names the ratio too, through the CLI.
    let (code, out, errs) = cli(&[
        "analyze-compression",
        "--type",
        "vectors",
        "--collection",
        "d",
        "--connect",
        &d.url,
    ]);
    assert_eq!(code, 0, "{errs}");
    assert!(
        out.contains(&format!("dedup: {ids} ids over {unique} distinct vectors")),
        "{out}"
    );
}
