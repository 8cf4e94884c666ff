//! The maintenance jobs: one at a time, with progress (`maintenance_status`)
//! and the result kept as the `integrity` status record (published as
//! `swarm/storage/integrity` in `ruvector/storage`).

use std::sync::Arc;

use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use super::compression;
use super::integrity;
use super::params::{AnalyzeCompressionParams, CheckParams, CompressParams};
use crate::backup::progress::Progress;
use crate::clock::Clock;
use crate::config::{Algorithm, CompressionSpec};
use crate::engine::compression::family_of_type;
use crate::engine::{Engine, EngineSlot};
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
        let now_ms = self.clock.now_ms();
        let result = self
            .clone()
            .blocking(operation, move |engine, progress, cancelled| {
                integrity::check(engine, p.verify_integrity, progress, cancelled, now_ms)
            })
            .await;
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

    /// Run one job on a blocking thread with progress; the caller holds
    /// `busy`.
    async fn blocking<T: Send + 'static>(
        self: Arc<Self>,
        operation: &str,
        job: impl FnOnce(&Engine, &Progress, &dyn Fn() -> bool) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        self.progress.begin(operation);
        let s = self.clone();
        let name = operation.to_string();
        let result = tokio::task::spawn_blocking(move || {
            let engine = s.slot.get()?;
            let cancel = s.cancel.clone();
            job(&engine, &s.progress, &|| cancel.is_cancelled())
        })
        .await
        .unwrap_or_else(|e| Err(Error::internal(format!("{name} failed: {e}"))));
        self.progress.end();
        result
    }

    /// `compress`: set a family's compression and/or rewrite its files.
    pub async fn compress(self: Arc<Self>, p: CompressParams) -> Result<Value> {
        let cf = family_of_type(&p.data_type)?;
        let spec = match &p.algorithm {
            Some(a) => Some(CompressionSpec::new(
                Algorithm::parse(a)?,
                p.level,
                p.dictionary,
            )?),
            None if p.level.is_some() || p.dictionary => {
                return Err(Error::invalid(
                    "--level and --dictionary go with --algorithm (e.g. --algorithm zstd --level 9)",
                ))
            }
            None if !p.rewrite => {
                return Err(Error::invalid(
                    "nothing to do: give --algorithm to change the compression, --rewrite to                      apply it to the existing files, or both",
                ))
            }
            None => None,
        };
        let _busy = self.busy.lock().await;
        let engine = self.slot.get()?;
        let previous = engine.compression_of(cf).0;
        if let Some(spec) = spec {
            engine.set_compression(cf, spec)?;
        }
        let current = engine.compression_of(cf).0;
        let rewrite = if p.rewrite {
            let operation = format!("compress --type {} --rewrite", cf.name());
            let result = self
                .clone()
                .blocking(&operation, move |engine, progress, cancelled| {
                    compression::rewrite(engine, cf, progress, cancelled)
                })
                .await;
            if let Err(e) = &result {
                self.board
                    .record_error("compaction", &format!("{operation}: {e}"));
            }
            Some(result?)
        } else {
            None
        };
        Ok(json!({
            "type": cf.name(),
            "compression": current.to_string(),
            "previous": previous.to_string(),
            "rewrite": rewrite,
            "note": if p.rewrite { None } else {
                Some("new table files use it; the existing ones keep theirs until compacted (--rewrite)")
            },
        }))
    }

    /// `analyze-compression`.
    pub async fn analyze_compression(
        self: Arc<Self>,
        p: AnalyzeCompressionParams,
    ) -> Result<Value> {
        let family = p.data_type.as_deref().map(family_of_type).transpose()?;
        let sample_mb = p.sample_mb.unwrap_or(4);
        if !(1..=256).contains(&sample_mb) {
            return Err(Error::invalid(format!(
                "sample_mb = {sample_mb}: expected 1 to 256 (MiB per column family)"
            )));
        }
        let _busy = self.busy.lock().await;
        let collection = p.collection.clone();
        let mut report = self
            .clone()
            .blocking("analyze-compression", move |engine, progress, cancelled| {
                let scope = compression::Scope {
                    family,
                    collection: collection.as_deref(),
                    sample_bytes: sample_mb << 20,
                };
                compression::analyze(engine, &scope, progress, cancelled)
            })
            .await?;
        if !p.show_ratio {
            for f in &mut report.families {
                f.candidates.clear();
            }
        }
        Ok(json!(report))
    }

    /// `maintenance_status`.
    pub async fn status(self: Arc<Self>) -> Result<Value> {
        let (running, last) = self.progress.report();
        Ok(json!({"running": running, "last": last,
            "integrity": self.board.records().integrity}))
    }
}
