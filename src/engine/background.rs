//! Our own background threads of an open store: the WAL syncer of
//! `sync = interval:<ms>`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use super::Engine;
use crate::config::SyncPolicy;

impl Engine {
    /// Start our background threads (the `interval` WAL syncer).
    pub fn start_background(self: &Arc<Self>) {
        if let SyncPolicy::Interval(every) = self.sync {
            let stop = Arc::new(AtomicBool::new(false));
            if let Some(h) = spawn_wal_syncer(Arc::downgrade(self), every, stop.clone()) {
                *self.syncer.lock().unwrap_or_else(|p| p.into_inner()) = Some((stop, h));
            }
        }
    }

    /// Stop and join background threads of ours that hold the engine, so
    /// that dropping the last `Arc` really closes RocksDB on this thread.
    pub fn stop_background(&self) {
        let syncer = self.syncer.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some((stop, handle)) = syncer {
            stop.store(true, Ordering::SeqCst);
            handle.thread().unpark();
            let _ = handle.join();
        }
    }
}

/// `sync = interval:<ms>`: fsync the WAL in the background until stopped
/// (see [`Engine::stop_background`]) or the engine is dropped.
fn spawn_wal_syncer(
    engine: Weak<Engine>,
    every: Duration,
    stop: Arc<AtomicBool>,
) -> Option<std::thread::JoinHandle<()>> {
    let spawned = std::thread::Builder::new()
        .name("wal-syncer".into())
        .spawn(move || loop {
            std::thread::park_timeout(every);
            if stop.load(Ordering::SeqCst) {
                return;
            }
            let Some(engine) = engine.upgrade() else {
                return;
            };
            if let Err(e) = engine.sync_wal() {
                tracing::error!(error = %e, "periodic WAL sync failed");
            }
        });
    match spawned {
        Ok(h) => Some(h),
        Err(e) => {
            tracing::error!(error = %e, "cannot start the WAL sync thread; WAL is synced only at flush");
            None
        }
    }
}
