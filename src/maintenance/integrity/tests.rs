use super::*;
use crate::clock::ManualClock;
use crate::engine::{Metric, VectorInput};

fn run(e: &Engine, deep: bool) -> Report {
    check(e, deep, &Progress::default(), &|| false, 0).unwrap()
}

fn store() -> (tempfile::TempDir, std::sync::Arc<Engine>) {
    let (dir, e) = crate::engine::testutil::open_temp(ManualClock::new(1_700_000_000_000));
    e.kv_put_many(&[("k".into(), "v".into())]).unwrap();
    e.collection_create("c", 3, Metric::Cosine).unwrap();
    let v: VectorInput = serde_json::from_value(
        serde_json::json!({"id": "a", "vector": [1, 2, 3], "metadata": {"x": 1}}),
    )
    .unwrap();
    e.vector_upsert("c", &[v]).unwrap();
    (dir, e)
}

#[test]
fn a_healthy_store_passes_and_every_family_is_read() {
    let (_d, e) = store();
    let r = run(&e, true);
    assert!(r.ok, "{:?}", r.problems);
    assert_eq!(r.collections, 1);
    let keys = |name: &str| {
        r.column_families
            .iter()
            .find(|c| c.name == name)
            .unwrap()
            .keys
    };
    assert_eq!((keys("kv"), keys("vectors"), keys("metadata")), (1, 1, 1));
    let quick = run(&e, false);
    assert!(quick.ok && !quick.deep);
    assert_eq!(
        quick
            .column_families
            .iter()
            .find(|c| c.name == "kv")
            .unwrap()
            .keys,
        0
    );
}

#[test]
fn bad_values_are_named_by_family_and_key() {
    let (_d, e) = store();
    let db = e.db();
    // Written behind the engine's back, as damage would be.
    db.put_cf(e.cf(Cf::Kv), b"bad-codec", [0x7f, 1, 2]).unwrap();
    db.put_cf(
        e.cf(Cf::Vectors),
        b"c\0short",
        codec::encode_f32(&[1.0, 2.0]),
    )
    .unwrap();
    db.put_cf(e.cf(Cf::Vectors), b"gone\0v", codec::encode_f32(&[1.0]))
        .unwrap();
    db.put_cf(
        e.cf(Cf::Metadata),
        b"c\0a",
        codec::encode(Codec::Json, b"[1]"),
    )
    .unwrap();
    db.put_cf(
        e.cf(Cf::Memory),
        b"ns\0k",
        codec::encode(Codec::MemoryV1, b"xx"),
    )
    .unwrap();
    let quick = run(&e, false);
    assert!(quick.ok, "a quick check does not read values");
    let r = run(&e, true);
    assert!(!r.ok);
    assert_eq!(r.problems_total, 5, "{:#?}", r.problems);
    let has = |cf: &str, key: &str, what: &str| {
        r.problems
            .iter()
            .any(|p| p.column_family == cf && p.key == key && p.problem.contains(what))
    };
    assert!(
        has("kv", "bad-codec", "unknown codec byte 0x7f"),
        "{:#?}",
        r.problems
    );
    assert!(
        has("vectors", "c\\0short", "dimension 3"),
        "{:#?}",
        r.problems
    );
    assert!(
        has("vectors", "gone\\0v", "does not exist"),
        "{:#?}",
        r.problems
    );
    assert!(
        has("metadata", "c\\0a", "not a JSON object"),
        "{:#?}",
        r.problems
    );
    assert!(
        has("memory", "ns\\0k", "does not decode"),
        "{:#?}",
        r.problems
    );
}

#[test]
fn a_flipped_byte_in_an_sst_is_found() {
    let (dir, e) = store();
    for i in 0..2000 {
        e.kv_put_many(&[(format!("key-{i:05}"), "x".repeat(100))])
            .unwrap();
    }
    e.flush().unwrap();
    let sst = std::fs::read_dir(dir.path().join("db"))
        .unwrap()
        .map(|x| x.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "sst"))
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap();
    let mut bytes = std::fs::read(&sst).unwrap();
    bytes[100] ^= 0x40;
    std::fs::write(&sst, bytes).unwrap();
    let r = run(&e, true);
    assert!(!r.ok, "the damage is found");
    assert!(
        r.problems
            .iter()
            .any(|p| p.problem.contains("reading stopped")
                || p.problem.to_lowercase().contains("checksum")
                || p.problem.to_lowercase().contains("corrupt")),
        "{:#?}",
        r.problems
    );
}

#[test]
fn cancelling_stops_the_check() {
    let (_d, e) = store();
    for i in 0..5000 {
        e.kv_put_many(&[(format!("k{i}"), "v".into())]).unwrap();
    }
    let err = check(&e, true, &Progress::default(), &|| true, 0).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Cancelled);
}

#[test]
fn keys_print_readably() {
    assert_eq!(printable(b"ns\0k\xff"), "ns\\0k\\xff");
}

#[test]
fn quantized_vectors_are_checked_against_their_calibration() {
    let (_d, e) = store();
    let storage = crate::engine::Storage {
        quantization: crate::quant::Quantization::Int4,
        originals: crate::engine::Originals::Keep,
        calibration_sample: 2,
        dedup: false,
    };
    e.collection_create_with("q", 4, Metric::Dot, storage)
        .unwrap();
    let vs: Vec<VectorInput> = (0..3)
        .map(|i| {
            serde_json::from_value(
                serde_json::json!({"id": format!("v{i}"), "vector": [i, 1, 2, 3]}),
            )
            .unwrap()
        })
        .collect();
    e.vector_upsert("q", &vs).unwrap();
    let r = run(&e, true);
    assert!(r.ok, "{:?}", r.problems);
    let db = e.db();
    db.put_cf(
        e.cf(Cf::Vectors),
        b"q\0long",
        [Codec::Quantized as u8, 0, 1, 2, 3],
    )
    .unwrap();
    db.put_cf(
        e.cf(Cf::Vectors),
        b"q\0gen9",
        [Codec::Quantized as u8, 9, 1, 2],
    )
    .unwrap();
    db.put_cf(
        e.cf(Cf::Originals),
        b"q\0v1",
        codec::encode(Codec::Json, b"{}"),
    )
    .unwrap();
    let r = run(&e, true);
    assert_eq!(r.problems_total, 3, "{:#?}", r.problems);
    let has = |cf: &str, key: &str, what: &str| {
        r.problems
            .iter()
            .any(|p| p.column_family == cf && p.key == key && p.problem.contains(what))
    };
    assert!(
        has(
            "vectors",
            "q\\0long",
            "3 bytes of codes, calibration 0 needs 2"
        ),
        "{:#?}",
        r.problems
    );
    assert!(
        has("vectors", "q\\0gen9", "calibration 9"),
        "{:#?}",
        r.problems
    );
    assert!(
        has("originals", "q\\0v1", "expected F32Le"),
        "{:#?}",
        r.problems
    );
}

#[test]
fn dedup_references_contents_and_counts_must_agree() {
    let (_d, e) = store();
    let storage = crate::engine::Storage {
        dedup: true,
        ..Default::default()
    };
    e.collection_create_with("d", 2, Metric::Dot, storage)
        .unwrap();
    let vs: Vec<VectorInput> = ["a", "b", "c"]
        .iter()
        .map(|id| serde_json::from_value(serde_json::json!({"id": id, "vector": [1, 2]})).unwrap())
        .collect();
    e.vector_upsert("d", &vs).unwrap();
    let r = run(&e, true);
    assert!(r.ok, "{:?}", r.problems);
    // The one count, the one stored vector and a reference, as written.
    let (count_key, count) = e
        .db()
        .prefix_iterator_cf(e.cf(Cf::Sys), b"dedup/d/")
        .map(|r| r.unwrap())
        .find(|(k, _)| k.starts_with(b"dedup/d/"))
        .unwrap();
    assert_eq!(&count[..], &3u64.to_le_bytes());
    let hash = String::from_utf8(count_key[b"dedup/d/".len()..].to_vec()).unwrap();
    let reference = e.get(Cf::Vectors, b"d\0a").unwrap().unwrap();
    let db = e.db();
    // A count off by one, a reference to nothing, a vector nobody refers
    // to, and a plain vector where a reference belongs.
    db.put_cf(e.cf(Cf::Sys), &count_key, 2u64.to_le_bytes())
        .unwrap();
    let mut dangling = reference.clone();
    dangling[1] ^= 0xff;
    db.put_cf(e.cf(Cf::Vectors), b"d\0x", &dangling).unwrap();
    db.put_cf(
        e.cf(Cf::Vectors),
        format!("d\x01{}", "0".repeat(32)),
        codec::encode_f32(&[1.0, 2.0]),
    )
    .unwrap();
    db.put_cf(e.cf(Cf::Vectors), b"d\0y", codec::encode_f32(&[1.0, 2.0]))
        .unwrap();
    let r = run(&e, true);
    let has = |what: &str| r.problems.iter().any(|p| p.problem.contains(what));
    assert!(
        has("reference count is 2, 3 ids refer to it"),
        "{:#?}",
        r.problems
    );
    assert!(
        has("1 ids refer to this vector, which is missing"),
        "{:#?}",
        r.problems
    );
    assert!(
        has("no id refers to this stored vector"),
        "{:#?}",
        r.problems
    );
    assert!(
        has("the id holds a vector, not a reference"),
        "{:#?}",
        r.problems
    );
    assert!(r.problems.iter().any(|p| p.key.contains(&hash)));
    // The dangling reference's count is missing too: 0 stored, 1 refers.
    assert_eq!(r.problems_total, 5, "{:#?}", r.problems);
}
