use std::sync::Arc;

use proptest::prelude::*;
use rocksdb::WriteBatch;

use super::*;
use crate::bus::{KeyLocks, MemoryStore, NewEntry, OnExisting};
use crate::clock::ManualClock;
use crate::config::Config;
use crate::engine::testutil::open_temp;

fn all(engine: &Engine, after: u64) -> Vec<ChangeEvent> {
    read_changes(engine, after, usize::MAX, &Filter::default())
        .unwrap()
        .events
}

fn kv(k: &str, v: &str) -> (String, String) {
    (k.to_string(), v.to_string())
}

#[test]
fn batches_built_by_rocksdb_decode_record_by_record() {
    let (_d, e) = open_temp(ManualClock::new(0));
    let mut b = WriteBatch::default();
    b.put_cf(e.cf(Cf::Kv), b"k1", b"v1");
    b.delete_cf(e.cf(Cf::Memory), b"ns\0k");
    b.put_log_data(b"hello");
    b.merge_cf(e.cf(Cf::Sys), b"ctr", 1i64.to_le_bytes());
    let p = parse_batch(b.data()).unwrap();
    assert_eq!(p.count, 3);
    let kv_id = e.cf_ids[0];
    assert_ne!(
        e.cf_ids[0], e.cf_ids[3],
        "column families have distinct ids"
    );
    assert_eq!(
        p.records[0],
        Record::Put {
            cf: kv_id,
            key: b"k1",
            value: b"v1"
        }
    );
    assert_eq!(e.cf_of(kv_id), Some(Cf::Kv));
    assert_eq!(p.records[2], Record::LogData(b"hello"));
    assert!(matches!(p.records[3], Record::Merge { .. }));
}

proptest! {
    #[test]
    fn any_batch_round_trips_and_any_truncation_is_an_error(
        ops in proptest::collection::vec((0u8..3, proptest::collection::vec(any::<u8>(), 0..300), proptest::collection::vec(any::<u8>(), 0..300)), 1..20),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut b = WriteBatch::default();
        for (kind, k, v) in &ops {
            match kind {
                0 => b.put(k, v),
                1 => b.delete(k),
                _ => b.put_log_data(v),
            }
        }
        let p = parse_batch(b.data()).unwrap();
        prop_assert_eq!(p.records.len(), ops.len());
        for ((kind, k, v), r) in ops.iter().zip(&p.records) {
            match (kind, r) {
                (0, Record::Put { key, value, .. }) => { prop_assert_eq!(*key, &k[..]); prop_assert_eq!(*value, &v[..]); }
                (1, Record::Delete { key, .. }) => prop_assert_eq!(*key, &k[..]),
                (2, Record::LogData(d)) => prop_assert_eq!(*d, &v[..]),
                other => prop_assert!(false, "mismatch {:?}", other),
            }
        }
        let data = b.data();
        let n = cut.index(data.len());
        // A prefix fails to parse, unless it only drops trailing log data
        // (which no sequence number counts; the WAL's own CRC covers that).
        if n < data.len() {
            if let Ok(short) = parse_batch(&data[..n]) {
                prop_assert!(short.records.len() < p.records.len());
                prop_assert_eq!(&short.records[..], &p.records[..short.records.len()]);
                prop_assert!(p.records[short.records.len()..].iter().all(|r| matches!(r, Record::LogData(_))));
            }
        }
    }
}

#[test]
fn every_change_is_an_event_in_sequence_order_with_insert_update_delete() {
    let clock = ManualClock::new(1_700_000_000_000);
    let (_d, e) = open_temp(clock.clone());
    let start = e.db().latest_sequence_number();
    e.kv_put_many(&[kv("a", "1"), kv("b", "2")]).unwrap();
    clock.advance_ms(5);
    e.kv_put_many(&[kv("a", "3")]).unwrap();
    e.kv_delete(&["b".into()]).unwrap();
    let locks = KeyLocks::default();
    let m = MemoryStore::new(&e, &locks);
    m.put(
        "agents/a",
        "plan",
        NewEntry::text("step 1".into()),
        OnExisting::Overwrite,
    )
    .unwrap();
    e.collection_create("docs", 2, Default::default()).unwrap();
    let events = all(&e, start);
    let ops: Vec<(ChangeOp, &str, Option<&str>)> = events
        .iter()
        .map(|x| (x.op, x.kind.as_str(), x.key.as_deref()))
        .collect();
    assert_eq!(
        ops,
        vec![
            (ChangeOp::Insert, "kv", Some("a")),
            (ChangeOp::Insert, "kv", Some("b")),
            (ChangeOp::Update, "kv", Some("a")),
            (ChangeOp::Delete, "kv", Some("b")),
            (ChangeOp::Insert, "memory", Some("plan")),
            (ChangeOp::Insert, "collection", None),
        ]
    );
    for w in events.windows(2) {
        assert!(w[0].sequence < w[1].sequence);
    }
    assert_eq!(events[0].sequence, start + 1);
    assert_eq!(events[0].timestamp, iso_ms(1_700_000_000_000));
    assert_eq!(events[2].timestamp, iso_ms(1_700_000_000_005));
    assert_eq!(events[2].value, Some(Value::String("3".into())));
    assert_eq!(events[4].namespace.as_deref(), Some("agents/a"));
    assert_eq!(events[4].value.as_ref().unwrap()["value"], "step 1");
}

#[test]
fn resuming_from_any_sequence_yields_exactly_the_rest() {
    let (_d, e) = open_temp(ManualClock::new(0));
    let start = e.db().latest_sequence_number();
    // Batches of 1, 3 and 5 records, so some resume points fall inside one.
    for (i, n) in [1usize, 3, 5, 2].iter().enumerate() {
        let entries: Vec<_> = (0..*n).map(|j| kv(&format!("k{i}-{j}"), "v")).collect();
        e.kv_put_many(&entries).unwrap();
    }
    let everything = all(&e, start);
    assert_eq!(everything.len(), 11);
    for (i, ev) in everything.iter().enumerate() {
        let rest = all(&e, ev.sequence);
        assert_eq!(
            rest,
            everything[i + 1..].to_vec(),
            "resume after {}",
            ev.sequence
        );
    }
    // Pages with a small limit never split a batch and lose nothing.
    let mut after = start;
    let mut paged = Vec::new();
    loop {
        let p = read_changes(&e, after, 2, &Filter::default()).unwrap();
        if p.events.is_empty() {
            break;
        }
        after = p.next_sequence;
        paged.extend(p.events);
    }
    assert_eq!(paged, everything);
    let ahead = read_changes(
        &e,
        e.db().latest_sequence_number() + 10,
        1,
        &Filter::default(),
    );
    assert!(ahead.unwrap_err().message.contains("ahead"));
}

#[test]
fn filters_select_by_kind() {
    let (_d, e) = open_temp(ManualClock::new(0));
    let start = e.db().latest_sequence_number();
    e.kv_put_many(&[kv("cfg/x", "1"), kv("other", "2")])
        .unwrap();
    let locks = KeyLocks::default();
    let m = MemoryStore::new(&e, &locks);
    m.put(
        "swarm/a",
        "k",
        NewEntry::text("x".into()),
        OnExisting::Overwrite,
    )
    .unwrap();
    m.put(
        "swarmx",
        "k",
        NewEntry::text("x".into()),
        OnExisting::Overwrite,
    )
    .unwrap();
    let f = Filter {
        prefixes: vec!["cfg/".into()],
        namespaces: vec!["swarm/".into()],
        collections: vec![],
    };
    let got: Vec<_> = read_changes(&e, start, 100, &f)
        .unwrap()
        .events
        .into_iter()
        .map(|x| (x.kind, x.key, x.namespace))
        .collect();
    assert_eq!(
        got,
        vec![
            ("kv".to_string(), Some("cfg/x".to_string()), None),
            (
                "memory".to_string(),
                Some("k".to_string()),
                Some("swarm/a".to_string())
            ),
        ]
    );
    assert!(namespace_matches("*", "anything"));
    assert!(namespace_matches("a/*", "a/b"));
    assert!(!namespace_matches("a", "ab"));
}

#[test]
fn changes_survive_a_flush_and_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        data_dir: dir.path().to_path_buf(),
        sync: "always".into(),
        ..Config::default()
    };
    let e = Engine::open(&config, Arc::new(ManualClock::new(0))).unwrap();
    let start = e.db().latest_sequence_number();
    e.kv_put_many(&[kv("a", "1")]).unwrap();
    e.flush().unwrap();
    e.kv_put_many(&[kv("b", "2")]).unwrap();
    e.stop_background();
    drop(e);
    let e = Engine::open(&config, Arc::new(ManualClock::new(0))).unwrap();
    e.flush().unwrap();
    e.kv_put_many(&[kv("c", "3")]).unwrap();
    let keys: Vec<_> = all(&e, start).into_iter().filter_map(|x| x.key).collect();
    assert_eq!(keys, vec!["a", "b", "c"]);
}
