use super::*;
use crate::engine::series::SeriesChunk;
use crate::series::Writer;

#[test]
fn since_takes_a_number_and_a_unit_and_names_them_when_wrong() {
    assert_eq!(parse_since("90s").unwrap(), 90_000);
    assert_eq!(parse_since("30m").unwrap(), 1_800_000);
    assert_eq!(parse_since("24h").unwrap(), 86_400_000);
    assert_eq!(parse_since("7d").unwrap(), 604_800_000);
    for bad in [
        "24x",
        "h",
        "",
        "0h",
        "-1h",
        "1.5h",
        "24",
        "99999999999999999d",
    ] {
        let e = parse_since(bad).unwrap_err();
        assert!(e.message.contains("s, m, h or d"), "{bad}: {e}");
    }
}

#[test]
fn metrics_are_selected_by_name_and_an_unknown_one_lists_the_names() {
    assert_eq!(select(None).unwrap().len(), COLUMNS.len());
    assert_eq!(select(Some("write_iops")).unwrap(), [3]);
    assert_eq!(select(Some("read_iops, write_iops")).unwrap(), [4, 3]);
    let e = select(Some("write_iopz")).unwrap_err();
    assert!(e.message.contains("\"write_iopz\""), "{e}");
    assert!(
        e.message.contains("write_iops") && e.message.contains("memory_rss_mb"),
        "{e}"
    );
}

/// A chunk of `COLUMNS` holding points every 10 s from `t0`, write_iops
/// (and every other column) = `values[i]`.
fn chunk(t0: i64, values: &[Option<f64>]) -> SeriesChunk {
    let points: Vec<Point> = values
        .iter()
        .enumerate()
        .map(|(i, v)| Point {
            at_ms: t0 + i as i64 * 10_000,
            values: vec![*v; COLUMNS.len()],
        })
        .collect();
    let (mut w, mut bytes) = Writer::start(&COLUMNS, &points[0]).unwrap();
    for p in &points[1..] {
        bytes.extend(w.push(p).unwrap());
    }
    SeriesChunk {
        start_ms: t0,
        encoded_bytes: bytes.len(),
        chunk: crate::series::decode(&bytes).unwrap(),
    }
}

#[test]
fn a_summary_averages_into_buckets_and_measures_the_encoding() {
    let values: Vec<Option<f64>> = (0..100).map(|i| Some(f64::from(i))).collect();
    let read = SeriesRead {
        chunks: vec![chunk(0, &values)],
        bad: vec![],
    };
    // The window holds points 10..=89 (at 100 s to 890 s).
    let h = summarize(&read, 100_000, 890_000, &[3], 8, 3_600_000);
    assert_eq!(h.points, 80);
    assert_eq!(h.stored_points, 100);
    assert_eq!(h.timestamps.len(), 8);
    assert_eq!(
        h.timestamps[0], 190_000,
        "the last point of the first bucket"
    );
    let m = &h.metrics[0];
    assert_eq!(m.name, "write_iops");
    assert_eq!((m.min, m.max, m.last), (Some(10.0), Some(89.0), Some(89.0)));
    assert_eq!(m.values[0], Some(14.5), "mean of 10..=19");
    assert_eq!(m.values[7], Some(84.5));
    // The ratio compares the stored bytes with JSON records of the same
    // points; a JSON record of ten figures is far larger.
    assert_eq!(h.encoded_bytes, read.chunks[0].encoded_bytes);
    assert!(h.json_bytes > 100 * 150, "{}", h.json_bytes);
    let ratio = h.ratio.unwrap();
    assert!(ratio > 5.0, "ratio {ratio}");
    assert_eq!(h.retention_secs, 3600);
}

#[test]
fn missing_values_stay_missing_and_few_points_are_not_bucketed() {
    let read = SeriesRead {
        chunks: vec![chunk(0, &[Some(1.0), None, Some(3.0)])],
        bad: vec![],
    };
    let h = summarize(&read, 0, i64::MAX, &[6], 60, 0);
    let m = &h.metrics[0];
    assert_eq!(m.values, [Some(1.0), None, Some(3.0)]);
    assert_eq!((m.min, m.max, m.last), (Some(1.0), Some(3.0), Some(3.0)));
    let empty = summarize(&SeriesRead::default(), 0, 1, &[0], 60, 0);
    assert_eq!((empty.points, empty.ratio), (0, None));
    assert!(empty.metrics[0].values.is_empty());
}
