//! The maintenance jobs: one at a time, with progress (`maintenance_status`)
//! and the result kept as the `integrity` status record (published as
//! `swarm/storage/integrity` in `ruvector/storage`).

use std::sync::Arc;

use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use super::integrity;
use super::params::CheckParams;
use crate::backup::progress::Progress;
use crate::clock::Clock;
use crate::engine::EngineSlot;
use crate::error::{Error, Result};
use crate::status::StatusBoard;

pub struct Service {
    slot: Arc<EngineSlot>,
    board: Arc<StatusBoard>,
    clock: Arc<dyn Clock>,
    progress: Arc<Progress>,
    /// One job at a time.
    busy: tokio::sync::Mutex<()>,
    /// Cancelled at shutdown; long jobs poll it.
    cancel: CancellationToken,
}

impl Service {
    pub fn new(
        slot: Arc<EngineSlot>,
        board: Arc<StatusBoard>,
        clock: Arc<dyn Clock>,
        cancel: CancellationToken,
    ) -> Self {
        Service {
            slot,
            board,
            clock,
            progress: Arc::default(),
            busy: tokio::sync::Mutex::new(()),
            cancel,
        }
    }

    /// `check [--verify-integrity]`.
    pub async fn check(self: Arc<Self>, p: CheckParams) -> Result<Value> {
        let _busy = self.busy.lock().await;
        let operation = if p.verify_integrity {
            "check --verify-integrity"
        } else {
            "check"
        };
        self.progress.begin(operation);
        let s = self.clone();
        let result = tokio::task::spawn_blocking(move || {
            let engine = s.slot.get()?;
            let cancel = s.cancel.clone();
            integrity::check(
                &engine,
                p.verify_integrity,
                &s.progress,
                &|| cancel.is_cancelled(),
                s.clock.now_ms(),
            )
        })
        .await
        .unwrap_or_else(|e| Err(Error::internal(format!("the integrity check failed: {e}"))));
        self.progress.end();
        match &result {
            Ok(report) => {
                // The record keeps the summary; the problems are in the result.
                let mut record = report.clone();
                record.problems.truncate(10);
                self.board.update_records(|r| r.integrity = Some(record));
                if !report.ok {
                    self.board.record_error(
                        "compaction",
                        &format!(
                            "{operation} found {} problem(s), e.g. {}",
                            report.problems_total,
                            report
                                .problems
                                .first()
                                .map(|p| format!("{} {:?}: {}", p.column_family, p.key, p.problem))
                                .unwrap_or_default()
                        ),
                    );
                }
            }
            Err(e) => self
                .board
                .record_error("compaction", &format!("{operation}: {e}")),
        }
        Ok(json!(result?))
    }

    /// `maintenance_status`.
    pub async fn status(self: Arc<Self>) -> Result<Value> {
        let (running, last) = self.progress.report();
        Ok(json!({"running": running, "last": last,
            "integrity": self.board.records().integrity}))
    }
}
