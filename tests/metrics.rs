//! `GET /metrics` on the JSON-RPC port: the seed's metrics, in a format
//! `promtool check metrics` accepts (and OpenMetrics for a scraper that
//! asks for it), reflecting what the daemon did, sampled once per tick and
//! the same figures as `storage_stats {detailed}`.

mod common;

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use ruvector_storage::client::Client;
use serde_json::{json, Value};

/// `(head, body)` of `GET /metrics`, with an `Accept` header when given.
fn scrape_as(url: &str, accept: Option<&str>) -> (String, String) {
    let addr = url.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    let accept = accept.map_or(String::new(), |a| format!("Accept: {a}\r\n"));
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: x\r\n{accept}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap();
    (head.to_string(), body.to_string())
}

fn scrape(url: &str) -> String {
    scrape_as(url, None).1
}

fn value(body: &str, series: &str) -> f64 {
    body.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no series {series} in\n{body}"))
}

/// `(series, value)` of every sample line.
fn samples(body: &str) -> Vec<(String, f64)> {
    body.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (k, v) = l.rsplit_once(' ').unwrap();
            (k.to_string(), v.parse().unwrap())
        })
        .collect()
}

async fn detailed(c: &Client) -> Value {
    ok(c, "storage_stats", json!({"detailed": true})).await["metrics"].clone()
}

/// Wait (up to 20 s) for a scrape that satisfies `done`.
async fn scrape_until(url: &str, what: &str, done: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let body = scrape(url);
        if done(&body) {
            return body;
        }
        assert!(Instant::now() < deadline, "{what} never scraped:\n{body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn promtool_check(body: &str) {
    // promtool (Debian package prometheus; scripts/deps.sh installs it).
    let mut p = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool is required: apt-get install prometheus (scripts/deps.sh does)");
    p.stdin.take().unwrap().write_all(body.as_bytes()).unwrap();
    let out = p.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool: {}{}\n{body}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_scrape_is_valid_and_counts_work() {
    let dir = tempfile::tempdir().unwrap();
    // Figures are sampled once per tick: tick every second.
    let d = start_with(
        dir.path(),
        &[("RUVECTOR_STORAGE__STATUS_INTERVAL_SECS", "1")],
        &[],
    );
    let c = d.client();
    let (head, before) = scrape_as(&d.url, None);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_lowercase()
            .contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
    for i in 0..20 {
        ok(
            &c,
            "storage_write",
            json!({"key": format!("k{i}"), "value": "v"}),
        )
        .await;
    }
    ok(&c, "snapshot_create", json!({"name": "m1"})).await;
    let writes_before = value(&before, "ruvector_storage_writes_total");
    let body = scrape_until(&d.url, "a tick after 20 writes and a snapshot", |b| {
        value(b, "ruvector_storage_writes_total") >= writes_before + 20.0
            && value(b, "ruvector_storage_snapshots") == 1.0
    })
    .await;
    assert!(
        value(&body, "ruvector_storage_wal_sync_seconds_count") >= 20.0,
        "sync=always fsyncs every write"
    );
    assert!(value(&body, "ruvector_storage_wal_sync_seconds_sum") > 0.0);
    assert!(value(&body, "ruvector_storage_disk_bytes{kind=\"total\"}") > 0.0);
    // Disk I/O of the data directory's block device, when it is on one.
    match ruvector_storage::metrics::disk_io(dir.path()) {
        Some(io) => {
            let series = |name: &str| format!("{name}{{device=\"{}\"}}", io.device);
            let written = |b: &str| value(b, &series("ruvector_storage_disk_written_bytes_total"));
            assert!(
                written(&body) > written(&before),
                "20 fsynced writes reach the device"
            );
            assert!(
                value(
                    &body,
                    &series("ruvector_storage_disk_io_time_seconds_total")
                ) > 0.0
            );
        }
        None => {
            eprintln!(
                "SKIPPED: {} is on no block device in /proc/diskstats (tmpfs, overlayfs, btrfs?): \
                 the device counters are not checked, only that they are absent",
                dir.path().display()
            );
            assert!(
                !body.contains("device=\""),
                "no device, yet device series:\n{body}"
            );
        }
    }
    for name in [
        "ruvector_storage_disk_usage_ratio",
        "ruvector_storage_disk_usage_alert",
        "ruvector_storage_compression_ratio",
        "ruvector_storage_block_cache_hit_ratio",
        "ruvector_storage_compaction_pending_bytes",
        "ruvector_storage_reads_total",
        "ruvector_storage_wal_sync_percentile_seconds{percentile=\"99\"}",
    ] {
        value(&body, name);
    }
    promtool_check(&body);

    // A scraper that asks for OpenMetrics (Prometheus does) gets it.
    let (head, open) = scrape_as(
        &d.url,
        Some("application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"),
    );
    assert!(
        head.to_lowercase()
            .contains("content-type: application/openmetrics-text; version=1.0.0"),
        "{head}"
    );
    assert!(open.ends_with("# EOF\n"), "{open}");
    assert!(
        open.contains("# TYPE ruvector_storage_writes counter\n"),
        "{open}"
    );

    // `stats --detailed` carries the same series with the same values
    // (compared within one tick: two equal scrapes around it).
    let mut compared = false;
    for _ in 0..20 {
        let a = scrape(&d.url);
        let m = detailed(&c).await;
        if scrape(&d.url) != a {
            continue;
        }
        let m = m.as_object().unwrap();
        let series = samples(&a);
        assert_eq!(series.len(), m.len(), "{a}\n{m:?}");
        for (k, v) in series {
            // The same f64; the text and JSON encoders may print its last
            // digit differently (0.1987231519529943 vs …434).
            let got = m.get(&k).and_then(Value::as_f64);
            assert!(
                got.is_some_and(|g| (g - v).abs() <= 1e-12 * v.abs().max(1.0)),
                "{k}: scrape {v}, detailed {got:?}"
            );
        }
        compared = true;
        break;
    }
    assert!(compared, "every try straddled a tick");
    let m = detailed(&c).await;
    assert!(
        m["ruvector_storage_wal_sync_seconds_count"]
            .as_f64()
            .unwrap()
            >= 20.0,
        "{m}"
    );
    assert_eq!(m["ruvector_storage_snapshots"], 1.0);
    assert!(m["ruvector_storage_block_cache_hit_ratio"].is_number());
    assert!(ok(&c, "storage_stats", json!({})).await["metrics"].is_null());
    let (code, out, e) = cli(&["stats", "--detailed", "--connect", &d.url]);
    assert_eq!(code, 0, "{e}");
    assert!(
        out.contains("ruvector_storage_wal_sync_seconds_count") && out.contains("actors"),
        "{out}"
    );
    // JSON-RPC on the same port is unaffected.
    assert_eq!(
        ok(&c, "storage_read", json!({"key": "k1"})).await["value"],
        "v"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrapes_between_ticks_serve_the_ticks_sample() {
    let dir = tempfile::tempdir().unwrap();
    // One tick at start, the next an hour later.
    let d = start_with(
        dir.path(),
        &[("RUVECTOR_STORAGE__STATUS_INTERVAL_SECS", "3600")],
        &[],
    );
    let c = d.client();
    // The first tick has run once its records are on the bus.
    let deadline = Instant::now() + Duration::from_secs(20);
    while ok(
        &c,
        "memory_retrieve",
        json!({"key": "swarm/storage/status", "namespace": "ruvector/storage"}),
    )
    .await["found"]
        != true
    {
        assert!(Instant::now() < deadline, "the first tick never published");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let first = scrape(&d.url);
    for i in 0..5 {
        ok(
            &c,
            "storage_write",
            json!({"key": format!("k{i}"), "value": "v"}),
        )
        .await;
    }
    // The store moved (its live counters say so) …
    let live = ok(&c, "storage_stats", json!({})).await["store"]["writes"]
        .as_f64()
        .unwrap();
    assert!(live >= value(&first, "ruvector_storage_writes_total") + 5.0);
    // … but no scrape or `stats --detailed` re-reads it before the next tick.
    assert_eq!(scrape(&d.url), first);
    let m = detailed(&c).await;
    assert_eq!(
        m["ruvector_storage_writes_total"].as_f64(),
        Some(value(&first, "ruvector_storage_writes_total"))
    );
}
