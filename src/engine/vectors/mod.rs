//! Collections and vectors: descriptors in `sys`, floats in `vectors`,
//! metadata JSON in `metadata`. Every batch is validated completely before
//! anything is written, and written as one WriteBatch.
//!
//! This file: the vector operations; `collections` holds the collection
//! descriptors, `input` what an upsert accepts and how it is validated,
//! `quantized` the codes of quantized collections, `search` the exact scan.

mod collections;
mod dedup;
mod input;
mod quantized;
mod reencode;
mod search;

#[cfg(test)]
mod dedup_tests;
#[cfg(test)]
mod quant_tests;
#[cfg(test)]
mod reencode_tests;
#[cfg(test)]
mod tests;

pub use collections::{CollectionInfo, Metric, Originals, Storage, DEFAULT_CALIBRATION_SAMPLE};
pub use dedup::{decode_count, decode_ref, DedupFigures, DedupLocks};
pub use input::VectorInput;
pub use quantized::{Quantizers, VectorSample};
pub use reencode::{ReEncode, Step};
pub use search::{Hit, SearchCache, SearchOut, SearchRequest, MAX_K};

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine as _;
use rocksdb::{ReadOptions, WriteBatch};
use serde::Serialize;
use serde_json::Value;

use super::{composite_key, Cf, Engine};
use crate::codec::{self, Codec};
use crate::error::{Error, Result};
use crate::quant::Quantizer;

use input::{encode_vector, json_type};

/// A held schema lock (either side); held, not read: dropping it unlocks.
pub(super) enum SchemaGuard<'a> {
    Shared(#[allow(dead_code)] std::sync::RwLockReadGuard<'a, ()>),
    Exclusive(#[allow(dead_code)] std::sync::RwLockWriteGuard<'a, ()>),
}

impl Engine {
    pub(super) fn ddl_read(&self) -> std::sync::RwLockReadGuard<'_, ()> {
        self.ddl_lock.read().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn ddl_write(&self) -> std::sync::RwLockWriteGuard<'_, ()> {
        self.ddl_lock.write().unwrap_or_else(|p| p.into_inner())
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct VectorOut {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vector: Option<Vec<f32>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vector_b64: Option<String>,
    /// `raw`: the codes (one byte a dimension for int8, packed LSB-first
    /// under 8 bits; each `lo + c·step`), or little-endian f32, base64.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub codes_b64: Option<String>,
    /// `raw`: the calibration generation of the codes (none for f32).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub calibration: Option<u8>,
    pub metadata: Option<Value>,
}

/// How `vector_get` returns vectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VectorFormat {
    /// f32 numbers (dequantized for a quantized collection).
    Floats,
    /// Base64 of little-endian f32 (dequantized).
    Base64,
    /// The stored codes as they are, with their calibration generation.
    Raw,
}

impl Engine {
    fn check_id(&self, id: &str) -> Result<()> {
        let max = self.limits().max_id_bytes;
        if id.is_empty() {
            return Err(Error::invalid("id must not be empty"));
        }
        if id.len() > max {
            return Err(Error::invalid(format!(
                "id is {} bytes, the limit is {max} (limits.max-id-bytes)",
                id.len()
            )));
        }
        if id.contains('\0') {
            return Err(Error::invalid("id must not contain NUL"));
        }
        Ok(())
    }

    fn check_batch_len(&self, what: &str, n: usize) -> Result<()> {
        let max = self.limits().max_batch;
        if n == 0 {
            return Err(Error::invalid(format!("{what} is empty")));
        }
        if n > max {
            return Err(Error::invalid(format!(
                "{what} has {n} items, the limit is {max} (limits.max-batch); split the request"
            )));
        }
        Ok(())
    }

    /// The schema lock for a write to `collection`, and its descriptor read
    /// under it: shared, or exclusive when the collection is
    /// [`CollectionInfo::guarded`] (calibration or re-encode steps read and
    /// rewrite its vectors).
    fn schema_guard(&self, collection: &str) -> Result<(SchemaGuard<'_>, CollectionInfo)> {
        let shared = self.ddl_read();
        let info = self.collection_required(collection)?;
        if !info.guarded() {
            return Ok((SchemaGuard::Shared(shared), info));
        }
        drop(shared);
        let exclusive = self.ddl_write();
        // Re-read: it may have changed between the two locks.
        let info = self.collection_required(collection)?;
        Ok((SchemaGuard::Exclusive(exclusive), info))
    }

    /// Validate every item, then write all of them in one batch.
    pub fn vector_upsert(&self, collection: &str, items: &[VectorInput]) -> Result<usize> {
        self.check_batch_len("vectors", items.len())?;
        // The descriptor is read under the schema lock and the batch
        // written before it is released (see `SchemaGuard`).
        let (_ddl, info) = self.schema_guard(collection)?;
        let current = self.current_quantizer(&info)?;
        let max_meta = self.limits().max_metadata_bytes;
        let mut seen: HashMap<&str, usize> = HashMap::with_capacity(items.len());
        let mut encoded = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            // Built only on the error path: the happy path allocates nothing here.
            let what = || format!("vectors[{i}] (id {:?})", item.id);
            self.check_id(&item.id).map_err(|e| e.context(what()))?;
            if let Some(first) = seen.insert(&item.id, i) {
                return Err(Error::invalid(format!(
                    "{}: id appears twice in the batch (also vectors[{first}])",
                    what()
                )));
            }
            let value = encode_vector(item, &info)
                .map_err(|e| Error::invalid(format!("{}: {e}", what())))?;
            let hash = info.dedup.then(|| dedup::content_hash(&value));
            let value = Self::to_stored(&info, current.as_ref(), value)?;
            let meta = match &item.metadata {
                None | Some(Value::Null) => None,
                Some(m @ Value::Object(_)) => {
                    let bytes =
                        serde_json::to_vec(m).map_err(|e| Error::internal(e.to_string()))?;
                    if bytes.len() > max_meta {
                        return Err(Error::invalid(format!(
                            "{}: metadata is {} bytes, the limit is {max_meta} (limits.max-metadata-bytes)",
                            what(),
                            bytes.len()
                        )));
                    }
                    Some(bytes)
                }
                Some(other) => {
                    return Err(Error::invalid(format!(
                        "{}: metadata must be a JSON object, got {}",
                        what(),
                        json_type(other)
                    )))
                }
            };
            encoded.push((composite_key(collection, &item.id), value, meta, hash));
        }
        let (vcf, mcf) = (self.cf(Cf::Vectors), self.cf(Cf::Metadata));
        let bytes: usize = encoded
            .iter()
            .map(|(k, v, m, _)| {
                3 * k.len()
                    + v.value.len()
                    + v.original.as_ref().map_or(0, Vec::len)
                    + m.as_ref().map_or(0, |m| m.len() + 1)
                    + 48
            })
            .sum();
        let mut batch = WriteBatch::with_capacity_bytes(bytes);
        // A dedup collection stages references, counts and new content;
        // its locks are held until the batch is written.
        let _held = if info.dedup {
            let changes: Vec<dedup::Change<'_>> = encoded
                .iter()
                .map(|(k, v, _, h)| (k.as_slice(), h.map(|h| (h, v))))
                .collect();
            Some(self.dedup_stage(&info, &mut batch, &changes)?.0)
        } else {
            None
        };
        let mut clipped = 0;
        for (key, stored, meta, _) in &encoded {
            clipped += stored.clipped;
            if !info.dedup {
                batch.put_cf(vcf, key, &stored.value);
                if let Some(o) = &stored.original {
                    batch.put_cf(self.cf(Cf::Originals), key, o);
                }
            }
            match meta {
                Some(m) => batch.put_cf(mcf, key, codec::encode(Codec::Json, m)),
                // Upsert replaces the whole record: clear old metadata, but
                // skip the tombstone when the bloom filter says there is none.
                None if self.db().key_may_exist_cf(mcf, key) => batch.delete_cf(mcf, key),
                None => {}
            }
        }
        self.write(batch)?;
        self.count_clipped(clipped);
        self.search_invalidate(collection);
        if info.guarded() {
            // The vectors are written; a calibration that fails is retried
            // by the next upsert.
            if let Err(e) = self.calibrate_if_due(info) {
                tracing::warn!(collection, error = %e, "calibrating the collection failed");
            }
            self.search_invalidate(collection);
        }
        Ok(encoded.len())
    }

    /// Fetch vectors by id; returns (found, missing ids).
    pub fn vector_get(
        &self,
        collection: &str,
        ids: &[String],
        with_vector: bool,
        format: VectorFormat,
    ) -> Result<(Vec<VectorOut>, Vec<String>)> {
        let info = self.collection_required(collection)?;
        self.check_batch_len("ids", ids.len())?;
        for (i, id) in ids.iter().enumerate() {
            self.check_id(id)
                .map_err(|e| e.context(format!("ids[{i}]")))?;
        }
        let mut found = Vec::new();
        let mut missing = Vec::new();
        for id in ids {
            let key = composite_key(collection, id);
            let Some(vbytes) = self.read_vector(&info, &key)? else {
                missing.push(id.clone());
                continue;
            };
            let metadata = match self.get(Cf::Metadata, &key)? {
                None => None,
                Some(m) => Some(
                    serde_json::from_slice(codec::expect(&m, Codec::Json)?)
                        .map_err(|e| Error::corruption(format!("metadata of {id:?}: {e}")))?,
                ),
            };
            let mut out = VectorOut {
                id: id.clone(),
                vector: None,
                vector_b64: None,
                codes_b64: None,
                calibration: None,
                metadata,
            };
            let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
            let decoded = || {
                self.decode_vector(collection, &vbytes)
                    .map_err(|e| e.context(format!("vector {id:?}")))
            };
            match (with_vector, format) {
                (false, _) => {}
                (true, VectorFormat::Floats) => out.vector = Some(decoded()?),
                (true, VectorFormat::Base64) => {
                    out.vector_b64 = Some(b64(&codec::f32_to_le(&decoded()?)))
                }
                (true, VectorFormat::Raw) => match codec::decode(&vbytes)? {
                    (Codec::Quantized, [generation, code @ ..]) => {
                        // int8 bytes are stored zigzag around a centre:
                        // give the codes the ranges decode.
                        let q = self.quantizer(collection, *generation)?;
                        if q.centre.is_empty() {
                            out.codes_b64 = Some(b64(code));
                        } else {
                            let mut codes = vec![0u8; q.dimension];
                            q.unpack_into(code, &mut codes)
                                .map_err(|e| e.context(format!("vector {id:?}")))?;
                            out.codes_b64 = Some(b64(&codes));
                        }
                        out.calibration = Some(*generation);
                    }
                    (_, payload) => out.codes_b64 = Some(b64(payload)),
                },
            }
            found.push(out);
        }
        Ok((found, missing))
    }

    /// Delete vectors (and their metadata) atomically; returns how many existed.
    pub fn vector_delete(&self, collection: &str, ids: &[String]) -> Result<usize> {
        // Not between a calibration's (or a re-encode step's) read and its
        // write, which would put a deleted vector back.
        let (_ddl, info) = self.schema_guard(collection)?;
        self.check_batch_len("ids", ids.len())?;
        for (i, id) in ids.iter().enumerate() {
            self.check_id(id)
                .map_err(|e| e.context(format!("ids[{i}]")))?;
        }
        let (vcf, mcf) = (self.cf(Cf::Vectors), self.cf(Cf::Metadata));
        let mut existed = 0;
        let mut batch = WriteBatch::default();
        let mut keys: Vec<Vec<u8>> = ids.iter().map(|id| composite_key(collection, id)).collect();
        // An id given twice is deleted (and counted) once.
        keys.sort_unstable();
        keys.dedup();
        let _held = if info.dedup {
            let changes: Vec<dedup::Change<'_>> =
                keys.iter().map(|k| (k.as_slice(), None)).collect();
            let (held, n) = self.dedup_stage(&info, &mut batch, &changes)?;
            existed = n;
            Some(held)
        } else {
            None
        };
        for key in &keys {
            if info.dedup {
                batch.delete_cf(mcf, key);
                continue;
            }
            if self.db().get_pinned_cf(vcf, key)?.is_some() {
                existed += 1;
            }
            batch.delete_cf(vcf, key);
            batch.delete_cf(mcf, key);
            // (A re-encode to f32 may not have reached this one yet.)
            if info.quantization != crate::quant::Quantization::None || info.reencode.is_some() {
                batch.delete_cf(self.cf(Cf::Originals), key);
            }
        }
        self.write(batch)?;
        self.search_invalidate(collection);
        Ok(existed)
    }

    /// The calibration record `generation` of `collection` (what `raw`
    /// codes of `vector_get` decode with).
    pub fn calibration(&self, collection: &str, generation: u8) -> Result<Arc<Quantizer>> {
        self.collection_required(collection)?;
        self.quantizer(collection, generation)
    }

    /// Total vectors across collections (exact; walks the keys).
    pub fn vector_count(&self) -> Result<u64> {
        let mut ro = ReadOptions::default();
        ro.fill_cache(false);
        let mut it = self.db().raw_iterator_cf_opt(self.cf(Cf::Vectors), ro);
        it.seek_to_first();
        let mut n = 0;
        while it.valid() {
            n += 1;
            it.next();
        }
        it.status()?;
        Ok(n)
    }
}
