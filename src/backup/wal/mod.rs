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
//! store archives there), so two histories are never chained. `wal/START`
//! says where an empty archive starts, `wal/END` where it ends (rewritten
//! after each segment, so a lost last segment is noticed), `wal/ENCRYPTED`
//! that it encrypts. Each marker carries the SHA-256 of its value: damage
//! is an error naming it, never a misread value.
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

use super::marker::open as open_marker;
pub use super::marker::seal as seal_marker;
use serde::{Deserialize, Serialize};

use super::Target;
use crate::error::{Error, Result};

/// The marker files of an archive.
pub const HISTORY: &str = "HISTORY";
pub const START: &str = "START";
pub const END: &str = "END";
pub const ENCRYPTED: &str = "ENCRYPTED";

/// `wal/END`: where the archive ends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct End {
    /// The last archived sequence.
    pub last: u64,
    /// The segment that holds it.
    pub segment: String,
}

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

    /// A marker file of the archive (`wal/<name>`): None when absent, an
    /// error naming it when damaged.
    pub async fn marker(&self, name: &str) -> Result<Option<String>> {
        let object = format!("wal/{name}");
        match self.target.get_object(&object).await {
            Ok(b) => open_marker(&object, &b).map(Some),
            Err(e) if e.kind == crate::error::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn set_marker(&self, name: &str, value: &str) -> Result<()> {
        self.target
            .put_object(&format!("wal/{name}"), Bytes::from(seal_marker(value)))
            .await
    }

    /// The store history this archive belongs to (None: not recorded).
    pub async fn history(&self) -> Result<Option<String>> {
        self.marker(HISTORY).await
    }

    pub async fn set_history(&self, history: &str) -> Result<()> {
        self.set_marker(HISTORY, history).await
    }

    /// Whether this archive encrypts from now on (`wal/ENCRYPTED`: written
    /// by the first encrypted backup or pass to it, never removed). A
    /// damaged marker is an error: archiving stops rather than risk
    /// plaintext.
    pub async fn is_encrypted(&self) -> Result<bool> {
        Ok(self.marker(ENCRYPTED).await?.is_some())
    }

    pub async fn mark_encrypted(&self, at: &str) -> Result<()> {
        self.set_marker(ENCRYPTED, &format!("since {at}")).await
    }

    /// Where an empty archive starts (`wal/START`), if recorded.
    pub async fn start(&self) -> Result<Option<u64>> {
        match self.marker(START).await? {
            Some(v) => v
                .parse()
                .map(Some)
                .map_err(|_| Error::corruption("wal/START does not hold a sequence number")),
            None => Ok(None),
        }
    }

    pub async fn set_start(&self, sequence: u64) -> Result<()> {
        self.set_marker(START, &sequence.to_string()).await
    }

    /// Where the archive ends (`wal/END`: the last sequence and the segment
    /// holding it, rewritten after every segment), so a lost last segment
    /// is noticed.
    pub async fn end(&self) -> Result<Option<End>> {
        match self.marker(END).await? {
            Some(v) => serde_json::from_str(&v)
                .map(Some)
                .map_err(|e| Error::corruption(format!("wal/END does not decode: {e}"))),
            None => Ok(None),
        }
    }

    pub async fn set_end(&self, end: &End) -> Result<()> {
        let v = serde_json::to_string(end).map_err(|e| Error::internal(e.to_string()))?;
        self.set_marker(END, &v).await
    }

    /// The last archived sequence (None: nothing archived yet).
    pub async fn last_sequence(&self) -> Result<Option<u64>> {
        Ok(self.segments().await?.iter().map(|s| s.last).max())
    }
}

#[cfg(test)]
mod tests;
