//! Dedup of identical vectors (`dedup: true` on a collection, set when it is
//! created): each distinct vector is stored once, under its content hash,
//! and each id refers to it.
//!
//! | family      | key                           | value                                   |
//! |-------------|-------------------------------|-----------------------------------------|
//! | `vectors`   | `collection \0 id`            | `VectorRef`: the 16-byte content hash   |
//! | `vectors`   | `collection \x01 <hash hex>`  | the vector as stored (f32 or codes)     |
//! | `originals` | `collection \x01 <hash hex>`  | its f32, when the collection keeps them |
//! | `sys`       | `dedup/<collection>/<hash hex>` | how many ids refer to it, u64 LE      |
//!
//! The hash is the first 128 bits of SHA-256 over the vector's f32 bytes as
//! validated, so two ids share a value only when their floats are equal
//! bit for bit (an accidental collision needs ~2⁶⁴ distinct vectors).
//!
//! Every upsert and delete of a dedup collection reads the references it
//! replaces and the counts of every hash it touches, and puts the new
//! references, the new counts, and the content that appears (count 0 → 1)
//! or disappears (→ 0: value, original and count deleted) into the same
//! WriteBatch as the write itself. It does so holding the stripe locks of
//! every id and hash involved, so two writers never count from the same
//! reading; a SIGKILL leaves the batch whole or absent, never a count that
//! disagrees with the references (`check --verify-integrity` recounts).
//!
//! What is keyed by content (`value_prefix`) is what calibration,
//! re-encoding and `analyze-compression` walk: each distinct vector once.
//! Reads, counts and search walk the ids and follow their references.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use rocksdb::{ReadOptions, WriteBatch};
use sha2::{Digest, Sha256};

use super::quantized::Stored;
use super::CollectionInfo;
use crate::codec::{self, Codec};
use crate::engine::{group_prefix, Cf, Engine};
use crate::error::{Error, Result};

/// What a dedup collection keys a distinct vector by.
pub(super) type ContentHash = [u8; 16];

/// Stripes of the dedup write locks: ids and hashes map onto them.
const STRIPES: usize = 64;

/// The stripe locks of dedup writes (see the module docs).
#[derive(Debug)]
pub struct DedupLocks {
    stripes: Vec<Mutex<()>>,
}

impl Default for DedupLocks {
    fn default() -> Self {
        DedupLocks {
            stripes: (0..STRIPES).map(|_| Mutex::new(())).collect(),
        }
    }
}

/// FNV-1a, folded onto the stripes.
fn stripe_of(bytes: &[u8]) -> usize {
    let h = bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    (h % STRIPES as u64) as usize
}

/// The content hash of a validated f32 value (`F32Le` codec byte included).
pub(super) fn content_hash(f32_value: &[u8]) -> ContentHash {
    let digest = Sha256::digest(f32_value);
    let mut h = [0u8; 16];
    h.copy_from_slice(&digest[..16]);
    h
}

/// `collection \x01`: where a dedup collection's distinct vectors are keyed
/// (collection names never hold bytes below `-`, so no other key starts so).
pub(super) fn content_prefix(collection: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(collection.len() + 33);
    k.extend_from_slice(collection.as_bytes());
    k.push(1);
    k
}

pub(super) fn content_key(collection: &str, h: &ContentHash) -> Vec<u8> {
    let mut k = content_prefix(collection);
    k.extend_from_slice(crate::fs::hex(h).as_bytes());
    k
}

/// The `sys` key of a content's reference count.
pub fn refcount_key(collection: &str, h: &ContentHash) -> String {
    format!("{}{}", refcount_prefix(collection), crate::fs::hex(h))
}

/// `dedup/<collection>/`.
pub fn refcount_prefix(collection: &str) -> String {
    format!("dedup/{collection}/")
}

/// The hash an id's value refers to, or `None` when the value is a vector
/// itself (a collection without dedup).
pub fn decode_ref(value: &[u8]) -> Result<Option<ContentHash>> {
    if value.first() != Some(&(Codec::VectorRef as u8)) {
        return Ok(None);
    }
    let payload = &value[1..];
    let h: ContentHash = payload.try_into().map_err(|_| {
        Error::corruption(format!(
            "vector reference is {} bytes, not 16",
            payload.len()
        ))
    })?;
    Ok(Some(h))
}

fn encode_ref(h: &ContentHash) -> Vec<u8> {
    codec::encode(Codec::VectorRef, h)
}

/// A reference count as stored.
pub fn decode_count(v: &[u8]) -> Result<u64> {
    let b: [u8; 8] = v
        .try_into()
        .map_err(|_| Error::corruption(format!("reference count is {} bytes, not 8", v.len())))?;
    Ok(u64::from_le_bytes(b))
}

/// A change to one id of a dedup collection: its new vector (hash and
/// stored form), or `None` to delete it.
pub(super) type Change<'a> = (&'a [u8], Option<(ContentHash, &'a Stored)>);

/// Stripe locks held until the batch they cover is written.
pub(super) type Held<'a> = Vec<MutexGuard<'a, ()>>;

impl Engine {
    /// Where `info`'s stored values are keyed: by content with dedup, by id
    /// without.
    pub(super) fn value_prefix(info: &CollectionInfo) -> Vec<u8> {
        if info.dedup {
            content_prefix(&info.name)
        } else {
            group_prefix(&info.name)
        }
    }

    /// The key of a stored value from its suffix after [`Self::value_prefix`].
    pub(super) fn value_key(info: &CollectionInfo, suffix: &str) -> Vec<u8> {
        let mut k = Self::value_prefix(info);
        k.extend_from_slice(suffix.as_bytes());
        k
    }

    /// The stored vector of the id at `key` (following its reference in a
    /// dedup collection; both read from one snapshot).
    pub(super) fn read_vector(&self, info: &CollectionInfo, key: &[u8]) -> Result<Option<Vec<u8>>> {
        if !info.dedup {
            return self.get(Cf::Vectors, key);
        }
        let snapshot = self.db().snapshot();
        let mut ro = ReadOptions::default();
        ro.set_snapshot(&snapshot);
        let vcf = self.cf(Cf::Vectors);
        let Some(value) = self.db().get_pinned_cf_opt(vcf, key, &ro)? else {
            return Ok(None);
        };
        let Some(h) = decode_ref(&value)? else {
            return Err(Error::corruption(format!(
                "collection {:?} deduplicates, but id {:?} holds a vector, not a reference",
                info.name,
                String::from_utf8_lossy(key)
            )));
        };
        self.counters
            .reads
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        match self
            .db()
            .get_pinned_cf_opt(vcf, content_key(&info.name, &h), &ro)?
        {
            Some(v) => Ok(Some(v.to_vec())),
            None => Err(Error::corruption(format!(
                "collection {:?}: content {} referred to by {:?} is missing",
                info.name,
                crate::fs::hex(&h),
                String::from_utf8_lossy(key)
            ))),
        }
    }

    /// The hashes the ids at `keys` refer to now.
    fn read_refs(&self, info: &CollectionInfo, keys: &[&[u8]]) -> Result<Vec<Option<ContentHash>>> {
        self.db()
            .batched_multi_get_cf(self.cf(Cf::Vectors), keys, false)
            .into_iter()
            .zip(keys)
            .map(|(got, key)| match got? {
                None => Ok(None),
                Some(v) => decode_ref(&v)?.map(Some).ok_or_else(|| {
                    Error::corruption(format!(
                        "collection {:?} deduplicates, but id {:?} holds a vector, not a \
                         reference",
                        info.name,
                        String::from_utf8_lossy(key)
                    ))
                }),
            })
            .collect()
    }

    /// Stage `changes` to the dedup collection `info` into `batch`:
    /// references, counts, and content that appears or disappears. Returns
    /// the locks to hold until the batch is written, and how many of the
    /// ids existed.
    pub(super) fn dedup_stage<'a>(
        &'a self,
        info: &CollectionInfo,
        batch: &mut WriteBatch,
        changes: &[Change<'_>],
    ) -> Result<(Held<'a>, usize)> {
        let keys: Vec<&[u8]> = changes.iter().map(|(k, _)| *k).collect();
        let new_hashes = changes
            .iter()
            .filter_map(|(_, c)| c.as_ref().map(|(h, _)| h));
        let new_stripes: Vec<usize> = new_hashes.map(|h| stripe_of(h)).collect();
        // Lock the stripes of the ids, of what they refer to and of the new
        // hashes; a reference changed between the read and the locks means
        // other stripes may be needed: read again.
        let mut old = self.read_refs(info, &keys)?;
        let held = loop {
            let mut stripes: Vec<usize> = keys
                .iter()
                .map(|k| stripe_of(k))
                .chain(old.iter().flatten().map(|h| stripe_of(h)))
                .chain(new_stripes.iter().copied())
                .collect();
            stripes.sort_unstable();
            stripes.dedup();
            let held: Held<'a> = stripes
                .iter()
                .map(|&i| {
                    self.dedup_locks.stripes[i]
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                })
                .collect();
            let now = self.read_refs(info, &keys)?;
            if now == old {
                break held;
            }
            drop(held);
            old = now;
        };
        let (vcf, ocf, scf) = (
            self.cf(Cf::Vectors),
            self.cf(Cf::Originals),
            self.cf(Cf::Sys),
        );
        let mut delta: HashMap<ContentHash, i64> = HashMap::new();
        let mut existed = 0;
        for h in old.iter().flatten() {
            *delta.entry(*h).or_default() -= 1;
            existed += 1;
        }
        let mut fresh: HashMap<ContentHash, &Stored> = HashMap::new();
        for (key, change) in changes {
            match change {
                Some((h, stored)) => {
                    *delta.entry(*h).or_default() += 1;
                    fresh.entry(*h).or_insert(stored);
                    batch.put_cf(vcf, key, encode_ref(h));
                }
                None => batch.delete_cf(vcf, key),
            }
        }
        let hashes: Vec<ContentHash> = delta.keys().copied().collect();
        let count_keys: Vec<String> = hashes.iter().map(|h| refcount_key(&info.name, h)).collect();
        let counts = self.db().batched_multi_get_cf(scf, &count_keys, false);
        for ((h, count_key), got) in hashes.iter().zip(&count_keys).zip(counts) {
            let before = match got? {
                None => 0,
                Some(v) => decode_count(&v).map_err(|e| e.context(count_key.clone()))?,
            };
            let change = delta.get(h).copied().unwrap_or(0);
            let after = i128::from(before) + i128::from(change);
            if after < 0 {
                return Err(Error::corruption(format!(
                    "{count_key} is {before}, but {} of this write's ids refer to it: the \
                     reference counts of collection {:?} disagree with its references \
                     (`check --verify-integrity` lists them; restore a verified snapshot)",
                    -change, info.name
                )));
            }
            let content = content_key(&info.name, h);
            if after == 0 {
                if before > 0 {
                    batch.delete_cf(vcf, &content);
                    batch.delete_cf(ocf, &content);
                    batch.delete_cf(scf, count_key);
                }
                continue;
            }
            // This write brings the vector (from zero), or brings it again:
            // stored anew, so content an earlier lossy re-encode left
            // approximate (int8 back to f32 without originals) is exact
            // again — every id referring to it had the same floats.
            if let Some(stored) = fresh.get(h) {
                batch.put_cf(vcf, &content, &stored.value);
                if let Some(o) = &stored.original {
                    batch.put_cf(ocf, &content, o);
                }
            } else if before == 0 {
                return Err(Error::internal(format!(
                    "no content staged for {count_key}"
                )));
            }
            if after != i128::from(before) {
                batch.put_cf(scf, count_key, (after as u64).to_le_bytes());
            }
        }
        Ok((held, existed))
    }

    /// Distinct vectors of a dedup collection (walks their keys).
    pub fn unique_vectors(&self, collection: &str) -> Result<u64> {
        self.count_prefix(Cf::Vectors, &content_prefix(collection), u64::MAX)
    }

    /// Ids, distinct vectors and their ratio of a dedup collection (walks
    /// its keys); `None` without dedup.
    pub fn dedup_figures(&self, info: &CollectionInfo) -> Result<Option<DedupFigures>> {
        if !info.dedup {
            return Ok(None);
        }
        let vectors = self.count_prefix(Cf::Vectors, &group_prefix(&info.name), u64::MAX)?;
        let unique_vectors = self.unique_vectors(&info.name)?;
        Ok(Some(DedupFigures {
            collection: info.name.clone(),
            vectors,
            unique_vectors,
            dedup_ratio: if unique_vectors == 0 {
                1.0
            } else {
                vectors as f64 / unique_vectors as f64
            },
        }))
    }

    /// [`Self::dedup_figures`] of every dedup collection.
    pub fn dedup_all(&self) -> Result<Vec<DedupFigures>> {
        let mut out = Vec::new();
        for info in self.collection_descriptors()? {
            out.extend(self.dedup_figures(&info)?);
        }
        Ok(out)
    }
}

/// How much a dedup collection saves: ids per distinct vector stored.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DedupFigures {
    pub collection: String,
    pub vectors: u64,
    pub unique_vectors: u64,
    pub dedup_ratio: f64,
}

/// The distinct vectors of a dedup collection, by hash (hex), as of a
/// snapshot: what the ids' references resolve to while a search copy is
/// built.
pub(super) struct Contents {
    by_hash: HashMap<String, Vec<u8>>,
}

impl Contents {
    /// The stored vector behind an id's value.
    pub(super) fn resolve<'a>(&'a self, value: &'a [u8]) -> Result<&'a [u8]> {
        let Some(h) = decode_ref(value)? else {
            return Err(Error::corruption(
                "the collection deduplicates, but the id holds a vector, not a reference",
            ));
        };
        let hex = crate::fs::hex(&h);
        self.by_hash
            .get(&hex)
            .map(Vec::as_slice)
            .ok_or_else(|| Error::corruption(format!("content {hex} it refers to is missing")))
    }
}

impl Engine {
    /// A dedup collection's distinct vectors at `snapshot`; `None` without
    /// dedup.
    pub(super) fn contents_at(
        &self,
        info: &CollectionInfo,
        snapshot: &rocksdb::Snapshot<'_>,
        budget: usize,
    ) -> Result<Option<Contents>> {
        if !info.dedup {
            return Ok(None);
        }
        let prefix = content_prefix(&info.name);
        let mut it = self.group_iter_at(Cf::Vectors, &prefix, Some(snapshot));
        let mut by_hash = HashMap::new();
        let mut bytes = 0usize;
        while let (Some(k), Some(v)) = (it.key(), it.value()) {
            // Counted against the search budget too: a collection too
            // large to copy is refused before it is all read.
            bytes += k.len() + v.len() + 64;
            if bytes > budget {
                return Err(Error::invalid(format!(
                    "collection {:?} is too large to search by exact scan: its distinct \
                     vectors alone passed limits.search-cache-mb ({} MiB) at {} of them; \
                     raise the limit or search it with an index agent",
                    info.name,
                    budget / (1024 * 1024),
                    by_hash.len()
                )));
            }
            by_hash.insert(
                String::from_utf8_lossy(&k[prefix.len()..]).into_owned(),
                v.to_vec(),
            );
            it.next();
        }
        it.status()?;
        Ok(Some(Contents { by_hash }))
    }

    /// Where the stored values (and kept originals) of `ids` are keyed:
    /// their own keys, or with dedup the content their references name
    /// (an id deleted meanwhile keeps its own key, which finds nothing).
    pub(super) fn stored_keys(&self, info: &CollectionInfo, ids: &[&str]) -> Result<Vec<Vec<u8>>> {
        let keys: Vec<Vec<u8>> = ids
            .iter()
            .map(|id| crate::engine::composite_key(&info.name, id))
            .collect();
        if !info.dedup {
            return Ok(keys);
        }
        let slices: Vec<&[u8]> = keys.iter().map(Vec::as_slice).collect();
        let refs = self.read_refs(info, &slices)?;
        Ok(keys
            .iter()
            .zip(refs)
            .map(|(k, r)| match r {
                Some(h) => content_key(&info.name, &h),
                None => k.clone(),
            })
            .collect())
    }
}
