//! Compaction plans from RocksDB's own figures, and compacts what they
//! select.

use super::*;
use crate::clock::ManualClock;

/// A store whose `kv` is two-thirds garbage: 3000 keys written, all of them
/// overwritten, then 2000 deleted, each step flushed to its own file.
fn garbage_store() -> (tempfile::TempDir, std::sync::Arc<Engine>) {
    let (dir, e) = crate::engine::testutil::open_temp(ManualClock::new(0));
    let value = |round: u8| -> String {
        (0..200)
            .map(|i| char::from(b'a' + (i as u8).wrapping_mul(7).wrapping_add(round) % 26))
            .collect()
    };
    for round in 0..2u8 {
        let entries: Vec<(String, String)> = (0..3000)
            .map(|i| (format!("k{i:05}"), format!("{round}{}", value(round))))
            .collect();
        e.kv_put_many(&entries).unwrap();
        e.flush().unwrap();
    }
    let gone: Vec<String> = (0..2000).map(|i| format!("k{i:05}")).collect();
    e.kv_delete(&gone).unwrap();
    e.flush().unwrap();
    // Something small and clean elsewhere.
    e.collection_create("c", 2, crate::engine::Metric::Dot)
        .unwrap();
    e.flush().unwrap();
    (dir, e)
}

fn family<'a>(plan: &'a [FamilyPlan], name: &str) -> &'a FamilyPlan {
    plan.iter().find(|p| p.family == name).unwrap()
}

#[test]
fn the_plan_selects_the_family_with_garbage_and_says_why() {
    let (_d, e) = garbage_store();
    let p = plan(&e, 0.3);
    let kv = family(&p, "kv");
    assert!(kv.selected, "{kv:?}");
    assert!(kv.garbage_ratio > 0.3, "{kv:?}");
    assert!(kv.tombstones >= 2000, "{kv:?}");
    assert!(!kv.why.is_empty());
    let sys = family(&p, "sys");
    assert!(!sys.selected, "{sys:?}");
    assert!(!family(&p, "memory").selected, "no files, nothing to do");
}

#[test]
fn a_dry_run_changes_nothing_and_incremental_compacts_only_what_it_selects() {
    let (_d, e) = garbage_store();
    let sst = |e: &Engine, cf| sst_of(e, cf);
    let (kv0, sys0) = (sst(&e, Cf::Kv), sst(&e, Cf::Sys));
    let progress = Progress::default();
    let dry = run(&e, Some(0.3), true, &progress, &|| false, 0).unwrap();
    assert!(dry.dry_run && dry.compacted.is_empty());
    assert_eq!((sst(&e, Cf::Kv), sst(&e, Cf::Sys)), (kv0, sys0));
    let r = run(&e, Some(0.3), false, &progress, &|| false, 0).unwrap();
    assert_eq!(r.mode, "incremental");
    let names: Vec<&str> = r.compacted.iter().map(|c| c.family).collect();
    assert_eq!(names, ["kv"]);
    let kv = &r.compacted[0];
    assert_eq!(kv.sst_bytes_before, kv0);
    assert!(
        kv.sst_bytes_after * 2 < kv.sst_bytes_before,
        "two-thirds were garbage: {kv:?}"
    );
    assert_eq!(sst(&e, Cf::Sys), sys0, "sys was not selected");
    // Compacted, kv has no garbage left to select; the data is intact.
    assert!(!family(&plan(&e, 0.3), "kv").selected);
    assert_eq!(
        e.kv_get("k02500").unwrap().as_deref().map(|v| &v[..1]),
        Some("1")
    );
    assert_eq!(e.kv_get("k00001").unwrap(), None);
}

#[test]
fn full_compacts_every_family_with_files_and_a_cancel_stops_it() {
    let (_d, e) = garbage_store();
    let progress = Progress::default();
    // Its plan selects every family with files, garbage or not.
    let dry = run(&e, None, true, &progress, &|| false, 0).unwrap();
    assert!(family(&dry.plan, "sys").selected && !family(&dry.plan, "memory").selected);
    let r = run(&e, None, false, &progress, &|| false, 0).unwrap();
    assert_eq!(r.mode, "full");
    let names: Vec<&str> = r.compacted.iter().map(|c| c.family).collect();
    assert!(names.contains(&"kv") && names.contains(&"sys"), "{names:?}");
    assert!(!names.contains(&"memory"), "no files: {names:?}");
    assert!(r.sst_bytes_after < r.sst_bytes_before, "{r:?}");
    assert!(r.disk_bytes_before > 0 && r.disk_bytes_after > 0);
    let err = run(&e, None, false, &progress, &|| true, 0).unwrap_err();
    assert_eq!(err.kind, crate::error::ErrorKind::Cancelled);
}
