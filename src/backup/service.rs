//! The backup workflows the backup actor runs: backups to object storage,
//! their verification, restores, pruning, copies, drills and WAL archiving.
//! A backup cuts a checkpoint of its own (in `<data>/backup-staging/`),
//! reads its exact sequence from a read-only open, uploads it
//! ([`crate::backup`]) and deletes it. A restore into the running daemon
//! downloads into a snapshot directory and hands it to the snapshot
//! service's restore (quiesce, undo snapshot, atomic swap). A restore
//! `--to PATH` is built beside the path, opened read-only to prove it is a
//! store, and only then renamed into place.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use serde_json::{json, Value};

use super::params::{
    CopyParams, CreateParams, ListParams, Method, PruneParams, RestoreParams, VerifyParams,
    WalArchiveParams, WalReplayParams,
};
use crate::backup::{self, BackupManifest, Target};
use crate::clock::{iso_ms, Clock, SystemClock};
use crate::config::Config;
use crate::engine::EngineSlot;
use crate::error::{Error, Result};
use crate::snapshot::{self, Kind, SnapshotStore};
use crate::status::StatusBoard;

/// Everything the backup workflows use. Cheap to clone into a task.
#[derive(Clone)]
pub struct Service {
    slot: Arc<EngineSlot>,
    config: Arc<Config>,
    board: Arc<StatusBoard>,
    snapshots: Arc<snapshot::Service>,
    snapshot_store: Arc<SnapshotStore>,
    /// One backup or restore at a time.
    busy: Arc<tokio::sync::Mutex<()>>,
    /// One archiving pass at a time; holds where the last pass ended, so a
    /// pass does not list the archive again — unless the location or the
    /// store's history changed (a restore).
    archiving: Arc<tokio::sync::Mutex<Option<ArchiveCursor>>>,
    /// The running backup, restore or drill (`backup_status`).
    progress: Arc<backup::progress::Progress>,
}

type Ctx = Service;

impl Service {
    pub fn new(
        slot: Arc<EngineSlot>,
        config: Arc<Config>,
        board: Arc<StatusBoard>,
        snapshots: Arc<snapshot::Service>,
    ) -> Self {
        Service {
            slot,
            config,
            board,
            snapshot_store: snapshots.store().clone(),
            snapshots,
            busy: Arc::default(),
            archiving: Arc::default(),
            progress: Arc::default(),
        }
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
        let t = target(&self, p.location.as_deref())?;
        let list = t.list().await?;
        let rows: Vec<Value> = list.iter().map(summary).collect();
        Ok(json!({"location": t.url, "backups": rows, "count": rows.len()}))
    }

    pub async fn verify(self: Arc<Self>, p: VerifyParams) -> Result<Value> {
        // Not under `busy`: its own counters.
        let t = target(&self, p.location.as_deref())?.with_progress(Arc::default());
        let m = t.resolve(p.name.as_deref()).await?;
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
        Ok(json!(t.verify(&m, fraction).await?))
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
        prune(c, p).await
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

fn staging_root(config: &Config) -> PathBuf {
    config.data_dir.join("backup-staging")
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::internal(format!("backup task failed: {e}")))?
}

/// The default destination: `<data-dir>/backups` (absolute).
pub fn default_destination(config: &Config) -> Result<String> {
    if let Some(d) = &config.backup.destination {
        return Ok(d.clone());
    }
    let dir = std::path::absolute(config.data_dir.join("backups"))
        .map_err(|e| Error::io(format!("resolving the backup directory: {e}")))?;
    Ok(format!("file://{}", dir.display()))
}

fn target(c: &Ctx, url: Option<&str>) -> Result<Target> {
    target_with(c, url, false)
}

fn keyring_path(config: &Config) -> PathBuf {
    config
        .backup
        .keyring
        .clone()
        .unwrap_or_else(|| config.data_dir.join("backup-keyring.json"))
}

/// A target with the keyring attached when there is one (created when
/// `create_keyring`: an encrypted backup is about to be made).
fn target_with(c: &Ctx, url: Option<&str>, create_keyring: bool) -> Result<Target> {
    let url = match url {
        Some(u) => u.to_string(),
        None => default_destination(&c.config)?,
    };
    let path = keyring_path(&c.config);
    let keyring = if create_keyring {
        Some(backup::crypto::Keyring::load_or_create(
            &path,
            &iso_ms(SystemClock.now_ms()),
        )?)
    } else if path.exists() {
        Some(backup::crypto::Keyring::load(&path)?)
    } else {
        None
    };
    Ok(Target::open(&url)?
        .with_keyring(keyring.map(Arc::new))
        .with_progress(c.progress.clone()))
}

/// `"10%"` or `"10"` → 0.10.
fn subset(p: &str) -> Result<f64> {
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
struct Running<'a>(&'a backup::progress::Progress);

impl<'a> Running<'a> {
    fn begin(p: &'a backup::progress::Progress, operation: &str) -> Running<'a> {
        p.begin(operation);
        Running(p)
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.end();
    }
}

fn summary(m: &BackupManifest) -> Value {
    json!({"name": m.name, "kind": m.kind, "method": if m.is_wal() { "wal" } else { "files" },
        "parent": m.parent, "base": m.base, "wal_segments": m.wal.len(), "created_at": m.created_at,
        "created_at_ms": m.created_at_ms, "first_sequence": m.first_sequence, "sequence": m.sequence,
        "files": m.files.len(), "total_bytes": m.total_bytes, "uploaded_bytes": m.uploaded_bytes,
        "uploaded_objects": m.uploaded_objects})
}

async fn create(c: &Ctx, p: CreateParams) -> Result<Value> {
    let started = Instant::now();
    let method = p.method;
    if p.full && method == Method::Wal {
        return Err(Error::invalid(
            "a full backup uploads files; method wal is for incremental backups",
        ));
    }
    let encrypt = p.encrypt || c.config.backup.encrypt;
    let t = target_with(c, p.destination.as_deref(), encrypt)?;
    let name = p
        .name
        .clone()
        .unwrap_or_else(|| snapshot::default_name("backup", SystemClock.now_ms()));
    if t.exists(&name).await? {
        return Err(Error::exists(format!(
            "backup {name:?} already exists in {}",
            t.url
        )));
    }
    if encrypt {
        mark_archive_encrypted(c, &t).await?;
    }
    let mut why_files = None;
    if !p.full && method != Method::Files {
        match wal_incremental(c, &t, &name, encrypt, method == Method::Wal).await {
            Ok(Ok(m)) => {
                let mut v = summary(&m);
                v["destination"] = json!(t.url);
                v["duration_ms"] = json!(started.elapsed().as_secs_f64() * 1000.0);
                return Ok(v);
            }
            Ok(Err(why)) => why_files = Some(why),
            Err(e) if method == Method::Wal => {
                return Err(e.context("a WAL-based incremental backup"))
            }
            Err(e) => {
                // Not routine (a gap or a damaged segment in the archive,
                // the archive unreachable, another history): worth an
                // alert, though this backup goes on with files.
                c.board.record_error(
                    "backup",
                    &format!(
                        "backup {name}: a WAL-based incremental was not possible, so it \
                         uploads files instead: {e}"
                    ),
                );
                why_files = Some(e.message)
            }
        }
    }
    let stage = staging_root(&c.config).join(&name);
    let (c2, stage2) = (c.clone(), stage.clone());
    // Checkpoint, exact sequence from a read-only open, CRC32C per file.
    let cut = blocking(move || {
        let _ = std::fs::remove_dir_all(&stage2);
        if let Some(parent) = stage2.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| Error::io(format!("{}: {e}", parent.display())))?;
        }
        let engine = c2.slot.get()?;
        let history = engine.history().to_string();
        rocksdb::checkpoint::Checkpoint::new(engine.db())?
            .create_checkpoint(&stage2)
            .map_err(|e| Error::from(e).context("backup checkpoint"))?;
        drop(engine);
        let sequence = checkpoint_sequence(&stage2, &c2.config)?;
        let files = store_files(&stage2)?
            .into_iter()
            .map(|f| (f.name, f.crc32c))
            .collect::<Vec<_>>();
        Ok((sequence, files, history))
    })
    .await;
    let result = match cut {
        Ok((sequence, files, history)) => {
            t.upload(backup::UploadSpec {
                dir: &stage,
                files: &files,
                name: &name,
                sequence,
                full: p.full,
                encrypt,
                now_ms: SystemClock.now_ms(),
                history: Some(history),
            })
            .await
        }
        Err(e) => Err(e),
    };
    let _ = std::fs::remove_dir_all(&stage);
    let m = result?;
    let mut v = summary(&m);
    v["destination"] = json!(t.url);
    v["duration_ms"] = json!(started.elapsed().as_secs_f64() * 1000.0);
    v["mb_per_s"] = json!(m.total_bytes as f64 / 1e6 / started.elapsed().as_secs_f64().max(1e-9));
    if let Some(why) = why_files {
        v["why_not_wal"] = json!(why);
    }
    Ok(v)
}

/// A WAL-based incremental: archive the WAL up to the store's current
/// sequence, then record the segments from the base backup to it.
/// `Ok(Err(why))`: possible, but `auto` prefers files (the WAL since the
/// base is over half the base's size).
async fn wal_incremental(
    c: &Ctx,
    t: &Target,
    name: &str,
    encrypt: bool,
    forced: bool,
) -> Result<std::result::Result<BackupManifest, String>> {
    let backups = t.list().await?;
    let Some(parent) = backups.last() else {
        let why = format!(
            "no backup in {} to build on; the first backup uploads files",
            t.url
        );
        // The normal first run for `auto`; an error only when WAL was asked for.
        return if forced {
            Err(Error::not_found(why))
        } else {
            Ok(Err(why))
        };
    };
    if parent.is_sealed() {
        return Err(Error::invalid(format!(
            "backup {:?} is encrypted and the keyring is not available",
            parent.name
        )));
    }
    let base_name = parent.base.clone().unwrap_or_else(|| parent.name.clone());
    let base = backups
        .iter()
        .find(|b| b.name == base_name)
        .ok_or_else(|| Error::not_found(format!("base backup {base_name:?} is missing")))?;
    if encrypt != base.encryption.is_some() {
        return Err(Error::invalid(format!(
            "base backup {:?} is {}encrypted and this one would {}be",
            base.name,
            if base.encryption.is_some() {
                ""
            } else {
                "not "
            },
            if encrypt { "" } else { "not " }
        )));
    }
    let (upto, history) = {
        let engine = c.slot.get()?;
        (
            engine.db().latest_sequence_number(),
            engine.history().to_string(),
        )
    };
    if base.history.as_deref() != Some(history.as_str()) {
        return Err(Error::invalid(format!(
            "base backup {:?} is of another store history (the store was restored since it was made)",
            base.name
        )));
    }
    let mut known = std::collections::HashMap::new();
    let (mut uploaded_bytes, mut uploaded_objects) = (0, 0);
    let wal = {
        let mut last = c.archiving.lock().await;
        loop {
            let r = archive_pass(c, t, &mut last, encrypt).await?;
            if let (Some(o), Some(h)) = (&r.segment, &r.sha256) {
                known.insert(o.clone(), h.clone());
                uploaded_bytes += r.bytes;
                uploaded_objects += 1;
            }
            if r.to_sequence >= upto {
                break;
            }
            if r.batches == 0 {
                return Err(Error::unavailable(format!(
                    "the WAL archive stops at sequence {} before the store's {upto}",
                    r.to_sequence
                )));
            }
        }
        backup::wal::Archive::new(t)
            .cover(base.sequence, upto)
            .await?
    };
    if encrypt {
        if let Some(w) = wal.iter().find(|w| !w.object.ends_with(".eseg")) {
            return Err(Error::invalid(format!(
                "WAL segment {} was archived without encryption",
                w.object
            )));
        }
    }
    let wal_bytes: u64 = wal.iter().map(|w| w.size).sum();
    if !forced && wal_bytes.saturating_mul(2) > base.total_bytes {
        return Ok(Err(format!(
            "the WAL since base backup {:?} is {wal_bytes} bytes, over half of its {} bytes",
            base.name, base.total_bytes
        )));
    }
    let wal = backup::wal::Archive::new(t).vouch(wal, &known).await?;
    t.commit_wal(backup::WalBackupSpec {
        name,
        parent,
        base,
        sequence: upto,
        wal,
        uploaded_bytes,
        uploaded_objects,
        encrypt,
        now_ms: SystemClock.now_ms(),
        history,
    })
    .await
    .map(Ok)
}

/// The last sequence of a checkpoint, from a read-only open.
fn checkpoint_sequence(dir: &Path, config: &Config) -> Result<u64> {
    Ok(crate::engine::open_read_only(dir, config)?.latest_sequence_number())
}

/// A point-in-time target.
#[derive(Debug, Clone, Copy)]
enum Pitr {
    Sequence(u64),
    TimeMs(i64),
}

fn parse_time(t: &str) -> Result<i64> {
    if let Ok(ms) = t.trim().parse::<i64>() {
        return Ok(ms);
    }
    chrono::DateTime::parse_from_rfc3339(t.trim())
        .map(|d| d.timestamp_millis())
        .map_err(|e| {
            Error::invalid(format!(
                "to-time {t:?}: expected RFC 3339 (2026-11-25T10:00:00Z) or epoch ms: {e}"
            ))
        })
}

async fn restore(c: &Ctx, p: RestoreParams) -> Result<Value> {
    let started = Instant::now();
    let t = target(c, p.from.as_deref())?;
    let pitr = match (p.to_sequence, &p.to_time) {
        (Some(_), Some(_)) => {
            return Err(Error::invalid(
                "give either to-sequence or to-time, not both",
            ))
        }
        (Some(s), None) => Some(Pitr::Sequence(s)),
        (None, Some(ts)) => Some(Pitr::TimeMs(parse_time(ts)?)),
        (None, None) => None,
    };
    let m = match (pitr, p.name.as_deref()) {
        (None, name) => t.resolve(name).await?,
        (Some(at), name) => {
            // Bases are backups with files; the archive carries them on.
            let fits = |b: &BackupManifest| match at {
                Pitr::Sequence(s) => b.sequence <= s,
                Pitr::TimeMs(ms) => b.created_at_ms <= ms,
            };
            match name {
                Some(n) => {
                    let mut b = t.manifest(n).await?;
                    if let Some(base) = &b.base {
                        b = t.manifest(base).await?;
                    }
                    if !fits(&b) {
                        return Err(Error::invalid(format!(
                            "backup {n:?} (sequence {}, {}) is after the requested point; name an earlier one or leave the name out",
                            b.sequence, b.created_at
                        )));
                    }
                    b
                }
                None => t
                    .list()
                    .await?
                    .into_iter()
                    .rev()
                    .find(|b| !b.is_wal() && fits(b))
                    .ok_or_else(|| {
                        Error::not_found(format!(
                            "no backup in {} is at or before the requested point",
                            t.url
                        ))
                    })?,
            }
        }
    };
    let plan = plan_restore(&t, m, pitr).await?;
    match &p.to {
        Some(to) => restore_to_path(c, &t, &plan, Path::new(to), p.force, started).await,
        None => restore_live(c, &t, &plan, started).await,
    }
}

/// What a restore downloads and replays.
struct RestorePlan {
    /// The backup asked for.
    name: String,
    /// The backup with files it starts from.
    base: BackupManifest,
    pitr: Option<Pitr>,
    /// The segments to replay (a WAL-based backup's, checked against its
    /// SHA-256s); None: whatever the archive holds.
    segments: Option<Vec<backup::wal::Segment>>,
}

async fn plan_restore(t: &Target, m: BackupManifest, pitr: Option<Pitr>) -> Result<RestorePlan> {
    let Some(base) = &m.base else {
        return Ok(RestorePlan {
            name: m.name.clone(),
            base: m,
            pitr,
            segments: None,
        });
    };
    let base = t
        .manifest(base)
        .await
        .map_err(|e| e.context(format!("the base of backup {:?}", m.name)))?;
    if m.base_checksum.as_ref() != Some(&base.checksum) || base.sequence > m.sequence {
        return Err(Error::corruption(format!(
            "backup {:?} was made on another base {:?} than the one in {} now (checksum or sequence differ); nothing was restored",
            m.name, base.name, t.url
        )));
    }
    Ok(RestorePlan {
        name: m.name.clone(),
        base,
        pitr: Some(Pitr::Sequence(m.sequence)),
        segments: Some(m.wal.iter().map(Into::into).collect()),
    })
}

/// What a restore built in a directory.
struct Built {
    bytes: u64,
    sequence: u64,
    replayed_batches: usize,
    note: Option<String>,
}

/// Download the base backup into `dir` and replay the WAL archive onto it
/// up to the point, if one is given.
async fn build(c: &Ctx, t: &Target, plan: &RestorePlan, dir: &Path) -> Result<Built> {
    let m = &plan.base;
    let bytes = t.download(m, dir).await?;
    let Some(at) = plan.pitr else {
        return Ok(Built {
            bytes,
            sequence: m.sequence,
            replayed_batches: 0,
            note: None,
        });
    };
    let archive = backup::wal::Archive::new(t);
    let listed;
    let segments = match &plan.segments {
        Some(s) => s,
        None => {
            if let (Some(a), Some(b)) = (archive.history().await?, &m.history) {
                if a != *b {
                    return Err(Error::invalid(format!(
                        "the WAL archive in {} is of another store history than backup {:?}; it cannot roll that backup forward",
                        t.url, m.name
                    )));
                }
            }
            listed = archive.segments().await?;
            &listed
        }
    };
    let (batches, reached, stopped) = match at {
        Pitr::Sequence(s) => {
            archive
                .batches_in(segments, m.sequence, |b| b.sequence <= s)
                .await?
        }
        Pitr::TimeMs(ms) => {
            archive
                .batches_in(segments, m.sequence, |b| b.commit_ms <= ms)
                .await?
        }
    };
    let note = match at {
        Pitr::Sequence(s) if reached < s => {
            return Err(Error::not_found(format!(
                "the WAL archive in {} reaches only sequence {reached}; cannot restore to {s}",
                t.url
            )))
        }
        Pitr::TimeMs(ms) if !stopped => Some(format!(
            "the WAL archive ends at sequence {reached}; writes after it and before {} were not archived",
            iso_ms(ms)
        )),
        _ => None,
    };
    let (config, dir2) = (c.config.clone(), dir.to_path_buf());
    let n = batches.len();
    let replay_bytes: u64 = batches.iter().map(|b| b.data.len() as u64).sum();
    t.progress.phase("replaying WAL", n as u64, replay_bytes);
    let progress = t.progress.clone();
    blocking(move || {
        let (mut opts, cfs) = crate::engine::descriptors(&config);
        opts.create_if_missing(false);
        let db = rocksdb::DB::open_cf_descriptors(&opts, &dir2, cfs)?;
        backup::wal::replay(&db, &batches, |b| progress.advance(b.data.len() as u64))?;
        let cfs: Vec<_> = crate::engine::Cf::ALL
            .iter()
            .filter_map(|cf| db.cf_handle(cf.name()))
            .collect();
        db.flush_cfs_opt(&cfs, &rocksdb::FlushOptions::default())?;
        Ok(())
    })
    .await?;
    Ok(Built {
        bytes,
        sequence: reached,
        replayed_batches: n,
        note,
    })
}

async fn restore_to_path(
    c: &Ctx,
    t: &Target,
    plan: &RestorePlan,
    to: &Path,
    force: bool,
    started: Instant,
) -> Result<Value> {
    if !to.is_absolute() {
        return Err(Error::invalid(format!(
            "--to {}: must be an absolute path",
            to.display()
        )));
    }
    let live = std::path::absolute(&c.config.data_dir).unwrap_or(c.config.data_dir.clone());
    if to.starts_with(&live) {
        return Err(Error::invalid(format!(
            "--to {} is inside the daemon's data dir; restore into the running daemon without --to instead",
            to.display()
        )));
    }
    if !backup::is_empty_dir(to)? && !force {
        return Err(Error::invalid(format!(
            "{} is not empty; pass --force to replace it (nothing was changed)",
            to.display()
        )));
    }
    let partial = backup::partial_path(to);
    let _ = std::fs::remove_dir_all(&partial);
    let m = &plan.base;
    let built = match build(c, t, plan, &partial).await {
        Ok(b) => b,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&partial);
            return Err(e.context(format!(
                "restoring backup {:?}; nothing was written to {}",
                plan.name,
                to.display()
            )));
        }
    };
    let (config, partial2, to2) = (c.config.clone(), partial.clone(), to.to_path_buf());
    let keys = blocking(move || {
        // A store restored elsewhere starts its own history.
        crate::engine::fork_history(&partial2, &config)?;
        let keys = crate::engine::read_all_read_only(&partial2, &config)
            .map_err(|e| e.context("the restored files do not open as a store"))?;
        // Only now does anything appear at `to`.
        if to2.exists() {
            let old = to2.with_file_name(format!(
                ".{}.old-{}",
                to2.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                std::process::id()
            ));
            std::fs::rename(&to2, &old)
                .map_err(|e| Error::io(format!("moving {} aside: {e}", to2.display())))?;
            if let Err(e) = std::fs::rename(&partial2, &to2) {
                // Put the old contents back, or say where they are.
                let back = match std::fs::rename(&old, &to2) {
                    Ok(()) => format!("{} is as it was", to2.display()),
                    Err(e2) => format!(
                        "its previous contents are at {} (moving them back failed: {e2})",
                        old.display()
                    ),
                };
                return Err(Error::io(format!(
                    "moving the restored store to {}: {e}; {back}",
                    to2.display()
                )));
            }
            let _ = std::fs::remove_dir_all(&old);
        } else {
            std::fs::rename(&partial2, &to2)
                .map_err(|e| Error::io(format!("{}: {e}", to2.display())))?;
        }
        if let Some(parent) = to2.parent() {
            crate::fs::fsync_dir(parent)?;
        }
        Ok(keys)
    })
    .await;
    if keys.is_err() {
        let _ = std::fs::remove_dir_all(&partial);
    }
    let keys = keys?;
    Ok(
        json!({"restored": plan.name, "base": m.name, "to": to.display().to_string(), "base_sequence": m.sequence,
        "sequence": built.sequence, "replayed_batches": built.replayed_batches, "note": built.note,
        "files": m.files.len(), "bytes": built.bytes, "keys": keys,
        "duration_ms": started.elapsed().as_secs_f64() * 1000.0}),
    )
}

/// Build into a snapshot and let the snapshot actor swap it in.
async fn restore_live(c: &Ctx, t: &Target, plan: &RestorePlan, started: Instant) -> Result<Value> {
    let m = &plan.base;
    let now = SystemClock.now_ms();
    let snap = snapshot::default_name(&format!("restore-{}", plan.name), now);
    let final_dir = c.snapshot_store.dir(&snap);
    let tmp = c.snapshot_store.root().join(format!(".tmp-{snap}"));
    let _ = std::fs::remove_dir_all(&tmp);
    let built = build(c, t, plan, &tmp).await;
    let (tmp2, final2, snap2) = (tmp.clone(), final_dir.clone(), snap.clone());
    let published = match built {
        Ok(b) => {
            blocking(move || {
                publish_as_snapshot(&tmp2, &final2, &snap2, b.sequence, now)?;
                Ok(b)
            })
            .await
        }
        Err(e) => Err(e),
    };
    let built = match published {
        Ok(b) => b,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(e.context(format!(
                "restoring backup {:?}; the live store is unchanged",
                plan.name
            )));
        }
    };
    let restored = c.snapshots.clone().restore(snap.clone()).await?;
    Ok(
        json!({"restored": plan.name, "base": m.name, "into": "daemon", "base_sequence": m.sequence,
        "sequence": built.sequence, "replayed_batches": built.replayed_batches, "note": built.note,
        "via_snapshot": snap, "undo_snapshot": restored["undo_snapshot"], "files": m.files.len(),
        "bytes": built.bytes, "duration_ms": started.elapsed().as_secs_f64() * 1000.0}),
    )
}

/// The files of a store directory (checkpoint or restored store), sorted,
/// each with its size and CRC32C; RocksDB's `LOCK` and info logs and a
/// snapshot manifest are not part of the store.
fn store_files(dir: &Path) -> Result<Vec<snapshot::FileEntry>> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(format!("{}: {e}", dir.display())))?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != snapshot::MANIFEST && n != "LOCK" && !n.starts_with("LOG"))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|name| {
            let (crc, size) = crate::fs::crc32c_file(&dir.join(&name))
                .map_err(|e| Error::io(format!("{name}: {e}")))?;
            Ok(snapshot::FileEntry {
                name,
                size,
                crc32c: format!("{crc:08x}"),
            })
        })
        .collect()
}

/// Write a snapshot manifest for the files in `tmp` and publish it.
fn publish_as_snapshot(
    tmp: &Path,
    final_dir: &Path,
    name: &str,
    sequence: u64,
    now: i64,
) -> Result<()> {
    let files = store_files(tmp)?;
    let manifest = snapshot::Manifest {
        format_version: snapshot::FORMAT_VERSION,
        name: name.to_string(),
        kind: Kind::Manual,
        created_at: iso_ms(now),
        created_at_ms: now,
        latest_sequence: sequence,
        total_bytes: files.iter().map(|f| f.size).sum(),
        files,
    };
    let body = serde_json::to_vec_pretty(&manifest).map_err(|e| Error::internal(e.to_string()))?;
    crate::fs::write_atomic(&tmp.join(snapshot::MANIFEST), &body)?;
    std::fs::rename(tmp, final_dir)
        .map_err(|e| Error::io(format!("publishing {}: {e}", final_dir.display())))?;
    crate::fs::fsync_dir(final_dir.parent().unwrap_or(final_dir))
}

/// Where the archiver resumes: after the last archived sequence; on an
/// empty archive after its recorded start (`wal/START`), which is set on
/// the first pass to the newest backup's sequence (or the store's latest).
/// Where the last archiving pass to a location ended.
#[derive(Debug, Clone)]
struct ArchiveCursor {
    url: String,
    history: String,
    sequence: u64,
    /// The archive's newest segment is encrypted: every later one is too.
    encrypted: bool,
}

/// Where archiving to `t` continues from, and whether its newest segment is
/// encrypted.
async fn archive_start(
    t: &Target,
    engine: &crate::engine::Engine,
    history: &str,
) -> Result<(u64, bool)> {
    let archive = backup::wal::Archive::new(t);
    match archive.history().await? {
        Some(h) if h != history => {
            return Err(Error::invalid(format!(
                "the WAL archive in {} is of another store history ({h}; the store is {history}): the store was restored since, or another store archives there; archive to a new location",
                t.url
            )))
        }
        Some(_) => {}
        None => archive.set_history(history).await?,
    }
    let encrypted = archive.is_encrypted().await?;
    if let Some(newest) = archive.segments().await?.iter().max_by_key(|s| s.last) {
        return Ok((newest.last, encrypted || newest.object.ends_with(".eseg")));
    }
    if let Some(start) = archive.start().await? {
        return Ok((start, encrypted));
    }
    let start = match t.list().await?.pop() {
        Some(b) => b.sequence,
        None => engine.db().latest_sequence_number(),
    };
    archive.set_start(start).await?;
    Ok((start, encrypted))
}

/// An encrypted backup to `t`: from now on its WAL archive encrypts too
/// (the marker, and the cursor of this process's archiver).
async fn mark_archive_encrypted(c: &Ctx, t: &Target) -> Result<()> {
    let mut last = c.archiving.lock().await;
    if last
        .as_ref()
        .is_some_and(|cur| cur.url == t.url && cur.encrypted)
    {
        return Ok(()); // marked (or found marked) already
    }
    backup::wal::Archive::new(t)
        .mark_encrypted(&iso_ms(SystemClock.now_ms()))
        .await?;
    if let Some(cur) = last.as_mut().filter(|cur| cur.url == t.url) {
        cur.encrypted = true;
    }
    Ok(())
}

/// One archiving pass to `t`.
/// `last`: where the previous pass to this process ended (the caller
/// holds the `archiving` lock). Encryption is sticky: once an encrypted
/// backup was made to the location (`wal/ENCRYPTED`) or the archive holds
/// an encrypted segment, later passes encrypt too, whatever `encrypt` says,
/// so turning encryption on for backups never leaves later WAL in plaintext.
async fn archive_pass(
    c: &Ctx,
    t: &Target,
    last: &mut Option<ArchiveCursor>,
    encrypt: bool,
) -> Result<backup::wal::PassResult> {
    let started_ms = SystemClock.now_ms();
    let engine = c.slot.get()?;
    let history = engine.history().to_string();
    let (after, encrypted) = match last.as_ref() {
        Some(cur) if cur.url == t.url && cur.history == history => (cur.sequence, cur.encrypted),
        _ => archive_start(t, &engine, &history).await?,
    };
    let encrypt = encrypt || encrypted;
    if encrypt && !encrypted {
        backup::wal::Archive::new(t)
            .mark_encrypted(&iso_ms(SystemClock.now_ms()))
            .await?;
    }
    if encrypt && t.keyring.is_none() {
        return Err(Error::invalid(format!(
            "the WAL archive in {} is encrypted, and the keyring ({}) is missing: restore it \
             before archiving continues",
            t.url,
            keyring_path(&c.config).display()
        )));
    }
    let latest = engine.db().latest_sequence_number();
    if after > latest {
        return Err(Error::invalid(format!(
            "the archive in {} reaches sequence {after} but the store is at {latest}: the store was restored to an earlier point; archive to a new location",
            t.url
        )));
    }
    let r = backup::wal::Archive { target: t, encrypt }
        .pass(engine, after)
        .await?;
    *last = Some(ArchiveCursor {
        url: t.url.clone(),
        history,
        sequence: r.to_sequence,
        encrypted: encrypted || encrypt,
    });
    c.board.update_backup(|record| {
        record.wal_archive = Some(crate::status::WalArchiveRecord {
            location: t.url.clone(),
            archived_sequence: r.to_sequence,
            store_sequence: latest,
            lag_sequences: latest.saturating_sub(r.to_sequence),
            last_pass_at: iso_ms(SystemClock.now_ms()),
            last_pass_bytes: r.bytes,
            // Everything committed before this pass started is archived now.
            last_pass_started_ms: started_ms,
        });
    });
    Ok(r)
}

async fn wal_replay(c: &Ctx, p: WalReplayParams) -> Result<Value> {
    let t = target(c, p.from.as_deref())?;
    let engine = c.slot.get()?;
    let mut n = 0usize;
    let limit = p.limit.max(1);
    let (batches, reached, _) = backup::wal::Archive::new(&t)
        .batches(p.from_sequence, |b| {
            n += b.count as usize;
            n <= limit || n == b.count as usize
        })
        .await?;
    let mut events = Vec::new();
    for b in &batches {
        let wb = crate::cdc::WalBatch {
            sequence: b.sequence,
            count: b.count,
            commit_ms: Some(b.commit_ms),
            data: b.data.clone(),
        };
        crate::cdc::events_of(
            &engine,
            &wb,
            p.from_sequence,
            &Default::default(),
            &mut events,
        )?;
    }
    Ok(
        json!({"from": t.url, "from_sequence": p.from_sequence, "next_sequence": reached,
        "events": events, "count": events.len()}),
    )
}

async fn prune(c: &Ctx, p: PruneParams) -> Result<Value> {
    let t = target(c, p.location.as_deref())?;
    let backups = t.list().await?;
    if let Some(b) = backups.iter().find(|b| b.is_sealed()) {
        return Err(Error::invalid(format!(
            "backup {:?} is encrypted and the keyring is not available: prune cannot tell which objects it uses, so nothing was deleted",
            b.name
        )));
    }
    let objects = t.existing_objects().await?;
    let segments = backup::wal::Archive::new(&t).segments().await?;
    let window_ms = (c.config.backup.pitr_window_secs as i64).saturating_mul(1000);
    let plan = backup::prune::plan(
        &p.policy,
        &backups,
        &objects,
        &segments,
        window_ms,
        SystemClock.now_ms(),
    )?;
    if !p.dry_run {
        // Manifests first: a backup disappears before anything it uses.
        for name in &plan.delete_backups {
            t.delete_object(&format!("backups/{name}.json")).await?;
        }
        for o in &plan.delete_objects {
            t.delete_object(o).await?;
        }
        for s in &plan.delete_segments {
            t.delete_object(s).await?;
        }
    }
    Ok(
        json!({"location": t.url, "dry_run": p.dry_run, "plan": plan.decisions,
        "keep": plan.decisions.iter().filter(|d| d.keep).count(),
        "delete": plan.delete_backups, "delete_objects": plan.delete_objects.len(),
        "delete_segments": plan.delete_segments.len()}),
    )
}

/// Copy what `to` lacks: objects, then WAL segments, then manifests (last,
/// so a copied backup is visible only when complete).
async fn copy_backups(c: &Ctx, p: CopyParams) -> Result<Value> {
    let from = target(c, p.from.as_deref())?;
    let to = Target::open(&p.to)?;
    let mut wanted: Vec<BackupManifest> = match &p.name {
        Some(n) => vec![from.manifest(n).await?],
        None => from.list().await?,
    };
    // A WAL-based backup needs its base there too (copied first).
    let mut bases = Vec::new();
    for m in &wanted {
        if let Some(b) = &m.base {
            if !wanted.iter().any(|w| &w.name == b)
                && !bases.iter().any(|x: &BackupManifest| &x.name == b)
            {
                bases.push(from.manifest(b).await?);
            }
        }
    }
    bases.append(&mut wanted);
    let wanted = bases;
    // One archive holds one store history.
    let (src_archive, dst_archive) = (
        backup::wal::Archive::new(&from),
        backup::wal::Archive::new(&to),
    );
    match (src_archive.history().await?, dst_archive.history().await?) {
        (Some(a), Some(b)) if a != b => {
            return Err(Error::invalid(format!(
                "the WAL archive in {} is of another store history than the one in {}; copy to a new location",
                to.url, from.url
            )))
        }
        (Some(a), None) => dst_archive.set_history(&a).await?,
        _ => {}
    }
    // An encrypted archive stays encrypted in its copy too.
    if src_archive.is_encrypted().await? && !dst_archive.is_encrypted().await? {
        dst_archive
            .mark_encrypted(&iso_ms(SystemClock.now_ms()))
            .await?;
    }
    let have_objects = to.existing_objects().await?;
    let mut copied_objects = 0u64;
    let mut copied_bytes = 0u64;
    let mut copied = Vec::new();
    for m in &wanted {
        if m.is_sealed() {
            return Err(Error::invalid(format!(
                "backup {:?} is encrypted and the keyring is not available; nothing was copied for it",
                m.name
            )));
        }
        if to.exists(&m.name).await? {
            if to.manifest_clear(&m.name).await?.checksum != m.checksum {
                return Err(Error::exists(format!(
                    "{} holds another backup named {:?}; nothing was copied for it",
                    to.url, m.name
                )));
            }
            continue;
        }
        for f in &m.files {
            let o = f.object();
            if have_objects.contains(&o) {
                continue;
            }
            let body = from.get_object(&o).await?;
            copied_bytes += body.len() as u64;
            to.put_object(&o, body).await?;
            copied_objects += 1;
        }
        copied.push(m.name.clone());
    }
    let src_wal = src_archive.segments().await?;
    let dst_wal: HashSet<String> = dst_archive
        .segments()
        .await?
        .into_iter()
        .map(|s| s.object)
        .collect();
    let mut copied_segments = 0u64;
    for s in src_wal.iter().filter(|s| !dst_wal.contains(&s.object)) {
        let body = from.get_object(&s.object).await?;
        copied_bytes += body.len() as u64;
        to.put_object(&s.object, body).await?;
        copied_segments += 1;
    }
    // A WAL-based backup's own segments, each present with its size.
    for m in wanted.iter().filter(|m| copied.contains(&m.name)) {
        for w in &m.wal {
            if to.check_size(&w.object, w.size).await?.is_none() {
                continue;
            }
            let body = from.get_object(&w.object).await?;
            if body.len() as u64 != w.size {
                return Err(Error::corruption(format!(
                    "WAL segment {} in {} is {} bytes, backup {:?} says {}; nothing more was copied",
                    w.object,
                    from.url,
                    body.len(),
                    m.name,
                    w.size
                )));
            }
            copied_bytes += body.len() as u64;
            to.put_object(&w.object, body).await?;
            copied_segments += 1;
        }
    }
    for name in &copied {
        let body = from.get_object(&format!("backups/{name}.json")).await?;
        BackupManifest::decode(name, &body)?;
        to.put_object(&format!("backups/{name}.json"), body).await?;
    }
    Ok(
        json!({"from": from.url, "to": to.url, "copied_backups": copied,
        "copied_objects": copied_objects, "copied_segments": copied_segments, "copied_bytes": copied_bytes}),
    )
}

/// Restore the newest backup into a scratch directory, open it and read
/// every key, then delete the scratch.
async fn drill(c: &Ctx) -> Result<Value> {
    let started = Instant::now();
    let t = target(c, None)?;
    let m = t.resolve(None).await?;
    let plan = plan_restore(&t, m.clone(), None).await?;
    let scratch = std::path::absolute(
        c.config
            .data_dir
            .join(format!("drill-{}", SystemClock.now_ms())),
    )
    .map_err(|e| Error::io(e.to_string()))?;
    // Outside the data dir check: the drill is the daemon's own scratch.
    let partial = backup::partial_path(&scratch);
    let result = async {
        let built = build(c, &t, &plan, &partial).await?;
        let (config, dir) = (c.config.clone(), partial.clone());
        let keys = blocking(move || crate::engine::read_all_read_only(&dir, &config)).await?;
        Ok::<_, Error>((built, keys))
    }
    .await;
    let _ = std::fs::remove_dir_all(&partial);
    let (built, keys) = result?;
    Ok(
        json!({"ok": true, "backup": m.name, "sequence": m.sequence, "keys": keys,
        "bytes": built.bytes, "duration_ms": started.elapsed().as_secs_f64() * 1000.0,
        "at": iso_ms(SystemClock.now_ms())}),
    )
}
