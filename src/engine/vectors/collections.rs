//! Collections: a descriptor (dimension, metric, how vectors are stored) in
//! `sys` under `collection/<name>`; its vectors are counted by walking their
//! keys.

use rocksdb::{ReadOptions, WriteBatch};
use serde::{Deserialize, Serialize};

use super::quantized::quant_key;
use crate::codec::{self, Codec};
use crate::engine::{group_prefix, Cf, Engine};
use crate::error::{Error, Result};
use crate::quant::{Quantization, Quantizer};

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

/// Whether a quantized collection also keeps its f32 vectors (in the
/// `originals` family), for rescoring and re-quantizing.
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
pub enum Originals {
    #[default]
    Keep,
    Drop,
}

/// Vectors a scalar or binary collection stores as f32 before its ranges
/// are calibrated on them (then all of them are re-encoded at once).
pub const DEFAULT_CALIBRATION_SAMPLE: usize = 1024;

/// How a collection stores its vectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Storage {
    pub quantization: Quantization,
    pub originals: Originals,
    pub calibration_sample: usize,
    /// Identical vectors stored once (see `dedup`).
    pub dedup: bool,
}

impl Default for Storage {
    fn default() -> Self {
        Storage {
            quantization: Quantization::None,
            originals: Originals::Keep,
            calibration_sample: DEFAULT_CALIBRATION_SAMPLE,
            dedup: false,
        }
    }
}

const fn default_calibration_sample() -> usize {
    DEFAULT_CALIBRATION_SAMPLE
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CollectionInfo {
    pub name: String,
    pub dimension: usize,
    pub metric: Metric,
    pub created_at: String,
    /// How vectors are stored (descriptors written before quantization
    /// existed read as `none`).
    #[serde(default)]
    pub quantization: Quantization,
    #[serde(default)]
    pub originals: Originals,
    #[serde(default = "default_calibration_sample")]
    pub calibration_sample: usize,
    /// The calibration generation new vectors are encoded with: `None`
    /// until the collection holds `calibration_sample` vectors (they are
    /// stored as f32 until then), always `None` for `none`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calibration: Option<u8>,
    /// Identical vectors stored once, ids referring to them (`dedup`);
    /// set at creation.
    #[serde(default)]
    pub dedup: bool,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub vectors: Option<u64>,
    /// With dedup: distinct vectors stored (listings only).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub unique_vectors: Option<u64>,
    /// With dedup: ids per distinct vector (listings only).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub dedup_ratio: Option<f64>,
    /// A change of quantization in progress (see `reencode`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reencode: Option<super::reencode::ReEncode>,
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

impl CollectionInfo {
    /// Whether upserts and deletes must take the schema lock: while the
    /// collection waits for its calibration, or is being re-encoded, whose
    /// steps read and rewrite its vectors (see `quantized`, `reencode`).
    pub(super) fn guarded(&self) -> bool {
        (self.quantization.calibrated() && self.calibration.is_none()) || self.reencode.is_some()
    }

    pub fn storage(&self) -> Storage {
        Storage {
            quantization: self.quantization,
            originals: self.originals,
            calibration_sample: self.calibration_sample,
            dedup: self.dedup,
        }
    }
}

/// The `sys` key of a collection's descriptor.
pub(super) fn descriptor_key(name: &str) -> String {
    format!("{COLLECTION_PREFIX}{name}")
}

impl Engine {
    pub fn collection_create(
        &self,
        name: &str,
        dimension: usize,
        metric: Metric,
    ) -> Result<(CollectionInfo, bool)> {
        self.collection_create_with(name, dimension, metric, Storage::default())
    }

    /// Create a collection with its storage settings. Creating one that
    /// exists with the same settings is a no-op; with others, an error.
    pub fn collection_create_with(
        &self,
        name: &str,
        dimension: usize,
        metric: Metric,
        storage: Storage,
    ) -> Result<(CollectionInfo, bool)> {
        check_collection_name(name)?;
        let q = storage.quantization;
        if let Err(why) = q.check_dimension(dimension) {
            return Err(Error::invalid(format!("quantization {q}: {why}")));
        }
        if q.calibrated() && !(1..=65_536).contains(&storage.calibration_sample) {
            return Err(Error::invalid(format!(
                "calibration_sample {} is out of range 1..=65536",
                storage.calibration_sample
            )));
        }
        let max = self.limits().max_dimension;
        if dimension == 0 || dimension > max {
            return Err(Error::invalid(format!(
                "dimension {dimension} is out of range 1..={max} (limits.max-dimension)"
            )));
        }
        // Check-then-create must not interleave with another create.
        let _ddl = self.ddl_write();
        if let Some(existing) = self.collection_get(name)? {
            if existing.dimension == dimension
                && existing.metric == metric
                && existing.storage() == storage
            {
                return Ok((existing, false));
            }
            return Err(Error::exists(format!(
                "collection {name:?} exists with dimension {}, metric {:?}, quantization {}, \
                 originals {:?}, dedup {}",
                existing.dimension,
                existing.metric,
                existing.quantization,
                existing.originals,
                existing.dedup
            )));
        }
        let mut info = CollectionInfo {
            name: name.to_string(),
            dimension,
            metric,
            created_at: crate::clock::iso_ms(self.clock().now_ms()),
            quantization: q,
            originals: storage.originals,
            calibration_sample: storage.calibration_sample,
            calibration: None,
            dedup: storage.dedup,
            vectors: None,
            unique_vectors: None,
            dedup_ratio: None,
            reencode: None,
        };
        let mut batch = WriteBatch::default();
        if q != Quantization::None && !q.calibrated() {
            // f16 needs no sample: its (empty) record is written now.
            let quantizer = Quantizer::uncalibrated(q, dimension);
            batch.put_cf(self.cf(Cf::Sys), quant_key(name, 0), quantizer.to_bytes());
            info.calibration = Some(0);
        }
        self.put_descriptor(&mut batch, &info)?;
        self.write(batch)?;
        Ok((info, true))
    }

    /// Add the descriptor of `info` to `batch`.
    pub(super) fn put_descriptor(
        &self,
        batch: &mut WriteBatch,
        info: &CollectionInfo,
    ) -> Result<()> {
        let mut stored = info.clone();
        stored.vectors = None;
        stored.unique_vectors = None;
        stored.dedup_ratio = None;
        let body = serde_json::to_vec(&stored).map_err(|e| Error::internal(e.to_string()))?;
        batch.put_cf(
            self.cf(Cf::Sys),
            descriptor_key(&info.name),
            codec::encode(Codec::Json, &body),
        );
        Ok(())
    }

    pub fn collection_get(&self, name: &str) -> Result<Option<CollectionInfo>> {
        check_collection_name(name)?;
        match self.get(Cf::Sys, descriptor_key(name).as_bytes())? {
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
        let mut list = self.collection_descriptors()?;
        for info in &mut list {
            match self.dedup_figures(info)? {
                Some(d) => {
                    info.vectors = Some(d.vectors);
                    info.unique_vectors = Some(d.unique_vectors);
                    info.dedup_ratio = Some(d.dedup_ratio);
                }
                None => {
                    info.vectors =
                        Some(self.count_prefix(Cf::Vectors, &group_prefix(&info.name), u64::MAX)?)
                }
            }
        }
        Ok(list)
    }

    /// The `storage_format` of the published record: the one every
    /// collection uses (`float32` with none), or `mixed`.
    pub fn storage_format(&self) -> Result<&'static str> {
        let mut formats = self
            .collection_descriptors()?
            .into_iter()
            .map(|c| c.quantization.storage_format());
        let first = formats.next().unwrap_or("float32");
        Ok(if formats.all(|f| f == first) {
            first
        } else {
            "mixed"
        })
    }

    /// How much larger the `vectors` family's values would be as f32: each
    /// collection's f32 value size over its stored value size, weighted by
    /// its share of the family's table files (RocksDB's approximate sizes
    /// of its key range). 1 with no quantized collection or no files.
    pub fn f32_expansion(&self) -> Result<f64> {
        let collections = self.collection_descriptors()?;
        let ranges: Vec<(Vec<u8>, Vec<u8>)> = collections
            .iter()
            .map(|c| {
                let start = group_prefix(&c.name);
                let mut end = start.clone();
                if let Some(last) = end.last_mut() {
                    // Prefixes end in \0; the ids' references and the
                    // distinct vectors of a dedup collection (\x01) both.
                    *last += 2;
                }
                (start, end)
            })
            .collect();
        let sizes = self.db().get_approximate_sizes_cf(
            self.cf(Cf::Vectors),
            &ranges
                .iter()
                .map(|(s, e)| rocksdb::Range::new(s, e))
                .collect::<Vec<_>>(),
        );
        let total: u64 = sizes.iter().sum();
        if total == 0 {
            return Ok(1.0);
        }
        Ok(collections
            .iter()
            .zip(&sizes)
            .map(|(c, &size)| {
                let f32_len = 1 + 4 * c.dimension;
                let stored_len = match (c.quantization, c.calibration) {
                    (q, Some(_)) if q != Quantization::None => 2 + q.code_len(c.dimension),
                    _ => f32_len,
                };
                size as f64 / total as f64 * f32_len as f64 / stored_len as f64
            })
            .sum())
    }

    /// Every collection's descriptor (without counts).
    pub(super) fn collection_descriptors(&self) -> Result<Vec<CollectionInfo>> {
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
            let info: CollectionInfo = serde_json::from_slice(payload)
                .map_err(|e| Error::corruption(format!("collection descriptor: {e}")))?;
            out.push(info);
        }
        Ok(out)
    }

    /// An iterator over the keys of one group (`prefix` = `group \0`),
    /// positioned at its first, reading past the block cache.
    pub(super) fn group_iter(&self, cf: Cf, prefix: &[u8]) -> rocksdb::DBRawIterator<'_> {
        self.group_iter_at(cf, prefix, None)
    }

    /// [`Self::group_iter`], reading `snapshot` (which must outlive it).
    pub(super) fn group_iter_at(
        &self,
        cf: Cf,
        prefix: &[u8],
        snapshot: Option<&rocksdb::Snapshot<'_>>,
    ) -> rocksdb::DBRawIterator<'_> {
        let mut ro = ReadOptions::default();
        ro.fill_cache(false);
        if let Some(s) = snapshot {
            ro.set_snapshot(s);
        }
        let mut upper = prefix.to_vec();
        if let Some(last) = upper.last_mut() {
            *last += 1; // prefixes end in \0, so this never overflows
        }
        ro.set_iterate_upper_bound(upper);
        let mut it = self.db().raw_iterator_cf_opt(self.cf(cf), ro);
        it.seek(prefix);
        it
    }

    /// Keys under `prefix`, counting no further than `max`.
    pub(super) fn count_prefix(&self, cf: Cf, prefix: &[u8], max: u64) -> Result<u64> {
        let mut it = self.group_iter(cf, prefix);
        let mut n = 0;
        while it.valid() && n < max {
            n += 1;
            it.next();
        }
        it.status()?;
        Ok(n)
    }
}
