//! Dedup collections: identical vectors stored once, counts that follow
//! every upsert, update and delete, garbage reclaimed at zero, quantization
//! and re-encoding over the distinct vectors, and concurrent writers that
//! never count from the same reading.

use std::sync::Arc;

use super::dedup::{content_hash, content_key, content_prefix, refcount_key};
use super::quant_tests::{create, vectors};
use super::*;
use crate::clock::ManualClock;
use crate::engine::testutil::open_temp;
use crate::quant::Quantization;
use serde_json::json;

const DIM: usize = 8;

fn dedup(q: Quantization, originals: Originals, sample: usize) -> Storage {
    Storage {
        quantization: q,
        originals,
        calibration_sample: sample,
        dedup: true,
    }
}

fn put(e: &Engine, c: &str, items: &[(&str, &[f32])]) {
    let items: Vec<VectorInput> = items
        .iter()
        .map(|(id, v)| serde_json::from_value(json!({"id": id, "vector": v})).unwrap())
        .collect();
    e.vector_upsert(c, &items).unwrap();
}

fn get(e: &Engine, c: &str, id: &str) -> Option<Vec<f32>> {
    let (found, _) = e
        .vector_get(c, &[id.to_string()], true, VectorFormat::Floats)
        .unwrap();
    found.into_iter().next().and_then(|v| v.vector)
}

/// The reference count stored for vector `v` (none: 0).
fn count(e: &Engine, c: &str, v: &[f32]) -> u64 {
    let h = content_hash(&codec::encode_f32(v));
    e.get(Cf::Sys, refcount_key(c, &h).as_bytes())
        .unwrap()
        .map_or(0, |b| decode_count(&b).unwrap())
}

fn stored(e: &Engine, cf: Cf, c: &str, v: &[f32]) -> bool {
    let h = content_hash(&codec::encode_f32(v));
    e.get(cf, &content_key(c, &h)).unwrap().is_some()
}

/// Keys of `c` in `cf` under `prefix`-style ranges: ids, then contents.
fn keys(e: &Engine, cf: Cf, prefix: &[u8]) -> usize {
    e.db()
        .prefix_iterator_cf(e.cf(cf), prefix)
        .map(|r| r.unwrap())
        .take_while(|(k, _)| k.starts_with(prefix))
        .count()
}

/// A store with the f32 dedup collection `c`.
fn f32_store() -> (tempfile::TempDir, Arc<Engine>) {
    let (dir, e) = open_temp(ManualClock::new(0));
    create(
        &e,
        "c",
        DIM,
        Metric::Dot,
        dedup(Quantization::None, Originals::Keep, 1024),
    );
    (dir, e)
}

#[test]
fn identical_vectors_are_stored_once_and_every_id_reads_its_own() {
    let (_dir, e) = f32_store();
    let (v1, v2) = (vec![0.5f32; DIM], vec![-0.25f32; DIM]);
    put(&e, "c", &[("a", &v1), ("b", &v1), ("c", &v1), ("d", &v2)]);
    assert_eq!(e.unique_vectors("c").unwrap(), 2);
    assert_eq!((count(&e, "c", &v1), count(&e, "c", &v2)), (3, 1));
    for (id, want) in [("a", &v1), ("b", &v1), ("c", &v1), ("d", &v2)] {
        assert_eq!(get(&e, "c", id).as_ref(), Some(want), "{id}");
    }
    // Ids hold references; the family holds 4 references + 2 vectors.
    let refs = keys(&e, Cf::Vectors, &crate::engine::group_prefix("c"));
    assert_eq!(refs, 4);
    assert_eq!(keys(&e, Cf::Vectors, &content_prefix("c")), 2);
    let list = e.collection_list().unwrap();
    assert_eq!(list[0].vectors, Some(4));
    assert_eq!(list[0].unique_vectors, Some(2));
    assert_eq!(list[0].dedup_ratio, Some(2.0));
    // Raw reads give the stored vector, not the reference.
    let (raw, _) = e
        .vector_get("c", &["b".into()], true, VectorFormat::Raw)
        .unwrap();
    let b64 = raw[0].codes_b64.as_deref().unwrap();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    assert_eq!(bytes, codec::f32_to_le(&v1));
    // A second create with other dedup settings is refused.
    let err = e
        .collection_create_with("c", DIM, Metric::Dot, Storage::default())
        .unwrap_err();
    assert!(err.message.contains("dedup true"), "{}", err.message);
}

#[test]
fn updates_and_deletes_move_the_counts_and_reclaim_what_nothing_refers_to() {
    let (_dir, e) = f32_store();
    let (v1, v2) = (vec![1.0f32; DIM], vec![2.0f32; DIM]);
    put(&e, "c", &[("a", &v1), ("b", &v1), ("c", &v1), ("d", &v2)]);
    // Update: a moves from v1 to v2.
    put(&e, "c", &[("a", &v2)]);
    assert_eq!((count(&e, "c", &v1), count(&e, "c", &v2)), (2, 2));
    // Re-upserting the same vector changes nothing.
    put(&e, "c", &[("a", &v2)]);
    assert_eq!((count(&e, "c", &v1), count(&e, "c", &v2)), (2, 2));
    // Deleting the last two references of v1 (one id given twice) removes it.
    let n = e
        .vector_delete("c", &["b".into(), "c".into(), "c".into()])
        .unwrap();
    assert_eq!(n, 2);
    assert_eq!(count(&e, "c", &v1), 0);
    assert!(
        !stored(&e, Cf::Vectors, "c", &v1),
        "v1 is garbage, reclaimed"
    );
    assert!(stored(&e, Cf::Vectors, "c", &v2));
    assert_eq!(get(&e, "c", "a"), Some(v2.clone()));
    assert_eq!(get(&e, "c", "b"), None);
    // A batch that replaces and adds in one go.
    put(&e, "c", &[("a", &v1), ("e", &v1), ("d", &v1)]);
    assert_eq!((count(&e, "c", &v1), count(&e, "c", &v2)), (3, 0));
    assert!(!stored(&e, Cf::Vectors, "c", &v2));
    e.vector_delete("c", &["a".into(), "d".into(), "e".into()])
        .unwrap();
    // Nothing of the collection's vectors is left anywhere.
    assert_eq!(keys(&e, Cf::Vectors, b"c"), 0);
    assert_eq!(keys(&e, Cf::Originals, b"c"), 0);
    assert_eq!(keys(&e, Cf::Sys, b"dedup/c/"), 0);
}

#[test]
fn quantized_dedup_calibrates_searches_and_re_encodes_the_distinct_vectors() {
    let (_dir, e) = open_temp(ManualClock::new(0));
    let dim = 32;
    create(
        &e,
        "q",
        dim,
        Metric::Cosine,
        dedup(Quantization::Int8, Originals::Keep, 16),
    );
    let distinct = vectors(20, dim, 11);
    // Each distinct vector under two ids, in two batches: the second one
    // reaches the sample (16 distinct) and calibrates.
    let items = |from: usize| -> Vec<VectorInput> {
        (0..20)
            .map(|i| {
                serde_json::from_value(
                    json!({"id": format!("v{:03}", from + i), "vector": distinct[i]}),
                )
                .unwrap()
            })
            .collect()
    };
    e.vector_upsert("q", &items(0)[..10]).unwrap();
    assert_eq!(e.collection_get("q").unwrap().unwrap().calibration, None);
    e.vector_upsert("q", &items(0)[10..]).unwrap();
    e.vector_upsert("q", &items(100)).unwrap();
    let info = e.collection_get("q").unwrap().unwrap();
    assert!(
        info.calibration.is_some(),
        "calibrated at 16 distinct vectors"
    );
    assert_eq!(e.unique_vectors("q").unwrap(), 20);
    // The distinct vectors are codes, their originals keyed the same way.
    let contents: Vec<u8> = e
        .db()
        .prefix_iterator_cf(e.cf(Cf::Vectors), content_prefix("q"))
        .map(|r| r.unwrap())
        .take_while(|(k, _)| k.starts_with(&content_prefix("q")))
        .map(|(_, v)| v[0])
        .collect();
    assert_eq!(contents, vec![crate::codec::Codec::Quantized as u8; 20]);
    assert_eq!(keys(&e, Cf::Originals, &content_prefix("q")), 20);
    // Search: both ids of the nearest vector come first; rescoring is exact.
    let req = |rescore| SearchRequest {
        collection: "q",
        vector: &distinct[3],
        k: 2,
        rescore,
        oversample: 4,
        include_metadata: false,
    };
    let out = e.vector_search(&req(true)).unwrap();
    let mut ids: Vec<&str> = out.results.iter().map(|h| h.id.as_str()).collect();
    ids.sort();
    assert_eq!(ids, ["v003", "v103"]);
    assert!((out.results[0].score - 1.0).abs() < 1e-5);
    assert_eq!(out.scanned, 40);
    // Re-encode to int4: the steps walk the 20 distinct vectors.
    e.reencode_start("q", Quantization::Int4, false).unwrap();
    let mut seen = 0;
    loop {
        let s = e.reencode_step("q", 7).unwrap();
        seen += s.seen;
        if s.finished {
            break;
        }
    }
    assert_eq!(seen, 20);
    // Every id reads its vector as the new int4 calibration codes it
    // (from the kept original).
    let generation = e.collection_get("q").unwrap().unwrap().calibration.unwrap();
    let q = e.calibration("q", generation).unwrap();
    for (i, v) in distinct.iter().enumerate() {
        let mut code = Vec::new();
        q.encode(v, &mut code);
        let want = q.decode(&code).unwrap();
        for id in [format!("v{i:03}"), format!("v{:03}", 100 + i)] {
            assert_eq!(get(&e, "q", &id), Some(want.clone()), "{id}");
        }
    }
    assert_eq!(e.unique_vectors("q").unwrap(), 20);
    assert_eq!(count(&e, "q", &distinct[5]), 2);
}

#[test]
fn concurrent_writers_never_count_from_the_same_reading() {
    let (_dir, e) = f32_store();
    let pool: Arc<Vec<Vec<f32>>> = Arc::new((0..4).map(|i| vec![i as f32; DIM]).collect());
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let (e, pool) = (e.clone(), pool.clone());
            std::thread::spawn(move || {
                let mut x = t * 7919 + 1;
                for _ in 0..300 {
                    x = x
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    let id = format!("i{}", (x >> 33) % 12);
                    let v = &pool[((x >> 20) % 4) as usize];
                    if (x >> 50) % 4 == 0 {
                        e.vector_delete("c", &[id]).unwrap();
                    } else {
                        put(&e, "c", &[(&id, v)]);
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    // Every count equals the ids that refer to its vector, and a vector is
    // stored exactly when something refers to it.
    let ids: Vec<String> = (0..12).map(|i| format!("i{i}")).collect();
    let (found, _) = e.vector_get("c", &ids, true, VectorFormat::Floats).unwrap();
    for v in pool.iter() {
        let refs = found
            .iter()
            .filter(|o| o.vector.as_deref() == Some(&v[..]))
            .count() as u64;
        assert_eq!(count(&e, "c", v), refs, "vector {}", v[0]);
        assert_eq!(stored(&e, Cf::Vectors, "c", v), refs > 0, "vector {}", v[0]);
    }
}

#[test]
fn a_vector_brought_again_after_a_lossy_re_encode_is_stored_exactly_again() {
    let (_dir, e) = open_temp(ManualClock::new(0));
    let dim = 16;
    create(
        &e,
        "q",
        dim,
        Metric::Dot,
        dedup(Quantization::Int8, Originals::Drop, 4),
    );
    let vs = vectors(6, dim, 5);
    let items: Vec<(String, &[f32])> = vs
        .iter()
        .enumerate()
        .map(|(i, v)| (format!("a{i}"), &v[..]))
        .collect();
    let refs: Vec<(&str, &[f32])> = items.iter().map(|(id, v)| (id.as_str(), *v)).collect();
    put(&e, "q", &refs);
    // Back to f32 without originals: the stored vectors are the int8
    // approximations.
    e.reencode_start("q", Quantization::None, false).unwrap();
    while !e.reencode_step("q", 100).unwrap().finished {}
    let approx = get(&e, "q", "a2").unwrap();
    assert_ne!(approx, vs[2], "int8 is lossy");
    // The exact vector again, under a new id: both ids now read it exactly.
    put(&e, "q", &[("b2", &vs[2])]);
    assert_eq!(get(&e, "q", "b2"), Some(vs[2].clone()));
    assert_eq!(get(&e, "q", "a2"), Some(vs[2].clone()));
    assert_eq!(count(&e, "q", &vs[2]), 2);
}
