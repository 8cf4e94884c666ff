//! The compaction actor: a mailbox over [`crate::maintenance::Service`].
//! Its jobs run one at a time (the service's lock) as tracked jobs; at
//! shutdown they are cancelled (an integrity check only reads).

use std::sync::Arc;

use actix::prelude::*;
use serde_json::Value;

use super::jobs::{Cancel, Jobs};
use super::StopJobs;
use crate::error::Result;
use crate::maintenance::Service;
use crate::ops::MaintenanceOp;
use crate::status::StatusBoard;

pub struct CompactionActor {
    service: Arc<Service>,
    board: Arc<StatusBoard>,
    jobs: Jobs,
}

impl CompactionActor {
    /// `jobs` shares its cancellation token with the service, so a job
    /// running on a blocking thread sees shutdown too.
    pub fn new(service: Arc<Service>, board: Arc<StatusBoard>, jobs: Jobs) -> Self {
        CompactionActor {
            service,
            board,
            jobs,
        }
    }
}

impl Actor for CompactionActor {
    type Context = Context<Self>;

    fn started(&mut self, _: &mut Context<Self>) {
        self.board.set_state("compaction", "running");
        // A re-encode the daemon stopped in the middle of goes on.
        let service = self.service.clone();
        actix::spawn(async move {
            if let Err(e) = service.resume_reencodes().await {
                tracing::warn!(error = %e, "cannot resume the pending re-encodes");
            }
        });
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        self.board.set_state("compaction", "stopped");
    }
}

/// One maintenance operation.
#[derive(Message)]
#[rtype(result = "Result<Value>")]
pub struct MaintenanceCmd(pub MaintenanceOp);

impl Handler<MaintenanceCmd> for CompactionActor {
    type Result = ResponseFuture<Result<Value>>;
    fn handle(&mut self, msg: MaintenanceCmd, _: &mut Context<Self>) -> Self::Result {
        let method = msg.0.method();
        Box::pin(
            self.jobs
                .run(method, Cancel::Safe, msg.0.run(&self.service)),
        )
    }
}

impl Handler<StopJobs> for CompactionActor {
    type Result = ResponseFuture<usize>;
    fn handle(&mut self, msg: StopJobs, _: &mut Context<Self>) -> Self::Result {
        let jobs = self.jobs.clone();
        Box::pin(async move { jobs.shutdown(msg.0).await })
    }
}
