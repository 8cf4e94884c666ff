//! Vector collections and their vectors.

use clap::Args;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{json_arg, Blocking, Store};
use crate::engine::{
    Metric, Originals, SearchRequest, Storage, VectorFormat, VectorInput,
    DEFAULT_CALIBRATION_SAMPLE, MAX_K,
};
use crate::error::Result;
use crate::quant::Quantization;

/// Create a vector collection with a dimension, a metric (cosine, euclidean, dot) and how its vectors are stored (quantization none|f16|int8|int6|int4|binary; originals keep|drop; dedup of identical vectors).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, Args)]
#[serde(deny_unknown_fields)]
pub struct CollectionCreateParams {
    #[arg(long)]
    pub name: String,
    #[arg(long)]
    #[schemars(range(min = 1))]
    pub dimension: usize,
    #[serde(default)]
    #[arg(long, value_enum, default_value_t)]
    pub metric: Metric,
    /// f32 (none), f16, or codes with per-dimension ranges calibrated on
    /// the collection's first `calibration_sample` vectors.
    #[serde(default)]
    #[arg(long, value_enum, default_value_t)]
    pub quantization: Quantization,
    /// Keep the f32 vectors of a quantized collection (for rescoring and
    /// re-quantizing) or drop them.
    #[serde(default)]
    #[arg(long, value_enum, default_value_t)]
    pub originals: Originals,
    /// Vectors stored as f32 before the ranges are calibrated on them.
    #[serde(default = "default_sample")]
    #[arg(long, default_value_t = DEFAULT_CALIBRATION_SAMPLE)]
    #[schemars(range(min = 1, max = 65536))]
    pub calibration_sample: usize,
    /// Store identical vectors once, ids referring to them by content hash
    /// (reference-counted; set at creation).
    #[serde(default)]
    #[arg(long)]
    pub dedup: bool,
}

fn default_sample() -> usize {
    DEFAULT_CALIBRATION_SAMPLE
}

impl Blocking<Store> for CollectionCreateParams {
    fn run(self, s: &Store) -> Result<Value> {
        let storage = Storage {
            quantization: self.quantization,
            originals: self.originals,
            calibration_sample: self.calibration_sample,
            dedup: self.dedup,
        };
        let (info, created) = s.engine.get()?.collection_create_with(
            &self.name,
            self.dimension,
            self.metric,
            storage,
        )?;
        let mut out = json!({"collection": info, "created": created});
        // Binary pads a dimension that is not a multiple of 8: say so.
        if let Ok(Some(note)) = self.quantization.check_dimension(self.dimension) {
            out["note"] = Value::String(note);
        }
        Ok(out)
    }
}

/// List vector collections with their vector counts.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema, Args)]
#[serde(deny_unknown_fields)]
pub struct CollectionListParams {}

impl Blocking<Store> for CollectionListParams {
    fn run(self, s: &Store) -> Result<Value> {
        let list = s.engine.get()?.collection_list()?;
        Ok(json!({"collections": list, "count": list.len()}))
    }
}

/// Insert or replace vectors (JSON arrays or base64 little-endian f32) with optional metadata objects; all-or-nothing.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, Args)]
#[serde(deny_unknown_fields)]
pub struct VectorUpsertParams {
    #[arg(long)]
    pub collection: String,
    /// CLI: one JSON object per flag, e.g. '{"id":"a","vector":[0.1,0.2]}'.
    #[arg(long = "vector", value_parser = json_arg::<VectorInput>, required = true)]
    pub vectors: Vec<VectorInput>,
}

impl Blocking<Store> for VectorUpsertParams {
    fn run(self, s: &Store) -> Result<Value> {
        let n = s
            .engine
            .get()?
            .vector_upsert(&self.collection, &self.vectors)?;
        Ok(json!({"collection": self.collection, "upserted": n}))
    }
}

/// How vectors come back.
#[derive(
    Debug, Clone, Copy, Serialize, Deserialize, Default, PartialEq, Eq, JsonSchema, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum VectorEncoding {
    /// f32 numbers (dequantized).
    #[default]
    Json,
    /// Base64 of little-endian f32 (dequantized).
    Base64,
    /// The codes, base64 (int8 one byte a dimension, int6/int4/binary
    /// packed LSB-first; code c of dimension i is lo[i] + c·step[i]), with
    /// the calibrations they decode with.
    Raw,
}

/// Fetch vectors and metadata by id.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, Args)]
#[serde(deny_unknown_fields)]
pub struct VectorGetParams {
    #[arg(long)]
    pub collection: String,
    #[arg(long = "id", required = true)]
    pub ids: Vec<String>,
    #[serde(default = "yes")]
    #[arg(long, default_value_t = yes(), action = clap::ArgAction::Set)]
    pub include_vector: bool,
    #[serde(default)]
    #[arg(long, value_enum, default_value_t)]
    pub encoding: VectorEncoding,
}

const fn yes() -> bool {
    true
}

impl Blocking<Store> for VectorGetParams {
    fn run(self, s: &Store) -> Result<Value> {
        let engine = s.engine.get()?;
        let format = match self.encoding {
            VectorEncoding::Json => VectorFormat::Floats,
            VectorEncoding::Base64 => VectorFormat::Base64,
            VectorEncoding::Raw => VectorFormat::Raw,
        };
        let (found, missing) =
            engine.vector_get(&self.collection, &self.ids, self.include_vector, format)?;
        let mut out = json!({"collection": self.collection, "vectors": found, "missing": missing});
        if format == VectorFormat::Raw {
            let mut generations: Vec<u8> = found.iter().filter_map(|v| v.calibration).collect();
            generations.sort_unstable();
            generations.dedup();
            let mut calibrations = serde_json::Map::new();
            for g in generations {
                let q = engine.calibration(&self.collection, g)?;
                calibrations.insert(
                    g.to_string(),
                    json!({"quantization": q.kind, "dimension": q.dimension, "sample": q.sample,
                           "lo": q.lo, "step": q.step}),
                );
            }
            out["calibrations"] = Value::Object(calibrations);
        }
        Ok(out)
    }
}

/// Delete vectors (and their metadata) by id; all-or-nothing.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, Args)]
#[serde(deny_unknown_fields)]
pub struct VectorDeleteParams {
    #[arg(long)]
    pub collection: String,
    #[arg(long = "id", required = true)]
    pub ids: Vec<String>,
}

impl Blocking<Store> for VectorDeleteParams {
    fn run(self, s: &Store) -> Result<Value> {
        let n = s.engine.get()?.vector_delete(&self.collection, &self.ids)?;
        Ok(json!({"collection": self.collection, "deleted": n, "requested": self.ids.len()}))
    }
}

/// Exact search of a collection: scans its stored vectors (codes, for a quantized collection), optionally re-ranking from the kept f32 originals (`rescore`); not an ANN index.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, Args)]
#[serde(deny_unknown_fields)]
pub struct VectorSearchParams {
    #[arg(long)]
    pub collection: String,
    /// The query, as many numbers as the collection's dimension (CLI:
    /// comma-separated, e.g. --vector=0.1,-0.2,0.3).
    #[arg(
        long,
        value_delimiter = ',',
        required = true,
        allow_hyphen_values = true
    )]
    pub vector: Vec<f32>,
    /// How many results.
    #[serde(default = "default_k")]
    #[arg(long, default_value_t = default_k())]
    #[schemars(range(min = 1, max = 1000))]
    pub k: usize,
    /// Re-rank k × oversample candidates by their f32 originals (a
    /// quantized collection with originals = keep).
    #[serde(default)]
    #[arg(long)]
    pub rescore: bool,
    #[serde(default = "default_oversample")]
    #[arg(long, default_value_t = default_oversample())]
    #[schemars(range(min = 1, max = 100))]
    pub oversample: usize,
    #[serde(default)]
    #[arg(long)]
    pub include_metadata: bool,
}

const fn default_k() -> usize {
    10
}

const fn default_oversample() -> usize {
    4
}

const _: () = assert!(default_k() <= MAX_K);

impl Blocking<Store> for VectorSearchParams {
    fn run(self, s: &Store) -> Result<Value> {
        let out = s.engine.get()?.vector_search(&SearchRequest {
            collection: &self.collection,
            vector: &self.vector,
            k: self.k,
            rescore: self.rescore,
            oversample: self.oversample,
            include_metadata: self.include_metadata,
        })?;
        serde_json::to_value(out).map_err(|e| crate::error::Error::internal(e.to_string()))
    }
}
