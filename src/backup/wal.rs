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
//! A point-in-time restore takes the newest backup at or before the target
//! and replays the archived batches after its sequence, in order, up to the
//! target sequence or the last batch committed at or before the target time.

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::ObjectStore;
use rocksdb::WriteBatch;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::Target;
use crate::cdc::{self, WalBatch};
use crate::engine::Engine;
use crate::error::{Error, Result};

/// One archived segment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Segment {
    pub first: u64,
    pub last: u64,
    pub object: String,
}

fn segment_name(first: u64, last: u64) -> String {
    format!("wal/{first:020}-{last:020}.seg")
}

fn parse_segment(name: &str) -> Option<(u64, u64)> {
    let stem = name.strip_suffix(".seg")?;
    let (a, b) = stem.split_once('-')?;
    Some((a.parse().ok()?, b.parse().ok()?))
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

fn decode(object: &str, body: &[u8]) -> Result<Vec<Archived>> {
    let bad = |why: &str| Error::corruption(format!("WAL segment {object}: {why}"));
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
}

/// What one archiving pass did.
#[derive(Debug, Clone, Serialize)]
pub struct PassResult {
    pub from_sequence: u64,
    pub to_sequence: u64,
    pub batches: usize,
    pub bytes: u64,
    pub segment: Option<String>,
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
                })
            })
            .collect();
        out.sort_by_key(|s| s.first);
        Ok(out)
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
        Ok(self.segments().await?.last().map(|s| s.last))
    }

    /// Ship every committed batch after `after` as one segment.
    pub async fn pass(&self, engine: std::sync::Arc<Engine>, after: u64) -> Result<PassResult> {
        let batches = tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            cdc::read_wal(&engine, after, |b| {
                out.push(b);
                Ok(out.len() < 100_000)
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
        let body = encode(&batches)?;
        let name = segment_name(first.max(after + 1), end);
        let bytes = body.len() as u64;
        self.target.put_object(&name, Bytes::from(body)).await?;
        Ok(PassResult {
            from_sequence: after + 1,
            to_sequence: end,
            batches: batches.len(),
            bytes,
            segment: Some(name),
        })
    }

    /// The archived batches that continue after `after`, in order, checked
    /// for gaps; stops once `stop` says so.
    /// Returns the batches, the last sequence they reach, and whether
    /// `keep` stopped the walk (false: the archive ended first).
    pub async fn batches(
        &self,
        after: u64,
        mut keep: impl FnMut(&Archived) -> bool,
    ) -> Result<(Vec<Archived>, u64, bool)> {
        let mut out = Vec::new();
        let mut next = after + 1;
        for s in self.segments().await? {
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
            for b in decode(&s.object, &body)? {
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

/// Apply archived batches to an open store, in order.
pub fn replay(db: &rocksdb::DB, batches: &[Archived]) -> Result<()> {
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
    }
    db.flush_wal(true)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_round_trip_and_damage_is_detected() {
        let mut wb = WriteBatch::default();
        wb.put(b"k", b"v");
        let batches = vec![WalBatch {
            sequence: 7,
            count: 1,
            commit_ms: Some(42),
            data: wb.data().to_vec(),
        }];
        let body = encode(&batches).unwrap();
        let back = decode("s", &body).unwrap();
        assert_eq!(
            (back[0].sequence, back[0].commit_ms, back[0].count),
            (7, 42, 1)
        );
        assert_eq!(back[0].data, wb.data());
        let mut frames = zstd::stream::decode_all(&body[..]).unwrap();
        frames[3] ^= 1;
        let bad = zstd::bulk::compress(&frames, 3).unwrap();
        assert!(decode("s", &bad).unwrap_err().message.contains("SHA-256"));
        assert_eq!(
            parse_segment("00000000000000000001-00000000000000000009.seg"),
            Some((1, 9))
        );
        assert_eq!(parse_segment("junk"), None);
    }
}
