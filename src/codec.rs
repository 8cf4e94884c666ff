//! Value encodings. Every value stored in RocksDB starts with one codec byte
//! saying how the rest is encoded, so quantized, compressed and encrypted
//! encodings can be added next to the plain ones without a migration.
//!
//! | byte | codec      | payload                                              |
//! |------|------------|------------------------------------------------------|
//! | 0x01 | `Raw`      | the bytes as given (key/value data)                  |
//! | 0x02 | `F32Le`    | a vector: little-endian f32, 4 bytes per dimension   |
//! | 0x03 | `Json`     | UTF-8 JSON (metadata, collection descriptors)        |
//! | 0x04 | `MemoryV1` | i64 LE expiry in ms since epoch (0 = never) + JSON   |
//! | 0x05 | `Series`   | a chunk of the metrics history (see `series`) |
//! | 0x20 | `Quantized`| a vector: calibration generation (u8) + its codes    |
//! | 0x21 | `VectorRef`| an id of a dedup collection: its content hash (16 B) |
//!
//! A quantized vector is decoded with the calibration record of its
//! collection and generation (`quant/<collection>/<generation>` in `sys`,
//! see [`crate::quant`]), so values of two calibrations can coexist while
//! a collection is re-encoded. Reserved for later issues: 0x10..
//! compressed, 0x30.. encrypted (AES-256-GCM) envelopes.

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Codec {
    Raw = 0x01,
    F32Le = 0x02,
    Json = 0x03,
    MemoryV1 = 0x04,
    /// A chunk of the daemon's metrics history (module `series`).
    Series = 0x05,
    Quantized = 0x20,
    /// An id of a dedup collection: the hash its vector is stored under
    /// (see `engine::vectors::dedup`).
    VectorRef = 0x21,
}

impl Codec {
    pub fn from_byte(b: u8) -> Option<Codec> {
        match b {
            0x01 => Some(Codec::Raw),
            0x02 => Some(Codec::F32Le),
            0x03 => Some(Codec::Json),
            0x04 => Some(Codec::MemoryV1),
            0x05 => Some(Codec::Series),
            0x20 => Some(Codec::Quantized),
            0x21 => Some(Codec::VectorRef),
            _ => None,
        }
    }
}

/// Prefix `payload` with the codec byte.
pub fn encode(codec: Codec, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 1);
    out.push(codec as u8);
    out.extend_from_slice(payload);
    out
}

/// Split a stored value into its codec and payload.
pub fn decode(bytes: &[u8]) -> Result<(Codec, &[u8])> {
    let (&tag, rest) = bytes
        .split_first()
        .ok_or_else(|| Error::corruption("stored value is empty (no codec byte)"))?;
    let codec = Codec::from_byte(tag).ok_or_else(|| {
        Error::corruption(format!(
            "stored value has unknown codec byte 0x{tag:02x}; written by a newer version?"
        ))
    })?;
    Ok((codec, rest))
}

/// Decode a value that must have the given codec.
pub fn expect(bytes: &[u8], want: Codec) -> Result<&[u8]> {
    let (codec, payload) = decode(bytes)?;
    if codec != want {
        return Err(Error::corruption(format!(
            "stored value has codec {codec:?}, expected {want:?}"
        )));
    }
    Ok(payload)
}

/// Encode a vector as codec byte + little-endian f32.
pub fn encode_f32(v: &[f32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + v.len() * 4);
    out.push(Codec::F32Le as u8);
    for x in v {
        out.extend_from_slice(&x.to_le_bytes());
    }
    out
}

/// Little-endian f32 bytes (no codec byte) → floats.
pub fn f32_from_le(payload: &[u8]) -> Result<Vec<f32>> {
    if !payload.len().is_multiple_of(4) {
        return Err(Error::invalid(format!(
            "{} bytes is not a whole number of little-endian f32 values",
            payload.len()
        )));
    }
    Ok(payload
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

/// Floats → little-endian bytes (no codec byte), e.g. for base64 transport.
pub fn f32_to_le(v: &[f32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len() * 4);
    for x in v {
        out.extend_from_slice(&x.to_le_bytes());
    }
    out
}

/// Encode a memory entry: codec byte, expiry, JSON body.
pub fn encode_memory(expires_at_ms: i64, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(9 + body.len());
    out.push(Codec::MemoryV1 as u8);
    out.extend_from_slice(&expires_at_ms.to_le_bytes());
    out.extend_from_slice(body);
    out
}

/// Decode a memory entry into (expiry ms, JSON body).
pub fn decode_memory(bytes: &[u8]) -> Result<(i64, &[u8])> {
    let payload = expect(bytes, Codec::MemoryV1)?;
    if payload.len() < 8 {
        return Err(Error::corruption("memory entry is truncated (no expiry)"));
    }
    let (exp, body) = payload.split_at(8);
    let mut b = [0u8; 8];
    b.copy_from_slice(exp);
    Ok((i64::from_le_bytes(b), body))
}

/// Expiry of a memory entry without decoding its body (compaction filter).
pub fn memory_expiry(bytes: &[u8]) -> Option<i64> {
    if bytes.len() < 9 || bytes[0] != Codec::MemoryV1 as u8 {
        return None;
    }
    let mut b = [0u8; 8];
    b.copy_from_slice(&bytes[1..9]);
    Some(i64::from_le_bytes(b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn f32_round_trip(v in proptest::collection::vec(any::<f32>().prop_filter("finite", |x| x.is_finite()), 0..512)) {
            let enc = encode_f32(&v);
            let payload = expect(&enc, Codec::F32Le).unwrap();
            prop_assert_eq!(f32_from_le(payload).unwrap(), v);
        }

        #[test]
        fn memory_round_trip(exp in any::<i64>(), body in proptest::collection::vec(any::<u8>(), 0..256)) {
            let enc = encode_memory(exp, &body);
            prop_assert_eq!(memory_expiry(&enc), Some(exp));
            let (e, b) = decode_memory(&enc).unwrap();
            prop_assert_eq!(e, exp);
            prop_assert_eq!(b, &body[..]);
        }

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode(&bytes);
            let _ = decode_memory(&bytes);
            let _ = memory_expiry(&bytes);
        }
    }

    #[test]
    fn unknown_and_empty_are_corruption() {
        assert_eq!(
            decode(&[]).unwrap_err().kind,
            crate::error::ErrorKind::Corruption
        );
        let e = decode(&[0xee, 1, 2]).unwrap_err();
        assert!(e.message.contains("0xee"), "{e}");
        assert!(expect(&encode(Codec::Raw, b"x"), Codec::Json).is_err());
        assert!(f32_from_le(&[1, 2, 3]).is_err());
    }
}
