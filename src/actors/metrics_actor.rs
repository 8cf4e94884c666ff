//! The metrics actor: every `status-interval-secs` it asks the persistence
//! actor for storage figures, turns counters into rates (write/read IOPS,
//! MB/s, disk I/O utilisation), raises the 80% disk alert, and publishes the
//! daemon's records into its own memory bus (`ruvector/storage`,
//! `ruvector/metrics`, `ruvector/errors`) and through it to the external
//! bus. The Prometheus exposition it shares figures with is
//! [`crate::metrics`]. It does no storage work itself.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use serde_json::json;

use super::PersistenceHandle;
use crate::metrics::records::*;
use crate::status::StatusBoard;

/// Counters at the previous tick, for rates.
#[derive(Debug, Clone)]
struct Last {
    at: Instant,
    write_bytes: u64,
    writes: u64,
    reads: u64,
    disk_io: Option<crate::metrics::DiskIo>,
}

pub struct MetricsActor {
    persistence: PersistenceHandle,
    board: Arc<StatusBoard>,
    every: Duration,
    last: Option<Last>,
    /// Sequence of the last error published to `ruvector/errors`.
    published_error: u64,
    disk_alert: bool,
}

impl MetricsActor {
    pub fn new(persistence: PersistenceHandle, board: Arc<StatusBoard>, every: Duration) -> Self {
        MetricsActor {
            persistence,
            board,
            every,
            last: None,
            published_error: 0,
            disk_alert: false,
        }
    }

    fn tick(&mut self, ctx: &mut Context<Self>) {
        let persistence = self.persistence.clone();
        let board = self.board.clone();
        let fut = async move {
            let record = persistence.collect_storage().await;
            (record, persistence, board)
        };
        ctx.spawn(
            fut.into_actor(self)
                .map(|(record, persistence, board), act, ctx| {
                    let record = match record {
                        Ok(r) => r,
                        // Paused for a restore: skip this tick.
                        Err(e) if e.kind == crate::error::ErrorKind::Paused => return,
                        Err(e) => {
                            board.record_error("metrics", &e.message);
                            return;
                        }
                    };
                    let now = Instant::now();
                    let (mbs, write_iops, read_iops, io_util) = match &act.last {
                        Some(l) => {
                            let secs = now.duration_since(l.at).as_secs_f64().max(1e-3);
                            (
                                record.write_bytes_total.saturating_sub(l.write_bytes) as f64
                                    / secs
                                    / 1e6,
                                record.writes_total.saturating_sub(l.writes) as f64 / secs,
                                record.reads_total.saturating_sub(l.reads) as f64 / secs,
                                match (&l.disk_io, &record.disk_io) {
                                    (Some(a), Some(b)) => {
                                        Some(crate::metrics::io_utilisation(a, b, secs))
                                    }
                                    _ => None,
                                },
                            )
                        }
                        None => (0.0, 0.0, 0.0, None),
                    };
                    act.last = Some(Last {
                        at: now,
                        write_bytes: record.write_bytes_total,
                        writes: record.writes_total,
                        reads: record.reads_total,
                        disk_io: record.disk_io.clone(),
                    });
                    let io_util = io_util.map(|u| (u * 1000.0).round() / 1000.0);
                    if let (Some(u), Some(io)) = (io_util, &record.disk_io) {
                        board.set_record(
                            "disk_io",
                            json!({"device": io.device, "utilisation": u,
                                   "interval_secs": act.every.as_secs_f64()}),
                        );
                    }
                    if let Some(x) = persistence.external() {
                        board.set_record("external_bus", x.status());
                    }
                    let now_ms = chrono::Utc::now().timestamp_millis();
                    let vector_storage = json!({
                        "vectors_stored": record.vectors_stored,
                        "storage_format": record.storage_format,
                        "compression": record.compression,
                        "size_bytes": record.size_bytes,
                        "compression_ratio": record.compression_ratio,
                        "write_throughput_mbs": (mbs * 1000.0).round() / 1000.0,
                        "timestamp": crate::clock::iso_ms(now_ms),
                    });
                    let (used, avail) = record.disk.unwrap_or((0, 0));
                    let usage = if used + avail > 0 {
                        used as f64 / (used + avail) as f64
                    } else {
                        0.0
                    };
                    let gb = |b: u64| (b as f64 / 1e9 * 1000.0).round() / 1000.0;
                    let backup_age_hours: Option<f64> = board
                        .records()
                        .get("backup")
                        .and_then(|b| b["last_backup_at_ms"].as_i64())
                        .map(|at| ((now_ms - at).max(0) as f64 / 36_000.0).round() / 100.0);
                    let metrics = json!({
                        "total_size_gb": gb(record.store_bytes),
                        "available_space_gb": gb(avail),
                        "usage_percentage": (usage * 1000.0).round() / 10.0,
                        "write_iops": write_iops.round(),
                        "read_iops": read_iops.round(),
                        "compression_ratio": record.compression_ratio,
                        "backup_age_hours": backup_age_hours,
                        "disk_io_utilization": io_util,
                        "timestamp": now_ms,
                    });
                    let records_now = board.records();
                    let cut = |r: Option<&serde_json::Value>, at: &str, seq: &str| {
                        let r = r?;
                        Some((r[at].as_str()?.to_string(), r[seq].as_u64()?))
                    };
                    let snap = cut(
                        records_now.get("snapshots").map(|s| &s["newest"]),
                        "created_at",
                        "latest_sequence",
                    );
                    let backup = cut(
                        records_now.get("backup"),
                        "last_backup_at",
                        "last_backup_sequence",
                    );
                    let index_persistence = index_persistence_record(
                        &record.indexes,
                        snap.as_ref().map(|(at, sequence)| Cut {
                            at,
                            sequence: *sequence,
                        }),
                        backup.as_ref().map(|(at, sequence)| Cut {
                            at,
                            sequence: *sequence,
                        }),
                    );
                    let alert = usage >= crate::metrics::DISK_ALERT_RATIO;
                    if alert && !act.disk_alert {
                        let msg = format!("disk usage {:.1}% is at or above 80%", usage * 100.0);
                        tracing::warn!(usage_percentage = usage * 100.0, "{msg}");
                        board.record_error("disk", &msg);
                    }
                    act.disk_alert = alert;
                    let error = board.latest_error().filter(|e| e.seq > act.published_error);
                    if let Some(e) = &error {
                        act.published_error = e.seq;
                    }
                    let status = board.record();
                    let board2 = board.clone();
                    ctx.spawn(
                        async move {
                            let mut records = vec![
                                (STATUS_NAMESPACE, STATUS_KEY.to_string(), status),
                                (
                                    STATUS_NAMESPACE,
                                    VECTOR_STORAGE_KEY.to_string(),
                                    vector_storage,
                                ),
                                (METRICS_NAMESPACE, METRICS_KEY.to_string(), metrics),
                                (
                                    STATUS_NAMESPACE,
                                    INDEX_PERSISTENCE_KEY.to_string(),
                                    index_persistence,
                                ),
                            ];
                            if let Some(e) = error {
                                records.push((
                                    ERRORS_NAMESPACE,
                                    ERRORS_KEY.to_string(),
                                    json!({
                                    "error": e.message, "operation": e.actor,
                                    "recovery_action": recovery_action(&e.actor),
                                    "timestamp": e.at_ms}),
                                ));
                            }
                            for (name, value) in board2.records() {
                                records.push((
                                    STATUS_NAMESPACE,
                                    format!("swarm/storage/{name}"),
                                    value,
                                ));
                            }
                            for (ns, key, value) in records {
                                if let Err(e) = persistence.publish(ns, &key, value).await {
                                    board2
                                        .record_error("metrics", &format!("publishing {key}: {e}"));
                                }
                            }
                        }
                        .into_actor(act),
                    );
                }),
        );
    }
}

impl Actor for MetricsActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.board.set_state("metrics", "running");
        self.tick(ctx);
        ctx.run_interval(self.every, |act, ctx| act.tick(ctx));
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        self.board.set_state("metrics", "stopped");
    }
}

impl Supervised for MetricsActor {
    fn restarting(&mut self, _: &mut Context<Self>) {
        self.board.record_restart("metrics");
    }
}
