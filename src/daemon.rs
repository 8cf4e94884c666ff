//! The supervisor: opens the store, starts the actors and the JSON-RPC
//! server, announces itself in `daemon.json`, and owns the one shutdown
//! path: stop accepting → finish in-flight work → flush → exit.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;

use crate::actors::{
    alive, BackupActor, CompactionActor, MetricsActor, Persistence, PersistenceHandle, Reload,
    Router, SchedulerActor, SnapshotActor, Wire,
};
use crate::bus::KeyLocks;
use crate::client::{daemon_json_path, read_daemon_info, DaemonInfo};
use crate::clock::{iso_ms, Clock, SystemClock};
use crate::config::Config;
use crate::engine::{Engine, EngineSlot};
use crate::error::{Error, Result};
use crate::ops::{PersistenceOp, Store, SystemHealthParams};
use crate::rpc::{self, RpcState};
use crate::schedule::ScheduleSource;
use crate::snapshot::{restore, SnapshotStore};
use crate::status::StatusBoard;

/// Hold an exclusive `flock` on `<data>/daemon.lock` for the daemon's life.
fn lock_data_dir(dir: &Path) -> Result<std::fs::File> {
    let path = dir.join("daemon.lock");
    let locked = crate::fs::try_lock(&path, true)
        .map_err(|e| Error::io(format!("cannot open {}: {e}", path.display())))?;
    let Some(file) = locked else {
        let owner = read_daemon_info(dir)
            .ok()
            .flatten()
            .map(|i| format!(" (pid {} at {})", i.pid, i.url))
            .unwrap_or_default();
        return Err(Error::unavailable(format!(
            "the data dir {} is locked by another process: another ruvector-storage daemon owns it{owner}",
            dir.display()
        )));
    };
    Ok(file)
}

/// Run the daemon until `shutdown` resolves. Must be called inside an actix
/// `System` (see `main.rs`).
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> Result<()> {
    let started = std::time::Instant::now();
    std::fs::create_dir_all(&config.data_dir).map_err(|e| {
        Error::io(format!(
            "cannot create data dir {}: {e}",
            config.data_dir.display()
        ))
    })?;
    // One daemon per data dir, decided before anything in it is touched.
    let _lock = lock_data_dir(&config.data_dir)?;
    let board = Arc::new(StatusBoard::new());
    // Jobs are validated before anything opens: a bad file fails the start.
    let source = match &config.schedule_file {
        Some(p) => ScheduleSource::File(p.clone()),
        None => ScheduleSource::Builtin,
    };
    let specs = source.load()?;
    // Never start an empty store next to a store in the wrong place.
    crate::engine::layout::check_data_dir(&config.data_dir)?;
    restore::recover(&config.data_dir)?;
    let snapshots_store = Arc::new(SnapshotStore::open(&config.data_dir)?);
    let cfg = config.clone();
    let engine = tokio::task::spawn_blocking(move || Engine::open(&cfg, Arc::new(SystemClock)))
        .await
        .map_err(|e| Error::internal(format!("store open task failed: {e}")))??;
    let slot = Arc::new(EngineSlot::new(engine));
    // Held until the daemon returns: free heap pages go back every second.
    let _trimmer =
        crate::alloc::Trimmer::start(Duration::from_millis(config.limits.trim_interval_ms));
    let store = Store {
        engine: slot.clone(),
        locks: Arc::new(KeyLocks::default()),
        status: board.clone(),
        metrics: Arc::default(),
    };
    let latest = store.metrics.clone();
    let addr = SyncArbiter::start(config.persistence_threads, move || {
        Persistence::new(store.clone())
    });
    let external = crate::external::ExternalBus::start(&config.bus.external);
    let reserve = crate::metrics::disk::DiskReserve::new(
        &config.data_dir,
        config.limits.disk_reserve_mb,
        crate::metrics::disk::reserve_disk(&config.data_dir),
    );
    let persistence = PersistenceHandle::new(addr, slot.clone(), latest)
        .with_external(external.clone())
        .with_reserve(Arc::new(reserve));

    let every = Duration::from_secs(config.status_interval_secs);
    let (p2, b2) = (persistence.clone(), board.clone());
    let metrics = actix::Supervisor::start(move |_| MetricsActor::new(p2, b2, every));

    let config_arc = Arc::new(config.clone());
    let snapshot_service = Arc::new(crate::snapshot::Service::new(
        snapshots_store,
        slot.clone(),
        config_arc.clone(),
        board.clone(),
        Arc::new(SystemClock),
    ));
    let backup_service = Arc::new(crate::backup::Service::new(
        slot.clone(),
        config_arc,
        board.clone(),
        snapshot_service.clone(),
    ));
    let snapshots = SnapshotActor::new(snapshot_service, board.clone()).start();
    let maintenance_cancel = tokio_util::sync::CancellationToken::new();
    let maintenance = Arc::new(crate::maintenance::Service::new(
        slot.clone(),
        board.clone(),
        Arc::new(SystemClock),
        maintenance_cancel.clone(),
    ));
    let compaction = CompactionActor::new(
        maintenance,
        board.clone(),
        crate::actors::Jobs::with_token(maintenance_cancel),
    )
    .start();
    let backups = BackupActor::new(backup_service, board.clone()).start();
    let scheduler =
        SchedulerActor::new(specs, source, Arc::new(SystemClock), board.clone()).start();
    let router = Router {
        persistence: persistence.clone(),
        snapshots,
        scheduler: scheduler.clone(),
        backups,
        compaction,
    };
    scheduler.do_send(Wire(router.clone()));
    let hup_scheduler = scheduler.clone();
    let sighup = tokio::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            tracing::error!("cannot install the SIGHUP handler; schedule reload is unavailable");
            return;
        };
        while hup.recv().await.is_some() {
            tracing::info!("SIGHUP: reloading the schedule");
            let _ = hup_scheduler.send(Reload).await;
        }
    });
    let auth = crate::auth::Authenticator::from_config(&config.auth)?.map(Arc::new);
    let tls = match &config.tls {
        Some(t) => Some(crate::tls::server_config(&t.cert, &t.key)?),
        None => None,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let state = Arc::new(RpcState::new(router.clone(), slot.clone(), auth.is_some()));
    let (server, bound) = rpc::start(
        rpc::Listen {
            address: &config.listen,
            max_request_bytes: config.limits.max_request_bytes,
            auth: auth.clone(),
            tls,
        },
        state.clone(),
    )
    .await?;
    board.set_state("rpc", "running");

    let info = DaemonInfo {
        pid: std::process::id(),
        address: bound.to_string(),
        url: format!("{scheme}://{bound}"),
        ws_url: crate::client::ws_url(&format!("{scheme}://{bound}")),
        data_dir: config.data_dir.display().to_string(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        started_at: iso_ms(SystemClock.now_ms()),
    };
    let info_json = serde_json::to_vec_pretty(&info).map_err(|e| Error::internal(e.to_string()))?;
    crate::fs::write_atomic(&daemon_json_path(&config.data_dir), &info_json)?;
    tracing::info!(
        address = %bound,
        data_dir = %config.data_dir.display(),
        sync = %config.sync,
        allocator = crate::alloc::allocator_name(),
        memory_budget_mb = config.limits.memory_mb,
        ready_ms = started.elapsed().as_millis() as u64,
        "ruvector-storage ready"
    );

    crate::notify::notify_or_log(&format!(
        "READY=1\nSTATUS=serving on {bound}, data in {}\nMAINPID={}",
        config.data_dir.display(),
        std::process::id()
    ));
    // Watchdog: ping at half the period, and only while the store answers
    // (or is paused for a restore), so a wedged or dead persistence actor
    // gets the daemon restarted.
    let watchdog = crate::notify::watchdog_interval().map(|period| {
        let probe = persistence.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period / 2);
            loop {
                tick.tick().await;
                let health = PersistenceOp::SystemHealth(SystemHealthParams {});
                match tokio::time::timeout(period / 2, probe.call(health)).await {
                    Ok(r) if alive(&r) => crate::notify::notify_or_log("WATCHDOG=1"),
                    other => tracing::error!(result = ?other.map(|r| r.map(|_| ())), "store health check failed; withholding the watchdog ping"),
                }
            }
        })
    });

    shutdown.await;
    crate::notify::notify_or_log("STOPPING=1\nSTATUS=shutting down: finishing requests, flushing");
    if let Some(w) = watchdog {
        w.abort();
    }
    tracing::info!("shutdown requested: refusing new requests");
    let deadline = Duration::from_secs(config.shutdown_timeout_secs);
    state.stop_accepting();
    sighup.abort();
    if let Some(x) = &external {
        x.stop();
    }
    let _ = server.stop();
    // Jobs first (backups stop at a safe point, restores finish), then the
    // requests still queued or running, then one flush.
    let left = router.stop_jobs(deadline).await;
    if left > 0 {
        tracing::warn!(
            jobs = left,
            "shutdown deadline passed with jobs still running"
        );
    }
    let quiesced = match persistence.drain_and_flush(deadline).await {
        Ok(q) => Some(q),
        Err(e) => {
            tracing::error!(error = %e, "final flush failed; the WAL still holds every acknowledged write");
            None
        }
    };
    board.set_state("rpc", "stopped");
    drop(metrics);
    if matches!(read_daemon_info(&config.data_dir), Ok(Some(i)) if i.pid == std::process::id()) {
        let _ = std::fs::remove_file(daemon_json_path(&config.data_dir));
    }
    tokio::time::timeout(Duration::from_secs(2), server.stopped())
        .await
        .ok();
    // Close RocksDB here, joining its background threads, rather than at
    // process exit where C++ static destructors race them.
    let closing = slot.clone();
    match tokio::task::spawn_blocking(move || closing.close(Duration::from_secs(5))).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "closing at exit; the store was flushed, no data is lost")
        }
        Err(e) => tracing::warn!(error = %e, "closing task failed; the store was flushed"),
    }
    drop(quiesced);
    tracing::info!("store flushed and closed; goodbye");
    Ok(())
}
