use proptest::prelude::*;

use super::*;
use crate::error::ErrorKind;

fn ramp_sample(dim: usize, n: usize) -> Vec<Vec<f32>> {
    (0..n)
        .map(|r| {
            (0..dim)
                .map(|d| ((r * 7 + d * 13) % 101) as f32 / 100.0 - 0.5 + d as f32)
                .collect()
        })
        .collect()
}

fn refs(v: &[Vec<f32>]) -> Vec<&[f32]> {
    v.iter().map(Vec::as_slice).collect()
}

proptest! {
    #[test]
    fn codes_pack_and_unpack_to_themselves(
        bits in prop::sample::select(vec![1u32, 4, 6, 8]),
        codes in prop::collection::vec(any::<u8>(), 1..70),
    ) {
        let kind = match bits { 1 => Quantization::Binary, 4 => Quantization::Int4, 6 => Quantization::Int6, _ => Quantization::Int8 };
        let codes: Vec<u8> = codes.iter().map(|c| (u32::from(*c) & ((1 << bits) - 1)) as u8).collect();
        let mut packed = Vec::new();
        let mut p = Packer::new(bits, &mut packed);
        codes.iter().for_each(|&c| p.push(u32::from(c)));
        p.finish();
        prop_assert_eq!(packed.len(), kind.code_len(codes.len()));
        let q = Quantizer { kind, dimension: codes.len(), lo: vec![0.0; codes.len()], step: vec![1.0; codes.len()], sample: 1, centre: vec![] };
        let mut out = vec![0u8; codes.len()];
        q.unpack_into(&packed, &mut out).unwrap();
        prop_assert_eq!(out, codes);
    }
}

#[test]
fn scalar_codes_come_back_within_half_a_step() {
    let dim = 12;
    let sample = ramp_sample(dim, 300);
    for kind in [Quantization::Int8, Quantization::Int6, Quantization::Int4] {
        let q = Quantizer::calibrate(kind, dim, &refs(&sample)).unwrap();
        for v in &sample {
            let mut code = Vec::new();
            q.encode(v, &mut code);
            assert_eq!(code.len(), kind.code_len(dim));
            let back = q.decode(&code).unwrap();
            for d in 0..dim {
                let hi = q.lo[d] + q.step[d] * ((1u32 << kind.bits().unwrap()) - 1) as f32;
                let x = v[d].clamp(q.lo[d], hi);
                assert!(
                    (back[d] - x).abs() <= q.step[d] / 2.0 + 1e-5,
                    "{kind} dim {d}: {x} came back as {}",
                    back[d]
                );
            }
        }
    }
}

#[test]
fn values_outside_the_ranges_are_clipped_and_counted() {
    let dim = 4;
    let sample = ramp_sample(dim, 100);
    let q = Quantizer::calibrate(Quantization::Int8, dim, &refs(&sample)).unwrap();
    let mut inside = Vec::new();
    assert_eq!(q.encode(&sample[3], &mut inside), 0);
    let far = vec![1e6, -1e6, sample[0][2], sample[0][3]];
    let mut code = Vec::new();
    assert_eq!(q.encode(&far, &mut code), 2, "two values fell outside");
    let back = q.decode(&code).unwrap();
    let top = q.lo[0] + 255.0 * q.step[0];
    assert!(
        (back[0] - top).abs() < 1e-5,
        "clipped to the top: {}",
        back[0]
    );
    assert_eq!(back[1], q.lo[1], "clipped to the bottom");
}

#[test]
fn f16_keeps_three_significant_digits_and_needs_no_sample() {
    let q = Quantizer::calibrate(Quantization::F16, 3, &[]).unwrap();
    let v = [0.123_456, -3.5, 1000.25];
    let mut code = Vec::new();
    q.encode(&v, &mut code);
    assert_eq!(code.len(), 6);
    let back = q.decode(&code).unwrap();
    for (a, b) in v.iter().zip(&back) {
        assert!((a - b).abs() <= a.abs() * 1e-3, "{a} came back as {b}");
    }
    // Beyond half's range: clipped to its largest finite value, counted.
    let mut code = Vec::new();
    assert_eq!(q.encode(&[1e6, -1e9, 1.0], &mut code), 2);
    assert_eq!(q.decode(&code).unwrap(), vec![65504.0, -65504.0, 1.0]);
}

#[test]
fn binary_says_which_side_of_the_mean() {
    let sample = vec![vec![0.0, 10.0], vec![2.0, 20.0], vec![4.0, 30.0]];
    let q = Quantizer::calibrate(Quantization::Binary, 2, &refs(&sample)).unwrap();
    assert!(
        (q.lo[0] + q.step[0] / 2.0 - 2.0).abs() < 1e-6,
        "threshold is the mean"
    );
    let mut code = Vec::new();
    q.encode(&[3.0, 5.0], &mut code);
    assert_eq!(code, vec![0b01]);
    let back = q.decode(&code).unwrap();
    // mean ± mean absolute deviation (4/3 and 20/3)
    assert!((back[0] - (2.0 + 4.0 / 3.0)).abs() < 1e-5, "{back:?}");
    assert!((back[1] - (20.0 - 20.0 / 3.0)).abs() < 1e-4, "{back:?}");
}

#[test]
fn bad_input_is_refused_with_the_reason() {
    let e = "int7".parse::<Quantization>().unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidInput);
    assert!(e.message.contains("int8, int6, int4, binary"), "{e}");
    let e = Quantizer::calibrate(Quantization::Int8, 3, &[&[1.0, 2.0][..]]).unwrap_err();
    assert!(e.message.contains("2 dimensions, expected 3"), "{e}");
    let e = Quantizer::calibrate(Quantization::Int8, 2, &[&[1.0, f32::NAN][..]]).unwrap_err();
    assert!(e.message.contains("non-finite"), "{e}");
    assert!(Quantizer::calibrate(Quantization::Int4, 2, &[]).is_err());
    assert!(Quantization::Int8.check_dimension(0).is_err());
    let pad = Quantization::Binary.check_dimension(10).unwrap().unwrap();
    assert!(pad.contains("padded to 16 bits"), "{pad}");
    assert_eq!(Quantization::Binary.check_dimension(16).unwrap(), None);

    let q = Quantizer::calibrate(Quantization::Int6, 4, &refs(&ramp_sample(4, 9))).unwrap();
    let e = q.decode(&[0u8; 4]).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Corruption);
    assert!(e.message.contains("is 3 bytes, found 4"), "{e}");
}

#[test]
fn calibration_records_round_trip_and_refuse_damage() {
    let q = Quantizer::calibrate(Quantization::Int4, 5, &refs(&ramp_sample(5, 40))).unwrap();
    let bytes = q.to_bytes();
    assert_eq!(Quantizer::from_bytes(&bytes).unwrap(), q);
    for bad in [&bytes[..bytes.len() - 1], &bytes[..5], &[9u8, 4][..]] {
        let e = Quantizer::from_bytes(bad).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Corruption, "{e}");
    }
    let f = Quantizer::uncalibrated(Quantization::F16, 7);
    assert_eq!(Quantizer::from_bytes(&f.to_bytes()).unwrap(), f);
}

#[test]
fn a_prepared_query_scores_codes_as_their_decoded_vectors() {
    let dim = 19;
    let sample = ramp_sample(dim, 50);
    let query: Vec<f32> = (0..dim).map(|d| (d as f32 * 0.37).sin()).collect();
    for kind in [
        Quantization::Int8,
        Quantization::Int6,
        Quantization::Int4,
        Quantization::Binary,
    ] {
        let q = Quantizer::calibrate(kind, dim, &refs(&sample)).unwrap();
        let p = q.prepare(&query);
        for v in sample.iter().take(10) {
            let mut code = Vec::new();
            q.encode(v, &mut code);
            let mut codes = vec![0u8; dim];
            q.unpack_into(&code, &mut codes).unwrap();
            let want = dot_f32(&query, &q.decode(&code).unwrap());
            let got = p.dot(&codes);
            assert!(
                (want - got).abs() <= 1e-3 * want.abs().max(1.0),
                "{kind}: {got} vs {want}"
            );
        }
    }
}

/// Recall@10 of cosine search over the codes (the query stays f32, each
/// code is scored as its decoded vector) against exact f32 search, on real
/// MiniLM embeddings, calibrated on every 5th base vector.
#[test]
fn recall_at_10_on_minilm_embeddings() {
    let dir = crate::npy::minilm_dev();
    let base = crate::npy::load(&dir.join("base.npy")).unwrap();
    let queries = crate::npy::load(&dir.join("queries.npy")).unwrap();
    let dim = base.dim;
    let sample: Vec<&[f32]> = (0..base.rows).step_by(5).map(|i| base.row(i)).collect();
    let top10 = |scores: &[f32]| {
        let mut idx: Vec<usize> = (0..scores.len()).collect();
        idx.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
        idx.truncate(10);
        idx
    };
    let exact: Vec<Vec<usize>> = (0..queries.rows)
        .map(|qi| {
            let s: Vec<f32> = (0..base.rows)
                .map(|i| dot_f32(queries.row(qi), base.row(i)))
                .collect();
            top10(&s)
        })
        .collect();
    for (kind, floor) in [
        (Quantization::Int8, 0.99),
        (Quantization::Int6, 0.975),
        (Quantization::Int4, 0.92),
    ] {
        let q = Quantizer::calibrate(kind, dim, &sample).unwrap();
        let mut codes = vec![0u8; base.rows * dim];
        let mut norms = Vec::with_capacity(base.rows);
        for i in 0..base.rows {
            let mut code = Vec::new();
            q.encode(base.row(i), &mut code);
            q.unpack_into(&code, &mut codes[i * dim..(i + 1) * dim])
                .unwrap();
            let d = q.decode(&code).unwrap();
            norms.push(dot_f32(&d, &d).sqrt());
        }
        let mut hits = 0;
        for (qi, want) in exact.iter().enumerate() {
            let p = q.prepare(queries.row(qi));
            let s: Vec<f32> = (0..base.rows)
                .map(|i| p.dot(&codes[i * dim..(i + 1) * dim]) / norms[i])
                .collect();
            hits += top10(&s).iter().filter(|i| want.contains(i)).count();
        }
        let recall = hits as f64 / (10 * queries.rows) as f64;
        eprintln!("{kind}: recall@10 {recall:.4}");
        assert!(recall >= floor, "{kind}: recall@10 {recall:.4} < {floor}");
    }
}

#[test]
fn a_dimension_constant_in_the_sample_still_codes_later_values() {
    let sample = vec![vec![0.5, 0.0], vec![0.5, 1.0], vec![0.5, 2.0]];
    for kind in [Quantization::Int8, Quantization::Int4, Quantization::Binary] {
        let q = Quantizer::calibrate(kind, 2, &refs(&sample)).unwrap();
        assert!(
            q.step[0] > 0.0,
            "{kind}: a zero step would code everything as 0.5"
        );
        let (mut a, mut b) = (Vec::new(), Vec::new());
        q.encode(&[0.9, 1.0], &mut a);
        q.encode(&[0.1, 1.0], &mut b);
        assert_ne!(a, b, "{kind}: 0.9 and 0.1 differ in the constant dimension");
    }
    // Huge but finite values: the range stays finite, nothing decodes to NaN.
    let wide = vec![vec![-3e38], vec![3e38]];
    let q = Quantizer::calibrate(Quantization::Int8, 1, &refs(&wide)).unwrap();
    let mut code = Vec::new();
    q.encode(&[1e38], &mut code);
    assert!(q.decode(&code).unwrap()[0].is_finite());
}

#[test]
fn zigzag_is_a_bijection_that_keeps_small_differences_small() {
    let mut seen = [false; 256];
    for d in 0..=255u8 {
        let z = zigzag(d);
        assert_eq!(unzigzag(z), d);
        seen[z as usize] = true;
    }
    assert!(seen.iter().all(|s| *s));
    assert_eq!(
        [zigzag(0), zigzag(255), zigzag(1), zigzag(254)],
        [0, 1, 2, 3]
    );
}

#[test]
fn int8_codes_are_stored_around_the_centre_and_unpack_to_the_codes() {
    let dim = 12;
    let sample = ramp_sample(dim, 300);
    let q = Quantizer::calibrate(Quantization::Int8, dim, &refs(&sample)).unwrap();
    assert_eq!(q.centre.len(), dim);
    let mut code = Vec::new();
    q.encode(&sample[150], &mut code);
    let mut codes = vec![0u8; dim];
    q.unpack_into(&code, &mut codes).unwrap();
    for d in 0..dim {
        let want = ((sample[150][d] as f64 - q.lo[d] as f64) / q.step[d] as f64).round();
        assert_eq!(f64::from(codes[d]), want.clamp(0.0, 255.0), "dim {d}");
    }
    // The sample's median in every dimension is stored as zero bytes.
    let median: Vec<f32> = (0..dim)
        .map(|d| {
            let mut c: Vec<f32> = sample.iter().map(|v| v[d]).collect();
            c.sort_by(f32::total_cmp);
            c[c.len() / 2]
        })
        .collect();
    let mut stored = Vec::new();
    q.encode(&median, &mut stored);
    assert_eq!(stored, vec![0u8; dim]);
    // The record keeps the centre (version 2); one without (version 1,
    // written before it existed) reads with none, codes as they are.
    let back = Quantizer::from_bytes(&q.to_bytes()).unwrap();
    assert_eq!(back, q);
    let mut v1 = q.clone();
    v1.centre.clear();
    let bytes = v1.to_bytes();
    assert_eq!(bytes[0], 1);
    assert_eq!(Quantizer::from_bytes(&bytes).unwrap(), v1);
    let mut wrong = q.to_bytes();
    wrong.pop();
    assert!(Quantizer::from_bytes(&wrong).is_err());
}

#[test]
fn ends_kept_at_the_sample_extremes_move_out_by_the_gap() {
    // Uniform values: the least error keeps the extremes (nothing to clip).
    let column: Vec<f32> = (0..=100).map(|i| i as f32).collect();
    let (lo, step) = best_range(&column, 255.0, true);
    assert_eq!(lo, -1.0);
    assert!(
        (lo + 255.0 * step - 101.0).abs() < 1e-3,
        "hi {}",
        lo + 255.0 * step
    );
    // Not asked to: the sample's own ends.
    let (lo, step) = best_range(&column, 63.0, false);
    assert_eq!((lo, lo + 63.0 * step), (0.0, 100.0));
    // A tail worth clipping (10 of 10,010 values at twice the rest): the
    // ends are sample values, not moved.
    let mut tail: Vec<f32> = (0..10_000).map(|i| i as f32 / 10_000.0).collect();
    tail.extend(std::iter::repeat_n(2.0, 10));
    let (lo, step) = best_range(&tail, 15.0, true);
    let hi = lo + 15.0 * step;
    assert!(lo >= 0.0 && hi <= 1.0, "clipped to [{lo}, {hi}]");
}

#[test]
fn ends_near_the_largest_float_are_not_moved_past_it() {
    let big = f32::MAX / 2.0 * 0.99;
    let column: Vec<f32> = (0..=100)
        .map(|i| -big + (i as f32) * (big / 50.0))
        .collect();
    assert!(column.iter().all(|x| x.is_finite()));
    let (lo, step) = best_range(&column, 255.0, true);
    let hi = f64::from(lo) + 255.0 * f64::from(step);
    assert!(
        lo.is_finite() && step.is_finite() && hi <= f64::from(f32::MAX),
        "{lo} {step}"
    );
    let sample: Vec<Vec<f32>> = column.iter().map(|&x| vec![x]).collect();
    let q = Quantizer::calibrate(Quantization::Int8, 1, &refs(&sample)).unwrap();
    let mut code = Vec::new();
    q.encode(&[big], &mut code);
    assert!(q.decode(&code).unwrap()[0].is_finite());
}
