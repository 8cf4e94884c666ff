//! Changing a collection's quantization (or re-deriving its ranges) after
//! it holds vectors: a job that re-encodes them a batch at a time.
//!
//! It starts with one WriteBatch: the records of generations no vector uses
//! any more (those before the current one: the previous job finished)
//! deleted, the new calibration record (the next generation no record
//! uses, counting up from the current one), and the descriptor naming it
//! with a `reencode` marker.
//! From then on new vectors are written in the new format. Each step, with
//! the schema lock held exclusively (upserts and deletes hold it shared, and
//! exclusively while the marker is set), re-encodes the next vectors after
//! the marker's cursor and writes them with the advanced cursor in one
//! WriteBatch. The last step removes the marker. The old generation's
//! record stays until the next change starts, so a reader that fetched an
//! old value just before the last step still finds its record, and a
//! generation number comes back only after 255 more changes.
//!
//! So a SIGKILL anywhere loses nothing: every value is whole in its old or
//! its new format (each names its generation, whose record is kept until
//! the end), and the job resumes from the cursor that was written with the
//! values it covers.
//!
//! A target of `none`, or a calibrated one for a collection holding fewer
//! vectors than its calibration sample, turns the vectors back into f32
//! (from their originals where kept); a calibrated target then calibrates
//! when the sample is reached, as for a new collection.

use rocksdb::WriteBatch;
use serde::{Deserialize, Serialize};

use super::collections::Originals;
use super::quantized::quant_key;
use super::CollectionInfo;
use crate::codec::{self, Codec};
use crate::engine::{Cf, Engine};
use crate::error::{Error, Result};
use crate::quant::{Quantization, Quantizer};

/// The marker of a re-encode in progress, in the descriptor.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct ReEncode {
    /// The format the collection had when it began.
    pub from: Quantization,
    /// The id of the last vector re-encoded (ids after it remain).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    pub started_at: String,
    /// Vectors re-encoded so far.
    #[serde(default)]
    pub done: u64,
}

/// What one step did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Step {
    /// Vectors looked at (some may have been in the new format already:
    /// written since the job began).
    pub seen: u64,
    pub reencoded: u64,
    pub finished: bool,
}

impl Engine {
    /// The generations of `collection` that have a calibration record.
    pub(super) fn generations(&self, collection: &str) -> Result<Vec<u8>> {
        let prefix = quant_key(collection, 0);
        let prefix = &prefix.as_bytes()[..prefix.len() - 1]; // `quant/<name>/`
        let mut out = Vec::new();
        for kv in self.db().prefix_iterator_cf(self.cf(Cf::Sys), prefix) {
            let (k, _) = kv?;
            let Some(rest) = k.strip_prefix(prefix) else {
                break;
            };
            match std::str::from_utf8(rest)
                .ok()
                .and_then(|s| s.parse::<u8>().ok())
            {
                Some(g) => out.push(g),
                None => {
                    return Err(Error::corruption(format!(
                        "sys key {:?} is not a calibration record of {collection:?}",
                        String::from_utf8_lossy(&k)
                    )))
                }
            }
        }
        Ok(out)
    }

    /// The smallest generation of `collection` with no calibration record.
    pub(super) fn free_generation(&self, collection: &str) -> Result<u8> {
        let used = self.generations(collection)?;
        if let Some(g) = (0..=u8::MAX).find(|g| !used.contains(g)) {
            return Ok(g);
        }
        Err(Error::unavailable(format!(
            "collection {collection:?} has 256 calibration records in use; let the running \
             re-encode finish first"
        )))
    }

    /// Begin re-encoding `collection` into `target` (with `recalibrate`, its
    /// own format with new ranges), or find the one already running into
    /// the same target. Returns the descriptor with its marker.
    pub fn reencode_start(
        &self,
        collection: &str,
        target: Quantization,
        recalibrate: bool,
    ) -> Result<CollectionInfo> {
        let _ddl = self.ddl_write();
        let info = self.collection_required(collection)?;
        if let Some(r) = &info.reencode {
            if info.quantization == target {
                return Ok(info);
            }
            return Err(Error::unavailable(format!(
                "collection {collection:?} is being re-encoded from {} to {} ({} done); \
                 run the same command to resume it, or wait",
                r.from, info.quantization, r.done
            )));
        }
        if let Err(why) = target.check_dimension(info.dimension) {
            return Err(Error::invalid(format!(
                "quantization {target} does not fit collection {collection:?}: {why}"
            )));
        }
        if recalibrate && !(target.calibrated() && target == info.quantization) {
            return Err(Error::invalid(format!(
                "recalibrate re-derives the ranges of a scalar or binary collection; \
                 {collection:?} is {} (to change it, give quantization)",
                info.quantization
            )));
        }
        if !recalibrate && target == info.quantization {
            return Err(Error::invalid(format!(
                "collection {collection:?} is already {target} (recalibrate re-derives its ranges)"
            )));
        }
        if target.calibrated() && !(1..=65_536).contains(&info.calibration_sample) {
            return Err(Error::invalid(format!(
                "collection {collection:?} has calibration_sample {}; {target} needs 1..=65536",
                info.calibration_sample
            )));
        }
        let mut next = info.clone();
        next.quantization = target;
        next.calibration = None;
        let mut batch = WriteBatch::default();
        // Retire what the last change left: no vector uses those records.
        let mut in_use = Vec::new();
        for g in self.generations(collection)? {
            if Some(g) == info.calibration {
                in_use.push(g);
            } else {
                batch.delete_cf(self.cf(Cf::Sys), quant_key(collection, g));
            }
        }
        let sample = info.calibration_sample as u64;
        let prefix = Self::value_prefix(&info);
        let quantizer = match target {
            Quantization::None => None,
            t if !t.calibrated() => Some(Quantizer::uncalibrated(t, info.dimension)),
            t if self.count_prefix(Cf::Vectors, &prefix, sample)? >= sample => {
                let s = self.vector_sample(&info, info.calibration_sample)?;
                let refs: Vec<&[f32]> = s.vectors.iter().map(Vec::as_slice).collect();
                Some(Quantizer::calibrate(t, info.dimension, &refs)?)
            }
            // Fewer than the sample: f32 until it is reached.
            _ => None,
        };
        let fresh = match quantizer {
            Some(q) => {
                // Counting up from the current generation (past the one in
                // use), so a number is reused as late as possible.
                let from = info.calibration.map_or(0, |g| g.wrapping_add(1));
                let g = (0..=u8::MAX)
                    .map(|i| from.wrapping_add(i))
                    .find(|g| !in_use.contains(g))
                    .unwrap_or(from);
                batch.put_cf(self.cf(Cf::Sys), quant_key(collection, g), q.to_bytes());
                next.calibration = Some(g);
                Some((g, q))
            }
            None => None,
        };
        next.reencode = Some(ReEncode {
            from: info.quantization,
            after: None,
            started_at: crate::clock::iso_ms(self.clock().now_ms()),
            done: 0,
        });
        self.put_descriptor(&mut batch, &next)?;
        self.write(batch)?;
        // The cache may hold a retired record under the new number.
        self.forget_quantizers(collection);
        if let Some((g, q)) = fresh {
            self.remember_quantizer(collection, g, q);
        }
        self.search_invalidate(collection);
        tracing::info!(collection, from = %info.quantization, to = %target, "re-encode started");
        Ok(next)
    }

    /// Re-encode up to `max` more vectors of `collection`; the last step
    /// ends the job.
    pub fn reencode_step(&self, collection: &str, max: usize) -> Result<Step> {
        let _ddl = self.ddl_write();
        let mut info = self.collection_required(collection)?;
        let Some(mut marker) = info.reencode.clone() else {
            return Ok(Step {
                seen: 0,
                reencoded: 0,
                finished: true,
            });
        };
        let current = self.current_quantizer(&info)?;
        // The stored values: by id, or by content with dedup (the ids'
        // references do not change).
        let prefix = Self::value_prefix(&info);
        let mut it = self.group_iter(Cf::Vectors, &prefix);
        if let Some(after) = &marker.after {
            let key = Self::value_key(&info, after);
            it.seek(&key);
            if it.key() == Some(&key[..]) {
                it.next();
            }
        }
        let mut batch = WriteBatch::default();
        let mut seen = 0usize;
        let mut reencoded = 0u64;
        let mut clipped = 0;
        while it.valid() && seen < max {
            let (Some(key), Some(value)) = (it.key(), it.value()) else {
                break;
            };
            seen += 1;
            let target_form = match &current {
                Some((g, _)) => {
                    value.first() == Some(&(Codec::Quantized as u8)) && value.get(1) == Some(g)
                }
                None => value.first() == Some(&(Codec::F32Le as u8)),
            };
            if !target_form {
                let floats = match (value.first(), info.originals) {
                    (Some(&c), Originals::Keep) if c == Codec::Quantized as u8 => {
                        match self.get(Cf::Originals, key)? {
                            Some(o) => codec::f32_from_le(codec::expect(&o, Codec::F32Le)?)?,
                            None => self.decode_vector(collection, value)?,
                        }
                    }
                    _ => self.decode_vector(collection, value)?,
                };
                let stored = Self::to_stored(&info, current.as_ref(), codec::encode_f32(&floats))?;
                batch.put_cf(self.cf(Cf::Vectors), key, &stored.value);
                match stored.original {
                    Some(o) => batch.put_cf(self.cf(Cf::Originals), key, o),
                    None => batch.delete_cf(self.cf(Cf::Originals), key),
                }
                clipped += stored.clipped;
                reencoded += 1;
            }
            marker.after = Some(String::from_utf8_lossy(&key[prefix.len()..]).into_owned());
            it.next();
        }
        it.status()?;
        let finished = !it.valid();
        drop(it);
        marker.done += reencoded;
        if finished {
            info.reencode = None;
        } else {
            info.reencode = Some(marker);
        }
        self.put_descriptor(&mut batch, &info)?;
        crate::fs::crash_point("reencode:before-write");
        self.write(batch)?;
        self.count_clipped(clipped);
        self.search_invalidate(collection);
        if finished {
            tracing::info!(collection, quantization = %info.quantization, "re-encode finished");
        }
        Ok(Step {
            seen: seen as u64,
            reencoded,
            finished,
        })
    }

    /// How many values `collection` stores (walks their keys): one a
    /// vector, or one a distinct vector with dedup; what a re-encode walks.
    pub fn collection_vectors(&self, collection: &str) -> Result<u64> {
        let info = self.collection_required(collection)?;
        self.count_prefix(Cf::Vectors, &Self::value_prefix(&info), u64::MAX)
    }

    /// Collections with a re-encode to finish (after a restart).
    pub fn reencodes_pending(&self) -> Result<Vec<CollectionInfo>> {
        Ok(self
            .collection_descriptors()?
            .into_iter()
            .filter(|c| c.reencode.is_some())
            .collect())
    }
}
