//! Collections and vectors: descriptors in `sys`, floats in `vectors`,
//! metadata JSON in `metadata`. Every batch is validated completely before
//! anything is written, and written as one WriteBatch.
//!
//! This file: the vector operations; `collections` holds the collection
//! descriptors, `input` what an upsert accepts and how it is validated.

mod collections;
mod input;

#[cfg(test)]
mod tests;

pub use collections::{CollectionInfo, Metric};
pub use input::VectorInput;

use std::collections::HashMap;

use base64::Engine as _;
use rocksdb::{ReadOptions, WriteBatch};
use serde::Serialize;
use serde_json::Value;

use super::{composite_key, Cf, Engine};
use crate::codec::{self, Codec};
use crate::error::{Error, Result};

use input::{encode_vector, json_type};

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct VectorOut {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vector: Option<Vec<f32>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vector_b64: Option<String>,
    pub metadata: Option<Value>,
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

    /// Validate every item, then write all of them in one batch.
    pub fn vector_upsert(&self, collection: &str, items: &[VectorInput]) -> Result<usize> {
        let info = self.collection_required(collection)?;
        self.check_batch_len("vectors", items.len())?;
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
            encoded.push((composite_key(collection, &item.id), value, meta));
        }
        let (vcf, mcf) = (self.cf(Cf::Vectors), self.cf(Cf::Metadata));
        let bytes: usize = encoded
            .iter()
            .map(|(k, v, m)| 2 * k.len() + v.len() + m.as_ref().map_or(0, |m| m.len() + 1) + 32)
            .sum();
        let mut batch = WriteBatch::with_capacity_bytes(bytes);
        for (key, vec_bytes, meta) in &encoded {
            batch.put_cf(vcf, key, vec_bytes);
            match meta {
                Some(m) => batch.put_cf(mcf, key, codec::encode(Codec::Json, m)),
                // Upsert replaces the whole record: clear old metadata, but
                // skip the tombstone when the bloom filter says there is none.
                None if self.db().key_may_exist_cf(mcf, key) => batch.delete_cf(mcf, key),
                None => {}
            }
        }
        self.write(batch)?;
        Ok(encoded.len())
    }

    /// Fetch vectors by id; returns (found, missing ids).
    pub fn vector_get(
        &self,
        collection: &str,
        ids: &[String],
        with_vector: bool,
        base64_out: bool,
    ) -> Result<(Vec<VectorOut>, Vec<String>)> {
        self.collection_required(collection)?;
        self.check_batch_len("ids", ids.len())?;
        for (i, id) in ids.iter().enumerate() {
            self.check_id(id)
                .map_err(|e| e.context(format!("ids[{i}]")))?;
        }
        let mut found = Vec::new();
        let mut missing = Vec::new();
        for id in ids {
            let key = composite_key(collection, id);
            let Some(vbytes) = self.get(Cf::Vectors, &key)? else {
                missing.push(id.clone());
                continue;
            };
            let payload = codec::expect(&vbytes, Codec::F32Le)
                .map_err(|e| e.context(format!("vector {id:?}")))?;
            let metadata = match self.get(Cf::Metadata, &key)? {
                None => None,
                Some(m) => Some(
                    serde_json::from_slice(codec::expect(&m, Codec::Json)?)
                        .map_err(|e| Error::corruption(format!("metadata of {id:?}: {e}")))?,
                ),
            };
            let (vector, vector_b64) = match (with_vector, base64_out) {
                (false, _) => (None, None),
                (true, true) => (
                    None,
                    Some(base64::engine::general_purpose::STANDARD.encode(payload)),
                ),
                (true, false) => (Some(codec::f32_from_le(payload)?), None),
            };
            found.push(VectorOut {
                id: id.clone(),
                vector,
                vector_b64,
                metadata,
            });
        }
        Ok((found, missing))
    }

    /// Delete vectors (and their metadata) atomically; returns how many existed.
    pub fn vector_delete(&self, collection: &str, ids: &[String]) -> Result<usize> {
        self.collection_required(collection)?;
        self.check_batch_len("ids", ids.len())?;
        for (i, id) in ids.iter().enumerate() {
            self.check_id(id)
                .map_err(|e| e.context(format!("ids[{i}]")))?;
        }
        let (vcf, mcf) = (self.cf(Cf::Vectors), self.cf(Cf::Metadata));
        let mut existed = 0;
        let mut batch = WriteBatch::default();
        for id in ids {
            let key = composite_key(collection, id);
            if self.db().get_pinned_cf(vcf, &key)?.is_some() {
                existed += 1;
            }
            batch.delete_cf(vcf, &key);
            batch.delete_cf(mcf, &key);
        }
        self.write(batch)?;
        Ok(existed)
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
