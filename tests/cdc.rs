//! Change data capture against a real daemon: a subscriber that disconnects
//! and resumes from its last sequence sees every change exactly once, also
//! across a SIGKILL and restart; `wal tail` streams the same events.

mod common;

use std::time::Duration;

use common::*;
use ruvector_storage::client::{Client, Notifications};
use ruvector_storage::rpc::changes::{SUBSCRIBE, UNSUBSCRIBE};
use serde_json::{json, Value};

/// What a subscriber should see for one change: (op, kind, key).
type Seen = (String, String, String);

fn seen(e: &Value) -> Seen {
    (
        e["op"].as_str().unwrap_or("?").to_string(),
        e["kind"].as_str().unwrap_or("?").to_string(),
        e["key"].as_str().unwrap_or("?").to_string(),
    )
}

async fn subscribe(c: &Client, from: u64) -> Notifications {
    c.subscribe(
        SUBSCRIBE,
        json!({"from_sequence": from, "prefixes": ["w/"], "namespaces": ["cdc/"]}),
        UNSUBSCRIBE,
    )
    .await
    .expect("subscribe")
}

async fn take(sub: &mut Notifications, n: usize) -> Vec<Value> {
    let mut out = Vec::new();
    while out.len() < n {
        match tokio::time::timeout(Duration::from_secs(20), sub.next()).await {
            Ok(Some(Ok(v))) => out.push(v),
            other => panic!("after {} of {n} events: {other:?}", out.len()),
        }
    }
    out
}

/// Writes of one round; returns what a subscriber must see for them.
async fn round(c: &Client, r: usize) -> Vec<Seen> {
    let mut want = Vec::new();
    for i in 0..5 {
        ok(
            c,
            "storage_write",
            json!({"key": format!("w/{r}/{i}"), "value": "v"}),
        )
        .await;
        want.push(("insert".into(), "kv".into(), format!("w/{r}/{i}")));
    }
    // One batch of three, one of them an overwrite.
    ok(
        c,
        "storage_write",
        json!({"entries": [
            {"key": format!("w/{r}/0"), "value": "again"},
            {"key": format!("w/{r}/b1"), "value": "x"},
            {"key": format!("w/{r}/b2"), "value": "y"},
        ]}),
    )
    .await;
    want.push(("update".into(), "kv".into(), format!("w/{r}/0")));
    want.push(("insert".into(), "kv".into(), format!("w/{r}/b1")));
    want.push(("insert".into(), "kv".into(), format!("w/{r}/b2")));
    ok(c, "storage_delete", json!({"key": format!("w/{r}/1")})).await;
    want.push(("delete".into(), "kv".into(), format!("w/{r}/1")));
    ok(
        c,
        "memory_store",
        json!({"key": format!("m{r}"), "value": "note", "namespace": "cdc/agent"}),
    )
    .await;
    want.push(("insert".into(), "memory".into(), format!("m{r}")));
    // Outside the filter: never delivered.
    ok(
        c,
        "storage_write",
        json!({"key": format!("other/{r}"), "value": "v"}),
    )
    .await;
    ok(
        c,
        "memory_store",
        json!({"key": format!("k{r}"), "value": "v", "namespace": "elsewhere"}),
    )
    .await;
    want
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resumed_subscribers_see_every_change_exactly_once_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let d = start(dir.path());
    let c = d.client();
    let base = ok(&c, "system_health", json!({})).await["latest_sequence"]
        .as_u64()
        .unwrap();

    let mut want = round(&c, 0).await;
    let mut got: Vec<Value> = Vec::new();
    let mut sub = subscribe(&c, base).await;
    got.extend(take(&mut sub, 4).await);
    drop(sub); // disconnect mid-stream, mid-batch possibly

    want.extend(round(&c, 1).await);
    let last = got.last().unwrap()["sequence"].as_u64().unwrap();
    let mut sub = subscribe(&c, last).await;
    got.extend(take(&mut sub, want.len() - got.len()).await);
    drop(sub);

    // SIGKILL, restart, resume from the last sequence seen.
    want.extend(round(&c, 2).await);
    let mut sub = subscribe(&c, got.last().unwrap()["sequence"].as_u64().unwrap()).await;
    got.extend(take(&mut sub, 3).await);
    drop(sub);
    d.kill9();
    let d = start(dir.path());
    let c = d.client();
    want.extend(round(&c, 3).await);
    let mut sub = subscribe(&c, got.last().unwrap()["sequence"].as_u64().unwrap()).await;
    got.extend(take(&mut sub, want.len() - got.len()).await);

    assert_eq!(got.iter().map(seen).collect::<Vec<_>>(), want);
    let seqs: Vec<u64> = got
        .iter()
        .map(|e| e["sequence"].as_u64().unwrap())
        .collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "strictly increasing: {seqs:?}"
    );
    assert!(got
        .iter()
        .all(|e| e["timestamp"].as_str().is_some_and(|t| t.ends_with('Z'))));
    // Nothing more is pending for this filter.
    assert!(
        tokio::time::timeout(Duration::from_millis(300), sub.next())
            .await
            .is_err(),
        "no extra events"
    );

    // Live: a write after subscribing arrives.
    ok(&c, "storage_write", json!({"key": "w/live", "value": "1"})).await;
    let live = take(&mut sub, 1).await;
    assert_eq!(
        seen(&live[0]),
        ("insert".into(), "kv".into(), "w/live".into())
    );

    // A start point ahead of the store is refused, with the reason.
    let latest = ok(&c, "system_health", json!({})).await["latest_sequence"]
        .as_u64()
        .unwrap();
    let e = c
        .subscribe(
            SUBSCRIBE,
            json!({"from_sequence": latest + 1000}),
            UNSUBSCRIBE,
        )
        .await
        .unwrap_err();
    assert!(e.message.contains("ahead"), "{e}");
    let e = c
        .subscribe(SUBSCRIBE, json!({"from_sequence": "x"}), UNSUBSCRIBE)
        .await
        .unwrap_err();
    assert!(e.message.contains("invalid params"), "{e}");

    // `wal tail` prints the same events as JSON lines.
    let (code, out, errs) = cli(&[
        "wal",
        "tail",
        "--connect",
        &d.url,
        "--from-sequence",
        &base.to_string(),
        "--prefix",
        "w/",
        "--limit",
        "6",
    ]);
    assert_eq!(code, 0, "{errs}");
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let kv_want: Vec<Seen> = want
        .iter()
        .filter(|w| w.1 == "kv")
        .take(6)
        .cloned()
        .collect();
    assert_eq!(lines.iter().map(seen).collect::<Vec<_>>(), kv_want);
}
