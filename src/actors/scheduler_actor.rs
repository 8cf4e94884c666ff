//! The scheduler actor: turns the cron jobs of [`crate::schedule`] into
//! operations for the actors that do the work. It does no storage work
//! itself, never starts a job that is still running, and records each
//! job's last run, next run and last result. `Reload` (sent on SIGHUP)
//! re-reads the file; an invalid file is refused and the running schedule
//! kept.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use serde_json::Value;

use super::Router;
use crate::backup::params as backup;
use crate::clock::Clock;
use crate::error::Result;
use crate::ops::{
    BackupOp, MaintenanceOp, Op, PersistenceOp, SchedulerOp, SnapshotOp, WalCheckpointParams,
};
use crate::schedule::{self, Action, Jobs, ScheduleSource, Scheduler};
use crate::snapshot::params as snapshot;
use crate::status::StatusBoard;

pub struct SchedulerActor {
    jobs: Jobs,
    clock: Arc<dyn Clock>,
    router: Option<Router>,
    board: Arc<StatusBoard>,
    timer: Option<SpawnHandle>,
}

impl SchedulerActor {
    pub fn new(
        specs: Vec<schedule::JobSpec>,
        source: ScheduleSource,
        clock: Arc<dyn Clock>,
        board: Arc<StatusBoard>,
    ) -> Self {
        SchedulerActor {
            jobs: Jobs {
                scheduler: Scheduler::new(specs, clock.now_ms()),
                source,
            },
            clock,
            router: None,
            board,
            timer: None,
        }
    }

    fn arm(&mut self, ctx: &mut Context<Self>) {
        if let Some(t) = self.timer.take() {
            ctx.cancel_future(t);
        }
        if let Some(at) = self.jobs.scheduler.next_wakeup() {
            let delay = (at - self.clock.now_ms()).max(0) as u64;
            self.timer =
                Some(ctx.run_later(Duration::from_millis(delay), |act, ctx| act.fire(ctx)));
        }
    }

    fn fire(&mut self, ctx: &mut Context<Self>) {
        let now = self.clock.now_ms();
        let Some(router) = self.router.clone() else {
            // Not wired yet (start-up): try again shortly.
            self.timer = Some(ctx.run_later(Duration::from_millis(100), |a, c| a.fire(c)));
            return;
        };
        for i in self.jobs.scheduler.due(now) {
            let job = &self.jobs.scheduler.jobs[i].spec;
            let name = job.name.clone();
            let op = operation(&job.action, now);
            tracing::info!(job = %name, action = job.action.name(), "scheduled job starting");
            let router = router.clone();
            ctx.spawn(async move { router.call(op).await }.into_actor(self).map(
                move |res: Result<Value>, act, _| {
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
                    act.jobs.scheduler.finish(&name, res, now);
                },
            ));
        }
        self.arm(ctx);
    }
}

/// The operation a job's action stands for, at time `now`.
fn operation(action: &Action, now: i64) -> Op {
    match action {
        Action::SnapshotCreate { prefix, verify } => {
            Op::Snapshot(SnapshotOp::SnapshotCreate(snapshot::CreateParams {
                name: Some(crate::snapshot::default_name(prefix, now)),
                verify: *verify,
                scheduled: true,
            }))
        }
        Action::SnapshotVerify { name } => {
            Op::Snapshot(SnapshotOp::SnapshotVerify(snapshot::VerifyParams {
                name: name.clone(),
            }))
        }
        Action::SnapshotPrune { policy, kind } => {
            Op::Snapshot(SnapshotOp::SnapshotPrune(snapshot::PruneParams {
                dry_run: false,
                kind: *kind,
                policy: policy.clone(),
            }))
        }
        Action::WalCheckpoint => {
            Op::Persistence(PersistenceOp::WalCheckpoint(WalCheckpointParams {}))
        }
        Action::BackupCreate { full } => Op::Backup(BackupOp::BackupCreate(backup::CreateParams {
            full: *full,
            ..Default::default()
        })),
        Action::BackupPrune { policy } => Op::Backup(BackupOp::BackupPrune(backup::PruneParams {
            location: None,
            dry_run: false,
            policy: policy.clone(),
        })),
        Action::BackupDrill => Op::Backup(BackupOp::BackupDrill(backup::DrillParams {})),
        Action::BackupVerify {
            read_data,
            read_data_subset,
        } => Op::Backup(BackupOp::BackupVerify(backup::VerifyParams {
            read_data: *read_data,
            read_data_subset: read_data_subset.clone(),
            ..Default::default()
        })),
        Action::CheckIntegrity { deep } => Op::Maintenance(MaintenanceOp::StorageCheck(
            crate::maintenance::params::CheckParams {
                verify_integrity: *deep,
            },
        )),
        Action::CompactFull => Op::Maintenance(MaintenanceOp::StorageCompact(
            crate::maintenance::params::CompactParams {
                full: true,
                ..Default::default()
            },
        )),
        Action::CompactIncremental { threshold } => Op::Maintenance(MaintenanceOp::StorageCompact(
            crate::maintenance::params::CompactParams {
                incremental: true,
                threshold: *threshold,
                ..Default::default()
            },
        )),
    }
}

fn summary(v: &Value) -> String {
    let s = v.to_string();
    match s.char_indices().nth(300) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s,
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

/// Where due jobs are sent (the router exists only once every actor runs).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Wire(pub Router);

impl Handler<Wire> for SchedulerActor {
    type Result = ();
    fn handle(&mut self, msg: Wire, _: &mut Context<Self>) {
        self.router = Some(msg.0);
    }
}

/// One scheduler operation (`schedule_list`).
#[derive(Message)]
#[rtype(result = "Result<Value>")]
pub struct SchedulerCmd(pub SchedulerOp);

impl Handler<SchedulerCmd> for SchedulerActor {
    type Result = Result<Value>;
    fn handle(&mut self, msg: SchedulerCmd, _: &mut Context<Self>) -> Result<Value> {
        msg.0.run(&self.jobs)
    }
}

/// Re-read the schedule file (SIGHUP).
#[derive(Message)]
#[rtype(result = "Result<usize>")]
pub struct Reload;

impl Handler<Reload> for SchedulerActor {
    type Result = Result<usize>;
    fn handle(&mut self, _: Reload, ctx: &mut Context<Self>) -> Result<usize> {
        match self.jobs.source.load() {
            Ok(specs) => {
                let n = specs.len();
                self.jobs.scheduler.reload(specs, self.clock.now_ms());
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
