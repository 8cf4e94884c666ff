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

use base64::Engine as _;
use rocksdb::{Direction, IteratorMode, WriteBatch};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

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

    /// Append `data` at `offset` of an upload (a new one when `upload_id` is
    /// None, which needs offset 0). Returns the upload after the append.
    pub fn index_upload(
        &self,
        name: &str,
        upload_id: Option<&str>,
        offset: u64,
        data: &[u8],
    ) -> Result<Upload> {
        check_index_name(name)?;
        let _lock = self.index_lock.lock().unwrap_or_else(|p| p.into_inner());
        let now = self.clock().now_ms();
        let mut batch = WriteBatch::default();
        let cf = self.cf(Cf::Indexes);
        let mut upload = match upload_id {
            None => {
                if offset != 0 {
                    return Err(Error::invalid(format!(
                        "a new upload starts at offset 0, not {offset}; pass upload_id to continue one"
                    )));
                }
                self.expire_uploads(now, &mut batch)?;
                Upload {
                    upload_id: crate::fs::hex(&crate::fs::random::<12>()?),
                    name: name.to_string(),
                    received: 0,
                    started_at_ms: now,
                    updated_at_ms: now,
                }
            }
            Some(id) => {
                let up = self.upload_of(name, id)?.ok_or_else(|| {
                    Error::not_found(format!(
                        "no upload {id:?}: it was committed, aborted or expired; start a new one"
                    ))
                })?;
                if up.received != offset {
                    return Err(Error::invalid(format!(
                        "upload {id:?} holds {} bytes, so the next chunk starts at offset {}, not {offset}",
                        up.received, up.received
                    )));
                }
                up
            }
        };
        if data.is_empty() && upload_id.is_some() {
            return Ok(upload);
        }
        if !data.is_empty() {
            batch.put_cf(
                cf,
                chunk_key(&upload.upload_id, offset),
                codec::encode(Codec::Raw, data),
            );
        }
        upload.received = offset
            .checked_add(data.len() as u64)
            .ok_or_else(|| Error::invalid("offset + chunk length overflows"))?;
        upload.updated_at_ms = now;
        batch.put_cf(cf, upload_key(&upload.upload_id), json_value(&upload)?);
        self.write(batch)?;
        Ok(upload)
    }

    /// Delete uploads idle for longer than [`UPLOAD_EXPIRY_MS`] in `batch`
    /// (an unreadable upload record is skipped with a warning, so it cannot
    /// block new uploads).
    fn expire_uploads(&self, now: i64, batch: &mut WriteBatch) -> Result<()> {
        let cf = self.cf(Cf::Indexes);
        let it = self
            .db()
            .iterator_cf(cf, IteratorMode::From(b"u\0", Direction::Forward));
        for item in it {
            let (k, v) = item?;
            if !k.starts_with(b"u\0") {
                break;
            }
            let up: Upload = match from_json(&v, "upload record") {
                Ok(u) => u,
                Err(e) => {
                    tracing::warn!(error = %e, "skipping an unreadable index upload record");
                    continue;
                }
            };
            if now - up.updated_at_ms.max(up.started_at_ms) > UPLOAD_EXPIRY_MS {
                tracing::info!(upload = %up.upload_id, index = %up.name, "removing an upload unfinished for a day");
                batch.delete_cf(cf, &k);
                batch.delete_range_cf(
                    cf,
                    chunk_prefix(&up.upload_id),
                    chunk_range_end(&up.upload_id),
                );
            }
        }
        Ok(())
    }

    /// SHA-256 and length of a blob, reading its chunks in order and
    /// checking they are contiguous.
    fn blob_digest(&self, blob: &str) -> Result<(String, u64)> {
        let prefix = chunk_prefix(blob);
        let mut h = Sha256::new();
        let mut len = 0u64;
        let it = self.db().iterator_cf(
            self.cf(Cf::Indexes),
            IteratorMode::From(&prefix, Direction::Forward),
        );
        for item in it {
            let (k, v) = item?;
            let Some(off) = k.strip_prefix(prefix.as_slice()) else {
                break;
            };
            let off = u64::from_be_bytes(off.try_into().map_err(|_| {
                Error::corruption(format!("index chunk key of blob {blob:?} is malformed"))
            })?);
            if off != len {
                return Err(Error::corruption(format!(
                    "blob {blob:?} has a chunk at offset {off} where {len} was expected"
                )));
            }
            let bytes = codec::expect(&v, Codec::Raw).map_err(|e| e.context("index chunk"))?;
            h.update(bytes);
            len += bytes.len() as u64;
        }
        Ok((crate::fs::hex(&h.finalize()), len))
    }

    /// Make an upload the content of `name`, checking its size and (when
    /// given) SHA-256. The previous content is deleted in the same batch.
    #[allow(clippy::too_many_arguments)]
    pub fn index_commit(
        &self,
        name: &str,
        upload_id: &str,
        index_type: &str,
        size: Option<u64>,
        sha256: Option<&str>,
        source: Option<String>,
        metadata: Option<serde_json::Value>,
    ) -> Result<(IndexInfo, Option<IndexInfo>)> {
        check_index_name(name)?;
        if index_type.is_empty() || index_type.len() > 64 {
            return Err(Error::invalid(
                "index_type must be 1..=64 bytes (e.g. \"hnsw\")",
            ));
        }
        let _lock = self.index_lock.lock().unwrap_or_else(|p| p.into_inner());
        let up = self.upload_of(name, upload_id)?.ok_or_else(|| {
            Error::not_found(format!(
                "no upload {upload_id:?}: it was committed, aborted or expired"
            ))
        })?;
        if let Some(size) = size.filter(|s| *s != up.received) {
            return Err(Error::invalid(format!(
                "upload {upload_id:?} holds {} bytes but size says {size}; send the rest or start again",
                up.received
            )));
        }
        let (digest, len) = self.blob_digest(upload_id)?;
        if len != up.received {
            return Err(Error::corruption(format!(
                "upload {upload_id:?} records {} bytes but its chunks hold {len}",
                up.received
            )));
        }
        if let Some(want) = sha256.filter(|w| !w.eq_ignore_ascii_case(&digest)) {
            return Err(Error::invalid(format!(
                "upload {upload_id:?} has SHA-256 {digest}, not {want}: the bytes were damaged or a chunk is missing; nothing was committed"
            )));
        }
        let previous = self.index_get(name)?;
        let now = self.clock().now_ms();
        let mut info = IndexInfo {
            name: name.to_string(),
            index_type: index_type.to_string(),
            size_bytes: len,
            sha256: digest,
            source,
            metadata,
            committed_at: crate::clock::iso_ms(now),
            committed_at_ms: now,
            committed_sequence: 0,
            blob: upload_id.to_string(),
        };
        let cf = self.cf(Cf::Indexes);
        let mut batch = WriteBatch::default();
        batch.put_cf(cf, meta_key(name), json_value(&info)?);
        batch.delete_cf(cf, upload_key(upload_id));
        if let Some(old) = &previous {
            batch.delete_range_cf(cf, chunk_prefix(&old.blob), chunk_range_end(&old.blob));
        }
        batch.delete_cf(cf, seq_key(name));
        self.expire_uploads(now, &mut batch)?;
        self.write(batch)?;
        // The sequence is known only once written: record it under its own
        // key (no change event; until it lands, readers see 0: "held by no
        // snapshot yet", the safe answer).
        info.committed_sequence = self.db().latest_sequence_number();
        let mut seq = WriteBatch::default();
        seq.put_cf(
            cf,
            seq_key(name),
            codec::encode(Codec::Raw, &info.committed_sequence.to_be_bytes()),
        );
        self.write(seq)?;
        Ok((info, previous))
    }

    /// Up to `length` bytes of `name` from `offset`.
    pub fn index_read(
        &self,
        name: &str,
        offset: u64,
        length: usize,
        expect_sha256: Option<&str>,
    ) -> Result<(IndexInfo, Vec<u8>)> {
        check_index_name(name)?;
        // One snapshot for the record and the chunks: a commit or delete
        // in between cannot mix two contents or remove chunks mid-read.
        let snap = self.db().snapshot();
        let cf = self.cf(Cf::Indexes);
        let info: IndexInfo = match snap.get_pinned_cf(cf, meta_key(name))? {
            Some(b) => from_json(&b, &format!("index {name:?}"))?,
            None => return Err(Error::not_found(format!("no index {name:?}"))),
        };
        if let Some(want) = expect_sha256.filter(|w| !w.eq_ignore_ascii_case(&info.sha256)) {
            return Err(Error::invalid(format!(
                "index {name:?} was replaced while it was being read (its SHA-256 is now {}, \
                 not {want}); read it again from offset 0",
                info.sha256
            )));
        }
        if offset > info.size_bytes {
            return Err(Error::invalid(format!(
                "offset {offset} is past the end of index {name:?} ({} bytes)",
                info.size_bytes
            )));
        }
        let want = length
            .min(MAX_CHUNK_BYTES)
            .min((info.size_bytes - offset) as usize);
        let mut out = Vec::with_capacity(want);
        let prefix = chunk_prefix(&info.blob);
        // The chunk holding `offset` starts at or before it.
        let mut it = snap.raw_iterator_cf(cf);
        it.seek_for_prev(chunk_key(&info.blob, offset));
        while out.len() < want && it.valid() {
            let (Some(k), Some(v)) = (it.key(), it.value()) else {
                break;
            };
            let Some(start) = k
                .strip_prefix(prefix.as_slice())
                .and_then(|o| o.try_into().ok())
                .map(u64::from_be_bytes)
            else {
                break;
            };
            let bytes = codec::expect(v, Codec::Raw).map_err(|e| e.context("index chunk"))?;
            let pos = offset + out.len() as u64;
            if start > pos {
                return Err(Error::corruption(format!(
                    "index {name:?}: no chunk holds offset {pos} (the next starts at {start})"
                )));
            }
            let skip = (pos - start) as usize;
            if skip < bytes.len() {
                let take = (want - out.len()).min(bytes.len() - skip);
                out.extend_from_slice(&bytes[skip..skip + take]);
            }
            it.next();
        }
        it.status()?;
        if out.len() != want {
            return Err(Error::corruption(format!(
                "index {name:?}: expected {want} bytes at offset {offset}, its chunks hold {}",
                out.len()
            )));
        }
        self.counters()
            .read_bytes
            .fetch_add(out.len() as u64, std::sync::atomic::Ordering::Relaxed);
        Ok((info, out))
    }

    /// Delete a committed index (and its chunks); false when there was none.
    pub fn index_delete(&self, name: &str) -> Result<bool> {
        check_index_name(name)?;
        let _lock = self.index_lock.lock().unwrap_or_else(|p| p.into_inner());
        let Some(info) = self.index_get(name)? else {
            return Ok(false);
        };
        let cf = self.cf(Cf::Indexes);
        let mut batch = WriteBatch::default();
        batch.delete_cf(cf, meta_key(name));
        batch.delete_cf(cf, seq_key(name));
        batch.delete_range_cf(cf, chunk_prefix(&info.blob), chunk_range_end(&info.blob));
        self.write(batch)?;
        Ok(true)
    }

    /// Abandon an upload of `name` and its chunks; false when there was none.
    pub fn index_abort(&self, name: &str, upload_id: &str) -> Result<bool> {
        check_index_name(name)?;
        let _lock = self.index_lock.lock().unwrap_or_else(|p| p.into_inner());
        if self.upload_of(name, upload_id)?.is_none() {
            return Ok(false);
        }
        let cf = self.cf(Cf::Indexes);
        let mut batch = WriteBatch::default();
        batch.delete_cf(cf, upload_key(upload_id));
        batch.delete_range_cf(cf, chunk_prefix(upload_id), chunk_range_end(upload_id));
        self.write(batch)?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::engine::testutil::open_temp;

    fn chunks(e: &Engine, blob: &str) -> usize {
        e.db()
            .prefix_iterator_cf(e.cf(Cf::Indexes), chunk_prefix(blob))
            .filter_map(|r| r.ok())
            .filter(|(k, _)| k.starts_with(&chunk_prefix(blob)))
            .count()
    }

    fn content(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 31 % 251) as u8).collect()
    }

    #[test]
    fn an_index_uploaded_in_chunks_reads_back_byte_for_byte() {
        let (_d, e) = open_temp(ManualClock::new(1_000));
        let bytes = content(10_000);
        let up = e.index_upload("hnsw-v2", None, 0, &bytes[..4096]).unwrap();
        let up = e
            .index_upload("hnsw-v2", Some(&up.upload_id), 4096, &bytes[4096..])
            .unwrap();
        assert_eq!(up.received, 10_000);
        let digest = crate::fs::hex(&Sha256::digest(&bytes));
        let (info, prev) = e
            .index_commit(
                "hnsw-v2",
                &up.upload_id,
                "hnsw",
                Some(10_000),
                Some(&digest),
                None,
                None,
            )
            .unwrap();
        assert!(prev.is_none());
        assert_eq!(info.size_bytes, 10_000);
        // Reads that start inside a chunk and cross into the next.
        for (off, len) in [
            (0, 10_000),
            (100, 5000),
            (4095, 2),
            (9_999, 50),
            (10_000, 5),
        ] {
            let (_, got) = e.index_read("hnsw-v2", off, len, None).unwrap();
            let end = (off as usize + len).min(10_000);
            assert_eq!(got, bytes[off as usize..end], "offset {off} length {len}");
        }
        assert!(e.index_read("hnsw-v2", 10_001, 1, None).is_err());
        let (list, uploads) = e.index_list().unwrap();
        assert_eq!(list, vec![info]);
        assert!(
            uploads.is_empty(),
            "a committed upload is no longer pending"
        );
    }

    #[test]
    fn a_bad_upload_changes_nothing_and_says_why() {
        let (_d, e) = open_temp(ManualClock::new(1_000));
        let old = content(3000);
        let up = e.index_upload("ivf", None, 0, &old).unwrap();
        e.index_commit("ivf", &up.upload_id, "ivf", None, None, None, None)
            .unwrap();
        let new = content(5000);
        let up = e.index_upload("ivf", None, 0, &new[..1000]).unwrap();
        // Out of order: the offset must be what the upload holds.
        let err = e
            .index_upload("ivf", Some(&up.upload_id), 2000, &new[2000..])
            .unwrap_err();
        assert!(
            err.message.contains("next chunk starts at offset 1000"),
            "{err}"
        );
        // Wrong size and wrong checksum refuse the commit.
        let err = e
            .index_commit("ivf", &up.upload_id, "ivf", Some(5000), None, None, None)
            .unwrap_err();
        assert!(err.message.contains("holds 1000 bytes"), "{err}");
        let err = e
            .index_commit("ivf", &up.upload_id, "ivf", None, Some("00"), None, None)
            .unwrap_err();
        assert!(err.message.contains("nothing was committed"), "{err}");
        for bad in ["../x", "a//b", "/a", "a b", ""] {
            assert!(e.index_upload(bad, None, 0, b"x").is_err(), "{bad:?}");
        }
        assert!(e.index_upload("team-a/hnsw.v2", None, 0, b"x").is_ok());
        assert!(e.index_upload("ivf", None, 5, b"x").is_err());
        // The old content is untouched.
        let (info, got) = e.index_read("ivf", 0, 10_000, None).unwrap();
        assert_eq!(got, old);
        assert_eq!(info.size_bytes, 3000);
        // Replacing deletes the old chunks in the same batch.
        e.index_upload("ivf", Some(&up.upload_id), 1000, &new[1000..])
            .unwrap();
        let (_, prev) = e
            .index_commit("ivf", &up.upload_id, "ivf", Some(5000), None, None, None)
            .unwrap();
        let old_blob = prev.unwrap().blob;
        assert_eq!(chunks(&e, &old_blob), 0, "old chunks are gone");
        assert_eq!(e.index_read("ivf", 0, 10_000, None).unwrap().1, new);
        assert!(e.index_delete("ivf").unwrap());
        assert!(!e.index_delete("ivf").unwrap());
        assert!(e.index_read("ivf", 0, 1, None).is_err());
    }

    #[test]
    fn unfinished_uploads_expire_after_a_day() {
        let clock = ManualClock::new(1_000);
        let (_d, e) = open_temp(clock.clone());
        let stale = e.index_upload("a", None, 0, b"abc").unwrap();
        clock.advance_ms(UPLOAD_EXPIRY_MS + 1);
        let fresh = e.index_upload("b", None, 0, b"def").unwrap();
        let (_, uploads) = e.index_list().unwrap();
        assert_eq!(uploads, vec![fresh.clone()]);
        assert!(e
            .index_upload("a", Some(&stale.upload_id), 3, b"g")
            .is_err());
        assert_eq!(chunks(&e, &stale.upload_id), 0, "its chunks went with it");
        assert_eq!(chunks(&e, &fresh.upload_id), 1);
        // Expiry counts from the last chunk, not the start.
        clock.advance_ms(UPLOAD_EXPIRY_MS - 10);
        e.index_upload("b", Some(&fresh.upload_id), 3, b"ghi")
            .unwrap();
        clock.advance_ms(20);
        e.index_upload("c", None, 0, b"x").unwrap();
        let (_, uploads) = e.index_list().unwrap();
        assert!(
            uploads.iter().any(|u| u.upload_id == fresh.upload_id),
            "{uploads:?}"
        );
    }
}
