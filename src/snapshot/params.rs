//! What the snapshot operations take: one type per operation, read from
//! JSON-RPC params, MCP arguments and CLI flags alike (see the operation table in `ops`).

use clap::Args;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::retention::Policy;
use super::Kind;

/// Create a point-in-time snapshot (RocksDB checkpoint, hard links) with a checksummed manifest.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema, Args)]
#[serde(deny_unknown_fields)]
pub struct CreateParams {
    /// Default: snap-YYYYMMDD-HHMMSS-mmm.
    #[serde(default)]
    #[arg(long)]
    pub name: Option<String>,
    /// Verify the snapshot right after creating it.
    #[serde(default)]
    #[arg(long)]
    pub verify: bool,
    /// Set by the scheduler (not a wire field).
    #[serde(skip)]
    #[schemars(skip)]
    #[arg(skip)]
    pub scheduled: bool,
}

/// List snapshots; with_size adds the bytes each one alone holds (its delta).
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema, Args)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// Add each snapshot's exclusive bytes (its delta).
    #[serde(default)]
    #[arg(long)]
    pub with_size: bool,
}

/// Replace the live store with a snapshot (the replaced state is kept as an undo snapshot).
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema, Args)]
#[serde(deny_unknown_fields)]
pub struct RestoreParams {
    #[arg(long)]
    pub name: String,
}

/// Re-check every file checksum of a snapshot and read all of it (default: the newest).
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema, Args)]
#[serde(deny_unknown_fields)]
pub struct VerifyParams {
    /// Default: the newest snapshot.
    #[serde(default)]
    #[arg(long)]
    pub name: Option<String>,
}

/// Delete a snapshot; refused without confirm: true.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema, Args)]
#[serde(deny_unknown_fields)]
pub struct DeleteParams {
    #[arg(long)]
    pub name: String,
    /// Required: deleting is not undoable.
    #[serde(default)]
    #[arg(long)]
    pub confirm: bool,
}

/// Apply a retention policy (restic's keep-* rules); dry-run prints the plan only.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema, Args)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PruneParams {
    /// Print the plan; delete nothing.
    #[serde(default, alias = "dry_run")]
    #[arg(long)]
    pub dry_run: bool,
    /// Only consider snapshots of this kind; the others are left out of
    /// the plan. Default: all.
    #[serde(default)]
    #[arg(long, value_enum)]
    pub kind: Option<Kind>,
    #[serde(flatten)]
    #[command(flatten)]
    pub policy: Policy,
}
