//! The encoding of the daemon's own time series (its metrics history):
//! chunks of points, each point a timestamp and a fixed set of columns
//! (figures), byte-aligned so a chunk grows by appending.
//!
//! A chunk is
//!
//! ```text
//! codec byte 0x05 · column count (u8) · per column: name length (u8), name, decimals (u8)
//! · point*
//! ```
//!
//! and a point is
//!
//! ```text
//! time · flags (varint) · one zigzag varint per changed column, in column order
//! ```
//!
//! - time: the first point's milliseconds (zigzag varint), then
//!   delta-of-delta (zigzag varint): a steady tick costs one byte (0, or a
//!   few ms of jitter);
//! - a value is kept in fixed point (`round(v · 10^decimals)`, so exact
//!   for a figure already rounded to its decimals, within half a unit of
//!   the last decimal otherwise); bit `i` of the flags says column `i`
//!   changed and its delta to the previous value follows; bit `n + i` says
//!   its presence toggled (a value appears or goes missing). A column that
//!   did not change costs nothing.
//!
//! Timestamps and fixed-point values use wrapping arithmetic, so every i64
//! sequence round-trips exactly. A [`Writer`] holds what the next point is
//! encoded against; [`decode`] returns the writer of a chunk's end, so a
//! restarted daemon continues the chunk it was writing.

use crate::codec::Codec;
use crate::error::{Error, Result};

/// Most columns a chunk holds (two flag bits each in a u64).
pub const MAX_COLUMNS: usize = 32;
/// Most decimals a column keeps.
pub const MAX_DECIMALS: u8 = 9;

/// One column: its name and how many decimals its values keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    pub name: &'static str,
    pub decimals: u8,
}

/// One point: when, and a value (or none) per column.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// Milliseconds since the epoch.
    pub at_ms: i64,
    pub values: Vec<Option<f64>>,
}

/// A decoded chunk.
#[derive(Debug, Clone, PartialEq)]
pub struct Chunk {
    /// (name, decimals) of each column, as the chunk's header says.
    pub columns: Vec<(String, u8)>,
    pub points: Vec<Point>,
    /// What a point appended to this chunk is encoded against.
    pub writer: Writer,
}

impl Chunk {
    /// Whether the chunk was written with exactly these columns.
    pub fn has_columns(&self, columns: &[Column]) -> bool {
        self.columns.len() == columns.len()
            && self
                .columns
                .iter()
                .zip(columns)
                .all(|((n, d), c)| n == c.name && *d == c.decimals)
    }
}

/// The state a chunk's next point is encoded against.
#[derive(Debug, Clone, PartialEq)]
pub struct Writer {
    decimals: Vec<u8>,
    start_ms: i64,
    points: u32,
    prev_ms: i64,
    prev_delta: i64,
    prev: Vec<i64>,
    present: Vec<bool>,
}

fn pow10(decimals: u8) -> f64 {
    10f64.powi(i32::from(decimals))
}

/// `v` in fixed point with `decimals` (None for NaN and infinities).
/// Values beyond ±9.2e18 units saturate.
pub fn to_fixed(v: f64, decimals: u8) -> Option<i64> {
    v.is_finite().then(|| (v * pow10(decimals)).round() as i64)
}

pub fn from_fixed(x: i64, decimals: u8) -> f64 {
    x as f64 / pow10(decimals)
}

fn zigzag(n: i64) -> u64 {
    ((n << 1) ^ (n >> 63)) as u64
}

fn unzigzag(n: u64) -> i64 {
    ((n >> 1) as i64) ^ -((n & 1) as i64)
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads a chunk's bytes front to back; every read names what was cut.
struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn cut(&self, what: &str) -> Error {
        Error::corruption(format!(
            "series chunk: {what} is cut or malformed at byte {}",
            self.at
        ))
    }

    fn byte(&mut self, what: &str) -> Result<u8> {
        let b = *self.buf.get(self.at).ok_or_else(|| self.cut(what))?;
        self.at += 1;
        Ok(b)
    }

    fn varint(&mut self, what: &str) -> Result<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte(what)?;
            let bits = u64::from(b & 0x7f);
            if shift == 63 && bits > 1 {
                return Err(self.cut(what));
            }
            v |= bits << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(self.cut(what))
    }

    fn done(&self) -> bool {
        self.at >= self.buf.len()
    }
}

impl Writer {
    fn new(decimals: Vec<u8>, start_ms: i64) -> Writer {
        let n = decimals.len();
        Writer {
            decimals,
            start_ms,
            points: 0,
            prev_ms: 0,
            prev_delta: 0,
            prev: vec![0; n],
            present: vec![false; n],
        }
    }

    /// A new chunk holding `first`: its bytes (header and point) and the
    /// writer of its end.
    pub fn start(columns: &[Column], first: &Point) -> Result<(Writer, Vec<u8>)> {
        if columns.is_empty() || columns.len() > MAX_COLUMNS {
            return Err(Error::invalid(format!(
                "a series chunk holds 1 to {MAX_COLUMNS} columns, not {}",
                columns.len()
            )));
        }
        let mut out = vec![Codec::Series as u8, columns.len() as u8];
        for c in columns {
            if c.name.is_empty() || c.name.len() > 255 || c.decimals > MAX_DECIMALS {
                return Err(Error::invalid(format!(
                    "series column {:?}: a name of 1 to 255 bytes and at most {MAX_DECIMALS} decimals",
                    c.name
                )));
            }
            out.push(c.name.len() as u8);
            out.extend_from_slice(c.name.as_bytes());
            out.push(c.decimals);
        }
        let mut w = Writer::new(columns.iter().map(|c| c.decimals).collect(), first.at_ms);
        w.push_into(first, &mut out)?;
        Ok((w, out))
    }

    /// Encode the next point (the bytes to append to the chunk) and move
    /// to it.
    pub fn push(&mut self, p: &Point) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(16);
        self.push_into(p, &mut out)?;
        Ok(out)
    }

    fn push_into(&mut self, p: &Point, out: &mut Vec<u8>) -> Result<()> {
        let n = self.decimals.len();
        if p.values.len() != n {
            return Err(Error::invalid(format!(
                "a series point has {} values for {n} columns",
                p.values.len()
            )));
        }
        if self.points == 0 {
            put_varint(out, zigzag(p.at_ms));
        } else {
            let delta = p.at_ms.wrapping_sub(self.prev_ms);
            put_varint(out, zigzag(delta.wrapping_sub(self.prev_delta)));
            self.prev_delta = delta;
        }
        self.prev_ms = p.at_ms;
        let mut flags = 0u64;
        let mut deltas = Vec::new();
        for (i, v) in p.values.iter().enumerate() {
            let x = v.and_then(|v| to_fixed(v, self.decimals[i]));
            if x.is_some() != self.present[i] {
                flags |= 1 << (n + i);
                self.present[i] = x.is_some();
            }
            if let Some(x) = x.filter(|x| *x != self.prev[i]) {
                flags |= 1 << i;
                deltas.push(x.wrapping_sub(self.prev[i]));
                self.prev[i] = x;
            }
        }
        put_varint(out, flags);
        for d in deltas {
            put_varint(out, zigzag(d));
        }
        self.points += 1;
        Ok(())
    }

    /// The first point's time.
    pub fn start_ms(&self) -> i64 {
        self.start_ms
    }

    /// The last point's time.
    pub fn last_ms(&self) -> i64 {
        self.prev_ms
    }

    pub fn points(&self) -> u32 {
        self.points
    }
}

/// Decode a chunk (its whole value); corruption names the byte.
pub fn decode(bytes: &[u8]) -> Result<Chunk> {
    let mut r = Reader { buf: bytes, at: 0 };
    let tag = r.byte("the codec byte")?;
    if tag != Codec::Series as u8 {
        return Err(Error::corruption(format!(
            "series chunk: codec byte 0x{tag:02x}, expected 0x{:02x}",
            Codec::Series as u8
        )));
    }
    let n = usize::from(r.byte("the column count")?);
    if n == 0 || n > MAX_COLUMNS {
        return Err(Error::corruption(format!(
            "series chunk: {n} columns (1 to {MAX_COLUMNS} expected)"
        )));
    }
    let mut columns = Vec::with_capacity(n);
    for _ in 0..n {
        let len = usize::from(r.byte("a column name's length")?);
        let end = r.at + len;
        let name = bytes
            .get(r.at..end)
            .and_then(|b| std::str::from_utf8(b).ok())
            .ok_or_else(|| r.cut("a column name"))?
            .to_string();
        r.at = end;
        let decimals = r.byte("a column's decimals")?;
        if decimals > MAX_DECIMALS {
            return Err(r.cut("a column's decimals"));
        }
        columns.push((name, decimals));
    }
    let mut w = Writer::new(columns.iter().map(|c| c.1).collect(), 0);
    let mut points = Vec::new();
    while !r.done() {
        let t = unzigzag(r.varint("a point's time")?);
        let at_ms = if w.points == 0 {
            w.start_ms = t;
            t
        } else {
            w.prev_delta = w.prev_delta.wrapping_add(t);
            w.prev_ms.wrapping_add(w.prev_delta)
        };
        w.prev_ms = at_ms;
        let flags = r.varint("a point's flags")?;
        if n < 32 && flags >> (2 * n) != 0 {
            return Err(r.cut("a point's flags"));
        }
        let mut values = Vec::with_capacity(n);
        for i in 0..n {
            if flags & (1 << (n + i)) != 0 {
                w.present[i] = !w.present[i];
            }
            if flags & (1 << i) != 0 {
                if !w.present[i] {
                    return Err(r.cut("a value of a missing column"));
                }
                let d = unzigzag(r.varint("a value")?);
                w.prev[i] = w.prev[i].wrapping_add(d);
            }
            values.push(w.present[i].then(|| from_fixed(w.prev[i], w.decimals[i])));
        }
        w.points += 1;
        points.push(Point { at_ms, values });
    }
    if points.is_empty() {
        return Err(Error::corruption("series chunk: no point after the header"));
    }
    Ok(Chunk {
        columns,
        points,
        writer: w,
    })
}

#[cfg(test)]
mod tests;
