//! Collections: a descriptor (dimension, metric) in `sys` under
//! `collection/<name>`; its vectors are counted by walking their keys.

use rocksdb::{ReadOptions, WriteBatch};
use serde::{Deserialize, Serialize};

use crate::codec::{self, Codec};
use crate::engine::{group_prefix, Cf, Engine};
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

    pub(super) fn collection_required(&self, name: &str) -> Result<CollectionInfo> {
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
}
