//! Damage to a backup location, one file at a time, many times over: a
//! random file (an object, a manifest, the catalog, a WAL segment, a
//! marker) gets a random damage (a flipped bit, a truncation, deletion).
//! Each time `backup verify --read-data` must report it, naming the file,
//! and every restore must either refuse, leaving nothing at its target, or
//! give exactly the reference state: never silently wrong.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::{params, read_store, svc_with, walk, Svc};
use crate::backup::Target;

/// A location with three backups (files, WAL-based, files) and an archive
/// of several segments past the last one; the states each restore gives.
struct Fixture {
    s: Svc,
    /// (backup name, its state), and the state at the archive's end.
    states: Vec<(String, Vec<(String, String)>)>,
    end_state: Vec<(String, String)>,
    end_sequence: u64,
}

async fn fixture(encrypt: bool) -> Fixture {
    let s = svc_with(|c| {
        c.backup.encrypt = encrypt;
        c.backup.pitr_window_secs = 0;
    });
    let mut states = Vec::new();
    s.put(0..200, "a", 200);
    s.create(json!({"name": "b0"})).await.unwrap();
    states.push(("b0".to_string(), s.live()));
    s.put(0..20, "b", 200);
    let b1 = s.create(json!({"name": "b1"})).await.unwrap();
    assert_eq!(b1["method"], "wal", "{b1}");
    states.push(("b1".to_string(), s.live()));
    s.put(20..40, "c", 200);
    archive(&s).await;
    s.put(40..60, "d", 200);
    s.create(json!({"name": "b2", "method": "files"}))
        .await
        .unwrap();
    states.push(("b2".to_string(), s.live()));
    for round in 0..3 {
        s.put(60 + round * 10..70 + round * 10, "e", 200);
        archive(&s).await;
    }
    Fixture {
        end_sequence: s.sequence(),
        end_state: s.live(),
        states,
        s,
    }
}

async fn archive(s: &Svc) {
    s.service
        .clone()
        .wal_archive(params(json!({})))
        .await
        .unwrap();
}

/// A small deterministic generator (xorshift).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn copy_dir(from: &Path, to: &Path) {
    for f in walk(from) {
        let rel = f.strip_prefix(from).unwrap();
        let dst = to.join(rel);
        std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
        std::fs::copy(&f, &dst).unwrap();
    }
}

/// Damage `file`; returns what was done.
fn damage(file: &Path, rng: &mut Rng) -> String {
    let len = std::fs::metadata(file).unwrap().len();
    match rng.below(3) {
        0 if len > 0 => {
            let mut b = std::fs::read(file).unwrap();
            let at = rng.below(len) as usize;
            let bit = 1u8 << rng.below(8);
            b[at] ^= bit;
            std::fs::write(file, b).unwrap();
            format!("flipped bit {bit:#04x} of byte {at} of {len}")
        }
        1 if len > 0 => {
            let keep = rng.below(len);
            std::fs::OpenOptions::new()
                .write(true)
                .open(file)
                .unwrap()
                .set_len(keep)
                .unwrap();
            format!("truncated to {keep} of {len} bytes")
        }
        _ => {
            std::fs::remove_file(file).unwrap();
            "deleted".into()
        }
    }
}

/// Does the report name the damaged file? A lost segment shows as the
/// sequences it held.
fn named(report: &Value, rel: &str) -> bool {
    let segment_range = rel
        .strip_prefix("wal/")
        .and_then(|n| n.split('.').next())
        .and_then(|n| n.split_once('-'))
        .and_then(|(a, b)| Some((a.parse::<u64>().ok()?, b.parse::<u64>().ok()?)));
    report["bad"].as_array().unwrap().iter().any(|b| {
        b["object"] == rel
            || b["problem"].as_str().is_some_and(|p| p.contains(rel))
            || segment_range.is_some_and(|(first, last)| {
                b["file"].as_str().is_some_and(|f| {
                    f.contains(&format!("{first}..=")) || f.contains(&format!("..={last}"))
                })
            })
    })
}

/// A restore that succeeds gives exactly `want`; one that fails leaves
/// nothing at its target. Returns whether it succeeded.
async fn restore_is_right_or_refused(
    f: &Fixture,
    from: &str,
    p: Value,
    out: &Path,
    want: &[(String, String)],
    what: &str,
) -> bool {
    let mut p = p;
    p["from"] = json!(from);
    p["to"] = json!(out.display().to_string());
    match f.s.service.clone().restore(params(p.clone())).await {
        Ok(_) => {
            assert_eq!(
                read_store(&out.join("db"), &f.s.config),
                want,
                "{what}: {p} restored something else"
            );
            true
        }
        Err(e) => {
            assert!(
                !out.exists(),
                "{what}: {p} failed ({e}) but left {}",
                out.display()
            );
            false
        }
    }
}

/// The kind of a file of the location: objects, manifests, segments, or
/// the marker itself.
fn class_of(rel: &str) -> String {
    if rel.starts_with("objects/") {
        "objects".into()
    } else if rel.ends_with(".json") {
        "manifest".into()
    } else if rel.ends_with(".seg") || rel.ends_with(".eseg") {
        "segment".into()
    } else {
        rel.into()
    }
}

async fn run(encrypt: bool, seeds: u64) {
    let f = fixture(encrypt).await;
    let clean = f.s.backups.clone();
    let files: Vec<PathBuf> = walk(&clean);
    let rel = |p: &Path| p.strip_prefix(&clean).unwrap().display().to_string();
    let kinds: std::collections::BTreeSet<String> = files
        .iter()
        .map(|p| rel(p).split('/').next().unwrap().to_string())
        .collect();
    assert!(kinds.contains("objects") && kinds.contains("wal") && kinds.contains("backups"));
    // The clean location verifies.
    let t = Target::open(&format!("file://{}", clean.display())).unwrap();
    let t = match encrypt {
        true => t.with_keyring(Some(std::sync::Arc::new(
            crate::backup::crypto::Keyring::load(&f.s.config.data_dir.join("backup-keyring.json"))
                .unwrap(),
        ))),
        false => t,
    };
    let ok = serde_json::to_value(t.audit(None, 1.0).await.unwrap()).unwrap();
    assert_eq!(ok["ok"], true, "{ok:#}");
    let mut classes: Vec<String> = files.iter().map(|p| class_of(&rel(p))).collect();
    classes.sort();
    classes.dedup();
    let mut rng = Rng(0x5eed_0000 + encrypt as u64);
    // What was damaged (top directory, marker name) and how restores went.
    let mut hit = std::collections::BTreeMap::<String, u32>::new();
    let (mut restored, mut refused) = (0u32, 0u32);
    for seed in 0..seeds {
        let work = tempfile::tempdir().unwrap();
        let loc = work.path().join("loc");
        copy_dir(&clean, &loc);
        // A kind of file first (so the few markers are hit as often as the
        // many objects), then one file of that kind.
        let class = &classes[rng.below(classes.len() as u64) as usize];
        let of_class: Vec<&PathBuf> = files
            .iter()
            .filter(|p| class_of(&rel(p)) == *class)
            .collect();
        let victim = of_class[rng.below(of_class.len() as u64) as usize];
        let r = rel(victim);
        let how = damage(&loc.join(&r), &mut rng);
        let what = format!("seed {seed}: {r} {how}");
        *hit.entry(class.clone()).or_default() += 1;
        let url = format!("file://{}", loc.display());
        let mut damaged = Target::open(&url).unwrap();
        damaged.keyring = t.keyring.clone();
        let report = serde_json::to_value(damaged.audit(None, 1.0).await.unwrap()).unwrap();
        assert_eq!(
            report["ok"], false,
            "{what}: verify found nothing: {report:#}"
        );
        assert!(
            named(&report, &r),
            "{what}: verify does not name it: {report:#}"
        );
        let mut outcomes = Vec::new();
        for (i, (name, state)) in f.states.iter().enumerate() {
            let out = work.path().join(format!("restore-{i}"));
            let p = json!({"name": name});
            outcomes.push(restore_is_right_or_refused(&f, &url, p, &out, state, &what).await);
        }
        let out = work.path().join("restore-pitr");
        let p = json!({"to_sequence": f.end_sequence});
        outcomes.push(restore_is_right_or_refused(&f, &url, p, &out, &f.end_state, &what).await);
        let out = work.path().join("restore-newest");
        let newest = &f.states[2].1;
        outcomes.push(restore_is_right_or_refused(&f, &url, json!({}), &out, newest, &what).await);
        restored += outcomes.iter().filter(|o| **o).count() as u32;
        refused += outcomes.iter().filter(|o| !**o).count() as u32;
    }
    eprintln!("damaged: {hit:?}; restores right: {restored}, refused: {refused}");
    // The runs covered every kind of file, and both outcomes happened.
    for kind in ["objects", "manifest", "segment"] {
        assert!(hit.contains_key(kind), "no {kind} was damaged: {hit:?}");
    }
    for marker in &classes {
        assert!(
            hit.contains_key(marker),
            "{marker} was never damaged: {hit:?}"
        );
    }
    assert!(
        restored > 0 && refused > 0,
        "{restored} right, {refused} refused"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_damage_is_found_and_no_restore_is_silently_wrong() {
    run(false, 80).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_damage_to_an_encrypted_location_is_found_too() {
    run(true, 50).await;
}

/// The markers a point-in-time restore relies on (HISTORY: the archive is
/// this store's; END: no segment is missing) refuse it when damaged, naming
/// the marker; the one it does not read (START) leaves it exact, and only
/// verify reports it.
#[tokio::test]
async fn load_bearing_markers_refuse_the_others_do_not_matter_to_a_restore() {
    let f = fixture(false).await;
    for (marker, load_bearing) in [("HISTORY", true), ("END", true), ("START", false)] {
        for how in ["flip", "delete"] {
            let work = tempfile::tempdir().unwrap();
            let loc = work.path().join("loc");
            copy_dir(&f.s.backups, &loc);
            let file = loc.join("wal").join(marker);
            match how {
                "flip" => {
                    let mut b = std::fs::read(&file).unwrap();
                    b[0] ^= 0x01;
                    std::fs::write(&file, b).unwrap();
                }
                _ => std::fs::remove_file(&file).unwrap(),
            }
            let url = format!("file://{}", loc.display());
            let out = work.path().join("out");
            let p = json!({"from": url, "to": out.display().to_string(),
                "to_sequence": f.end_sequence});
            let r = f.s.service.clone().restore(params(p)).await;
            if load_bearing {
                let e = r.expect_err(&format!("{marker} {how}: refused"));
                assert!(
                    e.message.contains(&format!("wal/{marker}")),
                    "{marker} {how}: {e}"
                );
                assert!(e.message.contains("nothing was restored"), "{e}");
                assert!(!out.exists());
            } else {
                r.unwrap_or_else(|e| panic!("{marker} {how}: {e}"));
                assert_eq!(read_store(&out.join("db"), &f.s.config), f.end_state);
            }
            let report =
                serde_json::to_value(Target::open(&url).unwrap().audit(None, 0.0).await.unwrap())
                    .unwrap();
            assert!(
                named(&report, &format!("wal/{marker}")),
                "{marker} {how}: {report:#}"
            );
        }
    }
}
