use std::sync::Arc;

use super::*;
use crate::clock::ManualClock;
use crate::config::Config;

const COLS: [Column; 2] = [
    Column {
        name: "x",
        decimals: 0,
    },
    Column {
        name: "y",
        decimals: 2,
    },
];

const T0: i64 = 1_700_000_000_000;

fn open(dir: &std::path::Path, clock: &ManualClock, retention_secs: u64) -> Arc<Engine> {
    let config = Config {
        data_dir: dir.to_path_buf(),
        sync: "never".into(),
        metrics_history_retention_secs: retention_secs,
        ..Config::default()
    };
    Engine::open(&config, Arc::new(clock.clone())).unwrap()
}

fn pt(at_ms: i64, x: f64) -> Point {
    Point {
        at_ms,
        values: vec![Some(x), Some(x / 4.0)],
    }
}

/// Every stored point's (time, x), in order.
fn stored(e: &Engine) -> Vec<(i64, f64)> {
    let read = e.series_read(i64::MIN).unwrap();
    assert!(read.bad.is_empty(), "{:?}", read.bad);
    read.chunks
        .iter()
        .flat_map(|c| c.chunk.points.iter())
        .map(|p| (p.at_ms, p.values[0].unwrap()))
        .collect()
}

#[test]
fn points_append_to_one_chunk_and_a_restart_continues_it() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let e = open(dir.path(), &clock, 604_800);
    for i in 0..10 {
        e.series_append(&COLS, &pt(T0 + i * 10_000, i as f64))
            .unwrap();
    }
    let size = |e: &Engine| e.series_read(i64::MIN).unwrap().chunks[0].encoded_bytes;
    let before = size(&e);
    drop(e);
    let e = open(dir.path(), &clock, 604_800);
    for i in 10..20 {
        e.series_append(&COLS, &pt(T0 + i * 10_000, i as f64))
            .unwrap();
    }
    let read = e.series_read(i64::MIN).unwrap();
    assert_eq!(read.chunks.len(), 1, "the restart continued the chunk");
    assert_eq!(read.chunks[0].start_ms, T0);
    let want: Vec<(i64, f64)> = (0..20).map(|i| (T0 + i * 10_000, i as f64)).collect();
    assert_eq!(stored(&e), want);
    // Ten more points cost a few bytes each: appended, not a new header.
    let grown = size(&e) - before;
    assert!(
        grown <= 10 * 5,
        "ten points grew the chunk by {grown} bytes"
    );
}

#[test]
fn a_chunk_holds_an_hour_then_a_new_one_begins() {
    let (_dir, e) = crate::engine::testutil::open_temp(ManualClock::new(T0));
    for i in 0..13 {
        // One point every 10 minutes: two hours and a bit.
        e.series_append(&COLS, &pt(T0 + i * 600_000, i as f64))
            .unwrap();
    }
    let read = e.series_read(i64::MIN).unwrap();
    let starts: Vec<i64> = read.chunks.iter().map(|c| c.start_ms).collect();
    assert_eq!(starts, [T0, T0 + 3_600_000, T0 + 7_200_000]);
    assert_eq!(stored(&e).len(), 13);
    // A read from a time skips the chunks that end before it.
    assert_eq!(e.series_read(T0 + 7_199_999).unwrap().chunks.len(), 2);
    assert_eq!(e.series_read(T0 + 7_200_000).unwrap().chunks.len(), 1);
}

#[test]
fn time_going_back_begins_a_new_chunk_after_the_others() {
    let (_dir, e) = crate::engine::testutil::open_temp(ManualClock::new(T0));
    e.series_append(&COLS, &pt(T0 + 20_000, 1.0)).unwrap();
    e.series_append(&COLS, &pt(T0 + 30_000, 2.0)).unwrap();
    e.series_append(&COLS, &pt(T0 + 10_000, 3.0)).unwrap();
    let read = e.series_read(i64::MIN).unwrap();
    assert_eq!(read.chunks.len(), 2);
    assert!(
        read.chunks[1].start_ms > T0 + 30_000,
        "no chunk overwritten"
    );
    assert_eq!(stored(&e).len(), 3);
}

#[test]
fn retention_deletes_the_chunks_older_than_it_and_appending_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    // Keep two hours.
    let e = open(dir.path(), &clock, 7_200);
    for h in 0..5 {
        clock.set_ms(T0 + h * 3_600_000);
        e.series_append(&COLS, &pt(T0 + h * 3_600_000, h as f64))
            .unwrap();
    }
    // Each new chunk applied retention as of its time: at T0 + 4h the
    // chunks of T0 and T0 + 1h (all points before T0 + 2h) went.
    let xs: Vec<f64> = stored(&e).into_iter().map(|p| p.1).collect();
    assert_eq!(xs, [2.0, 3.0, 4.0]);

    // The plan at a later time names what goes, and only that.
    let now = T0 + 7 * 3_600_000;
    let plan = e.series_retention_plan(now).unwrap();
    assert_eq!(plan.cutoff_ms, now - 7_200_000);
    assert_eq!(
        plan.delete,
        [T0 + 2 * 3_600_000, T0 + 3 * 3_600_000, T0 + 4 * 3_600_000]
    );
    assert_eq!(e.series_retain(&plan).unwrap(), 3);
    assert!(stored(&e).is_empty());
    // The open chunk was among them: the next point begins a new one
    // (a merge onto the deleted key would have made a headless value).
    clock.set_ms(now);
    e.series_append(&COLS, &pt(T0 + 4 * 3_600_000 + 10_000, 9.0))
        .unwrap();
    e.series_append(&COLS, &pt(T0 + 4 * 3_600_000 + 20_000, 10.0))
        .unwrap();
    assert_eq!(stored(&e).len(), 2);
}

#[test]
fn a_corrupt_last_chunk_is_reported_and_not_continued() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let e = open(dir.path(), &clock, 604_800);
    e.series_append(&COLS, &pt(T0, 1.0)).unwrap();
    let mut b = WriteBatch::default();
    b.put_cf(e.cf(Cf::Series), chunk_key(T0), b"\x05garbage");
    e.write_relaxed(b).unwrap();
    drop(e);
    let e = open(dir.path(), &clock, 604_800);
    e.series_append(&COLS, &pt(T0 + 10_000, 2.0)).unwrap();
    let read = e.series_read(i64::MIN).unwrap();
    assert_eq!(read.bad.len(), 1);
    assert_eq!(read.bad[0].start_ms, T0);
    assert_eq!(read.chunks.len(), 1);
    assert!(read.chunks[0].start_ms > T0);
}
