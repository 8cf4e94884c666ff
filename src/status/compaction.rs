//! The `compaction` record (`swarm/storage/compaction` in
//! `ruvector/storage`): whether a compaction job runs now, and what the
//! last one did (made by `maintenance::compaction`).

use serde::Serialize;

/// `swarm/storage/compaction`.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct CompactionRecord {
    pub running: bool,
    pub last: Option<CompactionReport>,
}

/// What one family holds and how much of it looks like garbage.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FamilyPlan {
    pub family: &'static str,
    pub sst_bytes: u64,
    pub live_data_bytes: u64,
    pub entries: u64,
    pub tombstones: u64,
    /// The larger of the dead-bytes share and the tombstone share.
    pub garbage_ratio: f64,
    /// Over the threshold: compacted (or, dry run, would be).
    pub selected: bool,
    pub why: String,
}

/// What one family's compaction did.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FamilyResult {
    pub family: &'static str,
    pub sst_bytes_before: u64,
    pub sst_bytes_after: u64,
    pub ranges: u64,
    pub elapsed_ms: u64,
}

/// What the last `compact` did (the `last` of the `compaction` record).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CompactionReport {
    /// `full` or `incremental`.
    pub mode: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    pub dry_run: bool,
    pub plan: Vec<FamilyPlan>,
    pub compacted: Vec<FamilyResult>,
    pub sst_bytes_before: u64,
    pub sst_bytes_after: u64,
    /// The data directory on disk (filesystem), before and after.
    pub disk_bytes_before: u64,
    pub disk_bytes_after: u64,
    pub elapsed_ms: u64,
    pub finished_at: String,
}
