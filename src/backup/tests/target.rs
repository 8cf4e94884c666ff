//! The calls on a location: upload, verify, download, encryption.

use std::path::Path;
use std::sync::Arc;

use super::{walk, Faults, Flaky};
use crate::backup::{crypto, BackupManifest, Encoding, Target, UploadSpec};
use crate::clock::ManualClock;
use crate::config::Config;
use crate::engine::Engine;
use crate::snapshot::{Kind, SnapshotStore};

struct Fixture {
    _dir: tempfile::TempDir,
    config: Config,
    engine: Arc<Engine>,
    snaps: SnapshotStore,
    target: Target,
    backups: std::path::PathBuf,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        data_dir: dir.path().join("data"),
        sync: "never".into(),
        ..Config::default()
    };
    let engine = Engine::open(&config, Arc::new(ManualClock::new(0))).unwrap();
    let snaps = SnapshotStore::open(&config.data_dir).unwrap();
    let backups = dir.path().join("backups");
    let target = Target::open(&format!("file://{}", backups.display())).unwrap();
    Fixture {
        _dir: dir,
        config,
        engine,
        snaps,
        target,
        backups,
    }
}

fn put(e: &Engine, range: std::ops::Range<usize>, tag: &str) {
    let entries: Vec<(String, String)> = range
        .map(|i| (format!("k{i:05}"), format!("{tag}-{i}-{}", "x".repeat(200))))
        .collect();
    e.kv_put_many(&entries).unwrap();
}

static NOW: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(1_000);

async fn backup(f: &Fixture, name: &str, full: bool) -> BackupManifest {
    f.engine.flush().unwrap();
    let m = f
        .snaps
        .create(&f.engine, &format!("b-{name}"), Kind::Manual, 0)
        .unwrap();
    let files: Vec<(String, String)> = m
        .files
        .iter()
        .map(|x| (x.name.clone(), x.crc32c.clone()))
        .collect();
    let seq = f.engine.db().latest_sequence_number();
    f.target
        .upload(UploadSpec {
            dir: &f.snaps.dir(&m.name),
            files: &files,
            name,
            sequence: seq,
            full,
            encrypt: f.target.keyring.is_some(),
            now_ms: NOW.fetch_add(1000, std::sync::atomic::Ordering::SeqCst),
            history: None,
        })
        .await
        .unwrap()
}

fn read_all(dir: &Path, config: &Config) -> Vec<(String, Option<String>)> {
    super::read_store(dir, config)
        .into_iter()
        .map(|(k, v)| (k, Some(v)))
        .collect()
}

fn live(e: &Engine) -> Vec<(String, Option<String>)> {
    e.kv_scan("", 10_000, None)
        .unwrap()
        .entries
        .into_iter()
        .map(|x| (x.key, Some(x.value)))
        .collect()
}

#[tokio::test]
async fn backup_restore_equality_and_incremental_dedup() {
    let f = fixture();
    put(&f.engine, 0..2000, "a");
    let first = backup(&f, "one", false).await;
    assert_eq!(first.uploaded_objects as usize, first.files.len());
    assert_eq!(first.parent, None);
    // Unchanged SSTs are not uploaded again; only the new data is.
    put(&f.engine, 0..20, "b");
    let second = backup(&f, "two", false).await;
    assert_eq!(second.parent.as_deref(), Some("one"));
    assert_eq!(second.first_sequence, first.sequence + 1);
    assert!(
        second.uploaded_bytes * 4 < first.uploaded_bytes,
        "incremental uploaded {} of {}",
        second.uploaded_bytes,
        first.uploaded_bytes
    );
    // --full uploads everything again.
    let third = backup(&f, "three", true).await;
    assert_eq!(third.uploaded_objects as usize, third.files.len());
    let names: Vec<String> = f
        .target
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.name)
        .collect();
    assert_eq!(names, ["one", "two", "three"]);

    // Restore the second and compare every key and value.
    let want = live(&f.engine);
    let out = f._dir.path().join("restored");
    f.target.download(&second, &out).await.unwrap();
    assert_eq!(read_all(&out, &f.config), want);

    let report = f.target.verify(&second, 1.0).await.unwrap();
    assert!(report.ok, "{report:?}");
    assert!(report.bytes_read > 0);
}

#[tokio::test]
async fn corruption_is_named_and_restore_refuses() {
    let f = fixture();
    put(&f.engine, 0..500, "a");
    let m = backup(&f, "one", false).await;
    let sst = m
        .files
        .iter()
        .find(|x| x.name.ends_with(".sst"))
        .unwrap()
        .clone();
    let other = m
        .files
        .iter()
        .find(|x| x.encoding == Encoding::Zstd)
        .unwrap()
        .clone();
    // Flip a byte of an SST object: same size, so only read-data catches it.
    let p = f.backups.join(sst.object());
    let mut bytes = std::fs::read(&p).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    std::fs::write(&p, &bytes).unwrap();
    // Truncate a zstd object: the size check catches it.
    let q = f.backups.join(other.object());
    let b = std::fs::read(&q).unwrap();
    std::fs::write(&q, &b[..b.len() - 3]).unwrap();

    let quick = f.target.verify(&m, 0.0).await.unwrap();
    assert!(!quick.ok);
    assert_eq!(
        quick
            .bad
            .iter()
            .map(|b| b.file.as_str())
            .collect::<Vec<_>>(),
        [other.name.as_str()]
    );
    let full = f.target.verify(&m, 1.0).await.unwrap();
    let mut named: Vec<&str> = full.bad.iter().map(|b| b.file.as_str()).collect();
    named.sort();
    let mut want = vec![sst.name.as_str(), other.name.as_str()];
    want.sort();
    assert_eq!(named, want, "{full:?}");
    assert!(full.bad.iter().any(|b| b.problem.contains("SHA-256")));

    let out = f._dir.path().join("restored");
    assert!(f.target.download(&m, &out).await.is_err());
    // Once the error is returned nothing writes there any more: the
    // directory can be removed, and stays removed.
    std::fs::remove_dir_all(&out).unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(!out.exists());

    // A missing object is named too.
    std::fs::remove_file(&q).unwrap();
    let r = f.target.verify(&m, 0.0).await.unwrap();
    assert!(r
        .bad
        .iter()
        .any(|b| b.problem == "missing" && b.file == other.name));

    // A tampered manifest is refused, by name.
    let mp = f.backups.join("backups/one.json");
    let text = std::fs::read_to_string(&mp)
        .unwrap()
        .replacen("\"size\": ", "\"size\": 1", 1);
    std::fs::write(&mp, text).unwrap();
    let e = f.target.manifest("one").await.unwrap_err();
    assert_eq!(e.kind, crate::error::ErrorKind::Corruption);
    // A manifest whose checksum was recomputed around a traversal name is
    // still refused: a restore never writes outside its directory.
    let mut evil = m.clone();
    evil.files[0].name = "../escape".into();
    evil.checksum = evil.compute_checksum().unwrap();
    let err = BackupManifest::decode("one", &serde_json::to_vec(&evil).unwrap()).unwrap_err();
    assert!(err.message.contains("plain file name"), "{err}");
    let mut evil = m.clone();
    evil.files[0].sha256 = "é".repeat(32);
    evil.checksum = evil.compute_checksum().unwrap();
    assert!(BackupManifest::decode("one", &serde_json::to_vec(&evil).unwrap()).is_err());
    assert!(
        e.message.contains("one") && e.message.contains("checksum"),
        "{e}"
    );
    assert!(
        f.target.list().await.is_err(),
        "a listing does not hide a damaged manifest"
    );
}

#[test]
fn bad_locations_are_refused() {
    assert!(Target::open("ftp://x/y")
        .unwrap_err()
        .message
        .contains("not supported"));
    assert!(Target::open("relative/dir")
        .unwrap_err()
        .message
        .contains("absolute"));
    // `file://backups/x` is host "backups", path "/x": refused, not written
    // to /x.
    let e = Target::open("file://backups/x").unwrap_err();
    assert_eq!(e.kind, crate::error::ErrorKind::InvalidInput);
    assert!(e.message.contains("cannot name a host"), "{}", e.message);
    assert!(Target::open("file://localhost/tmp").is_ok());
}

#[test]
fn a_reader_does_not_create_a_missing_location() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("typo");
    let url = format!("file://{}", missing.display());
    let e = Target::open_for(&url, false).unwrap_err();
    assert_eq!(e.kind, crate::error::ErrorKind::NotFound);
    assert!(e.message.contains("does not exist"), "{}", e.message);
    assert!(!missing.exists());
    // A writer makes it.
    Target::open_for(&url, true).unwrap();
    assert!(missing.is_dir());
}

#[tokio::test]
async fn encrypted_backups_hide_values_and_need_the_right_key() {
    let mut f = fixture();
    let ring_path = f._dir.path().join("keyring.json");
    let ring = crypto::Keyring::load_or_create(&ring_path, "now").unwrap();
    f.target = f.target.clone().with_keyring(Some(Arc::new(ring)));
    let marker = "PLAINTEXT-MARKER-7d1c";
    let entries: Vec<(String, String)> = (0..300)
        .map(|i| (format!("k{i:04}"), format!("{marker}-{i}")))
        .collect();
    f.engine.kv_put_many(&entries).unwrap();
    let m = backup(&f, "enc1", false).await;
    assert!(m.encryption.is_some());
    // No stored object (nor the manifest) contains a value or key name.
    for p in walk(&f.backups) {
        let bytes = std::fs::read(&p).unwrap();
        assert!(
            !bytes.windows(marker.len()).any(|w| w == marker.as_bytes()),
            "{} holds plaintext",
            p.display()
        );
        assert!(
            !bytes.windows(5).any(|w| w == b"k0001"),
            "{} holds a key",
            p.display()
        );
    }
    // An incremental encrypted backup reuses the objects it can open.
    put(&f.engine, 0..5, "more");
    let m2 = backup(&f, "enc2", false).await;
    assert!(m2.uploaded_objects < m2.files.len() as u64, "{m2:?}");
    // With the key: restore equals the store.
    let want = live(&f.engine);
    let out = f._dir.path().join("restored");
    let opened = f.target.manifest("enc2").await.unwrap();
    f.target.download(&opened, &out).await.unwrap();
    assert_eq!(read_all(&out, &f.config), want);
    assert!(f.target.verify(&opened, 1.0).await.unwrap().ok);
    // Without a keyring, or with another one: a clear error, nothing read.
    let bare = f.target.clone().with_keyring(None);
    let e = bare.manifest("enc2").await.unwrap_err();
    assert!(
        e.message.contains("encrypted") && e.message.contains("keyring"),
        "{e}"
    );
    let other_path = f._dir.path().join("other.json");
    let other = crypto::Keyring::load_or_create(&other_path, "now").unwrap();
    let wrong = f.target.clone().with_keyring(Some(Arc::new(other)));
    let e = wrong.manifest("enc2").await.unwrap_err();
    assert!(e.message.contains("wrong key"), "{e}");
    // The clear fields are authenticated: change the sequence, fix the checksum.
    let mp = f.backups.join("backups/enc2.json");
    let mut stored: BackupManifest = serde_json::from_slice(&std::fs::read(&mp).unwrap()).unwrap();
    stored.sequence += 1;
    stored.checksum = stored.compute_checksum().unwrap();
    std::fs::write(&mp, serde_json::to_vec(&stored).unwrap()).unwrap();
    let e = f.target.manifest("enc2").await.unwrap_err();
    assert!(e.message.contains("authentication failed"), "{e}");
}

#[tokio::test]
async fn failed_uploads_leave_no_backup_and_the_retry_resumes() {
    let mut f = fixture();
    put(&f.engine, 0..3000, "a");
    f.engine.flush().unwrap();
    put(&f.engine, 3000..6000, "b");
    let faults = Faults::new();
    faults.fail_puts_after(3);
    f.target.store = Flaky::over(f.target.store.clone(), faults.clone());
    // Uploads fail part-way: an error, and no visible backup.
    let snap = f.snaps.create(&f.engine, "s1", Kind::Manual, 0).unwrap();
    let files: Vec<(String, String)> = snap
        .files
        .iter()
        .map(|x| (x.name.clone(), x.crc32c.clone()))
        .collect();
    assert!(files.len() > 3, "{files:?}");
    let spec = |name: &'static str| UploadSpec {
        dir: f.snaps.dir("s1").leak(),
        files: files.clone().leak(),
        name,
        sequence: 1,
        full: false,
        encrypt: false,
        now_ms: 5,
        history: None,
    };
    let e = f.target.upload(spec("one")).await.unwrap_err();
    assert!(e.message.contains("injected"), "{e}");
    assert!(
        f.target.list().await.unwrap().is_empty(),
        "no partial backup is visible"
    );
    assert!(!f.target.exists("one").await.unwrap());
    // The retry skips what was uploaded before the failure.
    faults.heal();
    let m = f.target.upload(spec("one")).await.unwrap();
    assert!(
        m.uploaded_objects < m.files.len() as u64,
        "resumed: {} of {} objects uploaded",
        m.uploaded_objects,
        m.files.len()
    );
    assert!(f.target.verify(&m, 1.0).await.unwrap().ok);
    // A store that acknowledges a put it then loses: verify names the object.
    put(&f.engine, 6000..6100, "c");
    f.engine.flush().unwrap();
    f.snaps.create(&f.engine, "s2", Kind::Manual, 0).unwrap();
    let files2: Vec<(String, String)> = f
        .snaps
        .manifest("s2")
        .unwrap()
        .files
        .iter()
        .map(|x| (x.name.clone(), x.crc32c.clone()))
        .collect();
    faults.drop_next_put();
    let m2 = f
        .target
        .upload(UploadSpec {
            dir: &f.snaps.dir("s2"),
            files: &files2,
            name: "two",
            sequence: 2,
            full: false,
            encrypt: false,
            now_ms: 6,
            history: None,
        })
        .await
        .unwrap();
    let r = f.target.verify(&m2, 0.0).await.unwrap();
    assert!(
        !r.ok && r.bad.iter().any(|b| b.problem == "missing"),
        "{r:?}"
    );
}
