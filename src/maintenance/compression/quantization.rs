//! The quantization candidates of a collection, measured on a sample of
//! its vectors: each level calibrated on the sample, the sample encoded
//! and decoded, and the exact top 10 of a set of its vectors (as queries,
//! themselves left out) compared with the exact top 10 over the f32
//! sample. The stored size of each comes from the same block simulation
//! as the other candidates, under the `vectors` family's compression.

use serde::Serialize;

use super::blocks::{simulate, Blocks};
use crate::config::CompressionSpec;
use crate::engine::{Metric, VectorSample};
use crate::error::Result;
use crate::quant::{dot_f32, Quantization, Quantizer};

/// Queries per measurement (vectors of the sample, each left out of its
/// own results).
const QUERIES: usize = 100;
const K: usize = 10;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct QuantCandidate {
    pub quantization: Quantization,
    pub storage_format: &'static str,
    /// The sample as f32 over the sample as codes, keys and RocksDB's
    /// block overhead included.
    pub predicted_ratio: f64,
    /// Of exact search over the codes against exact search over the f32
    /// sample (1 for `none`).
    pub recall_at_10: f64,
    /// Why this level does not fit the collection (then no figures).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
}

fn score(metric: Metric, a: &[f32], b: &[f32]) -> f32 {
    match metric {
        Metric::Dot => dot_f32(a, b),
        Metric::Cosine => {
            let n = (dot_f32(a, a) * dot_f32(b, b)).sqrt();
            if n > 0.0 {
                dot_f32(a, b) / n
            } else {
                0.0
            }
        }
        Metric::Euclidean => -a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum::<f32>(),
    }
}

/// The ids (sample positions) of the top `K` of `rows` for query `q`,
/// leaving `q` itself out; the query is scored as `queries[q]`.
fn top(metric: Metric, query: &[f32], rows: &[Vec<f32>], q: usize) -> Vec<usize> {
    let mut scored: Vec<(f32, usize)> = rows
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != q)
        .map(|(i, r)| (score(metric, query, r), i))
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    scored.truncate(K);
    scored.into_iter().map(|(_, i)| i).collect()
}

/// Bytes the sample would take with every value `value(i)`.
fn stored(
    sample: &VectorSample,
    spec: &CompressionSpec,
    block_size: usize,
    value: impl Fn(usize) -> Vec<u8>,
) -> Result<u64> {
    let values: Vec<Vec<u8>> = (0..sample.keys.len()).map(value).collect();
    let blocks = Blocks::build(
        sample
            .keys
            .iter()
            .zip(&values)
            .map(|(k, v)| (&k[..], &v[..])),
        block_size,
    );
    // Too few blocks to train a dictionary on: RocksDB then compresses
    // without one, and so does the estimate.
    let outcome = simulate(&blocks, spec).or_else(|_| {
        simulate(
            &blocks,
            &CompressionSpec {
                dictionary: false,
                ..*spec
            },
        )
    })?;
    Ok(outcome.stored_bytes)
}

/// Every quantization level measured on the sample.
pub fn candidates(
    sample: &VectorSample,
    dimension: usize,
    metric: Metric,
    spec: &CompressionSpec,
    block_size: usize,
) -> Result<Vec<QuantCandidate>> {
    let n = sample.vectors.len();
    let queries = n.min(QUERIES);
    // Queries spread over the sample.
    let picks: Vec<usize> = (0..queries).map(|i| i * n / queries.max(1)).collect();
    let exact: Vec<Vec<usize>> = picks
        .iter()
        .map(|&q| top(metric, &sample.vectors[q], &sample.vectors, q))
        .collect();
    let f32_bytes = stored(sample, spec, block_size, |i| {
        let mut v = vec![crate::codec::Codec::F32Le as u8];
        v.extend(sample.vectors[i].iter().flat_map(|x| x.to_le_bytes()));
        v
    })?;
    let mut out = Vec::new();
    for kind in Quantization::ALL {
        let refused = match kind.check_dimension(dimension) {
            Err(reason) => Some(reason),
            Ok(_) if n == 0 => Some("the collection has no vectors to sample".to_string()),
            Ok(_) => None,
        };
        if let Some(reason) = refused {
            out.push(QuantCandidate {
                quantization: kind,
                storage_format: kind.storage_format(),
                predicted_ratio: 0.0,
                recall_at_10: 0.0,
                refused: Some(reason),
            });
            continue;
        }
        let refs: Vec<&[f32]> = sample.vectors.iter().map(|v| &v[..]).collect();
        let q = Quantizer::calibrate(kind, dimension, &refs)?;
        let codes: Vec<Vec<u8>> = sample
            .vectors
            .iter()
            .map(|v| {
                let mut c = Vec::with_capacity(q.code_len() + 2);
                if kind == Quantization::None {
                    c.push(crate::codec::Codec::F32Le as u8);
                    c.extend(v.iter().flat_map(|x| x.to_le_bytes()));
                } else {
                    c.extend([crate::codec::Codec::Quantized as u8, 0]);
                    q.encode(v, &mut c);
                }
                c
            })
            .collect();
        let decoded: Vec<Vec<f32>> = if kind == Quantization::None {
            sample.vectors.clone()
        } else {
            codes
                .iter()
                .map(|c| q.decode(&c[2..]))
                .collect::<Result<_>>()?
        };
        let hits: usize = picks
            .iter()
            .zip(&exact)
            .map(|(&p, truth)| {
                top(metric, &sample.vectors[p], &decoded, p)
                    .iter()
                    .filter(|i| truth.contains(i))
                    .count()
            })
            .sum();
        let bytes = stored(sample, spec, block_size, |i| codes[i].clone())?;
        out.push(QuantCandidate {
            quantization: kind,
            storage_format: kind.storage_format(),
            predicted_ratio: round(f32_bytes as f64 / bytes.max(1) as f64),
            recall_at_10: round(hits as f64 / (picks.len() * K.min(n - 1).max(1)) as f64),
            refused: None,
        });
    }
    Ok(out)
}

fn round(v: f64) -> f64 {
    (v * 10_000.0).round() / 10_000.0
}
