//! The snapshot actor: a mailbox over [`crate::snapshot::Service`]. Each
//! operation runs as a tracked job; a restore is never cancelled once it
//! started, the others stop at shutdown.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use serde_json::Value;

use super::jobs::{Cancel, Jobs};
use crate::error::Result;
use crate::ops::SnapshotOp;
use crate::snapshot::Service;
use crate::status::StatusBoard;

pub struct SnapshotActor {
    service: Arc<Service>,
    board: Arc<StatusBoard>,
    jobs: Jobs,
}

impl SnapshotActor {
    pub fn new(service: Arc<Service>, board: Arc<StatusBoard>) -> Self {
        SnapshotActor {
            service,
            board,
            jobs: Jobs::default(),
        }
    }
}

impl Actor for SnapshotActor {
    type Context = Context<Self>;

    fn started(&mut self, _: &mut Context<Self>) {
        self.board.set_state("snapshot", "running");
        let warm = self.service.clone().warm_up();
        actix::spawn(self.jobs.run("snapshot warm-up", Cancel::Safe, async move {
            warm.await;
            Ok(Value::Null)
        }));
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        self.board.set_state("snapshot", "stopped");
    }
}

/// One snapshot operation.
#[derive(Message)]
#[rtype(result = "Result<Value>")]
pub struct SnapshotCmd(pub SnapshotOp);

impl Handler<SnapshotCmd> for SnapshotActor {
    type Result = ResponseFuture<Result<Value>>;
    fn handle(&mut self, msg: SnapshotCmd, _: &mut Context<Self>) -> Self::Result {
        let cancel = match msg.0 {
            SnapshotOp::SnapshotRestore(_) => Cancel::Never,
            _ => Cancel::Safe,
        };
        let method = msg.0.method();
        Box::pin(self.jobs.run(method, cancel, msg.0.run(&self.service)))
    }
}

/// Shutdown: cancel what may stop early, wait for the rest.
#[derive(Message)]
#[rtype(result = "usize")]
pub struct StopJobs(pub Duration);

impl Handler<StopJobs> for SnapshotActor {
    type Result = ResponseFuture<usize>;
    fn handle(&mut self, msg: StopJobs, _: &mut Context<Self>) -> Self::Result {
        let jobs = self.jobs.clone();
        Box::pin(async move { jobs.shutdown(msg.0).await })
    }
}
