//! `compact`: full and incremental compaction of the live store, as jobs of
//! the compaction actor.
//!
//! - **Full** rewrites every column family, bottommost level included
//!   (`BottommostLevelCompaction::Force`), range by range so progress moves
//!   and a cancel stops between ranges.
//! - **Incremental** is a plan first: per family, the garbage RocksDB's own
//!   figures suggest — the share of its live SST bytes that
//!   `rocksdb.estimate-live-data-size` does not count (overwritten and
//!   deleted data; RocksDB counts one of several level-0 files that
//!   overlap, so with many of them it is an upper bound), and the share of
//!   deletion tombstones among the entries of its table files (aggregated
//!   table properties) — and only the
//!   families whose larger share passes the threshold are compacted. With
//!   `dry_run` the plan is the answer.
//!
//! Each range is compacted by RocksDB atomically: readers see the old files
//! or the new ones. Bytes are SST bytes from RocksDB before and after, and
//! the data directory's bytes on disk as the filesystem counts them.

use std::time::Instant;

use rocksdb::{BottommostLevelCompaction, CompactOptions};

use crate::backup::progress::Progress;
use crate::engine::{Cf, Engine};
use crate::error::{Error, Result};

/// The default `--threshold` of an incremental compaction.
pub const DEFAULT_THRESHOLD: f64 = 0.3;

pub use crate::status::{CompactionReport as Report, FamilyPlan, FamilyResult};

fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        (part as f64 / whole as f64).clamp(0.0, 1.0)
    }
}

fn mb(b: u64) -> String {
    format!("{:.2} MB", b as f64 / 1e6)
}

/// Every family's garbage estimate, selected against `threshold`.
pub fn plan(engine: &Engine, threshold: f64) -> Vec<FamilyPlan> {
    let stats = engine.stats();
    Cf::ALL
        .iter()
        .map(|&cf| {
            let c = stats.column_families.iter().find(|c| c.name == cf.name());
            // The current version's files only (not those a snapshot or an
            // iterator still pins, which compaction cannot reclaim).
            let sst = engine
                .db()
                .property_int_value_cf(engine.cf(cf), "rocksdb.live-sst-files-size")
                .ok()
                .flatten()
                .unwrap_or(0);
            let live = c.map_or(0, |c| c.live_data_bytes);
            let figures = engine.compression_figures(cf);
            let dead = ratio(sst.saturating_sub(live), sst);
            let tomb = ratio(figures.deletions, figures.entries);
            let garbage = dead.max(tomb);
            let selected = sst > 0 && garbage > threshold;
            let why = if sst == 0 {
                "no table files".to_string()
            } else if tomb > dead {
                format!(
                    "{:.0}% of its {} entries are deletion tombstones",
                    tomb * 100.0,
                    figures.entries
                )
            } else {
                format!(
                    "live data ≈ {} of {} in table files ({:.0}% garbage)",
                    mb(live),
                    mb(sst),
                    dead * 100.0
                )
            };
            FamilyPlan {
                family: cf.name(),
                sst_bytes: sst,
                live_data_bytes: live,
                entries: figures.entries,
                tombstones: figures.deletions,
                garbage_ratio: (garbage * 1000.0).round() / 1000.0,
                selected,
                why,
            }
        })
        .collect()
}

fn sst_of(engine: &Engine, cf: Cf) -> u64 {
    engine
        .stats()
        .column_families
        .iter()
        .find(|c| c.name == cf.name())
        .map_or(0, |c| c.sst_bytes)
}

/// Compact all of `cf` in about 16 ranges (between its files' first keys),
/// with `bottommost` for the last level; checks `cancelled` between ranges.
pub(super) fn compact_family(
    engine: &Engine,
    cf: Cf,
    bottommost: BottommostLevelCompaction,
    progress: &Progress,
    cancelled: &dyn Fn() -> bool,
) -> Result<u64> {
    let bounds = super::compression::file_start_keys(engine, cf)?;
    let step = bounds.len().div_ceil(16).max(1);
    let mut cuts: Vec<Vec<u8>> = bounds.into_iter().step_by(step).skip(1).collect();
    cuts.dedup();
    let ranges = cuts.len() as u64 + 1;
    let bytes = sst_of(engine, cf);
    let mut opts = CompactOptions::default();
    opts.set_bottommost_level_compaction(bottommost);
    opts.set_exclusive_manual_compaction(false);
    let mut lower: Option<Vec<u8>> = None;
    for upper in cuts.into_iter().map(Some).chain(std::iter::once(None)) {
        if cancelled() {
            return Err(Error::cancelled(format!(
                "the compaction of {} was cancelled between ranges (each range done is whole)",
                cf.name()
            )));
        }
        engine
            .db()
            .compact_range_cf_opt(engine.cf(cf), lower.as_deref(), upper.as_deref(), &opts);
        progress.add_bytes(bytes / ranges);
        lower = upper;
    }
    progress.advance(0);
    Ok(ranges)
}

/// `compact --full` (`threshold` None) or `compact --incremental`.
pub fn run(
    engine: &Engine,
    threshold: Option<f64>,
    dry_run: bool,
    progress: &Progress,
    cancelled: &dyn Fn() -> bool,
    now_ms: i64,
) -> Result<Report> {
    let started = Instant::now();
    let disk_before = crate::fs::tree_size(engine.path());
    if !dry_run {
        // Memtables first, so what is compacted is everything written.
        engine.flush()?;
    }
    let mut plan = plan(engine, threshold.unwrap_or(0.0));
    if threshold.is_none() {
        // Full: every family with table files, whatever its garbage.
        for p in &mut plan {
            p.selected = p.sst_bytes > 0;
        }
    }
    let chosen: Vec<Cf> = Cf::ALL
        .iter()
        .zip(&plan)
        .filter(|(_, p)| p.selected)
        .map(|(&cf, _)| cf)
        .collect();
    let before: u64 = plan.iter().map(|p| p.sst_bytes).sum();
    let mut compacted = Vec::new();
    if !dry_run {
        let chosen_bytes = plan
            .iter()
            .filter(|p| chosen.iter().any(|c| c.name() == p.family))
            .map(|p| p.sst_bytes)
            .sum();
        progress.phase("compacting", chosen.len() as u64, chosen_bytes);
        for cf in chosen {
            let t = Instant::now();
            let sst_before = sst_of(engine, cf);
            let ranges = compact_family(
                engine,
                cf,
                BottommostLevelCompaction::Force,
                progress,
                cancelled,
            )?;
            compacted.push(FamilyResult {
                family: cf.name(),
                sst_bytes_before: sst_before,
                sst_bytes_after: sst_of(engine, cf),
                ranges,
                elapsed_ms: t.elapsed().as_millis() as u64,
            });
        }
    }
    let after = Cf::ALL.iter().map(|&cf| sst_of(engine, cf)).sum();
    Ok(Report {
        mode: if threshold.is_some() {
            "incremental"
        } else {
            "full"
        },
        threshold,
        dry_run,
        plan,
        compacted,
        sst_bytes_before: before,
        sst_bytes_after: after,
        disk_bytes_before: disk_before,
        disk_bytes_after: crate::fs::tree_size(engine.path()),
        elapsed_ms: started.elapsed().as_millis() as u64,
        finished_at: crate::clock::iso_ms(now_ms),
    })
}

#[cfg(test)]
mod tests;
