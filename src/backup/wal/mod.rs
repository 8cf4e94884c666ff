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
//!
//! | file | what |
//! |---|---|
//! | `segment.rs` | the segment format: names, frames, sealing |
//! | `ship.rs` | one archiving pass: the batches after a sequence, as one segment |
//! | `read.rs` | reading it back: the segments covering a range, their batches, replay |

mod read;
mod segment;
mod ship;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::ObjectStore;

pub use read::replay;
pub use segment::{decode, is_segment_object, Archived, Segment, WalObject};
pub use ship::PassResult;

use segment::parse_segment;

use super::Target;
use crate::error::{Error, Result};

/// The archive of one target.
pub struct Archive<'a> {
    pub target: &'a Target,
    /// Seal new segments under the keyring's current key.
    pub encrypt: bool,
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
}

#[cfg(test)]
mod tests;
