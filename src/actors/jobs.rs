//! Long jobs of an async actor, tracked: every operation an actor runs is
//! spawned on its [`Jobs`], so shutdown can cancel the ones that may stop
//! early and wait for the rest before the store closes.

use std::future::Future;
use std::time::Duration;

use serde_json::Value;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::error::{Error, Result};

/// Jobs that ran at least this long give free heap pages back when done.
const TRIM_AFTER: Duration = Duration::from_millis(200);

/// The jobs of one actor.
#[derive(Debug, Clone, Default)]
pub struct Jobs {
    tracker: TaskTracker,
    cancel: CancellationToken,
}

/// Whether a job may be stopped at an await point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cancel {
    /// Stopping it anywhere leaves nothing half-done that counts (e.g. a
    /// backup: its manifest is written last; staging is cleaned at start).
    Safe,
    /// It must run to the end once started (a restore swapping the store).
    Never,
}

impl Jobs {
    /// Jobs cancelled through `token` (shared with a service whose blocking
    /// work polls it).
    pub fn with_token(token: CancellationToken) -> Self {
        Jobs {
            tracker: TaskTracker::new(),
            cancel: token,
        }
    }

    /// Run `job` tracked (on the actor's arbiter); a `Safe` job ends with a
    /// `Cancelled` error when the jobs are cancelled.
    pub fn run(
        &self,
        what: &'static str,
        cancel: Cancel,
        job: impl Future<Output = Result<Value>> + 'static,
    ) -> impl Future<Output = Result<Value>> + 'static {
        let token = self.cancel.clone();
        let spawned = std::time::Instant::now();
        let handle = self.tracker.spawn_local(async move {
            if token.is_cancelled() {
                return Err(shutting_down(what));
            }
            match cancel {
                Cancel::Never => job.await,
                Cancel::Safe => tokio::select! {
                    r = job => r,
                    _ = token.cancelled() => Err(shutting_down(what)),
                },
            }
        });
        async move {
            let r = handle.await;
            // A long job (a backup, restore, drill, verify) allocated and
            // freed a lot on whichever threads ran it: hand the free pages
            // back rather than keep them resident until the next one.
            if spawned.elapsed() >= TRIM_AFTER {
                tokio::task::spawn_blocking(crate::alloc::trim);
            }
            r.map_err(|e| Error::internal(format!("{what} failed: {e}")))?
        }
    }

    /// Cancel what may be cancelled and wait (up to `limit`) for every job;
    /// returns how many were still running at the deadline.
    pub async fn shutdown(&self, limit: Duration) -> usize {
        self.tracker.close();
        self.cancel.cancel();
        match tokio::time::timeout(limit, self.tracker.wait()).await {
            Ok(()) => 0,
            Err(_) => self.tracker.len(),
        }
    }
}

fn shutting_down(what: &str) -> Error {
    Error::cancelled(format!(
        "{what} was cancelled: the daemon is shutting down; run it again after the restart"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn shutdown_cancels_safe_jobs_and_waits_for_the_others() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let local = tokio::task::LocalSet::new();
        local.block_on(&rt, async {
            let jobs = Jobs::default();
            let (tx, rx) = tokio::sync::oneshot::channel::<()>();
            let safe = jobs.run("backup_create", Cancel::Safe, async {
                std::future::pending::<()>().await;
                Ok(Value::Null)
            });
            let never = jobs.run("snapshot_restore", Cancel::Never, async move {
                let _ = rx.await;
                Ok(Value::from("restored"))
            });
            let safe = tokio::task::spawn_local(safe);
            let never = tokio::task::spawn_local(never);
            tokio::task::yield_now().await;
            let j2 = jobs.clone();
            let waiting =
                tokio::task::spawn_local(async move { j2.shutdown(Duration::from_secs(10)).await });
            tokio::task::yield_now().await;
            let cancelled = safe.await.unwrap().unwrap_err();
            assert_eq!(cancelled.kind, ErrorKind::Cancelled);
            assert!(!waiting.is_finished(), "the restore still runs");
            tx.send(()).unwrap();
            assert_eq!(never.await.unwrap().unwrap(), "restored");
            assert_eq!(waiting.await.unwrap(), 0);
            // After shutdown nothing new starts.
            let late = jobs.run("backup_create", Cancel::Safe, async { Ok(Value::Null) });
            assert_eq!(late.await.unwrap_err().kind, ErrorKind::Cancelled);
        });
    }
}
