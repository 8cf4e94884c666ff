use proptest::prelude::*;

use super::*;

const COLUMNS: [Column; 4] = [
    Column {
        name: "a",
        decimals: 0,
    },
    Column {
        name: "b",
        decimals: 3,
    },
    Column {
        name: "c",
        decimals: 1,
    },
    Column {
        name: "d",
        decimals: 9,
    },
];

/// Encode points as one chunk: the start, then one append per point.
fn encode(columns: &[Column], points: &[Point]) -> (Vec<u8>, Writer) {
    let (mut w, mut bytes) = Writer::start(columns, &points[0]).unwrap();
    for p in &points[1..] {
        bytes.extend(w.push(p).unwrap());
    }
    (bytes, w)
}

fn value() -> impl Strategy<Value = Option<f64>> {
    prop_oneof![
        1 => Just(None),
        1 => Just(Some(f64::NAN)),
        4 => (-1e6f64..1e6).prop_map(Some),
        2 => (0u32..5).prop_map(|x| Some(f64::from(x))),
    ]
}

fn points(columns: usize) -> impl Strategy<Value = Vec<Point>> {
    (
        any::<i64>(),
        prop::collection::vec(
            (any::<i64>(), prop::collection::vec(value(), columns)),
            1..60,
        ),
    )
        .prop_map(|(start, steps)| {
            let mut at = start;
            steps
                .into_iter()
                .enumerate()
                .map(|(i, (step, values))| {
                    // Mostly steady ticks with jitter; sometimes anything.
                    if i > 0 {
                        at = if step % 7 == 0 {
                            step
                        } else {
                            at.wrapping_add(10_000 + step % 50)
                        };
                    }
                    Point { at_ms: at, values }
                })
                .collect()
        })
}

proptest! {
    #[test]
    fn timestamps_round_trip_exactly_and_values_within_half_a_unit(ps in points(4)) {
        let (bytes, writer) = encode(&COLUMNS, &ps);
        let chunk = decode(&bytes).unwrap();
        prop_assert!(chunk.has_columns(&COLUMNS));
        prop_assert_eq!(chunk.points.len(), ps.len());
        for (p, q) in ps.iter().zip(&chunk.points) {
            prop_assert_eq!(p.at_ms, q.at_ms);
            for (i, (v, w)) in p.values.iter().zip(&q.values).enumerate() {
                let unit = 10f64.powi(-i32::from(COLUMNS[i].decimals));
                match (v.filter(|v| v.is_finite()), w) {
                    (None, None) => {}
                    (Some(v), Some(w)) => prop_assert!(
                        (v - w).abs() <= unit / 2.0 + v.abs() * 1e-15,
                        "column {} wrote {} read {}", i, v, w
                    ),
                    other => prop_assert!(false, "column {i}: {other:?}"),
                }
            }
        }
        // The decoder ends where the encoder did: appending continues.
        prop_assert_eq!(&chunk.writer, &writer);
    }

    #[test]
    fn values_rounded_to_their_decimals_round_trip_exactly(
        raw in prop::collection::vec((-10_000_000i64..10_000_000, -100_000i64..100_000), 1..50)
    ) {
        let cols = [COLUMNS[1], COLUMNS[2]];
        let ps: Vec<Point> = raw.iter().enumerate().map(|(i, (b, c))| Point {
            at_ms: 1_700_000_000_000 + i as i64 * 10_000,
            // As the metrics records round: x.round() / 10^d.
            values: vec![Some(*b as f64 / 1e3), Some(*c as f64 / 1e1)],
        }).collect();
        let chunk = decode(&encode(&cols, &ps).0).unwrap();
        for (p, q) in ps.iter().zip(&chunk.points) {
            prop_assert_eq!(&p.values, &q.values);
        }
    }

    #[test]
    fn resuming_from_a_decoded_chunk_continues_it(ps in points(4), split in 1usize..60) {
        let split = split.min(ps.len());
        let (mut bytes, _) = encode(&COLUMNS, &ps[..split]);
        // A restart: the writer comes from the stored bytes.
        let mut w = decode(&bytes).unwrap().writer;
        for p in &ps[split..] {
            bytes.extend(w.push(p).unwrap());
        }
        prop_assert_eq!(bytes, encode(&COLUMNS, &ps).0);
    }

    #[test]
    fn any_bytes_decode_or_fail_without_panicking(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = decode(&bytes);
        let mut framed = vec![Codec::Series as u8, 1, 1, b'x', 0];
        framed.extend(&bytes);
        let _ = decode(&framed);
    }

    #[test]
    fn a_cut_chunk_is_corruption(ps in points(4), cut in 1usize..1000) {
        let (bytes, _) = encode(&COLUMNS, &ps);
        let cut = cut % bytes.len();
        if let Err(e) = decode(&bytes[..cut]) {
            prop_assert_eq!(e.kind, crate::error::ErrorKind::Corruption);
        }
    }
}

#[test]
fn a_steady_tick_of_unchanged_figures_costs_two_bytes() {
    let ps: Vec<Point> = (0..100)
        .map(|i| Point {
            at_ms: 1_700_000_000_000 + i * 10_000 + (i % 3),
            values: vec![Some(5.0), Some(1.25), None, Some(0.5)],
        })
        .collect();
    let (bytes, _) = encode(&COLUMNS, &ps);
    let (_, first) = Writer::start(&COLUMNS, &ps[0]).unwrap();
    let per_point = (bytes.len() - first.len()) as f64 / 99.0;
    assert!(per_point <= 2.05, "{per_point} bytes per point");
    let back = decode(&bytes).unwrap();
    assert_eq!(back.points, ps);
}

#[test]
fn bad_chunks_say_what_is_wrong() {
    let p = Point {
        at_ms: 1,
        values: vec![Some(1.0); 4],
    };
    let (_, bytes) = Writer::start(&COLUMNS, &p).unwrap();
    let mut wrong = bytes.clone();
    wrong[0] = Codec::Json as u8;
    assert!(decode(&wrong).unwrap_err().message.contains("codec byte"));
    let header_only = &bytes[..2 + COLUMNS.iter().map(|c| 2 + c.name.len()).sum::<usize>()];
    assert!(decode(header_only)
        .unwrap_err()
        .message
        .contains("no point"));
    let e = Writer::start(&COLUMNS[..1], &p).unwrap_err();
    assert!(e.message.contains("4 values for 1 columns"), "{e}");
    assert!(Writer::start(&[], &p).is_err());
}
