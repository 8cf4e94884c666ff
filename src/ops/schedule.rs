//! The scheduler's one operation.

use clap::Args;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Blocking;
use crate::error::Result;
use crate::schedule::Jobs;

/// Cron jobs with last run, next run and last result.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema, Args)]
#[serde(deny_unknown_fields)]
pub struct ScheduleListParams {}

impl Blocking<Jobs> for ScheduleListParams {
    fn run(self, jobs: &Jobs) -> Result<Value> {
        Ok(jobs.list())
    }
}
