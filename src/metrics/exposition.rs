//! A [`Sample`] as metric families: encoded by `prometheus-client` for
//! `GET /metrics`, and as `{"name{labels}": value}` for `storage_stats
//! {detailed}` — the same families, so the two always name the same series
//! with the same values.
//!
//! `prometheus-client` writes OpenMetrics, served to a scraper that asks
//! for it (`Accept: application/openmetrics-text`, as Prometheus does).
//! Anyone else gets the Prometheus text format 0.0.4, which differs only in
//! how a counter's family is named (`# HELP x_total` rather than `# HELP
//! x`) and in having no `# EOF`; `promtool check metrics` reads that one.

use std::fmt::Write as _;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, MetricEncoder};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use serde_json::{Map, Value};

use super::{Sample, DISK_ALERT_RATIO};

/// What a family is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Gauge,
    /// Its samples are named `<family>_total`.
    Counter,
    /// Its samples are `<family>_sum`, `_count` and `_bucket{le}`.
    Histogram,
}

type Labels = Vec<(&'static str, String)>;

/// One value of a family.
#[derive(Debug, Clone, PartialEq)]
pub enum Point {
    Number(f64),
    /// A histogram that knows only its sum and count (its one bucket is
    /// `+Inf`).
    Histogram {
        sum: f64,
        count: u64,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    pub name: &'static str,
    pub help: &'static str,
    pub kind: Kind,
    pub series: Vec<(Labels, Point)>,
}

impl Family {
    fn new(kind: Kind, name: &'static str, help: &'static str) -> Family {
        Family {
            name,
            help,
            kind,
            series: Vec::new(),
        }
    }

    fn with(mut self, labels: Labels, v: f64) -> Family {
        let v = if v.is_finite() { v } else { 0.0 };
        self.series.push((labels, Point::Number(v)));
        self
    }

    fn one(kind: Kind, name: &'static str, help: &'static str, v: f64) -> Family {
        Family::new(kind, name, help).with(Vec::new(), v)
    }

    /// Each sample's name with its labels, as the exposition writes it,
    /// and its value.
    fn samples(&self) -> Vec<(String, f64)> {
        let mut out = Vec::new();
        for (labels, point) in &self.series {
            match point {
                Point::Number(v) => {
                    let suffix = if self.kind == Kind::Counter {
                        "_total"
                    } else {
                        ""
                    };
                    out.push((series_name(self.name, suffix, labels), *v));
                }
                Point::Histogram { sum, count } => {
                    out.push((series_name(self.name, "_sum", labels), *sum));
                    out.push((series_name(self.name, "_count", labels), *count as f64));
                    let mut le = labels.clone();
                    le.push(("le", "+Inf".into()));
                    out.push((series_name(self.name, "_bucket", &le), *count as f64));
                }
            }
        }
        out
    }
}

fn series_name(name: &str, suffix: &str, labels: &Labels) -> String {
    let mut s = format!("{name}{suffix}");
    if !labels.is_empty() {
        let inner: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
        let _ = write!(s, "{{{}}}", inner.join(","));
    }
    s
}

fn labelled(key: &'static str, value: &str) -> Labels {
    vec![(key, value.to_string())]
}

/// Where the memory is, and the budget it is held to.
fn memory(m: &super::MemoryFigures) -> [Family; 2] {
    let st = &m.store;
    let mut bytes = Family::new(
        Kind::Gauge,
        "ruvector_storage_memory_bytes",
        "Memory by kind, bytes: RocksDB's block cache (memtables charged to it), memtables, table readers; vector_search's in-memory copies of collections (search_cache); what the allocators hold from the kernel (allocator_resident: glibc malloc's heap, where RocksDB allocates, and mimalloc's, the Rust heap); the process's RSS.",
    )
    .with(labelled("kind", "block_cache"), st.block_cache as f64)
    .with(labelled("kind", "memtables"), st.memtables as f64)
    .with(labelled("kind", "table_readers"), st.table_readers as f64)
    .with(labelled("kind", "search_cache"), st.search_cache as f64);
    if let Some(a) = m.allocator {
        bytes = bytes
            .with(labelled("kind", "allocator_resident"), a.resident() as f64)
            .with(
                labelled("kind", "malloc_allocated"),
                a.malloc_allocated as f64,
            )
            .with(
                labelled("kind", "malloc_resident"),
                a.malloc_resident as f64,
            )
            .with(
                labelled("kind", "mimalloc_committed"),
                a.mimalloc_committed as f64,
            );
    }
    if let Some(rss) = m.process_rss {
        bytes = bytes.with(labelled("kind", "process_rss"), rss as f64);
    }
    [
        bytes,
        Family::one(
            Kind::Gauge,
            "ruvector_storage_memory_budget_bytes",
            "limits.memory-mb, bytes.",
            m.budget as f64,
        ),
    ]
}

/// Every family of a sample.
pub fn families(s: &Sample) -> Vec<Family> {
    use Kind::{Counter, Gauge};
    let disk = s.disk.unwrap_or(super::DiskSpace {
        used: 0,
        available: 0,
    });
    let usage = s.disk_usage();
    let mut f = vec![
        Family::new(
            Gauge,
            "ruvector_storage_disk_bytes",
            "Filesystem holding the data directory, bytes (as df counts them).",
        )
        .with(labelled("kind", "total"), disk.total() as f64)
        .with(labelled("kind", "used"), disk.used as f64)
        .with(labelled("kind", "available"), disk.available as f64),
        Family::one(
            Gauge,
            "ruvector_storage_disk_usage_ratio",
            "Used fraction of that filesystem (df's Use%).",
            usage,
        ),
        Family::one(
            Gauge,
            "ruvector_storage_disk_usage_alert",
            "1 when disk usage is at or above 80%.",
            if usage >= DISK_ALERT_RATIO { 1.0 } else { 0.0 },
        ),
    ];
    if let Some(io) = &s.disk_io {
        let device = || labelled("device", &io.device);
        for (name, help, v) in [
            (
                "ruvector_storage_disk_io_time_seconds",
                "Seconds the data directory's block device had I/O in flight; its rate() is the device's utilisation (0..1).",
                io.io_time_ms as f64 / 1000.0,
            ),
            (
                "ruvector_storage_disk_reads_completed",
                "Reads completed by the data directory's block device.",
                io.reads as f64,
            ),
            (
                "ruvector_storage_disk_writes_completed",
                "Writes completed by the data directory's block device.",
                io.writes as f64,
            ),
            (
                "ruvector_storage_disk_read_bytes",
                "Bytes read by the data directory's block device.",
                io.read_bytes as f64,
            ),
            (
                "ruvector_storage_disk_written_bytes",
                "Bytes written by the data directory's block device.",
                io.written_bytes as f64,
            ),
        ] {
            f.push(Family::new(Counter, name, help).with(device(), v));
        }
    }
    if let Some(u) = s.disk_io_utilisation {
        f.push(Family::one(
            Gauge,
            "ruvector_storage_disk_io_utilisation",
            "Fraction of the last status interval the data directory's block device was busy.",
            u,
        ));
    }
    let st = &s.store;
    f.push(
        Family::new(
            Gauge,
            "ruvector_storage_store_bytes",
            "Bytes of the store: live (SST + memtables) and on disk.",
        )
        .with(labelled("kind", "live"), st.size_bytes as f64)
        .with(labelled("kind", "on_disk"), st.disk_bytes as f64),
    );
    let mut keys = Family::new(
        Gauge,
        "ruvector_storage_keys",
        "Estimated keys per column family.",
    );
    for cf in &st.column_families {
        keys = keys.with(labelled("cf", cf.name), cf.estimate_num_keys as f64);
    }
    f.push(keys);
    for (name, help, v) in [
        (
            "ruvector_storage_writes",
            "Write batches applied.",
            st.writes,
        ),
        (
            "ruvector_storage_write_bytes",
            "Bytes of write batches applied.",
            st.write_bytes,
        ),
        ("ruvector_storage_reads", "Point reads.", st.reads),
        (
            "ruvector_storage_vectors_clipped",
            "Vector values outside their collection's calibrated ranges, clipped when quantized.",
            st.vectors_clipped,
        ),
        (
            "ruvector_storage_read_bytes",
            "Bytes returned by point reads.",
            st.read_bytes,
        ),
    ] {
        f.push(Family::one(Counter, name, help, v as f64));
    }
    f.push(Family::one(
        Gauge,
        "ruvector_storage_compression_ratio",
        "Raw key+value bytes over SST data bytes (vectors and metadata).",
        s.vectors.compression_ratio,
    ));
    let w = s.wal_sync;
    let mut sync = Family::new(
        Kind::Histogram,
        "ruvector_storage_wal_sync_seconds",
        "WAL fsync latency since start: total seconds and count (RocksDB keeps no buckets; percentiles are ruvector_storage_wal_sync_percentile_seconds).",
    );
    sync.series.push((
        Vec::new(),
        Point::Histogram {
            sum: w.sum_secs,
            count: w.count,
        },
    ));
    f.push(sync);
    f.push(
        Family::new(
            Gauge,
            "ruvector_storage_wal_sync_percentile_seconds",
            "WAL fsync latency percentiles since start (RocksDB statistics).",
        )
        .with(labelled("percentile", "50"), w.p50)
        .with(labelled("percentile", "95"), w.p95)
        .with(labelled("percentile", "99"), w.p99),
    );
    f.push(Family::one(
        Counter,
        "ruvector_storage_block_cache_hits",
        "Block cache hits.",
        s.block_cache_hits as f64,
    ));
    f.push(Family::one(
        Counter,
        "ruvector_storage_block_cache_misses",
        "Block cache misses.",
        s.block_cache_misses as f64,
    ));
    f.push(Family::one(
        Gauge,
        "ruvector_storage_block_cache_hit_ratio",
        "Block cache hits over lookups since start.",
        s.block_cache_hit_ratio(),
    ));
    f.push(Family::one(
        Gauge,
        "ruvector_storage_compaction_pending_bytes",
        "Bytes compaction still has to rewrite (RocksDB estimate).",
        s.compaction_pending_bytes as f64,
    ));
    f.push(Family::one(
        Gauge,
        "ruvector_storage_compactions_running",
        "Compactions running now.",
        s.compactions_running as f64,
    ));
    f.extend(memory(&s.memory));
    if let Some(c) = &s.records.compaction {
        f.push(Family::one(
            Gauge,
            "ruvector_storage_compaction_job_running",
            "1 while a compact job (compact --full or --incremental) runs.",
            if c.running { 1.0 } else { 0.0 },
        ));
        if let Some(last) = &c.last {
            f.push(
                Family::new(
                    Gauge,
                    "ruvector_storage_compaction_job_bytes",
                    "SST bytes of the store before (in) and after (out) the last compact job.",
                )
                .with(labelled("kind", "in"), last.sst_bytes_before as f64)
                .with(labelled("kind", "out"), last.sst_bytes_after as f64),
            );
            f.push(Family::one(
                Gauge,
                "ruvector_storage_compaction_job_duration_seconds",
                "How long the last compact job took.",
                last.elapsed_ms as f64 / 1000.0,
            ));
        }
    }
    let snaps = s
        .records
        .snapshots
        .as_ref()
        .and_then(|r| r.summary())
        .cloned()
        .unwrap_or_default();
    f.push(Family::one(
        Gauge,
        "ruvector_storage_snapshots",
        "Complete snapshots.",
        snaps.count as f64,
    ));
    f.push(
        Family::new(
            Gauge,
            "ruvector_storage_snapshot_bytes",
            "Bytes of all snapshots, and held by snapshots alone.",
        )
        .with(labelled("kind", "total"), snaps.total_bytes as f64)
        .with(labelled("kind", "exclusive"), snaps.exclusive_bytes as f64),
    );
    f.push(Family::one(
        Gauge,
        "ruvector_storage_uptime_seconds",
        "Seconds since the store was opened.",
        st.uptime_secs as f64,
    ));
    if let Some(age) = s.backup_age_secs() {
        f.push(Family::one(
            Gauge,
            "ruvector_storage_backup_age_seconds",
            "Seconds since the last successful backup.",
            age,
        ));
    }
    if let Some((secs, sequences)) = s.wal_archive_lag() {
        f.push(Family::one(
            Gauge,
            "ruvector_storage_wal_archive_lag_seconds",
            "Upper bound on the age of the oldest write not yet archived (the RPO now): seconds since the start of the last archive pass that succeeded.",
            secs,
        ));
        f.push(Family::one(
            Gauge,
            "ruvector_storage_wal_archive_lag_sequences",
            "Sequences the store was ahead of the archive when the last pass ended.",
            sequences as f64,
        ));
    }
    f
}

/// The samples as `{"name{labels}": value}`, named as the exposition names them.
pub fn json(s: &Sample) -> Map<String, Value> {
    families(s)
        .iter()
        .flat_map(Family::samples)
        .map(|(k, v)| (k, Value::from(v)))
        .collect()
}

/// The exposition formats `GET /metrics` serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The Prometheus text format 0.0.4 (what `promtool check metrics` reads).
    Text,
    /// OpenMetrics 1.0 text, as `prometheus-client` encodes it.
    OpenMetrics,
}

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Text => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }

    /// OpenMetrics when the `Accept` header prefers it (by `q`) to the
    /// text format; the text format otherwise.
    pub fn negotiate(accept: Option<&str>) -> Format {
        let (mut open, mut text) = (0.0f64, 0.0f64);
        for range in accept.unwrap_or("").split(',') {
            let mut parts = range.split(';').map(str::trim);
            let media = parts.next().unwrap_or("").to_ascii_lowercase();
            let q = parts
                .filter_map(|p| p.strip_prefix("q="))
                .find_map(|q| q.parse::<f64>().ok())
                .unwrap_or(1.0);
            match media.as_str() {
                "application/openmetrics-text" => open = open.max(q),
                "text/plain" | "text/*" | "*/*" => text = text.max(q),
                _ => {}
            }
        }
        if open > 0.0 && open >= text {
            Format::OpenMetrics
        } else {
            Format::Text
        }
    }
}

#[derive(Debug)]
struct Families(Vec<Family>);

impl Collector for Families {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        for f in self.0.iter().filter(|f| !f.series.is_empty()) {
            let kind = match f.kind {
                Kind::Gauge => MetricType::Gauge,
                Kind::Counter => MetricType::Counter,
                Kind::Histogram => MetricType::Histogram,
            };
            let mut m = encoder.encode_descriptor(f.name, f.help, None, kind)?;
            for (labels, point) in &f.series {
                if labels.is_empty() {
                    encode_point(&mut m, f.kind, point)?;
                } else {
                    encode_point(&mut m.encode_family(labels)?, f.kind, point)?;
                }
            }
        }
        Ok(())
    }
}

fn encode_point(m: &mut MetricEncoder, kind: Kind, point: &Point) -> std::fmt::Result {
    match (kind, point) {
        (Kind::Counter, Point::Number(v)) => m.encode_counter::<Labels, f64, f64>(v, None),
        (_, Point::Number(v)) => m.encode_gauge(v),
        (_, Point::Histogram { sum, count }) => {
            // prometheus-client writes an upper bound of f64::MAX as `+Inf`.
            m.encode_histogram::<Labels>(*sum, *count, &[(f64::MAX, *count)], None)
        }
    }
}

/// The exposition of a sample in `format`.
pub fn render(s: &Sample, format: Format) -> Result<String, String> {
    let families = families(s);
    let counters: Vec<&str> = families
        .iter()
        .filter(|f| f.kind == Kind::Counter)
        .map(|f| f.name)
        .collect();
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Families(families.clone())));
    let mut open = String::with_capacity(8192);
    prometheus_client::encoding::text::encode(&mut open, &registry)
        .map_err(|_| "encoding the metrics failed".to_string())?;
    Ok(match format {
        Format::OpenMetrics => open,
        Format::Text => text_format(&open, &counters),
    })
}

/// OpenMetrics → the text format 0.0.4: a counter family is named by its
/// samples (`x_total`); `# EOF` (and `# UNIT`, unused) are dropped.
fn text_format(open: &str, counters: &[&str]) -> String {
    let mut out = String::with_capacity(open.len());
    for line in open.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|p| {
            let (name, rest) = line.strip_prefix(p)?.split_once(' ')?;
            counters
                .contains(&name)
                .then(|| format!("{p}{name}_total {rest}"))
        });
        out.push_str(renamed.as_deref().unwrap_or(line));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests;
