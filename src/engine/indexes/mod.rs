//! Index persistence: the files an index agent builds (HNSW graphs, IVF
//! lists, …) stored durably in the `indexes` column family, so snapshots,
//! backups, PITR and encryption cover them like every other byte of the
//! store.
//!
//! An index arrives as an *upload*: chunks appended in order
//! (`index_upload`, each one a durable write that says how many bytes the
//! upload holds, so a client that lost a reply resends from there), then
//! `index_commit`, which checks size and SHA-256 and makes the new bytes the
//! index's content in one atomic batch (the previous content's chunks are
//! deleted in the same batch). One `index_read` reads one RocksDB snapshot,
//! so it sees the old or the new index, never a mix; a reader that pins the
//! `sha256` it started with is told when a commit replaced the index between
//! its calls. Uploads idle for a day are removed at the next upload start
//! or commit.
//!
//! Keys: `m\0<name>` → [`IndexInfo`] (JSON), `u\0<upload>` → [`Upload`]
//! (JSON), `c\0<blob>\0<offset: u64 BE>` → chunk bytes. A committed index's
//! blob is the id of the upload that wrote it.

//!
//! This file: the records, the key layout and lookups; `write` holds
//! uploads, commits, deletes and expiry; `read` the reads.

mod read;
mod write;

#[cfg(test)]
mod tests;

use base64::Engine as _;
use rocksdb::{Direction, IteratorMode};
use serde::{Deserialize, Serialize};

use super::{Cf, Engine};
use crate::codec::{self, Codec};
use crate::error::{Error, Result};

/// Largest chunk one `index_upload` may carry, and one `index_read` returns.
pub const MAX_CHUNK_BYTES: usize = 8 << 20;
/// Uploads idle for longer are removed at the next upload start or commit.
pub const UPLOAD_EXPIRY_MS: i64 = 24 * 3600 * 1000;
const MAX_INDEX_NAME: usize = 128;

/// A committed index.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct IndexInfo {
    pub name: String,
    /// `hnsw`, `ivf`, … as the index agent names it.
    pub index_type: String,
    pub size_bytes: u64,
    pub sha256: String,
    /// Where the uploader read it from (informational).
    #[serde(default)]
    pub source: Option<String>,
    /// The uploader's own description (parameters, dimension, …).
    #[serde(default)]
    pub metadata: Option<serde_json::Value>,
    pub committed_at: String,
    pub committed_at_ms: i64,
    /// The store's sequence just after the commit (an upper bound of the
    /// commit's own): a snapshot or backup at this sequence or later holds it.
    #[serde(default)]
    pub committed_sequence: u64,
    /// Id of the upload whose chunks hold the content.
    pub blob: String,
}

/// An upload in progress.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Upload {
    pub upload_id: String,
    pub name: String,
    pub received: u64,
    pub started_at_ms: i64,
    /// When the last chunk arrived (expiry counts from here).
    #[serde(default)]
    pub updated_at_ms: i64,
}

fn check_index_name(name: &str) -> Result<()> {
    if name.is_empty() || name.len() > MAX_INDEX_NAME {
        return Err(Error::invalid(format!(
            "index name {name:?} must be 1..={MAX_INDEX_NAME} bytes"
        )));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/')))
    {
        return Err(Error::invalid(format!(
            "index name {name:?} contains {c:?}; use letters, digits, '_', '-', '.' and '/'"
        )));
    }
    if name
        .split('/')
        .any(|seg| seg.is_empty() || seg == "." || seg == "..")
    {
        return Err(Error::invalid(format!(
            "index name {name:?} has an empty, '.' or '..' segment between '/'"
        )));
    }
    Ok(())
}

fn meta_key(name: &str) -> Vec<u8> {
    [b"m\0", name.as_bytes()].concat()
}

fn seq_key(name: &str) -> Vec<u8> {
    [b"s\0", name.as_bytes()].concat()
}

fn decode_seq(bytes: &[u8]) -> u64 {
    codec::expect(bytes, Codec::Raw)
        .ok()
        .and_then(|b| b.try_into().ok())
        .map(u64::from_be_bytes)
        .unwrap_or(0)
}

fn upload_key(id: &str) -> Vec<u8> {
    [b"u\0", id.as_bytes()].concat()
}

fn chunk_prefix(blob: &str) -> Vec<u8> {
    [b"c\0", blob.as_bytes(), b"\0"].concat()
}

fn chunk_key(blob: &str, offset: u64) -> Vec<u8> {
    [chunk_prefix(blob), offset.to_be_bytes().to_vec()].concat()
}

/// The end of a blob's key range (exclusive): its prefix with the last byte + 1.
fn chunk_range_end(blob: &str) -> Vec<u8> {
    [b"c\0", blob.as_bytes(), b"\x01"].concat()
}

fn json_value<T: Serialize>(v: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(v)
        .map(|b| codec::encode(Codec::Json, &b))
        .map_err(|e| Error::internal(e.to_string()))
}

fn from_json<T: for<'de> Deserialize<'de>>(bytes: &[u8], what: &str) -> Result<T> {
    let payload = codec::expect(bytes, Codec::Json).map_err(|e| e.context(what))?;
    serde_json::from_slice(payload).map_err(|e| Error::corruption(format!("{what}: {e}")))
}

/// Decode a chunk sent as base64, naming the problem.
pub fn decode_chunk(data: &str) -> Result<Vec<u8>> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data)
        .map_err(|e| Error::invalid(format!("data is not valid base64: {e}")))?;
    if bytes.len() > MAX_CHUNK_BYTES {
        return Err(Error::invalid(format!(
            "chunk is {} bytes, the limit is {MAX_CHUNK_BYTES}; send the index in smaller chunks",
            bytes.len()
        )));
    }
    Ok(bytes)
}

impl Engine {
    pub fn index_get(&self, name: &str) -> Result<Option<IndexInfo>> {
        check_index_name(name)?;
        let Some(mut info) = self.get_with(Cf::Indexes, &meta_key(name), |b| {
            from_json::<IndexInfo>(b, &format!("index {name:?}"))
        })?
        else {
            return Ok(None);
        };
        info.committed_sequence = self
            .get_with(Cf::Indexes, &seq_key(name), |b| Ok(decode_seq(b)))?
            .unwrap_or(0);
        Ok(Some(info))
    }

    fn upload_get(&self, id: &str) -> Result<Option<Upload>> {
        self.get_with(Cf::Indexes, &upload_key(id), |b| {
            from_json(b, &format!("upload {id:?}"))
        })
    }

    /// Upload `id`, refused when it belongs to another index than `name`.
    fn upload_of(&self, name: &str, id: &str) -> Result<Option<Upload>> {
        match self.upload_get(id)? {
            Some(up) if up.name != name => Err(Error::invalid(format!(
                "upload {id:?} is for index {:?}, not {name:?}",
                up.name
            ))),
            other => Ok(other),
        }
    }

    /// Every committed index and every unfinished upload, by name.
    pub fn index_list(&self) -> Result<(Vec<IndexInfo>, Vec<Upload>)> {
        let mut infos: Vec<IndexInfo> = Vec::new();
        let mut uploads = Vec::new();
        let mut seqs = std::collections::HashMap::new();
        // Keys sort c < m < s < u: everything from m on is records.
        let it = self.db().iterator_cf(
            self.cf(Cf::Indexes),
            IteratorMode::From(b"m\0", Direction::Forward),
        );
        for item in it {
            let (k, v) = item?;
            if k.starts_with(b"m\0") {
                infos.push(from_json(&v, "index record")?);
            } else if let Some(name) = k.strip_prefix(b"s\0") {
                seqs.insert(name.to_vec(), decode_seq(&v));
            } else if k.starts_with(b"u\0") {
                uploads.push(from_json(&v, "upload record")?);
            }
        }
        for i in &mut infos {
            i.committed_sequence = seqs.get(i.name.as_bytes()).copied().unwrap_or(0);
        }
        Ok((infos, uploads))
    }
}
