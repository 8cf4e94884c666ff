//! The integrity check of the live store (`check`, `check --verify-integrity`).
//!
//! It reads from one RocksDB snapshot, so the store keeps serving while it
//! runs and the report describes one consistent state:
//!
//! - quick (`deep = false`): the schema version and history id, every
//!   collection descriptor, every memory access counter against its entry,
//!   every index record;
//! - deep (`--verify-integrity`): in addition RocksDB's `VerifyChecksum`
//!   reads every block of every live SST file (data, index, filter, meta),
//!   every key of every column family is read with block checksums verified, every value's codec byte must be known and its length
//!   valid for its column family (a vector's length matches its
//!   collection's dimension, metadata and memory bodies parse), and every
//!   index's bytes are re-hashed against its SHA-256.
//!
//! Problems are collected, not fatal: the report names each (column family,
//! key, what is wrong) and `ok` is false if there is any.

use std::collections::HashMap;
use std::time::Instant;

use rocksdb::ReadOptions;
use sha2::{Digest, Sha256};

use crate::backup::progress::Progress;
use crate::bus::EntryBody;
use crate::clock::iso_ms;
use crate::codec::{self, Codec};
use crate::engine::{Cf, Engine};
use crate::error::{Error, ErrorKind, Result};
pub use crate::status::{CfReport, IntegrityReport as Report, Problem};

/// Problems listed in full; beyond this only counted.
const MAX_LISTED: usize = 100;

struct Findings {
    problems: Vec<Problem>,
    total: u64,
}

impl Findings {
    fn add(&mut self, cf: Cf, key: &[u8], problem: impl Into<String>) {
        self.add_in(cf.name(), key, problem)
    }

    /// A problem not of one column family (`files`: the SST files).
    fn add_in(&mut self, where_: &str, key: &[u8], problem: impl Into<String>) {
        self.total += 1;
        if self.problems.len() < MAX_LISTED {
            self.problems.push(Problem {
                column_family: where_.to_string(),
                key: printable(key),
                problem: problem.into(),
            });
        }
    }
}

/// A key as text: UTF-8 as is (NUL as `\0`), other bytes as `\xNN`.
fn printable(key: &[u8]) -> String {
    let mut out = String::new();
    for chunk in key.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\0' => out.push_str("\\0"),
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
        if out.len() > 200 {
            out.truncate(200);
            out.push('…');
            break;
        }
    }
    out
}

/// Check the store. `cancelled` is polled every few thousand keys; a
/// cancelled check returns a `Cancelled` error.
pub fn check(
    engine: &Engine,
    deep: bool,
    progress: &Progress,
    cancelled: &dyn Fn() -> bool,
    now_ms: i64,
) -> Result<Report> {
    let started = Instant::now();
    let db = engine.db();
    let snapshot = db.snapshot();
    let sequence = db.latest_sequence_number();
    let stats = engine.stats();
    let total_bytes: u64 = stats
        .column_families
        .iter()
        .map(|c| c.sst_bytes + c.memtable_bytes)
        .sum();
    progress.phase(
        if deep {
            "reading every block"
        } else {
            "checking records"
        },
        Cf::ALL.len() as u64,
        total_bytes,
    );
    let mut found = Findings {
        problems: Vec::new(),
        total: 0,
    };
    if deep {
        // Every block of every live SST file, also those a scan never
        // reads (filters, unused index partitions, meta blocks).
        if let Err(e) = engine.verify_checksums() {
            found.add_in("files", b"", format!("SST checksums: {}", e.message));
        }
    }
    // Collections first: vectors are checked against their dimension.
    let mut dims: Shapes = Shapes::default();
    let mut reports = Vec::new();
    let mut access_counters = 0u64;
    let mut orphans = 0u64;
    // `sys` first: its collection descriptors give the vectors' dimensions.
    let order = std::iter::once(Cf::Sys).chain(Cf::ALL.into_iter().filter(|c| *c != Cf::Sys));
    for cf in order {
        let mut rep = CfReport {
            name: cf.name().to_string(),
            ..Default::default()
        };
        let mut ro = ReadOptions::default();
        ro.set_verify_checksums(true);
        ro.fill_cache(false);
        ro.set_snapshot(&snapshot);
        let mut it = db.raw_iterator_cf_opt(engine.cf(cf), ro);
        it.seek_to_first();
        let before = found.total;
        let mut unreported = 0u64;
        while it.valid() {
            let (Some(k), Some(v)) = (it.key(), it.value()) else {
                break;
            };
            rep.keys += 1;
            rep.bytes += (k.len() + v.len()) as u64;
            unreported += (k.len() + v.len()) as u64;
            if rep.keys.is_multiple_of(4096) {
                if cancelled() {
                    return Err(Error::cancelled("the integrity check was cancelled"));
                }
                progress.add_bytes(std::mem::take(&mut unreported));
            }
            match cf {
                Cf::Sys => {
                    check_sys(k, v, &mut dims, &mut found);
                    if k.starts_with(ACCESS_PREFIX) {
                        access_counters += 1;
                        if !entry_exists(engine, &snapshot, &k[ACCESS_PREFIX.len()..])? {
                            orphans += 1;
                        }
                    }
                }
                _ if !deep => {
                    // Quick: only the records above; stop reading this family.
                    rep.keys = 0;
                    rep.bytes = 0;
                    break;
                }
                Cf::Kv => {
                    if let Err(e) = codec::expect(v, Codec::Raw) {
                        found.add(cf, k, e.message);
                    }
                }
                Cf::Vectors => check_vector(k, v, &mut dims, &mut found),
                Cf::Originals => {
                    if let Err(e) = codec::expect(v, Codec::F32Le) {
                        found.add(cf, k, e.message);
                    }
                }
                Cf::Metadata => match codec::expect(v, Codec::Json).and_then(|p| {
                    serde_json::from_slice::<serde_json::Value>(p)
                        .map_err(|e| Error::corruption(e.to_string()))
                }) {
                    Ok(serde_json::Value::Object(_)) => {}
                    Ok(other) => {
                        found.add(cf, k, format!("metadata is not a JSON object: {other}"))
                    }
                    Err(e) => found.add(cf, k, format!("metadata does not decode: {}", e.message)),
                },
                Cf::Memory => match codec::decode_memory(v).and_then(|(_, body)| {
                    serde_json::from_slice::<EntryBody>(body)
                        .map_err(|e| Error::corruption(e.to_string()))
                }) {
                    Ok(_) => {}
                    Err(e) => found.add(
                        cf,
                        k,
                        format!("memory entry does not decode: {}", e.message),
                    ),
                },
                Cf::Indexes => {
                    if let Err(e) = codec::decode(v) {
                        found.add(cf, k, e.message);
                    }
                }
                Cf::Series => {
                    if let Err(e) = crate::series::decode(v) {
                        found.add(cf, k, e.message);
                    }
                }
            }
            it.next();
        }
        if let Err(e) = it.status() {
            // A block that fails its checksum stops the iterator here.
            found.add(cf, b"", format!("reading stopped: {e}"));
        }
        if cf == Cf::Vectors && deep {
            dims.dedup.settle(&mut found);
        }
        rep.problems = found.total - before;
        progress.advance(unreported);
        reports.push(rep);
    }
    let indexes = engine.index_list().map(|(list, _)| list);
    let mut indexes_checked = 0;
    match indexes {
        Err(e) => found.add(
            Cf::Indexes,
            b"",
            format!("index records do not read: {}", e.message),
        ),
        Ok(list) if deep => {
            for info in list {
                if cancelled() {
                    return Err(Error::cancelled("the integrity check was cancelled"));
                }
                indexes_checked += 1;
                match rehash(engine, &info.name, info.size_bytes, &info.sha256) {
                    Ok(()) => {}
                    // Replaced or deleted since the snapshot: not damage.
                    Err(e) if e.kind != ErrorKind::Corruption => {}
                    Err(e) => found.add(Cf::Indexes, info.name.as_bytes(), e.message),
                }
            }
        }
        Ok(list) => indexes_checked = list.len(),
    }
    let secs = started.elapsed().as_secs_f64();
    let read: u64 = reports.iter().map(|r| r.bytes).sum();
    Ok(Report {
        ok: found.total == 0,
        deep,
        sequence,
        column_families: reports,
        problems_total: found.total,
        problems: found.problems,
        collections: dims.dims.len(),
        indexes_checked,
        access_counters,
        orphan_access_counters: orphans,
        seconds: secs,
        mb_per_s: read as f64 / 1e6 / secs.max(1e-9),
        checked_at: iso_ms(now_ms),
    })
}

const ACCESS_PREFIX: &[u8] = b"ctr/access/";
const COLLECTION_PREFIX: &[u8] = b"collection/";

/// `sys` holds the schema version (u32), the history id (hex), collection
/// descriptors (JSON) and counters (i64, merged).
/// What `sys` says vectors look like: each collection's dimension, and the
/// code length of each calibration record (`quant/<collection>/<gen>`).
#[derive(Default)]
struct Shapes {
    dims: HashMap<String, usize>,
    codes: HashMap<(String, u8), usize>,
    /// Dedup collections' references, contents and counts.
    dedup: dedup::Tally,
}

fn check_sys(k: &[u8], v: &[u8], shapes: &mut Shapes, found: &mut Findings) {
    let dims = &mut shapes.dims;
    if k == b"schema_version" {
        if v.len() != 4 {
            found.add(
                Cf::Sys,
                k,
                format!("schema version is {} bytes, not 4", v.len()),
            );
        }
    } else if k == b"history_id" {
        if v.is_empty() || !v.iter().all(u8::is_ascii_hexdigit) {
            found.add(Cf::Sys, k, "history id is not hex");
        }
    } else if let Some(name) = k.strip_prefix(COLLECTION_PREFIX) {
        let parsed = codec::expect(v, Codec::Json).and_then(|p| {
            serde_json::from_slice::<crate::engine::CollectionInfo>(p)
                .map_err(|e| Error::corruption(e.to_string()))
        });
        match parsed {
            Ok(info) if info.name.as_bytes() == name && info.dimension > 0 => {
                if info.dedup {
                    shapes.dedup.collections.insert(info.name.clone());
                }
                dims.insert(info.name, info.dimension);
            }
            Ok(info) => found.add(
                Cf::Sys,
                k,
                format!(
                    "descriptor names {:?} (dimension {})",
                    info.name, info.dimension
                ),
            ),
            Err(e) => found.add(
                Cf::Sys,
                k,
                format!("collection descriptor does not decode: {}", e.message),
            ),
        }
    } else if let Some(rest) = k.strip_prefix(b"dedup/") {
        shapes.dedup.count(rest, v, k, found);
    } else if let Some(rest) = k.strip_prefix(b"quant/") {
        let name = String::from_utf8_lossy(rest);
        let parsed = name
            .rsplit_once('/')
            .and_then(|(c, g)| Some((c.to_string(), g.parse::<u8>().ok()?)));
        match (parsed, crate::quant::Quantizer::from_bytes(v)) {
            (Some(key), Ok(q)) => {
                shapes.codes.insert(key, q.code_len());
            }
            (None, _) => found.add(Cf::Sys, k, "calibration key has no generation"),
            (_, Err(e)) => found.add(Cf::Sys, k, e.message),
        }
    } else if k.starts_with(b"ctr/") && v.len() != 8 {
        found.add(Cf::Sys, k, format!("counter is {} bytes, not 8", v.len()));
    }
}

/// A vector: `collection \0 id` → F32 of the collection's dimension, or
/// codes of one of its calibrations; in a dedup collection a reference
/// there, and the vector at `collection \x01 <hash>`.
fn check_vector(k: &[u8], v: &[u8], shapes: &mut Shapes, found: &mut Findings) {
    let Some(at) = k.iter().position(|b| *b <= 1) else {
        found.add(Cf::Vectors, k, "key has no collection part");
        return;
    };
    let collection = String::from_utf8_lossy(&k[..at]);
    if !shapes
        .dedup
        .vector(&collection, k[at] == 1, &k[at + 1..], v, k, found)
    {
        return;
    }
    let dims = &shapes.dims;
    let Some(&dim) = dims.get(collection.as_ref()) else {
        found.add(
            Cf::Vectors,
            k,
            format!("collection {collection:?} does not exist"),
        );
        return;
    };
    match codec::decode(v) {
        Ok((Codec::F32Le, payload)) if payload.len() == dim * 4 => {}
        Ok((Codec::F32Le, payload)) => found.add(
            Cf::Vectors,
            k,
            format!(
                "{} bytes of floats, the collection's dimension {dim} needs {}",
                payload.len(),
                dim * 4
            ),
        ),
        Ok((Codec::Quantized, [generation, code @ ..])) => {
            match shapes.codes.get(&(collection.to_string(), *generation)) {
                Some(&len) if len == code.len() => {}
                Some(&len) => found.add(
                    Cf::Vectors,
                    k,
                    format!(
                        "{} bytes of codes, calibration {generation} needs {len}",
                        code.len()
                    ),
                ),
                None => found.add(
                    Cf::Vectors,
                    k,
                    format!("calibration {generation} of {collection:?} has no record"),
                ),
            }
        }
        Ok((other, _)) => found.add(
            Cf::Vectors,
            k,
            format!("codec {other:?} is not a vector codec"),
        ),
        Err(e) => found.add(Cf::Vectors, k, e.message),
    }
}

/// Does the memory entry `ns \0 key` of an access counter exist?
fn entry_exists(
    engine: &Engine,
    snapshot: &rocksdb::Snapshot<'_>,
    entry_key: &[u8],
) -> Result<bool> {
    let mut ro = ReadOptions::default();
    ro.set_snapshot(snapshot);
    Ok(engine
        .db()
        .get_pinned_cf_opt(engine.cf(Cf::Memory), entry_key, &ro)?
        .is_some())
}

/// Read an index back and compare its SHA-256.
fn rehash(engine: &Engine, name: &str, size: u64, sha256: &str) -> Result<()> {
    let mut h = Sha256::new();
    let mut offset = 0u64;
    while offset < size {
        let (_, bytes) = engine.index_read(
            name,
            offset,
            crate::engine::indexes::MAX_CHUNK_BYTES,
            Some(sha256),
        )?;
        if bytes.is_empty() {
            return Err(Error::corruption(format!(
                "index {name:?} ends at {offset} of {size} bytes"
            )));
        }
        offset += bytes.len() as u64;
        h.update(&bytes);
    }
    let got = crate::fs::hex(&h.finalize());
    if got != sha256 {
        return Err(Error::corruption(format!(
            "index {name:?} has SHA-256 {got}, its record says {sha256}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests;

mod dedup;
