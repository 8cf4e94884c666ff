//! Collections and vectors: descriptors in `sys`, floats in `vectors`,
//! metadata JSON in `metadata`. Every batch is validated completely before
//! anything is written, and written as one WriteBatch.

use std::collections::HashMap;
use std::fmt;

use base64::Engine as _;
use rocksdb::{ReadOptions, WriteBatch};
use serde::de::{SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use super::{composite_key, group_prefix, Cf, Engine};
use crate::codec::{self, Codec};
use crate::error::{Error, Result};

const COLLECTION_PREFIX: &str = "collection/";
const MAX_COLLECTION_NAME: usize = 128;

/// How vectors are compared.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    Default,
    schemars::JsonSchema,
    clap::ValueEnum,
)]
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

/// As it came (a CLI request is re-sent as JSON): the numbers, with the
/// first element that was not a number back in its place, so the daemon
/// names it.
impl Serialize for LooseFloats {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut out: Vec<Value> = self.values.iter().map(|x| Value::from(*x)).collect();
        if let Some((i, raw)) = &self.first_bad {
            let bad = serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.clone()));
            out.insert((*i).min(out.len()), bad);
        }
        out.serialize(s)
    }
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
#[derive(Debug, Clone, Serialize, Deserialize, Default, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VectorInput {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<Vec<f64>>")]
    pub vector: Option<LooseFloats>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vector_b64: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<serde_json::Map<String, Value>>")]
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
        // Check-then-create must not interleave with another create.
        let _ddl = self.ddl_lock.lock().unwrap_or_else(|p| p.into_inner());
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

/// Validate one input vector and encode it as the stored value (codec byte +
/// little-endian f32). Base64 input is decoded straight into the value.
fn encode_vector(
    item: &VectorInput,
    info: &CollectionInfo,
) -> std::result::Result<Vec<u8>, String> {
    let (dimension, collection) = (info.dimension, &info.name);
    let mut out = Vec::with_capacity(1 + 4 * dimension);
    out.push(Codec::F32Le as u8);
    match (&item.vector, &item.vector_b64) {
        (Some(_), Some(_)) => return Err("give either vector or vector_b64, not both".into()),
        (None, None) => return Err("vector or vector_b64 is required".into()),
        (Some(loose), None) => {
            if let Some((pos, v)) = &loose.first_bad {
                return Err(format!("element {pos} is {v}, not a number"));
            }
            if loose.values.len() != dimension {
                return Err(format!(
                    "dimension {} does not match collection {collection:?} (dimension {dimension})",
                    loose.values.len()
                ));
            }
            for (pos, x) in loose.values.iter().enumerate() {
                let f = *x as f32;
                if !f.is_finite() {
                    return Err(format!(
                        "element {pos} is {x}, not a finite f32 (NaN, ±inf and values beyond ±3.4e38 are refused)"
                    ));
                }
                out.extend_from_slice(&f.to_le_bytes());
            }
        }
        (None, Some(b64)) => {
            base64::engine::general_purpose::STANDARD
                .decode_vec(b64, &mut out)
                .map_err(|e| format!("vector_b64 is not base64: {e}"))?;
            let payload = &out[1..];
            if !payload.len().is_multiple_of(4) {
                return Err(format!(
                    "vector_b64 holds {} bytes, not a whole number of little-endian f32",
                    payload.len()
                ));
            }
            if payload.len() / 4 != dimension {
                return Err(format!(
                    "dimension {} does not match collection {collection:?} (dimension {dimension})",
                    payload.len() / 4
                ));
            }
            if let Some(pos) = payload
                .chunks_exact(4)
                .position(|c| !f32::from_le_bytes([c[0], c[1], c[2], c[3]]).is_finite())
            {
                let c = &payload[pos * 4..pos * 4 + 4];
                return Err(format!(
                    "element {pos} is {}, not a finite f32 (NaN and ±inf are refused)",
                    f32::from_le_bytes([c[0], c[1], c[2], c[3]])
                ));
            }
        }
    }
    Ok(out)
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
