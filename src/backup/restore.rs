//! `backup restore`: choose the backup (by name, newest, the newest at or
//! before a point in time, or the one `--from` names), plan what to
//! download and replay, build it ([`super::build`]) and put it in place:
//! as a data directory `--to DIR` (built beside it, opened read-only to
//! prove it is a store, then renamed into place; the CLI does this itself,
//! no daemon needed), or into the running daemon as a snapshot the
//! snapshot service's restore swaps in (quiesce, undo snapshot, atomic
//! exchange).

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::{json, Value};

use super::build::build;
use super::create::store_files;
use super::locations::Locations;
use super::params::RestoreParams;
use super::service::{blocking, Ctx};
use crate::backup::{self, BackupManifest, Target};
use crate::clock::{iso_ms, Clock, SystemClock};
use crate::error::{Error, Result};
use crate::snapshot::{self, Kind};

/// A point-in-time target.
#[derive(Debug, Clone, Copy)]
pub(super) enum Pitr {
    Sequence(u64),
    TimeMs(i64),
}

pub(super) fn parse_time(t: &str) -> Result<i64> {
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

pub(super) async fn restore(c: &Ctx, p: RestoreParams) -> Result<Value> {
    match p.to.clone() {
        Some(to) => {
            let loc = c
                .locations
                .clone()
                .with_keyring(p.keyring.as_ref().map(PathBuf::from));
            to_data_dir(&loc, &p, Path::new(&to), Some(&c.config.data_dir)).await
        }
        None => {
            let started = Instant::now();
            let loc = c
                .locations
                .clone()
                .with_keyring(p.keyring.as_ref().map(PathBuf::from));
            let (t, plan) = choose(&loc, &p).await?;
            restore_live(c, &t, &plan, started).await
        }
    }
}

/// `--from` may name one backup: `<location>/backups/<name>.json`.
fn split_manifest_url(from: &str) -> Option<(String, String)> {
    let stem = from.strip_suffix(".json")?;
    let (dir, name) = stem.rsplit_once('/')?;
    let location = dir.strip_suffix("/backups").or_else(|| {
        // A bare `backups/<name>.json` relative to nothing is not a location.
        (dir == "backups").then_some("")
    })?;
    if name.is_empty() || location.is_empty() || location.ends_with("://") {
        return None;
    }
    Some((location.to_string(), name.to_string()))
}

/// Open the location and choose what to restore: by name, the newest, or
/// the newest base at or before a point in time.
pub(super) async fn choose(loc: &Locations, p: &RestoreParams) -> Result<(Target, RestorePlan)> {
    let (from, name) = match p.from.as_deref().and_then(split_manifest_url) {
        Some((location, manifest)) => {
            if p.name.as_ref().is_some_and(|n| *n != manifest) {
                return Err(Error::invalid(format!(
                    "--from names backup {manifest:?} but --name says {:?}; give one",
                    p.name.as_deref().unwrap_or_default()
                )));
            }
            (Some(location), Some(manifest))
        }
        None => (p.from.clone(), p.name.clone()),
    };
    let t = loc.target(from.as_deref())?;
    if name.is_none() {
        refuse_if_manifests_lost(&t).await?;
    }
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
    let m = match (pitr, name.as_deref()) {
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
    Ok((t, plan))
}

/// "The newest backup" cannot be chosen when the catalog lists backups
/// whose manifests are gone: the newest may be one of them.
async fn refuse_if_manifests_lost(t: &Target) -> Result<()> {
    let Ok(Some(catalog)) = t.catalog().await else {
        // No catalog (an older location) or a damaged one: the listing is
        // all there is; `backup verify` reports the catalog.
        return Ok(());
    };
    let mut lost = Vec::new();
    for e in catalog {
        if !t.exists(&e.name).await? {
            lost.push(e.name);
        }
    }
    if lost.is_empty() {
        return Ok(());
    }
    Err(Error::corruption(format!(
        "the catalog of {} lists backup(s) {} whose manifests are missing, so the newest backup \
         cannot be chosen safely; nothing was restored (name the backup to restore with --name, \
         and see `backup verify`)",
        t.url,
        lost.join(", ")
    )))
}

/// What a restore downloads and replays.
pub(super) struct RestorePlan {
    /// The backup asked for.
    pub(super) name: String,
    /// The backup with files it starts from.
    pub(super) base: BackupManifest,
    pub(super) pitr: Option<Pitr>,
    /// The segments to replay (a WAL-based backup's, checked against its
    /// SHA-256s); None: whatever the archive holds.
    pub(super) segments: Option<Vec<backup::wal::Segment>>,
}

pub(super) async fn plan_restore(
    t: &Target,
    m: BackupManifest,
    pitr: Option<Pitr>,
) -> Result<RestorePlan> {
    // A listing leaves an encrypted file list sealed without a keyring.
    let m = if m.is_sealed() { t.unseal(m)? } else { m };
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

/// Is a daemon running on the data dir `dir` (it holds `daemon.lock`)?
fn daemon_running(dir: &Path) -> bool {
    matches!(
        crate::fs::try_lock(&dir.join("daemon.lock"), false),
        Ok(None)
    )
}

/// Restore into the data directory `to`: the store in `to/db` with a fresh
/// history id, and the keyring beside it when the backup is encrypted, so
/// `serve --data-dir TO` serves exactly the restored state. It is built
/// next to `to`, opened read-only to prove it is a store, and only then
/// renamed into place; `to` must be empty or `force` given.
pub(super) async fn to_data_dir(
    loc: &Locations,
    p: &RestoreParams,
    to: &Path,
    live: Option<&Path>,
) -> Result<Value> {
    let started = Instant::now();
    if !to.is_absolute() {
        return Err(Error::invalid(format!(
            "--to {}: must be an absolute path",
            to.display()
        )));
    }
    if let Some(live) = live {
        let live = std::path::absolute(live).unwrap_or(live.to_path_buf());
        if to.starts_with(&live) {
            return Err(Error::invalid(format!(
                "--to {} is inside the daemon's data dir; restore into the running daemon without --to instead",
                to.display()
            )));
        }
    }
    if daemon_running(to) {
        return Err(Error::invalid(format!(
            "a daemon is serving {}; stop it first, or restore into it without --to",
            to.display()
        )));
    }
    if !backup::is_empty_dir(to)? && !p.force {
        return Err(Error::invalid(format!(
            "{} is not empty; pass --force to replace it (nothing was changed)",
            to.display()
        )));
    }
    let (t, plan) = choose(loc, p).await?;
    let partial = backup::partial_path(to);
    let _ = std::fs::remove_dir_all(&partial);
    let store = partial.join(LIVE_DIR);
    let m = &plan.base;
    let built = match build(&loc.config, &t, &plan, &store).await {
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
    // The keyring the restore opened goes with the data dir (mode 0600),
    // so the restored daemon can make and restore encrypted backups.
    let keyring = t.keyring.as_ref().map(|_| loc.keyring_path());
    let (config, partial2, to2) = (loc.config.clone(), partial.clone(), to.to_path_buf());
    let keyring2 = keyring.clone();
    let keys = blocking(move || {
        // A store restored elsewhere starts its own history.
        crate::engine::fork_history(&partial2.join(LIVE_DIR), &config)?;
        let keys = crate::engine::read_all_read_only(&partial2.join(LIVE_DIR), &config)
            .map_err(|e| e.context("the restored files do not open as a store"))?;
        if let Some(k) = &keyring2 {
            copy_private(k, &partial2.join(KEYRING_FILE))?;
        }
        crate::fs::fsync_dir(&partial2)?;
        // Only now does anything appear at `to`.
        replace_dir(&partial2, &to2)?;
        Ok(keys)
    })
    .await;
    if keys.is_err() {
        let _ = std::fs::remove_dir_all(&partial);
    }
    let keys = keys?;
    Ok(
        json!({"restored": plan.name, "base": m.name, "to": to.display().to_string(),
        "store": to.join(LIVE_DIR).display().to_string(),
        "keyring": keyring.map(|_| to.join(KEYRING_FILE).display().to_string()),
        "base_sequence": m.sequence, "sequence": built.sequence,
        "replayed_batches": built.replayed_batches, "note": built.note,
        "files": m.files.len(), "bytes": built.bytes, "keys": keys,
        "serve": format!("ruvector-storage serve --data-dir {}", to.display()),
        "duration_ms": started.elapsed().as_secs_f64() * 1000.0}),
    )
}

/// The store directory inside a data dir.
const LIVE_DIR: &str = crate::snapshot::restore::LIVE_DIR;
/// The keyring's name in a data dir (the default `[backup] keyring`).
const KEYRING_FILE: &str = "backup-keyring.json";

/// Copy a secret file, readable by its owner only.
fn copy_private(from: &Path, to: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::copy(from, to)
        .and_then(|_| std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o600)))
        .map_err(|e| {
            Error::io(format!(
                "copying the keyring {} to {}: {e}",
                from.display(),
                to.display()
            ))
        })?;
    Ok(())
}

/// Rename `partial` to `to`; a non-empty `to` (`--force`) is moved aside
/// first and removed after, or put back if the rename fails.
fn replace_dir(partial: &Path, to: &Path) -> Result<()> {
    if to.exists() {
        let old = to.with_file_name(format!(
            ".{}.old-{}",
            to.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            std::process::id()
        ));
        std::fs::rename(to, &old)
            .map_err(|e| Error::io(format!("moving {} aside: {e}", to.display())))?;
        if let Err(e) = std::fs::rename(partial, to) {
            // Put the old contents back, or say where they are.
            let back = match std::fs::rename(&old, to) {
                Ok(()) => format!("{} is as it was", to.display()),
                Err(e2) => format!(
                    "its previous contents are at {} (moving them back failed: {e2})",
                    old.display()
                ),
            };
            return Err(Error::io(format!(
                "moving the restored store to {}: {e}; {back}",
                to.display()
            )));
        }
        let _ = std::fs::remove_dir_all(&old);
    } else {
        std::fs::rename(partial, to).map_err(|e| Error::io(format!("{}: {e}", to.display())))?;
    }
    match to.parent() {
        Some(parent) => crate::fs::fsync_dir(parent),
        None => Ok(()),
    }
}

/// Build into a snapshot and let the snapshot actor swap it in.
pub(super) async fn restore_live(
    c: &Ctx,
    t: &Target,
    plan: &RestorePlan,
    started: Instant,
) -> Result<Value> {
    let m = &plan.base;
    let now = SystemClock.now_ms();
    let snap = snapshot::default_name(&format!("restore-{}", plan.name), now);
    let final_dir = c.snapshot_store.dir(&snap);
    let tmp = c.snapshot_store.root().join(format!(".tmp-{snap}"));
    let _ = std::fs::remove_dir_all(&tmp);
    let built = build(&c.config, t, plan, &tmp).await;
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

/// Write a snapshot manifest for the files in `tmp` and publish it.
pub(super) fn publish_as_snapshot(
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
