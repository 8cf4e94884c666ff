//! The WAL archiver: the continuous passes (`archive_tick`), `wal archive`
//! and `wal replay`.

use serde_json::json;

use super::{params, svc_with, Svc};
use crate::backup::{wal::Archive, Target};

fn archiving() -> Svc {
    svc_with(|c| c.backup.archive_wal = true)
}

/// The archive covers everything after its start up to `upto`, with no gap.
async fn covered(s: &Svc, upto: u64) -> usize {
    let start = start(s).await;
    let t = Target::open(&s.url).unwrap();
    Archive::new(&t).cover(start, upto).await.unwrap().len()
}

/// Where the archive starts (`wal/START`: the first pass's sequence).
async fn start(s: &Svc) -> u64 {
    let t = Target::open(&s.url).unwrap();
    Archive::new(&t).start().await.unwrap().unwrap()
}

#[tokio::test]
async fn passes_ship_contiguous_segments_and_publish_where_they_are() {
    let s = archiving();
    assert!(s.service.archive_every().is_some());
    s.put(0..50, "a", 100);
    s.service.clone().archive_tick().await;
    let latest = s.sequence();
    let rec = &s.record()["wal_archive"];
    assert_eq!(rec["archived_sequence"].as_u64(), Some(latest), "{rec}");
    assert_eq!(rec["lag_sequences"], 0, "{rec}");
    // Nothing new: a pass ships nothing.
    s.service.clone().archive_tick().await;
    let segments = s.stored("wal").iter().filter(|p| is_segment(p)).count();
    s.put(50..80, "b", 100);
    s.service.clone().archive_tick().await;
    let latest = s.sequence();
    assert_eq!(
        s.record()["wal_archive"]["archived_sequence"].as_u64(),
        Some(latest)
    );
    assert_eq!(covered(&s, latest).await, segments + 1);
    // `wal replay` reads the archived writes back as change events.
    let r = s
        .service
        .clone()
        .wal_replay(params(
            json!({"from_sequence": start(&s).await, "limit": 1000}),
        ))
        .await
        .unwrap();
    let keys: Vec<&str> = r["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["key"].as_str())
        .collect();
    assert!(keys.contains(&"k00079"), "{r}");
    assert_eq!(s.last_error(), "");
}

#[tokio::test]
async fn a_failed_pass_is_reported_and_the_next_one_leaves_no_gap() {
    let s = archiving();
    s.put(0..10, "a", 100);
    s.service.clone().archive_tick().await;
    let archived = s.sequence();
    s.put(10..20, "b", 100);
    s.faults.fail_puts_after(0);
    s.service.clone().archive_tick().await;
    let err = s.last_error();
    assert!(
        err.contains("WAL archiving") && err.contains("injected"),
        "{err}"
    );
    assert_eq!(
        s.record()["wal_archive"]["archived_sequence"].as_u64(),
        Some(archived),
        "a failed pass does not move the archive on"
    );
    // By hand, the same failure is the caller's error.
    let e = s
        .service
        .clone()
        .wal_archive(params(json!({})))
        .await
        .unwrap_err();
    assert!(e.message.contains("injected"), "{e}");

    s.faults.heal();
    s.put(20..30, "c", 100);
    s.service.clone().archive_tick().await;
    let latest = s.sequence();
    assert_eq!(
        s.record()["wal_archive"]["archived_sequence"].as_u64(),
        Some(latest)
    );
    assert_eq!(
        covered(&s, latest).await,
        1,
        "one segment, from the start on"
    );
}

#[tokio::test]
async fn an_archive_of_another_history_is_refused() {
    let s = archiving();
    s.put(0..10, "a", 100);
    s.service
        .clone()
        .wal_archive(params(json!({})))
        .await
        .unwrap();
    let history = s.backups.join("wal/HISTORY");
    std::fs::write(&history, crate::backup::wal::seal_marker("another-store")).unwrap();
    // A second service over the same store (as after a restart: it reads
    // the archive afresh).
    s.put(10..20, "b", 100);
    let e = s
        .fresh_service()
        .wal_archive(params(json!({})))
        .await
        .unwrap_err();
    assert!(e.message.contains("another store history"), "{e}");
}

fn is_segment(p: &std::path::Path) -> bool {
    let n = p.to_string_lossy();
    n.ends_with(".seg") || n.ends_with(".eseg")
}
