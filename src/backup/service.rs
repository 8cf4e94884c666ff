//! The backup service: what the backup actor runs. Each public method is
//! one operation (`ops` calls it through the `jobs!` list); the workflows
//! themselves are in the modules named by what they do — [`super::create`]
//! (with [`super::incremental`]), [`super::restore`] (with
//! [`super::build`]), [`super::archiver`], [`super::prune`],
//! [`super::copy`], [`super::drill`]. This file holds what they share: the
//! service's state (one backup or restore at a time, the archiver's
//! cursor, progress), how a location becomes a [`Target`], and the
//! `backup` status record.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use serde_json::{json, Value};

use super::archiver::{archive_pass, wal_replay, ArchiveCursor};
use super::audit::AuditReport;
use super::copy::copy_backups;
use super::create::create;
use super::drill::drill;
use super::locations::{Locations, StoreLayer};
use super::params::{
    CopyParams, CreateParams, ListParams, PruneParams, RestoreParams, VerifyParams,
    WalArchiveParams, WalReplayParams,
};
use super::restore::restore;
use crate::backup::{self, BackupManifest, Target};
use crate::clock::{iso_ms, Clock, SystemClock};
use crate::config::Config;
use crate::engine::EngineSlot;
use crate::error::{Error, Result};
use crate::snapshot::{self, SnapshotStore};
use crate::status::StatusBoard;

/// Everything the backup workflows use. Cheap to clone into a task.
#[derive(Clone)]
pub struct Service {
    pub(super) slot: Arc<EngineSlot>,
    pub(super) config: Arc<Config>,
    pub(super) board: Arc<StatusBoard>,
    pub(super) snapshots: Arc<snapshot::Service>,
    pub(super) snapshot_store: Arc<SnapshotStore>,
    /// One backup or restore at a time.
    pub(super) busy: Arc<tokio::sync::Mutex<()>>,
    /// One archiving pass at a time; holds where the last pass ended, so a
    /// pass does not list the archive again — unless the location or the
    /// store's history changed (a restore).
    pub(super) archiving: Arc<tokio::sync::Mutex<Option<ArchiveCursor>>>,
    /// The running backup, restore or drill (`backup_status`).
    pub(super) progress: Arc<backup::progress::Progress>,
    /// How locations are opened (config, keyring, progress, store layer).
    pub(super) locations: Locations,
}

pub(super) type Ctx = Service;

impl Service {
    pub fn new(
        slot: Arc<EngineSlot>,
        config: Arc<Config>,
        board: Arc<StatusBoard>,
        snapshots: Arc<snapshot::Service>,
    ) -> Self {
        let progress: Arc<backup::progress::Progress> = Arc::default();
        Service {
            slot,
            config: config.clone(),
            board,
            snapshot_store: snapshots.store().clone(),
            snapshots,
            busy: Arc::default(),
            archiving: Arc::default(),
            locations: Locations::new(config.clone(), progress.clone()),
            progress,
        }
    }

    /// Every object store this service opens goes through `layer` (e.g. a
    /// fault-injecting wrapper over the real store).
    pub fn with_store_layer(mut self, layer: StoreLayer) -> Self {
        self.locations = self.locations.with_layer(Some(layer));
        self
    }

    /// At start: remove what an interrupted backup left in its staging area.
    pub fn clean_staging(&self) {
        let _ = std::fs::remove_dir_all(staging_root(&self.config));
    }

    /// How often the continuous WAL archiver runs, when it is on.
    pub fn archive_every(&self) -> Option<std::time::Duration> {
        self.config.backup.archive_wal.then(|| {
            std::time::Duration::from_millis(self.config.backup.archive_interval_ms.max(50))
        })
    }

    /// One pass of the continuous WAL archiver; skipped while the previous
    /// one still runs. Errors go to the status board.
    pub async fn archive_tick(self: Arc<Self>) {
        let c = &*self;
        let Ok(mut last) = c.archiving.try_lock() else {
            return;
        };
        let encrypt = c.config.backup.encrypt;
        let result = match target_with(c, None, encrypt) {
            Ok(t) => archive_pass(c, &t, &mut last, encrypt).await,
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            if !matches!(
                e.kind,
                crate::error::ErrorKind::Unavailable | crate::error::ErrorKind::Paused
            ) {
                c.board
                    .record_error("backup", &format!("WAL archiving: {e}"));
            }
        }
    }

    pub async fn list(self: Arc<Self>, p: ListParams) -> Result<Value> {
        list(&self.with_keyring(p.keyring.as_deref()), &p).await
    }

    pub async fn verify(self: Arc<Self>, p: VerifyParams) -> Result<Value> {
        // Not under `busy`: its own counters.
        let r = verify(&self.with_keyring(p.keyring.as_deref()), &p).await?;
        if !r.ok {
            let first = &r.bad[0];
            self.board.record_error(
                "backup",
                &format!(
                    "backup verify of {} found {} problem(s), e.g. {}: {} ({})",
                    r.location,
                    r.bad.len(),
                    first.object,
                    first.problem,
                    first.breaks
                ),
            );
        }
        Ok(json!(r))
    }

    /// The service's locations, with another keyring when one is given.
    fn with_keyring(&self, keyring: Option<&str>) -> Locations {
        match keyring {
            Some(k) => self.locations.clone().with_keyring(Some(k.into())),
            None => self.locations.clone(),
        }
    }

    pub async fn status(self: Arc<Self>) -> Result<Value> {
        let (running, last) = self.progress.report();
        Ok(json!({"running": running, "last": last}))
    }

    pub async fn create(self: Arc<Self>, p: CreateParams) -> Result<Value> {
        let c = &*self;
        let started = Instant::now();
        let result = async {
            let _busy = c.busy.lock().await;
            let _progress = Running::begin(&c.progress, "backup_create");
            let explicit = p.destination.is_some();
            let mut made = create(c, p).await;
            // The second destination: replicate what was just made. A failed
            // copy is reported with the backup, which itself stands.
            if let (Ok(v), Some(second), false) = (&mut made, &c.config.backup.copy_to, explicit) {
                let copy = CopyParams {
                    from: None,
                    to: second.clone(),
                    name: v["name"].as_str().map(str::to_string),
                };
                v["copy"] = match copy_backups(c, copy).await {
                    Ok(r) => r,
                    Err(e) => {
                        c.board
                            .record_error("backup", &format!("copy to {second}: {e}"));
                        json!({"error": e.message})
                    }
                };
            }
            made
        }
        .await;
        c.record("backup_create", started, &result);
        result
    }

    pub async fn restore(self: Arc<Self>, p: RestoreParams) -> Result<Value> {
        let c = &*self;
        let started = Instant::now();
        let result = async {
            let _busy = c.busy.lock().await;
            let _progress = Running::begin(&c.progress, "backup_restore");
            restore(c, p).await
        }
        .await;
        c.record("backup_restore", started, &result);
        result
    }

    pub async fn drill(self: Arc<Self>) -> Result<Value> {
        let c = &*self;
        let started = Instant::now();
        let result = async {
            let _busy = c.busy.lock().await;
            let _progress = Running::begin(&c.progress, "backup_drill");
            drill(c).await
        }
        .await;
        c.record("backup_drill", started, &result);
        result
    }

    pub async fn wal_archive(self: Arc<Self>, p: WalArchiveParams) -> Result<Value> {
        let c = &*self;
        let mut last = c.archiving.lock().await;
        let encrypt = c.config.backup.encrypt;
        let t = target_with(c, p.to.as_deref(), encrypt)?;
        archive_pass(c, &t, &mut last, encrypt)
            .await
            .map(|r| json!(r))
    }

    pub async fn wal_replay(self: Arc<Self>, p: WalReplayParams) -> Result<Value> {
        wal_replay(&self, p).await
    }

    pub async fn prune(self: Arc<Self>, p: PruneParams) -> Result<Value> {
        let c = &*self;
        let _busy = c.busy.lock().await;
        let _archiving = c.archiving.lock().await;
        super::prune::run(c, p).await
    }

    pub async fn copy(self: Arc<Self>, p: CopyParams) -> Result<Value> {
        copy_backups(&self, p).await
    }

    /// The `backup` status record: the last create, restore or drill.
    fn record(&self, method: &str, started: Instant, result: &Result<Value>) {
        let at = iso_ms(SystemClock.now_ms());
        self.board.update_backup(|record| {
            record.last_operation = Some(crate::status::LastOperation {
                operation: method.to_string(),
                ok: result.is_ok(),
                error: result.as_ref().err().map(|e| e.message.clone()),
                duration_ms: started.elapsed().as_secs_f64() * 1000.0,
                at: at.clone(),
            });
            if method == "backup_drill" {
                record.drill = Some(match result {
                    Ok(v) => v.clone(),
                    Err(e) => json!({"ok": false, "error": e.message, "at": at}),
                });
            }
            if method == "backup_create" {
                record.last_result = Some(match result {
                    Ok(_) => crate::status::Outcome::Ok,
                    Err(_) => crate::status::Outcome::Failed,
                });
                if let Ok(v) = result {
                    record.last_backup = Some(crate::status::LastBackup {
                        last_backup: v["name"].as_str().map(str::to_string),
                        last_backup_at_ms: v["created_at_ms"].as_i64(),
                        last_backup_at: v["created_at"].as_str().map(str::to_string),
                        last_backup_sequence: v["sequence"].as_u64(),
                        bytes_uploaded: v["uploaded_bytes"].as_u64(),
                        destination: v["destination"].as_str().map(str::to_string),
                    });
                }
            }
        });
        if let Err(e) = result {
            self.board.record_error("backup", &format!("{method}: {e}"));
        }
    }
}

pub(super) fn staging_root(config: &Config) -> PathBuf {
    config.data_dir.join("backup-staging")
}

pub(super) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::internal(format!("backup task failed: {e}")))?
}

/// The backups in a location, oldest first.
pub(super) async fn list(loc: &Locations, p: &ListParams) -> Result<Value> {
    let t = match loc.target(p.location.as_deref()) {
        Ok(t) => t,
        // A local location not made yet holds no backups (as an empty
        // bucket prefix holds none).
        Err(e) if e.kind == crate::error::ErrorKind::NotFound => {
            let url = match &p.location {
                Some(u) => u.clone(),
                None => backup::default_destination(&loc.config)?,
            };
            return Ok(json!({"location": url, "backups": [], "count": 0}));
        }
        Err(e) => return Err(e),
    };
    let rows: Vec<Value> = t.list().await?.iter().map(summary).collect();
    Ok(json!({"location": t.url, "backups": rows, "count": rows.len()}))
}

/// Audit a location (its own counters, not the running operation's).
pub(super) async fn verify(loc: &Locations, p: &VerifyParams) -> Result<AuditReport> {
    let t = loc
        .target(p.location.as_deref())?
        .with_progress(Arc::default());
    let fraction = match (&p.read_data, &p.read_data_subset) {
        (true, None) => 1.0,
        (false, Some(s)) => subset(s)?,
        (false, None) => 0.0,
        (true, Some(_)) => {
            return Err(Error::invalid(
                "give either read-data or read-data-subset, not both",
            ))
        }
    };
    t.audit(p.name.as_deref(), fraction).await
}

pub(super) fn target(c: &Ctx, url: Option<&str>) -> Result<Target> {
    c.locations.target(url)
}

pub(super) fn target_with(c: &Ctx, url: Option<&str>, create_keyring: bool) -> Result<Target> {
    c.locations.target_with(url, create_keyring)
}

/// Open a location, through the service's store layer if it has one.
pub(super) fn open_target(c: &Ctx, url: &str) -> Result<Target> {
    c.locations.open(url)
}

/// `"10%"` or `"10"` → 0.10.
pub(super) fn subset(p: &str) -> Result<f64> {
    let n: f64 = p.trim().trim_end_matches('%').parse().map_err(|_| {
        Error::invalid(format!(
            "read-data-subset {p:?}: expected a percentage like 10%"
        ))
    })?;
    if !(0.0..=100.0).contains(&n) || n == 0.0 {
        return Err(Error::invalid(format!(
            "read-data-subset {p:?}: must be in (0, 100]%"
        )));
    }
    Ok(n / 100.0)
}

/// Marks an operation running in the progress until dropped.
pub(super) struct Running<'a>(&'a backup::progress::Progress);

impl<'a> Running<'a> {
    pub(super) fn begin(p: &'a backup::progress::Progress, operation: &str) -> Running<'a> {
        p.begin(operation);
        Running(p)
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.end();
    }
}

pub(super) fn summary(m: &BackupManifest) -> Value {
    json!({"name": m.name, "kind": m.kind, "method": if m.is_wal() { "wal" } else { "files" },
        "parent": m.parent, "base": m.base, "wal_segments": m.wal.len(), "created_at": m.created_at,
        "created_at_ms": m.created_at_ms, "first_sequence": m.first_sequence, "sequence": m.sequence,
        "files": m.files.len(), "total_bytes": m.total_bytes, "uploaded_bytes": m.uploaded_bytes,
        "uploaded_objects": m.uploaded_objects})
}
