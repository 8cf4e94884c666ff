//! Key/value operations: write, read, delete, scan.

use clap::Args;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{json_arg, Blocking, Store};
use crate::error::{Error, Result};

/// One entry of a batch write.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KvEntryParam {
    pub key: String,
    pub value: String,
}

/// Write a key/value pair (or several atomically with entries).
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema, Args)]
#[serde(deny_unknown_fields)]
pub struct StorageWriteParams {
    #[serde(default)]
    #[arg(long, required_unless_present = "entries", requires = "value")]
    pub key: Option<String>,
    #[serde(default)]
    #[arg(long, requires = "key")]
    pub value: Option<String>,
    /// Several entries, written atomically (CLI: a JSON object per flag).
    #[serde(default)]
    #[arg(long, value_parser = json_arg::<KvEntryParam>, conflicts_with = "key")]
    pub entries: Option<Vec<KvEntryParam>>,
}

impl StorageWriteParams {
    /// Every key the request writes.
    pub fn keys(&self) -> Vec<String> {
        self.key
            .iter()
            .cloned()
            .chain(self.entries.iter().flatten().map(|e| e.key.clone()))
            .collect()
    }
}

impl Blocking<Store> for StorageWriteParams {
    fn run(self, s: &Store) -> Result<Value> {
        let entries: Vec<(String, String)> = match (self.key, self.value, self.entries) {
            (Some(k), Some(v), None) => vec![(k, v)],
            (None, None, Some(list)) => list.into_iter().map(|x| (x.key, x.value)).collect(),
            (Some(_), None, None) => {
                return Err(Error::invalid("storage_write: value is required with key"))
            }
            _ => {
                return Err(Error::invalid(
                    "storage_write: give either key and value, or entries: [{key, value}]",
                ))
            }
        };
        s.engine.get()?.kv_put_many(&entries)?;
        let bytes: usize = entries.iter().map(|(k, v)| k.len() + v.len()).sum();
        Ok(json!({"written": entries.len(), "bytes": bytes,
            "keys": entries.iter().map(|(k, _)| k).collect::<Vec<_>>()}))
    }
}

/// Read the value of a key.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema, Args)]
#[serde(deny_unknown_fields)]
pub struct StorageReadParams {
    #[arg(long)]
    pub key: String,
}

impl Blocking<Store> for StorageReadParams {
    fn run(self, s: &Store) -> Result<Value> {
        let value = s.engine.get()?.kv_get(&self.key)?;
        Ok(json!({"key": self.key, "found": value.is_some(), "value": value}))
    }
}

/// Delete a key (or several atomically with keys).
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema, Args)]
#[serde(deny_unknown_fields)]
pub struct StorageDeleteParams {
    #[serde(default)]
    #[arg(long, required_unless_present = "keys")]
    pub key: Option<String>,
    #[serde(default)]
    #[arg(long, conflicts_with = "key", value_delimiter = ',')]
    pub keys: Option<Vec<String>>,
}

impl StorageDeleteParams {
    pub fn keys(&self) -> Vec<String> {
        self.key
            .iter()
            .chain(self.keys.iter().flatten())
            .cloned()
            .collect()
    }
}

impl Blocking<Store> for StorageDeleteParams {
    fn run(self, s: &Store) -> Result<Value> {
        let keys = match (self.key, self.keys) {
            (Some(k), None) => vec![k],
            (None, Some(ks)) => ks,
            _ => return Err(Error::invalid("storage_delete: give either key or keys")),
        };
        let existed = s.engine.get()?.kv_delete(&keys)?;
        Ok(json!({"deleted": existed, "requested": keys.len()}))
    }
}

/// List keys with a prefix in key order, a page at a time (pass next_cursor back as cursor).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, Args)]
#[serde(deny_unknown_fields)]
pub struct StorageScanParams {
    #[serde(default)]
    #[arg(long, default_value = "")]
    pub prefix: String,
    #[serde(default = "default_scan_limit")]
    #[arg(long, default_value_t = default_scan_limit())]
    #[schemars(range(min = 1, max = 10000))]
    pub limit: usize,
    /// The next_cursor of the previous page.
    #[serde(default)]
    #[arg(long)]
    pub cursor: Option<String>,
}

const fn default_scan_limit() -> usize {
    100
}

impl Blocking<Store> for StorageScanParams {
    fn run(self, s: &Store) -> Result<Value> {
        let page = s
            .engine
            .get()?
            .kv_scan(&self.prefix, self.limit, self.cursor.as_deref())?;
        Ok(json!(page))
    }
}
