//! Collections and vectors: descriptors in `sys`, floats in `vectors`,
//! metadata JSON in `metadata`. Every batch is validated completely before
//! anything is written, and written as one WriteBatch.

use std::collections::HashMap;
use std::fmt;

use base64::Engine as _;
use rocksdb::{IteratorMode, ReadOptions, WriteBatch};
use serde::de::{SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use super::{composite_key, group_prefix, Cf, Engine};
use crate::codec::{self, Codec};
use crate::error::{Error, Result};

const COLLECTION_PREFIX: &str = "collection/";
const MAX_COLLECTION_NAME: usize = 128;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Metric {
    #[default]
    Cosine,
    Euclidean,
    Dot,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CollectionInfo {
    pub name: String,
    pub dimension: usize,
    pub metric: Metric,
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub vectors: Option<u64>,
}

/// Floats as JSON numbers, remembering the first element that was not a
/// number so the error can name it instead of failing the whole request.
#[derive(Debug, Clone, Default)]
pub struct LooseFloats {
    pub values: Vec<f64>,
    pub first_bad: Option<(usize, String)>,
}

impl<'de> Deserialize<'de> for LooseFloats {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = LooseFloats;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an array of numbers")
            }
            fn visit_seq<A: SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> std::result::Result<LooseFloats, A::Error> {
                let mut out = LooseFloats {
                    values: Vec::with_capacity(seq.size_hint().unwrap_or(0)),
                    first_bad: None,
                };
                let mut i = 0;
                while let Some(v) = seq.next_element::<Value>()? {
                    match v.as_f64() {
                        Some(x) => out.values.push(x),
                        None => {
                            if out.first_bad.is_none() {
                                out.first_bad = Some((i, v.to_string()));
                            }
                        }
                    }
                    i += 1;
                }
                Ok(out)
            }
        }
        d.deserialize_seq(V)
    }
}

/// One vector of an upsert: floats as a JSON array (`vector`) or as base64
/// of little-endian f32 (`vector_b64`), plus optional metadata object.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct VectorInput {
    pub id: String,
    #[serde(default)]
    pub vector: Option<LooseFloats>,
    #[serde(default)]
    pub vector_b64: Option<String>,
    #[serde(default)]
    pub metadata: Option<Value>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct VectorOut {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vector: Option<Vec<f32>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vector_b64: Option<String>,
    pub metadata: Option<Value>,
}

fn check_collection_name(name: &str) -> Result<()> {
    if name.is_empty() || name.len() > MAX_COLLECTION_NAME {
        return Err(Error::invalid(format!(
            "collection name {name:?} must be 1..={MAX_COLLECTION_NAME} bytes"
        )));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
    {
        return Err(Error::invalid(format!(
            "collection name {name:?} contains {c:?}; use letters, digits, '_', '-' and '.'"
        )));
    }
    Ok(())
}

impl Engine {
    fn check_id(&self, what: &str, id: &str) -> Result<()> {
        let max = self.limits().max_id_bytes;
        if id.is_empty() {
            return Err(Error::invalid(format!("{what}: id must not be empty")));
        }
        if id.len() > max {
            return Err(Error::invalid(format!(
                "{what}: id is {} bytes, the limit is {max} (limits.max-id-bytes)",
                id.len()
            )));
        }
        if id.contains('\0') {
            return Err(Error::invalid(format!("{what}: id must not contain NUL")));
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

    pub fn collection_create(
        &self,
        name: &str,
        dimension: usize,
        metric: Metric,
    ) -> Result<(CollectionInfo, bool)> {
        check_collection_name(name)?;
        let max = self.limits().max_dimension;
        if dimension == 0 || dimension > max {
            return Err(Error::invalid(format!(
                "dimension {dimension} is out of range 1..={max} (limits.max-dimension)"
            )));
        }
        if let Some(existing) = self.collection_get(name)? {
            if existing.dimension == dimension && existing.metric == metric {
                return Ok((existing, false));
            }
            return Err(Error::exists(format!(
                "collection {name:?} exists with dimension {} and metric {:?}",
                existing.dimension, existing.metric
            )));
        }
        let info = CollectionInfo {
            name: name.to_string(),
            dimension,
            metric,
            created_at: crate::clock::iso_ms(self.clock().now_ms()),
            vectors: None,
        };
        let body = serde_json::to_vec(&info).map_err(|e| Error::internal(e.to_string()))?;
        let mut batch = WriteBatch::default();
        batch.put_cf(
            self.cf(Cf::Sys),
            format!("{COLLECTION_PREFIX}{name}"),
            codec::encode(Codec::Json, &body),
        );
        self.write(batch)?;
        Ok((info, true))
    }

    pub fn collection_get(&self, name: &str) -> Result<Option<CollectionInfo>> {
        check_collection_name(name)?;
        match self.get(Cf::Sys, format!("{COLLECTION_PREFIX}{name}").as_bytes())? {
            None => Ok(None),
            Some(b) => {
                let payload = codec::expect(&b, Codec::Json)?;
                serde_json::from_slice(payload)
                    .map(Some)
                    .map_err(|e| Error::corruption(format!("collection {name:?} descriptor: {e}")))
            }
        }
    }

    fn collection_required(&self, name: &str) -> Result<CollectionInfo> {
        self.collection_get(name)?.ok_or_else(|| {
            Error::not_found(format!(
                "collection {name:?} does not exist; create it with collection_create"
            ))
        })
    }

    /// All collections with their exact vector counts.
    pub fn collection_list(&self) -> Result<Vec<CollectionInfo>> {
        let mut out = Vec::new();
        let iter = self
            .db()
            .prefix_iterator_cf(self.cf(Cf::Sys), COLLECTION_PREFIX.as_bytes());
        for item in iter {
            let (k, v) = item?;
            if !k.starts_with(COLLECTION_PREFIX.as_bytes()) {
                break;
            }
            let payload = codec::expect(&v, Codec::Json)?;
            let mut info: CollectionInfo = serde_json::from_slice(payload)
                .map_err(|e| Error::corruption(format!("collection descriptor: {e}")))?;
            info.vectors = Some(self.count_prefix(Cf::Vectors, &group_prefix(&info.name))?);
            out.push(info);
        }
        Ok(out)
    }

    fn count_prefix(&self, cf: Cf, prefix: &[u8]) -> Result<u64> {
        let mut ro = ReadOptions::default();
        ro.fill_cache(false);
        let mut upper = prefix.to_vec();
        if let Some(last) = upper.last_mut() {
            *last += 1; // prefixes end in \0, so this never overflows
        }
        ro.set_iterate_upper_bound(upper);
        let mut it = self.db().raw_iterator_cf_opt(self.cf(cf), ro);
        it.seek(prefix);
        let mut n = 0;
        while it.valid() {
            n += 1;
            it.next();
        }
        it.status()?;
        Ok(n)
    }

    /// Validate every item, then write all of them in one batch.
    pub fn vector_upsert(&self, collection: &str, items: &[VectorInput]) -> Result<usize> {
        let info = self.collection_required(collection)?;
        self.check_batch_len("vectors", items.len())?;
        let max_meta = self.limits().max_metadata_bytes;
        let mut seen: HashMap<&str, usize> = HashMap::with_capacity(items.len());
        let mut encoded = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let what = format!("vectors[{i}] (id {:?})", item.id);
            self.check_id(&what, &item.id)?;
            if let Some(first) = seen.insert(&item.id, i) {
                return Err(Error::invalid(format!(
                    "{what}: id appears twice in the batch (also vectors[{first}])"
                )));
            }
            let floats: Vec<f32> = match (&item.vector, &item.vector_b64) {
                (Some(_), Some(_)) => {
                    return Err(Error::invalid(format!(
                        "{what}: give either vector or vector_b64, not both"
                    )))
                }
                (None, None) => {
                    return Err(Error::invalid(format!(
                        "{what}: vector or vector_b64 is required"
                    )))
                }
                (Some(loose), None) => {
                    if let Some((pos, v)) = &loose.first_bad {
                        return Err(Error::invalid(format!(
                            "{what}: element {pos} is {v}, not a number"
                        )));
                    }
                    loose.values.iter().map(|x| *x as f32).collect()
                }
                (None, Some(b64)) => {
                    let bytes = base64::engine::general_purpose::STANDARD
                        .decode(b64)
                        .map_err(|e| {
                            Error::invalid(format!("{what}: vector_b64 is not base64: {e}"))
                        })?;
                    codec::f32_from_le(&bytes).map_err(|e| e.context(&what))?
                }
            };
            if floats.len() != info.dimension {
                return Err(Error::invalid(format!(
                    "{what}: dimension {} does not match collection {collection:?} (dimension {})",
                    floats.len(),
                    info.dimension
                )));
            }
            if let Some(pos) = floats.iter().position(|x| !x.is_finite()) {
                let original = item
                    .vector
                    .as_ref()
                    .and_then(|l| l.values.get(pos).copied())
                    .map(|x| x.to_string())
                    .unwrap_or_else(|| floats[pos].to_string());
                return Err(Error::invalid(format!(
                    "{what}: element {pos} is {original}, not a finite f32 (NaN, ±inf and values beyond ±3.4e38 are refused)"
                )));
            }
            let meta = match &item.metadata {
                None | Some(Value::Null) => None,
                Some(m @ Value::Object(_)) => {
                    let bytes =
                        serde_json::to_vec(m).map_err(|e| Error::internal(e.to_string()))?;
                    if bytes.len() > max_meta {
                        return Err(Error::invalid(format!(
                            "{what}: metadata is {} bytes, the limit is {max_meta} (limits.max-metadata-bytes)",
                            bytes.len()
                        )));
                    }
                    Some(bytes)
                }
                Some(other) => {
                    return Err(Error::invalid(format!(
                        "{what}: metadata must be a JSON object, got {}",
                        json_type(other)
                    )))
                }
            };
            encoded.push((
                composite_key(collection, &item.id),
                codec::encode_f32(&floats),
                meta,
            ));
        }
        let (vcf, mcf) = (self.cf(Cf::Vectors), self.cf(Cf::Metadata));
        let mut batch = WriteBatch::default();
        for (key, vec_bytes, meta) in &encoded {
            batch.put_cf(vcf, key, vec_bytes);
            match meta {
                Some(m) => batch.put_cf(mcf, key, codec::encode(Codec::Json, m)),
                None => batch.delete_cf(mcf, key),
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
            self.check_id(&format!("ids[{i}]"), id)?;
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
            self.check_id(&format!("ids[{i}]"), id)?;
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
        let _ = IteratorMode::Start;
        Ok(n)
    }
}

pub fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::engine::testutil::open_temp;
    use serde_json::json;

    fn input(v: Value) -> Vec<VectorInput> {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn upsert_get_delete_round_trip() {
        let (_d, e) = open_temp(ManualClock::new(0));
        e.collection_create("docs", 3, Metric::Cosine).unwrap();
        let b64 =
            base64::engine::general_purpose::STANDARD.encode(codec::f32_to_le(&[4.0, 5.0, 6.0]));
        let n = e
            .vector_upsert(
                "docs",
                &input(json!([
                    {"id": "a", "vector": [1, 2, 3], "metadata": {"t": "x"}},
                    {"id": "b", "vector_b64": b64}
                ])),
            )
            .unwrap();
        assert_eq!(n, 2);
        let (found, missing) = e
            .vector_get("docs", &["a".into(), "b".into(), "zz".into()], true, false)
            .unwrap();
        assert_eq!(found[0].vector.as_deref(), Some(&[1.0, 2.0, 3.0][..]));
        assert_eq!(found[0].metadata, Some(json!({"t": "x"})));
        assert_eq!(found[1].vector.as_deref(), Some(&[4.0, 5.0, 6.0][..]));
        assert_eq!(missing, vec!["zz".to_string()]);
        assert_eq!(e.collection_list().unwrap()[0].vectors, Some(2));
        assert_eq!(
            e.vector_delete("docs", &["a".into(), "nope".into()])
                .unwrap(),
            1
        );
        assert_eq!(e.vector_count().unwrap(), 1);
    }

    #[test]
    fn each_bad_item_is_named_and_nothing_is_written() {
        let (_d, e) = open_temp(ManualClock::new(0));
        e.collection_create("c", 2, Metric::Dot).unwrap();
        let nan_b64 =
            base64::engine::general_purpose::STANDARD.encode(codec::f32_to_le(&[1.0, f32::NAN]));
        let long = "i".repeat(e.limits().max_id_bytes + 1);
        let cases = [
            (
                json!([{"id": "ok", "vector": [1, 2]}, {"id": "bad", "vector": [1, 2, 3]}]),
                "vectors[1]",
                "dimension 3",
            ),
            (
                json!([{"id": "ok", "vector": [1, 2]}, {"id": "n", "vector_b64": nan_b64}]),
                "vectors[1]",
                "NaN",
            ),
            (
                json!([{"id": "ok", "vector": [1, 2]}, {"id": "big", "vector": [1, 1e39]}]),
                "vectors[1]",
                "finite",
            ),
            (
                json!([{"id": "ok", "vector": [1, 2]}, {"id": "", "vector": [1, 2]}]),
                "vectors[1]",
                "empty",
            ),
            (
                json!([{"id": "ok", "vector": [1, 2]}, {"id": long, "vector": [1, 2]}]),
                "vectors[1]",
                "limit",
            ),
            (
                json!([{"id": "ok", "vector": [1, 2]}, {"id": "m", "vector": [1, 2], "metadata": [1]}]),
                "vectors[1]",
                "object",
            ),
            (
                json!([{"id": "ok", "vector": [1, 2]}, {"id": "s", "vector": [1, null]}]),
                "vectors[1]",
                "element 1",
            ),
            (
                json!([{"id": "ok", "vector": [1, 2]}, {"id": "ok", "vector": [1, 2]}]),
                "vectors[1]",
                "twice",
            ),
        ];
        for (items, who, why) in cases {
            let err = e.vector_upsert("c", &input(items.clone())).unwrap_err();
            assert_eq!(err.kind, crate::error::ErrorKind::InvalidInput);
            assert!(
                err.message.contains(who) && err.message.contains(why),
                "{items}: {err}"
            );
            assert_eq!(
                e.vector_count().unwrap(),
                0,
                "nothing of a bad batch is written: {items}"
            );
        }
        let too_many: Vec<VectorInput> = (0..=e.limits().max_batch)
            .map(|i| VectorInput {
                id: i.to_string(),
                vector_b64: Some(String::new()),
                ..Default::default()
            })
            .collect();
        assert!(e
            .vector_upsert("c", &too_many)
            .unwrap_err()
            .message
            .contains("max-batch"));
        assert_eq!(
            e.vector_upsert("nope", &input(json!([{"id": "a", "vector": [1, 2]}])))
                .unwrap_err()
                .kind,
            crate::error::ErrorKind::NotFound
        );
        assert!(e.collection_create("a/b", 2, Metric::Dot).is_err());
        assert!(e.collection_create("c", 3, Metric::Dot).is_err());
        assert!(!e.collection_create("c", 2, Metric::Dot).unwrap().1);
    }
}
