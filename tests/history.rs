//! `stats --history`: the daemon keeps a point per status tick in its
//! metrics history (the `series` column family); writes show in its
//! write_iops, the CLI draws a sparkline per metric (or prints the JSON),
//! bad input names what is allowed, and a SIGKILL + restart keeps the
//! earlier points and continues the same chunk.

mod common;

use std::time::{Duration, Instant};

use common::*;
use ruvector_storage::client::Client;
use serde_json::{json, Value};

const TICK_EVERY_SECOND: &[(&str, &str)] = &[("RUVECTOR_STORAGE__STATUS_INTERVAL_SECS", "1")];

async fn history(c: &Client, params: &Value) -> Value {
    ok(c, "storage_stats", params.clone()).await["history"].clone()
}

/// Ask until `done` holds for the history (up to 30 s).
async fn until(c: &Client, params: &Value, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let h = history(c, params).await;
        if done(&h) {
            return h;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {h}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn timestamps(h: &Value) -> Vec<i64> {
    h["timestamps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_i64().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_history_records_each_tick_draws_sparklines_and_survives_a_kill() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let d = start_with(&dir, TICK_EVERY_SECOND, &[]);
    let c = d.client();
    let iops = json!({"history": true, "since": "1h", "metric": "write_iops", "points": 10000});

    for i in 0..300 {
        ok(
            &c,
            "storage_write",
            json!({"key": format!("k{i}"), "value": "v"}),
        )
        .await;
    }
    // Ten ticks or more: the chunk's header (the column names) is spread
    // over its points.
    let h = until(&c, &iops, "ten ticks, one of which saw the writes", |h| {
        h["metrics"][0]["max"].as_f64().unwrap_or(0.0) >= 1.0 && h["points"].as_u64() >= Some(10)
    })
    .await;
    let metrics = h["metrics"].as_array().unwrap();
    assert_eq!(metrics.len(), 1, "only the metric asked for");
    assert_eq!(metrics[0]["name"], "write_iops");
    assert_eq!(
        metrics[0]["values"].as_array().unwrap().len(),
        h["points"].as_u64().unwrap() as usize,
        "one value per point when they fit"
    );
    // The encoding is measured against the same points as JSON records.
    let (enc, js) = (
        h["encoded_bytes"].as_u64().unwrap(),
        h["json_bytes"].as_u64().unwrap(),
    );
    assert!(enc > 0 && js > 5 * enc, "encoded {enc} vs JSON {js}");
    assert_eq!(h["retention_secs"], 604_800);

    // Every metric is kept (all ten, the RSS among them).
    let all = until(
        &c,
        &json!({"history": true, "since": "1h"}),
        "the RSS",
        |h| h["metrics"][9]["last"].as_f64().unwrap_or(0.0) > 1.0,
    )
    .await;
    assert_eq!(all["metrics"].as_array().unwrap().len(), 10);
    assert_eq!(all["metrics"][9]["name"], "memory_rss_mb");

    // The CLI draws a sparkline per metric, with its figures.
    let (code, out, stderr) = cli(&[
        "stats",
        "--connect",
        &d.url,
        "--history",
        "--since",
        "1h",
        "--metric",
        "write_iops,read_iops",
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(out.starts_with("metrics history"), "{out}");
    let line = out
        .lines()
        .find(|l| l.starts_with("write_iops"))
        .unwrap_or_else(|| panic!("no write_iops line: {out}"));
    assert!(line.chars().any(|ch| "▁▂▃▄▅▆▇█".contains(ch)), "{line}");
    assert!(line.contains("min 0") && line.contains(" max "), "{line}");
    assert!(out.lines().any(|l| l.starts_with("read_iops")), "{out}");
    // --json prints the raw result.
    let (code, out, stderr) = cli(&["stats", "--connect", &d.url, "--json", "--history"]);
    assert_eq!(code, 0, "{stderr}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert!(v["history"]["points"].as_u64().unwrap() >= 2, "{v}");

    // Bad input names what is allowed.
    let (_, msg) = err(
        &c,
        "storage_stats",
        json!({"history": true, "metric": "write_iopz"}),
    )
    .await;
    assert!(
        msg.contains("write_iopz") && msg.contains("write_iops, read_iops"),
        "{msg}"
    );
    let (code, _, stderr) = cli(&["stats", "--connect", &d.url, "--history", "--since", "24x"]);
    assert_ne!(code, 0);
    assert!(
        stderr.contains("\"24x\"") && stderr.contains("s, m, h or d"),
        "{stderr}"
    );

    // SIGKILL, restart: the earlier points are there, and the restarted
    // daemon continues the same chunk.
    let before = history(&c, &iops).await;
    let kept = timestamps(&before);
    d.kill9();
    let d = start_with(&dir, TICK_EVERY_SECOND, &[]);
    let c = d.client();
    let after = until(&c, &iops, "ticks after the restart", |h| {
        h["points"].as_u64().unwrap_or(0) >= kept.len() as u64 + 2
    })
    .await;
    let now = timestamps(&after);
    for t in &kept {
        assert!(now.contains(t), "the point at {t} was lost in the kill");
    }
    assert!(now.last() > kept.last());
    assert_eq!(after["chunks"], 1, "a new chunk was begun: {after}");
    assert!(after["bad_chunks"].as_array().unwrap().is_empty());
    // The history is one of the families the integrity check reads.
    let check = ok(&c, "storage_check", json!({"verify_integrity": true})).await;
    let series = check["column_families"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "series")
        .cloned()
        .expect("the series family is checked");
    assert!(series["keys"].as_u64().unwrap() >= 1, "{check}");
    assert_eq!(series["problems"], 0, "{check}");
}
