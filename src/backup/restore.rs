//! `backup restore`: choose the backup (by name, newest, or the newest at
//! or before a point in time), plan what to download and replay, build it
//! ([`super::build`]) and put it in place: beside `--to PATH`, opened
//! read-only to prove it is a store and only then renamed into place; or
//! into the running daemon as a snapshot the snapshot service's restore
//! swaps in (quiesce, undo snapshot, atomic exchange).

use std::path::Path;
use std::time::Instant;

use serde_json::{json, Value};

use super::build::build;
use super::create::store_files;
use super::params::RestoreParams;
use super::service::{blocking, target, Ctx};
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

pub(super) async fn restore_to_path(
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
