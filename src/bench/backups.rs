//! (h) backups of the store (a) built: full backup, 1% incremental (both
//! methods), restore and verify --read-data to a local target, beside
//! restic on the same checkpoint, every timed step between `sync`s.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use rocksdb::WriteBatch;

use crate::codec;
use crate::engine::{composite_key, Cf, Engine};
use crate::error::{Error, Result};
use crate::npy::Matrix;

use super::harness::{flush_all, timed, timed_synced};
use super::Rows;

/// (h): full backup, 1% incremental (both methods), restore and verify
/// --read-data of the store (a) built, to a local target, beside restic on
/// the same checkpoint.
pub(super) async fn bench(
    engine: &Arc<Engine>,
    raw_dir: &Path,
    dir: &Path,
    count: usize,
    m: Arc<Matrix>,
) -> Result<Rows> {
    use crate::backup::{wal::Archive, Target, UploadSpec, WalBackupSpec};
    use crate::snapshot::{Kind, SnapshotStore};
    let store = SnapshotStore::open(raw_dir)?;
    let files_of = |name: &str| -> Result<Vec<(String, String)>> {
        Ok(store
            .manifest(name)?
            .files
            .iter()
            .map(|f| (f.name.clone(), f.crc32c.clone()))
            .collect())
    };
    let snap = store.dir("bench-4");
    let files = files_of("bench-4")?;
    let target = Target::open(&format!("file://{}", dir.join("backups").display()))?;
    let seq = engine.db().latest_sequence_number();
    let history = engine.history().to_string();
    flush_all()?;
    let t = Instant::now();
    let full = target
        .upload(UploadSpec {
            dir: &snap,
            files: &files,
            name: "full",
            sequence: seq,
            full: true,
            encrypt: false,
            now_ms: 1,
            history: Some(history.clone()),
        })
        .await?;
    flush_all()?;
    let backup_s = t.elapsed().as_secs_f64();
    let mb = full.total_bytes as f64 / 1e6;
    // 1% of the vectors change (to another real embedding plus noise of
    // ±0.005 per component, so each is new content as a re-embedded text
    // would be — the source cycles 10 000 rows), in batches of 1000; then an
    // incremental backup of each kind.
    let (e2, m2) = (engine.clone(), m);
    tokio::task::spawn_blocking(move || -> Result<()> {
        let cf = e2.cf(Cf::Vectors);
        let changed: Vec<usize> = (0..count).step_by(100).collect();
        for chunk in changed.chunks(1000) {
            let mut b = WriteBatch::default();
            for &i in chunk {
                let mut v = m2.row((i + 7) % m2.rows).to_vec();
                let mut x = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
                for f in v.iter_mut() {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    *f += ((x >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.01;
                }
                b.put_cf(
                    cf,
                    composite_key("bench", &format!("v{i}")),
                    codec::encode_f32(&v),
                );
            }
            e2.db().write(b)?;
        }
        e2.flush()?;
        Ok(())
    })
    .await
    .map_err(|e| Error::internal(e.to_string()))??;
    let archive = Archive::new(&target);
    let upto = engine.db().latest_sequence_number();
    let (mut after, mut known, mut wal_uploaded) = (seq, std::collections::HashMap::new(), 0);
    while after < upto {
        let r = archive.pass(engine.clone(), after).await?;
        if r.batches == 0 {
            break;
        }
        if let (Some(o), Some(h)) = (r.segment, r.sha256) {
            known.insert(o, h);
        }
        wal_uploaded += r.bytes;
        after = r.to_sequence;
    }
    let inc_wal = target
        .commit_wal(WalBackupSpec {
            name: "incremental-wal",
            parent: &full,
            base: &full,
            sequence: upto,
            wal: archive
                .vouch(archive.cover(seq, upto).await?, &known)
                .await?,
            uploaded_bytes: wal_uploaded,
            uploaded_objects: known.len() as u64,
            encrypt: false,
            now_ms: 2,
            history: history.clone(),
        })
        .await?;
    store.create(engine, "bench-changed", Kind::Manual, 50)?;
    let inc = target
        .upload(UploadSpec {
            dir: &store.dir("bench-changed"),
            files: &files_of("bench-changed")?,
            name: "incremental",
            sequence: engine.db().latest_sequence_number(),
            full: false,
            encrypt: false,
            now_ms: 3,
            history: Some(history),
        })
        .await?;
    flush_all()?;
    let t = Instant::now();
    target.download(&full, &dir.join("restored")).await?;
    flush_all()?;
    let restore_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let v = target.verify(&full, 1.0).await?;
    flush_all()?;
    let verify_s = t.elapsed().as_secs_f64();
    if !v.ok {
        return Err(Error::corruption(format!(
            "bench backup failed verification: {:?}",
            v.bad
        )));
    }
    let mut out = vec![
        ("backup_mb", "(h) checkpoint backed up", mb, "MB"),
        (
            "backup_full_mb_s",
            "(h) full backup to a local target",
            mb / backup_s,
            "MB/s",
        ),
        (
            "backup_incremental_ratio",
            "(h) WAL incremental after 1% of vectors changed ÷ full (bytes uploaded)",
            inc_wal.total_bytes as f64 / full.uploaded_bytes.max(1) as f64,
            "ratio",
        ),
        (
            "backup_incremental_files_ratio",
            "(h) files incremental after 1% of vectors changed ÷ full (bytes uploaded)",
            inc.uploaded_bytes as f64 / full.uploaded_bytes.max(1) as f64,
            "ratio",
        ),
        (
            "backup_restore_mb_s",
            "(h) restore from the local target",
            mb / restore_s,
            "MB/s",
        ),
        (
            "backup_verify_mb_s",
            "(h) verify --read-data",
            mb / verify_s,
            "MB/s",
        ),
    ];
    // restic 0.14 (Debian package restic) on the same checkpoint.
    let repo = dir.join("restic");
    let repo_s = repo.display().to_string();
    let env = [
        ("RESTIC_PASSWORD", "bench"),
        ("RESTIC_REPOSITORY", repo_s.as_str()),
    ];
    let snap_s = snap.display().to_string();
    let restored = dir.join("restic-restored").display().to_string();
    if timed("restic", &["init"], &env)?.is_some() {
        let b = timed_synced("restic", &["backup", &snap_s], &env)?.unwrap_or_default();
        let r = timed_synced(
            "restic",
            &["restore", "latest", "--target", &restored],
            &env,
        )?
        .unwrap_or_default();
        let c = timed_synced("restic", &["check", "--read-data"], &env)?.unwrap_or_default();
        let (rb, rr, rc) = (
            mb / b.as_secs_f64(),
            mb / r.as_secs_f64(),
            mb / c.as_secs_f64(),
        );
        out.extend([
            (
                "restic_backup_mb_s",
                "(h) restic 0.14 backup, same checkpoint",
                rb,
                "MB/s",
            ),
            ("restic_restore_mb_s", "(h) restic restore", rr, "MB/s"),
            (
                "restic_check_mb_s",
                "(h) restic check --read-data",
                rc,
                "MB/s",
            ),
            (
                "backup_vs_restic",
                "(h) backup ÷ restic backup",
                (mb / backup_s) / rb,
                "ratio",
            ),
            (
                "restore_vs_restic",
                "(h) restore ÷ restic restore",
                (mb / restore_s) / rr,
                "ratio",
            ),
            (
                "verify_vs_restic",
                "(h) verify --read-data ÷ restic check --read-data",
                (mb / verify_s) / rc,
                "ratio",
            ),
        ]);
    } else {
        eprintln!("restic is not installed (apt-get install restic): (h) has no comparison");
    }
    Ok(out)
}
