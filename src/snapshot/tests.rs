use std::sync::Arc;

use super::*;
use crate::clock::ManualClock;
use crate::config::Config;
use crate::engine::Engine;

fn setup() -> (tempfile::TempDir, Config, Arc<Engine>, SnapshotStore) {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        data_dir: dir.path().to_path_buf(),
        sync: "never".into(),
        ..Config::default()
    };
    let engine = Engine::open(&config, Arc::new(ManualClock::new(0))).unwrap();
    let store = SnapshotStore::open(dir.path()).unwrap();
    (dir, config, engine, store)
}

fn put(e: &Engine, from: usize, to: usize) {
    let entries: Vec<(String, String)> = (from..to)
        .map(|i| (format!("k{i:06}"), "v".repeat(200)))
        .collect();
    e.kv_put_many(&entries).unwrap();
}

#[test]
fn create_list_verify_and_sizes() {
    let (_d, config, e, store) = setup();
    put(&e, 0, 2000);
    let m = store.create(&e, "first", Kind::Manual, 1_000).unwrap();
    assert!(m.files.iter().any(|f| f.name.ends_with(".sst")));
    assert!(m.files.iter().any(|f| f.name == "CURRENT"));
    assert_eq!(m.total_bytes, m.files.iter().map(|f| f.size).sum::<u64>());
    let list = store.list(true).unwrap();
    assert_eq!(list.len(), 1);
    // Every SST is still linked from the live store: only copied files are exclusive.
    let sst_bytes: u64 = m
        .files
        .iter()
        .filter(|f| f.name.ends_with(".sst"))
        .map(|f| f.size)
        .sum();
    assert!(list[0].exclusive_bytes.unwrap() <= m.total_bytes - sst_bytes);
    let r = store.verify("first", &config, 2_000).unwrap();
    assert!(r.ok, "{r:?}");
    assert_eq!(
        r.keys_read,
        2000 + 2,
        "every kv key plus schema_version and history_id"
    );
    assert_eq!(store.list(false).unwrap()[0].verified, Some(true));

    // Overwrites + compaction: the old snapshot now alone holds its SSTs.
    put(&e, 0, 4000);
    e.flush().unwrap();
    e.db()
        .compact_range_cf(e.cf(crate::engine::Cf::Kv), None::<&[u8]>, None::<&[u8]>);
    store.create(&e, "second", Kind::Manual, 3_000).unwrap();
    let list = store.list(true).unwrap();
    assert_eq!(
        list.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        ["first", "second"]
    );
    let kv_sst = m
        .files
        .iter()
        .filter(|f| f.name.ends_with(".sst"))
        .map(|f| f.size)
        .max()
        .unwrap();
    assert!(kv_sst > 10_000);
    assert!(
        list[0].exclusive_bytes.unwrap() >= kv_sst,
        "the compacted-away kv SST belongs to the snapshot alone: {list:?}"
    );
}

#[test]
fn a_corrupted_byte_is_found_and_named() {
    let (_d, config, e, store) = setup();
    put(&e, 0, 500);
    let m = store.create(&e, "s", Kind::Manual, 1).unwrap();
    let sst = m.files.iter().find(|f| f.name.ends_with(".sst")).unwrap();
    let path = store.dir("s").join(&sst.name);
    // Break the hard link first so the live store keeps its good copy.
    let bytes = std::fs::read(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    let mut bad = bytes.clone();
    bad[bytes.len() / 2] ^= 0x01;
    std::fs::write(&path, bad).unwrap();
    let r = store.verify("s", &config, 2).unwrap();
    assert!(!r.ok);
    assert_eq!(r.bad_files.len(), 1);
    assert_eq!(r.bad_files[0].file, sst.name);
    assert!(
        r.bad_files[0].problem.contains("crc32c"),
        "{:?}",
        r.bad_files
    );
    assert_eq!(store.list(false).unwrap()[0].verified, Some(false));
    // Truncation is named too.
    std::fs::write(&path, &bytes[..10]).unwrap();
    let r = store.verify("s", &config, 3).unwrap();
    assert!(r.bad_files[0].problem.contains("size"), "{:?}", r.bad_files);
    // The live store is untouched.
    assert_eq!(e.kv_get("k000001").unwrap().map(|v| v.len()), Some(200));
}

#[test]
fn incomplete_snapshots_are_never_listed_and_are_cleaned() {
    let (d, _config, e, store) = setup();
    put(&e, 0, 10);
    store.create(&e, "good", Kind::Manual, 1).unwrap();
    let root = store.root().to_path_buf();
    std::fs::create_dir_all(root.join(".tmp-half")).unwrap();
    std::fs::create_dir_all(root.join("no-manifest")).unwrap();
    std::fs::write(root.join("no-manifest").join("000001.sst"), b"x").unwrap();
    std::fs::create_dir_all(root.join("bad-manifest")).unwrap();
    std::fs::write(root.join("bad-manifest").join(MANIFEST), b"{not json").unwrap();
    let names: Vec<String> = store
        .list(false)
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, ["good"]);
    assert!(store.manifest("no-manifest").is_err());
    drop(store);
    let store = SnapshotStore::open(d.path()).unwrap();
    assert!(!root.join(".tmp-half").exists());
    assert!(!root.join("no-manifest").exists());
    assert!(
        root.join("bad-manifest").exists(),
        "an unreadable manifest is kept, not deleted"
    );
    assert!(root.join("good").exists());
    assert_eq!(store.list(false).unwrap().len(), 1);
}

#[test]
fn bad_names_missing_snapshots_and_unconfirmed_deletes_change_nothing() {
    let (_d, _config, e, store) = setup();
    for bad in [
        "",
        "../x",
        "a/b",
        ".hidden",
        "x".repeat(129).as_str(),
        "sp ace",
        "..",
        "a\0b",
    ] {
        let err = store.create(&e, bad, Kind::Manual, 1).unwrap_err();
        assert_eq!(err.kind, crate::error::ErrorKind::InvalidInput, "{bad:?}");
    }
    assert!(std::fs::read_dir(store.root())
        .unwrap()
        .filter_map(|e| e.ok())
        .all(|e| e.file_name().to_string_lossy().starts_with('.')));
    store.create(&e, "keep-me", Kind::Manual, 1).unwrap();
    assert_eq!(
        store
            .create(&e, "keep-me", Kind::Manual, 2)
            .unwrap_err()
            .kind,
        crate::error::ErrorKind::AlreadyExists
    );
    let err = store.delete("keep-me", false).unwrap_err();
    assert!(err.message.contains("--confirm"));
    assert!(store.dir("keep-me").exists());
    assert_eq!(
        store.delete("nope", true).unwrap_err().kind,
        crate::error::ErrorKind::NotFound
    );
    store.delete("keep-me", true).unwrap();
    assert!(store.list(false).unwrap().is_empty());
}

#[test]
fn default_names_are_valid_timestamps() {
    let n = default_name("snap", 1_767_225_600_123);
    assert_eq!(n, "snap-20260101-000000-123");
    check_name(&n).unwrap();
}
