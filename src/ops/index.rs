//! Index files (HNSW, IVF, …) stored for index agents: chunked upload,
//! atomic commit, ranged reads.

use base64::Engine as _;
use clap::Args;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{json_arg, Blocking, Store};
use crate::engine::indexes::{decode_chunk, MAX_CHUNK_BYTES};
use crate::error::Result;

/// Append a chunk (base64, at most 8 MiB) to an index upload: omit upload_id to start one at offset 0, then pass it with offset = bytes sent so far. Finish with index_commit.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, Args)]
#[serde(deny_unknown_fields)]
pub struct IndexUploadParams {
    #[arg(long)]
    pub name: String,
    /// Continue this upload; absent starts a new one (at offset 0).
    #[serde(default)]
    #[arg(long)]
    pub upload_id: Option<String>,
    /// Where this chunk starts: the bytes the upload holds so far.
    #[serde(default)]
    #[arg(long, default_value_t = 0)]
    pub offset: u64,
    /// The chunk, base64 (at most 8 MiB decoded).
    #[arg(long)]
    #[schemars(extend("contentEncoding" = "base64"))]
    pub data: String,
}

impl Blocking<Store> for IndexUploadParams {
    fn run(self, s: &Store) -> Result<Value> {
        let data = decode_chunk(&self.data)
            .map_err(|e| e.context(format!("index_upload {:?}", self.name)))?;
        let up = s.engine.get()?.index_upload(
            &self.name,
            self.upload_id.as_deref(),
            self.offset,
            &data,
        )?;
        Ok(json!({"name": self.name, "upload_id": up.upload_id, "received": up.received}))
    }
}

/// Make an upload the content of an index (HNSW, IVF, …), checking size and SHA-256; replaces the previous content atomically.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, Args)]
#[serde(deny_unknown_fields)]
pub struct IndexCommitParams {
    #[arg(long)]
    pub name: String,
    #[arg(long)]
    pub upload_id: String,
    /// e.g. hnsw, ivf.
    #[arg(long)]
    pub index_type: String,
    /// Expected total bytes (refused if the upload holds another count).
    #[serde(default)]
    #[arg(long)]
    pub size: Option<u64>,
    /// Expected SHA-256, hex (refused if the bytes differ).
    #[serde(default)]
    #[arg(long)]
    pub sha256: Option<String>,
    /// Where the uploader read it from (informational).
    #[serde(default)]
    #[arg(long)]
    pub source: Option<String>,
    /// The index's own parameters (dimension, M, ef, …), a JSON object.
    #[serde(default)]
    #[arg(long, value_parser = json_arg::<Value>)]
    #[schemars(with = "Option<serde_json::Map<String, Value>>")]
    pub metadata: Option<Value>,
}

impl Blocking<Store> for IndexCommitParams {
    fn run(self, s: &Store) -> Result<Value> {
        let (info, previous) = s.engine.get()?.index_commit(
            &self.name,
            &self.upload_id,
            &self.index_type,
            self.size,
            self.sha256.as_deref(),
            self.source,
            self.metadata,
        )?;
        Ok(json!({"index": info, "replaced": previous.map(|p| p.sha256)}))
    }
}

/// Read a stored index: up to length bytes (at most 8 MiB) from offset, base64, with its size and SHA-256.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, Args)]
#[serde(deny_unknown_fields)]
pub struct IndexReadParams {
    #[arg(long)]
    pub name: String,
    #[serde(default)]
    #[arg(long, default_value_t = 0)]
    pub offset: u64,
    /// Bytes to return (at most 8 MiB).
    #[serde(default = "default_index_read")]
    #[arg(long, default_value_t = default_index_read())]
    #[schemars(range(min = 1))]
    pub length: usize,
    /// Refuse if the index was replaced: pass the sha256 the first call
    /// returned, so a replacement between the calls of one read is noticed.
    #[serde(default)]
    #[arg(long)]
    pub sha256: Option<String>,
}

const fn default_index_read() -> usize {
    MAX_CHUNK_BYTES
}

impl Blocking<Store> for IndexReadParams {
    fn run(self, s: &Store) -> Result<Value> {
        let (info, bytes) = s.engine.get()?.index_read(
            &self.name,
            self.offset,
            self.length,
            self.sha256.as_deref(),
        )?;
        let end = self.offset + bytes.len() as u64;
        Ok(json!({"name": info.name, "index_type": info.index_type,
            "size_bytes": info.size_bytes, "sha256": info.sha256,
            "offset": self.offset, "length": bytes.len(), "eof": end >= info.size_bytes,
            "data": base64::engine::general_purpose::STANDARD.encode(&bytes)}))
    }
}

/// Stored indexes (type, size, SHA-256, commit time) and unfinished uploads.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema, Args)]
#[serde(deny_unknown_fields)]
pub struct IndexListParams {}

impl Blocking<Store> for IndexListParams {
    fn run(self, s: &Store) -> Result<Value> {
        let (indexes, uploads) = s.engine.get()?.index_list()?;
        Ok(json!({"count": indexes.len(), "indexes": indexes, "uploads": uploads}))
    }
}

/// Delete a stored index, or abandon one of its unfinished uploads (upload_id).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, Args)]
#[serde(deny_unknown_fields)]
pub struct IndexDeleteParams {
    #[arg(long)]
    pub name: String,
    /// Abandon this unfinished upload of the index instead.
    #[serde(default)]
    #[arg(long)]
    pub upload_id: Option<String>,
}

impl Blocking<Store> for IndexDeleteParams {
    fn run(self, s: &Store) -> Result<Value> {
        let e = s.engine.get()?;
        Ok(match self.upload_id {
            Some(id) => {
                let aborted = e.index_abort(&self.name, &id)?;
                json!({"name": self.name, "upload_id": id, "aborted": aborted})
            }
            None => json!({"name": self.name, "deleted": e.index_delete(&self.name)?}),
        })
    }
}
