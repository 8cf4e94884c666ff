//! `vector_search`: an exact scan of a collection's stored vectors — its
//! codes when it is quantized, scored against the f32 query without
//! decoding them — optionally re-ranked from the kept f32 originals.
//!
//! Not an ANN index (that is the index agents' job): what a small
//! collection needs, and how quantization is measured through the daemon's
//! own read path. The scan runs over an in-memory copy of the collection
//! (ids, codes one byte a dimension or floats, decoded norms), built on
//! first use and dropped by any write to the collection; copies share a
//! budget (`limits.search-cache-mb`), and a collection larger than it is
//! refused with its size.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::Serialize;

use super::collections::{CollectionInfo, Metric, Originals};
use crate::codec::{self, Codec};
use crate::engine::{composite_key, group_prefix, Cf, Engine};
use crate::error::{Error, Result};
use crate::quant::{dot_f32, Quantization, Quantizer};

/// Most results one search returns.
pub const MAX_K: usize = 1000;

/// In-memory copies of collections, and the write version of each.
#[derive(Debug, Default)]
pub struct SearchCache {
    inner: Mutex<CacheInner>,
}

#[derive(Debug, Default)]
struct CacheInner {
    /// Bumped by every write to a collection's vectors.
    versions: HashMap<String, u64>,
    indexes: HashMap<String, Arc<Index>>,
    bytes: usize,
}

#[derive(Debug)]
struct Index {
    version: u64,
    segments: Vec<Segment>,
    bytes: usize,
}

/// Vectors stored the same way.
#[derive(Debug)]
struct Segment {
    ids: Vec<String>,
    rows: Rows,
    /// Norm of each decoded vector.
    norms: Vec<f32>,
}

#[derive(Debug)]
enum Rows {
    /// f32 (or f16 decoded), `dimension` a row.
    Floats(Vec<f32>),
    /// Codes unpacked one byte a dimension, with their calibration.
    Codes {
        quantizer: Arc<Quantizer>,
        codes: Vec<u8>,
    },
}

/// One result.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Hit {
    pub id: String,
    /// Cosine similarity, dot product, or euclidean distance (then the
    /// smallest comes first).
    pub score: f32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<serde_json::Value>,
}

/// What a search found, and how.
#[derive(Debug, Clone, Serialize)]
pub struct SearchOut {
    pub collection: String,
    pub metric: Metric,
    pub quantization: Quantization,
    /// Re-ranked from the f32 originals.
    pub rescored: bool,
    /// Vectors scored.
    pub scanned: usize,
    pub results: Vec<Hit>,
}

/// How a search is asked.
#[derive(Debug, Clone)]
pub struct SearchRequest<'a> {
    pub collection: &'a str,
    pub vector: &'a [f32],
    pub k: usize,
    pub rescore: bool,
    /// Candidates re-ranked per result when rescoring.
    pub oversample: usize,
    pub include_metadata: bool,
}

impl Engine {
    /// The vectors of `collection` changed: its copy is stale.
    pub(super) fn search_invalidate(&self, collection: &str) {
        let mut c = self.search.inner.lock().unwrap_or_else(|p| p.into_inner());
        *c.versions.entry(collection.to_string()).or_default() += 1;
        if let Some(old) = c.indexes.remove(collection) {
            c.bytes -= old.bytes;
        }
    }

    /// Bytes the search copies hold.
    pub fn search_cache_bytes(&self) -> u64 {
        self.search
            .inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .bytes as u64
    }

    pub fn vector_search(&self, req: &SearchRequest<'_>) -> Result<SearchOut> {
        let info = self.collection_required(req.collection)?;
        let q = req.vector;
        if q.len() != info.dimension {
            return Err(Error::invalid(format!(
                "vector has dimension {}, collection {:?} has {}",
                q.len(),
                info.name,
                info.dimension
            )));
        }
        if let Some(i) = q.iter().position(|x| !x.is_finite()) {
            return Err(Error::invalid(format!(
                "vector[{i}] is not a finite number"
            )));
        }
        if !(1..=MAX_K).contains(&req.k) {
            return Err(Error::invalid(format!(
                "k {} is out of range 1..={MAX_K}",
                req.k
            )));
        }
        if !(1..=100).contains(&req.oversample) {
            return Err(Error::invalid(format!(
                "oversample {} is out of range 1..=100",
                req.oversample
            )));
        }
        let quantized = info.quantization != Quantization::None;
        if req.rescore && quantized && info.originals == Originals::Drop {
            return Err(Error::invalid(format!(
                "collection {:?} drops its f32 originals (originals = drop): rescoring needs \
                 originals = keep; search without rescore",
                info.name
            )));
        }
        let rescore = req.rescore && quantized;
        let index = self.search_index(&info)?;
        let qnorm = dot_f32(q, q).sqrt();
        let want = if rescore {
            req.k * req.oversample
        } else {
            req.k
        };
        let mut scored: Vec<(f32, &str)> = Vec::new();
        let mut scanned = 0;
        for seg in &index.segments {
            scanned += seg.ids.len();
            let dim = info.dimension;
            match &seg.rows {
                Rows::Floats(rows) => {
                    for (i, row) in rows.chunks_exact(dim).enumerate() {
                        let s = score(info.metric, dot_f32(q, row), qnorm, seg.norms[i]);
                        scored.push((s, &seg.ids[i]));
                    }
                }
                Rows::Codes { quantizer, codes } => {
                    let p = quantizer.prepare(q);
                    for (i, row) in codes.chunks_exact(dim).enumerate() {
                        let s = score(info.metric, p.dot(row), qnorm, seg.norms[i]);
                        scored.push((s, &seg.ids[i]));
                    }
                }
            }
        }
        let mut top = best(scored, want);
        if rescore {
            let ids: Vec<&str> = top.iter().map(|(_, id)| *id).collect();
            let keys = self.stored_keys(&info, &ids)?;
            let originals = self
                .db()
                .batched_multi_get_cf(self.cf(Cf::Originals), &keys, false);
            let mut exact = Vec::with_capacity(top.len());
            for ((_, id), original) in top.iter().zip(originals) {
                let floats = match original? {
                    Some(v) => codec::f32_from_le(codec::expect(&v, Codec::F32Le)?)?,
                    // Written before calibration and never re-encoded: the
                    // value itself is f32 (or the vector was just deleted).
                    // (With dedup, the id may have moved to another
                    // vector since the references were read: its original
                    // now.)
                    None if info.dedup => {
                        let key = self.stored_keys(&info, &[*id])?;
                        match key
                            .first()
                            .map(|k| self.get(Cf::Originals, k))
                            .transpose()?
                        {
                            Some(Some(v)) => codec::f32_from_le(codec::expect(&v, Codec::F32Le)?)?,
                            _ => match self.read_vector(&info, &composite_key(&info.name, id))? {
                                Some(v) if v.first() == Some(&(Codec::F32Le as u8)) => {
                                    codec::f32_from_le(&v[1..])?
                                }
                                _ => continue,
                            },
                        }
                    }
                    None => match self.read_vector(&info, &composite_key(&info.name, id))? {
                        Some(v) if v.first() == Some(&(Codec::F32Le as u8)) => {
                            codec::f32_from_le(&v[1..])?
                        }
                        _ => continue,
                    },
                };
                let n = dot_f32(&floats, &floats).sqrt();
                exact.push((score(info.metric, dot_f32(q, &floats), qnorm, n), *id));
            }
            top = best(exact, req.k);
        }
        let results = top
            .into_iter()
            .map(|(s, id)| {
                let metadata = if req.include_metadata {
                    self.metadata_of(&info.name, id)?
                } else {
                    None
                };
                Ok(Hit {
                    id: id.to_string(),
                    score: if info.metric == Metric::Euclidean {
                        (-s).max(0.0).sqrt()
                    } else {
                        s
                    },
                    metadata,
                })
            })
            .collect::<Result<_>>()?;
        Ok(SearchOut {
            collection: info.name.clone(),
            metric: info.metric,
            quantization: info.quantization,
            rescored: rescore,
            scanned,
            results,
        })
    }

    /// The collection's in-memory copy, built if missing or stale.
    fn search_index(&self, info: &CollectionInfo) -> Result<Arc<Index>> {
        let version = {
            let c = self.search.inner.lock().unwrap_or_else(|p| p.into_inner());
            let version = c.versions.get(&info.name).copied().unwrap_or(0);
            if let Some(ix) = c.indexes.get(&info.name) {
                if ix.version == version {
                    return Ok(ix.clone());
                }
            }
            version
        };
        let budget = self.limits().search_cache_mb * 1024 * 1024;
        let index = Arc::new(self.build_index(info, version, budget)?);
        let mut c = self.search.inner.lock().unwrap_or_else(|p| p.into_inner());
        if c.versions.get(&info.name).copied().unwrap_or(0) == version {
            if let Some(old) = c.indexes.insert(info.name.clone(), index.clone()) {
                c.bytes -= old.bytes;
            }
            c.bytes += index.bytes;
            // Over the budget: drop other collections' copies, oldest first
            // would need a clock; any other will do, they rebuild on use.
            while c.bytes > budget {
                let Some(other) = c.indexes.keys().find(|n| **n != info.name).cloned() else {
                    break;
                };
                if let Some(old) = c.indexes.remove(&other) {
                    c.bytes -= old.bytes;
                }
            }
        }
        Ok(index)
    }

    fn build_index(&self, info: &CollectionInfo, version: u64, budget: usize) -> Result<Index> {
        let dim = info.dimension;
        let prefix = group_prefix(&info.name);
        // The ids and, with dedup, the distinct vectors they refer to, as
        // of one moment.
        let snapshot = self.db().snapshot();
        let contents = self.contents_at(info, &snapshot, budget)?;
        let mut it = self.group_iter_at(Cf::Vectors, &prefix, Some(&snapshot));
        let mut floats = Segment {
            ids: Vec::new(),
            rows: Rows::Floats(Vec::new()),
            norms: Vec::new(),
        };
        let mut by_generation: HashMap<u8, Segment> = HashMap::new();
        let mut bytes = 0usize;
        let mut count = 0usize;
        let mut unpacked = vec![0u8; dim];
        while let (Some(k), Some(v)) = (it.key(), it.value()) {
            let id = String::from_utf8_lossy(&k[prefix.len()..]).into_owned();
            count += 1;
            let what = || format!("vector {id:?} of {:?}", info.name);
            let v = match &contents {
                None => v,
                Some(contents) => contents.resolve(v).map_err(|e| e.context(what()))?,
            };
            // Codes of a scalar or binary calibration are kept as codes;
            // everything else (f32, f16) as floats.
            let coded = match codec::decode(v).map_err(|e| e.context(what()))? {
                (Codec::Quantized, [generation, code @ ..]) => {
                    let quantizer = self.quantizer(&info.name, *generation)?;
                    quantizer
                        .kind
                        .calibrated()
                        .then_some((*generation, quantizer, code))
                }
                _ => None,
            };
            let (seg, norm) = match coded {
                Some((generation, quantizer, code)) => {
                    quantizer
                        .unpack_into(code, &mut unpacked)
                        .map_err(|e| e.context(what()))?;
                    let norm = unpacked
                        .iter()
                        .zip(quantizer.lo.iter().zip(&quantizer.step))
                        .map(|(&c, (&lo, &step))| {
                            let x = f64::from(lo) + f64::from(c) * f64::from(step);
                            x * x
                        })
                        .sum::<f64>()
                        .sqrt() as f32;
                    let seg = by_generation.entry(generation).or_insert_with(|| Segment {
                        ids: Vec::new(),
                        rows: Rows::Codes {
                            quantizer: quantizer.clone(),
                            codes: Vec::new(),
                        },
                        norms: Vec::new(),
                    });
                    if let Rows::Codes { codes, .. } = &mut seg.rows {
                        codes.extend_from_slice(&unpacked);
                    }
                    bytes += dim;
                    (seg, norm)
                }
                None => {
                    let decoded = self
                        .decode_vector(&info.name, v)
                        .map_err(|e| e.context(what()))?;
                    same_dimension(&decoded, dim).map_err(|e| e.context(what()))?;
                    if let Rows::Floats(rows) = &mut floats.rows {
                        rows.extend_from_slice(&decoded);
                    }
                    bytes += dim * 4;
                    (&mut floats, dot_f32(&decoded, &decoded).sqrt())
                }
            };
            bytes += id.len() + std::mem::size_of::<String>() + 4;
            seg.ids.push(id);
            seg.norms.push(norm);
            if bytes > budget {
                return Err(Error::invalid(format!(
                    "collection {:?} is too large to search by exact scan: its copy passed \
                     limits.search-cache-mb ({} MiB) at {count} vectors; raise the limit or \
                     search it with an index agent",
                    info.name,
                    budget / (1024 * 1024)
                )));
            }
            it.next();
        }
        it.status()?;
        let mut segments: Vec<Segment> = by_generation.into_values().collect();
        if !floats.ids.is_empty() {
            segments.push(floats);
        }
        Ok(Index {
            version,
            segments,
            bytes,
        })
    }

    fn metadata_of(&self, collection: &str, id: &str) -> Result<Option<serde_json::Value>> {
        match self.get(Cf::Metadata, &composite_key(collection, id))? {
            None => Ok(None),
            Some(m) => serde_json::from_slice(codec::expect(&m, Codec::Json)?)
                .map(Some)
                .map_err(|e| Error::corruption(format!("metadata of {id:?}: {e}"))),
        }
    }
}

/// A stored vector must have the collection's dimension (else the rows of
/// the copy would not line up with its ids).
fn same_dimension(decoded: &[f32], dim: usize) -> Result<()> {
    if decoded.len() == dim {
        return Ok(());
    }
    Err(Error::corruption(format!(
        "{} dimensions stored, the collection has {dim}",
        decoded.len()
    )))
}

/// Higher is better: cosine similarity, dot product, or minus the squared
/// euclidean distance.
#[inline]
fn score(metric: Metric, dot: f32, qnorm: f32, norm: f32) -> f32 {
    let s = match metric {
        Metric::Dot => dot,
        Metric::Cosine if qnorm == 0.0 || norm == 0.0 => 0.0,
        Metric::Cosine => dot / (qnorm * norm),
        Metric::Euclidean => -(qnorm * qnorm - 2.0 * dot + norm * norm),
    };
    // Overflowed sums (components near f32's limits) rank last, not first.
    if s.is_nan() {
        f32::NEG_INFINITY
    } else {
        s
    }
}

/// The `k` best, best first (ties by id, so results are stable).
fn best(mut scored: Vec<(f32, &str)>, k: usize) -> Vec<(f32, &str)> {
    let order = |a: &(f32, &str), b: &(f32, &str)| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(b.1));
    if scored.len() > k {
        scored.select_nth_unstable_by(k - 1, order);
        scored.truncate(k);
    }
    scored.sort_unstable_by(order);
    scored
}
