//! Backups through the daemon against every target that runs here: the
//! local filesystem, S3 (moto_server), GCS (object_store's GCS client
//! against moto_server, which speaks the same XML API) and Azure Blob
//! (Azurite), the servers started on loopback by this test. One body: an incremental chain of five
//! backups (files and WAL-based incrementals mixed), list, verify
//! --read-data, restore of every backup into a
//! fresh directory (opened by a second daemon and compared key by key),
//! restore into the running daemon, and refusal of a non-empty target.
//! Also: SIGTERM in the middle of an upload, and the `backup.*` schedule
//! actions firing inside a running daemon.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::servers::*;
use common::*;
use ruvector_storage::client::Client;
use serde_json::{json, Value};

async fn round_trip(tmp: &Path, env: &[(String, String)], url: &str) {
    let env_ref: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let d = start_with(&tmp.join("data"), &env_ref, &[]);
    let c = d.client();
    let mut states = Vec::new();
    let mut manifests: Vec<Value> = Vec::new();
    for round in 0..5 {
        let entries: Vec<Value> = (0..400)
            .map(|i| json!({"key": format!("k{:05}", i + round * 50), "value": format!("r{round}-{i}-{}", "v".repeat(100))}))
            .collect();
        ok(&c, "storage_write", json!({"entries": entries})).await;
        ok(
            &c,
            "storage_delete",
            json!({"key": format!("k{:05}", round * 7)}),
        )
        .await;
        ok(&c, "wal_checkpoint", json!({})).await;
        states.push(dump(&c).await);
        // b0 full; b1 and b4 new files only; b2 and b3 the WAL since b1.
        let method = if round == 2 || round == 3 {
            "wal"
        } else {
            "files"
        };
        let m = ok(
            &c,
            "backup_create",
            json!({"destination": url, "name": format!("b{round}"), "method": method}),
        )
        .await;
        manifests.push(m);
    }
    assert_eq!(manifests[0]["uploaded_objects"], manifests[0]["files"]);
    for (i, w) in manifests.windows(2).enumerate() {
        assert_eq!(w[1]["parent"], w[0]["name"]);
        assert_eq!(
            w[1]["first_sequence"].as_u64(),
            w[0]["sequence"].as_u64().map(|s| s + 1)
        );
        if i == 1 || i == 2 {
            // WAL-based: no files, segments from the base b1 on.
            assert_eq!(w[1]["method"], "wal", "{}", w[1]);
            assert_eq!(w[1]["base"], "b1", "{}", w[1]);
            assert_eq!(w[1]["files"], 0, "{}", w[1]);
            assert!(w[1]["wal_segments"].as_u64().unwrap() >= 1, "{}", w[1]);
            assert!(w[1]["uploaded_bytes"].as_u64().unwrap() > 0, "{}", w[1]);
        } else {
            assert_eq!(w[1]["method"], "files", "{}", w[1]);
            assert!(
                w[1]["uploaded_objects"].as_u64() < w[1]["files"].as_u64(),
                "incremental: {}",
                w[1]
            );
        }
    }
    let list = ok(&c, "backup_list", json!({"location": url})).await;
    let names: Vec<&str> = list["backups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["b0", "b1", "b2", "b3", "b4"]);
    let v = read_verify(&c, json!({"location": url, "name": "b2"})).await;
    assert_eq!(v["ok"], true, "{v}");
    assert!(v["bytes_read"].as_u64().unwrap() > 0);

    // Every backup of the chain restores to exactly its state.
    for (i, want) in states.iter().enumerate() {
        let out = tmp.join(format!("restored-{i}"));
        let r = ok(
            &c,
            "backup_restore",
            json!({"from": url, "name": format!("b{i}"),
            "to": out.display().to_string()}),
        )
        .await;
        assert_eq!(r["restored"], format!("b{i}"));
        if i == 2 || i == 3 {
            assert_eq!(r["base"], "b1", "{r}");
            assert!(r["replayed_batches"].as_u64().unwrap() >= 2, "{r}");
        }
        let d2 = start(&out);
        assert_eq!(&dump(&d2.client()).await, want, "backup b{i}");
        d2.terminate();
    }
    // A non-empty target is refused and left alone.
    let busy = tmp.join("busy");
    std::fs::create_dir_all(&busy).unwrap();
    std::fs::write(busy.join("keep.txt"), "mine").unwrap();
    let (code, msg) = err(
        &c,
        "backup_restore",
        json!({"from": url, "to": busy.display().to_string()}),
    )
    .await;
    assert!(
        code == -32001 && msg.contains("not empty") && msg.contains("--force"),
        "{msg}"
    );
    assert_eq!(
        std::fs::read_to_string(busy.join("keep.txt")).unwrap(),
        "mine"
    );

    // Restore into the running daemon: later writes are rolled back.
    ok(
        &c,
        "storage_write",
        json!({"key": "after-b4", "value": "x"}),
    )
    .await;
    let r = ok(&c, "backup_restore", json!({"from": url, "name": "b4"})).await;
    assert!(r["undo_snapshot"].is_string(), "{r}");
    assert_eq!(&dump(&c).await, &states[4]);
    d.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_target() {
    let tmp = tempfile::tempdir().unwrap();
    let url = format!("file://{}", tmp.path().join("backups").display());
    round_trip(tmp.path(), &[], &url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_target_on_moto() {
    let tmp = tempfile::tempdir().unwrap();
    let (_server, env, url) = moto();
    round_trip(tmp.path(), &env, &url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcs_target_through_the_xml_api_on_moto() {
    let tmp = tempfile::tempdir().unwrap();
    let (_server, env, url) = gcs_on_moto();
    round_trip(tmp.path(), &env, &url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_target_on_azurite() {
    let tmp = tempfile::tempdir().unwrap();
    let (_server, env, url) = azurite(tmp.path());
    round_trip(tmp.path(), &env, &url).await;
}

#[test]
fn cli_backup_commands_and_default_destination() {
    let tmp = tempfile::tempdir().unwrap();
    let d = start(&tmp.path().join("data"));
    let url = d.url.clone();
    let (code, out, e) = cli(&["write", "--connect", &url, "--key", "a", "--value", "1"]);
    assert_eq!(code, 0, "{e}{out}");
    let (code, out, e) = cli(&[
        "backup",
        "create",
        "--connect",
        &url,
        "--name",
        "first",
        "--json",
    ]);
    assert_eq!(code, 0, "{e}");
    let v: Value = serde_json::from_str(&out).unwrap();
    let dest = v["destination"].as_str().unwrap().to_string();
    assert!(
        dest.ends_with("/data/backups"),
        "default destination {dest}"
    );
    let (code, _, e) = cli(&[
        "backup",
        "verify",
        "--connect",
        &url,
        "--read-data-subset",
        "50%",
    ]);
    assert_eq!(code, 0, "{e}");
    // On a terminal (script(1) gives the CLI a pty) restore draws progress
    // and leaves the final figures: every file of the backup downloaded.
    let files = v["files"].as_u64().unwrap();
    let to = tmp.path().join("progress");
    let line = format!(
        "{} backup restore --connect {url} --name first --to {}",
        env!("CARGO_BIN_EXE_ruvector-storage"),
        to.display()
    );
    let out = Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{shown}");
    assert!(
        shown.contains("backup_restore · downloading [")
            && shown.contains(&format!("100%  {files}/{files} files")),
        "{shown}"
    );
    assert!(to.join("db/CURRENT").exists());
    // Encrypted through the daemon: the keyring is created 0600 on first use.
    let (code, out, e) = cli(&[
        "backup",
        "create",
        "--connect",
        &url,
        "--name",
        "sealed",
        "--encrypt",
        "--json",
    ]);
    assert_eq!(code, 0, "{e}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["name"], "sealed");
    let ring = tmp.path().join("data/backup-keyring.json");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&ring).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let (code, out, e) = cli(&[
        "backup",
        "verify",
        "--connect",
        &url,
        "--name",
        "sealed",
        "--read-data",
    ]);
    assert_eq!(code, 0, "{e}{out}");
    // Damage an object: verify names it and exits 5.
    let objects: PathBuf = tmp.path().join("data/backups/objects");
    for victim in walk(&objects) {
        std::fs::write(&victim, b"garbage").unwrap();
    }
    let (code, out, e) = cli(&[
        "backup",
        "verify",
        "--connect",
        &url,
        "--name",
        "first",
        "--read-data",
    ]);
    assert_eq!(code, 5, "{out}");
    assert!(e.contains("objects/"), "the bad object is named: {e}");
    let (code, _, e) = cli(&[
        "backup",
        "create",
        "--connect",
        &url,
        "--destination",
        "ftp://x/y",
    ]);
    assert_eq!(code, 2, "{e}");
    assert!(e.contains("not supported"), "{e}");
}

/// `backup_verify` with `read_data`: the report.
async fn read_verify(c: &Client, mut params: Value) -> Value {
    params["read_data"] = json!(true);
    ok(c, "backup_verify", params).await
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prune_copy_and_drill() {
    let tmp = tempfile::tempdir().unwrap();
    let (d, backups) = start_backing_up(
        tmp.path(),
        &format!(
            "pitr-window-secs = 0\ncopy-to = \"file://{}\"\n",
            tmp.path().join("region2").display()
        ),
    );
    let c = d.client();
    for round in 0..4 {
        let entries: Vec<Value> = (0..300)
            .map(|i| json!({"key": format!("r{round}-{i:04}"), "value": "v".repeat(200)}))
            .collect();
        ok(&c, "storage_write", json!({"entries": entries})).await;
        ok(&c, "wal_checkpoint", json!({})).await;
        ok(
            &c,
            "backup_create",
            json!({"name": format!("b{round}"), "method": "files"}),
        )
        .await;
        ok(&c, "wal_archive", json!({})).await;
    }
    // Each backup was also copied to the second destination.
    let region2 = format!("file://{}", tmp.path().join("region2").display());
    let l2 = ok(&c, "backup_list", json!({"location": region2})).await;
    assert_eq!(l2["count"], 4, "{l2}");
    let v2 = read_verify(&c, json!({"location": region2})).await;
    assert_eq!(v2["ok"], true, "{v2}");
    let objects_before = walk(&backups.join("objects")).len();
    // The plan first: nothing is deleted.
    let plan = ok(&c, "backup_prune", json!({"keep-last": 2, "dry-run": true})).await;
    assert_eq!(plan["delete"], json!(["b1", "b0"]), "{plan}");
    assert_eq!(ok(&c, "backup_list", json!({})).await["count"], 4);
    // A policy that keeps nothing is refused.
    let (code, msg) = err(&c, "backup_prune", json!({"keep-last": 0})).await;
    assert!(code == -32001 && msg.contains("delete everything"), "{msg}");
    let done = ok(&c, "backup_prune", json!({"keep-last": 2})).await;
    assert!(done["delete_objects"].as_u64().unwrap() > 0, "{done}");
    let left: Vec<String> = ok(&c, "backup_list", json!({})).await["backups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(left, ["b2", "b3"]);
    assert!(walk(&backups.join("objects")).len() < objects_before);
    // What is left is whole: read-data verify and a restore of the oldest.
    for name in ["b2", "b3"] {
        let v = read_verify(&c, json!({"name": name})).await;
        assert_eq!(v["ok"], true, "{v}");
    }
    let out = tmp.path().join("r2");
    ok(
        &c,
        "backup_restore",
        json!({"name": "b2", "to": out.display().to_string()}),
    )
    .await;
    let d2 = start(&out);
    let n = ok(
        &d2.client(),
        "storage_scan",
        json!({"prefix": "r2-", "limit": 1000}),
    )
    .await["count"]
        .clone();
    assert_eq!(n, 300);
    d2.terminate();
    // PITR still works from the oldest kept backup: its WAL was kept.
    let latest = ok(&c, "system_health", json!({})).await["latest_sequence"]
        .as_u64()
        .unwrap();
    let out = tmp.path().join("pitr");
    let r = ok(
        &c,
        "backup_restore",
        json!({"name": "b2", "to": out.display().to_string(),
        "to_sequence": latest}),
    )
    .await;
    assert!(r["replayed_batches"].as_u64().unwrap() >= 1, "{r}");

    // Copy to a second location, incrementally.
    let second = tmp.path().join("second");
    let to = format!("file://{}", second.display());
    let first = ok(&c, "backup_copy", json!({"to": to})).await;
    assert_eq!(first["copied_backups"], json!(["b2", "b3"]));
    let again = ok(&c, "backup_copy", json!({"to": to})).await;
    assert_eq!(again["copied_objects"], 0, "{again}");
    let v = read_verify(&c, json!({"location": to})).await;
    assert_eq!(v["ok"], true, "{v}");

    // The drill restores the newest into a scratch dir, reads it, cleans up, and publishes.
    let drill = ok(&c, "backup_drill", json!({})).await;
    assert_eq!(drill["ok"], true);
    assert!(drill["keys"].as_u64().unwrap() >= 1200, "{drill}");
    let stats = ok(&c, "storage_stats", json!({})).await;
    assert_eq!(stats["records"]["backup"]["drill"]["ok"], true, "{stats}");
    let leftovers: Vec<_> = std::fs::read_dir(tmp.path().join("data"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains("drill"))
        .collect();
    assert!(leftovers.is_empty(), "the drill removes its scratch");
    d.terminate();
}

/// WAL-based incrementals with encryption on: segments are sealed (no
/// plaintext anywhere in the target), a damaged segment is named by verify
/// and refused by restore, and `auto` picks the WAL while it is small.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wal_incrementals_encrypted_verified_and_refused_when_damaged() {
    let tmp = tempfile::tempdir().unwrap();
    let (d, backups) = start_backing_up(tmp.path(), "encrypt = true\n");
    let c = d.client();
    // Nothing to build on yet: a WAL-based backup is refused, clearly.
    let (code, msg) = err(&c, "backup_create", json!({"method": "wal"})).await;
    assert!(
        code == -32004 && msg.contains("first backup"),
        "{code} {msg}"
    );
    let (code, msg) = err(&c, "backup_create", json!({"method": "tape"})).await;
    assert!(code == -32602 || code == -32001, "{code} {msg}");
    assert!(msg.contains("tape"), "{msg}");
    assert_eq!(ok(&c, "backup_list", json!({})).await["count"], 0);

    let write = |round: usize| {
        let entries: Vec<Value> = (0..200)
            .map(|i| json!({"key": format!("r{round}-{i:03}"), "value": format!("plaintext-secret-{round}-{i}")}))
            .collect();
        json!({"entries": entries})
    };
    ok(&c, "storage_write", write(0)).await;
    let b0 = ok(&c, "backup_create", json!({"name": "b0"})).await;
    assert_eq!(b0["method"], "files", "{b0}");
    let mut states = Vec::new();
    for round in 1..=2 {
        ok(&c, "storage_write", write(round)).await;
        ok(
            &c,
            "storage_delete",
            json!({"key": format!("r{}-000", round - 1)}),
        )
        .await;
        states.push(dump(&c).await);
        let b = ok(&c, "backup_create", json!({"name": format!("b{round}")})).await;
        assert_eq!(b["method"], "wal", "auto picks the small WAL: {b}");
        assert_eq!(b["base"], "b0", "{b}");
    }
    let files = walk(&backups);
    let segments: Vec<&PathBuf> = files
        .iter()
        .filter(|p| p.to_string_lossy().contains("/wal/"))
        .filter(|p| !p.ends_with("START") && !p.ends_with("HISTORY"))
        .filter(|p| !p.ends_with("ENCRYPTED") && !p.ends_with("END"))
        .collect();
    assert!(!segments.is_empty());
    for p in &segments {
        assert!(p.to_string_lossy().ends_with(".eseg"), "{}", p.display());
    }
    for p in &files {
        let body = std::fs::read(p).unwrap();
        assert!(
            !body.windows(17).any(|w| w == b"plaintext-secret-"),
            "{} holds plaintext",
            p.display()
        );
    }
    for (i, want) in states.iter().enumerate() {
        let name = format!("b{}", i + 1);
        let v = read_verify(&c, json!({"name": name})).await;
        assert_eq!(v["ok"], true, "{v}");
        let out = tmp.path().join(format!("restored-{name}"));
        ok(
            &c,
            "backup_restore",
            json!({"name": name, "to": out.display().to_string()}),
        )
        .await;
        let d2 = start(&out);
        assert_eq!(&dump(&d2.client()).await, want, "backup {name}");
        d2.terminate();
    }
    // A flipped byte in a segment: verify names it, restore refuses and
    // writes nothing.
    let victim = segments[segments.len() - 1];
    let mut body = std::fs::read(victim).unwrap();
    let n = body.len();
    body[n / 2] ^= 0x40;
    std::fs::write(victim, &body).unwrap();
    let v = read_verify(&c, json!({"name": "b2"})).await;
    assert_eq!(v["ok"], false, "{v}");
    let named = v["bad"][0]["object"].as_str().unwrap();
    assert!(victim.to_string_lossy().ends_with(named), "{v}");
    let out = tmp.path().join("broken");
    let (code, msg) = err(
        &c,
        "backup_restore",
        json!({"name": "b2", "to": out.display().to_string()}),
    )
    .await;
    assert!(code != 0 && msg.contains("SHA-256"), "{msg}");
    assert!(!out.exists(), "nothing was written at the target");
    d.terminate();
}

/// A restore into the daemon rewinds the store: its history forks, and
/// nothing chains the old history's archived batches onto the new one,
/// even once the new history's sequences pass the archive's end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_forks_the_history_and_nothing_chains_across_it() {
    let tmp = tempfile::tempdir().unwrap();
    let (d, _backups) = start_backing_up(tmp.path(), "");
    let c = d.client();
    let batch = |tag: &str, n: usize| {
        let entries: Vec<Value> = (0..n)
            .map(|i| json!({"key": format!("{tag}-{i:04}"), "value": format!("{tag} value {i}")}))
            .collect();
        json!({"entries": entries})
    };
    ok(&c, "storage_write", batch("old0", 50)).await;
    ok(
        &c,
        "backup_create",
        json!({"name": "b0", "method": "files"}),
    )
    .await;
    ok(&c, "storage_write", batch("old1", 300)).await;
    let archived = ok(&c, "wal_archive", json!({})).await;
    let archive_end = archived["to_sequence"].as_u64().unwrap();
    // Back to b0, then past the archive's end with other writes.
    ok(&c, "backup_restore", json!({"name": "b0"})).await;
    ok(&c, "storage_write", batch("new", 600)).await;
    let latest = ok(&c, "system_health", json!({})).await["latest_sequence"]
        .as_u64()
        .unwrap();
    assert!(latest > archive_end, "{latest} <= {archive_end}");
    let (code, msg) = err(&c, "wal_archive", json!({})).await;
    assert!(
        code == -32001 && msg.contains("another store history"),
        "{code} {msg}"
    );
    let (code, msg) = err(&c, "backup_create", json!({"name": "w", "method": "wal"})).await;
    assert!(
        code == -32001 && msg.contains("another store history"),
        "{code} {msg}"
    );
    let b1 = ok(&c, "backup_create", json!({"name": "b1"})).await;
    assert_eq!(b1["method"], "files", "{b1}");
    assert!(
        b1["why_not_wal"].as_str().unwrap().contains("history"),
        "{b1}"
    );
    // The fallback is not routine: it is on the board (and so published
    // to ruvector/errors), not only in the result.
    let actors = ok(&c, "storage_stats", json!({})).await["actors"].clone();
    let last = actors["backup"]["last_error"].as_str().unwrap_or_default();
    assert!(
        last.contains("backup b1") && last.contains("uploads files instead"),
        "{actors}"
    );
    // b1 restores to exactly the new history's state.
    let want = dump(&c).await;
    assert!(want.iter().all(|(k, _)| !k.starts_with("old1")));
    let out = tmp.path().join("r1");
    ok(
        &c,
        "backup_restore",
        json!({"name": "b1", "to": out.display().to_string()}),
    )
    .await;
    let d2 = start(&out);
    assert_eq!(dump(&d2.client()).await, want);
    d2.terminate();
    // Rolling b1 forward with the old history's archive is refused.
    let (code, msg) = err(
        &c,
        "backup_restore",
        json!({"to_sequence": b1["sequence"], "to": tmp.path().join("pitr").display().to_string()}),
    )
    .await;
    assert!(
        code == -32001 && msg.contains("another store history"),
        "{code} {msg}"
    );
    assert!(!tmp.path().join("pitr").exists());
    d.terminate();
}

/// Encryption of the WAL archive is sticky: once an encrypted backup (here
/// a first, files backup) was made to a location, the continuous archiver
/// encrypts from then on, with `[backup] encrypt` off, and after a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_encrypted_backup_keeps_the_wal_archive_encrypted_from_then_on() {
    let tmp = tempfile::tempdir().unwrap();
    let archiving = "archive-wal = true\narchive-interval-ms = 100\n";
    let (d, backups) = start_backing_up(tmp.path(), archiving);
    let c = d.client();
    let write = |round: usize| {
        let entries: Vec<Value> = (0..100)
            .map(|i| json!({"key": format!("s{round}-{i:03}"), "value": format!("secret-{round}-{i}")}))
            .collect();
        json!({"entries": entries})
    };
    let segments = || {
        let mut s: Vec<String> = walk(&backups)
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .filter(|p| p.contains("/wal/") && (p.ends_with(".seg") || p.ends_with(".eseg")))
            .collect();
        s.sort();
        s
    };
    // Wait for the continuous archiver to pass the store's sequence.
    let caught_up = async |c: &Client| {
        let latest = ok(c, "system_health", json!({})).await["latest_sequence"]
            .as_u64()
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let s = ok(c, "storage_stats", json!({})).await;
            let at = s["records"]["backup"]["wal_archive"]["archived_sequence"].as_u64();
            if at >= Some(latest) {
                return;
            }
            assert!(std::time::Instant::now() < deadline, "archiver stuck: {s}");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    };
    caught_up(&c).await;
    ok(&c, "storage_write", write(0)).await;
    caught_up(&c).await;
    let first = segments();
    assert!(
        !first.is_empty() && first.iter().all(|s| s.ends_with(".seg")),
        "plaintext before encryption is asked for: {first:?}"
    );
    let b0 = ok(&c, "backup_create", json!({"name": "b0", "encrypt": true})).await;
    assert_eq!(b0["method"], "files", "{b0}");
    ok(&c, "storage_write", write(1)).await;
    ok(&c, "storage_write", write(2)).await;
    caught_up(&c).await;
    let b1 = ok(&c, "backup_create", json!({"name": "b1", "encrypt": true})).await;
    assert_eq!(b1["method"], "wal", "segments after b0 are encrypted: {b1}");
    drop(c);
    d.terminate();
    let d = start_with_config(
        &tmp.path().join("data"),
        &format!(
            "[backup]\ndestination = \"file://{}\"\n{archiving}",
            backups.display()
        ),
    );
    let c = d.client();
    ok(&c, "storage_write", write(3)).await;
    caught_up(&c).await;
    let segs = segments();
    let later: Vec<&String> = segs.iter().filter(|s| !first.contains(s)).collect();
    assert!(later.len() >= 2, "{segs:?}");
    assert!(later.iter().all(|s| s.ends_with(".eseg")), "{segs:?}");
    for p in walk(&backups) {
        let body = std::fs::read(&p).unwrap();
        for round in 1..=3 {
            let needle = format!("secret-{round}-");
            assert!(
                !body.windows(needle.len()).any(|w| w == needle.as_bytes()),
                "{} holds plaintext of round {round}",
                p.display()
            );
        }
    }
    // The mixed archive still rolls b1 forward to the newest write.
    let latest = ok(&c, "system_health", json!({})).await["latest_sequence"].clone();
    let out = tmp.path().join("pitr");
    ok(
        &c,
        "backup_restore",
        json!({"to_sequence": latest, "to": out.display().to_string()}),
    )
    .await;
    let want = dump(&c).await;
    drop(c);
    d.terminate();
    let d2 = start(&out);
    assert_eq!(dump(&d2.client()).await, want);
}

/// A TCP proxy to `upstream` that passes on what a client sends at about
/// `rate` bytes a second per connection (and answers at full speed): a
/// slow destination in front of a real one.
async fn slow_proxy(upstream: u16, rate: usize) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(server) = tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await
                else {
                    return;
                };
                let (mut from_client, mut to_client) = client.into_split();
                let (mut from_server, mut to_server) = server.into_split();
                let up = async move {
                    let mut buf = vec![0u8; rate / 10];
                    while let Ok(n @ 1..) = from_client.read(&mut buf).await {
                        if to_server.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    let _ = to_server.shutdown().await;
                };
                let down = async move {
                    let _ = tokio::io::copy(&mut from_server, &mut to_client).await;
                };
                tokio::join!(up, down);
            });
        }
    });
    port
}

/// SIGTERM while a backup uploads to a slow destination (S3 on moto behind
/// a proxy passing 64 KiB/s per connection): the backup job is cancelled at
/// an await point, so the daemon exits 0 long before the upload could end
/// (its shutdown deadline is 300 s; the test waits 30). Nothing partial is
/// visible in the location, the staging directory the job left is removed
/// at the next start, and the retry succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_an_upload_cancels_the_backup_and_leaves_nothing_visible() {
    const RATE: usize = 64 << 10;
    let tmp = tempfile::tempdir().unwrap();
    let (_moto, env, url) = moto();
    let moto_url = env
        .iter()
        .find(|(k, _)| k == "AWS_ENDPOINT_URL")
        .map(|(_, v)| v.clone())
        .unwrap();
    let moto_port: u16 = moto_url.rsplit(':').next().unwrap().parse().unwrap();
    let proxy = slow_proxy(moto_port, RATE).await;
    let slow_url = format!("http://127.0.0.1:{proxy}");
    let with_endpoint = |endpoint: &str| -> Vec<(String, String)> {
        env.iter()
            .map(|(k, v)| match k.as_str() {
                "AWS_ENDPOINT_URL" => (k.clone(), endpoint.to_string()),
                _ => (k.clone(), v.clone()),
            })
            .collect()
    };
    let start_on = |endpoint: &str, config: &str| {
        let env = with_endpoint(endpoint);
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let cfg = tmp.path().join("config.toml");
        std::fs::write(&cfg, config).unwrap();
        let cfg = cfg.display().to_string();
        start_full(
            &tmp.path().join("data"),
            &env,
            &[],
            &["--config", &cfg],
            Stdio::inherit(),
        )
    };
    let d = start_on(&slow_url, "shutdown-timeout-secs = 300\n");
    let c = d.client();
    // ~40 MB of values that do not compress much.
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    for chunk in 0..80 {
        let entries: Vec<Value> = (0..500)
            .map(|i| {
                let value: String = (0..1000)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        char::from(b"0123456789abcdefghijklmnopqrstuv"[(x % 32) as usize])
                    })
                    .collect();
                json!({"key": format!("k{chunk:03}-{i:03}"), "value": value})
            })
            .collect();
        ok(&c, "storage_write", json!({"entries": entries})).await;
    }
    ok(&c, "wal_checkpoint", json!({})).await;
    let create = json!({"destination": url, "name": "big", "method": "files"});
    let c2 = d.client();
    let p2 = create.clone();
    let call = tokio::spawn(async move { c2.call("backup_create", p2).await });
    // Wait until it uploads.
    let deadline = Instant::now() + Duration::from_secs(120);
    let running = loop {
        let s = ok(&c, "backup_status", json!({})).await;
        if s["running"]["phase"] == "uploading" {
            break s["running"].clone();
        }
        assert!(
            Instant::now() < deadline,
            "the backup never started uploading: {s}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let total = running["bytes_total"].as_u64().unwrap();
    assert!(
        total >= (4 * RATE * 60) as u64,
        "the upload must take over a minute at this rate: {running}"
    );
    drop(c);
    let status = tokio::task::spawn_blocking(move || d.terminate())
        .await
        .unwrap();
    assert!(status.success(), "exit status {status}");
    let r = call.await.unwrap();
    assert!(r.is_err(), "the backup did not complete: {r:?}");
    let staging = tmp.path().join("data/backup-staging");
    assert!(
        staging.join("big").exists(),
        "a cancelled job leaves its staging directory (for the next start)"
    );

    // Next start, straight to moto: staging removed, nothing visible.
    let d = start_on(&moto_url, "");
    let c = d.client();
    ok(&c, "backup_status", json!({})).await;
    assert!(!staging.exists(), "staging is cleaned at start");
    let l = ok(&c, "backup_list", json!({"location": url})).await;
    assert_eq!(l["count"], 0, "{l}");
    let (_, msg) = err(&c, "backup_verify", json!({"location": url})).await;
    assert!(msg.contains("no backups"), "{msg}");
    // The retry succeeds, and is whole.
    let b = ok(&c, "backup_create", create).await;
    assert_eq!(b["name"], "big", "{b}");
    let v = read_verify(&c, json!({"location": url, "name": "big"})).await;
    assert_eq!(v["ok"], true, "{v}");
    d.terminate();
}

/// The `backup.*` schedule actions fire inside a running daemon, from a
/// schedule file with second-precision cron: `backup.create` and
/// `backup.drill` make backups and drill them (the drill lands in the
/// `backup` record); then, the file switched by SIGHUP to a
/// `backup.prune` job, prune keeps its policy. `schedule_list` shows the
/// runs of each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_backups_drills_and_prunes_run_in_the_daemon() {
    let tmp = tempfile::tempdir().unwrap();
    let schedule = tmp.path().join("schedule.toml");
    // Full backups: every one has files, so keep-last is all prune keeps
    // (a WAL-based one would keep its base too).
    std::fs::write(
        &schedule,
        r#"
[[job]]
name = "backup-every-second"
cron = "* * * * * *"
action = "backup.create"
args = { full = true }

[[job]]
name = "drill-every-2s"
cron = "*/2 * * * * *"
action = "backup.drill"
"#,
    )
    .unwrap();
    let backups = tmp.path().join("backups");
    let d = start_with_config(
        &tmp.path().join("data"),
        &format!(
            "schedule-file = \"{}\"\n[backup]\ndestination = \"file://{}\"\npitr-window-secs = 0\n",
            schedule.display(),
            backups.display()
        ),
    );
    let c = d.client();
    let entries: Vec<Value> = (0..200)
        .map(|i| json!({"key": format!("k{i:03}"), "value": format!("v{i}")}))
        .collect();
    ok(&c, "storage_write", json!({"entries": entries})).await;
    let job = |list: &Value, name: &str| -> Value {
        list["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|j| j["name"] == name)
            .cloned()
            .unwrap_or(Value::Null)
    };
    let names = |l: &Value| -> Vec<String> {
        l["backups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["name"].as_str().unwrap().to_string())
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(90);
    let before = loop {
        let list = ok(&c, "schedule_list", json!({})).await;
        let (create, drill) = (
            job(&list, "backup-every-second"),
            job(&list, "drill-every-2s"),
        );
        let record = ok(&c, "storage_stats", json!({})).await["records"]["backup"].clone();
        let backups = names(&ok(&c, "backup_list", json!({})).await);
        // A drill of a backup made after the write read all of it (the
        // 200 keys and the store's own two); the first ones may predate it.
        if create["runs"].as_u64() >= Some(4)
            && create["last_result"]["ok"] == true
            && drill["last_result"]["ok"] == true
            && record["drill"]["ok"] == true
            && record["drill"]["keys"].as_u64() >= Some(202)
            && backups.len() >= 4
        {
            let drilled = record["drill"]["backup"].as_str().unwrap();
            assert!(backups.iter().any(|b| b == drilled), "{record}");
            assert_eq!(record["last_result"], "ok", "{record}");
            break backups;
        }
        assert!(
            Instant::now() < deadline,
            "scheduled jobs did not run: {list} {record} {backups:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };

    // Now only a prune, every second: keep the last 2.
    std::fs::write(
        &schedule,
        r#"
[[job]]
name = "prune-every-second"
cron = "* * * * * *"
action = "backup.prune"
args = { keep-last = 2 }
"#,
    )
    .unwrap();
    d.signal(libc::SIGHUP);
    // Once the reload is in and no backup runs, a prune that starts after
    // that sees every backup there will be.
    let deadline = Instant::now() + Duration::from_secs(60);
    let runs_before = loop {
        let list = ok(&c, "schedule_list", json!({})).await;
        let idle = ok(&c, "backup_status", json!({})).await["running"].is_null();
        if list["count"] == 1 && idle {
            break job(&list, "prune-every-second")["runs"]
                .as_u64()
                .unwrap_or(0);
        }
        assert!(
            Instant::now() < deadline,
            "the schedule was not reloaded: {list}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let prune = job(
            &ok(&c, "schedule_list", json!({})).await,
            "prune-every-second",
        );
        if prune["runs"].as_u64() > Some(runs_before + 1)
            && prune["running"] == false
            && prune["last_result"]["ok"] == true
        {
            break;
        }
        assert!(Instant::now() < deadline, "prune did not run: {prune}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let after = names(&ok(&c, "backup_list", json!({})).await);
    let mut all: Vec<String> = before.iter().chain(&after).cloned().collect();
    all.sort();
    all.dedup();
    assert!(all.len() >= 4, "{all:?}");
    assert_eq!(
        after,
        all[all.len() - 2..],
        "keep-last 2 keeps the newest two"
    );
    for name in &after {
        let v = read_verify(&c, json!({"name": name})).await;
        assert_eq!(v["ok"], true, "{v}");
    }
    d.terminate();
}
