//! The scheduler actor: turns the cron jobs of [`crate::schedule`] into
//! messages to the actors that do the work. It does no storage work itself,
//! never starts a job that is still running, and records each job's last
//! run, next run and last result. `Reload` (sent on SIGHUP) re-reads the
//! file; an invalid file is refused and the running schedule kept.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use serde_json::{json, Value};

use super::{PersistenceHandle, SnapshotActor, SnapshotCmd};
use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::ops::{
    Op, SnapshotCreateParams, SnapshotPruneParams, SnapshotVerifyParams, WalCheckpointParams,
};
use crate::schedule::{self, Action, Scheduler};
use crate::status::StatusBoard;

/// Where the jobs come from.
#[derive(Debug, Clone)]
pub enum ScheduleSource {
    /// The copy of `schedules/default.toml` compiled into the binary.
    Builtin,
    File(PathBuf),
}

impl ScheduleSource {
    pub fn load(&self) -> Result<Vec<schedule::JobSpec>> {
        match self {
            ScheduleSource::Builtin => schedule::parse(
                "schedules/default.toml (built in)",
                schedule::DEFAULT_SCHEDULE,
            ),
            ScheduleSource::File(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    Error::invalid(format!("cannot read schedule file {}: {e}", path.display()))
                })?;
                schedule::parse(&path.display().to_string(), &text)
            }
        }
    }
}

pub struct SchedulerActor {
    sched: Scheduler,
    source: ScheduleSource,
    clock: Arc<dyn Clock>,
    persistence: PersistenceHandle,
    snapshots: Addr<SnapshotActor>,
    backups: Addr<super::BackupActor>,
    board: Arc<StatusBoard>,
    timer: Option<SpawnHandle>,
}

impl SchedulerActor {
    pub fn new(
        specs: Vec<schedule::JobSpec>,
        source: ScheduleSource,
        clock: Arc<dyn Clock>,
        persistence: PersistenceHandle,
        snapshots: Addr<SnapshotActor>,
        backups: Addr<super::BackupActor>,
        board: Arc<StatusBoard>,
    ) -> Self {
        SchedulerActor {
            sched: Scheduler::new(specs, clock.now_ms()),
            source,
            clock,
            persistence,
            snapshots,
            backups,
            board,
            timer: None,
        }
    }

    fn arm(&mut self, ctx: &mut Context<Self>) {
        if let Some(t) = self.timer.take() {
            ctx.cancel_future(t);
        }
        if let Some(at) = self.sched.next_wakeup() {
            let delay = (at - self.clock.now_ms()).max(0) as u64;
            self.timer =
                Some(ctx.run_later(Duration::from_millis(delay), |act, ctx| act.fire(ctx)));
        }
    }

    fn fire(&mut self, ctx: &mut Context<Self>) {
        let now = self.clock.now_ms();
        for i in self.sched.due(now) {
            let job = &self.sched.jobs[i].spec;
            let name = job.name.clone();
            let op = match &job.action {
                Action::SnapshotCreate { prefix, verify } => {
                    Op::SnapshotCreate(SnapshotCreateParams {
                        name: Some(crate::snapshot::default_name(prefix, now)),
                        verify: *verify,
                        scheduled: true,
                    })
                }
                Action::SnapshotVerify { name } => {
                    Op::SnapshotVerify(SnapshotVerifyParams { name: name.clone() })
                }
                Action::SnapshotPrune { policy, kind } => Op::SnapshotPrune(SnapshotPruneParams {
                    dry_run: false,
                    kind: *kind,
                    policy: policy.clone(),
                }),
                Action::WalCheckpoint => Op::WalCheckpoint(WalCheckpointParams { force: false }),
                Action::BackupCreate { full } => Op::BackupCreate(crate::ops::BackupCreateParams {
                    full: *full,
                    ..Default::default()
                }),
                Action::BackupPrune { policy } => Op::BackupPrune(crate::ops::BackupPruneParams {
                    location: None,
                    dry_run: false,
                    policy: policy.clone(),
                }),
                Action::BackupDrill => Op::BackupDrill(crate::ops::NoParams {}),
            };
            tracing::info!(job = %name, action = job.action.name(), "scheduled job starting");
            let (persistence, snapshots) = (self.persistence.clone(), self.snapshots.clone());
            let backups = self.backups.clone();
            let fut = async move {
                match op.route() {
                    crate::ops::Route::Backup => backups
                        .send(super::BackupCmd(op))
                        .await
                        .map_err(|e| Error::unavailable(format!("backup actor: {e}")))?,
                    crate::ops::Route::Snapshot => snapshots
                        .send(SnapshotCmd(op))
                        .await
                        .map_err(|e| Error::unavailable(format!("snapshot actor: {e}")))?,
                    _ => persistence.call(op).await,
                }
            };
            ctx.spawn(fut.into_actor(self).map(move |res: Result<Value>, act, _| {
                let now = act.clock.now_ms();
                let res = match res {
                    Ok(v) => Ok(summary(&v)),
                    Err(e) => {
                        act.board
                            .record_error("scheduler", &format!("job {name}: {e}"));
                        tracing::error!(job = %name, error = %e, "scheduled job failed");
                        Err(e.message)
                    }
                };
                act.sched.finish(&name, res, now);
            }));
        }
        self.arm(ctx);
    }
}

fn summary(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 300 {
        format!(
            "{}…",
            &s[..s.char_indices().nth(300).map(|(i, _)| i).unwrap_or(s.len())]
        )
    } else {
        s
    }
}

impl Actor for SchedulerActor {
    type Context = Context<Self>;
    fn started(&mut self, ctx: &mut Context<Self>) {
        self.board.set_state("scheduler", "running");
        self.arm(ctx);
    }
    fn stopped(&mut self, _: &mut Context<Self>) {
        self.board.set_state("scheduler", "stopped");
    }
}

/// `schedule list`.
#[derive(Message)]
#[rtype(result = "Value")]
pub struct ListJobs;

impl Handler<ListJobs> for SchedulerActor {
    type Result = MessageResult<ListJobs>;
    fn handle(&mut self, _: ListJobs, _: &mut Context<Self>) -> Self::Result {
        let mut v = self.sched.list();
        v["source"] = json!(match &self.source {
            ScheduleSource::Builtin => "schedules/default.toml (built in)".to_string(),
            ScheduleSource::File(p) => p.display().to_string(),
        });
        MessageResult(v)
    }
}

/// Re-read the schedule file (SIGHUP).
#[derive(Message)]
#[rtype(result = "Result<usize>")]
pub struct Reload;

impl Handler<Reload> for SchedulerActor {
    type Result = Result<usize>;
    fn handle(&mut self, _: Reload, ctx: &mut Context<Self>) -> Result<usize> {
        match self.source.load() {
            Ok(specs) => {
                let n = specs.len();
                self.sched.reload(specs, self.clock.now_ms());
                self.arm(ctx);
                tracing::info!(jobs = n, "schedule reloaded");
                Ok(n)
            }
            Err(e) => {
                tracing::error!(error = %e, "schedule reload refused; keeping the running schedule");
                self.board
                    .record_error("scheduler", &format!("reload refused: {e}"));
                Err(e)
            }
        }
    }
}
