use super::*;
use crate::bus::KeyLocks;
use crate::clock::ManualClock;
use crate::engine::testutil::open_temp;
use serde_json::{json, Value};

fn v2(store: &MemoryStore, args: Value) -> Value {
    memory_usage(store, serde_json::from_value(args).unwrap()).unwrap()
}

#[test]
fn v2_store_retrieve_list_delete_shapes() {
    let (_d, e) = open_temp(ManualClock::new(1_700_000_000_000));
    let locks = KeyLocks::default();
    let s = MemoryStore::new(&e, &locks);
    let r = v2(
        &s,
        json!({"action": "store", "key": "k1", "value": "{\"a\":1}"}),
    );
    assert_eq!(r["success"], true);
    assert_eq!(r["namespace"], "default");
    assert_eq!(r["stored"], true);
    assert_eq!(r["size"], 7);
    assert!(r["id"].is_string() && r["timestamp"].is_string());
    let r = v2(&s, json!({"action": "retrieve", "key": "k1"}));
    assert_eq!(r["value"], json!({"a": 1}), "JSON strings come back parsed");
    assert_eq!(r["found"], true);
    let r = v2(&s, json!({"action": "retrieve", "key": "missing"}));
    assert_eq!(
        (r["found"].clone(), r["value"].clone()),
        (json!(false), Value::Null)
    );
    let r = v2(&s, json!({"action": "list"}));
    assert_eq!(r["count"], 1);
    assert_eq!(r["entries"][0]["accessCount"], 1);
    let r = v2(&s, json!({"action": "delete", "key": "k1"}));
    assert_eq!(r["deleted"], true);
    let r = v2(&s, json!({"action": "delete", "key": "k1"}));
    assert_eq!(r["deleted"], false);
    let r = v2(&s, json!({"action": "frobnicate"}));
    assert_eq!(r["success"], false);
    assert_eq!(r["error"], "Unknown memory action: frobnicate");
}

#[test]
fn v2_list_is_newest_first_and_search_is_substring() {
    let clock = ManualClock::new(1_000_000);
    let (_d, e) = open_temp(clock.clone());
    let locks = KeyLocks::default();
    let s = MemoryStore::new(&e, &locks);
    for k in ["alpha", "beta", "gamma"] {
        v2(
            &s,
            json!({"action": "store", "key": k, "value": format!("value of {k}")}),
        );
        clock.advance_ms(1000);
    }
    let r = v2(&s, json!({"action": "list"}));
    let keys: Vec<&str> = r["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["gamma", "beta", "alpha"]);
    let r = v2(&s, json!({"action": "search", "value": "ETA"}));
    let keys: Vec<&str> = r["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["beta"], "case-insensitive substring of key or value");
    assert_eq!(r["pattern"], "ETA");
}

#[test]
fn ttl_hides_at_once_and_compaction_removes() {
    // Start the injected clock an hour in the past so that, after we move it,
    // the entry is also expired for the compaction filter's wall clock.
    let start = crate::clock::SystemClock.now_ms_for_tests() - 3_600_000;
    let clock = ManualClock::new(start);
    let (_d, e) = open_temp(clock.clone());
    let locks = KeyLocks::default();
    let s = MemoryStore::new(&e, &locks);
    v2(
        &s,
        json!({"action": "store", "key": "short", "value": "x", "ttl": 10}),
    );
    v2(&s, json!({"action": "store", "key": "long", "value": "y"}));
    clock.advance_ms(9_999);
    assert_eq!(
        v2(&s, json!({"action": "retrieve", "key": "short"}))["found"],
        true
    );
    clock.advance_ms(2);
    assert_eq!(
        v2(&s, json!({"action": "retrieve", "key": "short"}))["found"],
        false
    );
    assert_eq!(v2(&s, json!({"action": "list"}))["count"], 1);
    assert_eq!(
        v2(&s, json!({"action": "search", "value": "short"}))["count"],
        0
    );
    let st = memory_stats(&s, MemoryStatsParams {}).unwrap();
    assert_eq!(st["totalEntries"], 1);
    assert_eq!(st["expiredPending"], 1);
    // A v3 create-only store over an expired key is allowed (it is absent).
    e.flush().unwrap();
    e.compact(crate::engine::Cf::Memory);
    let st = memory_stats(&s, MemoryStatsParams {}).unwrap();
    assert_eq!(
        st["expiredPending"], 0,
        "compaction filter removed the expired entry"
    );
    assert_eq!(st["totalEntries"], 1, "live entry kept");
}

#[test]
fn namespaces_never_leak() {
    let (_d, e) = open_temp(ManualClock::new(5));
    let locks = KeyLocks::default();
    let s = MemoryStore::new(&e, &locks);
    v2(
        &s,
        json!({"action": "store", "key": "k", "value": "in a", "namespace": "a"}),
    );
    v2(
        &s,
        json!({"action": "store", "key": "k", "value": "in ab", "namespace": "ab"}),
    );
    v2(
        &s,
        json!({"action": "store", "key": "k2", "value": "in a/b", "namespace": "a/b"}),
    );
    let r = v2(&s, json!({"action": "list", "namespace": "a"}));
    assert_eq!(r["count"], 1);
    assert_eq!(r["entries"][0]["value"], "in a");
    assert_eq!(
        v2(
            &s,
            json!({"action": "retrieve", "key": "k", "namespace": "ab"})
        )["value"],
        "in ab"
    );
    assert_eq!(
        v2(
            &s,
            json!({"action": "retrieve", "key": "k2", "namespace": "a"})
        )["found"],
        false
    );
    let r = v2(
        &s,
        json!({"action": "search", "value": "in", "namespace": "a"}),
    );
    assert_eq!(r["count"], 1);
    let r = memory_search(
        &s,
        serde_json::from_value(json!({"query": "in", "namespace": "ab", "threshold": 0})).unwrap(),
    )
    .unwrap();
    assert!(r["results"]
        .as_array()
        .unwrap()
        .iter()
        .all(|x| x["namespace"] == "ab"));
    let r = memory_list(
        &s,
        serde_json::from_value(json!({"namespace": "a/b"})).unwrap(),
    )
    .unwrap();
    assert_eq!(r["count"], 1);
    v2(
        &s,
        json!({"action": "delete", "key": "k", "namespace": "a"}),
    );
    assert_eq!(
        v2(
            &s,
            json!({"action": "retrieve", "key": "k", "namespace": "ab"})
        )["found"],
        true
    );
}

#[test]
fn v3_upsert_tags_search_stats() {
    let clock = ManualClock::new(10_000);
    let (_d, e) = open_temp(clock.clone());
    let locks = KeyLocks::default();
    let s = MemoryStore::new(&e, &locks);
    let store = |args: Value| memory_store(&s, serde_json::from_value(args).unwrap());
    store(json!({"key": "plan", "value": {"steps": 3}, "tags": ["x", "y"]})).unwrap();
    let err = store(json!({"key": "plan", "value": "again"})).unwrap_err();
    assert_eq!(err.kind, crate::error::ErrorKind::AlreadyExists);
    clock.advance_ms(5);
    let r = store(json!({"key": "plan", "value": "again", "upsert": true, "tags": ["y"]})).unwrap();
    assert_eq!(r["created"], false);
    let got = memory_retrieve(&s, serde_json::from_value(json!({"key": "plan"})).unwrap()).unwrap();
    assert_eq!(got["value"], "again");
    assert_ne!(
        got["createdAt"], got["updatedAt"],
        "createdAt survives an upsert"
    );
    store(json!({"key": "obj", "value": {"a": [1]}, "tags": ["x"]})).unwrap();
    let got = memory_retrieve(&s, serde_json::from_value(json!({"key": "obj"})).unwrap()).unwrap();
    assert_eq!(got["value"], json!({"a": [1]}));
    let l = memory_list(&s, serde_json::from_value(json!({"tags": ["x"]})).unwrap()).unwrap();
    assert_eq!(l["count"], 1);
    assert_eq!(l["entries"][0]["key"], "obj");
    store(json!({"key": "rocksdb-notes", "value": "rocksdb compaction tuning notes"})).unwrap();
    store(json!({"key": "lunch", "value": "sandwich with cheese"})).unwrap();
    let r = memory_search(
        &s,
        serde_json::from_value(json!({"query": "rocksdb compaction"})).unwrap(),
    )
    .unwrap();
    assert_eq!(r["results"][0]["key"], "rocksdb-notes");
    assert!(r["results"]
        .as_array()
        .unwrap()
        .iter()
        .all(|x| x["key"] != "lunch"));
    let r = memory_search(
        &s,
        serde_json::from_value(json!({"query": "rocksdb", "threshold": 1.0})).unwrap(),
    )
    .unwrap();
    assert!(r["count"].as_u64().unwrap() <= 1);
    let r = memory_search(
        &s,
        serde_json::from_value(json!({"query": "a", "limit": 1, "threshold": 0})).unwrap(),
    )
    .unwrap();
    assert!(r["count"].as_u64().unwrap() <= 1);
    assert!(memory_search(
        &s,
        serde_json::from_value(json!({"query": "x", "threshold": 2})).unwrap()
    )
    .is_err());
    let st = memory_stats(&s, MemoryStatsParams {}).unwrap();
    assert_eq!(st["totalEntries"], 4);
    assert_eq!(st["backend"], "rocksdb");
}

#[test]
fn bad_memory_input_changes_nothing() {
    let (_d, e) = open_temp(ManualClock::new(0));
    let locks = KeyLocks::default();
    let s = MemoryStore::new(&e, &locks);
    let bad = [
        json!({"key": "", "value": "v"}),
        json!({"key": "k", "value": "v", "namespace": ""}),
        json!({"key": "k", "value": "v", "ttl": -1}),
        json!({"key": "k", "value": "v", "ttl": 1e300}),
        json!({"key": "k\u{0}x", "value": "v"}),
    ];
    for args in bad {
        let err = memory_store(&s, serde_json::from_value(args.clone()).unwrap()).unwrap_err();
        assert_eq!(err.kind, crate::error::ErrorKind::InvalidInput, "{args}");
    }
    assert_eq!(
        memory_stats(&s, MemoryStatsParams {}).unwrap()["totalEntries"],
        0
    );
}
