//! The actix actors: thin shells that own state and receive typed messages,
//! driving the plain modules (`engine`, `bus`, `snapshot`, `schedule`,
//! `status`). The [`Router`] sends each operation to the actor that serves
//! it; later actors (backup, compaction, tiering) slot in the same way.

mod backup_actor;
mod metrics_actor;
mod persistence;
mod scheduler_actor;
mod snapshot_actor;

pub use backup_actor::{default_destination, BackupActor, BackupCmd};
pub use metrics_actor::{collect_storage, storage_record, MetricsActor, VectorStorageRecord};
pub use persistence::{Execute, Flush, Persistence, PersistenceHandle, Publish};
pub use scheduler_actor::{ListJobs, Reload, ScheduleSource, SchedulerActor};
pub use snapshot_actor::{SnapshotActor, SnapshotCmd};

use actix::Addr;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::ops::{Op, Route};

/// Sends an operation to the actor that serves it.
#[derive(Clone)]
pub struct Router {
    pub persistence: PersistenceHandle,
    pub snapshots: Addr<SnapshotActor>,
    pub scheduler: Addr<SchedulerActor>,
    pub backups: Addr<BackupActor>,
}

impl Router {
    pub async fn call(&self, op: Op) -> Result<Value> {
        let gone = |who: &str, e: actix::MailboxError| {
            Error::unavailable(format!("{who} actor is not running: {e}"))
        };
        match op.route() {
            Route::Persistence => self.persistence.call(op).await,
            Route::Snapshot => self
                .snapshots
                .send(SnapshotCmd(op))
                .await
                .map_err(|e| gone("snapshot", e))?,
            Route::Backup => self
                .backups
                .send(BackupCmd(op))
                .await
                .map_err(|e| gone("backup", e))?,
            Route::Scheduler => self
                .scheduler
                .send(ListJobs)
                .await
                .map_err(|e| gone("scheduler", e)),
        }
    }
}
