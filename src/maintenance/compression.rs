//! Compression you can see and choose: `analyze-compression` (what each
//! column family holds, how it is compressed, and what every candidate
//! would store, measured on a sample) and the rewrite that applies a
//! family's new compression to the files already there.

mod blocks;
mod quantization;
#[cfg(test)]
mod tests;

use std::time::Instant;

use rocksdb::BottommostLevelCompaction;
use serde::Serialize;

pub use blocks::{simulate, Blocks};
pub use quantization::QuantCandidate;

use crate::backup::progress::Progress;
use crate::config::CompressionSpec;
use crate::engine::compression::{Figures, Source};
use crate::engine::{Cf, Engine};
use crate::error::{Error, Result};

/// The candidates measured for every family.
pub const CANDIDATES: [&str; 9] = [
    "none",
    "snappy",
    "lz4",
    "zstd:1",
    "zstd:3",
    "zstd:9",
    "zstd:19",
    "lz4+dict",
    "zstd:3+dict",
];

/// Vectors sampled per collection for the quantization candidates.
const VECTOR_SAMPLE: usize = 2000;
/// Candidates slower than this to encode are not recommended (RocksDB
/// compresses in its flush and compaction threads).
const MIN_RECOMMENDED_MB_S: f64 = 20.0;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Candidate {
    pub compression: String,
    /// Raw keys and values over what the sample's blocks would store.
    pub predicted_ratio: f64,
    /// Compression speed on the sample (null for `none`).
    pub encode_mb_s: Option<f64>,
    /// Sample blocks it would store raw (compressing saved too little).
    pub blocks_stored_raw: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// One column family: what it holds now and what each candidate would.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FamilyReport {
    pub family: &'static str,
    pub compression: String,
    pub source: Source,
    /// The live table files (memtables not included: not yet compressed).
    pub raw_bytes: u64,
    pub stored_bytes: u64,
    pub ratio: f64,
    pub entries: u64,
    pub blocks_stored_raw: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sample: Option<SampleInfo>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub candidates: Vec<Candidate>,
    /// The best predicted ratio among candidates encoding at 20 MB/s or
    /// more.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recommended: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SampleInfo {
    pub entries: u64,
    pub raw_bytes: u64,
    pub blocks: u64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CollectionReport {
    pub collection: String,
    pub dimension: usize,
    pub quantization: crate::quant::Quantization,
    pub storage_format: &'static str,
    pub vectors_sampled: usize,
    pub candidates: Vec<QuantCandidate>,
    /// Ids per distinct vector, for a dedup collection.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dedup: Option<crate::engine::DedupFigures>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Report {
    pub families: Vec<FamilyReport>,
    pub collections: Vec<CollectionReport>,
    pub sample_bytes_per_family: u64,
    pub elapsed_ms: u64,
}

/// What to analyze.
pub struct Scope<'a> {
    pub family: Option<Cf>,
    pub collection: Option<&'a str>,
    pub sample_bytes: u64,
}

fn round(v: f64, decimals: i32) -> f64 {
    let m = 10f64.powi(decimals);
    (v * m).round() / m
}

/// The first key of each live table file of `cf`, in order.
pub(super) fn file_start_keys(engine: &Engine, cf: Cf) -> Result<Vec<Vec<u8>>> {
    let mut keys: Vec<Vec<u8>> = engine
        .db()
        .live_files()?
        .into_iter()
        .filter(|f| f.column_family_name == cf.name())
        .filter_map(|f| f.start_key)
        .collect();
    keys.sort();
    keys.dedup();
    Ok(keys)
}

/// Up to `budget` raw bytes of `cf`, taken from up to 16 points spread
/// over its table files (each read from a file's first key on), so a
/// large family is sampled across its key range, not only its start.
fn sample_family(engine: &Engine, cf: Cf, budget: u64) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut starts = file_start_keys(engine, cf)?;
    const POINTS: usize = 16;
    if starts.len() > POINTS {
        let n = starts.len();
        starts = (0..POINTS)
            .map(|i| starts[i * n / POINTS].clone())
            .collect();
    }
    if starts.is_empty() {
        starts.push(Vec::new());
    }
    let per_point = budget / starts.len() as u64 + 1;
    let mut out: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    for start in &starts {
        let mut ro = rocksdb::ReadOptions::default();
        ro.fill_cache(false);
        let mut it = engine.db().raw_iterator_cf_opt(engine.cf(cf), ro);
        it.seek(start);
        let mut taken = 0u64;
        while it.valid() && taken < per_point {
            let (Some(k), Some(v)) = (it.key(), it.value()) else {
                break;
            };
            if out.last().is_some_and(|(last, _)| last.as_slice() >= k) {
                // Reached what an earlier point already took.
                break;
            }
            taken += (k.len() + v.len()) as u64;
            out.push((k.to_vec(), v.to_vec()));
            it.next();
        }
        it.status()?;
    }
    Ok(out)
}

fn family_candidates(blocks: &Blocks, raw: u64) -> Result<Vec<Candidate>> {
    let mut out = Vec::new();
    for name in CANDIDATES {
        let spec = CompressionSpec::parse(name)?;
        let (predicted_ratio, encode_mb_s, blocks_stored_raw, note) = match simulate(blocks, &spec)
        {
            Ok(o) => (
                round(raw as f64 / o.stored_bytes.max(1) as f64, 3),
                o.encode_mb_s.map(|s| round(s, 1)),
                o.rejected,
                spec.dictionary.then(|| {
                    format!(
                        "at rest (bottommost level): zstd:{} with a dictionary; {} above it",
                        spec.dictionary_level(),
                        spec.algorithm.as_str()
                    )
                }),
            ),
            Err(e) => (0.0, None, 0, Some(e.message)),
        };
        out.push(Candidate {
            compression: name.to_string(),
            predicted_ratio,
            encode_mb_s,
            blocks_stored_raw,
            note,
        });
    }
    Ok(out)
}

/// The best predicted ratio among the candidates fast enough to encode;
/// within 2% of it, the fastest (`none` fastest of all: nothing to decode
/// either).
fn recommend(candidates: &[Candidate]) -> Option<String> {
    let speed = |c: &Candidate| c.encode_mb_s.unwrap_or(f64::MAX);
    let fit: Vec<&Candidate> = candidates
        .iter()
        .filter(|c| c.predicted_ratio > 0.0 && speed(c) >= MIN_RECOMMENDED_MB_S)
        .collect();
    let best = fit.iter().map(|c| c.predicted_ratio).fold(0.0, f64::max);
    fit.into_iter()
        .filter(|c| c.predicted_ratio >= best / 1.02)
        .max_by(|a, b| speed(a).total_cmp(&speed(b)))
        .map(|c| c.compression.clone())
}

/// `analyze-compression`.
pub fn analyze(
    engine: &Engine,
    scope: &Scope<'_>,
    progress: &Progress,
    cancelled: &dyn Fn() -> bool,
) -> Result<Report> {
    let started = Instant::now();
    let families: Vec<Cf> = match scope.family {
        Some(cf) => vec![cf],
        None => Cf::ALL.to_vec(),
    };
    progress.phase(
        "sampling column families",
        families.len() as u64,
        scope.sample_bytes * families.len() as u64,
    );
    let mut reports = Vec::new();
    for cf in families {
        if cancelled() {
            return Err(Error::cancelled("analyze-compression was cancelled"));
        }
        let f: Figures = engine.compression_figures(cf);
        let (spec, source) = engine.compression_of(cf);
        let mut report = FamilyReport {
            family: cf.name(),
            compression: spec.to_string(),
            source,
            raw_bytes: f.raw_bytes,
            stored_bytes: f.stored_bytes,
            ratio: round(f.ratio(), 3),
            entries: f.entries,
            blocks_stored_raw: f.blocks_rejected,
            sample: None,
            candidates: Vec::new(),
            recommended: None,
        };
        {
            let sample = sample_family(engine, cf, scope.sample_bytes)?;
            let blocks = Blocks::build(
                sample.iter().map(|(k, v)| (&k[..], &v[..])),
                engine.block_size(),
            );
            progress.advance(blocks.raw_bytes);
            if blocks.entries > 0 {
                report.candidates = family_candidates(&blocks, blocks.raw_bytes)?;
                report.recommended = recommend(&report.candidates);
            }
            report.sample = Some(SampleInfo {
                entries: blocks.entries,
                raw_bytes: blocks.raw_bytes,
                blocks: blocks.blocks.len() as u64,
            });
        }
        reports.push(report);
    }
    let mut collections = Vec::new();
    if matches!(scope.family, None | Some(Cf::Vectors)) {
        let infos = match scope.collection {
            Some(name) => vec![engine
                .collection_get(name)?
                .ok_or_else(|| Error::not_found(format!("collection {name:?} does not exist")))?],
            None => engine.collection_list()?,
        };
        progress.phase("measuring quantization", infos.len() as u64, 0);
        let spec = engine.compression_of(Cf::Vectors).0;
        for info in infos {
            if cancelled() {
                return Err(Error::cancelled("analyze-compression was cancelled"));
            }
            let sample = engine.vector_sample(&info, VECTOR_SAMPLE)?;
            collections.push(CollectionReport {
                candidates: quantization::candidates(
                    &sample,
                    info.dimension,
                    info.metric,
                    &spec,
                    engine.block_size(),
                )?,
                vectors_sampled: sample.vectors.len(),
                dedup: engine.dedup_figures(&info)?,
                storage_format: info.quantization.storage_format(),
                quantization: info.quantization,
                dimension: info.dimension,
                collection: info.name,
            });
        }
    }
    Ok(Report {
        families: reports,
        collections,
        sample_bytes_per_family: scope.sample_bytes,
        elapsed_ms: started.elapsed().as_millis() as u64,
    })
}

/// What a rewrite did.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Rewrite {
    pub family: &'static str,
    pub compression: String,
    pub sst_bytes_before: u64,
    pub sst_bytes_after: u64,
    pub ratio_before: f64,
    pub ratio_after: f64,
    pub ranges: u64,
    pub elapsed_ms: u64,
}

/// Rewrite every table file of `cf` with its current compression: a full
/// compaction (bottommost level included), range by range between the
/// files' first keys, so progress moves and a cancel stops between
/// ranges. Each range is rewritten by RocksDB atomically: every value is
/// readable in its old or its new blocks, never a mix.
pub fn rewrite(
    engine: &Engine,
    cf: Cf,
    progress: &Progress,
    cancelled: &dyn Fn() -> bool,
) -> Result<Rewrite> {
    let started = Instant::now();
    engine.flush()?;
    let sst = |e: &Engine| {
        e.stats()
            .column_families
            .iter()
            .find(|c| c.name == cf.name())
            .map_or(0, |c| c.sst_bytes)
    };
    let before = (sst(engine), engine.compression_figures(cf).ratio());
    progress.phase("rewriting table files", 1, before.0);
    // The bottommost files are rewritten too (they hold most of the data
    // and its old compression); Optimized skips the ones this same
    // compaction just wrote.
    let ranges = super::compaction::compact_family(
        engine,
        cf,
        BottommostLevelCompaction::ForceOptimized,
        progress,
        cancelled,
    )
    .map_err(|e| {
        e.context(format!(
            "the ranges done so far use {}",
            engine.compression_of(cf).0
        ))
    })?;
    let after = (sst(engine), engine.compression_figures(cf).ratio());
    let algorithm = engine.compression_of(cf).0;
    Ok(Rewrite {
        family: cf.name(),
        compression: algorithm.to_string(),
        sst_bytes_before: before.0,
        sst_bytes_after: after.0,
        ratio_before: round(before.1, 3),
        ratio_after: round(after.1, 3),
        ranges,
        elapsed_ms: started.elapsed().as_millis() as u64,
    })
}
