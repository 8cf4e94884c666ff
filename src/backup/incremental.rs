//! A WAL-based incremental backup: archive the WAL up to the store's
//! sequence, then record the segments from the base backup (the newest
//! with files) to it. `auto` takes it while the WAL since the base is under
//! half the base's size.

use super::archiver::archive_pass;
use super::service::Ctx;
use crate::backup::{self, BackupManifest, Target};
use crate::clock::{Clock, SystemClock};
use crate::error::{Error, Result};

/// A WAL-based incremental: archive the WAL up to the store's current
/// sequence, then record the segments from the base backup to it.
/// `Ok(Err(why))`: possible, but `auto` prefers files (the WAL since the
/// base is over half the base's size).
pub(super) async fn wal_incremental(
    c: &Ctx,
    t: &Target,
    name: &str,
    encrypt: bool,
    forced: bool,
) -> Result<std::result::Result<BackupManifest, String>> {
    let backups = t.list().await?;
    let Some(parent) = backups.last() else {
        let why = format!(
            "no backup in {} to build on; the first backup uploads files",
            t.url
        );
        // The normal first run for `auto`; an error only when WAL was asked for.
        return if forced {
            Err(Error::not_found(why))
        } else {
            Ok(Err(why))
        };
    };
    if parent.is_sealed() {
        return Err(Error::invalid(format!(
            "backup {:?} is encrypted and the keyring is not available",
            parent.name
        )));
    }
    let base_name = parent.base.clone().unwrap_or_else(|| parent.name.clone());
    let base = backups
        .iter()
        .find(|b| b.name == base_name)
        .ok_or_else(|| Error::not_found(format!("base backup {base_name:?} is missing")))?;
    if encrypt != base.encryption.is_some() {
        return Err(Error::invalid(format!(
            "base backup {:?} is {}encrypted and this one would {}be",
            base.name,
            if base.encryption.is_some() {
                ""
            } else {
                "not "
            },
            if encrypt { "" } else { "not " }
        )));
    }
    let (upto, history) = {
        let engine = c.slot.get()?;
        (
            engine.db().latest_sequence_number(),
            engine.history().to_string(),
        )
    };
    if base.history.as_deref() != Some(history.as_str()) {
        return Err(Error::invalid(format!(
            "base backup {:?} is of another store history (the store was restored since it was made)",
            base.name
        )));
    }
    let mut known = std::collections::HashMap::new();
    let (mut uploaded_bytes, mut uploaded_objects) = (0, 0);
    let wal = {
        let mut last = c.archiving.lock().await;
        loop {
            let r = archive_pass(c, t, &mut last, encrypt).await?;
            if let (Some(o), Some(h)) = (&r.segment, &r.sha256) {
                known.insert(o.clone(), h.clone());
                uploaded_bytes += r.bytes;
                uploaded_objects += 1;
            }
            if r.to_sequence >= upto {
                break;
            }
            if r.batches == 0 {
                return Err(Error::unavailable(format!(
                    "the WAL archive stops at sequence {} before the store's {upto}",
                    r.to_sequence
                )));
            }
        }
        backup::wal::Archive::new(t)
            .cover(base.sequence, upto)
            .await?
    };
    if encrypt {
        if let Some(w) = wal.iter().find(|w| !w.object.ends_with(".eseg")) {
            return Err(Error::invalid(format!(
                "WAL segment {} was archived without encryption",
                w.object
            )));
        }
    }
    let wal_bytes: u64 = wal.iter().map(|w| w.size).sum();
    if !forced && wal_bytes.saturating_mul(2) > base.total_bytes {
        return Ok(Err(format!(
            "the WAL since base backup {:?} is {wal_bytes} bytes, over half of its {} bytes",
            base.name, base.total_bytes
        )));
    }
    let wal = backup::wal::Archive::new(t).vouch(wal, &known).await?;
    t.commit_wal(backup::WalBackupSpec {
        name,
        parent,
        base,
        sequence: upto,
        wal,
        uploaded_bytes,
        uploaded_objects,
        encrypt,
        now_ms: SystemClock.now_ms(),
        history,
    })
    .await
    .map(Ok)
}
