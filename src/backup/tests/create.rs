//! `backup create`, and the `auto` rule between a WAL-based incremental and
//! files.

use serde_json::json;

use super::svc;

#[tokio::test]
async fn auto_uploads_files_without_a_base_records_a_small_wal_and_falls_back_on_a_big_one() {
    let s = svc();
    s.put(0..200, "a", 200);
    // No backup to build on: files, and the result says why.
    let b0 = s.create(json!({"name": "b0"})).await.unwrap();
    assert_eq!(b0["method"], "files", "{b0}");
    let why = b0["why_not_wal"].as_str().unwrap_or_default();
    assert!(why.contains("no backup in"), "{b0}");
    assert!(!s.config.data_dir.join("backup-staging/b0").exists());
    assert!(b0["total_bytes"].as_u64().unwrap() > 40_000, "{b0}");

    // A few writes: the WAL since b0 is far under half of it.
    s.put(0..5, "b", 200);
    let b1 = s.create(json!({"name": "b1"})).await.unwrap();
    assert_eq!(b1["method"], "wal", "{b1}");
    assert_eq!(b1["base"], "b0", "{b1}");
    assert_eq!(b1["files"], 0, "{b1}");
    assert_eq!(b1["sequence"].as_u64(), Some(s.sequence()), "{b1}");
    assert!(b1.get("why_not_wal").is_none(), "{b1}");

    // Many incompressible writes: the WAL since b0 is over half of it.
    s.put(1000..6000, "c", 200);
    let b2 = s.create(json!({"name": "b2"})).await.unwrap();
    assert_eq!(b2["method"], "files", "{b2}");
    assert!(b2["base"].is_null(), "{b2}");
    let why = b2["why_not_wal"].as_str().unwrap_or_default();
    assert!(why.contains("over half") && why.contains("\"b0\""), "{b2}");
    // Routine: not an error.
    assert_eq!(s.last_error(), "", "{:?}", s.board.snapshot());
    // b2 is the next base.
    s.put(0..5, "d", 200);
    let b3 = s.create(json!({"name": "b3"})).await.unwrap();
    assert_eq!((&b3["method"], &b3["base"]), (&json!("wal"), &json!("b2")));
    assert_eq!(s.names().await, ["b0", "b1", "b2", "b3"]);
    for name in ["b1", "b3"] {
        assert_eq!(s.verify(name).await["ok"], true);
    }
    assert_eq!(s.record()["last_backup"], "b3", "{}", s.record());
    // Asked for by name, the method is what was asked: no fallback.
    s.put(7000..12000, "e", 200);
    let forced = s.create(json!({"name": "b4", "method": "wal"})).await;
    assert_eq!(forced.unwrap()["method"], "wal");
}

#[tokio::test]
async fn a_gap_or_a_damaged_segment_in_the_archive_means_files_and_an_error() {
    let s = svc();
    s.put(0..200, "a", 200);
    s.create(json!({"name": "b0", "method": "files"}))
        .await
        .unwrap();
    // The store acknowledges a segment and loses it: the archive has a gap.
    s.put(0..3, "b", 100);
    s.faults.drop_puts_matching("wal/0");
    let lost = s
        .service
        .clone()
        .wal_archive(super::params(json!({})))
        .await
        .unwrap();
    s.faults.heal();
    let lost = lost["segment"].as_str().unwrap().to_string();
    assert!(!s.backups.join(&lost).exists());
    s.put(3..6, "b", 100);
    // Asked for, a WAL-based backup fails and names the gap.
    let e = s
        .create(json!({"name": "w", "method": "wal"}))
        .await
        .unwrap_err();
    assert!(e.message.contains("gap"), "{e}");
    assert!(s.names().await == ["b0"]);
    // auto uploads files instead, and says so on the board.
    let b1 = s.create(json!({"name": "b1"})).await.unwrap();
    assert_eq!(b1["method"], "files", "{b1}");
    assert!(b1["why_not_wal"].as_str().unwrap().contains("gap"), "{b1}");
    let err = s.last_error();
    assert!(
        err.contains("backup b1") && err.contains("uploads files instead") && err.contains("gap"),
        "{err}"
    );

    // A segment damaged in the store after it was archived.
    s.put(6..9, "c", 100);
    let r = s
        .service
        .clone()
        .wal_archive(super::params(json!({})))
        .await
        .unwrap();
    let damaged = s.backups.join(r["segment"].as_str().unwrap());
    let mut body = std::fs::read(&damaged).unwrap();
    let n = body.len();
    body[n / 2] ^= 0x20;
    std::fs::write(&damaged, body).unwrap();
    s.put(9..12, "c", 100);
    let b2 = s.create(json!({"name": "b2"})).await.unwrap();
    assert_eq!(b2["method"], "files", "{b2}");
    let err = s.last_error();
    assert!(
        err.contains("backup b2") && err.contains("WAL segment"),
        "{err}"
    );
    // What auto made instead restores the store as it is.
    let out = s.dir.path().join("r");
    s.service
        .clone()
        .restore(super::params(
            json!({"name": "b2", "to": out.display().to_string()}),
        ))
        .await
        .unwrap();
    assert_eq!(super::read_store(&out.join("db"), &s.config), s.live());
}

#[tokio::test]
async fn a_failing_store_leaves_no_backup_and_the_retry_uploads_only_the_rest() {
    let s = svc();
    for round in 0..3 {
        s.put(round * 1000..round * 1000 + 1000, "a", 200);
        s.slot.get().unwrap().flush().unwrap();
    }
    s.faults.fail_puts_after(2);
    let e = s
        .create(json!({"name": "b0", "method": "files"}))
        .await
        .unwrap_err();
    assert!(e.message.contains("injected"), "{e}");
    assert!(s.names().await.is_empty(), "no partial backup is visible");
    assert!(!s.config.data_dir.join("backup-staging/b0").exists());
    assert_eq!(s.record()["last_result"], "failed", "{}", s.record());
    assert!(
        s.last_error().contains("backup_create"),
        "{}",
        s.last_error()
    );
    assert_eq!(s.stored("objects").len(), 2, "two objects went up");

    s.faults.heal();
    let b0 = s
        .create(json!({"name": "b0", "method": "files"}))
        .await
        .unwrap();
    let files = b0["files"].as_u64().unwrap();
    assert_eq!(b0["uploaded_objects"].as_u64(), Some(files - 2), "{b0}");
    assert_eq!(s.verify("b0").await["ok"], true);
    assert_eq!(s.record()["last_result"], "ok");
}
