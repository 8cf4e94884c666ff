//! The segment format: `wal/<first:020>-<last:020>.seg`, zstd-compressed
//! frames `[sequence u64][commit ms i64][length u32][batch bytes]` and the
//! SHA-256 of the frames; `.eseg` when sealed under the keyring.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::backup::crypto::{self, KeyRef, Keyring};
use crate::cdc::{self, WalBatch};
use crate::error::{Error, Result};

/// One archived segment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Segment {
    pub first: u64,
    pub last: u64,
    pub object: String,
    /// Bytes of the stored object.
    pub size: u64,
    /// SHA-256 of the stored object, when a manifest vouches for it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

/// A segment as a backup manifest lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WalObject {
    pub object: String,
    pub first: u64,
    pub last: u64,
    /// Bytes of the stored object and their SHA-256 (lower-case hex).
    pub size: u64,
    pub sha256: String,
}

impl From<&WalObject> for Segment {
    fn from(w: &WalObject) -> Segment {
        Segment {
            first: w.first,
            last: w.last,
            object: w.object.clone(),
            size: w.size,
            sha256: Some(w.sha256.clone()),
        }
    }
}

pub(super) fn segment_name(first: u64, last: u64, encrypted: bool) -> String {
    let ext = if encrypted { "eseg" } else { "seg" };
    format!("wal/{first:020}-{last:020}.{ext}")
}

pub(super) fn parse_segment(name: &str) -> Option<(u64, u64)> {
    let stem = name
        .strip_suffix(".seg")
        .or_else(|| name.strip_suffix(".eseg"))?;
    let (a, b) = stem.split_once('-')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// Is `object` a well-formed segment name under `wal/`?
pub fn is_segment_object(object: &str) -> bool {
    object
        .strip_prefix("wal/")
        .is_some_and(|f| !f.contains('/') && parse_segment(f).is_some())
}

const SEALED_MAGIC: &[u8; 4] = b"RVWE";

#[derive(Serialize, Deserialize)]
struct SealHeader {
    kek: KeyRef,
    /// The segment's data key sealed under the KEK (base64).
    wrapped_dek: String,
}

pub(super) fn seal_segment(keyring: &Keyring, object: &str, body: &[u8]) -> Result<Vec<u8>> {
    let (kek_ref, kek) = keyring.current();
    let (dek, wrapped_dek) = crypto::new_data_key(kek, object)?;
    let header = serde_json::to_vec(&SealHeader {
        kek: kek_ref,
        wrapped_dek,
    })
    .map_err(|e| Error::internal(e.to_string()))?;
    let mut out = SEALED_MAGIC.to_vec();
    out.extend_from_slice(&(header.len() as u32).to_le_bytes());
    out.extend_from_slice(&header);
    out.extend_from_slice(&crypto::seal(&dek, object.as_bytes(), body)?);
    Ok(out)
}

fn open_segment(keyring: Option<&Keyring>, object: &str, body: &[u8]) -> Result<Vec<u8>> {
    let bad = |why: &str| Error::corruption(format!("WAL segment {object}: {why}"));
    let Some(rest) = body.strip_prefix(SEALED_MAGIC) else {
        return Err(bad("not an encrypted segment"));
    };
    if rest.len() < 4 {
        return Err(bad("truncated"));
    }
    let mut l = [0u8; 4];
    l.copy_from_slice(&rest[..4]);
    let len = u32::from_le_bytes(l) as usize;
    if rest.len() < 4 + len {
        return Err(bad("truncated header"));
    }
    let header: SealHeader =
        serde_json::from_slice(&rest[4..4 + len]).map_err(|e| bad(&format!("header: {e}")))?;
    let Some(keyring) = keyring else {
        return Err(Error::invalid(format!(
            "WAL segment {object} is encrypted (key {:?}); give its keyring (--keyring FILE, or [backup] keyring) to read it",
            header.kek.id
        )));
    };
    let what = format!("WAL segment {object}");
    let dek = crypto::unwrap_data_key(
        keyring.get(&header.kek)?,
        object,
        &header.wrapped_dek,
        &what,
    )?;
    crypto::open(&dek, object.as_bytes(), &rest[4 + len..], &what)
}

/// A decoded archived batch.
#[derive(Debug, Clone)]
pub struct Archived {
    pub sequence: u64,
    pub count: u32,
    pub commit_ms: i64,
    pub data: Vec<u8>,
}

pub(super) fn encode(batches: &[WalBatch]) -> Result<Vec<u8>> {
    let mut frames = Vec::new();
    for b in batches {
        frames.extend_from_slice(&b.sequence.to_le_bytes());
        frames.extend_from_slice(&b.commit_ms.unwrap_or(0).to_le_bytes());
        frames.extend_from_slice(&(b.data.len() as u32).to_le_bytes());
        frames.extend_from_slice(&b.data);
    }
    let digest = Sha256::digest(&frames);
    frames.extend_from_slice(&digest);
    zstd::bulk::compress(&frames, 3)
        .map_err(|e| Error::io(format!("compressing a WAL segment: {e}")))
}

/// Decode a stored segment (opened with the keyring if encrypted).
pub fn decode(keyring: Option<&Keyring>, object: &str, body: &[u8]) -> Result<Vec<Archived>> {
    let bad = |why: &str| Error::corruption(format!("WAL segment {object}: {why}"));
    let opened;
    let body = if object.ends_with(".eseg") {
        opened = open_segment(keyring, object, body)?;
        &opened[..]
    } else {
        body
    };
    let frames = zstd::stream::decode_all(body).map_err(|e| bad(&format!("zstd: {e}")))?;
    if frames.len() < 32 {
        return Err(bad("truncated"));
    }
    let (frames, digest) = frames.split_at(frames.len() - 32);
    if Sha256::digest(frames).as_slice() != digest {
        return Err(bad("SHA-256 mismatch"));
    }
    let mut out = Vec::new();
    let mut rest = frames;
    while !rest.is_empty() {
        if rest.len() < 20 {
            return Err(bad("truncated frame header"));
        }
        let u = |b: &[u8]| {
            let mut a = [0u8; 8];
            a.copy_from_slice(b);
            a
        };
        let sequence = u64::from_le_bytes(u(&rest[..8]));
        let commit_ms = i64::from_le_bytes(u(&rest[8..16]));
        let mut l = [0u8; 4];
        l.copy_from_slice(&rest[16..20]);
        let len = u32::from_le_bytes(l) as usize;
        if rest.len() < 20 + len {
            return Err(bad("truncated frame"));
        }
        let data = rest[20..20 + len].to_vec();
        let count = cdc::parse_batch(&data)?.count;
        out.push(Archived {
            sequence,
            count,
            commit_ms,
            data,
        });
        rest = &rest[20 + len..];
    }
    Ok(out)
}

pub(super) fn sha256_hex(b: &[u8]) -> String {
    crate::fs::hex(&Sha256::digest(b))
}
