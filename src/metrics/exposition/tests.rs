use super::super::sample::testutil::{sample, FakeDisk};
use super::*;

/// `name value` lines of an exposition (comments skipped).
fn lines(text: &str) -> Vec<(String, f64)> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let (k, v) = l.rsplit_once(' ').unwrap();
            (k.to_string(), v.parse().unwrap())
        })
        .collect()
}

#[test]
fn json_names_every_series_of_the_exposition_with_its_value() {
    let disk = FakeDisk::default();
    disk.used(30);
    *disk.io.lock().unwrap() = Some(super::super::DiskIo {
        device: "vda".into(),
        reads: 1,
        writes: 2,
        read_bytes: 3,
        written_bytes: 4,
        io_time_ms: 1500,
    });
    let mut s = sample(&disk, 0);
    s.disk_io_utilisation = Some(0.25);
    s.wal_sync.count = 3;
    s.wal_sync.sum_secs = 0.5;
    let text = render(&s, Format::Text).unwrap();
    let json = json(&s);
    let scraped = lines(&text);
    assert_eq!(scraped.len(), json.len(), "{text}\n{json:?}");
    for (k, v) in &scraped {
        assert_eq!(json[k].as_f64(), Some(*v), "{k}");
    }
    for k in [
        "ruvector_storage_writes_total",
        "ruvector_storage_disk_bytes{kind=\"used\"}",
        "ruvector_storage_disk_io_time_seconds_total{device=\"vda\"}",
        "ruvector_storage_disk_io_utilisation",
        "ruvector_storage_wal_sync_seconds_count",
        "ruvector_storage_wal_sync_seconds_sum",
        "ruvector_storage_wal_sync_seconds_bucket{le=\"+Inf\"}",
        "ruvector_storage_wal_sync_percentile_seconds{percentile=\"99\"}",
        "ruvector_storage_keys{cf=\"vectors\"}",
    ] {
        assert!(json.contains_key(k), "{k} missing from {json:?}");
    }
    assert_eq!(
        json["ruvector_storage_disk_io_time_seconds_total{device=\"vda\"}"],
        1.5
    );
    assert_eq!(json["ruvector_storage_wal_sync_seconds_count"], 3.0);
    assert_eq!(json["ruvector_storage_disk_usage_alert"], 0.0);
}

#[test]
fn text_format_names_counter_families_by_their_samples() {
    let s = sample(&FakeDisk::default(), 0);
    let open = render(&s, Format::OpenMetrics).unwrap();
    assert!(open.ends_with("# EOF\n"), "{open}");
    assert!(open.contains("# TYPE ruvector_storage_writes counter\n"));
    let text = render(&s, Format::Text).unwrap();
    assert!(!text.contains("# EOF"));
    assert!(text.contains(
        "# HELP ruvector_storage_writes_total Write batches applied.\n# TYPE ruvector_storage_writes_total counter\nruvector_storage_writes_total "
    ), "{text}");
    assert!(text.contains("# TYPE ruvector_storage_disk_usage_ratio gauge\n"));
    // Only the descriptors differ.
    assert_eq!(lines(&open), lines(&text));
    // No disk I/O known: no device series at all.
    assert!(!text.contains("device="), "{text}");
}

#[test]
fn prometheus_gets_openmetrics_and_everyone_else_the_text_format() {
    let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
    assert_eq!(Format::negotiate(Some(prometheus)), Format::OpenMetrics);
    assert_eq!(Format::negotiate(None), Format::Text);
    assert_eq!(Format::negotiate(Some("*/*")), Format::Text);
    assert_eq!(
        Format::negotiate(Some("text/plain, application/openmetrics-text;q=0.5")),
        Format::Text
    );
    assert_eq!(
        Format::negotiate(Some("application/openmetrics-text;q=0")),
        Format::Text
    );
}
