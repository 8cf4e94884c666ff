//! The persistence actor: a `SyncArbiter` whose threads run the blocking
//! RocksDB work. Many threads let concurrent durable writes reach RocksDB
//! together, where its write thread groups them into one WAL fsync.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::ops::{execute, Op, Shared};

pub struct Persistence {
    shared: Shared,
}

impl Persistence {
    pub fn new(shared: Shared) -> Self {
        Persistence { shared }
    }
}

impl Actor for Persistence {
    type Context = SyncContext<Self>;

    fn started(&mut self, _ctx: &mut Self::Context) {
        self.shared.status.set_state("persistence", "running");
    }
}

/// Run one operation.
#[derive(Message)]
#[rtype(result = "Result<Value>")]
pub struct Execute(pub Op);

impl Handler<Execute> for Persistence {
    type Result = Result<Value>;
    fn handle(&mut self, msg: Execute, _: &mut Self::Context) -> Result<Value> {
        let method = msg.0.method();
        let _span = tracing::debug_span!("op", method).entered();
        execute(&self.shared, msg.0)
    }
}

/// Make everything acknowledged so far durable: fsync the WAL and flush
/// the memtables. Sent by [`PersistenceHandle::barrier`] once no earlier
/// operation is in flight.
#[derive(Message)]
#[rtype(result = "Result<()>")]
pub struct Flush;

impl Handler<Flush> for Persistence {
    type Result = Result<()>;
    fn handle(&mut self, _: Flush, _: &mut Self::Context) -> Result<()> {
        self.shared.engine.get()?.flush()
    }
}

/// Upsert one record of the daemon's own into the memory bus.
#[derive(Message)]
#[rtype(result = "Result<()>")]
pub struct Publish {
    pub namespace: String,
    pub key: String,
    pub value: Value,
}

impl Handler<Publish> for Persistence {
    type Result = Result<()>;
    fn handle(&mut self, p: Publish, _: &mut Self::Context) -> Result<()> {
        let engine = self.shared.engine.get()?;
        crate::bus::MemoryStore::new(&engine, &self.shared.locks).publish(
            &p.namespace,
            &p.key,
            &p.value,
        )
    }
}

/// Compute the vector storage record (RocksDB properties; blocking).
#[derive(Message)]
#[rtype(result = "Result<super::VectorStorageRecord>")]
pub struct CollectStorage;

impl Handler<CollectStorage> for Persistence {
    type Result = Result<super::VectorStorageRecord>;
    fn handle(&mut self, _: CollectStorage, _: &mut Self::Context) -> Self::Result {
        Ok(super::metrics_actor::collect_storage(
            &*self.shared.engine.get()?,
        ))
    }
}

/// Render the Prometheus metrics (blocking property and statvfs reads).
#[derive(Message)]
#[rtype(result = "Result<String>")]
pub struct CollectMetrics;

impl Handler<CollectMetrics> for Persistence {
    type Result = Result<String>;
    fn handle(&mut self, _: CollectMetrics, _: &mut Self::Context) -> Self::Result {
        let engine = self.shared.engine.get()?;
        let data_dir = engine
            .path()
            .parent()
            .unwrap_or(engine.path())
            .to_path_buf();
        Ok(crate::metrics::render(
            &engine,
            &self.shared.status,
            &data_dir,
        ))
    }
}

/// The address of the persistence actor plus a count of operations in
/// flight, so a barrier can wait for every earlier operation.
#[derive(Clone)]
pub struct PersistenceHandle {
    addr: Addr<Persistence>,
    inflight: Arc<AtomicUsize>,
    paused: Arc<std::sync::atomic::AtomicBool>,
    /// Other agents' memory servers that also receive published records.
    external: Option<Arc<crate::bus::external::ExternalBus>>,
}

struct InflightGuard(Arc<AtomicUsize>);
impl Drop for InflightGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl PersistenceHandle {
    pub fn new(addr: Addr<Persistence>) -> Self {
        PersistenceHandle {
            addr,
            inflight: Arc::new(AtomicUsize::new(0)),
            paused: Arc::default(),
            external: None,
        }
    }

    /// Also offer every published record to these external targets.
    pub fn with_external(
        mut self,
        external: Option<Arc<crate::bus::external::ExternalBus>>,
    ) -> Self {
        self.external = external;
        self
    }

    pub fn external(&self) -> Option<&Arc<crate::bus::external::ExternalBus>> {
        self.external.as_ref()
    }

    pub fn addr(&self) -> &Addr<Persistence> {
        &self.addr
    }

    pub fn inflight(&self) -> usize {
        self.inflight.load(Ordering::SeqCst)
    }

    /// Run an operation on the persistence threads.
    pub async fn call(&self, op: Op) -> Result<Value> {
        // Count first, then check the gate: a quiesce that closed the gate
        // after our check still waits for us.
        self.inflight.fetch_add(1, Ordering::SeqCst);
        let _guard = InflightGuard(self.inflight.clone());
        if self.paused.load(Ordering::SeqCst) {
            return Err(Error::unavailable(
                "the store is paused for a restore; retry in a moment",
            ));
        }
        self.addr
            .send(Execute(op))
            .await
            .map_err(|e| Error::unavailable(format!("persistence actor is not running: {e}")))?
    }

    pub async fn publish(&self, namespace: &str, key: &str, value: Value) -> Result<()> {
        if let Some(x) = &self.external {
            x.offer(namespace, key, &value);
        }
        self.addr
            .send(Publish {
                namespace: namespace.to_string(),
                key: key.to_string(),
                value,
            })
            .await
            .map_err(|e| Error::unavailable(format!("persistence actor is not running: {e}")))?
    }

    pub async fn metrics(&self) -> Result<String> {
        self.addr
            .send(CollectMetrics)
            .await
            .map_err(|e| Error::unavailable(format!("persistence actor is not running: {e}")))?
    }

    pub async fn collect_storage(&self) -> Result<super::VectorStorageRecord> {
        self.addr
            .send(CollectStorage)
            .await
            .map_err(|e| Error::unavailable(format!("persistence actor is not running: {e}")))?
    }

    /// Refuse new operations and wait (up to `timeout`) for running ones.
    /// On timeout the gate is reopened and an error returned.
    pub async fn quiesce(&self, timeout: Duration) -> Result<()> {
        self.paused.store(true, Ordering::SeqCst);
        let deadline = Instant::now() + timeout;
        while self.inflight() > 0 {
            if Instant::now() >= deadline {
                self.resume();
                return Err(Error::unavailable(format!(
                    "could not quiesce writes: {} operations still running after {timeout:?}",
                    self.inflight()
                )));
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        Ok(())
    }

    /// Reopen the gate closed by [`quiesce`](Self::quiesce).
    pub fn resume(&self) {
        self.paused.store(false, Ordering::SeqCst);
    }

    /// Wait (up to `timeout`) until no operation is in flight, then flush.
    /// Returns how many operations were still running at the deadline.
    /// (Shutdown calls [`quiesce`](Self::quiesce) first, so none can start.)
    pub async fn barrier(&self, timeout: Duration) -> Result<usize> {
        let deadline = Instant::now() + timeout;
        while self.inflight() > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let left = self.inflight();
        self.addr
            .send(Flush)
            .await
            .map_err(|e| Error::unavailable(format!("persistence actor is not running: {e}")))??;
        Ok(left)
    }
}
