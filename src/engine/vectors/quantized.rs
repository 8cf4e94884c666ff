//! Quantized collections: their calibration records, encoding on upsert,
//! decoding on read, and the calibration itself.
//!
//! A scalar or binary collection stores its first `calibration_sample`
//! vectors as f32. The upsert that reaches the sample derives the ranges
//! from them and, in one WriteBatch, writes the calibration record
//! (`quant/<collection>/0` in `sys`), the descriptor naming it, and every
//! vector re-encoded as codes (their f32 moved to `originals` when the
//! collection keeps them). A crash before that batch leaves the f32
//! vectors and no record; the next upsert calibrates. Upserts of an
//! uncalibrated collection hold the schema lock, so none slips an f32
//! vector in between the calibration's read and its write.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rocksdb::WriteBatch;

use super::collections::Originals;
use super::CollectionInfo;
use crate::codec::{self, Codec};
use crate::engine::{Cf, Engine};
use crate::error::{Error, Result};
use crate::quant::{Quantization, Quantizer};

/// The `sys` key of a collection's calibration record.
pub(super) fn quant_key(collection: &str, generation: u8) -> String {
    format!("quant/{collection}/{generation}")
}

/// Calibration records read so far (they never change once written).
#[derive(Debug, Default)]
pub struct Quantizers {
    map: Mutex<HashMap<(String, u8), Arc<Quantizer>>>,
}

/// A vector as it is stored: the `vectors` value and, for a collection that
/// keeps them, its f32 original.
pub(super) struct Stored {
    pub value: Vec<u8>,
    pub original: Option<Vec<u8>>,
    pub clipped: usize,
}

impl Engine {
    /// The calibration record of `collection`'s generation `generation`.
    pub(super) fn quantizer(&self, collection: &str, generation: u8) -> Result<Arc<Quantizer>> {
        let key = (collection.to_string(), generation);
        let cache = &self.quantizers.map;
        if let Some(q) = cache.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
            return Ok(q.clone());
        }
        let bytes = self
            .get(Cf::Sys, quant_key(collection, generation).as_bytes())?
            .ok_or_else(|| {
                Error::corruption(format!(
                    "collection {collection:?}: calibration generation {generation} has no \
                     record ({} in sys is missing)",
                    quant_key(collection, generation)
                ))
            })?;
        let q = Arc::new(
            Quantizer::from_bytes(&bytes).map_err(|e| e.context(format!("{collection:?}")))?,
        );
        cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, q.clone());
        Ok(q)
    }

    /// Drop the cached records of `collection` (after some were deleted).
    pub(super) fn forget_quantizers(&self, collection: &str) {
        self.quantizers
            .map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|(name, _), _| name != collection);
    }

    /// Cache a record just written.
    pub(super) fn remember_quantizer(&self, collection: &str, generation: u8, q: Quantizer) {
        self.quantizers
            .map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert((collection.to_string(), generation), Arc::new(q));
    }

    /// The quantizer new vectors of `info` are encoded with, if any yet.
    pub(super) fn current_quantizer(
        &self,
        info: &CollectionInfo,
    ) -> Result<Option<(u8, Arc<Quantizer>)>> {
        match info.calibration {
            Some(g) if info.quantization != Quantization::None => {
                Ok(Some((g, self.quantizer(&info.name, g)?)))
            }
            _ => Ok(None),
        }
    }

    /// Turn a validated f32 value (`F32Le` codec) into what is stored.
    pub(super) fn to_stored(
        info: &CollectionInfo,
        current: Option<&(u8, Arc<Quantizer>)>,
        f32_value: Vec<u8>,
    ) -> Result<Stored> {
        let Some((generation, q)) = current else {
            return Ok(Stored {
                value: f32_value,
                original: None,
                clipped: 0,
            });
        };
        let floats = codec::f32_from_le(codec::expect(&f32_value, Codec::F32Le)?)?;
        let mut value = Vec::with_capacity(2 + q.code_len());
        value.push(Codec::Quantized as u8);
        value.push(*generation);
        let clipped = q.encode(&floats, &mut value);
        let original = (info.originals == Originals::Keep).then_some(f32_value);
        Ok(Stored {
            value,
            original,
            clipped,
        })
    }

    /// A stored `vectors` value of `collection` as floats.
    pub(super) fn decode_vector(&self, collection: &str, value: &[u8]) -> Result<Vec<f32>> {
        match codec::decode(value)? {
            (Codec::F32Le, payload) => codec::f32_from_le(payload),
            (Codec::Quantized, [generation, code @ ..]) => {
                self.quantizer(collection, *generation)?.decode(code)
            }
            (other, _) => Err(Error::corruption(format!(
                "codec {other:?} is not a vector codec"
            ))),
        }
    }

    /// With the schema lock held: if `info` (read under it) is a scalar or
    /// binary collection without ranges that now holds its sample,
    /// calibrate it. Returns the descriptor as it is afterwards.
    pub(super) fn calibrate_if_due(&self, info: CollectionInfo) -> Result<CollectionInfo> {
        if !info.quantization.calibrated() || info.calibration.is_some() || info.reencode.is_some()
        {
            // (A re-encode's values may still use any generation; it
            // calibrates at its start, or leaves f32 for a later upsert.)
            return Ok(info);
        }
        // (A dedup collection's distinct vectors: its ids refer to them.)
        let prefix = Self::value_prefix(&info);
        let sample = info.calibration_sample as u64;
        if self.count_prefix(Cf::Vectors, &prefix, sample)? < sample {
            return Ok(info);
        }
        // Every vector is f32 until now; all of them are re-encoded.
        let mut it = self.group_iter(Cf::Vectors, &prefix);
        let mut rows: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        while let (Some(k), Some(v)) = (it.key(), it.value()) {
            rows.push((k.to_vec(), v.to_vec()));
            it.next();
        }
        it.status()?;
        let floats: Vec<Vec<f32>> = rows
            .iter()
            .map(|(_, v)| self.decode_vector(&info.name, v))
            .collect::<Result<_>>()?;
        let refs: Vec<&[f32]> = floats.iter().map(Vec::as_slice).collect();
        let quantizer = Arc::new(Quantizer::calibrate(
            info.quantization,
            info.dimension,
            &refs,
        )?);
        let generation = self.free_generation(&info.name)?;
        let mut calibrated = info.clone();
        calibrated.calibration = Some(generation);
        let current = (generation, quantizer.clone());
        let mut batch = WriteBatch::default();
        batch.put_cf(
            self.cf(Cf::Sys),
            quant_key(&info.name, generation),
            quantizer.to_bytes(),
        );
        self.put_descriptor(&mut batch, &calibrated)?;
        let mut clipped = 0;
        for (key, value) in rows {
            let stored = Self::to_stored(&calibrated, Some(&current), value)?;
            clipped += stored.clipped;
            batch.put_cf(self.cf(Cf::Vectors), &key, stored.value);
            if let Some(o) = stored.original {
                batch.put_cf(self.cf(Cf::Originals), &key, o);
            }
        }
        crate::fs::crash_point("calibrate:before-write");
        self.write(batch)?;
        // The cache may hold a record of an earlier life of this name.
        self.quantizers
            .map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert((info.name.clone(), generation), quantizer);
        self.count_clipped(clipped);
        tracing::info!(
            collection = %info.name,
            quantization = %info.quantization,
            sample = refs.len(),
            "calibrated the collection's ranges and re-encoded its vectors"
        );
        Ok(calibrated)
    }
}

/// Vectors of a collection as f32 (the kept originals where there are,
/// else the stored values decoded), with their keys: what
/// `analyze-compression` measures quantization on.
#[derive(Debug, Default)]
pub struct VectorSample {
    pub keys: Vec<Vec<u8>>,
    pub vectors: Vec<Vec<f32>>,
}

impl Engine {
    /// Up to `max` vectors of `info`'s collection, in key order.
    pub fn vector_sample(&self, info: &CollectionInfo, max: usize) -> Result<VectorSample> {
        let mut out = VectorSample::default();
        let mut it = self.group_iter(Cf::Vectors, &Self::value_prefix(info));
        while it.valid() && out.keys.len() < max {
            let (Some(key), Some(value)) = (it.key(), it.value()) else {
                break;
            };
            let original = match (value.first(), info.originals) {
                (Some(&c), Originals::Keep) if c == Codec::Quantized as u8 => {
                    self.get(Cf::Originals, key)?
                }
                _ => None,
            };
            let floats = match original {
                Some(v) => codec::f32_from_le(codec::expect(&v, Codec::F32Le)?)?,
                None => self.decode_vector(&info.name, value)?,
            };
            out.keys.push(key.to_vec());
            out.vectors.push(floats);
            it.next();
        }
        it.status()?;
        Ok(out)
    }
}
