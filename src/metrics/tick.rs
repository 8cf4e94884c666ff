//! What the metrics actor does with each tick's sample: rates against the
//! previous sample, the 80% disk alert, and the records to publish. Plain
//! functions over plain values; the actor only carries them out.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use super::records::*;
use super::{Sample, DISK_ALERT_RATIO, MEMORY_ALERT_RATIO};
use crate::status::{DiskIoRecord, StatusBoard};

/// Rates between two samples.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Rates {
    /// Megabytes (10^6) of write batches per second.
    pub write_mbs: f64,
    pub write_iops: f64,
    pub read_iops: f64,
    /// Busy fraction of the data directory's block device, three decimals
    /// (when both samples read the same device).
    pub disk_io_utilisation: Option<f64>,
}

impl Rates {
    pub fn between(before: &Sample, after: &Sample) -> Rates {
        let secs = after
            .at
            .saturating_duration_since(before.at)
            .as_secs_f64()
            .max(1e-3);
        let per_sec = |a: u64, b: u64| b.saturating_sub(a) as f64 / secs;
        let (b, a) = (&before.store, &after.store);
        Rates {
            write_mbs: per_sec(b.write_bytes, a.write_bytes) / 1e6,
            write_iops: per_sec(b.writes, a.writes),
            read_iops: per_sec(b.reads, a.reads),
            disk_io_utilisation: match (&before.disk_io, &after.disk_io) {
                (Some(x), Some(y)) if x.device == y.device => {
                    Some((super::io_utilisation(x, y, secs) * 1000.0).round() / 1000.0)
                }
                _ => None,
            },
        }
    }
}

/// How the disk alert changes with a sample.
#[derive(Debug, Clone, PartialEq)]
pub enum AlertChange {
    /// Usage crossed 80%: the message to record (once per crossing).
    Raised(String),
    /// Usage fell below 80% again.
    Cleared,
    Unchanged,
}

/// The 80% disk alert: raised when usage reaches [`DISK_ALERT_RATIO`]
/// while it was not raised, cleared when usage falls below it.
pub fn disk_alert(raised: bool, s: &Sample) -> AlertChange {
    let usage = s.disk_usage();
    match (raised, usage >= DISK_ALERT_RATIO) {
        (false, true) => AlertChange::Raised(format!(
            "disk usage {:.1}% is at or above 80%",
            usage * 100.0
        )),
        (true, false) => AlertChange::Cleared,
        _ => AlertChange::Unchanged,
    }
}

/// The memory alert: raised when the process's RSS exceeds the budget by
/// [`MEMORY_ALERT_RATIO`] while it was not raised, cleared when RSS is back
/// under the budget.
pub fn memory_alert(raised: bool, s: &Sample) -> AlertChange {
    let (Some(rss), budget) = (s.memory.process_rss, s.memory.budget) else {
        return AlertChange::Unchanged;
    };
    let over = rss as f64 > budget as f64 * MEMORY_ALERT_RATIO;
    match (raised, over, rss <= budget) {
        (false, true, _) => AlertChange::Raised(format!(
            "the daemon's RSS {:.0} MiB exceeds its memory budget (limits.memory-mb = {}) by more than 25%",
            rss as f64 / 1048576.0,
            budget / 1048576
        )),
        (true, _, true) => AlertChange::Cleared,
        _ => AlertChange::Unchanged,
    }
}

/// One record to upsert into the memory bus.
#[derive(Debug, Clone, PartialEq)]
pub struct Publication {
    pub namespace: &'static str,
    pub key: String,
    pub value: Value,
}

fn publication(namespace: &'static str, key: &str, value: &impl Serialize) -> Publication {
    Publication {
        namespace,
        key: key.to_string(),
        // The records are structs of strings, numbers and options: they
        // always serialise.
        value: serde_json::to_value(value).unwrap_or(Value::Null),
    }
}

/// What one tick made.
#[derive(Debug)]
pub struct Tick {
    /// The sample with its rates: what `/metrics` and `stats` serve now.
    pub sample: Arc<Sample>,
    pub rates: Rates,
    /// In order: status, vector_storage, metrics, index_persistence, the
    /// error (when there is a new one), then every board record.
    pub publications: Vec<Publication>,
    /// The tick's point of the metrics history.
    pub point: crate::series::Point,
}

/// The state kept from tick to tick.
#[derive(Debug)]
pub struct Ticker {
    interval: Duration,
    previous: Option<Arc<Sample>>,
    /// Sequence of the last error published to `ruvector/errors`.
    published_error: u64,
    disk_alert: bool,
    memory_alert: bool,
}

impl Ticker {
    /// `interval`: the time between ticks (reported with the disk's
    /// utilisation).
    pub fn new(interval: Duration) -> Ticker {
        Ticker {
            interval,
            previous: None,
            published_error: 0,
            disk_alert: false,
            memory_alert: false,
        }
    }

    pub fn disk_alert_raised(&self) -> bool {
        self.disk_alert
    }

    /// Take in a new sample: rates, the disk alert (recorded on the board
    /// as an error of operation `disk`), the `disk_io` record, and the
    /// records to publish.
    pub fn tick(&mut self, mut sample: Sample, board: &StatusBoard) -> Tick {
        let rates = match &self.previous {
            Some(p) => Rates::between(p, &sample),
            None => Rates::default(),
        };
        sample.disk_io_utilisation = rates.disk_io_utilisation;
        if let (Some(u), Some(io)) = (rates.disk_io_utilisation, &sample.disk_io) {
            let record = DiskIoRecord {
                device: io.device.clone(),
                utilisation: u,
                interval_secs: self.interval.as_secs_f64(),
            };
            board.update_records(|r| r.disk_io = Some(record));
        }
        match disk_alert(self.disk_alert, &sample) {
            AlertChange::Raised(msg) => {
                tracing::warn!(usage_percentage = sample.disk_usage() * 100.0, "{msg}");
                board.record_error("disk", &msg);
                self.disk_alert = true;
            }
            AlertChange::Cleared => self.disk_alert = false,
            AlertChange::Unchanged => {}
        }
        match memory_alert(self.memory_alert, &sample) {
            AlertChange::Raised(msg) => {
                tracing::warn!("{msg}");
                board.record_error("memory", &msg);
                self.memory_alert = true;
            }
            AlertChange::Cleared => self.memory_alert = false,
            AlertChange::Unchanged => {}
        }
        let record = MetricsRecord::new(&sample, &rates);
        let point = super::history::point(&record, &rates, &sample);
        let mut publications = vec![
            publication(STATUS_NAMESPACE, STATUS_KEY, &board.record()),
            publication(
                STATUS_NAMESPACE,
                VECTOR_STORAGE_KEY,
                &VectorStorageRecord::new(&sample, &rates),
            ),
            publication(METRICS_NAMESPACE, METRICS_KEY, &record),
            publication(
                STATUS_NAMESPACE,
                INDEX_PERSISTENCE_KEY,
                &IndexPersistenceRecord::of(&sample),
            ),
        ];
        if let Some(e) = board
            .latest_error()
            .filter(|e| e.seq > self.published_error)
        {
            self.published_error = e.seq;
            publications.push(publication(
                ERRORS_NAMESPACE,
                ERRORS_KEY,
                &ErrorRecord::from(&e),
            ));
        }
        for (name, value) in board.records().to_json() {
            publications.push(Publication {
                namespace: STATUS_NAMESPACE,
                key: format!("swarm/storage/{name}"),
                value,
            });
        }
        let sample = Arc::new(sample);
        self.previous = Some(sample.clone());
        Tick {
            sample,
            rates,
            publications,
            point,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::sample::testutil::{sample, FakeDisk};
    use super::super::DiskIo;
    use super::*;

    fn errors(t: &Tick) -> Vec<&Value> {
        t.publications
            .iter()
            .filter(|p| p.namespace == ERRORS_NAMESPACE && p.key == ERRORS_KEY)
            .map(|p| &p.value)
            .collect()
    }

    fn metric(t: &Tick, name: &str) -> f64 {
        super::super::exposition::json(&t.sample)[name]
            .as_f64()
            .unwrap()
    }

    #[test]
    fn rss_over_the_budget_by_a_quarter_raises_the_memory_alert_once() {
        let disk = FakeDisk::default();
        let board = StatusBoard::new();
        let mut ticker = Ticker::new(Duration::from_secs(1));
        let with_rss = |rss_mb: u64| {
            let mut s = sample(&disk, 1_000);
            s.memory.budget = 100 << 20;
            s.memory.process_rss = Some(rss_mb << 20);
            s
        };
        let t = ticker.tick(with_rss(120), &board);
        assert!(errors(&t).is_empty(), "within 25% of the budget");
        assert_eq!(
            metric(&t, "ruvector_storage_memory_budget_bytes"),
            104857600.0
        );
        let t = ticker.tick(with_rss(130), &board);
        let e = board.latest_error().expect("recorded");
        assert_eq!(e.actor, "memory");
        assert!(
            e.message.contains("130 MiB") && e.message.contains("= 100"),
            "{}",
            e.message
        );
        assert_eq!(errors(&t)[0]["recovery_action"], recovery_action("memory"));
        // Still over, or between budget and 125%: not raised again.
        assert!(errors(&ticker.tick(with_rss(140), &board)).is_empty());
        assert!(errors(&ticker.tick(with_rss(110), &board)).is_empty());
        // Back under the budget clears it; over again raises it again.
        assert!(errors(&ticker.tick(with_rss(90), &board)).is_empty());
        assert_eq!(errors(&ticker.tick(with_rss(126), &board)).len(), 1);
    }

    #[test]
    fn crossing_80_percent_raises_the_alert_once_and_publishes_the_error() {
        let disk = FakeDisk::default();
        let board = StatusBoard::new();
        let mut ticker = Ticker::new(Duration::from_secs(1));
        disk.used(50);
        let t = ticker.tick(sample(&disk, 1_000), &board);
        assert!(errors(&t).is_empty() && board.latest_error().is_none());
        assert_eq!(metric(&t, "ruvector_storage_disk_usage_alert"), 0.0);

        disk.used(85);
        let t = ticker.tick(sample(&disk, 2_000), &board);
        assert!(ticker.disk_alert_raised());
        let e = board
            .latest_error()
            .expect("the alert is recorded on the board");
        assert_eq!(e.actor, "disk");
        assert!(e.message.contains("85.0%"), "{}", e.message);
        let published = errors(&t);
        assert_eq!(published.len(), 1, "{:?}", t.publications);
        let r = published[0];
        assert_eq!(r["operation"], "disk");
        assert_eq!(r["error"], e.message.as_str());
        assert_eq!(r["recovery_action"], recovery_action("disk"));
        assert_eq!(r["timestamp"], e.at_ms);
        assert_eq!(metric(&t, "ruvector_storage_disk_usage_alert"), 1.0);
        let m = &t
            .publications
            .iter()
            .find(|p| p.key == METRICS_KEY)
            .unwrap()
            .value;
        assert_eq!(m["usage_percentage"], 85.0);

        // Still above: not raised again, nothing new published.
        disk.used(90);
        let t = ticker.tick(sample(&disk, 3_000), &board);
        assert!(errors(&t).is_empty());
        assert_eq!(board.latest_error().unwrap().seq, e.seq);

        // Below: cleared; crossing again raises it again.
        disk.used(79);
        let t = ticker.tick(sample(&disk, 4_000), &board);
        assert!(!ticker.disk_alert_raised() && errors(&t).is_empty());
        assert_eq!(metric(&t, "ruvector_storage_disk_usage_alert"), 0.0);
        disk.used(80);
        let t = ticker.tick(sample(&disk, 5_000), &board);
        assert_eq!(errors(&t).len(), 1);
        assert!(board.latest_error().unwrap().seq > e.seq);
    }

    #[test]
    fn disk_alert_is_a_crossing_not_a_level() {
        let disk = FakeDisk::default();
        disk.used(81);
        let high = sample(&disk, 0);
        disk.used(20);
        let low = sample(&disk, 0);
        assert!(matches!(disk_alert(false, &high), AlertChange::Raised(_)));
        assert_eq!(disk_alert(true, &high), AlertChange::Unchanged);
        assert_eq!(disk_alert(true, &low), AlertChange::Cleared);
        assert_eq!(disk_alert(false, &low), AlertChange::Unchanged);
    }

    #[test]
    fn rates_are_per_second_between_samples() {
        let disk = FakeDisk::default();
        let io = |ms| DiskIo {
            device: "vda".into(),
            reads: 0,
            writes: 0,
            read_bytes: 0,
            written_bytes: 0,
            io_time_ms: ms,
        };
        *disk.io.lock().unwrap() = Some(io(1_000));
        let a = sample(&disk, 0);
        let mut b = a.clone();
        b.at = a.at + Duration::from_secs(2);
        b.store.writes += 100;
        b.store.write_bytes += 4_000_000;
        b.store.reads += 10;
        b.disk_io = Some(io(1_500));
        let r = Rates::between(&a, &b);
        assert_eq!(r.write_iops, 50.0);
        assert_eq!(r.write_mbs, 2.0);
        assert_eq!(r.read_iops, 5.0);
        assert_eq!(r.disk_io_utilisation, Some(0.25));
        // Another device, or none: no utilisation.
        b.disk_io.as_mut().unwrap().device = "sdb".into();
        assert_eq!(Rates::between(&a, &b).disk_io_utilisation, None);

        // A tick carries them into the sample, the board and the records.
        let board = StatusBoard::new();
        let mut ticker = Ticker::new(Duration::from_secs(2));
        let first = ticker.tick(a, &board);
        assert_eq!(first.rates, Rates::default(), "nothing to compare with");
        b.disk_io = Some(io(1_500));
        let t = ticker.tick(b, &board);
        assert_eq!(t.sample.disk_io_utilisation, Some(0.25));
        assert_eq!(metric(&t, "ruvector_storage_disk_io_utilisation"), 0.25);
        let rec = board.records().disk_io.expect("disk_io record");
        assert_eq!((rec.device.as_str(), rec.utilisation), ("vda", 0.25));
        assert_eq!(rec.interval_secs, 2.0);
        let by_key = |k: &str| &t.publications.iter().find(|p| p.key == k).unwrap().value;
        assert_eq!(by_key(VECTOR_STORAGE_KEY)["write_throughput_mbs"], 2.0);
        assert_eq!(by_key(METRICS_KEY)["write_iops"], 50.0);
        assert_eq!(by_key(METRICS_KEY)["disk_io_utilization"], 0.25);
        // The history's point holds the same figures, and the throughput.
        let col = |name: &str| {
            let i = super::super::history::COLUMNS
                .iter()
                .position(|c| c.name == name)
                .unwrap();
            t.point.values[i]
        };
        assert_eq!(t.point.at_ms, t.sample.at_ms);
        assert_eq!(col("write_iops"), Some(50.0));
        assert_eq!(col("disk_io_utilization"), Some(0.25));
        assert_eq!(col("write_mbs"), Some(2.0));
        assert_eq!(by_key("swarm/storage/disk_io")["utilisation"], 0.25);
    }

    #[test]
    fn a_tick_publishes_the_five_records_and_the_boards() {
        let board = StatusBoard::new();
        board.set_state("metrics", "running");
        let mut ticker = Ticker::new(Duration::from_secs(1));
        let t = ticker.tick(sample(&FakeDisk::default(), 0), &board);
        let keys: Vec<(&str, &str)> = t
            .publications
            .iter()
            .map(|p| (p.namespace, p.key.as_str()))
            .collect();
        assert_eq!(
            keys,
            [
                (STATUS_NAMESPACE, STATUS_KEY),
                (STATUS_NAMESPACE, VECTOR_STORAGE_KEY),
                (METRICS_NAMESPACE, METRICS_KEY),
                (STATUS_NAMESPACE, INDEX_PERSISTENCE_KEY),
            ],
            "no error yet, no board records"
        );
        let fields = |k: &str| {
            let mut f: Vec<String> = t
                .publications
                .iter()
                .find(|p| p.key == k)
                .unwrap()
                .value
                .as_object()
                .unwrap()
                .keys()
                .cloned()
                .collect();
            f.sort();
            f
        };
        assert_eq!(
            fields(VECTOR_STORAGE_KEY),
            [
                "compression",
                "compression_ratio",
                "size_bytes",
                "storage_format",
                "timestamp",
                "vectors_stored",
                "write_throughput_mbs"
            ]
        );
        assert_eq!(
            fields(METRICS_KEY),
            [
                "available_space_gb",
                "backup_age_hours",
                "compression_ratio",
                "disk_io_utilization",
                "read_iops",
                "timestamp",
                "total_size_gb",
                "usage_percentage",
                "write_iops"
            ]
        );
        // An error and a board record appear on the next tick.
        board.record_error("backup", "backup_create: destination unreachable");
        board.update_backup(|b| b.last_result = Some(crate::status::Outcome::Failed));
        let t = ticker.tick(sample(&FakeDisk::default(), 1), &board);
        let e = errors(&t);
        assert_eq!(e.len(), 1);
        assert_eq!(e[0]["operation"], "backup");
        let backup = t
            .publications
            .iter()
            .find(|p| p.key == "swarm/storage/backup")
            .expect("board records are published");
        assert_eq!(backup.value, serde_json::json!({"last_result": "failed"}));
    }
}
