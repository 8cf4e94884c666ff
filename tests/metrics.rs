//! `GET /metrics` on the JSON-RPC port: the seed's metrics, in a format
//! `promtool check metrics` accepts, reflecting what the daemon did.

mod common;

use std::io::{Read, Write};
use std::process::{Command, Stdio};

use common::*;
use serde_json::json;

fn scrape(url: &str) -> (String, String) {
    let addr = url.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap();
    (head.to_string(), body.to_string())
}

fn value(body: &str, series: &str) -> f64 {
    body.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no series {series} in\n{body}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_scrape_is_valid_and_counts_work() {
    let dir = tempfile::tempdir().unwrap();
    let d = start(dir.path());
    let c = d.client();
    let (head, before) = scrape(&d.url);
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
    let (_, body) = scrape(&d.url);
    assert!(
        value(&body, "ruvector_storage_writes_total")
            >= value(&before, "ruvector_storage_writes_total") + 20.0
    );
    assert!(
        value(&body, "ruvector_storage_wal_sync_seconds_count") >= 20.0,
        "sync=always fsyncs every write"
    );
    assert_eq!(value(&body, "ruvector_storage_snapshots"), 1.0);
    assert!(value(&body, "ruvector_storage_disk_bytes{kind=\"total\"}") > 0.0);
    // Disk I/O of the data directory's block device, when it is on one
    // (it is on this machine's ext4; a tmpfs TMPDIR has no device to read).
    if let Some(io) = ruvector_storage::metrics::disk_io(dir.path()) {
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
    for name in [
        "ruvector_storage_disk_usage_ratio",
        "ruvector_storage_disk_usage_alert",
        "ruvector_storage_compression_ratio",
        "ruvector_storage_block_cache_hit_ratio",
        "ruvector_storage_compaction_pending_bytes",
        "ruvector_storage_reads_total",
    ] {
        value(&body, name);
    }
    // promtool (Debian package prometheus; scripts/deps.sh installs it) accepts the scrape.
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
        "promtool: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // `stats --detailed` carries the same metrics (and the plain form does not).
    let detailed = ok(&c, "storage_stats", json!({"detailed": true})).await;
    let m = &detailed["metrics"];
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
