//! Snapshots through the daemon: restore round trips with undo, SIGKILL at
//! every step of a restore, corruption, retention over RPC, schedules and
//! the status records.

mod common;

use common::*;
use serde_json::{json, Value};

async fn write_keys(c: &ruvector_storage::client::Client, prefix: &str, n: usize, value: &str) {
    let entries: Vec<Value> = (0..n)
        .map(|i| json!({"key": format!("{prefix}{i:04}"), "value": value}))
        .collect();
    ok(c, "storage_write", json!({"entries": entries})).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_round_trip_and_undo() {
    let dir = tempfile::tempdir().unwrap();
    let d = start(dir.path());
    let c = d.client();
    write_keys(&c, "a", 300, "A").await;
    let state_a = dump(&c).await;
    let r = ok(&c, "snapshot_create", json!({"name": "s1"})).await;
    assert_eq!(r["name"], "s1");
    write_keys(&c, "b", 300, "B").await;
    write_keys(&c, "a", 10, "A-changed").await;
    ok(&c, "memory_store", json!({"key": "m", "value": "after s1"})).await;
    let state_ab = dump(&c).await;
    assert_ne!(state_a, state_ab);

    let r = ok(&c, "snapshot_restore", json!({"name": "s1"})).await;
    let undo = r["undo_snapshot"].as_str().unwrap().to_string();
    assert!(undo.starts_with("undo-"));
    assert_eq!(dump(&c).await, state_a, "restore gives exactly A");
    assert_eq!(
        ok(&c, "memory_retrieve", json!({"key": "m"})).await["found"],
        false
    );
    // The daemon keeps serving writes after the swap.
    ok(
        &c,
        "storage_write",
        json!({"key": "zz-after", "value": "1"}),
    )
    .await;

    ok(&c, "snapshot_restore", json!({"name": undo})).await;
    assert_eq!(dump(&c).await, state_ab, "the undo snapshot gives A+B");
    assert_eq!(
        ok(&c, "memory_retrieve", json!({"key": "m"})).await["value"],
        "after s1"
    );

    let list = ok(&c, "snapshot_list", json!({"with_size": true})).await;
    let kinds: Vec<&str> = list["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.iter().filter(|k| **k == "undo").count(), 2);
    assert!(list["snapshots"][0]["exclusive_bytes"].is_number());

    // Survives a restart.
    drop(c);
    assert!(d.terminate().success());
    let d = start(dir.path());
    assert_eq!(dump(&d.client()).await, state_ab);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(feature = "fault-injection"),
    ignore = "needs the crash points: cargo test --features fault-injection"
)]
async fn sigkill_at_each_step_of_a_restore_leaves_old_or_new_state() {
    for (point, expect_new) in [
        ("restore:after-undo", false),
        ("restore:after-close", false),
        ("restore:after-prepare", false),
        ("restore:after-swap", true),
        ("restore:after-reopen", true),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut d = start_with(dir.path(), &[("RUVECTOR_STORAGE_CRASH_AT", point)], &[]);
        let c = d.client();
        write_keys(&c, "a", 200, "A").await;
        let state_a = dump(&c).await;
        ok(&c, "snapshot_create", json!({"name": "s1"})).await;
        write_keys(&c, "b", 200, "B").await;
        let state_ab = dump(&c).await;
        assert!(
            c.call("snapshot_restore", json!({"name": "s1"}))
                .await
                .is_err(),
            "{point}: daemon should have died"
        );
        let status =
            wait_timeout(&mut d.child, std::time::Duration::from_secs(20)).expect("daemon died");
        assert!(!status.success(), "{point}: killed");
        drop(d);
        let d = start(dir.path());
        let c = d.client();
        let state = dump(&c).await;
        if expect_new {
            assert_eq!(state, state_a, "{point}: new state");
        } else {
            assert_eq!(state, state_ab, "{point}: old state");
        }
        assert!(
            !dir.path().join("db.restore-tmp").exists(),
            "{point}: leftovers cleaned"
        );
        // The store is healthy: snapshots verify and writes work.
        let v = ok(&c, "snapshot_verify", json!({"name": "s1"})).await;
        assert_eq!(v["ok"], true, "{point}: {v}");
        ok(&c, "storage_write", json!({"key": "after", "value": "ok"})).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupted_snapshot_is_named_and_never_restored() {
    let dir = tempfile::tempdir().unwrap();
    let d = start(dir.path());
    let c = d.client();
    write_keys(&c, "a", 500, "A").await;
    let r = ok(&c, "snapshot_create", json!({"name": "s1", "verify": true})).await;
    assert_eq!(r["verify"]["ok"], true);
    write_keys(&c, "b", 10, "B").await;
    let before = dump(&c).await;
    let snap = dir.path().join("snapshots/s1");
    let sst = std::fs::read_dir(&snap)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "sst"))
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap();
    let mut bytes = std::fs::read(&sst).unwrap();
    std::fs::remove_file(&sst).unwrap(); // break the hard link: the live store keeps its copy
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    std::fs::write(&sst, &bytes).unwrap();
    let v = ok(&c, "snapshot_verify", json!({"name": "s1"})).await;
    assert_eq!(v["ok"], false);
    let file = sst.file_name().unwrap().to_str().unwrap();
    assert_eq!(v["bad_files"][0]["file"], file, "{v}");
    let (code, msg) = err(&c, "snapshot_restore", json!({"name": "s1"})).await;
    assert_eq!(code, -32010, "{msg}");
    assert!(msg.contains(file) && msg.contains("refusing"), "{msg}");
    assert_eq!(dump(&c).await, before, "nothing changed");
    let list = ok(&c, "snapshot_list", json!({})).await;
    assert_eq!(
        list["count"], 1,
        "no undo snapshot was made for a refused restore"
    );
    let (code, _, stderr) = cli(&["snapshot", "verify", "--name", "s1", "--connect", &d.url]);
    assert_ne!(code, 0);
    assert!(
        stderr.contains("FAILED") && stderr.contains(file),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_snapshot_input_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = start(dir.path());
    let c = d.client();
    ok(&c, "snapshot_create", json!({"name": "keep"})).await;
    for name in ["../evil", "a/b", "..", ".hidden", &"x".repeat(200)] {
        let (code, msg) = err(&c, "snapshot_create", json!({"name": name})).await;
        assert_eq!(code, -32001, "{name}: {msg}");
        let (code, _) = err(&c, "snapshot_restore", json!({"name": name})).await;
        assert_eq!(code, -32001);
    }
    assert!(!dir.path().join("evil").exists());
    let (code, _) = err(&c, "snapshot_create", json!({"name": "keep"})).await;
    assert_eq!(code, -32009);
    let (code, _) = err(&c, "snapshot_restore", json!({"name": "missing"})).await;
    assert_eq!(code, -32004);
    let (code, msg) = err(&c, "snapshot_delete", json!({"name": "keep"})).await;
    assert!(code == -32001 && msg.contains("confirm"), "{msg}");
    let (code, _, stderr) = cli(&["snapshot", "delete", "--name", "keep", "--connect", &d.url]);
    assert_eq!(code, 2);
    assert!(stderr.contains("--confirm"));
    let (code, _) = err(&c, "snapshot_prune", json!({"dry-run": true})).await;
    assert_eq!(code, -32001);
    let (code, _) = err(&c, "snapshot_prune", json!({"keep-within": "soon"})).await;
    assert_eq!(code, -32001);
    let list = ok(&c, "snapshot_list", json!({})).await;
    assert_eq!(list["count"], 1);
    assert_eq!(list["snapshots"][0]["name"], "keep");
    let r = ok(
        &c,
        "snapshot_delete",
        json!({"name": "keep", "confirm": true}),
    )
    .await;
    assert_eq!(r["deleted"], "keep");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prune_plans_then_applies_and_keeps_newest_verified() {
    let dir = tempfile::tempdir().unwrap();
    let d = start(dir.path());
    let c = d.client();
    for i in 0..5 {
        write_keys(&c, &format!("p{i}-"), 5, "x").await;
        ok(
            &c,
            "snapshot_create",
            json!({"name": format!("s{i}"), "verify": i == 1}),
        )
        .await;
    }
    let plan = ok(
        &c,
        "snapshot_prune",
        json!({"keep-last": 2, "dry-run": true}),
    )
    .await;
    assert_eq!(plan["delete"], 2);
    assert_eq!(
        ok(&c, "snapshot_list", json!({})).await["count"],
        5,
        "dry run deletes nothing"
    );
    let (code, out, _) = cli(&[
        "snapshot",
        "prune",
        "--keep-last",
        "2",
        "--dry-run",
        "--connect",
        &d.url,
    ]);
    assert_eq!(code, 0);
    assert!(
        out.contains("delete s0") && out.contains("newest verified snapshot"),
        "{out}"
    );
    let r = ok(&c, "snapshot_prune", json!({"keep-last": 2})).await;
    assert_eq!(r["deleted"], json!(["s2", "s0"]));
    let names: Vec<String> = ok(&c, "snapshot_list", json!({})).await["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["s1", "s3", "s4"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedules_list_reload_and_status_records() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("jobs.toml");
    let good =
        "[[job]]\nname = \"nightly\"\ncron = \"0 30 2 * * *\"\naction = \"snapshot.create\"\n";
    std::fs::write(&file, good).unwrap();
    // An invalid file at start: refused with file and line.
    let bad_at_start = "[[job]]\nname = \"x\"\ncron = \"0 0 * * *\"\naction = \"wal.checkpoint\"\n[[job]]\nname = \"y\"\ncron = \"every tuesday\"\naction = \"wal.checkpoint\"\n";
    let bad_file = dir.path().join("bad.toml");
    std::fs::write(&bad_file, bad_at_start).unwrap();
    let data = dir.path().join("data");
    let out = std::process::Command::new(BIN)
        .env("RUVECTOR_STORAGE__SCHEDULE_FILE", &bad_file)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    let (code, stderr) = (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert_ne!(code, 0);
    assert!(
        stderr.contains("bad.toml:5") && stderr.contains("cron"),
        "{stderr}"
    );

    let d = start_with(
        &data,
        &[
            ("RUVECTOR_STORAGE__SCHEDULE_FILE", file.to_str().unwrap()),
            ("RUVECTOR_STORAGE__STATUS_INTERVAL_SECS", "1"),
        ],
        &[],
    );
    let c = d.client();
    let l = ok(&c, "schedule_list", json!({})).await;
    assert_eq!(l["count"], 1);
    assert_eq!(l["jobs"][0]["name"], "nightly");
    assert!(
        l["jobs"][0]["next_run"]
            .as_str()
            .unwrap()
            .ends_with("T02:30:00.000Z"),
        "{l}"
    );

    // A broken edit + SIGHUP: refused, the running schedule stays.
    std::fs::write(
        &file,
        "[[job]]\nname = \"n\"\ncron = \"0 0 * * *\"\naction = \"snapshot.frobnicate\"\n",
    )
    .unwrap();
    d.signal(libc::SIGHUP);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let h = ok(&c, "system_health", json!({})).await;
        if let Some(e) = h["actors"]["scheduler"]["last_error"].as_str() {
            assert!(
                e.contains("jobs.toml:1") && e.contains("unknown action"),
                "{e}"
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "reload error never recorded: {h}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        ok(&c, "schedule_list", json!({})).await["jobs"][0]["name"],
        "nightly"
    );
    // The refused reload reaches the errors namespace with a recovery action.
    loop {
        let r = ok(&c, "memory_usage", json!({"action": "retrieve", "key": "swarm/storage/errors", "namespace": "ruvector/errors"})).await;
        if r["found"] == true && r["value"]["operation"] == "scheduler" {
            assert!(
                r["value"]["error"]
                    .as_str()
                    .unwrap()
                    .contains("unknown action"),
                "{r}"
            );
            assert!(
                r["value"]["recovery_action"]
                    .as_str()
                    .unwrap()
                    .contains("SIGHUP"),
                "{r}"
            );
            assert!(r["value"]["timestamp"].is_number());
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "error never published: {r}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // A good edit + SIGHUP: applied.
    std::fs::write(
        &file,
        "[[job]]\nname = \"often\"\ncron = \"0 */5 * * * *\"\naction = \"wal.checkpoint\"\n",
    )
    .unwrap();
    d.signal(libc::SIGHUP);
    loop {
        let l = ok(&c, "schedule_list", json!({})).await;
        if l["jobs"][0]["name"] == "often" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "reload never applied: {l}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    // Snapshot status reaches stats and the bus.
    ok(&c, "snapshot_create", json!({"name": "one"})).await;
    let stats = ok(&c, "storage_stats", json!({})).await;
    assert_eq!(stats["records"]["snapshots"]["count"], 1, "{stats}");
    assert_eq!(
        stats["records"]["snapshots"]["last_operation"]["operation"],
        "snapshot_create"
    );
    loop {
        let r = ok(
            &c,
            "memory_retrieve",
            json!({"key": "swarm/storage/snapshots", "namespace": "ruvector/storage"}),
        )
        .await;
        if r["found"] == true {
            let v: Value = serde_json::from_str(r["value"].as_str().unwrap()).unwrap();
            if v["count"] == 1 {
                assert_eq!(v["newest"]["name"], "one");
                break;
            }
        }
        assert!(
            std::time::Instant::now() < deadline + std::time::Duration::from_secs(10),
            "snapshots record never published: {r}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    write_keys(&c, "cp", 50, "C").await;
    let w = ok(&c, "wal_checkpoint", json!({})).await;
    assert!(
        w["memtable_bytes_after"].as_u64().unwrap() < w["memtable_bytes_before"].as_u64().unwrap(),
        "the checkpoint moved the memtables to disk: {w}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlapping_restores_are_serialised() {
    let dir = tempfile::tempdir().unwrap();
    let d = start(dir.path());
    let c = d.client();
    write_keys(&c, "a", 100, "A").await;
    ok(&c, "snapshot_create", json!({"name": "s1"})).await;
    let s1 = dump(&c).await;
    write_keys(&c, "b", 100, "B").await;
    ok(&c, "snapshot_create", json!({"name": "s2"})).await;
    let s2 = dump(&c).await;
    let (r1, r2) = tokio::join!(
        c.call("snapshot_restore", json!({"name": "s1"})),
        c.call("snapshot_restore", json!({"name": "s2"}))
    );
    assert!(r1.is_ok() && r2.is_ok(), "{r1:?} {r2:?}");
    let state = dump(&c).await;
    assert!(
        state == s1 || state == s2,
        "the store is exactly one of the snapshots"
    );
    let list = ok(&c, "snapshot_list", json!({})).await;
    assert_eq!(
        list["count"], 4,
        "two snapshots and two undo snapshots: {list}"
    );
}
