//! `backup prune` applied: manifests first, then what nothing kept uses.

use serde_json::{json, Value};

use super::{params, svc_with, Svc};

async fn prune(s: &Svc, p: Value) -> crate::error::Result<Value> {
    s.service.clone().prune(params(p)).await
}

/// Four backups with files, each of other data; no PITR window.
async fn four(s: &Svc) {
    for round in 0..4 {
        s.put(round * 300..round * 300 + 300, &format!("r{round}"), 200);
        s.create(json!({"name": format!("b{round}"), "method": "files"}))
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn prune_plans_then_deletes_what_no_kept_backup_uses() {
    let s = svc_with(|c| c.backup.pitr_window_secs = 0);
    four(&s).await;
    let objects = s.stored("objects").len();
    let plan = prune(&s, json!({"keep-last": 2, "dry-run": true}))
        .await
        .unwrap();
    assert_eq!(plan["delete"], json!(["b1", "b0"]), "{plan}");
    assert_eq!(s.names().await.len(), 4, "a dry run deletes nothing");
    assert_eq!(s.stored("objects").len(), objects);
    let e = prune(&s, json!({"keep-last": 0})).await.unwrap_err();
    assert!(e.message.contains("delete everything"), "{e}");

    let done = prune(&s, json!({"keep-last": 2})).await.unwrap();
    assert_eq!(s.names().await, ["b2", "b3"]);
    let deleted = done["delete_objects"].as_u64().unwrap() as usize;
    assert!(deleted > 0, "{done}");
    assert_eq!(s.stored("objects").len(), objects - deleted);
    for name in ["b2", "b3"] {
        assert_eq!(s.verify(name).await["ok"], true);
    }
}

#[tokio::test]
async fn a_prune_that_fails_part_way_leaves_the_kept_backups_whole() {
    let s = svc_with(|c| c.backup.pitr_window_secs = 0);
    four(&s).await;
    // One manifest goes, then every delete fails.
    s.faults.fail_deletes_after(1);
    let e = prune(&s, json!({"keep-last": 2})).await.unwrap_err();
    assert!(e.message.contains("injected"), "{e}");
    let left = s.names().await;
    assert_eq!(left.len(), 3, "{left:?}");
    for name in ["b2", "b3"] {
        assert_eq!(s.verify(name).await["ok"], true);
    }
    s.faults.heal();
    prune(&s, json!({"keep-last": 2})).await.unwrap();
    assert_eq!(s.names().await, ["b2", "b3"]);
    for name in ["b2", "b3"] {
        assert_eq!(s.verify(name).await["ok"], true);
    }
    // Nothing is left that no kept backup uses.
    let again = prune(&s, json!({"keep-last": 2, "dry-run": true}))
        .await
        .unwrap();
    assert_eq!(again["delete_objects"], 0, "{again}");
}
