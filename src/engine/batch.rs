//! RocksDB's `WriteBatch` wire format, decoded, and the *commit mark* the
//! engine adds to every batch it writes (WAL log data, not applied to the
//! store): the commit time and, per record, whether the key existed
//! before. Change capture (`cdc`) and the WAL archiver read both.

use rocksdb::WriteBatch;

use super::{Cf, Engine};
use crate::error::{Error, Result};

/// The log-data record that starts a commit mark.
const MARK_MAGIC: &[u8; 4] = b"RVC1";

/// One record of a write batch, borrowed from the batch's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record<'a> {
    Put {
        cf: u32,
        key: &'a [u8],
        value: &'a [u8],
    },
    Delete {
        cf: u32,
        key: &'a [u8],
    },
    Merge {
        cf: u32,
        key: &'a [u8],
        value: &'a [u8],
    },
    DeleteRange {
        cf: u32,
        begin: &'a [u8],
        end: &'a [u8],
    },
    LogData(&'a [u8]),
}

impl Record<'_> {
    /// Whether the record consumes a sequence number (log data does not).
    pub fn sequenced(&self) -> bool {
        !matches!(self, Record::LogData(_))
    }
}

/// A decoded write batch (RocksDB's `WriteBatch` wire format).
#[derive(Debug)]
pub struct ParsedBatch<'a> {
    /// Sequence of the first record (0 in a batch not yet written).
    pub sequence: u64,
    /// Records that consume a sequence number.
    pub count: u32,
    pub records: Vec<Record<'a>>,
}

fn varint32(buf: &mut &[u8]) -> Result<u32> {
    let mut out: u32 = 0;
    for shift in (0..35).step_by(7) {
        let (&b, rest) = buf
            .split_first()
            .ok_or_else(|| Error::corruption("write batch: truncated varint"))?;
        *buf = rest;
        out |= u32::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(out);
        }
    }
    Err(Error::corruption("write batch: varint longer than 5 bytes"))
}

fn slice<'a>(buf: &mut &'a [u8]) -> Result<&'a [u8]> {
    let n = varint32(buf)? as usize;
    if buf.len() < n {
        return Err(Error::corruption(format!(
            "write batch: a {n}-byte field runs past the end ({} bytes left)",
            buf.len()
        )));
    }
    let (s, rest) = buf.split_at(n);
    *buf = rest;
    Ok(s)
}

/// Decode a write batch's bytes (`WriteBatch::data()`).
pub fn parse_batch(data: &[u8]) -> Result<ParsedBatch<'_>> {
    if data.len() < 12 {
        return Err(Error::corruption(format!(
            "write batch: {} bytes is shorter than its 12-byte header",
            data.len()
        )));
    }
    let mut seq = [0u8; 8];
    seq.copy_from_slice(&data[..8]);
    let mut count = [0u8; 4];
    count.copy_from_slice(&data[8..12]);
    let mut buf = &data[12..];
    let mut records = Vec::new();
    while let Some((&tag, rest)) = buf.split_first() {
        buf = rest;
        let r = match tag {
            0x00 => Record::Delete {
                cf: 0,
                key: slice(&mut buf)?,
            },
            0x01 => Record::Put {
                cf: 0,
                key: slice(&mut buf)?,
                value: slice(&mut buf)?,
            },
            0x02 => Record::Merge {
                cf: 0,
                key: slice(&mut buf)?,
                value: slice(&mut buf)?,
            },
            0x03 => Record::LogData(slice(&mut buf)?),
            0x04 => Record::Delete {
                cf: varint32(&mut buf)?,
                key: slice(&mut buf)?,
            },
            0x05 => Record::Put {
                cf: varint32(&mut buf)?,
                key: slice(&mut buf)?,
                value: slice(&mut buf)?,
            },
            0x06 => Record::Merge {
                cf: varint32(&mut buf)?,
                key: slice(&mut buf)?,
                value: slice(&mut buf)?,
            },
            0x07 => Record::Delete {
                cf: 0,
                key: slice(&mut buf)?,
            },
            0x08 => Record::Delete {
                cf: varint32(&mut buf)?,
                key: slice(&mut buf)?,
            },
            0x0E => Record::DeleteRange {
                cf: varint32(&mut buf)?,
                begin: slice(&mut buf)?,
                end: slice(&mut buf)?,
            },
            0x0F => Record::DeleteRange {
                cf: 0,
                begin: slice(&mut buf)?,
                end: slice(&mut buf)?,
            },
            other => {
                return Err(Error::corruption(format!(
                    "write batch: record type 0x{other:02x} is not one this daemon writes"
                )))
            }
        };
        records.push(r);
    }
    let batch = ParsedBatch {
        sequence: u64::from_le_bytes(seq),
        count: u32::from_le_bytes(count),
        records,
    };
    let sequenced = batch.records.iter().filter(|r| r.sequenced()).count();
    if sequenced != batch.count as usize {
        return Err(Error::corruption(format!(
            "write batch: header counts {} records, found {sequenced}",
            batch.count
        )));
    }
    Ok(batch)
}

/// A commit mark: when the batch was committed and which of its sequenced
/// records overwrote an existing key.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Mark {
    pub commit_ms: i64,
    /// Bit i set: the i-th sequenced record's key existed before.
    pub existed: Vec<u8>,
}

impl Mark {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(12 + self.existed.len());
        out.extend_from_slice(MARK_MAGIC);
        out.extend_from_slice(&self.commit_ms.to_le_bytes());
        out.extend_from_slice(&self.existed);
        out
    }

    pub fn decode(blob: &[u8]) -> Option<Mark> {
        let rest = blob.strip_prefix(MARK_MAGIC.as_slice())?;
        if rest.len() < 8 {
            return None;
        }
        let mut ms = [0u8; 8];
        ms.copy_from_slice(&rest[..8]);
        Some(Mark {
            commit_ms: i64::from_le_bytes(ms),
            existed: rest[8..].to_vec(),
        })
    }

    pub fn existed(&self, i: usize) -> bool {
        self.existed
            .get(i / 8)
            .is_some_and(|b| b & (1 << (i % 8)) != 0)
    }

    pub fn set_existed(&mut self, i: usize) {
        if self.existed.len() <= i / 8 {
            self.existed.resize(i / 8 + 1, 0);
        }
        self.existed[i / 8] |= 1 << (i % 8);
    }
}

/// The commit mark for a batch about to be written: the commit time and a
/// point read per put into a user column family (bloom filters answer most
/// of them for new keys without I/O).
pub fn mark_for(engine: &Engine, batch: &WriteBatch, commit_ms: i64) -> Result<Mark> {
    let parsed = parse_batch(batch.data())?;
    let mut mark = Mark {
        commit_ms,
        existed: Vec::new(),
    };
    let db = engine.db();
    for (i, r) in parsed.records.iter().filter(|r| r.sequenced()).enumerate() {
        if let Record::Put { cf, key, .. } = r {
            let Some(cf) = engine.cf_of(*cf).filter(|c| *c != Cf::Sys) else {
                continue;
            };
            let handle = engine.cf(cf);
            if db.key_may_exist_cf(handle, key) && db.get_pinned_cf(handle, key)?.is_some() {
                mark.set_existed(i);
            }
        }
    }
    Ok(mark)
}
