//! What the backup operations take: one type per operation, read from
//! JSON-RPC params, MCP arguments and CLI flags alike (see the operation table in `ops`).
//!
//! Locations are URLs (`file:///abs/dir`, `s3://bucket/prefix`,
//! `az://container/prefix`, `gs://bucket/prefix`) or local paths. On the
//! command line a relative path is made absolute against the caller's
//! working directory (the daemon runs elsewhere) by [`location`].

use clap::Args;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::snapshot::retention::Policy;

/// How an incremental backup is made.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// The archived WAL while it is under half the base's size, else files.
    #[default]
    Auto,
    /// The checkpoint files the destination lacks.
    Files,
    /// The archived WAL since the base backup.
    Wal,
}

/// Back up the store to object storage (file://, s3://, az://, gs://): content-addressed objects, so unchanged files are not uploaded again; the manifest is written last.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema, Args)]
#[serde(deny_unknown_fields)]
pub struct CreateParams {
    /// Target URL or path. Default: [backup] destination, else <data-dir>/backups.
    #[serde(default)]
    #[arg(long, value_parser = location)]
    pub destination: Option<String>,
    /// A full backup: upload every object even if the target has it (default: incremental).
    #[serde(default)]
    #[arg(long, conflicts_with = "method")]
    pub full: bool,
    /// Encrypt with AES-256-GCM (key from the [backup] keyring).
    #[serde(default)]
    #[arg(long)]
    pub encrypt: bool,
    /// How an incremental backup is made.
    #[serde(default)]
    #[arg(long, value_enum, default_value_t)]
    pub method: Method,
    /// Default: backup-YYYYMMDD-HHMMSS-mmm.
    #[serde(default)]
    #[arg(long)]
    pub name: Option<String>,
}

/// List the backups in a location, oldest first.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema, Args)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// Default: [backup] destination, else <data-dir>/backups.
    #[serde(default)]
    #[arg(long, value_parser = location)]
    pub location: Option<String>,
    /// The keyring file for encrypted backups (default: [backup] keyring,
    /// else <data-dir>/backup-keyring.json).
    #[serde(default)]
    #[arg(long, value_parser = location)]
    pub keyring: Option<String>,
}

/// Check everything a restore will read: every backup's manifest and objects (present with their size; with read_data downloaded and checked against their SHA-256, or a share with read_data_subset like "10%"), the catalog, and the WAL archive (markers, contiguity; with read_data every segment). Each problem names the object and what it breaks.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema, Args)]
#[serde(deny_unknown_fields)]
pub struct VerifyParams {
    #[serde(default)]
    #[arg(long, value_parser = location)]
    pub location: Option<String>,
    /// Only this backup (and its base) and the archive. Default: every backup.
    #[serde(default)]
    #[arg(long)]
    pub name: Option<String>,
    /// Download, decode and checksum every object.
    #[serde(default, alias = "read-data")]
    #[arg(long, conflicts_with = "read_data_subset")]
    pub read_data: bool,
    /// ... or this share of them, e.g. "10%".
    #[serde(default, alias = "read-data-subset")]
    #[arg(long, value_name = "P%")]
    pub read_data_subset: Option<String>,
    /// The keyring file for encrypted backups (default: [backup] keyring,
    /// else <data-dir>/backup-keyring.json).
    #[serde(default)]
    #[arg(long, value_parser = location)]
    pub keyring: Option<String>,
}

/// Restore a backup (default: the newest) into the running daemon, or into a data directory with to (then the CLI runs it itself: no daemon needed).
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema, Args)]
#[serde(deny_unknown_fields)]
pub struct RestoreParams {
    /// The location, or one backup in it (<location>/backups/<name>.json).
    /// Default: [backup] destination, else <data-dir>/backups.
    #[serde(default)]
    #[arg(long, value_parser = location)]
    pub from: Option<String>,
    /// Default: the newest backup.
    #[serde(default)]
    #[arg(long)]
    pub name: Option<String>,
    /// Restore into this data directory (the store in DIR/db) instead of
    /// the running daemon; `serve --data-dir DIR` then serves it.
    #[serde(default)]
    #[arg(long, value_parser = location)]
    pub to: Option<String>,
    /// Replace a non-empty to.
    #[serde(default)]
    #[arg(long)]
    pub force: bool,
    /// The keyring file for an encrypted backup (default: [backup] keyring,
    /// else <data-dir>/backup-keyring.json). A restore to a directory copies
    /// it there.
    #[serde(default)]
    #[arg(long, value_parser = location)]
    pub keyring: Option<String>,
    /// Point in time: replay the WAL archive up to this sequence.
    #[serde(default, alias = "to-sequence")]
    #[arg(long, conflicts_with = "to_time")]
    pub to_sequence: Option<u64>,
    /// Point in time: up to the last batch committed at or before this time (RFC 3339, e.g. 2026-11-25T10:00:00Z, or epoch ms).
    #[serde(default, alias = "to-time")]
    #[arg(long)]
    pub to_time: Option<String>,
}

/// Delete backups by keep-* rules (plan first with dry-run); never deletes an object a kept backup uses, nor WAL a kept backup or the PITR window needs.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema, Args)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PruneParams {
    #[serde(default)]
    #[arg(long, value_parser = location)]
    pub location: Option<String>,
    /// Print the plan; delete nothing.
    #[serde(default, alias = "dry_run")]
    #[arg(long)]
    pub dry_run: bool,
    #[serde(flatten)]
    #[command(flatten)]
    pub policy: Policy,
}

/// Replicate backups (and the WAL archive) to a second location, incrementally.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema, Args)]
#[serde(deny_unknown_fields)]
pub struct CopyParams {
    /// Source. Default: [backup] destination, else <data-dir>/backups.
    #[serde(default)]
    #[arg(long, value_parser = location)]
    pub from: Option<String>,
    #[arg(long, value_parser = location)]
    pub to: String,
    /// Only this backup (default: every backup the destination lacks).
    #[serde(default)]
    #[arg(long)]
    pub name: Option<String>,
}

/// Restore drill: restore the newest backup into a scratch directory, open and read it all, publish the result, delete the scratch.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema, Args)]
#[serde(deny_unknown_fields)]
pub struct DrillParams {}

/// The running backup, restore or drill: phase, files and bytes done of total; and the last one's final figures.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema, Args)]
#[serde(deny_unknown_fields)]
pub struct StatusParams {}

/// Ship the committed WAL batches not yet archived to the target (one pass; the daemon also archives continuously with [backup] archive-wal).
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema, Args)]
#[serde(deny_unknown_fields)]
pub struct WalArchiveParams {
    /// Target URL or path. Default: [backup] destination, else <data-dir>/backups.
    #[serde(default)]
    #[arg(long, value_parser = location)]
    pub to: Option<String>,
}

/// Read archived changes after a sequence from the WAL archive, as change events.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, Args)]
#[serde(deny_unknown_fields)]
pub struct WalReplayParams {
    /// Archive location. Default as for wal_archive.
    #[serde(default)]
    #[arg(long, value_parser = location)]
    pub from: Option<String>,
    /// Changes after this sequence.
    #[serde(alias = "from-sequence")]
    #[arg(long)]
    pub from_sequence: u64,
    #[serde(default = "default_replay_limit")]
    #[arg(long, default_value_t = default_replay_limit())]
    #[schemars(range(min = 1))]
    pub limit: usize,
}

const fn default_replay_limit() -> usize {
    1000
}

/// A location given on the command line: URLs pass through (a `file://`
/// URL must name no host), a path is made absolute against the working
/// directory of the caller.
pub fn location(text: &str) -> std::result::Result<String, String> {
    if text.contains("://") {
        super::target::check_url(text).map_err(|e| e.message)?;
        return Ok(text.to_string());
    }
    std::path::absolute(text)
        .map(|p| p.display().to_string())
        .map_err(|e| format!("{text}: {e}"))
}
