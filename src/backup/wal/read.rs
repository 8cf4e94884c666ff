//! Reading the archive back: the segments that carry a store across a
//! range (checked contiguous), vouching for them in a manifest, their
//! batches in order, and replaying those onto a store.

use rocksdb::WriteBatch;

use super::segment::{decode, sha256_hex, Archived, Segment, WalObject};
use super::Archive;
use crate::error::{Error, Result};

impl Archive<'_> {
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
