use sha2::{Digest, Sha256};

use super::*;
use crate::clock::ManualClock;
use crate::engine::testutil::open_temp;

fn chunks(e: &Engine, blob: &str) -> usize {
    e.db()
        .prefix_iterator_cf(e.cf(Cf::Indexes), chunk_prefix(blob))
        .filter_map(|r| r.ok())
        .filter(|(k, _)| k.starts_with(&chunk_prefix(blob)))
        .count()
}

fn content(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 31 % 251) as u8).collect()
}

#[test]
fn an_index_uploaded_in_chunks_reads_back_byte_for_byte() {
    let (_d, e) = open_temp(ManualClock::new(1_000));
    let bytes = content(10_000);
    let up = e.index_upload("hnsw-v2", None, 0, &bytes[..4096]).unwrap();
    let up = e
        .index_upload("hnsw-v2", Some(&up.upload_id), 4096, &bytes[4096..])
        .unwrap();
    assert_eq!(up.received, 10_000);
    let digest = crate::fs::hex(&Sha256::digest(&bytes));
    let (info, prev) = e
        .index_commit(
            "hnsw-v2",
            &up.upload_id,
            "hnsw",
            Some(10_000),
            Some(&digest),
            None,
            None,
        )
        .unwrap();
    assert!(prev.is_none());
    assert_eq!(info.size_bytes, 10_000);
    // Reads that start inside a chunk and cross into the next.
    for (off, len) in [
        (0, 10_000),
        (100, 5000),
        (4095, 2),
        (9_999, 50),
        (10_000, 5),
    ] {
        let (_, got) = e.index_read("hnsw-v2", off, len, None).unwrap();
        let end = (off as usize + len).min(10_000);
        assert_eq!(got, bytes[off as usize..end], "offset {off} length {len}");
    }
    assert!(e.index_read("hnsw-v2", 10_001, 1, None).is_err());
    let (list, uploads) = e.index_list().unwrap();
    assert_eq!(list, vec![info]);
    assert!(
        uploads.is_empty(),
        "a committed upload is no longer pending"
    );
}

#[test]
fn a_bad_upload_changes_nothing_and_says_why() {
    let (_d, e) = open_temp(ManualClock::new(1_000));
    let old = content(3000);
    let up = e.index_upload("ivf", None, 0, &old).unwrap();
    e.index_commit("ivf", &up.upload_id, "ivf", None, None, None, None)
        .unwrap();
    let new = content(5000);
    let up = e.index_upload("ivf", None, 0, &new[..1000]).unwrap();
    // Out of order: the offset must be what the upload holds.
    let err = e
        .index_upload("ivf", Some(&up.upload_id), 2000, &new[2000..])
        .unwrap_err();
    assert!(
        err.message.contains("next chunk starts at offset 1000"),
        "{err}"
    );
    // Wrong size and wrong checksum refuse the commit.
    let err = e
        .index_commit("ivf", &up.upload_id, "ivf", Some(5000), None, None, None)
        .unwrap_err();
    assert!(err.message.contains("holds 1000 bytes"), "{err}");
    let err = e
        .index_commit("ivf", &up.upload_id, "ivf", None, Some("00"), None, None)
        .unwrap_err();
    assert!(err.message.contains("nothing was committed"), "{err}");
    for bad in ["../x", "a//b", "/a", "a b", ""] {
        assert!(e.index_upload(bad, None, 0, b"x").is_err(), "{bad:?}");
    }
    assert!(e.index_upload("team-a/hnsw.v2", None, 0, b"x").is_ok());
    assert!(e.index_upload("ivf", None, 5, b"x").is_err());
    // The old content is untouched.
    let (info, got) = e.index_read("ivf", 0, 10_000, None).unwrap();
    assert_eq!(got, old);
    assert_eq!(info.size_bytes, 3000);
    // Replacing deletes the old chunks in the same batch.
    e.index_upload("ivf", Some(&up.upload_id), 1000, &new[1000..])
        .unwrap();
    let (_, prev) = e
        .index_commit("ivf", &up.upload_id, "ivf", Some(5000), None, None, None)
        .unwrap();
    let old_blob = prev.unwrap().blob;
    assert_eq!(chunks(&e, &old_blob), 0, "old chunks are gone");
    assert_eq!(e.index_read("ivf", 0, 10_000, None).unwrap().1, new);
    assert!(e.index_delete("ivf").unwrap());
    assert!(!e.index_delete("ivf").unwrap());
    assert!(e.index_read("ivf", 0, 1, None).is_err());
}

#[test]
fn unfinished_uploads_expire_after_a_day() {
    let clock = ManualClock::new(1_000);
    let (_d, e) = open_temp(clock.clone());
    let stale = e.index_upload("a", None, 0, b"abc").unwrap();
    clock.advance_ms(UPLOAD_EXPIRY_MS + 1);
    let fresh = e.index_upload("b", None, 0, b"def").unwrap();
    let (_, uploads) = e.index_list().unwrap();
    assert_eq!(uploads, vec![fresh.clone()]);
    assert!(e
        .index_upload("a", Some(&stale.upload_id), 3, b"g")
        .is_err());
    assert_eq!(chunks(&e, &stale.upload_id), 0, "its chunks went with it");
    assert_eq!(chunks(&e, &fresh.upload_id), 1);
    // Expiry counts from the last chunk, not the start.
    clock.advance_ms(UPLOAD_EXPIRY_MS - 10);
    e.index_upload("b", Some(&fresh.upload_id), 3, b"ghi")
        .unwrap();
    clock.advance_ms(20);
    e.index_upload("c", None, 0, b"x").unwrap();
    let (_, uploads) = e.index_list().unwrap();
    assert!(
        uploads.iter().any(|u| u.upload_id == fresh.upload_id),
        "{uploads:?}"
    );
}
