//! What RocksDB would store for a sample of entries under a compression
//! spec: the sample is cut into data blocks the way its block builder cuts
//! them (keys prefix-shared with the previous one, a restart every 16
//! entries, a block closed near `block_size`), and each block compressed
//! with the same format (zstd, lz4, snappy) and kept only if it saves what
//! RocksDB asks for (`MAX_COMPRESSED_BYTES_PER_KB`).

use std::time::Instant;

use crate::config::{Algorithm, CompressionSpec, DICT_BYTES, DICT_TRAIN_BYTES};
use crate::engine::compression::MAX_COMPRESSED_BYTES_PER_KB;
use crate::error::{Error, Result};

/// Entries between restart points (RocksDB's `block_restart_interval`).
const RESTART_INTERVAL: usize = 16;
/// A block closes early when the next entry would overflow it and it is
/// already this full (RocksDB's `block_size_deviation`, 10%).
const DEVIATION_PERCENT: usize = 10;
/// A block's trailer: compression type and checksum.
const TRAILER: usize = 5;
/// The varint of the uncompressed size RocksDB prepends to lz4 and zstd
/// blocks (format_version ≥ 2).
const SIZE_PREFIX: usize = 3;
/// An internal key's sequence and type, after bottommost compaction (the
/// sequence zeroed, the type a value).
const KEY_SUFFIX: [u8; 8] = [1, 0, 0, 0, 0, 0, 0, 0];

fn varint(out: &mut Vec<u8>, mut v: usize) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Data blocks in RocksDB's format, and the raw bytes (internal keys and
/// values) they hold.
#[derive(Debug, Default)]
pub struct Blocks {
    pub blocks: Vec<Vec<u8>>,
    pub raw_bytes: u64,
    pub entries: u64,
}

impl Blocks {
    pub fn build<'a>(entries: impl IntoIterator<Item = (&'a [u8], &'a [u8])>, size: usize) -> Self {
        let mut out = Blocks::default();
        let mut block = Vec::new();
        let mut restarts: Vec<u32> = Vec::new();
        let mut in_run = 0usize;
        let mut last_key: Vec<u8> = Vec::new();
        let close = |block: &mut Vec<u8>, restarts: &mut Vec<u32>, out: &mut Blocks| {
            for r in restarts.iter() {
                block.extend_from_slice(&r.to_le_bytes());
            }
            block.extend_from_slice(&(restarts.len() as u32).to_le_bytes());
            out.blocks.push(std::mem::take(block));
            restarts.clear();
        };
        for (key, value) in entries {
            let mut ikey = Vec::with_capacity(key.len() + 8);
            ikey.extend_from_slice(key);
            ikey.extend_from_slice(&KEY_SUFFIX);
            let estimate = block.len() + ikey.len() + value.len() + 12;
            if !block.is_empty()
                && (block.len() >= size
                    || (estimate > size && block.len() * 100 >= size * (100 - DEVIATION_PERCENT)))
            {
                close(&mut block, &mut restarts, &mut out);
                in_run = 0;
            }
            let shared = if in_run.is_multiple_of(RESTART_INTERVAL) {
                restarts.push(block.len() as u32);
                0
            } else {
                last_key
                    .iter()
                    .zip(&ikey)
                    .take_while(|(a, b)| a == b)
                    .count()
            };
            in_run += 1;
            varint(&mut block, shared);
            varint(&mut block, ikey.len() - shared);
            varint(&mut block, value.len());
            block.extend_from_slice(&ikey[shared..]);
            block.extend_from_slice(value);
            out.raw_bytes += (ikey.len() + value.len()) as u64;
            out.entries += 1;
            last_key = ikey;
        }
        if !block.is_empty() {
            close(&mut block, &mut restarts, &mut out);
        }
        out
    }

    /// Bytes of the blocks uncompressed.
    pub fn block_bytes(&self) -> u64 {
        self.blocks.iter().map(|b| b.len() as u64).sum()
    }
}

/// What one spec stores for the blocks.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// Data blocks as stored, trailers included (a dictionary is stored in
    /// its own meta block, outside the data blocks RocksDB counts, as here).
    pub stored_bytes: u64,
    /// Blocks stored raw because compressing saved too little.
    pub rejected: u64,
    /// Uncompressed block bytes compressed per second, MB/s (a
    /// dictionary's training, once per table file, not included); none
    /// for `none`.
    pub encode_mb_s: Option<f64>,
}

/// One block in, its compressed bytes out.
type Compress = dyn FnMut(&[u8]) -> Result<Vec<u8>>;

/// Compress the blocks as the bottommost level of a family with `spec`
/// would (with a dictionary: zstd trained on the blocks themselves).
pub fn simulate(blocks: &Blocks, spec: &CompressionSpec) -> Result<Outcome> {
    let mut compress: Box<Compress> = if spec.dictionary {
        let dict = train(blocks)?;
        let mut c = zstd::bulk::Compressor::with_dictionary(spec.dictionary_level(), &dict)
            .map_err(|e| Error::internal(format!("zstd with a dictionary: {e}")))?;
        Box::new(move |b: &[u8]| {
            c.compress(b)
                .map_err(|e| Error::internal(format!("zstd: {e}")))
        })
    } else {
        match spec.algorithm {
            Algorithm::None => Box::new(|b: &[u8]| Ok(b.to_vec())),
            Algorithm::Lz4 => Box::new(|b: &[u8]| Ok(lz4_flex::block::compress(b))),
            Algorithm::Snappy => {
                let mut enc = snap::raw::Encoder::new();
                Box::new(move |b: &[u8]| {
                    enc.compress_vec(b)
                        .map_err(|e| Error::internal(format!("snappy: {e}")))
                })
            }
            Algorithm::Zstd => {
                let mut c = zstd::bulk::Compressor::new(spec.dictionary_level())
                    .map_err(|e| Error::internal(format!("zstd: {e}")))?;
                Box::new(move |b: &[u8]| {
                    c.compress(b)
                        .map_err(|e| Error::internal(format!("zstd: {e}")))
                })
            }
        }
    };
    let prefix = match (spec.dictionary, spec.algorithm) {
        (_, Algorithm::None) => 0,
        (false, Algorithm::Snappy) => 0,
        _ => SIZE_PREFIX,
    };
    let started = Instant::now();
    let mut stored = 0u64;
    let mut rejected = 0;
    for b in &blocks.blocks {
        if spec.algorithm == Algorithm::None {
            stored += (b.len() + TRAILER) as u64;
            continue;
        }
        let c = compress(b)?.len() + prefix;
        if c * 1024 <= b.len() * MAX_COMPRESSED_BYTES_PER_KB as usize {
            stored += (c + TRAILER) as u64;
        } else {
            stored += (b.len() + TRAILER) as u64;
            rejected += 1;
        }
    }
    let secs = started.elapsed().as_secs_f64().max(1e-9);
    Ok(Outcome {
        stored_bytes: stored,
        rejected,
        encode_mb_s: (spec.algorithm != Algorithm::None)
            .then(|| blocks.block_bytes() as f64 / 1e6 / secs),
    })
}

/// A zstd dictionary trained on the blocks, as RocksDB trains one per
/// table file (`max_dict_bytes`, on up to `zstd_max_train_bytes`).
fn train(blocks: &Blocks) -> Result<Vec<u8>> {
    let mut samples: Vec<&[u8]> = Vec::new();
    let mut total = 0usize;
    for b in &blocks.blocks {
        if total + b.len() > DICT_TRAIN_BYTES as usize {
            break;
        }
        total += b.len();
        samples.push(b);
    }
    zstd::dict::from_samples(&samples, DICT_BYTES as usize).map_err(|e| {
        Error::invalid(format!(
            "too little data to train a dictionary on ({} blocks): {e}",
            samples.len()
        ))
    })
}

/// `n` pseudo-random bytes (xorshift) from `state`: data no compressor
/// can shrink, for tests.
#[cfg(test)]
pub(super) fn noise(state: &mut u64, n: usize) -> Vec<u8> {
    (0..n)
        .map(|_| {
            *state ^= *state << 13;
            *state ^= *state >> 7;
            *state ^= *state << 17;
            *state as u8
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(n: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
        (0..n)
            .map(|i| {
                (
                    format!("user/{i:06}").into_bytes(),
                    format!(
                        "{{\"name\":\"agent-{i}\",\"role\":\"coder\",\"n\":{}}}",
                        i * 7
                    )
                    .into_bytes(),
                )
            })
            .collect()
    }

    #[test]
    fn blocks_are_cut_near_the_block_size_with_shared_prefixes() {
        let e = entries(5000);
        let b = Blocks::build(e.iter().map(|(k, v)| (&k[..], &v[..])), 4096);
        assert_eq!(b.entries, 5000);
        let raw: usize = e.iter().map(|(k, v)| k.len() + 8 + v.len()).sum();
        assert_eq!(b.raw_bytes, raw as u64);
        // All but the last block close within 10% under the size (or one
        // entry over it).
        for blk in &b.blocks[..b.blocks.len() - 1] {
            assert!(
                blk.len() >= 3600 && blk.len() <= 4096 + 100,
                "{}",
                blk.len()
            );
        }
        // Shared key prefixes make the blocks smaller than the raw bytes.
        assert!(
            b.block_bytes() < b.raw_bytes,
            "{} vs {}",
            b.block_bytes(),
            b.raw_bytes
        );
    }

    #[test]
    fn every_algorithm_shrinks_text_and_none_does_not() {
        let e = entries(5000);
        let b = Blocks::build(e.iter().map(|(k, v)| (&k[..], &v[..])), 16 * 1024);
        let none = simulate(&b, &CompressionSpec::NONE).unwrap();
        assert_eq!(
            none.stored_bytes,
            b.block_bytes() + (TRAILER * b.blocks.len()) as u64
        );
        for s in ["lz4", "snappy", "zstd:1", "zstd:9", "zstd:3+dict"] {
            let o = simulate(&b, &CompressionSpec::parse(s).unwrap()).unwrap();
            assert!(o.stored_bytes * 2 < none.stored_bytes, "{s}: {o:?}");
            assert_eq!(o.rejected, 0, "{s}");
        }
    }

    #[test]
    fn random_bytes_are_stored_raw() {
        let mut x = 0x9e3779b97f4a7c15u64;
        let e: Vec<(Vec<u8>, Vec<u8>)> = (0..2000)
            .map(|i| {
                // Long enough that the keys' few compressible bytes save
                // less than RocksDB asks for.
                let v = noise(&mut x, 1536);
                (format!("{i:08}").into_bytes(), v)
            })
            .collect();
        let b = Blocks::build(e.iter().map(|(k, v)| (&k[..], &v[..])), 16 * 1024);
        let o = simulate(&b, &CompressionSpec::parse("lz4").unwrap()).unwrap();
        assert_eq!(o.rejected, b.blocks.len() as u64);
        assert_eq!(
            o.stored_bytes,
            b.block_bytes() + (TRAILER * b.blocks.len()) as u64
        );
    }
}
