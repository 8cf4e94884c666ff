//! A disk that cannot fill: once the filesystem of the data directory is
//! under its reserve, writes are refused with `disk_full` (retryable,
//! JSON-RPC -32014, CLI exit 8) before RocksDB itself runs out; reads,
//! deletes and compaction go on; after deletes and `compact --full`,
//! writes succeed again, nothing acknowledged (and not deleted) is lost,
//! and the store passes the deep integrity check.
//!
//! On a 96 MiB tmpfs the test mounts (as root, or with passwordless sudo);
//! where mounting is impossible, on a simulated filesystem of the same size
//! (the `fault-injection` build's `RUVECTOR_STORAGE_DISK_LIMIT_BYTES`), and
//! it prints which.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use serde_json::{json, Value};

const SIZE_MB: u64 = 96;

/// Mount a tmpfs of `SIZE_MB` at `dir`; unmounted on drop.
struct Tmpfs(std::path::PathBuf, bool);

impl Tmpfs {
    fn mount(dir: &Path) -> Option<Tmpfs> {
        let size = format!("size={SIZE_MB}m");
        let args = ["-t", "tmpfs", "-o", &size, "tmpfs", dir.to_str()?];
        let ok = |c: &mut Command| c.status().is_ok_and(|s| s.success());
        if ok(Command::new("mount").args(args)) {
            return Some(Tmpfs(dir.to_path_buf(), false));
        }
        if ok(Command::new("sudo").arg("-n").arg("mount").args(args)) {
            return Some(Tmpfs(dir.to_path_buf(), true));
        }
        None
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let mut c = if self.1 {
            let mut c = Command::new("sudo");
            c.args(["-n", "umount"]);
            c
        } else {
            Command::new("umount")
        };
        let _ = c.arg(&self.0).status();
    }
}

fn noise(seed: u64, len: usize) -> String {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut s = String::with_capacity(len + 16);
    while s.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.push_str(&format!("{x:016x}"));
    }
    s.truncate(len);
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_are_refused_at_the_reserve_and_come_back_after_space_is_freed() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let mounted = Tmpfs::mount(&data);
    let limit = (SIZE_MB << 20).to_string();
    let mut env = vec![
        ("RUVECTOR_STORAGE__LIMITS__DISK_RESERVE_MB", "24"),
        ("RUVECTOR_STORAGE__ROCKSDB__WRITE_BUFFER_SIZE_MB", "2"),
        // No WAL kept for change streams: deleted data frees its space.
        ("RUVECTOR_STORAGE__CDC__WAL_RETENTION_SECS", "0"),
        ("RUVECTOR_STORAGE__CDC__WAL_RETENTION_MB", "0"),
    ];
    match &mounted {
        Some(_) => eprintln!("disk_full: on a {SIZE_MB} MiB tmpfs"),
        None if cfg!(feature = "fault-injection") => {
            eprintln!("disk_full: cannot mount a tmpfs here; simulated {SIZE_MB} MiB filesystem");
            env.push(("RUVECTOR_STORAGE_DISK_LIMIT_BYTES", &limit));
        }
        None => {
            // Neither a small filesystem nor the simulated one (a build
            // without fault injection): filling the real disk is no test.
            eprintln!(
                "disk_full: SKIPPED: cannot mount a tmpfs and not built with fault-injection"
            );
            return;
        }
    }
    let d = start_with(&data, &env, &[]);
    let c = d.client();
    ok(
        &c,
        "memory_usage",
        json!({"action": "store", "key": "m1", "value": "before the disk filled"}),
    )
    .await;
    let mut acked: Vec<u64> = Vec::new();
    let mut n = 0u64;
    let refusal = loop {
        assert!(n < 20_000, "no refusal after {n} keys");
        let entries: Vec<Value> = (n..n + 50)
            .map(|i| json!({"key": format!("k{i:06}"), "value": noise(i, 4096)}))
            .collect();
        match c.call("storage_write", json!({"entries": entries})).await {
            Ok(_) => acked.extend(n..n + 50),
            Err(e) => break e.into_error(),
        }
        n += 50;
    };
    assert_eq!(
        refusal.kind,
        ruvector_storage::error::ErrorKind::DiskFull,
        "{refusal:?}"
    );
    assert!(refusal.message.contains("reserve"), "{}", refusal.message);
    assert!(
        acked.len() > 1000,
        "wrote {} keys before the reserve",
        acked.len()
    );
    // Through the CLI, with its exit code. (Free space moves a little as
    // memtables flush and their WAL goes, so the CLI writes until refused;
    // each attempt either lands or is refused.)
    let big = noise(7, 64 * 1024);
    let mut refused = false;
    for attempt in 0..200 {
        let key = format!("cli{attempt}");
        let (code, _, stderr) =
            cli(&["write", "--key", &key, "--value", &big, "--connect", &d.url]);
        match code {
            0 => continue,
            8 => {
                assert!(stderr.contains("reserve"), "{stderr}");
                refused = true;
                break;
            }
            other => panic!("exit {other}: {stderr}"),
        }
    }
    assert!(refused, "the CLI was never refused");
    // The claude-flow v2 tool reads but does not store; snapshots are
    // refused too (they write into the same filesystem).
    let got = ok(
        &c,
        "memory_usage",
        json!({"action": "retrieve", "key": "m1"}),
    )
    .await;
    assert!(got.to_string().contains("before the disk filled"), "{got}");
    for (method, params) in [
        (
            "memory_usage",
            json!({"action": "store", "key": "m2", "value": "x"}),
        ),
        ("snapshot_create", json!({})),
    ] {
        let (code, message) = err(&c, method, params).await;
        assert_eq!(code, -32014, "{method}: {message}");
    }
    let first = format!("k{:06}", acked[0]);
    let read = ok(&c, "storage_read", json!({"key": first})).await;
    assert_eq!(read["value"], noise(acked[0], 4096));

    // Free space: delete three quarters, compact, and write again.
    let (gone, kept) = acked.split_at(acked.len() * 3 / 4);
    for chunk in gone.chunks(500) {
        let keys: Vec<String> = chunk.iter().map(|i| format!("k{i:06}")).collect();
        ok(&c, "storage_delete", json!({"keys": keys})).await;
    }
    ok(&c, "storage_compact", json!({"full": true})).await;
    ok(
        &c,
        "storage_write",
        json!({"entries": [{"key": "after", "value": "space is back"}]}),
    )
    .await;

    // Nothing acknowledged and kept is lost; the store is whole.
    for i in kept.iter().step_by(7) {
        let r = ok(&c, "storage_read", json!({"key": format!("k{i:06}")})).await;
        assert_eq!(r["value"], noise(*i, 4096), "k{i:06}");
    }
    let r = ok(
        &c,
        "storage_read",
        json!({"key": format!("k{:06}", gone[5])}),
    )
    .await;
    assert_eq!(r["found"], false);
    let check = ok(&c, "storage_check", json!({"verify_integrity": true})).await;
    assert_eq!(check["ok"], true, "{check}");
    drop(d);
    drop(mounted);
}
