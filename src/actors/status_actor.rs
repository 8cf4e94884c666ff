//! The status actor: every `status-interval-secs` it asks the persistence
//! actor for storage figures and publishes the daemon's records into its own
//! memory bus, namespace `ruvector/storage`. It does no storage work itself.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use serde::Serialize;
use serde_json::json;

use super::PersistenceHandle;
use crate::engine::{Cf, Engine};
use crate::status::StatusBoard;

pub const STATUS_NAMESPACE: &str = "ruvector/storage";
pub const STATUS_KEY: &str = "swarm/storage/status";
pub const VECTOR_STORAGE_KEY: &str = "swarm/storage/vector_storage";

/// Figures behind `swarm/storage/vector_storage`.
#[derive(Debug, Clone, Serialize, Default)]
pub struct VectorStorageRecord {
    pub vectors_stored: u64,
    pub storage_format: String,
    pub compression: String,
    pub size_bytes: u64,
    pub compression_ratio: f64,
    /// Bytes written to the store since open (for throughput deltas).
    #[serde(skip)]
    pub write_bytes_total: u64,
}

/// Parse `rocksdb.aggregated-table-properties` (`name=value; …`).
fn table_prop(text: &str, name: &str) -> u64 {
    text.split(';')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| k.trim() == name)
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0)
}

/// Read the figures (blocking RocksDB property calls).
pub fn collect_storage(engine: &Engine) -> VectorStorageRecord {
    let stats = engine.stats();
    let mut raw = 0u64;
    let mut data = 0u64;
    for cf in [Cf::Vectors, Cf::Metadata] {
        if let Ok(Some(text)) = engine
            .db()
            .property_value_cf(engine.cf(cf), "rocksdb.aggregated-table-properties")
        {
            raw += table_prop(&text, "raw key size") + table_prop(&text, "raw value size");
            data += table_prop(&text, "data block size");
        }
    }
    let cf_bytes = |name: &str| {
        stats
            .column_families
            .iter()
            .filter(|c| c.name == name)
            .map(|c| c.sst_bytes + c.memtable_bytes)
            .sum::<u64>()
    };
    let vectors = stats
        .column_families
        .iter()
        .find(|c| c.name == "vectors")
        .map(|c| c.estimate_num_keys)
        .unwrap_or(0);
    VectorStorageRecord {
        vectors_stored: vectors,
        storage_format: "float32".into(),
        compression: stats.compression.clone(),
        size_bytes: cf_bytes("vectors") + cf_bytes("metadata"),
        compression_ratio: if data > 0 {
            (raw as f64 / data as f64 * 100.0).round() / 100.0
        } else {
            1.0
        },
        write_bytes_total: stats.write_bytes,
    }
}

pub struct StatusActor {
    persistence: PersistenceHandle,
    board: Arc<StatusBoard>,
    every: Duration,
    last: Option<(Instant, u64)>,
}

impl StatusActor {
    pub fn new(persistence: PersistenceHandle, board: Arc<StatusBoard>, every: Duration) -> Self {
        StatusActor {
            persistence,
            board,
            every,
            last: None,
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
                        Err(e) => {
                            board.record_error("status", &e.message);
                            return;
                        }
                    };
                    let now = Instant::now();
                    let mbs = match act.last {
                        Some((t, bytes)) => {
                            let secs = now.duration_since(t).as_secs_f64().max(1e-3);
                            record.write_bytes_total.saturating_sub(bytes) as f64 / secs / 1e6
                        }
                        None => 0.0,
                    };
                    act.last = Some((now, record.write_bytes_total));
                    let vector_storage = json!({
                        "vectors_stored": record.vectors_stored,
                        "storage_format": record.storage_format,
                        "compression": record.compression,
                        "size_bytes": record.size_bytes,
                        "compression_ratio": record.compression_ratio,
                        "write_throughput_mbs": (mbs * 1000.0).round() / 1000.0,
                        "timestamp": crate::clock::iso_ms(chrono::Utc::now().timestamp_millis()),
                    });
                    let status = board.record();
                    let board2 = board.clone();
                    ctx.spawn(
                        async move {
                            let mut records = vec![
                                (STATUS_KEY.to_string(), status),
                                (VECTOR_STORAGE_KEY.to_string(), vector_storage),
                            ];
                            for (name, value) in board2.records() {
                                records.push((format!("swarm/storage/{name}"), value));
                            }
                            for (key, value) in records {
                                if let Err(e) =
                                    persistence.publish(STATUS_NAMESPACE, &key, value).await
                                {
                                    board2
                                        .record_error("status", &format!("publishing {key}: {e}"));
                                }
                            }
                        }
                        .into_actor(act),
                    );
                }),
        );
    }
}

impl Actor for StatusActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.board.set_state("status", "running");
        self.tick(ctx);
        ctx.run_interval(self.every, |act, ctx| act.tick(ctx));
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        self.board.set_state("status", "stopped");
    }
}

impl Supervised for StatusActor {
    fn restarting(&mut self, _: &mut Context<Self>) {
        self.board.record_restart("status");
    }
}

#[cfg(test)]
mod tests {
    use super::table_prop;

    #[test]
    fn parses_aggregated_table_properties() {
        let t = "# data blocks=3; # entries=10; raw key size=120; raw value size=4000; data block size=2100; index block size (user-key? 1, delta-value? 1)=50";
        assert_eq!(table_prop(t, "raw key size"), 120);
        assert_eq!(table_prop(t, "raw value size"), 4000);
        assert_eq!(table_prop(t, "data block size"), 2100);
        assert_eq!(table_prop(t, "missing"), 0);
    }
}
