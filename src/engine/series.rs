//! The `series` family: the daemon's own metrics history, one chunk per
//! hour (at most [`CHUNK_MAX_POINTS`] points) under `m\0 <first point's
//! ms, u64 BE>`, encoded by [`crate::series`].
//!
//! A chunk is begun with a put of its header and first point; every later
//! point is a merge whose operand is only that point's bytes (the family's
//! merge operator concatenates), so a tick writes a few bytes, not the
//! chunk. The writer of the open chunk is kept here; after a restart it is
//! decoded from the last chunk, which the next point then continues. A
//! point is acknowledged once RocksDB has it in the WAL (no fsync: a
//! process kill loses nothing written, a machine crash at most the last
//! ticks). Retention deletes whole chunks once all their points are older
//! than the retention: a plan (the chunks), then its deletes.

use std::sync::Mutex;

use rocksdb::{MergeOperands, WriteBatch};

use super::{Cf, Engine};
use crate::error::{Error, Result};
use crate::series::{self, Column, Point, Writer};

/// Key prefix of the metrics chunks.
pub const CHUNK_PREFIX: &[u8] = b"m\0";
/// A chunk holds the points of at most this span after its first.
pub const CHUNK_SPAN_MS: i64 = 3_600_000;
/// ... and at most this many points.
pub const CHUNK_MAX_POINTS: u32 = 4096;

/// The key of the chunk whose first point is at `start_ms`.
pub fn chunk_key(start_ms: i64) -> Vec<u8> {
    let mut k = CHUNK_PREFIX.to_vec();
    k.extend_from_slice(&(start_ms.max(0) as u64).to_be_bytes());
    k
}

/// The start of a chunk from its key (None: not a chunk key).
pub fn chunk_start(key: &[u8]) -> Option<i64> {
    let b: [u8; 8] = key.strip_prefix(CHUNK_PREFIX)?.try_into().ok()?;
    i64::try_from(u64::from_be_bytes(b)).ok()
}

/// The merge operator of the family: a chunk and the points appended to
/// it, concatenated.
pub(super) fn concat_merge(
    _key: &[u8],
    existing: Option<&[u8]>,
    ops: &MergeOperands,
) -> Option<Vec<u8>> {
    let mut out = existing.map(<[u8]>::to_vec).unwrap_or_default();
    for op in ops {
        out.extend_from_slice(op);
    }
    Some(out)
}

/// A chunk's key and the writer of its end.
type OpenChunk = (Vec<u8>, Writer);

/// The open chunk: its key and writer.
#[derive(Debug, Default)]
pub(super) struct Open {
    /// Read from the store yet (after open, the last chunk is decoded once).
    loaded: bool,
    chunk: Option<OpenChunk>,
    /// A new chunk's key is at least this (after every stored chunk).
    after_ms: i64,
}

/// The writer state of the series, kept by the engine.
pub(super) type SeriesState = Mutex<Open>;

/// One stored chunk, decoded.
#[derive(Debug, Clone)]
pub struct SeriesChunk {
    pub start_ms: i64,
    /// Its stored value's size.
    pub encoded_bytes: usize,
    pub chunk: series::Chunk,
}

/// A chunk that does not decode.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BadChunk {
    pub start_ms: i64,
    pub problem: String,
}

/// What a read found.
#[derive(Debug, Clone, Default)]
pub struct SeriesRead {
    pub chunks: Vec<SeriesChunk>,
    pub bad: Vec<BadChunk>,
}

/// Retention's plan: the chunks to delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionPlan {
    /// Points at or after this stay.
    pub cutoff_ms: i64,
    /// Starts of the chunks whose every point is older.
    pub delete: Vec<i64>,
}

impl Engine {
    /// Append one point of the metrics history: to the open chunk, or as
    /// a new chunk (the hour is over, the chunk full, the columns changed,
    /// or time went back), applying retention when a chunk begins.
    pub fn series_append(&self, columns: &[Column], p: &Point) -> Result<()> {
        let mut open = self
            .series
            .lock()
            .map_err(|_| Error::internal("the series writer lock is poisoned"))?;
        if !open.loaded {
            (open.after_ms, open.chunk) = self.series_resume(columns)?;
            open.loaded = true;
        }
        let cf = self.cf(Cf::Series);
        let mut batch = WriteBatch::default();
        let next = match &open.chunk {
            Some((key, w))
                if p.at_ms >= w.last_ms()
                    && p.at_ms < w.start_ms().saturating_add(CHUNK_SPAN_MS)
                    && w.points() < CHUNK_MAX_POINTS =>
            {
                let mut w = w.clone();
                batch.merge_cf(cf, key, w.push(p)?);
                (key.clone(), w)
            }
            _ => {
                // Keys stay unique and ordered even if the clock went back.
                let (w, bytes) = Writer::start(columns, p)?;
                let key = chunk_key(p.at_ms.max(open.after_ms));
                batch.put_cf(cf, &key, bytes);
                (key, w)
            }
        };
        let begun = next.1.points() == 1;
        if let Err(e) = self.write_relaxed(batch) {
            // Read the chunk back before the next point.
            open.loaded = false;
            return Err(e.context("appending to the metrics history"));
        }
        let start = chunk_start(&next.0).unwrap_or(next.1.start_ms());
        open.after_ms = start.max(next.1.last_ms()).saturating_add(1);
        open.chunk = Some(next);
        if begun {
            let plan = self.series_retention_plan(self.clock.now_ms())?;
            self.series_apply(&plan, &mut open)?;
        }
        Ok(())
    }

    /// After the last chunk: the least start of a new chunk, and the
    /// chunk's key and writer when the next point can continue it (it
    /// decodes, with the same columns).
    fn series_resume(&self, columns: &[Column]) -> Result<(i64, Option<OpenChunk>)> {
        let mut it = self.db.raw_iterator_cf(self.cf(Cf::Series));
        it.seek_for_prev(chunk_key(i64::MAX));
        let last = match (it.key(), it.value()) {
            (Some(k), Some(v)) if k.starts_with(CHUNK_PREFIX) => Some((k.to_vec(), v.to_vec())),
            _ => None,
        };
        it.status()?;
        let Some((key, value)) = last else {
            return Ok((i64::MIN, None));
        };
        let start = chunk_start(&key).unwrap_or(0);
        match series::decode(&value) {
            Ok(c) => {
                let after = start.max(c.writer.last_ms()).saturating_add(1);
                Ok((after, c.has_columns(columns).then_some((key, c.writer))))
            }
            Err(e) => {
                tracing::warn!(
                    "the last metrics history chunk does not decode ({e}); a new one begins"
                );
                Ok((start.saturating_add(1), None))
            }
        }
    }

    /// Every chunk that may hold points at or after `from_ms`, decoded,
    /// in key order; chunks that do not decode are listed apart.
    pub fn series_read(&self, from_ms: i64) -> Result<SeriesRead> {
        let mut out = SeriesRead::default();
        let mut it = self.db.raw_iterator_cf(self.cf(Cf::Series));
        it.seek(chunk_key(from_ms.saturating_sub(CHUNK_SPAN_MS - 1)));
        while let (Some(k), Some(v)) = (it.key(), it.value()) {
            let Some(start_ms) = chunk_start(k) else {
                break;
            };
            match series::decode(v) {
                Ok(chunk) => out.chunks.push(SeriesChunk {
                    start_ms,
                    encoded_bytes: v.len(),
                    chunk,
                }),
                Err(e) => out.bad.push(BadChunk {
                    start_ms,
                    problem: e.message,
                }),
            }
            it.next();
        }
        it.status()?;
        Ok(out)
    }

    /// How long the metrics history is kept, ms.
    pub fn series_retention_ms(&self) -> i64 {
        self.series_retention_ms
    }

    /// The chunks retention would delete at `now_ms`: those that cannot
    /// hold a point at or after `now_ms - retention`.
    pub fn series_retention_plan(&self, now_ms: i64) -> Result<RetentionPlan> {
        let cutoff_ms = now_ms.saturating_sub(self.series_retention_ms);
        let mut delete = Vec::new();
        let mut it = self.db.raw_iterator_cf(self.cf(Cf::Series));
        it.seek(CHUNK_PREFIX);
        while let Some(k) = it.key() {
            match chunk_start(k) {
                Some(s) if s.saturating_add(CHUNK_SPAN_MS) <= cutoff_ms => delete.push(s),
                _ => break,
            }
            it.next();
        }
        it.status()?;
        Ok(RetentionPlan { cutoff_ms, delete })
    }

    /// Delete the chunks of a plan; returns how many.
    pub fn series_retain(&self, plan: &RetentionPlan) -> Result<usize> {
        let mut open = self
            .series
            .lock()
            .map_err(|_| Error::internal("the series writer lock is poisoned"))?;
        self.series_apply(plan, &mut open)
    }

    fn series_apply(&self, plan: &RetentionPlan, open: &mut Open) -> Result<usize> {
        if plan.delete.is_empty() {
            return Ok(0);
        }
        let cf = self.cf(Cf::Series);
        let mut batch = WriteBatch::default();
        for s in &plan.delete {
            let key = chunk_key(*s);
            // A merge onto a deleted chunk would make a headless one.
            if open.chunk.as_ref().is_some_and(|(k, _)| *k == key) {
                open.chunk = None;
            }
            batch.delete_cf(cf, key);
        }
        self.write_relaxed(batch)
            .map_err(|e| e.context("deleting expired metrics history"))?;
        Ok(plan.delete.len())
    }
}

#[cfg(test)]
mod tests;
