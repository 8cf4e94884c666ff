//! `backup prune`: restic's keep-* rules over backups, made PITR-safe.
//!
//! The plan ([`plan`]) is pure and decided before anything is deleted:
//!
//! 1. the keep-* policy picks backups (the newest is always kept);
//! 2. the PITR window (`now - window ..= now`) must stay restorable, so the
//!    newest backup with files taken at or before the window's start is
//!    kept too (the base to roll forward from);
//! 3. a kept WAL-based incremental keeps its base;
//! 4. an object is deleted only if no kept backup references it;
//! 5. a WAL segment is deleted only if it ends at or before the sequence of
//!    the oldest kept backup and no kept backup lists it (nothing kept can
//!    need it).
//!
//! `run` applies it (or, with dry-run, only reports it). Deletion order
//! makes every intermediate state safe: manifests first (a backup
//! disappears before anything it uses), then unreferenced objects, then old
//! segments; a prune that fails part-way leaves every kept backup whole,
//! and running it again finishes the job.

use std::collections::HashSet;

use serde::Serialize;
use serde_json::{json, Value};

use super::params::PruneParams;
use super::service::{target, Ctx};
use super::wal::Segment;
use super::BackupManifest;
use crate::clock::{Clock, SystemClock};
use crate::error::{Error, Result};
use crate::snapshot::retention::{self, Candidate, Decision, Policy};

#[derive(Debug, Clone, Serialize)]
pub struct PrunePlan {
    pub decisions: Vec<Decision>,
    pub delete_backups: Vec<String>,
    pub delete_objects: Vec<String>,
    pub delete_segments: Vec<String>,
    /// Where the archive starts once those segments are gone (`wal/START`).
    pub archive_start: Option<u64>,
}

/// `objects`: every object name in the target; `segments`: every segment.
pub fn plan(
    policy: &Policy,
    backups: &[BackupManifest],
    objects: &HashSet<String>,
    segments: &[Segment],
    window_ms: i64,
    now_ms: i64,
) -> Result<PrunePlan> {
    let candidates: Vec<Candidate> = backups
        .iter()
        .map(|b| Candidate {
            name: b.name.clone(),
            created_at_ms: b.created_at_ms,
            verified: true,
        })
        .collect();
    let mut decisions = retention::plan(policy, &candidates)?;
    // The base of the PITR window's start.
    let start = now_ms - window_ms;
    if window_ms > 0 {
        if let Some(base) = backups
            .iter()
            .filter(|b| b.created_at_ms <= start && !b.is_wal())
            .max_by_key(|b| (b.created_at_ms, b.sequence))
        {
            if let Some(d) = decisions.iter_mut().find(|d| d.name == base.name) {
                if !d.keep {
                    d.keep = true;
                }
                d.reasons.push("base of the PITR window".into());
            }
        }
        // Every backup inside the window stays too (cheap: they share objects).
        for d in decisions.iter_mut() {
            if d.created_at_ms > start && !d.keep {
                d.keep = true;
                d.reasons.push("inside the PITR window".into());
            }
        }
    }
    // The base of every kept WAL-based incremental (bases have files, so
    // one pass suffices).
    let bases: Vec<(String, String)> = backups
        .iter()
        .filter(|b| decisions.iter().any(|d| d.name == b.name && d.keep))
        .filter_map(|b| Some((b.base.clone()?, b.name.clone())))
        .collect();
    for (base, of) in bases {
        if let Some(d) = decisions.iter_mut().find(|d| d.name == base) {
            d.keep = true;
            d.reasons.push(format!("base of kept backup {of}"));
        }
    }
    let kept: Vec<&BackupManifest> = backups
        .iter()
        .filter(|b| decisions.iter().any(|d| d.name == b.name && d.keep))
        .collect();
    let used: HashSet<String> = kept
        .iter()
        .flat_map(|b| b.files.iter().map(|f| f.object()))
        .collect();
    let mut delete_objects: Vec<String> = objects
        .iter()
        .filter(|o| !used.contains(*o))
        .cloned()
        .collect();
    delete_objects.sort();
    let listed: HashSet<&str> = kept
        .iter()
        .flat_map(|b| b.wal.iter().map(|w| w.object.as_str()))
        .collect();
    let oldest_kept = kept.iter().map(|b| b.sequence).min();
    let deleted: Vec<&Segment> = match oldest_kept {
        Some(seq) => segments
            .iter()
            .filter(|s| s.last <= seq && !listed.contains(s.object.as_str()))
            .collect(),
        None => Vec::new(),
    };
    let archive_start = deleted.iter().map(|s| s.last).max();
    let delete_segments = deleted.iter().map(|s| s.object.clone()).collect();
    let delete_backups = decisions
        .iter()
        .filter(|d| !d.keep)
        .map(|d| d.name.clone())
        .collect();
    Ok(PrunePlan {
        decisions,
        delete_backups,
        delete_objects,
        delete_segments,
        archive_start,
    })
}

/// Plan, then (unless a dry run) apply: manifests first, then the objects
/// and segments nothing kept uses.
pub(super) async fn run(c: &Ctx, p: PruneParams) -> Result<Value> {
    let t = target(c, p.location.as_deref())?;
    let backups = t.list().await?;
    if let Some(b) = backups.iter().find(|b| b.is_sealed()) {
        return Err(Error::invalid(format!(
            "backup {:?} is encrypted and the keyring is not available: prune cannot tell which objects it uses, so nothing was deleted",
            b.name
        )));
    }
    let objects = t.existing_objects().await?;
    let segments = super::wal::Archive::new(&t).segments().await?;
    let window_ms = (c.config.backup.pitr_window_secs as i64).saturating_mul(1000);
    let plan = plan(
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
        if !plan.delete_backups.is_empty() {
            t.catalog_remove(&plan.delete_backups).await?;
        }
        for o in &plan.delete_objects {
            t.delete_object(o).await?;
        }
        // The archive starts after the deleted segments: START moves first,
        // so a prune stopped part-way leaves segments before START
        // (harmless), never a gap after it.
        if let Some(start) = plan.archive_start {
            super::wal::Archive::new(&t).set_start(start).await?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backup::{BackupFile, Encoding};
    use proptest::prelude::*;

    fn manifest(i: usize, created: i64, seq: u64, objs: &[u8]) -> BackupManifest {
        BackupManifest {
            base: None,
            wal: Vec::new(),
            base_checksum: None,
            history: None,
            format_version: 1,
            name: format!("b{i}"),
            kind: "incremental".into(),
            parent: None,
            created_at: String::new(),
            created_at_ms: created,
            first_sequence: 0,
            sequence: seq,
            files: objs
                .iter()
                .map(|o| BackupFile {
                    name: format!("f{o}"),
                    size: 1,
                    sha256: format!("{o:02x}{}", "0".repeat(62)),
                    crc32c: String::new(),
                    encoding: Encoding::Raw,
                    stored_size: 1,
                    key: None,
                    object_name: None,
                })
                .collect(),
            total_bytes: 0,
            uploaded_bytes: 0,
            uploaded_objects: 0,
            encryption: None,
            checksum: String::new(),
        }
    }

    proptest! {
        /// Whatever the history and policy: every kept backup keeps all its
        /// objects, every point in the PITR window has a kept base and the
        /// segments after it, and the newest backup is kept.
        #[test]
        fn prune_never_breaks_a_kept_backup_or_the_window(
            steps in proptest::collection::vec((1i64..20_000_000, 1u64..50, proptest::collection::vec(0u8..30, 1..6), any::<bool>()), 1..25),
            keep_last in 0u32..4,
            keep_daily in 0u32..3,
            window_h in 0i64..200,
        ) {
            let mut t = 0i64;
            let mut seq = 0u64;
            let mut backups = Vec::new();
            let mut segments = Vec::new();
            let mut base: Option<BackupManifest> = None;
            for (i, (dt, ds, objs, wal)) in steps.iter().enumerate() {
                t += dt * 100;
                segments.push(Segment { first: seq + 1, last: seq + ds, object: format!("wal/{i}"), size: 1, sha256: None });
                seq += ds;
                let mut b = manifest(i, t, seq, objs);
                match (&base, wal) {
                    (Some(from), true) => {
                        // A WAL-based incremental: no files, the segments
                        // after its base.
                        b.files.clear();
                        b.base = Some(from.name.clone());
                        b.wal = segments
                            .iter()
                            .filter(|s| s.last > from.sequence)
                            .map(|s| crate::backup::wal::WalObject { object: s.object.clone(), first: s.first, last: s.last, size: 1, sha256: "0".repeat(64) })
                            .collect();
                    }
                    _ => base = Some(b.clone()),
                }
                backups.push(b);
            }
            let objects: HashSet<String> = backups.iter().flat_map(|b| b.files.iter().map(|f| f.object())).chain(["objects/zz/orphan".to_string()]).collect();
            let policy = Policy { keep_last: Some(keep_last.max(if keep_daily == 0 { 1 } else { 0 })), keep_daily: Some(keep_daily), ..Default::default() };
            let window = window_h * 3_600_000;
            let now = t + 1000;
            let p = plan(&policy, &backups, &objects, &segments, window, now).unwrap();
            let kept: Vec<&BackupManifest> = backups.iter().filter(|b| !p.delete_backups.contains(&b.name)).collect();
            prop_assert!(kept.iter().any(|b| b.name == backups.last().unwrap().name));
            for b in &kept {
                for f in &b.files {
                    prop_assert!(!p.delete_objects.contains(&f.object()), "kept {} lost {}", b.name, f.object());
                }
            }
            prop_assert!(p.delete_objects.contains(&"objects/zz/orphan".to_string()));
            // A kept WAL-based backup keeps its base and its segments.
            for b in &kept {
                if let Some(base) = &b.base {
                    prop_assert!(kept.iter().any(|k| &k.name == base), "kept {} lost its base {}", b.name, base);
                    for w in &b.wal {
                        prop_assert!(!p.delete_segments.contains(&w.object), "kept {} lost {}", b.name, w.object);
                    }
                }
            }
            // Segments after the oldest kept backup survive.
            let oldest = kept.iter().map(|b| b.sequence).min().unwrap();
            for s in &segments {
                if s.last > oldest {
                    prop_assert!(!p.delete_segments.contains(&s.object));
                }
            }
            // Every point of the window after the first backup has a kept base.
            let start = now - window;
            if window > 0 && backups[0].created_at_ms <= start {
                prop_assert!(kept.iter().any(|b| b.created_at_ms <= start && b.base.is_none()));
            }
        }
    }
}
