//! Point-in-time recovery against a real daemon: the continuous archiver
//! ships the WAL while a recorded history of writes runs; 20 random target
//! sequences and times are restored into fresh directories, opened by a
//! second daemon and compared key by key with the reference state at that
//! point. A damaged archive segment makes the restore fail, leaving nothing.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::*;
use ruvector_storage::client::Client;
use serde_json::json;

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// xorshift: deterministic choices without a dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

async fn seq(c: &Client) -> u64 {
    ok(c, "system_health", json!({})).await["latest_sequence"]
        .as_u64()
        .unwrap()
}

struct Point {
    sequence: u64,
    /// Just before this write was sent, and just after it was acknowledged.
    before_ms: i64,
    after_ms: i64,
    state: BTreeMap<String, String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_random_points_restore_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let (d, backups) = start_backing_up(
        tmp.path(),
        "archive-wal = true\narchive-interval-ms = 200\n",
    );
    let c = d.client();
    let mut reference: BTreeMap<String, String> = BTreeMap::new();
    for i in 0..10 {
        ok(
            &c,
            "storage_write",
            json!({"key": format!("k{i}"), "value": "init"}),
        )
        .await;
        reference.insert(format!("k{i}"), "init".into());
    }
    ok(&c, "backup_create", json!({"name": "b0"})).await;
    let mut rng = Rng(0x9e3779b97f4a7c15);
    let mut points: Vec<Point> = Vec::new();
    for op in 0..60 {
        if op == 30 {
            // A base with files (auto would record the small WAL instead).
            ok(
                &c,
                "backup_create",
                json!({"name": "b1", "method": "files"}),
            )
            .await;
        }
        let key = format!("k{}", rng.below(20));
        let before_ms = now_ms();
        if rng.below(4) == 0 {
            ok(&c, "storage_delete", json!({"key": key})).await;
            reference.remove(&key);
        } else {
            let value = format!("v{op}");
            ok(&c, "storage_write", json!({"key": key, "value": value})).await;
            reference.insert(key, value);
        }
        let after_ms = now_ms();
        points.push(Point {
            sequence: seq(&c).await,
            before_ms,
            after_ms,
            state: reference.clone(),
        });
        tokio::time::sleep(Duration::from_millis(4)).await;
    }
    assert_eq!(
        dump(&c).await.into_iter().collect::<BTreeMap<_, _>>(),
        reference
    );
    // The continuous archiver catches up on its own; stats show its lag.
    let latest = seq(&c).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = ok(&c, "storage_stats", json!({})).await;
        let a = &s["records"]["backup"]["wal_archive"];
        // Prometheus has the archive's lag too, from the metrics tick
        // after the first archive pass (every status-interval-secs).
        let m = &ok(&c, "storage_stats", json!({"detailed": true})).await["metrics"];
        if a["archived_sequence"].as_u64().is_some_and(|x| x >= latest)
            && m["ruvector_storage_wal_archive_lag_seconds"].is_number()
        {
            assert_eq!(s["records"]["backup"]["last_backup"], "b1");
            assert!(
                m["ruvector_storage_wal_archive_lag_seconds"].as_f64() >= Some(0.0),
                "{m}"
            );
            assert!(
                m["ruvector_storage_wal_archive_lag_sequences"].is_number(),
                "{m}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "archiver did not catch up, or no tick saw it: {s} {m}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    for round in 0..20 {
        let i = rng.below(points.len() as u64 - 1) as usize;
        let by_time = round % 2 == 1;
        let out = tmp.path().join(format!("pitr-{round}"));
        let mut params = json!({"to": out.display().to_string()});
        if by_time {
            // Between this write's acknowledgement and the next write.
            // Strictly between this write's acknowledgement and the start
            // of the next one (they are at least 4 ms apart).
            let next_start = points[i + 1].before_ms;
            assert!(next_start - points[i].after_ms >= 2);
            let t = points[i].after_ms + (next_start - points[i].after_ms) / 2;
            params["to_time"] = json!(t.to_string());
        } else {
            params["to_sequence"] = json!(points[i].sequence);
        }
        let r = ok(&c, "backup_restore", params.clone()).await;
        assert_eq!(r["restored"], if i < 30 { "b0" } else { "b1" }, "{r}");
        let d2 = start(&out);
        let got = dump(&d2.client())
            .await
            .into_iter()
            .collect::<BTreeMap<_, _>>();
        d2.terminate();
        assert_eq!(got, points[i].state, "round {round}: {params}");
    }

    // wal replay reads the archive back as change events.
    let base = points[0].sequence - 1;
    let r = ok(&c, "wal_replay", json!({"from_sequence": base, "limit": 5})).await;
    assert!(r["count"].as_u64().unwrap() >= 1, "{r}");
    assert!(r["events"][0]["sequence"].as_u64().unwrap() > base);

    // A damaged segment: the restore fails and leaves nothing behind.
    for e in std::fs::read_dir(backups.join("wal")).unwrap() {
        let seg = e.unwrap().path();
        if seg.extension().is_some_and(|x| x == "seg") {
            let mut b = std::fs::read(&seg).unwrap();
            let mid = b.len() / 2;
            b[mid] ^= 0xff;
            std::fs::write(&seg, b).unwrap();
        }
    }
    let out = tmp.path().join("broken");
    let (code, msg) = err(
        &c,
        "backup_restore",
        json!({"to": out.display().to_string(),
        "to_sequence": points[59].sequence, "name": "b0"}),
    )
    .await;
    assert!(
        code == -32010 || code == -32001 || code == -32004,
        "{code} {msg}"
    );
    assert!(
        msg.contains("segment") || msg.contains("zstd") || msg.contains("SHA-256"),
        "{msg}"
    );
    assert!(
        !out.exists(),
        "a failed restore leaves nothing at the target"
    );
    d.terminate();
}
