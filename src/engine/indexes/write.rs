//! Writing indexes: uploads chunk by chunk, the commit that checks size
//! and SHA-256 and swaps the content in one batch, deletes, aborts, and
//! the expiry of idle uploads.

use rocksdb::{Direction, IteratorMode, WriteBatch};
use sha2::{Digest, Sha256};

use super::{
    check_index_name, chunk_key, chunk_prefix, chunk_range_end, from_json, json_value, meta_key,
    seq_key, upload_key, IndexInfo, Upload, UPLOAD_EXPIRY_MS,
};
use crate::codec::{self, Codec};
use crate::engine::{Cf, Engine};
use crate::error::{Error, Result};

impl Engine {
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
