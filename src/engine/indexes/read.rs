//! Reading an index: one RocksDB snapshot for the record and its chunks,
//! so a read sees the old or the new content, never a mix.

use super::{
    check_index_name, chunk_key, chunk_prefix, from_json, meta_key, IndexInfo, MAX_CHUNK_BYTES,
};
use crate::codec::{self, Codec};
use crate::engine::{Cf, Engine};
use crate::error::{Error, Result};

impl Engine {
    /// Up to `length` bytes of `name` from `offset`.
    pub fn index_read(
        &self,
        name: &str,
        offset: u64,
        length: usize,
        expect_sha256: Option<&str>,
    ) -> Result<(IndexInfo, Vec<u8>)> {
        check_index_name(name)?;
        // One snapshot for the record and the chunks: a commit or delete
        // in between cannot mix two contents or remove chunks mid-read.
        let snap = self.db().snapshot();
        let cf = self.cf(Cf::Indexes);
        let info: IndexInfo = match snap.get_pinned_cf(cf, meta_key(name))? {
            Some(b) => from_json(&b, &format!("index {name:?}"))?,
            None => return Err(Error::not_found(format!("no index {name:?}"))),
        };
        if let Some(want) = expect_sha256.filter(|w| !w.eq_ignore_ascii_case(&info.sha256)) {
            return Err(Error::invalid(format!(
                "index {name:?} was replaced while it was being read (its SHA-256 is now {}, \
                 not {want}); read it again from offset 0",
                info.sha256
            )));
        }
        if offset > info.size_bytes {
            return Err(Error::invalid(format!(
                "offset {offset} is past the end of index {name:?} ({} bytes)",
                info.size_bytes
            )));
        }
        let want = length
            .min(MAX_CHUNK_BYTES)
            .min((info.size_bytes - offset) as usize);
        let mut out = Vec::with_capacity(want);
        let prefix = chunk_prefix(&info.blob);
        // The chunk holding `offset` starts at or before it.
        let mut it = snap.raw_iterator_cf(cf);
        it.seek_for_prev(chunk_key(&info.blob, offset));
        while out.len() < want && it.valid() {
            let (Some(k), Some(v)) = (it.key(), it.value()) else {
                break;
            };
            let Some(start) = k
                .strip_prefix(prefix.as_slice())
                .and_then(|o| o.try_into().ok())
                .map(u64::from_be_bytes)
            else {
                break;
            };
            let bytes = codec::expect(v, Codec::Raw).map_err(|e| e.context("index chunk"))?;
            let pos = offset + out.len() as u64;
            if start > pos {
                return Err(Error::corruption(format!(
                    "index {name:?}: no chunk holds offset {pos} (the next starts at {start})"
                )));
            }
            let skip = (pos - start) as usize;
            if skip < bytes.len() {
                let take = (want - out.len()).min(bytes.len() - skip);
                out.extend_from_slice(&bytes[skip..skip + take]);
            }
            it.next();
        }
        it.status()?;
        if out.len() != want {
            return Err(Error::corruption(format!(
                "index {name:?}: expected {want} bytes at offset {offset}, its chunks hold {}",
                out.len()
            )));
        }
        self.counters()
            .read_bytes
            .fetch_add(out.len() as u64, std::sync::atomic::Ordering::Relaxed);
        Ok((info, out))
    }
}
