//! Vector collections and their vectors.

use clap::Args;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{json_arg, Blocking, Store};
use crate::engine::{Metric, VectorInput};
use crate::error::Result;

/// Create a vector collection with a dimension and metric (cosine, euclidean, dot).
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
}

impl Blocking<Store> for CollectionCreateParams {
    fn run(self, s: &Store) -> Result<Value> {
        let (info, created) =
            s.engine
                .get()?
                .collection_create(&self.name, self.dimension, self.metric)?;
        Ok(json!({"collection": info, "created": created}))
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
    #[default]
    Json,
    Base64,
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
        let (found, missing) = s.engine.get()?.vector_get(
            &self.collection,
            &self.ids,
            self.include_vector,
            self.encoding == VectorEncoding::Base64,
        )?;
        Ok(json!({"collection": self.collection, "vectors": found, "missing": missing}))
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
