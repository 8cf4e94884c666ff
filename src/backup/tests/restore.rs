//! `backup restore`: to a path, to a point in time, into the running store.

use serde_json::{json, Value};

use super::{params, read_store, svc, walk, Svc};

async fn restore(s: &Svc, p: Value) -> crate::error::Result<Value> {
    s.service.clone().restore(params(p)).await
}

#[tokio::test]
async fn restores_a_backup_a_point_in_time_and_into_the_running_store() {
    let s = svc();
    s.put(0..300, "a", 100);
    s.create(json!({"name": "b0"})).await.unwrap();
    let state_a = s.live();
    s.put(0..10, "b", 100);
    let seq_b = s.sequence();
    let state_b = s.live();
    let b1 = s.create(json!({"name": "b1"})).await.unwrap();
    assert_eq!(b1["method"], "wal", "{b1}");
    s.put(10..20, "c", 100);
    s.service
        .clone()
        .wal_archive(params(json!({})))
        .await
        .unwrap();
    let state_c = s.live();

    // A WAL-based backup: its base, rolled forward to exactly its sequence.
    let out = s.dir.path().join("r1/db");
    let r = restore(&s, json!({"name": "b1", "to": out.display().to_string()}))
        .await
        .unwrap();
    assert_eq!((&r["base"], &r["sequence"]), (&json!("b0"), &json!(seq_b)));
    assert!(r["replayed_batches"].as_u64().unwrap() >= 1, "{r}");
    assert_eq!(read_store(&out.join("db"), &s.config), state_b);
    // A non-empty target is refused without force, and left alone.
    let e = restore(&s, json!({"name": "b0", "to": out.display().to_string()}))
        .await
        .unwrap_err();
    assert!(e.message.contains("--force"), "{e}");
    assert_eq!(read_store(&out.join("db"), &s.config), state_b);
    // Inside the data dir is refused.
    let inside = s.config.data_dir.join("x");
    let e = restore(&s, json!({"to": inside.display().to_string()}))
        .await
        .unwrap_err();
    assert!(e.message.contains("data dir"), "{e}");

    // A point in time past the newest backup: the archive carries it.
    let out = s.dir.path().join("pitr/db");
    let latest = s.sequence();
    let r = restore(
        &s,
        json!({"to_sequence": latest, "to": out.display().to_string()}),
    )
    .await
    .unwrap();
    assert_eq!(r["base"], "b0", "{r}");
    assert_eq!(read_store(&out.join("db"), &s.config), state_c);
    // A point the archive does not reach is refused, leaving nothing.
    let out = s.dir.path().join("beyond/db");
    let e = restore(
        &s,
        json!({"to_sequence": latest + 100, "to": out.display().to_string()}),
    )
    .await
    .unwrap_err();
    assert!(e.message.contains("reaches only"), "{e}");
    assert!(walk(&s.dir.path().join("beyond")).is_empty());

    // Into the running store: b0's state, a new history, an undo snapshot.
    let history = s.slot.get().unwrap().history().to_string();
    let r = restore(&s, json!({"name": "b0"})).await.unwrap();
    assert_eq!(r["into"], "daemon", "{r}");
    assert_eq!(s.live(), state_a);
    assert_ne!(s.slot.get().unwrap().history(), history);
    let undo = r["undo_snapshot"].as_str().unwrap();
    assert!(s.config.data_dir.join("snapshots").join(undo).exists());
    assert_eq!(s.record()["last_operation"]["operation"], "backup_restore");
    assert_eq!(s.record()["last_operation"]["ok"], true);
}

#[tokio::test]
async fn a_failing_read_leaves_nothing_behind_and_the_store_as_it_was() {
    let s = svc();
    for round in 0..2 {
        s.put(round * 500..round * 500 + 500, "a", 200);
        s.slot.get().unwrap().flush().unwrap();
    }
    s.create(json!({"name": "b0", "method": "files"}))
        .await
        .unwrap();
    s.put(0..10, "b", 100);
    let before = s.live();

    // To a path: the error, and nothing at (or beside) the path.
    let parent = s.dir.path().join("out");
    std::fs::create_dir_all(&parent).unwrap();
    s.faults.fail_gets_after(2);
    let e = restore(
        &s,
        json!({"name": "b0", "to": parent.join("db").display().to_string()}),
    )
    .await
    .unwrap_err();
    assert!(
        e.message.contains("injected") && e.message.contains("nothing was written"),
        "{e}"
    );
    let left: Vec<_> = std::fs::read_dir(&parent).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");

    // Into the store: the error, the store unchanged, no scratch snapshot.
    s.faults.fail_gets_after(1);
    let e = restore(&s, json!({"name": "b0"})).await.unwrap_err();
    assert!(e.message.contains("live store is unchanged"), "{e}");
    assert_eq!(s.live(), before);
    let snapshots = s.config.data_dir.join("snapshots");
    let names: Vec<String> = std::fs::read_dir(&snapshots)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    assert!(names.iter().all(|n| !n.contains("restore-")), "{names:?}");
    assert_eq!(s.record()["last_operation"]["ok"], false);

    // Healed, the same restore goes through.
    s.faults.heal();
    restore(&s, json!({"name": "b0"})).await.unwrap();
    assert_ne!(s.live(), before);
}
