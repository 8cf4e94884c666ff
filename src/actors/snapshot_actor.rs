//! The snapshot actor: create, list, verify, delete, prune and restore
//! snapshots. Blocking file and RocksDB work runs on `spawn_blocking`;
//! a restore quiesces the persistence actor, keeps the replaced state as an
//! undo snapshot, swaps the store directory atomically and reopens it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use serde_json::{json, Value};

use super::PersistenceHandle;
use crate::clock::{iso_ms, Clock, SystemClock};
use crate::config::Config;
use crate::engine::{Engine, EngineSlot};
use crate::error::{Error, Result};
use crate::ops::Op;
use crate::snapshot::{self, restore, retention, Kind, SnapshotStore};
use crate::status::StatusBoard;

/// One snapshot operation (an `Op` routed to [`Route::Snapshot`](crate::ops::Route)).
#[derive(Message)]
#[rtype(result = "Result<Value>")]
pub struct SnapshotCmd(pub Op);

/// Everything the blocking parts need, cheap to clone into a task.
#[derive(Clone)]
struct Ctx {
    store: Arc<SnapshotStore>,
    slot: Arc<EngineSlot>,
    config: Arc<Config>,
    board: Arc<StatusBoard>,
    persistence: PersistenceHandle,
    clock: Arc<dyn Clock>,
    /// Serialises the operations that change snapshots or the store
    /// (create, delete, prune, restore); list and verify run alongside.
    changes: Arc<tokio::sync::Mutex<()>>,
}

pub struct SnapshotActor {
    ctx: Ctx,
}

impl SnapshotActor {
    pub fn new(
        store: Arc<SnapshotStore>,
        slot: Arc<EngineSlot>,
        config: Arc<Config>,
        board: Arc<StatusBoard>,
        persistence: PersistenceHandle,
    ) -> Self {
        SnapshotActor {
            ctx: Ctx {
                store,
                slot,
                config,
                board,
                persistence,
                clock: Arc::new(SystemClock),
                changes: Arc::default(),
            },
        }
    }
}

impl Actor for SnapshotActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.ctx.board.set_state("snapshot", "running");
        let c = self.ctx.clone();
        // Publish the summary and pre-compute SST checksums so the first
        // snapshot is as fast as the next ones.
        ctx.spawn(
            async move {
                let c2 = c.clone();
                let warmed = blocking(move || {
                    let engine = c2.slot.get()?;
                    c2.store.warm_cache(&engine)
                })
                .await;
                match warmed {
                    Ok(n) => tracing::debug!(files = n, "SST checksums pre-computed"),
                    Err(e) => tracing::warn!(error = %e, "pre-computing SST checksums failed; the next snapshot reads them"),
                }
                publish_summary(&c, None).await;
            }
            .into_actor(self),
        );
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        self.ctx.board.set_state("snapshot", "stopped");
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::internal(format!("snapshot task failed: {e}")))?
}

/// The `swarm/storage/snapshots` record.
async fn publish_summary(c: &Ctx, last: Option<Value>) {
    let store = c.store.clone();
    let list = blocking(move || store.list(true)).await;
    let mut record = match list {
        Ok(list) => json!({
            "count": list.len(),
            "total_bytes": list.iter().map(|s| s.total_bytes).sum::<u64>(),
            "exclusive_bytes": list.iter().filter_map(|s| s.exclusive_bytes).sum::<u64>(),
            "newest": list.last().map(|s| json!({"name": s.name, "created_at": s.created_at,
                "latest_sequence": s.latest_sequence})),
            "newest_verified": list.iter().rev().find(|s| s.verified == Some(true)).map(|s| s.name.clone()),
        }),
        Err(e) => json!({"error": e.message}),
    };
    let previous = c.board.records().get("snapshots").cloned();
    let last = last.or_else(|| previous.and_then(|p| p.get("last_operation").cloned()));
    record["last_operation"] = last.unwrap_or(Value::Null);
    record["timestamp"] = json!(iso_ms(SystemClock.now_ms()));
    c.board.set_record("snapshots", record);
}

async fn run(c: Ctx, op: Op) -> Result<Value> {
    let method = op.method();
    let started = Instant::now();
    let changes = c.changes.clone();
    let _exclusive = match op {
        Op::SnapshotList(_) | Op::SnapshotVerify(_) => None,
        _ => Some(changes.lock().await),
    };
    let result = match op {
        Op::SnapshotCreate(p) => {
            let c2 = c.clone();
            blocking(move || {
                let now = c2.clock.now_ms();
                let name = p.name.unwrap_or_else(|| {
                    snapshot::default_name(if p.scheduled { "scheduled" } else { "snap" }, now)
                });
                let kind = if p.scheduled {
                    Kind::Scheduled
                } else {
                    Kind::Manual
                };
                let engine = c2.slot.get()?;
                let t = Instant::now();
                let m = c2.store.create(&engine, &name, kind, now)?;
                let create_ms = t.elapsed().as_secs_f64() * 1000.0;
                let verify = if p.verify {
                    Some(c2.store.verify(&name, &c2.config, c2.clock.now_ms())?)
                } else {
                    None
                };
                Ok(
                    json!({"name": m.name, "kind": m.kind, "created_at": m.created_at,
                    "latest_sequence": m.latest_sequence, "files": m.files.len(),
                    "total_bytes": m.total_bytes, "duration_ms": create_ms, "verify": verify}),
                )
            })
            .await
        }
        Op::SnapshotList(p) => {
            let store = c.store.clone();
            blocking(move || {
                let list = store.list(p.with_size)?;
                Ok(json!({"snapshots": list, "count": list.len()}))
            })
            .await
        }
        Op::SnapshotVerify(p) => {
            let c2 = c.clone();
            blocking(move || {
                let name = match p.name {
                    Some(n) => n,
                    None => c2
                        .store
                        .manifests()?
                        .last()
                        .map(|m| m.name.clone())
                        .ok_or_else(|| Error::not_found("there are no snapshots to verify"))?,
                };
                let report = c2.store.verify(&name, &c2.config, c2.clock.now_ms())?;
                Ok(json!(report))
            })
            .await
        }
        Op::SnapshotDelete(p) => {
            let store = c.store.clone();
            blocking(move || {
                let m = store.delete(&p.name, p.confirm)?;
                Ok(json!({"deleted": m.name, "freed_bytes_at_most": m.total_bytes}))
            })
            .await
        }
        Op::SnapshotPrune(p) => {
            let store = c.store.clone();
            blocking(move || prune(&store, &p.policy, p.kind, p.dry_run)).await
        }
        Op::SnapshotRestore(p) => restore_snapshot(&c, &p.name).await,
        other => Err(Error::internal(format!(
            "{} is not a snapshot operation",
            other.method()
        ))),
    };
    let last = json!({"operation": method, "ok": result.is_ok(),
        "error": result.as_ref().err().map(|e| e.message.clone()),
        "duration_ms": started.elapsed().as_secs_f64() * 1000.0,
        "at": iso_ms(SystemClock.now_ms())});
    if let Err(e) = &result {
        c.board.record_error("snapshot", &format!("{method}: {e}"));
    }
    if method != "snapshot_list" {
        publish_summary(&c, Some(last)).await;
    }
    result
}

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

/// Quiesce → undo snapshot → close → prepare → exchange → reopen → resume.
async fn restore_snapshot(c: &Ctx, name: &str) -> Result<Value> {
    let started = Instant::now();
    // Check the snapshot before touching anything.
    let (c2, n) = (c.clone(), name.to_string());
    let report = blocking(move || c2.store.verify(&n, &c2.config, c2.clock.now_ms())).await?;
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
    c.persistence
        .quiesce(Duration::from_secs(c.config.shutdown_timeout_secs))
        .await?;
    let (c2, n) = (c.clone(), name.to_string());
    let result = blocking(move || swap_in(&c2, &n)).await;
    c.persistence.resume();
    let undo = result?;
    Ok(json!({"restored": name, "undo_snapshot": undo,
        "duration_ms": started.elapsed().as_secs_f64() * 1000.0}))
}

/// Runs under the actor's `changes` lock with the persistence actor quiesced.
fn swap_in(c: &Ctx, name: &str) -> Result<String> {
    let m = c.store.manifest(name)?;
    let now = c.clock.now_ms();
    let undo = snapshot::default_name("undo", now);
    let engine = c.slot.get()?;
    engine.flush()?;
    c.store.create(&engine, &undo, Kind::Undo, now)?;
    restore::crash_point("restore:after-undo");
    drop(engine);
    c.slot
        .close(Duration::from_secs(10))
        .map_err(|e| e.context("restore abandoned, nothing changed"))?;
    restore::crash_point("restore:after-close");
    // From here the store is closed: whatever happens, reopen what is live.
    let files: Vec<String> = m.files.iter().map(|f| f.name.clone()).collect();
    let swapped =
        restore::prepare(&c.config.data_dir, &c.store.dir(name), &files).and_then(|tmp| {
            restore::crash_point("restore:after-prepare");
            // The restored store's history forks here (before the swap, so a
            // crash never leaves it live with the old id).
            crate::engine::fork_history(&tmp, &c.config)?;
            restore::swap(&c.config.data_dir)
        });
    match &swapped {
        Ok(()) => {
            restore::crash_point("restore:after-swap");
            c.store.forget_checksums();
        }
        Err(e) => {
            tracing::error!(error = %e, "restore failed before the swap; reopening the old store")
        }
    }
    // The replaced store (or a half-built new one) is redundant either way.
    if let Err(e) = restore::discard_replaced(&c.config.data_dir) {
        tracing::warn!(error = %e, "could not remove db.restore-tmp; it is removed at the next start");
    }
    reopen(c)?;
    swapped.map_err(|e| {
        e.context(format!(
            "restoring snapshot {name:?}; the previous state is live"
        ))
    })?;
    restore::crash_point("restore:after-reopen");
    Ok(undo)
}

fn reopen(c: &Ctx) -> Result<()> {
    match Engine::open(&c.config, Arc::new(SystemClock)) {
        Ok(engine) => {
            c.slot.put(engine);
            Ok(())
        }
        Err(e) => {
            let msg = format!(
                "the store at {} could not be reopened: {e}; restart the daemon",
                c.config.data_dir.display()
            );
            c.slot.mark_failed(&msg);
            c.board.set_state("persistence", "failed");
            Err(Error::internal(msg))
        }
    }
}

impl Handler<SnapshotCmd> for SnapshotActor {
    type Result = ResponseFuture<Result<Value>>;
    fn handle(&mut self, msg: SnapshotCmd, _: &mut Context<Self>) -> Self::Result {
        Box::pin(run(self.ctx.clone(), msg.0))
    }
}
