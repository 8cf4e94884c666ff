//! Building a restored store in a directory: download the base backup's
//! files, then replay the WAL archive onto it up to the point asked for.
//! Used by restore and drill.

use std::path::Path;

use super::restore::{Pitr, RestorePlan};
use super::service::blocking;
use crate::backup::{self, Target};
use crate::clock::iso_ms;
use crate::config::Config;
use crate::error::{Error, Result};

/// What a restore built in a directory.
pub(super) struct Built {
    pub(super) bytes: u64,
    pub(super) sequence: u64,
    pub(super) replayed_batches: usize,
    pub(super) note: Option<String>,
}

/// Download the base backup into `dir` and replay the WAL archive onto it
/// up to the point, if one is given.
pub(super) async fn build(
    config: &std::sync::Arc<Config>,
    t: &Target,
    plan: &RestorePlan,
    dir: &Path,
) -> Result<Built> {
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
    // Rolling forward through the archive (not a WAL-based backup's own,
    // vouched-for segments) depends on two markers: HISTORY proves the
    // archive is this backup's store's, END that no segment is missing.
    let mut end = None;
    let segments = match &plan.segments {
        Some(s) => s,
        None => {
            let refuse = |why: String| {
                Error::corruption(format!(
                    "{why}; nothing was restored (restore backup {:?} itself without a point \
                     in time, or see `backup verify`)",
                    m.name
                ))
            };
            let history = archive
                .history()
                .await
                .map_err(|e| refuse(format!("the WAL archive in {}: {}", t.url, e.message)))?;
            match (history, &m.history) {
                (Some(a), Some(b)) if a != *b => {
                    return Err(Error::invalid(format!(
                        "the WAL archive in {} is of another store history than backup {:?}; it cannot roll that backup forward",
                        t.url, m.name
                    )))
                }
                (None, Some(_)) => {
                    return Err(refuse(format!(
                        "wal/HISTORY is missing in {}: the archive cannot be shown to belong to \
                         backup {:?}'s store",
                        t.url, m.name
                    )))
                }
                _ => {}
            }
            // END before the listing: a pass writes its segment, then END.
            end = archive
                .end()
                .await
                .map_err(|e| refuse(format!("the WAL archive in {}: {}", t.url, e.message)))?;
            listed = archive.segments().await?;
            if end.is_none() && !listed.is_empty() {
                return Err(refuse(format!(
                    "wal/END is missing in {}: whether the archive is complete cannot be told",
                    t.url
                )));
            }
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
    // The walk ran out of segments before the point: if END says the
    // archive went further, segments are missing and the result would be
    // silently short.
    if let Some(end) = end.filter(|e| !stopped && e.last > reached) {
        return Err(Error::corruption(format!(
            "the WAL archive in {} ends at sequence {reached} but wal/END says it reaches {} \
             ({}): segments are missing; nothing was restored",
            t.url, end.last, end.segment
        )));
    }
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
    let (config, dir2) = (config.clone(), dir.to_path_buf());
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
