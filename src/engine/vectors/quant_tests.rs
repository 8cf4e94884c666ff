//! Quantized collections through the engine: calibration at the sample,
//! codes on disk, originals, reads, search and rescoring.

use super::*;
use crate::clock::ManualClock;
use crate::engine::testutil::open_temp;
use crate::error::ErrorKind;
use crate::quant::Quantization;
use serde_json::json;

/// Deterministic pseudo-random vectors in [-1, 1).
pub(super) fn vectors(n: usize, dim: usize, seed: u64) -> Vec<Vec<f32>> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            (0..dim)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    (x >> 40) as f32 / (1u64 << 23) as f32 - 1.0
                })
                .collect()
        })
        .collect()
}

pub(super) fn upsert(e: &Engine, c: &str, from: usize, vs: &[Vec<f32>]) {
    let items: Vec<VectorInput> = vs
        .iter()
        .enumerate()
        .map(|(i, v)| {
            serde_json::from_value(json!({"id": format!("v{:05}", from + i), "vector": v})).unwrap()
        })
        .collect();
    e.vector_upsert(c, &items).unwrap();
}

pub(super) fn create(
    e: &Engine,
    name: &str,
    dim: usize,
    metric: Metric,
    storage: Storage,
) -> CollectionInfo {
    e.collection_create_with(name, dim, metric, storage)
        .unwrap()
        .0
}

pub(super) fn storage(q: Quantization, originals: Originals, sample: usize) -> Storage {
    Storage {
        quantization: q,
        originals,
        calibration_sample: sample,
        dedup: false,
    }
}

/// The codec bytes of every stored value of a collection.
pub(super) fn codecs(e: &Engine, c: &str) -> Vec<u8> {
    let prefix = crate::engine::group_prefix(c);
    e.db()
        .prefix_iterator_cf(e.cf(Cf::Vectors), &prefix)
        .map(|r| r.unwrap())
        .take_while(|(k, _)| k.starts_with(&prefix))
        .map(|(_, v)| v[0])
        .collect()
}

fn originals(e: &Engine) -> usize {
    e.db()
        .iterator_cf(e.cf(Cf::Originals), rocksdb::IteratorMode::Start)
        .count()
}

#[test]
fn the_upsert_that_reaches_the_sample_calibrates_and_re_encodes_everything() {
    let (dir, e) = open_temp(ManualClock::new(0));
    let info = create(
        &e,
        "q",
        16,
        Metric::Cosine,
        storage(Quantization::Int8, Originals::Keep, 40),
    );
    assert_eq!(info.calibration, None);
    let vs = vectors(60, 16, 7);
    upsert(&e, "q", 0, &vs[..30]);
    assert!(
        codecs(&e, "q").iter().all(|&c| c == Codec::F32Le as u8),
        "f32 before the sample"
    );
    assert_eq!(originals(&e), 0);
    upsert(&e, "q", 30, &vs[30..50]);
    let info = e.collection_get("q").unwrap().unwrap();
    assert_eq!(info.calibration, Some(0));
    let stored = codecs(&e, "q");
    assert_eq!(stored.len(), 50);
    assert!(
        stored.iter().all(|&c| c == Codec::Quantized as u8),
        "all re-encoded"
    );
    assert_eq!(originals(&e), 50, "the f32 kept");
    upsert(&e, "q", 50, &vs[50..]);
    assert_eq!(originals(&e), 60);
    assert!(codecs(&e, "q").iter().all(|&c| c == Codec::Quantized as u8));

    // Reads dequantize: within half a step of the original.
    let q = e.calibration("q", 0).unwrap();
    let ids: Vec<String> = (0..60).map(|i| format!("v{i:05}")).collect();
    let (found, missing) = e.vector_get("q", &ids, true, VectorFormat::Floats).unwrap();
    assert!(missing.is_empty());
    for (out, v) in found.iter().zip(&vs) {
        let got = out.vector.as_ref().unwrap();
        for d in 0..16 {
            // Vectors after the sample may fall outside its ranges: clipped.
            let x = v[d].clamp(q.lo[d], q.lo[d] + 255.0 * q.step[d]);
            assert!(
                (got[d] - x).abs() <= q.step[d] / 2.0 + 1e-6,
                "{} dim {d}",
                out.id
            );
        }
    }
    let (raw, _) = e
        .vector_get("q", &ids[..1], true, VectorFormat::Raw)
        .unwrap();
    assert_eq!(raw[0].calibration, Some(0));
    let codes = base64::engine::general_purpose::STANDARD
        .decode(raw[0].codes_b64.as_ref().unwrap())
        .unwrap();
    assert_eq!(codes.len(), 16);
    // Raw gives the codes the ranges decode (lo + c·step), not the
    // zigzag bytes stored.
    let decoded: Vec<f32> = codes
        .iter()
        .enumerate()
        .map(|(d, &c)| (f64::from(q.lo[d]) + f64::from(c) * f64::from(q.step[d])) as f32)
        .collect();
    assert_eq!(decoded, found[0].vector.clone().unwrap());

    // The calibration survives a reopen.
    drop(e);
    let config = crate::config::Config {
        data_dir: dir.path().to_path_buf(),
        sync: "never".into(),
        ..Default::default()
    };
    let e = Engine::open(&config, std::sync::Arc::new(ManualClock::new(0))).unwrap();
    let (again, _) = e.vector_get("q", &ids, true, VectorFormat::Floats).unwrap();
    assert_eq!(again, found);
}

#[test]
fn dropped_originals_store_only_codes_and_deletes_take_the_originals() {
    let (_d, e) = open_temp(ManualClock::new(0));
    create(
        &e,
        "drop",
        8,
        Metric::Dot,
        storage(Quantization::Int4, Originals::Drop, 10),
    );
    create(
        &e,
        "keep",
        8,
        Metric::Dot,
        storage(Quantization::Int4, Originals::Keep, 10),
    );
    let vs = vectors(20, 8, 3);
    upsert(&e, "drop", 0, &vs);
    assert_eq!(originals(&e), 0);
    upsert(&e, "keep", 0, &vs);
    assert_eq!(originals(&e), 20);
    let gone: Vec<String> = (0..5).map(|i| format!("v{i:05}")).collect();
    assert_eq!(e.vector_delete("keep", &gone).unwrap(), 5);
    assert_eq!(originals(&e), 15);
    // int4 codes: 8 dims in 4 bytes, after the codec and generation bytes.
    let (raw, _) = e
        .vector_get("drop", &gone[..1], true, VectorFormat::Raw)
        .unwrap();
    let codes = base64::engine::general_purpose::STANDARD
        .decode(raw[0].codes_b64.as_ref().unwrap())
        .unwrap();
    assert_eq!(codes.len(), 4);
}

#[test]
fn f16_needs_no_sample() {
    let (_d, e) = open_temp(ManualClock::new(0));
    let info = create(
        &e,
        "h",
        4,
        Metric::Euclidean,
        storage(Quantization::F16, Originals::Drop, 1024),
    );
    assert_eq!(info.calibration, Some(0));
    upsert(&e, "h", 0, &[vec![0.5, -1.25, 3.0, 1000.0]]);
    assert_eq!(codecs(&e, "h"), vec![Codec::Quantized as u8]);
    let (found, _) = e
        .vector_get("h", &["v00000".into()], true, VectorFormat::Floats)
        .unwrap();
    assert_eq!(
        found[0].vector.as_deref(),
        Some(&[0.5, -1.25, 3.0, 1000.0][..])
    );
}

#[test]
fn settings_that_do_not_fit_are_refused() {
    let (_d, e) = open_temp(ManualClock::new(0));
    let err = e
        .collection_create_with(
            "b",
            8,
            Metric::Cosine,
            storage(Quantization::Int8, Originals::Keep, 0),
        )
        .unwrap_err();
    assert!(err.message.contains("calibration_sample 0"), "{err}");
    create(
        &e,
        "c",
        8,
        Metric::Cosine,
        storage(Quantization::Int8, Originals::Keep, 10),
    );
    let err = e
        .collection_create_with(
            "c",
            8,
            Metric::Cosine,
            storage(Quantization::Int4, Originals::Keep, 10),
        )
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::AlreadyExists);
    assert!(err.message.contains("quantization int8"), "{err}");
    assert_eq!(e.collection_list().unwrap().len(), 1, "nothing created");
}

fn search(e: &Engine, c: &str, q: &[f32], k: usize, rescore: bool) -> Result<SearchOut> {
    e.vector_search(&SearchRequest {
        collection: c,
        vector: q,
        k,
        rescore,
        oversample: 4,
        include_metadata: false,
    })
}

fn ids(out: &SearchOut) -> Vec<String> {
    out.results.iter().map(|h| h.id.clone()).collect()
}

/// The exact top k by brute force over the f32 vectors.
fn exact(vs: &[Vec<f32>], q: &[f32], k: usize, metric: Metric) -> Vec<String> {
    let score = |v: &[f32]| {
        let dot: f32 = v.iter().zip(q).map(|(a, b)| a * b).sum();
        let n = |x: &[f32]| x.iter().map(|a| a * a).sum::<f32>().sqrt();
        match metric {
            Metric::Dot => dot,
            Metric::Cosine => dot / (n(v) * n(q)),
            Metric::Euclidean => -v.iter().zip(q).map(|(a, b)| (a - b) * (a - b)).sum::<f32>(),
        }
    };
    let mut idx: Vec<usize> = (0..vs.len()).collect();
    idx.sort_by(|&a, &b| score(&vs[b]).total_cmp(&score(&vs[a])));
    idx.into_iter()
        .take(k)
        .map(|i| format!("v{i:05}"))
        .collect()
}

#[test]
fn search_is_exact_on_f32_and_rescoring_restores_the_exact_order() {
    let (_d, e) = open_temp(ManualClock::new(0));
    let vs = vectors(400, 24, 11);
    let queries = vectors(20, 24, 99);
    for metric in [Metric::Cosine, Metric::Euclidean, Metric::Dot] {
        let plain = format!("plain-{metric:?}");
        let coded = format!("int4-{metric:?}");
        e.collection_create(&plain, 24, metric).unwrap();
        create(
            &e,
            &coded,
            24,
            metric,
            storage(Quantization::Int4, Originals::Keep, 100),
        );
        upsert(&e, &plain, 0, &vs);
        upsert(&e, &coded, 0, &vs);
        let (mut approx_hits, mut rescored_hits) = (0, 0);
        for q in &queries {
            let want = exact(&vs, q, 10, metric);
            let got = search(&e, &plain, q, 10, false).unwrap();
            assert_eq!(ids(&got), want, "{metric:?}: f32 search is exact");
            assert_eq!(got.scanned, 400);
            let approx = search(&e, &coded, q, 10, false).unwrap();
            assert!(!approx.rescored);
            approx_hits += ids(&approx).iter().filter(|i| want.contains(i)).count();
            let rescored = search(&e, &coded, q, 10, true).unwrap();
            assert!(rescored.rescored);
            rescored_hits += ids(&rescored).iter().filter(|i| want.contains(i)).count();
            if metric == Metric::Euclidean {
                let d0 = vs[want[0][1..].parse::<usize>().unwrap()]
                    .iter()
                    .zip(q)
                    .map(|(a, b)| (a - b) * (a - b))
                    .sum::<f32>()
                    .sqrt();
                assert!(
                    (got.results[0].score - d0).abs() < 1e-3,
                    "euclidean scores are distances"
                );
            }
        }
        // int4 on uniform noise loses some; the originals win them back.
        assert!(
            approx_hits < 200,
            "{metric:?}: int4 is not exact here ({approx_hits}/200)"
        );
        assert!(
            rescored_hits > approx_hits,
            "{metric:?}: {rescored_hits} vs {approx_hits}"
        );
        assert!(
            rescored_hits >= 190,
            "{metric:?}: rescored recall {rescored_hits}/200"
        );
    }
}

#[test]
fn search_sees_writes_and_refuses_bad_requests() {
    let (_d, e) = open_temp(ManualClock::new(0));
    create(
        &e,
        "s",
        4,
        Metric::Dot,
        storage(Quantization::Int8, Originals::Drop, 4),
    );
    upsert(&e, "s", 0, &vectors(8, 4, 5));
    let q = [1.0, 0.0, 0.0, 0.0];
    assert_eq!(search(&e, "s", &q, 3, false).unwrap().scanned, 8);
    upsert(&e, "s", 100, &vectors(1, 4, 77));
    let top = search(&e, "s", &q, 1, false).unwrap();
    assert_eq!(top.scanned, 9, "a new vector is searched at once");
    e.vector_delete("s", &ids(&top)).unwrap();
    let after = search(&e, "s", &q, 1, false).unwrap();
    assert_eq!(after.scanned, 8, "a deleted one is not");
    assert_ne!(ids(&after), ids(&top));

    let bad = |q: &[f32], k: usize, rescore: bool, want: &str| {
        let err = search(&e, "s", q, k, rescore).unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidInput, "{err}");
        assert!(err.message.contains(want), "{err} should say {want}");
    };
    bad(&[1.0, 2.0], 3, false, "dimension 2");
    bad(&[1.0, f32::NAN, 0.0, 0.0], 3, false, "vector[1]");
    bad(&q, 0, false, "k 0");
    bad(&q, 1001, false, "k 1001");
    bad(&q, 3, true, "originals = keep");
    let err = search(&e, "nope", &q, 3, false).unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotFound);
}

#[test]
fn a_collection_over_the_search_budget_is_refused_with_its_size() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = crate::config::Config {
        data_dir: dir.path().to_path_buf(),
        sync: "never".into(),
        ..Default::default()
    };
    config.limits.search_cache_mb = 1;
    let e = Engine::open(&config, std::sync::Arc::new(ManualClock::new(0))).unwrap();
    e.collection_create("big", 1024, Metric::Dot).unwrap();
    let vs = vectors(300, 1024, 1);
    upsert(&e, "big", 0, &vs);
    let err = search(&e, "big", &vs[0], 1, false).unwrap_err();
    assert!(
        err.message.contains("limits.search-cache-mb (1 MiB)"),
        "{err}"
    );
    assert_eq!(e.search_cache_bytes(), 0);
}

#[test]
fn a_stored_vector_of_the_wrong_dimension_is_corruption_not_a_panic() {
    let (_d, e) = open_temp(ManualClock::new(0));
    e.collection_create("c", 3, Metric::Cosine).unwrap();
    upsert(&e, "c", 0, &vectors(5, 3, 2));
    // Written behind the engine's back, as damage would be.
    e.db()
        .put_cf(e.cf(Cf::Vectors), b"c\0bad", codec::encode_f32(&[1.0, 2.0]))
        .unwrap();
    let err = search(&e, "c", &[1.0, 0.0, 0.0], 3, false).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Corruption, "{err}");
    assert!(err.message.contains("2 dimensions stored"), "{err}");
}
