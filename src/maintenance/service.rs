//! The maintenance jobs: one at a time, with progress (`maintenance_status`)
//! and the result kept as the `integrity` status record (published as
//! `swarm/storage/integrity` in `ruvector/storage`).

use std::sync::Arc;

use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use super::compaction;
use super::compression;
use super::integrity;
use super::params::{AnalyzeCompressionParams, CheckParams, CompactParams, CompressParams};
use super::reencode;
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
    /// The running job's own token (a child of `cancel`), for
    /// `maintenance_cancel`.
    job: std::sync::Mutex<Option<CancellationToken>>,
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
            job: Default::default(),
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

    /// A short call on the live store, on a blocking thread.
    async fn on_store<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Engine) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let slot = self.slot.clone();
        tokio::task::spawn_blocking(move || f(&*slot.get()?))
            .await
            .unwrap_or_else(|e| Err(Error::internal(format!("a store call failed: {e}"))))
    }

    /// Run one job on a blocking thread with progress; the caller holds
    /// `busy`.
    async fn blocking<T: Send + 'static>(
        self: Arc<Self>,
        operation: &str,
        job: impl FnOnce(&Engine, &Progress, &dyn Fn() -> bool) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        self.progress.begin(operation);
        let token = self.cancel.child_token();
        *self.job.lock().unwrap_or_else(|p| p.into_inner()) = Some(token.clone());
        let s = self.clone();
        let name = operation.to_string();
        let result = tokio::task::spawn_blocking(move || {
            let engine = s.slot.get()?;
            job(&engine, &s.progress, &|| token.is_cancelled())
        })
        .await
        .unwrap_or_else(|e| Err(Error::internal(format!("{name} failed: {e}"))));
        *self.job.lock().unwrap_or_else(|p| p.into_inner()) = None;
        self.progress.end();
        result
    }

    /// `maintenance_cancel`.
    pub async fn cancel_job(self: Arc<Self>) -> Result<Value> {
        let token = self.job.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let (running, _) = self.progress.report();
        if let Some(t) = token {
            t.cancel();
        }
        Ok(json!({"cancelled": running.map(|r| r.operation)}))
    }

    /// Re-encodes left unfinished (the daemon stopped in one): run them in
    /// the background, one after another.
    pub async fn resume_reencodes(self: Arc<Self>) -> Result<()> {
        let pending = self.on_store(|e| e.reencodes_pending()).await?;
        for info in pending {
            tracing::info!(collection = %info.name, "resuming the re-encode of a collection");
            if let Err(e) = self.clone().run_reencode(info.name.clone()).await {
                tracing::warn!(collection = %info.name, error = %e, "the re-encode did not finish");
            }
        }
        Ok(())
    }

    async fn run_reencode(self: Arc<Self>, collection: String) -> Result<Value> {
        let _busy = self.busy.lock().await;
        let operation = format!("re-encode {collection}");
        let result = self
            .clone()
            .blocking(&operation, move |engine, progress, cancelled| {
                reencode::run(engine, &collection, progress, cancelled)
            })
            .await;
        match &result {
            Err(e) if e.kind != crate::error::ErrorKind::Cancelled => self
                .board
                .record_error("compaction", &format!("{operation}: {e}")),
            _ => {}
        }
        Ok(json!(result?))
    }

    /// `compress --collection C --quantization Q | --recalibrate`: start
    /// (or resume) the re-encode; with `wait`, until it ends.
    async fn reencode(self: Arc<Self>, p: CompressParams) -> Result<Value> {
        let Some(collection) = p.collection.clone() else {
            return Err(Error::invalid(
                "quantization and recalibrate apply to a collection: give --collection",
            ));
        };
        if p.data_type
            .as_deref()
            .is_some_and(|t| t != "vectors" && t != "vector")
        {
            return Err(Error::invalid(
                "quantization applies to vectors: --type vectors (or leave --type out)",
            ));
        }
        if p.algorithm.is_some() || p.level.is_some() || p.dictionary || p.rewrite || p.reset {
            return Err(Error::invalid(
                "block compression (--algorithm, --level, --dictionary, --rewrite) applies to a whole data type; run it as its own command, without --collection",
            ));
        }
        if p.quantization.is_none() && !p.recalibrate {
            return Err(Error::invalid(
                "give --quantization (none, f16, int8, int6, int4, binary) or --recalibrate",
            ));
        }
        let (quantization, recalibrate) = (p.quantization, p.recalibrate);
        let name = collection.clone();
        let started = self
            .on_store(move |engine| {
                let info = engine.collection_get(&name)?.ok_or_else(|| {
                    Error::not_found(format!("collection {name:?} does not exist"))
                })?;
                let target = match quantization {
                    Some(q) if recalibrate && q != info.quantization => {
                        return Err(Error::invalid(format!(
                            "recalibrate keeps the collection's format ({}); to change it to {q}, give --quantization alone",
                            info.quantization
                        )))
                    }
                    Some(q) => q,
                    None => info.quantization,
                };
                engine.reencode_start(&name, target, recalibrate)
            })
            .await?;
        let job = tokio::task::spawn_local(self.clone().run_reencode(collection.clone()));
        if p.wait {
            return job
                .await
                .map_err(|e| Error::internal(format!("the re-encode: {e}")))?;
        }
        Ok(json!({
            "collection": collection,
            "from": started.reencode.as_ref().map(|r| r.from),
            "to": started.quantization,
            "job": "started",
            "note": "the vectors are re-encoded in the background (maintenance_status shows progress, maintenance_cancel pauses it); each stays readable throughout",
        }))
    }

    /// `compact --full | --incremental [--threshold T] [--dry-run]`.
    pub async fn compact(self: Arc<Self>, p: CompactParams) -> Result<Value> {
        let threshold = match (p.full, p.incremental) {
            (true, true) => return Err(Error::invalid("give --full or --incremental, not both")),
            (true, false) if p.threshold.is_some() => {
                return Err(Error::invalid(
                    "--threshold goes with --incremental (a full compaction takes every family)",
                ))
            }
            (true, false) => None,
            (false, _) if p.incremental || p.dry_run || p.threshold.is_some() => {
                let t = p.threshold.unwrap_or(compaction::DEFAULT_THRESHOLD);
                if !(t > 0.0 && t < 1.0) {
                    return Err(Error::invalid(format!(
                        "--threshold {t} is out of range: a garbage ratio between 0 and 1, e.g. 0.3"
                    )));
                }
                Some(t)
            }
            (false, _) => {
                return Err(Error::invalid(
                    "give --full (every column family) or --incremental [--threshold 0.3] \
                     (only those with more garbage); --dry-run shows the plan",
                ))
            }
        };
        let _busy = self.busy.lock().await;
        let operation = match threshold {
            None => "compact --full".to_string(),
            Some(t) => format!("compact --incremental --threshold {t}"),
        };
        let dry_run = p.dry_run;
        let now_ms = self.clock.now_ms();
        self.board
            .update_records(|r| r.compaction.get_or_insert_with(Default::default).running = true);
        let result = self
            .clone()
            .blocking(&operation, move |engine, progress, cancelled| {
                compaction::run(engine, threshold, dry_run, progress, cancelled, now_ms)
            })
            .await;
        let done = result.as_ref().ok().filter(|r| !r.dry_run).cloned();
        self.board.update_records(|r| {
            let record = r.compaction.get_or_insert_with(Default::default);
            record.running = false;
            if done.is_some() {
                record.last = done;
            }
        });
        if let Err(e) = &result {
            self.board
                .record_error("compaction", &format!("{operation}: {e}"));
        }
        Ok(json!(result?))
    }

    /// `compress`: set a family's compression and/or rewrite its files; or
    /// with a collection, change its quantization.
    pub async fn compress(self: Arc<Self>, p: CompressParams) -> Result<Value> {
        if p.collection.is_some() || p.quantization.is_some() || p.recalibrate {
            return self.reencode(p).await;
        }
        let Some(data_type) = p.data_type.as_deref() else {
            return Err(Error::invalid(
                "give --type (vectors, originals, metadata, kv, memory, indexes, sys), or --collection with --quantization",
            ));
        };
        let cf = family_of_type(data_type)?;
        if p.reset && (p.algorithm.is_some() || p.level.is_some() || p.dictionary) {
            return Err(Error::invalid(
                "reset goes back to the configured compression: give it without --algorithm, \
                 --level or --dictionary",
            ));
        }
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
            None if !p.rewrite && !p.reset => {
                return Err(Error::invalid(
                    "nothing to do: give --algorithm to change the compression, --rewrite to apply it to the existing files, or both; --reset goes back to the configured one",
                ))
            }
            None => None,
        };
        let _busy = self.busy.lock().await;
        let reset = p.reset;
        // SetOptions and a durable write: off the reactor.
        let (previous, current) = self
            .on_store(move |engine| {
                let previous = engine.compression_of(cf).0;
                if let Some(spec) = spec {
                    engine.set_compression(cf, spec)?;
                }
                if reset {
                    engine.reset_compression(cf)?;
                }
                Ok((previous, engine.compression_of(cf).0))
            })
            .await?;
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
        if p.collection.is_some() && family.is_some_and(|f| f != crate::engine::Cf::Vectors) {
            return Err(Error::invalid(
                "a collection's candidates are quantization levels of the vectors family: \
                 give --type vectors (or leave --type out) with --collection",
            ));
        }
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
