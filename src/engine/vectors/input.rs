//! What an upsert accepts — floats as JSON numbers (a bad element named,
//! not the whole request refused) or base64 of little-endian f32 — and its
//! validation into the stored value.

use std::fmt;

use base64::Engine as _;
use serde::de::{SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use super::CollectionInfo;
use crate::codec::Codec;

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

/// Validate one input vector and encode it as the stored value (codec byte +
/// little-endian f32). Base64 input is decoded straight into the value.
pub(super) fn encode_vector(
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
