use rocksdb::WriteBatch;

use super::segment::{encode, parse_segment, seal_segment, segment_name};
use super::*;
use crate::backup::crypto::Keyring;
use crate::cdc::WalBatch;

/// One batch putting `k` = `value`.
fn one_put(sequence: u64, commit_ms: i64, value: &[u8]) -> (WriteBatch, Vec<WalBatch>) {
    let mut wb = WriteBatch::default();
    wb.put(b"k", value);
    let batches = vec![WalBatch {
        sequence,
        count: 1,
        commit_ms: Some(commit_ms),
        data: wb.data().to_vec(),
    }];
    (wb, batches)
}

#[test]
fn segments_round_trip_and_damage_is_detected() {
    let (wb, batches) = one_put(7, 42, b"v");
    let body = encode(&batches).unwrap();
    let back = decode(None, "s", &body).unwrap();
    assert_eq!(
        (back[0].sequence, back[0].commit_ms, back[0].count),
        (7, 42, 1)
    );
    assert_eq!(back[0].data, wb.data());
    let mut frames = zstd::stream::decode_all(&body[..]).unwrap();
    frames[3] ^= 1;
    let bad = zstd::bulk::compress(&frames, 3).unwrap();
    assert!(decode(None, "s", &bad)
        .unwrap_err()
        .message
        .contains("SHA-256"));
    assert_eq!(
        parse_segment("00000000000000000001-00000000000000000009.seg"),
        Some((1, 9))
    );
    assert_eq!(parse_segment("junk"), None);
    assert!(is_segment_object(
        "wal/00000000000000000001-00000000000000000009.eseg"
    ));
    assert!(!is_segment_object("wal/../x-1.seg"));
}

#[test]
fn sealed_segments_need_their_key_and_their_name() {
    let dir = tempfile::tempdir().unwrap();
    let ring = Keyring::load_or_create(&dir.path().join("ring"), "now").unwrap();
    let other = Keyring::load_or_create(&dir.path().join("other"), "now").unwrap();
    let (wb, batches) = one_put(1, 1, b"secret-plaintext-value");
    let name = segment_name(1, 1, true);
    let sealed = seal_segment(&ring, &name, &encode(&batches).unwrap()).unwrap();
    assert!(!sealed
        .windows(b"secret-plaintext-value".len())
        .any(|w| w == b"secret-plaintext-value"));
    let back = decode(Some(&ring), &name, &sealed).unwrap();
    assert_eq!(back[0].data, wb.data());
    // No keyring, another keyring, another name, a flipped byte.
    assert!(decode(None, &name, &sealed)
        .unwrap_err()
        .message
        .contains("keyring"));
    // Another keyring: its key (same id scheme) does not open the data key.
    assert!(decode(Some(&other), &name, &sealed)
        .unwrap_err()
        .message
        .contains("authentication failed"));
    let renamed = segment_name(1, 2, true);
    assert!(decode(Some(&ring), &renamed, &sealed).is_err());
    let mut flipped = sealed.clone();
    let n = flipped.len();
    flipped[n - 20] ^= 1;
    assert!(decode(Some(&ring), &name, &flipped).is_err());
}
