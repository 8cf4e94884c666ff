//! `backup drill`: a restore of the newest backup into scratch, read whole.

use serde_json::json;

use super::svc;

/// Entries of the data dir named like a drill's scratch.
fn scratch(s: &super::Svc) -> Vec<String> {
    std::fs::read_dir(&s.config.data_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("drill"))
        .collect()
}

#[tokio::test]
async fn a_drill_reads_the_newest_backup_whole_and_publishes_it() {
    let s = svc();
    s.put(0..300, "a", 100);
    s.create(json!({"name": "b0"})).await.unwrap();
    s.put(300..310, "b", 100);
    s.create(json!({"name": "b1"})).await.unwrap();
    let d = s.service.clone().drill().await.unwrap();
    assert_eq!(
        (&d["ok"], &d["backup"]),
        (&json!(true), &json!("b1")),
        "{d}"
    );
    // Every kv key, plus the store's own (schema version, history id).
    assert_eq!(d["keys"].as_u64(), Some(310 + 2), "{d}");
    assert!(scratch(&s).is_empty(), "{:?}", scratch(&s));
    let rec = s.record();
    assert_eq!(rec["drill"]["ok"], true, "{rec}");
    assert_eq!(rec["drill"]["backup"], "b1", "{rec}");
    assert_eq!(rec["last_operation"]["operation"], "backup_drill");
}

#[tokio::test]
async fn a_failed_drill_is_published_and_leaves_no_scratch() {
    let s = svc();
    s.put(0..300, "a", 100);
    s.create(json!({"name": "b0"})).await.unwrap();
    s.faults.fail_gets_after(2);
    let e = s.service.clone().drill().await.unwrap_err();
    assert!(e.message.contains("injected"), "{e}");
    assert!(scratch(&s).is_empty(), "{:?}", scratch(&s));
    let rec = s.record();
    assert_eq!(rec["drill"]["ok"], false, "{rec}");
    assert!(
        rec["drill"]["error"].as_str().unwrap().contains("injected"),
        "{rec}"
    );
    assert!(
        s.last_error().contains("backup_drill"),
        "{}",
        s.last_error()
    );
    s.faults.heal();
    assert_eq!(s.service.clone().drill().await.unwrap()["ok"], true);
    assert_eq!(s.record()["drill"]["ok"], true);
}
