//! The metrics actor: a mailbox. Every `status-interval-secs` it has a
//! persistence thread take a [`Sample`](crate::metrics::Sample), hands it to
//! its [`Ticker`] (rates, the 80% disk alert and the records: all in
//! `metrics::tick`), keeps the result as the latest sample (what `GET
//! /metrics` and `storage_stats {detailed}` serve), appends the tick's point
//! to the metrics history (`stats --history`) and publishes the records
//! into the daemon's own memory bus, and through it to the external bus.
//!
//! It runs under `actix::Supervisor`: when it stops, it is restarted (the
//! same value, so its ticker keeps the previous sample) and the board
//! counts the restart.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;

use super::PersistenceHandle;
use crate::error::ErrorKind;
use crate::metrics::tick::{Tick, Ticker};
use crate::status::StatusBoard;

pub struct MetricsActor {
    persistence: PersistenceHandle,
    board: Arc<StatusBoard>,
    every: Duration,
    ticker: Ticker,
}

impl MetricsActor {
    pub fn new(persistence: PersistenceHandle, board: Arc<StatusBoard>, every: Duration) -> Self {
        MetricsActor {
            persistence,
            board,
            every,
            ticker: Ticker::new(every),
        }
    }

    fn tick(&mut self, ctx: &mut Context<Self>) {
        let persistence = self.persistence.clone();
        let sample = async move { persistence.take_sample().await };
        ctx.spawn(sample.into_actor(self).map(|sample, act, ctx| {
            let sample = match sample {
                Ok(s) => s,
                // Paused for a restore: skip this tick.
                Err(e) if e.kind == ErrorKind::Paused => return,
                Err(e) => {
                    act.board
                        .record_error("metrics", &format!("taking a sample: {e}"));
                    return;
                }
            };
            if let Some(x) = act.persistence.external() {
                let targets = x.status();
                act.board.update_records(|r| r.external_bus = Some(targets));
            }
            let tick = act.ticker.tick(sample, &act.board);
            act.persistence.latest().set(tick.sample.clone());
            ctx.spawn(act.publish(tick).into_actor(act));
        }));
    }

    /// Append the tick's point to the metrics history, then upsert its
    /// records into the memory bus, in order.
    fn publish(&self, tick: Tick) -> impl std::future::Future<Output = ()> + 'static {
        let (persistence, board) = (self.persistence.clone(), self.board.clone());
        async move {
            match persistence.record_history(tick.point).await {
                // Paused for a restore: the point is not kept.
                Err(e) if e.kind == ErrorKind::Paused => {}
                Err(e) => board.record_error("metrics", &format!("recording the history: {e}")),
                Ok(()) => {}
            }
            for p in tick.publications {
                if let Err(e) = persistence.publish(p.namespace, &p.key, p.value).await {
                    board.record_error("metrics", &format!("publishing {}: {e}", p.key));
                }
            }
        }
    }
}

impl Actor for MetricsActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.board.set_state("metrics", "running");
        self.tick(ctx);
        ctx.run_interval(self.every, |act, ctx| act.tick(ctx));
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        self.board.set_state("metrics", "stopped");
    }
}

impl Supervised for MetricsActor {
    fn restarting(&mut self, _: &mut Context<Self>) {
        self.board.record_restart("metrics");
    }
}

/// Makes the actor fail (test only): it records an error and stops.
#[cfg(test)]
pub(crate) struct Fail;

#[cfg(test)]
impl Message for Fail {
    type Result = ();
}

#[cfg(test)]
impl Handler<Fail> for MetricsActor {
    type Result = ();
    fn handle(&mut self, _: Fail, ctx: &mut Context<Self>) {
        self.board
            .record_error("metrics", "test: the metrics actor fails");
        ctx.stop();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::actors::Persistence;
    use crate::clock::ManualClock;
    use crate::engine::EngineSlot;
    use crate::ops::Store;

    /// Wait (up to 10 s) until `done` holds.
    async fn until(what: &str, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !done() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[test]
    fn a_failed_metrics_actor_is_restarted_and_ticks_again() {
        let sys = actix::System::new();
        sys.block_on(async {
            let (_dir, engine) = crate::engine::testutil::open_temp(ManualClock::new(0));
            let slot = Arc::new(EngineSlot::new(engine));
            let board = Arc::new(StatusBoard::new());
            let store = Store {
                engine: slot.clone(),
                locks: Arc::default(),
                status: board.clone(),
                metrics: Arc::default(),
            };
            let latest = store.metrics.clone();
            let addr = SyncArbiter::start(1, move || Persistence::new(store.clone()));
            let handle = PersistenceHandle::new(addr, slot, latest.clone());
            let (h, b) = (handle.clone(), board.clone());
            let metrics = actix::Supervisor::start(move |_| {
                MetricsActor::new(h, b, Duration::from_millis(50))
            });
            let state = |b: &StatusBoard| b.snapshot().get("metrics").cloned();
            until("the first tick", || latest.get().is_some()).await;
            let s = state(&board).unwrap();
            assert_eq!((s.state.as_str(), s.restarts), ("running", 0));

            metrics.send(Fail).await.unwrap();
            until("the restart", || {
                state(&board).is_some_and(|s| s.restarts == 1 && s.state == "running")
            })
            .await;
            let s = state(&board).unwrap();
            assert_eq!(
                s.last_error.as_deref(),
                Some("test: the metrics actor fails")
            );
            // It samples again after the restart.
            let restarted = Instant::now();
            until("a tick after the restart", || {
                latest.get().is_some_and(|s| s.at > restarted)
            })
            .await;
            assert!(metrics.connected());
        });
    }
}
