//! Disaster recovery as a stranger does it, on a machine with no daemon:
//! the data dir is gone; the CLI alone verifies and lists the backup
//! location, restores into a fresh data directory (the newest backup, a
//! named one, or a point in time through the WAL archive), and `serve
//! --data-dir` then serves exactly the state from before the loss. From a
//! local location, and from S3 on `moto_server` with encryption and the
//! continuous WAL archive. Every CLI run here has a scratch working
//! directory and no daemon to talk to.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::servers::moto;
use common::*;
use ruvector_storage::client::Client;
use serde_json::json;

/// The CLI run from `cwd` (where a stranger stands: no `./ruvector-data`).
fn cli_at(cwd: &Path, env: &[(String, String)], args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN)
        .current_dir(cwd)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run cli");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A daemon on `dir` with `config` and `env`.
fn serve(dir: &Path, config: Option<&str>, env: &[(String, String)]) -> Daemon {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut global = Vec::new();
    let cfg = dir.with_extension("toml");
    if let Some(toml) = config {
        std::fs::write(&cfg, toml).expect("write config");
        global = vec!["--config", cfg.to_str().expect("utf-8")];
    }
    start_full(dir, &env, &[], &global, Stdio::inherit())
}

async fn write_round(c: &Client, round: usize) -> BTreeMap<String, String> {
    let entries: Vec<_> = (0..300)
        .map(
            |i| json!({"key": format!("k{:04}", i + round * 40), "value": format!("r{round}-{i}")}),
        )
        .collect();
    ok(c, "storage_write", json!({"entries": entries})).await;
    ok(
        c,
        "storage_delete",
        json!({"key": format!("k{:04}", round * 11)}),
    )
    .await;
    dump(c).await.into_iter().collect()
}

async fn served(dir: &Path, env: &[(String, String)]) -> BTreeMap<String, String> {
    let d = serve(dir, None, env);
    let state = dump(&d.client()).await.into_iter().collect();
    d.terminate();
    state
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bare_machine_recovery_from_a_local_location() {
    let tmp = tempfile::tempdir().unwrap();
    let (d, backups) = start_backing_up(tmp.path(), "");
    let url = format!("file://{}", backups.display());
    let c = d.client();
    let first = write_round(&c, 0).await;
    ok(&c, "backup_create", json!({"name": "b0"})).await;
    let second = write_round(&c, 1).await;
    ok(&c, "backup_create", json!({"name": "b1"})).await;
    assert_ne!(first, second);
    // The machine is lost: the daemon dies, the data dir with it.
    d.kill9();
    std::fs::remove_dir_all(tmp.path().join("data")).unwrap();
    let here = tmp.path().join("stranger");
    std::fs::create_dir_all(&here).unwrap();

    let (code, out, errs) = cli_at(
        &here,
        &[],
        &["backup", "verify", "--location", &url, "--read-data"],
    );
    assert_eq!(code, 0, "{out}{errs}");
    assert!(out.contains(": OK (2 backup(s)"), "{out}");
    let (code, out, errs) = cli_at(
        &here,
        &[],
        &["backup", "list", "--location", &url, "--json"],
    );
    assert_eq!(code, 0, "{out}{errs}");
    let list: serde_json::Value = serde_json::from_str(&out).unwrap();
    let names: Vec<_> = list["backups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["name"].clone())
        .collect();
    assert_eq!(names, [json!("b0"), json!("b1")]);

    // The newest backup, into a data dir that `serve` then serves.
    let restored = tmp.path().join("restored");
    let to = restored.to_str().unwrap();
    let (code, out, errs) = cli_at(
        &here,
        &[],
        &["backup", "restore", "--from", &url, "--to", to],
    );
    assert_eq!(code, 0, "{out}{errs}");
    assert!(out.contains(&format!("serve --data-dir {to}")), "{out}");
    assert!(restored.join("db/CURRENT").is_file());
    assert!(
        !here.join("ruvector-data").exists(),
        "the CLI made a data dir"
    );
    assert_eq!(served(&restored, &[]).await, second);

    // A named backup, given as its manifest.
    let older = tmp.path().join("older");
    let manifest = format!("{url}/backups/b0.json");
    let (code, out, errs) = cli_at(
        &here,
        &[],
        &[
            "backup",
            "restore",
            "--from",
            &manifest,
            "--to",
            older.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{out}{errs}");
    assert_eq!(served(&older, &[]).await, first);

    // A non-empty target is refused without --force, and a served one
    // always; neither is changed.
    let (code, _, errs) = cli_at(
        &here,
        &[],
        &["backup", "restore", "--from", &manifest, "--to", to],
    );
    assert_ne!(code, 0);
    assert!(
        errs.contains("not empty") && errs.contains("--force"),
        "{errs}"
    );
    let d2 = serve(&restored, None, &[]);
    let (code, _, errs) = cli_at(
        &here,
        &[],
        &[
            "backup", "restore", "--from", &manifest, "--to", to, "--force",
        ],
    );
    assert_ne!(code, 0);
    assert!(errs.contains("a daemon is serving"), "{errs}");
    let now: BTreeMap<_, _> = dump(&d2.client()).await.into_iter().collect();
    assert_eq!(now, second);
    d2.terminate();
    // --force replaces a stopped one.
    let (code, out, errs) = cli_at(
        &here,
        &[],
        &[
            "backup", "restore", "--from", &manifest, "--to", to, "--force",
        ],
    );
    assert_eq!(code, 0, "{out}{errs}");
    assert_eq!(served(&restored, &[]).await, first);

    // Damage is found with no daemon too: exit 5, the object named.
    let victim = walk(&backups.join("objects")).into_iter().next().unwrap();
    std::fs::remove_file(&victim).unwrap();
    let (code, out, errs) = cli_at(&here, &[], &["backup", "verify", "--location", &url]);
    assert_eq!(code, 5, "{out}{errs}");
    let out = out + &errs;
    let name = victim.file_name().unwrap().to_str().unwrap();
    assert!(out.contains(name) && out.contains("missing"), "{out}");
}

/// Every file under `dir`, sorted.
fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bare_machine_point_in_time_recovery_from_encrypted_s3() {
    let tmp = tempfile::tempdir().unwrap();
    let (_moto, env, url) = moto();
    let data = tmp.path().join("data");
    let d = serve(
        &data,
        Some(&format!(
            "[backup]\ndestination = \"{url}\"\nencrypt = true\narchive-wal = true\narchive-interval-ms = 200\n"
        )),
        &env,
    );
    let c = d.client();
    write_round(&c, 0).await;
    ok(&c, "backup_create", json!({"name": "base"})).await;
    let mut points = Vec::new();
    for round in 1..4 {
        let state = write_round(&c, round).await;
        tokio::time::sleep(Duration::from_millis(30)).await;
        points.push((now_ms(), state));
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    // Wait for the archiver to ship the last write, then lose the machine;
    // the keyring survives elsewhere (as it must).
    let latest = ok(&c, "system_health", json!({})).await["latest_sequence"]
        .as_u64()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let s = ok(&c, "storage_stats", json!({})).await;
        let a = &s["records"]["backup"]["wal_archive"]["archived_sequence"];
        if a.as_u64().is_some_and(|x| x >= latest) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the archiver did not catch up: {s}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    d.kill9();
    let keyring = tmp.path().join("vault-keyring.json");
    std::fs::copy(data.join("backup-keyring.json"), &keyring).unwrap();
    std::fs::remove_dir_all(&data).unwrap();
    let here = tmp.path().join("stranger");
    std::fs::create_dir_all(&here).unwrap();
    let kr = keyring.to_str().unwrap();

    // Without the keyring nothing is restored, and it says why.
    let nokey = tmp.path().join("nokey");
    let (code, _, errs) = cli_at(
        &here,
        &env,
        &[
            "backup",
            "restore",
            "--from",
            &url,
            "--to",
            nokey.to_str().unwrap(),
        ],
    );
    assert_ne!(code, 0);
    assert!(errs.contains("keyring"), "{errs}");
    assert!(!nokey.exists());

    let (code, out, errs) = cli_at(
        &here,
        &env,
        &[
            "backup",
            "verify",
            "--location",
            &url,
            "--read-data",
            "--keyring",
            kr,
        ],
    );
    assert_eq!(code, 0, "{out}{errs}");
    assert!(out.contains("WAL segment(s) covering"), "{out}");

    // Each point in time, restored and served, is the state at that time.
    for (i, (at, want)) in points.iter().enumerate() {
        let dir = tmp.path().join(format!("pitr-{i}"));
        let (code, out, errs) = cli_at(
            &here,
            &env,
            &[
                "backup",
                "restore",
                "--from",
                &url,
                "--to",
                dir.to_str().unwrap(),
                "--to-time",
                &at.to_string(),
                "--keyring",
                kr,
            ],
        );
        assert_eq!(code, 0, "{out}{errs}");
        // The keyring went with it, readable by its owner only.
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("backup-keyring.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(&served(&dir, &env).await, want, "point {i} at {at}");
    }
}
