//! The slot the open engine lives in, and the gate every operation passes.
//!
//! Operations take a [`Pass`] for their whole run (including the time they
//! wait in the persistence actor's mailbox). A restore or a shutdown calls
//! [`EngineSlot::quiesce`]: from that moment no new pass is handed out (new
//! operations get a `Paused` error at once), and the call resolves when the
//! last pass is dropped — no polling. While the returned [`Quiesced`] guard
//! lives, the store can be closed, swapped and reopened.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedRwLockReadGuard, OwnedRwLockWriteGuard};

use super::Engine;
use crate::error::{Error, Result};

/// The open engine, or none while a restore swaps the store. Operations take
/// a clone of the `Arc` for their duration; a restore quiesces the gate,
/// takes the engine out (closing RocksDB when the last clone drops), swaps
/// directories and puts the reopened engine back.
#[derive(Debug)]
pub struct EngineSlot {
    engine: RwLock<Option<Arc<Engine>>>,
    /// Why the store could not be reopened (every request gets it).
    failed: Mutex<Option<String>>,
    /// Times the engine was taken out (a restore starts a new history).
    generation: AtomicU64,
    /// Read side: one pass per operation; write side: quiesce.
    gate: Arc<tokio::sync::RwLock<()>>,
}

/// One operation's right to use the store; a quiesce waits for it.
#[derive(Debug)]
pub struct Pass(#[allow(dead_code)] OwnedRwLockReadGuard<()>);

/// No operation runs while this lives (see [`EngineSlot::quiesce`]).
#[derive(Debug)]
pub struct Quiesced(#[allow(dead_code)] OwnedRwLockWriteGuard<()>);

impl EngineSlot {
    pub fn new(engine: Arc<Engine>) -> Self {
        EngineSlot {
            engine: RwLock::new(Some(engine)),
            failed: Mutex::default(),
            generation: AtomicU64::new(0),
            gate: Arc::default(),
        }
    }

    /// A pass for one operation, or `Paused` while a quiesce holds (or
    /// waits for) the gate.
    pub fn enter(&self) -> Result<Pass> {
        self.gate
            .clone()
            .try_read_owned()
            .map(Pass)
            .map_err(|_| Error::paused("the store is paused for a restore; retry in a moment"))
    }

    /// Refuse new operations and wait (up to `timeout`) until every pass
    /// is dropped. On timeout the gate opens again and an error says so.
    pub async fn quiesce(&self, timeout: Duration) -> Result<Quiesced> {
        tokio::time::timeout(timeout, self.gate.clone().write_owned())
            .await
            .map(Quiesced)
            .map_err(|_| {
                Error::unavailable(format!(
                    "could not pause the store: operations were still running after {timeout:?}; \
                     nothing was changed"
                ))
            })
    }

    pub fn get(&self) -> Result<Arc<Engine>> {
        if let Some(engine) = self
            .engine
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
        {
            return Ok(engine);
        }
        match self
            .failed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
        {
            Some(failed) => Err(Error::internal(failed)),
            None => Err(Error::paused(
                "the store is being restored; retry in a moment",
            )),
        }
    }

    /// The store could not be reopened: every request gets this error.
    pub fn mark_failed(&self, message: &str) {
        *self.failed.lock().unwrap_or_else(|p| p.into_inner()) = Some(message.to_string());
    }

    /// Changes whenever the engine leaves service (restore, shutdown):
    /// sequence numbers read before are not comparable with later ones.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    pub fn take(&self) -> Option<Arc<Engine>> {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.engine
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }

    pub fn put(&self, engine: Arc<Engine>) {
        *self.engine.write().unwrap_or_else(|p| p.into_inner()) = Some(engine);
    }

    /// Take the engine out of service and drop it once nobody else holds
    /// it, which closes RocksDB and joins its background threads. If it is
    /// still in use after `limit`, it is put back and an error returned.
    ///
    /// Callers hold [`Quiesced`], so only background readers (metrics,
    /// change streams, the WAL archiver) can still hold a clone, each for
    /// one short call.
    pub fn close(&self, limit: Duration) -> Result<()> {
        let Some(engine) = self.take() else {
            return Ok(());
        };
        engine.stop_background();
        let deadline = Instant::now() + limit;
        while Arc::strong_count(&engine) > 1 {
            if Instant::now() > deadline {
                engine.start_background();
                self.put(engine);
                return Err(Error::unavailable(format!(
                    "the store is still in use after {limit:?}; it stays open"
                )));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        drop(engine);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::error::ErrorKind;

    #[tokio::test]
    async fn quiesce_waits_for_passes_and_refuses_new_ones() {
        let (_dir, engine) = crate::engine::testutil::open_temp(ManualClock::new(0));
        let slot = Arc::new(EngineSlot::new(engine));
        let pass = slot.enter().expect("open gate");
        let s2 = slot.clone();
        let quiesce = tokio::spawn(async move { s2.quiesce(Duration::from_secs(10)).await });
        // The quiesce is waiting: new operations are refused as paused.
        let refused = loop {
            match slot.enter() {
                Err(e) => break e,
                Ok(p) => {
                    drop(p);
                    tokio::task::yield_now().await
                }
            }
        };
        assert_eq!(refused.kind, ErrorKind::Paused);
        assert!(!quiesce.is_finished(), "a pass is still out");
        drop(pass);
        let guard = quiesce
            .await
            .unwrap()
            .expect("quiesced once the pass is dropped");
        assert_eq!(slot.enter().unwrap_err().kind, ErrorKind::Paused);
        drop(guard);
        slot.enter().expect("the gate opens again");
    }

    #[tokio::test]
    async fn a_quiesce_that_times_out_changes_nothing() {
        let (_dir, engine) = crate::engine::testutil::open_temp(ManualClock::new(0));
        let slot = EngineSlot::new(engine);
        let _pass = slot.enter().unwrap();
        let e = slot.quiesce(Duration::from_millis(20)).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::Unavailable);
        let second = slot.enter().expect("the gate is open after the timeout");
        drop(second);
    }
}
