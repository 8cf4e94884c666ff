//! What the maintenance operations take (see the operation table in `ops`).

use clap::Args;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Check the live store while it serves: records, counters and descriptors; with verify_integrity also every block of every SST file (checksums), every value's codec and length, and every index's SHA-256. Exit 5 when anything is wrong.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema, Args)]
#[serde(deny_unknown_fields)]
pub struct CheckParams {
    /// Read every block and value (slow: reads the whole store).
    #[serde(default, alias = "verify-integrity")]
    #[arg(long)]
    pub verify_integrity: bool,
}

/// Stop the running maintenance job (a rewrite stops between ranges, a re-encode between batches and resumes later).
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema, Args)]
#[serde(deny_unknown_fields)]
pub struct CancelParams {}

/// The running maintenance job (phase, bytes done of total) and the last one's result.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema, Args)]
#[serde(deny_unknown_fields)]
pub struct StatusParams {}

/// Set a data type's block compression: new table files use it at once, the existing ones after --rewrite (a full compaction of that column family, as a job with progress). Kept across restarts. Without --algorithm, --rewrite applies the current one. With --collection and --quantization (or --recalibrate), change how a collection's vectors are quantized: a background job re-encodes them (progress in maintenance_status, maintenance_cancel pauses it; it resumes after a restart or when the command is run again); every vector stays readable throughout.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema, Args)]
#[serde(deny_unknown_fields)]
pub struct CompressParams {
    /// The data type (column family): vectors, originals, metadata, kv, memory, indexes, sys or series (vectors when --collection is given).
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    #[arg(long = "type")]
    pub data_type: Option<String>,
    /// The collection whose vectors to re-encode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[arg(long)]
    pub collection: Option<String>,
    /// The collection's new format: none, f16, int8, int6, int4 or binary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[arg(long, value_enum)]
    pub quantization: Option<crate::quant::Quantization>,
    /// Re-derive the collection's ranges from its vectors and re-encode them.
    #[serde(default)]
    #[arg(long)]
    pub recalibrate: bool,
    /// Wait for the re-encode to finish (with a progress bar on a terminal).
    #[serde(default)]
    #[arg(long)]
    pub wait: bool,
    /// zstd, lz4, snappy or none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[arg(long)]
    pub algorithm: Option<String>,
    /// zstd level, 1 to 19 (default 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[arg(long, allow_negative_numbers = true)]
    pub level: Option<i32>,
    /// Compress the bottommost level (most of the data) with zstd and a dictionary trained per table file.
    #[serde(default)]
    #[arg(long)]
    pub dictionary: bool,
    /// Rewrite the existing table files with it now.
    #[serde(default)]
    #[arg(long)]
    pub rewrite: bool,
    /// Go back to the configured compression ([compression] in the config file).
    #[serde(default)]
    #[arg(long, conflicts_with_all = ["algorithm", "level", "dictionary"])]
    pub reset: bool,
}

/// Per column family: raw and stored bytes of its table files, the ratio and the compression; measured on a sample, what each candidate would store (none, snappy, lz4, zstd 1/3/9/19, with and without a dictionary) and how fast it encodes, and for each collection every quantization level with its recall@10 against exact f32 search on the sample.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema, Args)]
#[serde(deny_unknown_fields)]
pub struct AnalyzeCompressionParams {
    /// List every candidate's predicted ratio and encode speed (else only the recommended one).
    #[serde(default, alias = "show-ratio")]
    #[arg(long)]
    pub show_ratio: bool,
    /// One data type only (a column family name).
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    #[arg(long = "type")]
    pub data_type: Option<String>,
    /// One collection only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[arg(long)]
    pub collection: Option<String>,
    /// Raw bytes sampled per column family, MiB (1 to 256; default 4).
    #[serde(default, alias = "sample-mb", skip_serializing_if = "Option::is_none")]
    #[arg(long)]
    pub sample_mb: Option<u64>,
}

/// Compact the store: --full rewrites every column family, bottommost level included, and reports SST and on-disk bytes before and after; --incremental compacts only the families whose estimated garbage (SST bytes RocksDB's live-data estimate does not count, or deletion tombstones among entries) exceeds --threshold (default 0.3), and says which and why; --dry-run shows that plan and compacts nothing.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema, Args)]
#[serde(deny_unknown_fields)]
pub struct CompactParams {
    /// Every column family, bottommost level included.
    #[serde(default)]
    #[arg(long, conflicts_with = "incremental")]
    pub full: bool,
    /// Only the families whose estimated garbage ratio exceeds the threshold.
    #[serde(default)]
    #[arg(long)]
    pub incremental: bool,
    /// Garbage ratio above which a family is compacted (0 < t < 1; default 0.3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[arg(long)]
    pub threshold: Option<f64>,
    /// Show the plan (per family: bytes, garbage estimate, whether it would be compacted and why) and compact nothing.
    #[serde(default, alias = "dry-run")]
    #[arg(long)]
    pub dry_run: bool,
}
