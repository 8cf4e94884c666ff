//! Continuous WAL archiving and point-in-time recovery.
//!
//! The archiver reads committed batches from RocksDB's WAL (see
//! [`crate::cdc::read_wal`]) after the last archived sequence and ships
//! them as one segment object per pass:
//! `wal/<first sequence:020>-<last sequence:020>.seg`, zstd-compressed
//! frames `[sequence u64][commit ms i64][length u32][batch bytes]` followed
//! by the SHA-256 of the frames. Segments are contiguous: each starts right
//! after the previous one ends, which [`Archive::batches`] checks.
//!
//! With encryption on, a segment is `wal/<first>-<last>.eseg`: `RVWE`, a
//! header length (u32), a JSON header naming the key-encryption key and
//! carrying the segment's own data key wrapped by it, then the compressed
//! segment sealed with AES-256-GCM under the data key, the object's name as
//! associated data (a segment cannot be passed off as another range).
//!
//! `wal/HISTORY` names the store history the archive belongs to (see
//! [`crate::engine::Engine::history`]); the archiver refuses to continue
//! an archive of another history (the store was restored since, or another
//! store archives there), so two histories are never chained.
//!
//! A WAL-based incremental backup lists the segments that carry its store
//! from its base backup to its sequence ([`WalObject`], with size and
//! SHA-256 of each stored object); restoring it is a point-in-time restore
//! of the base to exactly that sequence.
//!
//! A point-in-time restore takes the newest backup at or before the target
//! and replays the archived batches after its sequence, in order, up to the
//! target sequence or the last batch committed at or before the target time.

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::ObjectStore;
use rocksdb::WriteBatch;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::crypto::{self, KeyRef, Keyring};
use super::Target;
use crate::cdc::{self, WalBatch};
use crate::engine::Engine;
use crate::error::{Error, Result};

/// At most this many batches, or about this many bytes, per segment.
const MAX_SEGMENT_BATCHES: usize = 100_000;
const MAX_SEGMENT_BYTES: usize = 64 << 20;

/// One archived segment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Segment {
    pub first: u64,
    pub last: u64,
    pub object: String,
    /// Bytes of the stored object.
    pub size: u64,
    /// SHA-256 of the stored object, when a manifest vouches for it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

/// A segment as a backup manifest lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WalObject {
    pub object: String,
    pub first: u64,
    pub last: u64,
    /// Bytes of the stored object and their SHA-256 (lower-case hex).
    pub size: u64,
    pub sha256: String,
}

impl From<&WalObject> for Segment {
    fn from(w: &WalObject) -> Segment {
        Segment {
            first: w.first,
            last: w.last,
            object: w.object.clone(),
            size: w.size,
            sha256: Some(w.sha256.clone()),
        }
    }
}

fn segment_name(first: u64, last: u64, encrypted: bool) -> String {
    let ext = if encrypted { "eseg" } else { "seg" };
    format!("wal/{first:020}-{last:020}.{ext}")
}

fn parse_segment(name: &str) -> Option<(u64, u64)> {
    let stem = name
        .strip_suffix(".seg")
        .or_else(|| name.strip_suffix(".eseg"))?;
    let (a, b) = stem.split_once('-')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// Is `object` a well-formed segment name under `wal/`?
pub fn is_segment_object(object: &str) -> bool {
    object
        .strip_prefix("wal/")
        .is_some_and(|f| !f.contains('/') && parse_segment(f).is_some())
}

const SEALED_MAGIC: &[u8; 4] = b"RVWE";

#[derive(Serialize, Deserialize)]
struct SealHeader {
    kek: KeyRef,
    /// The segment's data key sealed under the KEK (base64).
    wrapped_dek: String,
}

fn seal_segment(keyring: &Keyring, object: &str, body: &[u8]) -> Result<Vec<u8>> {
    let (kek_ref, kek) = keyring.current();
    let (dek, wrapped_dek) = crypto::new_data_key(kek, object)?;
    let header = serde_json::to_vec(&SealHeader {
        kek: kek_ref,
        wrapped_dek,
    })
    .map_err(|e| Error::internal(e.to_string()))?;
    let mut out = SEALED_MAGIC.to_vec();
    out.extend_from_slice(&(header.len() as u32).to_le_bytes());
    out.extend_from_slice(&header);
    out.extend_from_slice(&crypto::seal(&dek, object.as_bytes(), body)?);
    Ok(out)
}

fn open_segment(keyring: Option<&Keyring>, object: &str, body: &[u8]) -> Result<Vec<u8>> {
    let bad = |why: &str| Error::corruption(format!("WAL segment {object}: {why}"));
    let Some(rest) = body.strip_prefix(SEALED_MAGIC) else {
        return Err(bad("not an encrypted segment"));
    };
    if rest.len() < 4 {
        return Err(bad("truncated"));
    }
    let mut l = [0u8; 4];
    l.copy_from_slice(&rest[..4]);
    let len = u32::from_le_bytes(l) as usize;
    if rest.len() < 4 + len {
        return Err(bad("truncated header"));
    }
    let header: SealHeader =
        serde_json::from_slice(&rest[4..4 + len]).map_err(|e| bad(&format!("header: {e}")))?;
    let Some(keyring) = keyring else {
        return Err(Error::invalid(format!(
            "WAL segment {object} is encrypted (key {:?}); configure [backup] keyring to read it",
            header.kek.id
        )));
    };
    let what = format!("WAL segment {object}");
    let dek = crypto::unwrap_data_key(
        keyring.get(&header.kek)?,
        object,
        &header.wrapped_dek,
        &what,
    )?;
    crypto::open(&dek, object.as_bytes(), &rest[4 + len..], &what)
}

/// A decoded archived batch.
#[derive(Debug, Clone)]
pub struct Archived {
    pub sequence: u64,
    pub count: u32,
    pub commit_ms: i64,
    pub data: Vec<u8>,
}

fn encode(batches: &[WalBatch]) -> Result<Vec<u8>> {
    let mut frames = Vec::new();
    for b in batches {
        frames.extend_from_slice(&b.sequence.to_le_bytes());
        frames.extend_from_slice(&b.commit_ms.unwrap_or(0).to_le_bytes());
        frames.extend_from_slice(&(b.data.len() as u32).to_le_bytes());
        frames.extend_from_slice(&b.data);
    }
    let digest = Sha256::digest(&frames);
    frames.extend_from_slice(&digest);
    zstd::bulk::compress(&frames, 3)
        .map_err(|e| Error::io(format!("compressing a WAL segment: {e}")))
}

/// Decode a stored segment (opened with the keyring if encrypted).
pub fn decode(keyring: Option<&Keyring>, object: &str, body: &[u8]) -> Result<Vec<Archived>> {
    let bad = |why: &str| Error::corruption(format!("WAL segment {object}: {why}"));
    let opened;
    let body = if object.ends_with(".eseg") {
        opened = open_segment(keyring, object, body)?;
        &opened[..]
    } else {
        body
    };
    let frames = zstd::stream::decode_all(body).map_err(|e| bad(&format!("zstd: {e}")))?;
    if frames.len() < 32 {
        return Err(bad("truncated"));
    }
    let (frames, digest) = frames.split_at(frames.len() - 32);
    if Sha256::digest(frames).as_slice() != digest {
        return Err(bad("SHA-256 mismatch"));
    }
    let mut out = Vec::new();
    let mut rest = frames;
    while !rest.is_empty() {
        if rest.len() < 20 {
            return Err(bad("truncated frame header"));
        }
        let u = |b: &[u8]| {
            let mut a = [0u8; 8];
            a.copy_from_slice(b);
            a
        };
        let sequence = u64::from_le_bytes(u(&rest[..8]));
        let commit_ms = i64::from_le_bytes(u(&rest[8..16]));
        let mut l = [0u8; 4];
        l.copy_from_slice(&rest[16..20]);
        let len = u32::from_le_bytes(l) as usize;
        if rest.len() < 20 + len {
            return Err(bad("truncated frame"));
        }
        let data = rest[20..20 + len].to_vec();
        let count = cdc::parse_batch(&data)?.count;
        out.push(Archived {
            sequence,
            count,
            commit_ms,
            data,
        });
        rest = &rest[20 + len..];
    }
    Ok(out)
}

/// The archive of one target.
pub struct Archive<'a> {
    pub target: &'a Target,
    /// Seal new segments under the keyring's current key.
    pub encrypt: bool,
}

/// What one archiving pass did.
#[derive(Debug, Clone, Serialize)]
pub struct PassResult {
    pub from_sequence: u64,
    pub to_sequence: u64,
    pub batches: usize,
    pub bytes: u64,
    pub segment: Option<String>,
    /// SHA-256 of the uploaded object.
    #[serde(skip)]
    pub sha256: Option<String>,
}

fn sha256_hex(b: &[u8]) -> String {
    crate::fs::hex(&Sha256::digest(b))
}

impl<'a> Archive<'a> {
    pub fn new(target: &'a Target) -> Archive<'a> {
        Archive {
            target,
            encrypt: false,
        }
    }
}

impl Archive<'_> {
    /// Every segment, in sequence order.
    pub async fn segments(&self) -> Result<Vec<Segment>> {
        let prefix = self.target.path("wal");
        let base = self.target.prefix_len();
        let metas: Vec<object_store::ObjectMeta> = self
            .target
            .store
            .list(Some(&prefix))
            .try_collect()
            .await
            .map_err(|e| self.target.err("listing WAL segments", e))?;
        let mut out: Vec<Segment> = metas
            .iter()
            .filter_map(|m| {
                let rel = m.location.as_ref()[base..].to_string();
                let (first, last) = parse_segment(m.location.filename()?)?;
                Some(Segment {
                    first,
                    last,
                    object: rel,
                    size: m.size,
                    sha256: None,
                })
            })
            .collect();
        out.sort_by_key(|s| (s.first, s.last));
        Ok(out)
    }

    /// The store history this archive belongs to (None: not recorded).
    pub async fn history(&self) -> Result<Option<String>> {
        match self.target.get_object("wal/HISTORY").await {
            Ok(b) => Ok(Some(String::from_utf8_lossy(&b).trim().to_string())),
            Err(e) if e.kind == crate::error::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub async fn set_history(&self, history: &str) -> Result<()> {
        self.target
            .put_object("wal/HISTORY", Bytes::from(history.to_string()))
            .await
    }

    /// Whether this archive encrypts from now on (`wal/ENCRYPTED`: written
    /// by the first encrypted backup or pass to it, never removed).
    pub async fn is_encrypted(&self) -> Result<bool> {
        match self.target.get_object("wal/ENCRYPTED").await {
            Ok(_) => Ok(true),
            Err(e) if e.kind == crate::error::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    pub async fn mark_encrypted(&self, at: &str) -> Result<()> {
        self.target
            .put_object("wal/ENCRYPTED", Bytes::from(format!("since {at}\n")))
            .await
    }

    /// Where an empty archive starts (`wal/START`), if recorded.
    pub async fn start(&self) -> Result<Option<u64>> {
        match self.target.get_object("wal/START").await {
            Ok(b) => String::from_utf8_lossy(&b)
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| Error::corruption("wal/START does not hold a sequence number")),
            Err(e) if e.kind == crate::error::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub async fn set_start(&self, sequence: u64) -> Result<()> {
        self.target
            .put_object("wal/START", Bytes::from(sequence.to_string()))
            .await
    }

    /// The last archived sequence (None: nothing archived yet).
    pub async fn last_sequence(&self) -> Result<Option<u64>> {
        Ok(self.segments().await?.iter().map(|s| s.last).max())
    }

    /// Ship every committed batch after `after` as one segment.
    pub async fn pass(&self, engine: std::sync::Arc<Engine>, after: u64) -> Result<PassResult> {
        let batches = tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            let mut bytes = 0usize;
            cdc::read_wal(&engine, after, |b| {
                bytes += b.data.len();
                out.push(b);
                // Bounded segments (and memory): a big index upload is
                // archived over several passes.
                Ok(out.len() < MAX_SEGMENT_BATCHES && bytes < MAX_SEGMENT_BYTES)
            })?;
            Ok::<_, Error>(out)
        })
        .await
        .map_err(|e| Error::internal(format!("WAL reader task failed: {e}")))??;
        let Some(last) = batches.last() else {
            return Ok(PassResult {
                from_sequence: after,
                to_sequence: after,
                batches: 0,
                bytes: 0,
                segment: None,
                sha256: None,
            });
        };
        let first = batches[0].sequence;
        if first > after + 1 {
            return Err(Error::not_found(format!(
                "the WAL no longer holds sequence {} (oldest: {first}); the archive has a gap — take a new backup",
                after + 1
            )));
        }
        let end = last.sequence + u64::from(last.count).max(1) - 1;
        let name = segment_name(first.max(after + 1), end, self.encrypt);
        let body = encode(&batches)?;
        let body = match (self.encrypt, self.target.keyring.as_deref()) {
            (false, _) => body,
            (true, Some(k)) => seal_segment(k, &name, &body)?,
            (true, None) => return Err(Error::invalid(
                "encrypting the WAL archive needs a keyring: set [backup] keyring (a 0600 file)",
            )),
        };
        let bytes = body.len() as u64;
        let sha256 = sha256_hex(&body);
        self.target.put_object(&name, Bytes::from(body)).await?;
        Ok(PassResult {
            from_sequence: after + 1,
            to_sequence: end,
            batches: batches.len(),
            bytes,
            segment: Some(name),
            sha256: Some(sha256),
        })
    }

    /// The segments that carry a store from `after` to `upto`, contiguous.
    pub async fn cover(&self, after: u64, upto: u64) -> Result<Vec<Segment>> {
        let mut out = Vec::new();
        let mut next = after + 1;
        for s in self.segments().await? {
            if next > upto {
                break;
            }
            if s.last < next {
                continue;
            }
            if s.first > next {
                return Err(Error::not_found(format!(
                    "the WAL archive in {} has a gap: sequences {next}..{} are missing",
                    self.target.url,
                    s.first - 1
                )));
            }
            next = s.last + 1;
            out.push(s);
        }
        if next <= upto {
            return Err(Error::not_found(format!(
                "the WAL archive in {} reaches only sequence {}; {upto} was asked for",
                self.target.url,
                next - 1
            )));
        }
        Ok(out)
    }

    /// Segments as a backup manifest lists them, each with its SHA-256:
    /// from `known` (object → SHA-256 of what this process uploaded), else
    /// read, decoded (a damaged segment is refused, not vouched for) and
    /// hashed.
    pub async fn vouch(
        &self,
        segments: Vec<Segment>,
        known: &std::collections::HashMap<String, String>,
    ) -> Result<Vec<WalObject>> {
        let mut out = Vec::with_capacity(segments.len());
        for s in segments {
            let sha256 = match known.get(&s.object) {
                Some(h) => h.clone(),
                None => {
                    let body = self.target.get_object(&s.object).await?;
                    decode(self.target.keyring.as_deref(), &s.object, &body)?;
                    sha256_hex(&body)
                }
            };
            out.push(WalObject {
                object: s.object,
                first: s.first,
                last: s.last,
                size: s.size,
                sha256,
            });
        }
        Ok(out)
    }

    /// The archived batches that continue after `after`, in order, checked
    /// for gaps; stops once `stop` says so.
    /// Returns the batches, the last sequence they reach, and whether
    /// `keep` stopped the walk (false: the archive ended first).
    pub async fn batches(
        &self,
        after: u64,
        keep: impl FnMut(&Archived) -> bool,
    ) -> Result<(Vec<Archived>, u64, bool)> {
        let segments = self.segments().await?;
        self.batches_in(&segments, after, keep).await
    }

    /// [`Archive::batches`] over given segments (a backup manifest's, whose
    /// SHA-256s are checked as each is read).
    pub async fn batches_in(
        &self,
        segments: &[Segment],
        after: u64,
        mut keep: impl FnMut(&Archived) -> bool,
    ) -> Result<(Vec<Archived>, u64, bool)> {
        let mut out = Vec::new();
        let mut next = after + 1;
        for s in segments {
            if s.last < next {
                continue;
            }
            if s.first > next {
                return Err(Error::not_found(format!(
                    "the WAL archive has a gap: sequences {next}..{} are missing",
                    s.first - 1
                )));
            }
            let body = self.target.get_object(&s.object).await?;
            if let Some(want) = &s.sha256 {
                let got = sha256_hex(&body);
                if got != *want {
                    return Err(Error::corruption(format!(
                        "WAL segment {}: SHA-256 {got} does not match the manifest's {want}",
                        s.object
                    )));
                }
            }
            for b in decode(self.target.keyring.as_deref(), &s.object, &body)? {
                let end = b.sequence + u64::from(b.count).max(1) - 1;
                if end < next {
                    continue;
                }
                if b.sequence != next {
                    return Err(Error::corruption(format!(
                        "the WAL archive is not contiguous at sequence {next} (found a batch at {})",
                        b.sequence
                    )));
                }
                if !keep(&b) {
                    return Ok((out, next - 1, true));
                }
                next = end + 1;
                out.push(b);
            }
        }
        Ok((out, next - 1, false))
    }
}

/// Apply archived batches to an open store, in order; `done` after each.
pub fn replay(
    db: &rocksdb::DB,
    batches: &[Archived],
    mut done: impl FnMut(&Archived),
) -> Result<()> {
    let mut wo = rocksdb::WriteOptions::default();
    wo.set_sync(false);
    for b in batches {
        if db.latest_sequence_number() + 1 != b.sequence {
            return Err(Error::corruption(format!(
                "replaying batch {} onto a store at sequence {}",
                b.sequence,
                db.latest_sequence_number()
            )));
        }
        db.write_opt(WriteBatch::from_data(&b.data), &wo)?;
        done(b);
    }
    db.flush_wal(true)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One batch putting `k` = `value`.
    fn one_put(sequence: u64, commit_ms: i64, value: &[u8]) -> (WriteBatch, Vec<WalBatch>) {
        let mut wb = WriteBatch::default();
        wb.put(b"k", value);
        let batches = vec![WalBatch {
            sequence,
            count: 1,
            commit_ms: Some(commit_ms),
            data: wb.data().to_vec(),
        }];
        (wb, batches)
    }

    #[test]
    fn segments_round_trip_and_damage_is_detected() {
        let (wb, batches) = one_put(7, 42, b"v");
        let body = encode(&batches).unwrap();
        let back = decode(None, "s", &body).unwrap();
        assert_eq!(
            (back[0].sequence, back[0].commit_ms, back[0].count),
            (7, 42, 1)
        );
        assert_eq!(back[0].data, wb.data());
        let mut frames = zstd::stream::decode_all(&body[..]).unwrap();
        frames[3] ^= 1;
        let bad = zstd::bulk::compress(&frames, 3).unwrap();
        assert!(decode(None, "s", &bad)
            .unwrap_err()
            .message
            .contains("SHA-256"));
        assert_eq!(
            parse_segment("00000000000000000001-00000000000000000009.seg"),
            Some((1, 9))
        );
        assert_eq!(parse_segment("junk"), None);
        assert!(is_segment_object(
            "wal/00000000000000000001-00000000000000000009.eseg"
        ));
        assert!(!is_segment_object("wal/../x-1.seg"));
    }

    #[test]
    fn sealed_segments_need_their_key_and_their_name() {
        let dir = tempfile::tempdir().unwrap();
        let ring = Keyring::load_or_create(&dir.path().join("ring"), "now").unwrap();
        let other = Keyring::load_or_create(&dir.path().join("other"), "now").unwrap();
        let (wb, batches) = one_put(1, 1, b"secret-plaintext-value");
        let name = segment_name(1, 1, true);
        let sealed = seal_segment(&ring, &name, &encode(&batches).unwrap()).unwrap();
        assert!(!sealed
            .windows(b"secret-plaintext-value".len())
            .any(|w| w == b"secret-plaintext-value"));
        let back = decode(Some(&ring), &name, &sealed).unwrap();
        assert_eq!(back[0].data, wb.data());
        // No keyring, another keyring, another name, a flipped byte.
        assert!(decode(None, &name, &sealed)
            .unwrap_err()
            .message
            .contains("keyring"));
        // Another keyring: its key (same id scheme) does not open the data key.
        assert!(decode(Some(&other), &name, &sealed)
            .unwrap_err()
            .message
            .contains("authentication failed"));
        let renamed = segment_name(1, 2, true);
        assert!(decode(Some(&ring), &renamed, &sealed).is_err());
        let mut flipped = sealed.clone();
        let n = flipped.len();
        flipped[n - 20] ^= 1;
        assert!(decode(Some(&ring), &name, &flipped).is_err());
    }
}
