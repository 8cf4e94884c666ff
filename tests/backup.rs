//! Backups through the daemon against every target that runs here: the
//! local filesystem, S3 (moto_server) and Azure Blob (Azurite), the last two
//! started on loopback by this test. One body: an incremental chain of five
//! backups, list, verify --read-data, restore of a middle backup into a
//! fresh directory (opened by a second daemon and compared key by key),
//! restore into the running daemon, and refusal of a non-empty target.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

/// A server process killed on drop.
struct Server(Child);
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_http(url: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let code = Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", url])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
            .unwrap_or_default();
        if !code.is_empty() && code != "000" {
            return;
        }
        assert!(Instant::now() < deadline, "{url} did not come up");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn spawn(program: &str, args: &[&str]) -> Server {
    Server(
        Command::new(program)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{program} is required (scripts/deps.sh installs it): {e}")),
    )
}

fn moto() -> (Server, Vec<(String, String)>, String) {
    let port = free_port();
    let s = spawn("moto_server", &["-H", "127.0.0.1", "-p", &port.to_string()]);
    wait_http(&format!("http://127.0.0.1:{port}/moto-api/"));
    let st = Command::new("curl")
        .args([
            "-sf",
            "-X",
            "PUT",
            &format!("http://127.0.0.1:{port}/backups"),
        ])
        .status()
        .unwrap();
    assert!(st.success(), "create bucket");
    let env = [
        ("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{port}")),
        ("AWS_ALLOW_HTTP", "true".into()),
        ("AWS_ACCESS_KEY_ID", "testing".into()),
        ("AWS_SECRET_ACCESS_KEY", "testing".into()),
        ("AWS_REGION", "us-east-1".into()),
    ];
    (
        s,
        env.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
        "s3://backups/store-1".into(),
    )
}

fn azurite(dir: &Path) -> (Server, Vec<(String, String)>, String) {
    let port = free_port();
    let loc = dir.join("azurite");
    std::fs::create_dir_all(&loc).unwrap();
    let s = spawn(
        "azurite-blob",
        &[
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            &port.to_string(),
            "--location",
            loc.to_str().unwrap(),
            "--skipApiVersionCheck",
            "--loose",
            "--silent",
            "--disableTelemetry",
        ],
    );
    wait_http(&format!(
        "http://127.0.0.1:{port}/devstoreaccount1?comp=list"
    ));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/azurite-mkcontainer.sh");
    let st = Command::new("bash")
        .arg(script)
        .args([&port.to_string(), "backups"])
        .status()
        .unwrap();
    assert!(st.success(), "create container");
    let env = vec![
        ("AZURE_STORAGE_USE_EMULATOR".to_string(), "true".to_string()),
        (
            "AZURITE_BLOB_STORAGE_URL".to_string(),
            format!("http://127.0.0.1:{port}"),
        ),
    ];
    (s, env, "az://backups/store-1".into())
}

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
        let m = ok(
            &c,
            "backup_create",
            json!({"destination": url, "name": format!("b{round}")}),
        )
        .await;
        manifests.push(m);
    }
    assert_eq!(manifests[0]["uploaded_objects"], manifests[0]["files"]);
    for w in manifests.windows(2) {
        assert_eq!(w[1]["parent"], w[0]["name"]);
        assert_eq!(
            w[1]["first_sequence"].as_u64(),
            w[0]["sequence"].as_u64().map(|s| s + 1)
        );
        assert!(
            w[1]["uploaded_objects"].as_u64() < w[1]["files"].as_u64(),
            "incremental: {}",
            w[1]
        );
    }
    let list = ok(&c, "backup_list", json!({"location": url})).await;
    let names: Vec<&str> = list["backups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["b0", "b1", "b2", "b3", "b4"]);
    let v = ok(
        &c,
        "backup_verify",
        json!({"location": url, "name": "b2", "read_data": true}),
    )
    .await;
    assert_eq!(v["ok"], true, "{v}");
    assert!(v["bytes_read"].as_u64().unwrap() > 0);

    // Every backup of the chain restores to exactly its state.
    for (i, want) in states.iter().enumerate() {
        let out = tmp.join(format!("restored-{i}"));
        let r = ok(
            &c,
            "backup_restore",
            json!({"from": url, "name": format!("b{i}"),
            "to": out.join("db").display().to_string()}),
        )
        .await;
        assert_eq!(r["restored"], format!("b{i}"));
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
    let backups = tmp.path().join("backups");
    let d = start_with_config(
        &tmp.path().join("data"),
        &format!(
            "[backup]\ndestination = \"file://{}\"\npitr-window-secs = 0\ncopy-to = \"file://{}\"\n",
            backups.display(),
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
        ok(&c, "backup_create", json!({"name": format!("b{round}")})).await;
        ok(&c, "wal_archive", json!({})).await;
    }
    // Each backup was also copied to the second destination.
    let region2 = format!("file://{}", tmp.path().join("region2").display());
    let l2 = ok(&c, "backup_list", json!({"location": region2})).await;
    assert_eq!(l2["count"], 4, "{l2}");
    let v2 = ok(
        &c,
        "backup_verify",
        json!({"location": region2, "read_data": true}),
    )
    .await;
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
        let v = ok(
            &c,
            "backup_verify",
            json!({"name": name, "read_data": true}),
        )
        .await;
        assert_eq!(v["ok"], true, "{v}");
    }
    let out = tmp.path().join("r2");
    ok(
        &c,
        "backup_restore",
        json!({"name": "b2", "to": out.join("db").display().to_string()}),
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
        json!({"name": "b2", "to": out.join("db").display().to_string(),
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
    let v = ok(
        &c,
        "backup_verify",
        json!({"location": to, "read_data": true}),
    )
    .await;
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
