//! The backup actor: a mailbox over [`crate::backup::Service`]. Each
//! operation runs as a tracked job (a restore is never cancelled once it
//! started; the others stop at shutdown, which leaves no visible partial
//! backup), and with `[backup] archive-wal` it runs the continuous WAL
//! archiver on a timer.

use std::sync::Arc;

use actix::prelude::*;
use serde_json::Value;

use super::jobs::{Cancel, Jobs};
use super::StopJobs;
use crate::backup::Service;
use crate::error::Result;
use crate::ops::BackupOp;
use crate::status::StatusBoard;

pub struct BackupActor {
    service: Arc<Service>,
    board: Arc<StatusBoard>,
    jobs: Jobs,
    archiver: Option<SpawnHandle>,
}

impl BackupActor {
    pub fn new(service: Arc<Service>, board: Arc<StatusBoard>) -> Self {
        BackupActor {
            service,
            board,
            jobs: Jobs::default(),
            archiver: None,
        }
    }
}

impl Actor for BackupActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.board.set_state("backup", "running");
        self.service.clean_staging();
        if let Some(every) = self.service.archive_every() {
            self.archiver = Some(ctx.run_interval(every, |act, _| {
                let pass = act.service.clone().archive_tick();
                actix::spawn(act.jobs.run("WAL archiving", Cancel::Safe, async move {
                    pass.await;
                    Ok(Value::Null)
                }));
            }));
        }
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        self.board.set_state("backup", "stopped");
    }
}

/// One backup operation.
#[derive(Message)]
#[rtype(result = "Result<Value>")]
pub struct BackupCmd(pub BackupOp);

impl Handler<BackupCmd> for BackupActor {
    type Result = ResponseFuture<Result<Value>>;
    fn handle(&mut self, msg: BackupCmd, _: &mut Context<Self>) -> Self::Result {
        let cancel = match msg.0 {
            BackupOp::BackupRestore(_) => Cancel::Never,
            _ => Cancel::Safe,
        };
        let method = msg.0.method();
        Box::pin(self.jobs.run(method, cancel, msg.0.run(&self.service)))
    }
}

impl Handler<StopJobs> for BackupActor {
    type Result = ResponseFuture<usize>;
    fn handle(&mut self, msg: StopJobs, ctx: &mut Context<Self>) -> Self::Result {
        // No new archiving passes.
        if let Some(h) = self.archiver.take() {
            ctx.cancel_future(h);
        }
        let jobs = self.jobs.clone();
        Box::pin(async move { jobs.shutdown(msg.0).await })
    }
}
