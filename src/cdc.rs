//! Change data capture: the committed write batches of RocksDB's WAL,
//! decoded into change events with sequence numbers and commit times.
//!
//! Every batch the engine writes carries a *commit mark* as WAL log data
//! (not applied to the store): the commit time and, per record, whether the
//! key existed before (so a put is an `insert` or an `update`). The WAL is
//! kept after flushes for `[cdc] wal-retention-secs` / `wal-retention-mb`
//! (RocksDB moves obsolete WAL files to `db/archive/`), so a subscriber can
//! resume from any sequence inside that window, also across restarts.
//!
//! Sequence numbers are RocksDB's: each record of a batch consumes one, in
//! order, and they never repeat within a store. A restore from a snapshot
//! starts a new history; subscribers are told to resubscribe.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::bus::namespace_matches;
use crate::clock::iso_ms;
use crate::codec;
pub use crate::engine::batch::{parse_batch, Mark, ParsedBatch, Record};
use crate::engine::{Cf, Engine};
use crate::error::{Error, Result};

/// What a change did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeOp {
    Insert,
    Update,
    Delete,
}

/// One change, as streamed to subscribers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeEvent {
    pub sequence: u64,
    /// Commit time (ISO-8601, UTC).
    pub timestamp: String,
    pub op: ChangeOp,
    /// `kv`, `vector`, `metadata`, `memory` or `collection`.
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub namespace: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub collection: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub value: Option<Value>,
}

/// Which changes a subscriber wants. Empty everywhere: all of them.
/// Otherwise a change passes if it matches one of the lists given for its
/// kind (kv keys by `prefixes`, memory entries by `namespaces` — exact, or
/// a prefix ending in `/` or `*` — vectors and metadata by `collections`).
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Filter {
    #[serde(default)]
    pub prefixes: Vec<String>,
    #[serde(default)]
    pub namespaces: Vec<String>,
    #[serde(default)]
    pub collections: Vec<String>,
}

impl Filter {
    pub fn is_empty(&self) -> bool {
        self.prefixes.is_empty() && self.namespaces.is_empty() && self.collections.is_empty()
    }

    pub fn matches(&self, e: &ChangeEvent) -> bool {
        if self.is_empty() {
            return true;
        }
        match e.kind.as_str() {
            "kv" => e
                .key
                .as_deref()
                .is_some_and(|k| self.prefixes.iter().any(|p| k.starts_with(p.as_str()))),
            "memory" => e
                .namespace
                .as_deref()
                .is_some_and(|ns| self.namespaces.iter().any(|p| namespace_matches(p, ns))),
            _ => e
                .collection
                .as_deref()
                .is_some_and(|c| self.collections.iter().any(|x| x == c)),
        }
    }
}

fn split_group(key: &[u8]) -> Option<(String, String)> {
    let at = key.iter().position(|b| *b == 0)?;
    Some((
        String::from_utf8_lossy(&key[..at]).into_owned(),
        String::from_utf8_lossy(&key[at + 1..]).into_owned(),
    ))
}

fn memory_value(bytes: &[u8]) -> Option<Value> {
    let (_, body) = codec::decode_memory(bytes).ok()?;
    let body: crate::bus::EntryBody = serde_json::from_slice(body).ok()?;
    let value = if body.structured {
        serde_json::from_str(&body.value).unwrap_or(Value::String(body.value))
    } else {
        Value::String(body.value)
    };
    Some(serde_json::json!({"value": value, "tags": body.tags, "ttl": body.ttl}))
}

/// Turn one sequenced record into an event (None: internal bookkeeping).
fn event(
    engine: &Engine,
    sequence: u64,
    timestamp: &str,
    existed: bool,
    r: &Record,
) -> Option<ChangeEvent> {
    let (cf, key, value, op) = match r {
        Record::Put { cf, key, value } => (
            *cf,
            *key,
            Some(*value),
            if existed {
                ChangeOp::Update
            } else {
                ChangeOp::Insert
            },
        ),
        Record::Delete { cf, key } => (*cf, *key, None, ChangeOp::Delete),
        // Merges only touch the `sys` counters; range deletes are not issued.
        _ => return None,
    };
    let mut e = ChangeEvent {
        sequence,
        timestamp: timestamp.to_string(),
        op,
        kind: String::new(),
        key: None,
        namespace: None,
        collection: None,
        id: None,
        value: None,
    };
    match engine.cf_of(cf)? {
        Cf::Kv => {
            e.kind = "kv".into();
            e.key = Some(String::from_utf8_lossy(key).into_owned());
            e.value = value
                .and_then(|v| codec::expect(v, codec::Codec::Raw).ok())
                .map(|v| Value::String(String::from_utf8_lossy(v).into_owned()));
        }
        Cf::Vectors => {
            // (A dedup collection's stored vectors, `collection \x01 <hash>`,
            // have no NUL and no event: their ids' references have.)
            let (c, id) = split_group(key)?;
            e.kind = "vector".into();
            e.collection = Some(c);
            e.id = Some(id);
            e.value = value.map(|v| match codec::decode(v) {
                Ok((codec::Codec::Quantized, code)) => {
                    serde_json::json!({"quantized": true, "code_bytes": code.len().saturating_sub(1)})
                }
                Ok((codec::Codec::VectorRef, hash)) => {
                    serde_json::json!({"dedup": true, "content": crate::fs::hex(hash)})
                }
                _ => serde_json::json!({"dimension": v.len().saturating_sub(1) / 4}),
            });
        }
        Cf::Metadata => {
            let (c, id) = split_group(key)?;
            e.kind = "metadata".into();
            e.collection = Some(c);
            e.id = Some(id);
            e.value = value
                .and_then(|v| codec::expect(v, codec::Codec::Json).ok())
                .and_then(|v| serde_json::from_slice(v).ok());
        }
        Cf::Memory => {
            let (ns, k) = split_group(key)?;
            e.kind = "memory".into();
            e.namespace = Some(ns);
            e.key = Some(k);
            e.value = value.and_then(memory_value);
        }
        // The vector's own event says it changed; its kept f32 is a copy.
        Cf::Originals => return None,
        // The daemon's own metrics history, not the users' data.
        Cf::Series => return None,
        Cf::Indexes => {
            // Only the index record: chunks and uploads are its content.
            let name = key.strip_prefix(b"m\0")?;
            e.kind = "index".into();
            e.key = Some(String::from_utf8_lossy(name).into_owned());
            e.value = value
                .and_then(|v| codec::expect(v, codec::Codec::Json).ok())
                .and_then(|v| serde_json::from_slice::<Value>(v).ok())
                .map(|mut v| {
                    if let Some(o) = v.as_object_mut() {
                        o.remove("blob");
                    }
                    v
                });
        }
        Cf::Sys => {
            let name = key.strip_prefix(b"collection/")?;
            e.kind = "collection".into();
            e.collection = Some(String::from_utf8_lossy(name).into_owned());
            e.value = value
                .and_then(|v| codec::expect(v, codec::Codec::Json).ok())
                .and_then(|v| serde_json::from_slice(v).ok());
        }
    }
    Some(e)
}

/// A committed batch read back from the WAL.
pub struct WalBatch {
    pub sequence: u64,
    pub count: u32,
    pub commit_ms: Option<i64>,
    /// The batch's bytes, exactly as RocksDB logged them.
    pub data: Vec<u8>,
}

/// Read the committed batches after sequence `after`, in order, up to the
/// store's latest sequence, calling `visit` for each until it returns false.
/// A batch that straddles `after` is included (callers skip its records at
/// or below `after`). Returns the last sequence read.
///
/// Fails if the WAL no longer holds `after + 1` (retention passed it) or
/// if it has a gap.
pub fn read_wal(
    engine: &Engine,
    after: u64,
    mut visit: impl FnMut(WalBatch) -> Result<bool>,
) -> Result<u64> {
    let db = engine.db();
    let latest = db.latest_sequence_number();
    if after > latest {
        return Err(Error::invalid(format!(
            "sequence {after} is ahead of the store's latest sequence {latest} \
             (was the store restored from an older snapshot or backup? resubscribe from {latest})"
        )));
    }
    if after == latest {
        return Ok(after);
    }
    let want = after + 1;
    // `get_updates_since(s)` yields batches that start after `s`: back off
    // until the first one starts at or before `want`.
    let mut back: u64 = 0;
    let (first, rest) = loop {
        let start = after.saturating_sub(back);
        let mut iter = db.get_updates_since(start)?;
        // None: the batch holding `want` starts at or before `start`.
        let first = iter.next().transpose()?;
        match first {
            Some(first) if first.0 <= want => break (first, iter),
            _ if start > 0 => {}
            Some(first) => {
                return Err(Error::not_found(format!(
                    "sequence {want} is no longer in the retained WAL (oldest retained: {}); \
                     raise [cdc] wal-retention-secs/-mb or resync from a snapshot",
                    first.0
                )))
            }
            None => {
                return Err(Error::not_found(format!(
                    "the WAL holds no batch up to sequence {latest}; \
                     raise [cdc] wal-retention-secs/-mb or resync from a snapshot"
                )))
            }
        }
        back = if back == 0 { 1 } else { back.saturating_mul(2) };
    };
    let mut last = after;
    let mut expected: Option<u64> = None;
    for item in std::iter::once(Ok(first)).chain(rest) {
        let (seq, batch) = item?;
        if seq > latest {
            break;
        }
        let parsed = parse_batch(batch.data())?;
        if let Some(exp) = expected {
            if seq != exp {
                return Err(Error::corruption(format!(
                    "the WAL has a gap: expected a batch at sequence {exp}, found {seq}"
                )));
            }
        }
        expected = Some(seq + u64::from(parsed.count));
        let end = seq + u64::from(parsed.count).max(1) - 1;
        if end <= after {
            continue;
        }
        let commit_ms = parsed.records.iter().find_map(|r| match r {
            Record::LogData(b) => Mark::decode(b).map(|m| m.commit_ms),
            _ => None,
        });
        let count = parsed.count;
        last = end;
        if !visit(WalBatch {
            sequence: seq,
            count,
            commit_ms,
            data: batch.data().to_vec(),
        })? {
            break;
        }
    }
    Ok(last)
}

/// Decode the change events of one WAL batch with sequence > `after`.
pub fn events_of(
    engine: &Engine,
    b: &WalBatch,
    after: u64,
    filter: &Filter,
    out: &mut Vec<ChangeEvent>,
) -> Result<()> {
    let parsed = parse_batch(&b.data)?;
    let mark = parsed.records.iter().find_map(|r| match r {
        Record::LogData(blob) => Mark::decode(blob),
        _ => None,
    });
    let ts = iso_ms(mark.as_ref().map(|m| m.commit_ms).unwrap_or(0));
    for (i, r) in parsed.records.iter().filter(|r| r.sequenced()).enumerate() {
        let seq = b.sequence + i as u64;
        if seq <= after {
            continue;
        }
        let existed = mark.as_ref().is_some_and(|m| m.existed(i));
        if let Some(e) = event(engine, seq, &ts, existed, r) {
            if filter.matches(&e) {
                out.push(e);
            }
        }
    }
    Ok(())
}

/// A page of changes.
#[derive(Debug, Serialize)]
pub struct Page {
    pub events: Vec<ChangeEvent>,
    /// Resume from here (every change up to it was examined).
    pub next_sequence: u64,
    pub latest_sequence: u64,
}

/// Changes after `after`, stopping once `limit` events are collected (a
/// batch is never split).
pub fn read_changes(engine: &Engine, after: u64, limit: usize, filter: &Filter) -> Result<Page> {
    let mut events = Vec::new();
    let next = read_wal(engine, after, |b| {
        events_of(engine, &b, after, filter, &mut events)?;
        Ok(events.len() < limit)
    })?;
    Ok(Page {
        events,
        next_sequence: next,
        latest_sequence: engine.db().latest_sequence_number(),
    })
}

#[cfg(test)]
mod tests;
