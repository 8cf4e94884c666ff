//! Building a restored store in a directory: download the base backup's
//! files, then replay the WAL archive onto it up to the point asked for.
//! Used by restore and drill.

use std::path::Path;

use super::restore::{Pitr, RestorePlan};
use super::service::{blocking, Ctx};
use crate::backup::{self, Target};
use crate::clock::iso_ms;
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
pub(super) async fn build(c: &Ctx, t: &Target, plan: &RestorePlan, dir: &Path) -> Result<Built> {
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
