//! One archiving pass: every committed batch after a sequence (read
//! through the same reader as change data capture), as one segment.

use bytes::Bytes;
use serde::Serialize;

use super::segment::{encode, seal_segment, segment_name, sha256_hex};
use super::Archive;
use crate::cdc;
use crate::engine::Engine;
use crate::error::{Error, Result};

/// At most this many batches, or about this many bytes, per segment.
const MAX_SEGMENT_BATCHES: usize = 100_000;
const MAX_SEGMENT_BYTES: usize = 64 << 20;

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

impl Archive<'_> {
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
        self.set_end(&super::End {
            last: end,
            segment: name.clone(),
        })
        .await?;
        Ok(PassResult {
            from_sequence: after + 1,
            to_sequence: end,
            batches: batches.len(),
            bytes,
            segment: Some(name),
            sha256: Some(sha256),
        })
    }
}
