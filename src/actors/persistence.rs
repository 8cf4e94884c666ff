//! The persistence actor: a `SyncArbiter` whose threads run the blocking
//! RocksDB work. Many threads let concurrent durable writes reach RocksDB
//! together, where its write thread groups them into one WAL fsync.
//!
//! Every message carries a [`Pass`] through the store's gate, taken before
//! it is queued and dropped when it is handled, so a restore or shutdown
//! that quiesces the gate waits for queued work too.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use serde_json::Value;

use crate::bus::MemoryStore;
use crate::engine::{EngineSlot, Pass};
use crate::error::{Error, Result};
use crate::metrics::disk::DiskReserve;
use crate::metrics::{HostDisk, Latest, Sample};
use crate::ops::{PersistenceOp, Store};

pub struct Persistence {
    store: Store,
}

impl Persistence {
    pub fn new(store: Store) -> Self {
        Persistence { store }
    }
}

impl Actor for Persistence {
    type Context = SyncContext<Self>;

    fn started(&mut self, _ctx: &mut Self::Context) {
        self.store.status.set_state("persistence", "running");
    }
}

/// Work for the persistence threads, with its pass through the gate.
pub struct Work {
    kind: WorkKind,
    _pass: Option<Pass>,
}

enum WorkKind {
    /// An operation; with a reserve, one that adds data, checked against
    /// it first (a statvfs, on this thread rather than the reactor).
    Op(PersistenceOp, Option<Arc<DiskReserve>>),
    Publish {
        namespace: String,
        key: String,
        value: Value,
    },
    /// Take a metrics sample.
    Sample,
    /// Append a tick's point to the metrics history.
    History(crate::series::Point),
    /// Make everything acknowledged so far durable (WAL fsync + flush).
    Flush,
}

/// What the work returns.
pub enum Done {
    Value(Value),
    Sample(Box<Sample>),
}

impl Message for Work {
    type Result = Result<Done>;
}

impl Handler<Work> for Persistence {
    type Result = Result<Done>;
    fn handle(&mut self, w: Work, _: &mut Self::Context) -> Result<Done> {
        let s = &self.store;
        match w.kind {
            WorkKind::Op(op, reserve) => {
                let method = op.method();
                let _span = tracing::debug_span!("op", method).entered();
                if let Some(reserve) = reserve {
                    reserve.check().map_err(|e| e.context(method))?;
                }
                op.run(s).map(Done::Value)
            }
            WorkKind::Publish {
                namespace,
                key,
                value,
            } => {
                let engine = s.engine.get()?;
                MemoryStore::new(&engine, &s.locks)
                    .publish(&namespace, &key, &value)
                    .map(|_| Done::Value(Value::Null))
            }
            WorkKind::Sample => {
                let engine = s.engine.get()?;
                let now_ms = crate::clock::Clock::now_ms(&crate::clock::SystemClock);
                Ok(Done::Sample(Box::new(Sample::take(
                    &engine, &s.status, &HostDisk, now_ms,
                ))))
            }
            WorkKind::History(point) => s
                .engine
                .get()?
                .series_append(&crate::metrics::history::COLUMNS, &point)
                .map(|_| Done::Value(Value::Null)),
            WorkKind::Flush => s.engine.get()?.flush().map(|_| Done::Value(Value::Null)),
        }
    }
}

/// The persistence actor's address and the gate its work passes.
#[derive(Clone)]
pub struct PersistenceHandle {
    addr: Addr<Persistence>,
    slot: Arc<EngineSlot>,
    /// The metrics actor's latest sample (the one the actor's `Store` has).
    latest: Arc<Latest>,
    /// Other agents' memory servers that also receive published records.
    external: Option<Arc<crate::external::ExternalBus>>,
    /// Writes are refused below it (`None`: never).
    reserve: Option<Arc<DiskReserve>>,
}

impl PersistenceHandle {
    pub fn new(addr: Addr<Persistence>, slot: Arc<EngineSlot>, latest: Arc<Latest>) -> Self {
        PersistenceHandle {
            addr,
            slot,
            latest,
            external: None,
            reserve: None,
        }
    }

    /// Also offer every published record to these external targets.
    pub fn with_external(mut self, external: Option<Arc<crate::external::ExternalBus>>) -> Self {
        self.external = external;
        self
    }

    pub fn external(&self) -> Option<&Arc<crate::external::ExternalBus>> {
        self.external.as_ref()
    }

    async fn send(&self, kind: WorkKind, pass: Option<Pass>) -> Result<Done> {
        self.addr
            .send(Work { kind, _pass: pass })
            .await
            .map_err(|e| Error::unavailable(format!("the persistence actor is not running: {e}")))?
    }

    async fn value(&self, kind: WorkKind) -> Result<Value> {
        let pass = self.slot.enter()?;
        match self.send(kind, Some(pass)).await? {
            Done::Value(v) => Ok(v),
            _ => Err(Error::internal(
                "the persistence actor answered another kind of work",
            )),
        }
    }

    /// Keep `reserve` free: operations that add data are refused below it.
    pub fn with_reserve(mut self, reserve: Arc<DiskReserve>) -> Self {
        self.reserve = Some(reserve);
        self
    }

    /// Run an operation on the persistence threads. One that adds data is
    /// refused while the disk is below its reserve (deletes, reads, WAL
    /// checkpoints and cache sizes go on: the first three are how space
    /// comes back).
    pub async fn call(&self, op: PersistenceOp) -> Result<Value> {
        let adds = match &op {
            // The claude-flow v2 tool: only its store adds data.
            PersistenceOp::MemoryUsage(p) => p.adds_data(),
            o => {
                crate::ops::OpInfo::find(o.method())
                    .is_some_and(|i| i.effect == crate::ops::Effect::Write)
                    && !matches!(o.method(), "wal_checkpoint" | "cache_config")
            }
        };
        let reserve = self.reserve.clone().filter(|_| adds);
        self.value(WorkKind::Op(op, reserve)).await
    }

    /// Refuse `method` while the disk is below its reserve (the statvfs on
    /// a blocking thread).
    pub async fn check_reserve(&self, method: &'static str) -> Result<()> {
        let Some(reserve) = self.reserve.clone() else {
            return Ok(());
        };
        tokio::task::spawn_blocking(move || reserve.check().map_err(|e| e.context(method)))
            .await
            .unwrap_or_else(|e| Err(Error::internal(format!("the disk check failed: {e}"))))
    }

    /// Upsert one record of the daemon's own into the memory bus (and offer
    /// it to the external bus).
    pub async fn publish(&self, namespace: &str, key: &str, value: Value) -> Result<()> {
        if let Some(x) = &self.external {
            x.offer(namespace, key, &value);
        }
        self.value(WorkKind::Publish {
            namespace: namespace.to_string(),
            key: key.to_string(),
            value,
        })
        .await
        .map(|_| ())
    }

    /// Append a tick's point to the metrics history.
    pub async fn record_history(&self, point: crate::series::Point) -> Result<()> {
        self.value(WorkKind::History(point)).await.map(|_| ())
    }

    /// Take a metrics sample on a persistence thread (blocking property
    /// reads, statvfs, `/proc/diskstats`).
    pub async fn take_sample(&self) -> Result<Sample> {
        let pass = self.slot.enter()?;
        match self.send(WorkKind::Sample, Some(pass)).await? {
            Done::Sample(s) => Ok(*s),
            _ => Err(Error::internal(
                "the persistence actor answered another kind of work",
            )),
        }
    }

    /// Where the metrics actor keeps its latest sample.
    pub fn latest(&self) -> &Arc<Latest> {
        &self.latest
    }

    /// The latest tick's sample (`GET /metrics`); before the first tick, a
    /// new one.
    pub async fn sample(&self) -> Result<Arc<Sample>> {
        match self.latest.get() {
            Some(s) => Ok(s),
            None => self.take_sample().await.map(Arc::new),
        }
    }

    /// Shutdown: refuse new work, wait (up to `timeout`) for what is queued
    /// or running, then make everything durable. The store stays quiesced.
    pub async fn drain_and_flush(&self, timeout: Duration) -> Result<crate::engine::Quiesced> {
        let quiesced = self.slot.quiesce(timeout).await?;
        self.send(WorkKind::Flush, None).await?;
        Ok(quiesced)
    }
}

/// The watchdog's rule: ping while the store answers, or is only paused
/// (a restore is swapping it); withhold the ping when the persistence actor
/// is gone or the store fails, so systemd restarts the daemon.
pub fn alive(health: &Result<Value>) -> bool {
    match health {
        Ok(_) => true,
        Err(e) => e.kind == crate::error::ErrorKind::Paused,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::error::ErrorKind;
    use crate::ops::SystemHealthParams;

    #[test]
    fn a_stopped_actor_is_unavailable_and_the_watchdog_withholds_its_ping() {
        let sys = actix::System::new();
        sys.block_on(async {
            let (_dir, engine) = crate::engine::testutil::open_temp(ManualClock::new(0));
            let slot = Arc::new(EngineSlot::new(engine));
            let store = Store {
                engine: slot.clone(),
                locks: Arc::default(),
                status: Arc::default(),
                metrics: Arc::default(),
            };
            let latest = store.metrics.clone();
            let addr = SyncArbiter::start(1, move || Persistence::new(store.clone()));
            let handle = PersistenceHandle::new(addr.clone(), slot.clone(), latest);
            let health = || PersistenceOp::SystemHealth(SystemHealthParams {});
            let ok = handle.call(health()).await;
            assert!(alive(&ok), "{:?}", ok.err());
            // Paused for a restore: alive.
            let paused = slot.quiesce(Duration::from_secs(5)).await.unwrap();
            let r = handle.call(health()).await;
            assert_eq!(r.as_ref().unwrap_err().kind, ErrorKind::Paused);
            assert!(alive(&r));
            drop(paused);
            // The actor gone (its thread died mid-request): unavailable,
            // and no ping; afterwards nothing answers at all, which the
            // watchdog's timeout treats the same way.
            let gone = handle.addr.send(Panic).await.map_err(|e| {
                Error::unavailable(format!("the persistence actor is not running: {e}"))
            });
            assert_eq!(gone.as_ref().unwrap_err().kind, ErrorKind::Unavailable);
            let gone: Result<Value> = gone.map(|_| Value::Null);
            assert!(!alive(&gone));
            let next =
                tokio::time::timeout(Duration::from_millis(200), handle.call(health())).await;
            assert!(
                next.as_ref().map_or(true, |r| !alive(r)),
                "a dead actor must never look alive: {next:?}"
            );
        });
    }

    /// Kills the actor's thread (test only).
    struct Panic;
    impl Message for Panic {
        type Result = ();
    }
    impl Handler<Panic> for Persistence {
        type Result = ();
        fn handle(&mut self, _: Panic, _: &mut Self::Context) {
            panic!("test: the persistence thread dies");
        }
    }
}
