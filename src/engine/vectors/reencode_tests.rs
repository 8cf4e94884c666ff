//! Changing a collection's quantization: every vector readable at every
//! step, vectors written during the job kept, the old records retired (and
//! their generations reused correctly), bad requests refused.

use super::quant_tests::{codecs, create, storage, upsert, vectors};
use super::*;
use crate::clock::ManualClock;
use crate::engine::testutil::open_temp;
use crate::error::ErrorKind;
use crate::quant::Quantization;

const DIM: usize = 32;

/// Every vector of `c` decoded, in id order.
fn all(e: &Engine, c: &str, n: usize) -> Vec<Vec<f32>> {
    let ids: Vec<String> = (0..n).map(|i| format!("v{i:05}")).collect();
    let (found, missing) = e.vector_get(c, &ids, true, VectorFormat::Floats).unwrap();
    assert!(missing.is_empty(), "missing {missing:?}");
    found.into_iter().map(|v| v.vector.unwrap()).collect()
}

fn max_error(a: &[Vec<f32>], b: &[Vec<f32>]) -> f32 {
    a.iter()
        .zip(b)
        .flat_map(|(x, y)| x.iter().zip(y).map(|(p, q)| (p - q).abs()))
        .fold(0.0, f32::max)
}

fn records(e: &Engine, c: &str) -> Vec<u8> {
    (0..=u8::MAX)
        .filter(|g| {
            e.get(Cf::Sys, super::quantized::quant_key(c, *g).as_bytes())
                .unwrap()
                .is_some()
        })
        .collect()
}

#[test]
fn f32_to_int8_step_by_step_with_every_vector_readable_throughout() {
    let (_dir, e) = open_temp(ManualClock::new(0));
    create(&e, "c", DIM, Metric::Cosine, Storage::default());
    let data = vectors(1500, DIM, 7);
    upsert(&e, "c", 0, &data);
    let info = e.reencode_start("c", Quantization::Int8, false).unwrap();
    assert_eq!(info.quantization, Quantization::Int8);
    assert_eq!(info.calibration, Some(0));
    let mut steps = 0;
    loop {
        // Between steps: a mix of f32 and codes, all readable.
        let got = all(&e, "c", data.len());
        assert!(max_error(&got, &data) < 0.02, "step {steps}");
        let s = e.reencode_step("c", 400).unwrap();
        steps += 1;
        if s.finished {
            break;
        }
        assert_eq!(s.seen, 400);
        let kinds = codecs(&e, "c");
        assert!(kinds.contains(&(crate::codec::Codec::F32Le as u8)));
        assert!(kinds.contains(&(crate::codec::Codec::Quantized as u8)));
    }
    assert_eq!(steps, 4);
    let info = e.collection_get("c").unwrap().unwrap();
    assert!(info.reencode.is_none());
    assert!(codecs(&e, "c")
        .iter()
        .all(|&c| c == crate::codec::Codec::Quantized as u8));
    // originals = keep (the default): the f32 kept, so a later change is exact.
    let n_orig = e
        .db()
        .iterator_cf(e.cf(Cf::Originals), rocksdb::IteratorMode::Start)
        .count();
    assert_eq!(n_orig, data.len());
}

#[test]
fn vectors_written_during_the_job_are_new_and_not_overwritten() {
    let (_dir, e) = open_temp(ManualClock::new(0));
    create(&e, "c", DIM, Metric::Cosine, Storage::default());
    let data = vectors(1200, DIM, 3);
    upsert(&e, "c", 0, &data);
    e.reencode_start("c", Quantization::Int8, false).unwrap();
    e.reencode_step("c", 100).unwrap();
    // Rewrite one vector the job has not reached, one it has, and delete one.
    let fresh = vectors(2, DIM, 99);
    upsert(&e, "c", 1100, &fresh[..1]);
    upsert(&e, "c", 10, &fresh[1..]);
    e.vector_delete("c", &["v00500".to_string()]).unwrap();
    while !e.reencode_step("c", 100).unwrap().finished {}
    let got = all(&e, "c", 500);
    assert!(max_error(&got[10..11], &fresh[1..]) < 0.02);
    let (late, _) = e
        .vector_get(
            "c",
            &["v01100".into(), "v00500".into()],
            true,
            VectorFormat::Floats,
        )
        .unwrap();
    assert_eq!(late.len(), 1, "the deleted vector stays deleted");
    assert!(max_error(&[late[0].vector.clone().unwrap()], &fresh[..1]) < 0.02);
}

#[test]
fn changes_back_and_forth_retire_records_and_reuse_generations_correctly() {
    let (_dir, e) = open_temp(ManualClock::new(0));
    create(
        &e,
        "c",
        DIM,
        Metric::Euclidean,
        storage(Quantization::Int8, Originals::Drop, 256),
    );
    let data = vectors(800, DIM, 11);
    upsert(&e, "c", 0, &data);
    assert_eq!(records(&e, "c"), vec![0]);
    let int8 = all(&e, "c", data.len());
    // int8 -> int4: from the codes (originals dropped), a new generation;
    // the old record stays until the next change (a reader that fetched
    // an old value just before the last step still decodes it).
    e.reencode_start("c", Quantization::Int4, false).unwrap();
    while !e.reencode_step("c", 300).unwrap().finished {}
    assert_eq!(records(&e, "c"), vec![0, 1]);
    let int4 = all(&e, "c", data.len());
    assert!(max_error(&int4, &data) > max_error(&int8, &data));
    assert!(max_error(&int4, &data) < 0.2);
    // int4 -> int8 again: generation 0 is retired at the start, and the
    // new one counts up from the current one.
    e.reencode_start("c", Quantization::Int8, false).unwrap();
    assert_eq!(records(&e, "c"), vec![1, 2]);
    while !e.reencode_step("c", 300).unwrap().finished {}
    let again = all(&e, "c", data.len());
    assert!(max_error(&again, &int4) < 0.02, "int8 of the int4 values");
    // -> none: f32 of what the codes held; only the last record is left.
    e.reencode_start("c", Quantization::None, false).unwrap();
    while !e.reencode_step("c", 300).unwrap().finished {}
    assert_eq!(records(&e, "c"), vec![2]);
    assert!(codecs(&e, "c")
        .iter()
        .all(|&c| c == crate::codec::Codec::F32Le as u8));
    assert!(max_error(&all(&e, "c", data.len()), &again) < 1e-6);
    // Back to int8: that record retired; from f32, with no record in use,
    // the count starts at 0 again, and the values decode right.
    e.reencode_start("c", Quantization::Int8, false).unwrap();
    while !e.reencode_step("c", 300).unwrap().finished {}
    assert_eq!(records(&e, "c"), vec![0]);
    assert!(max_error(&all(&e, "c", data.len()), &again) < 0.02);
}

#[test]
fn a_collection_under_its_sample_goes_back_to_f32_until_it_is_reached() {
    let (_dir, e) = open_temp(ManualClock::new(0));
    create(
        &e,
        "c",
        DIM,
        Metric::Cosine,
        storage(Quantization::F16, Originals::Keep, 100),
    );
    let data = vectors(60, DIM, 5);
    upsert(&e, "c", 0, &data);
    let info = e.reencode_start("c", Quantization::Int6, false).unwrap();
    assert_eq!(info.calibration, None, "60 vectors of a sample of 100");
    while !e.reencode_step("c", 50).unwrap().finished {}
    assert!(codecs(&e, "c")
        .iter()
        .all(|&c| c == crate::codec::Codec::F32Le as u8));
    assert_eq!(records(&e, "c"), vec![0], "f16's record, unused now");
    // The upsert that reaches the sample calibrates, as for a new collection.
    upsert(&e, "c", 60, &vectors(40, DIM, 6));
    let info = e.collection_get("c").unwrap().unwrap();
    assert_eq!(info.calibration, Some(1));
    assert!(codecs(&e, "c")
        .iter()
        .all(|&c| c == crate::codec::Codec::Quantized as u8));
}

#[test]
fn bad_requests_are_refused_and_change_nothing() {
    let (_dir, e) = open_temp(ManualClock::new(0));
    create(&e, "c", 12, Metric::Cosine, Storage::default());
    upsert(&e, "c", 0, &vectors(20, 12, 1));
    let before = e.collection_get("c").unwrap().unwrap();
    for (q, recal, says) in [
        (Quantization::None, false, "already none"),
        (Quantization::None, true, "recalibrate re-derives"),
    ] {
        let err = e.reencode_start("c", q, recal).unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidInput);
        assert!(err.message.contains(says), "{err}");
    }
    let err = e
        .reencode_start("missing", Quantization::Int8, false)
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotFound);
    // A second change while one runs names the running one.
    e.reencode_start("c", Quantization::Int8, false).unwrap();
    let err = e
        .reencode_start("c", Quantization::Int4, false)
        .unwrap_err();
    assert!(err.message.contains("being re-encoded"), "{err}");
    let resumed = e.reencode_start("c", Quantization::Int8, false).unwrap();
    assert_eq!(resumed.quantization, Quantization::Int8);
    assert_ne!(resumed, before);
    assert_eq!(e.reencodes_pending().unwrap().len(), 1);
}

#[test]
fn the_f32_expansion_follows_what_the_files_hold() {
    let (_dir, e) = open_temp(ManualClock::new(0));
    create(
        &e,
        "q",
        DIM,
        Metric::Cosine,
        storage(Quantization::Int8, Originals::Drop, 100),
    );
    upsert(&e, "q", 0, &vectors(2000, DIM, 2));
    assert_eq!(
        e.f32_expansion().unwrap(),
        1.0,
        "nothing in table files yet"
    );
    e.flush().unwrap();
    let int8 = (1 + 4 * DIM) as f64 / (2 + DIM) as f64;
    let x = e.f32_expansion().unwrap();
    assert!((x / int8 - 1.0).abs() < 0.01, "{x} vs {int8}");
    // Back to f32: nothing to expand.
    e.reencode_start("q", Quantization::None, false).unwrap();
    while !e.reencode_step("q", 1000).unwrap().finished {}
    e.flush().unwrap();
    e.compact(Cf::Vectors);
    let x = e.f32_expansion().unwrap();
    assert!((x - 1.0).abs() < 0.01, "{x}");
}

#[test]
fn upserts_and_deletes_racing_the_job_end_in_the_new_format() {
    let (_dir, e) = open_temp(ManualClock::new(0));
    create(&e, "c", DIM, Metric::Cosine, Storage::default());
    let data = vectors(2000, DIM, 21);
    upsert(&e, "c", 0, &data);
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            let fresh = vectors(50, DIM, 77);
            let mut round = 0usize;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                // Rewrite a moving window of ids, and delete then restore one.
                let from = (round * 37) % 1950;
                upsert(&e, "c", from, &fresh);
                e.vector_delete("c", &[format!("v{:05}", from + 60)])
                    .unwrap();
                upsert(&e, "c", from + 60, &data[from + 60..from + 61]);
                round += 1;
            }
        });
        for q in [Quantization::Int8, Quantization::Int4, Quantization::F16] {
            e.reencode_start("c", q, false).unwrap();
            while !e.reencode_step("c", 128).unwrap().finished {}
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    // Every value is in the last format's generation (none left in an
    // older one, whose record the next change would retire), and decodes.
    let info = e.collection_get("c").unwrap().unwrap();
    let g = info.calibration.unwrap();
    let prefix = crate::engine::group_prefix("c");
    let mut n = 0;
    for kv in e.db().prefix_iterator_cf(e.cf(Cf::Vectors), &prefix) {
        let (k, v) = kv.unwrap();
        if !k.starts_with(&prefix) {
            break;
        }
        assert_eq!(&v[..2], &[crate::codec::Codec::Quantized as u8, g], "{k:?}");
        n += 1;
    }
    assert_eq!(n, data.len());
    all(&e, "c", data.len());
}
