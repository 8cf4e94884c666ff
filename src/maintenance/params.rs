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

/// The running maintenance job (phase, bytes done of total) and the last one's result.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema, Args)]
#[serde(deny_unknown_fields)]
pub struct StatusParams {}
