//! The snapshot workflows the snapshot actor runs: create, list, verify,
//! delete, prune and restore, each recorded in the `snapshots` status
//! record. A restore pauses the store (the slot's gate), keeps the replaced
//! state as an undo snapshot, swaps the store directory atomically and
//! reopens it. Blocking file and RocksDB work runs on `spawn_blocking`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::params::{CreateParams, DeleteParams, ListParams, PruneParams, VerifyParams};
use super::{restore, retention, Kind, SnapshotStore};
use crate::clock::{iso_ms, Clock};
use crate::config::Config;
use crate::engine::{Engine, EngineSlot};
use crate::error::{Error, Result};
use crate::fs::crash_point;
use crate::status::{
    LastOperation, NewestSnapshot, SnapshotList, SnapshotSummary, SnapshotsRecord, StatusBoard,
};

/// Everything the snapshot workflows use.
pub struct Service {
    store: Arc<SnapshotStore>,
    slot: Arc<EngineSlot>,
    config: Arc<Config>,
    board: Arc<StatusBoard>,
    clock: Arc<dyn Clock>,
    /// Serialises the operations that change snapshots or the store
    /// (create, delete, prune, restore); list and verify run alongside.
    changes: tokio::sync::Mutex<()>,
}

/// Run blocking work off the async reactor.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::internal(format!("blocking task failed: {e}")))?
}

impl Service {
    pub fn new(
        store: Arc<SnapshotStore>,
        slot: Arc<EngineSlot>,
        config: Arc<Config>,
        board: Arc<StatusBoard>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Service {
            store,
            slot,
            config,
            board,
            clock,
            changes: tokio::sync::Mutex::new(()),
        }
    }

    pub fn store(&self) -> &Arc<SnapshotStore> {
        &self.store
    }

    /// At start: pre-compute SST checksums (so the first snapshot is as
    /// fast as the next ones) and publish the summary.
    pub async fn warm_up(self: Arc<Self>) {
        let s = self.clone();
        let warmed = blocking(move || s.store.warm_cache(&*s.slot.get()?)).await;
        match warmed {
            Ok(n) => tracing::debug!(files = n, "SST checksums pre-computed"),
            Err(e) => {
                tracing::warn!(error = %e, "pre-computing SST checksums failed; the next snapshot reads them")
            }
        }
        self.publish_summary(None).await;
    }

    /// Run one operation: exclusive ones one at a time; record its outcome
    /// in the `snapshots` record (list is not recorded).
    async fn run<F>(
        self: &Arc<Self>,
        method: &'static str,
        exclusive: bool,
        work: F,
    ) -> Result<Value>
    where
        F: std::future::Future<Output = Result<Value>>,
    {
        let started = Instant::now();
        let _exclusive = if exclusive {
            Some(self.changes.lock().await)
        } else {
            None
        };
        let result = work.await;
        if let Err(e) = &result {
            self.board
                .record_error("snapshot", &format!("{method}: {e}"));
        }
        if method != "snapshot_list" {
            let last = LastOperation {
                operation: method.to_string(),
                ok: result.is_ok(),
                error: result.as_ref().err().map(|e| e.message.clone()),
                duration_ms: started.elapsed().as_secs_f64() * 1000.0,
                at: iso_ms(self.clock.now_ms()),
            };
            self.publish_summary(Some(last)).await;
        }
        result
    }

    pub async fn create(self: Arc<Self>, p: CreateParams) -> Result<Value> {
        let s = self.clone();
        let work = blocking(move || {
            let now = s.clock.now_ms();
            let name = p.name.unwrap_or_else(|| {
                super::default_name(if p.scheduled { "scheduled" } else { "snap" }, now)
            });
            let kind = if p.scheduled {
                Kind::Scheduled
            } else {
                Kind::Manual
            };
            let engine = s.slot.get()?;
            let t = Instant::now();
            let m = s.store.create(&engine, &name, kind, now)?;
            let create_ms = t.elapsed().as_secs_f64() * 1000.0;
            let verify = if p.verify {
                Some(s.store.verify(&name, &s.config, s.clock.now_ms())?)
            } else {
                None
            };
            Ok(
                json!({"name": m.name, "kind": m.kind, "created_at": m.created_at,
                "latest_sequence": m.latest_sequence, "files": m.files.len(),
                "total_bytes": m.total_bytes, "duration_ms": create_ms, "verify": verify}),
            )
        });
        self.run("snapshot_create", true, work).await
    }

    pub async fn list(self: Arc<Self>, p: ListParams) -> Result<Value> {
        let store = self.store.clone();
        let work = blocking(move || {
            let list = store.list(p.with_size)?;
            Ok(json!({"snapshots": list, "count": list.len()}))
        });
        self.run("snapshot_list", false, work).await
    }

    pub async fn verify(self: Arc<Self>, p: VerifyParams) -> Result<Value> {
        let s = self.clone();
        let work = blocking(move || {
            let name = match p.name {
                Some(n) => n,
                None => s
                    .store
                    .manifests()?
                    .last()
                    .map(|m| m.name.clone())
                    .ok_or_else(|| Error::not_found("there are no snapshots to verify"))?,
            };
            Ok(json!(s.store.verify(&name, &s.config, s.clock.now_ms())?))
        });
        self.run("snapshot_verify", false, work).await
    }

    pub async fn delete(self: Arc<Self>, p: DeleteParams) -> Result<Value> {
        let store = self.store.clone();
        let work = blocking(move || {
            let m = store.delete(&p.name, p.confirm)?;
            Ok(json!({"deleted": m.name, "freed_bytes_at_most": m.total_bytes}))
        });
        self.run("snapshot_delete", true, work).await
    }

    pub async fn prune(self: Arc<Self>, p: PruneParams) -> Result<Value> {
        let store = self.store.clone();
        let work = blocking(move || prune(&store, &p.policy, p.kind, p.dry_run));
        self.run("snapshot_prune", true, work).await
    }

    /// Check the snapshot, then quiesce → undo snapshot → close → prepare
    /// → exchange → reopen → resume.
    pub async fn restore(self: Arc<Self>, name: String) -> Result<Value> {
        let s = self.clone();
        let work = async move {
            let started = Instant::now();
            let (s2, n) = (s.clone(), name.clone());
            let report =
                blocking(move || s2.store.verify(&n, &s2.config, s2.clock.now_ms())).await?;
            if !report.ok {
                return Err(Error::corruption(format!(
                    "snapshot {name:?} failed verification, refusing to restore it: {}",
                    report
                        .bad_files
                        .iter()
                        .map(|b| format!("{}: {}", b.file, b.problem))
                        .collect::<Vec<_>>()
                        .join("; ")
                )));
            }
            let paused = s
                .slot
                .quiesce(Duration::from_secs(s.config.shutdown_timeout_secs))
                .await?;
            let (s2, n) = (s.clone(), name.clone());
            let undo = blocking(move || s2.swap_in(&n)).await;
            drop(paused);
            Ok(json!({"restored": name, "undo_snapshot": undo?,
                "duration_ms": started.elapsed().as_secs_f64() * 1000.0}))
        };
        self.run("snapshot_restore", true, work).await
    }

    /// Runs with the store quiesced, under the `changes` lock.
    fn swap_in(&self, name: &str) -> Result<String> {
        let m = self.store.manifest(name)?;
        let now = self.clock.now_ms();
        let undo = super::default_name("undo", now);
        let engine = self.slot.get()?;
        engine.flush()?;
        self.store.create(&engine, &undo, Kind::Undo, now)?;
        crash_point("restore:after-undo");
        drop(engine);
        self.slot
            .close(Duration::from_secs(10))
            .map_err(|e| e.context("restore abandoned, nothing changed"))?;
        crash_point("restore:after-close");
        // From here the store is closed: whatever happens, reopen what is live.
        let data_dir = &self.config.data_dir;
        let files: Vec<String> = m.files.iter().map(|f| f.name.clone()).collect();
        let swapped = restore::prepare(data_dir, &self.store.dir(name), &files).and_then(|tmp| {
            crash_point("restore:after-prepare");
            // The restored store's history forks here (before the swap,
            // so a crash never leaves it live with the old id).
            crate::engine::fork_history(&tmp, &self.config)?;
            restore::swap(data_dir)
        });
        match &swapped {
            Ok(()) => {
                crash_point("restore:after-swap");
                self.store.forget_checksums();
            }
            Err(e) => {
                tracing::error!(error = %e, "restore failed before the swap; reopening the old store")
            }
        }
        // The replaced store (or a half-built new one) is redundant either way.
        if let Err(e) = restore::discard_replaced(data_dir) {
            tracing::warn!(error = %e, "could not remove db.restore-tmp; it is removed at the next start");
        }
        self.reopen()?;
        swapped.map_err(|e| {
            e.context(format!(
                "restoring snapshot {name:?}; the previous state is live"
            ))
        })?;
        crash_point("restore:after-reopen");
        Ok(undo)
    }

    fn reopen(&self) -> Result<()> {
        match Engine::open(&self.config, self.clock.clone()) {
            Ok(engine) => {
                self.slot.put(engine);
                Ok(())
            }
            Err(e) => {
                let msg = format!(
                    "the store at {} could not be reopened: {e}; restart the daemon",
                    self.config.data_dir.display()
                );
                self.slot.mark_failed(&msg);
                self.board.set_state("persistence", "failed");
                Err(Error::internal(msg))
            }
        }
    }

    /// The `swarm/storage/snapshots` record (`last`: the operation that
    /// just ended; without one the previous record's is kept).
    async fn publish_summary(&self, last: Option<LastOperation>) {
        let store = self.store.clone();
        let list = blocking(move || store.list(true)).await;
        let list = match list {
            Ok(list) => SnapshotList::Listed(SnapshotSummary {
                count: list.len(),
                total_bytes: list.iter().map(|s| s.total_bytes).sum(),
                exclusive_bytes: list.iter().filter_map(|s| s.exclusive_bytes).sum(),
                newest: list.last().map(|s| NewestSnapshot {
                    name: s.name.clone(),
                    created_at: s.created_at.clone(),
                    latest_sequence: s.latest_sequence,
                }),
                newest_verified: list
                    .iter()
                    .rev()
                    .find(|s| s.verified == Some(true))
                    .map(|s| s.name.clone()),
            }),
            Err(e) => SnapshotList::Failed { error: e.message },
        };
        let timestamp = iso_ms(self.clock.now_ms());
        self.board.update_records(|r| {
            let last = last.or_else(|| r.snapshots.take().and_then(|p| p.last_operation));
            r.snapshots = Some(SnapshotsRecord {
                list,
                last_operation: last,
                timestamp,
            });
        });
    }
}

/// Plan, then (unless a dry run) delete what the plan does not keep.
fn prune(
    store: &SnapshotStore,
    policy: &retention::Policy,
    kind: Option<Kind>,
    dry_run: bool,
) -> Result<Value> {
    let _g = if dry_run {
        None
    } else {
        Some(store.mutate.lock().unwrap_or_else(|p| p.into_inner()))
    };
    let candidates: Vec<retention::Candidate> = store
        .manifests()?
        .into_iter()
        .filter(|m| kind.is_none_or(|k| k == m.kind))
        .map(|m| retention::Candidate {
            verified: store.verify_record(&m.name).map(|v| v.ok).unwrap_or(false),
            created_at_ms: m.created_at_ms,
            name: m.name,
        })
        .collect();
    let plan = retention::plan(policy, &candidates)?;
    let mut deleted = Vec::new();
    if !dry_run {
        for d in plan.iter().filter(|d| !d.keep) {
            store.delete_locked(&d.name)?;
            deleted.push(d.name.clone());
        }
    }
    Ok(json!({"dry_run": dry_run, "kind": kind, "plan": plan,
        "keep": plan.iter().filter(|d| d.keep).count(),
        "delete": plan.iter().filter(|d| !d.keep).count(),
        "deleted": deleted}))
}
