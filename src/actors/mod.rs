//! The actix actors: mailboxes that serialise access, track and cancel
//! jobs and report their state, each over a plain module that does the
//! work (`engine` and the ops for persistence, `snapshot::Service`,
//! `backup::Service`, `maintenance::Service`, `schedule`, `metrics`). The [`Router`] sends each
//! operation to the actor that serves it.

mod backup_actor;
mod compaction_actor;
mod jobs;
mod metrics_actor;
mod persistence;
mod scheduler_actor;
mod snapshot_actor;

pub use backup_actor::{BackupActor, BackupCmd};
pub use compaction_actor::{CompactionActor, MaintenanceCmd};
pub use jobs::{Cancel, Jobs};
pub use metrics_actor::MetricsActor;
pub use persistence::{alive, Persistence, PersistenceHandle};
pub use scheduler_actor::{Reload, SchedulerActor, SchedulerCmd, Wire};
pub use snapshot_actor::{SnapshotActor, SnapshotCmd, StopJobs};

use std::time::Duration;

use actix::Addr;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::ops::Op;

/// Sends an operation to the actor that serves it.
#[derive(Clone)]
pub struct Router {
    pub persistence: PersistenceHandle,
    pub snapshots: Addr<SnapshotActor>,
    pub scheduler: Addr<SchedulerActor>,
    pub backups: Addr<BackupActor>,
    pub compaction: Addr<CompactionActor>,
}

fn gone(who: &str, e: actix::MailboxError) -> Error {
    Error::unavailable(format!("the {who} actor is not running: {e}"))
}

impl Router {
    pub async fn call(&self, op: Op) -> Result<Value> {
        // Jobs of other actors that write into the data directory's
        // filesystem (snapshots, local backups and drills, re-encoding and
        // rewrites) are refused below the reserve too; deletes, prunes and
        // compaction are how space comes back.
        if matches!(
            op.method(),
            "snapshot_create" | "backup_create" | "backup_drill" | "storage_compress"
        ) {
            self.persistence.check_reserve(op.method()).await?;
        }
        match op {
            Op::Persistence(o) => self.persistence.call(o).await,
            Op::Snapshot(o) => self
                .snapshots
                .send(SnapshotCmd(o))
                .await
                .map_err(|e| gone("snapshot", e))?,
            Op::Backup(o) => self
                .backups
                .send(BackupCmd(o))
                .await
                .map_err(|e| gone("backup", e))?,
            Op::Maintenance(o) => self
                .compaction
                .send(MaintenanceCmd(o))
                .await
                .map_err(|e| gone("compaction", e))?,
            Op::Scheduler(o) => self
                .scheduler
                .send(SchedulerCmd(o))
                .await
                .map_err(|e| gone("scheduler", e))?,
        }
    }

    /// Shutdown: the async actors cancel what may stop early and wait (up
    /// to `limit` each) for the rest; returns the jobs still running.
    pub async fn stop_jobs(&self, limit: Duration) -> usize {
        let backups = self.backups.send(StopJobs(limit)).await.unwrap_or(0);
        let snapshots = self.snapshots.send(StopJobs(limit)).await.unwrap_or(0);
        let compaction = self.compaction.send(StopJobs(limit)).await.unwrap_or(0);
        backups + snapshots + compaction
    }
}
