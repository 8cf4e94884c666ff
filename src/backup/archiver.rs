//! The WAL archiver: one pass ships the committed batches not yet archived
//! as one segment ([`super::wal::Archive::pass`]). It resumes after the
//! last archived sequence; on an empty archive after its recorded start
//! (`wal/START`), which is set on the first pass to the newest backup's
//! sequence (or the store's latest). A pass refuses an archive of another
//! store history, and encryption of an archive is sticky. Also `wal replay`:
//! archived batches read back as change events.

use serde_json::{json, Value};

use super::params::WalReplayParams;
use super::service::{target, Ctx};
use crate::backup::{self, Target};
use crate::clock::{iso_ms, Clock, SystemClock};
use crate::error::{Error, Result};

/// Where the last archiving pass to a location ended.
#[derive(Debug, Clone)]
pub(super) struct ArchiveCursor {
    url: String,
    history: String,
    sequence: u64,
    /// The archive's newest segment is encrypted: every later one is too.
    encrypted: bool,
}

/// Where archiving to `t` continues from, and whether its newest segment is
/// encrypted.
pub(super) async fn archive_start(
    t: &Target,
    engine: &crate::engine::Engine,
    history: &str,
) -> Result<(u64, bool)> {
    let archive = backup::wal::Archive::new(t);
    match archive.history().await? {
        Some(h) if h != history => {
            return Err(Error::invalid(format!(
                "the WAL archive in {} is of another store history ({h}; the store is {history}): the store was restored since, or another store archives there; archive to a new location",
                t.url
            )))
        }
        Some(_) => {}
        None => archive.set_history(history).await?,
    }
    let encrypted = archive.is_encrypted().await?;
    if let Some(newest) = archive.segments().await?.iter().max_by_key(|s| s.last) {
        return Ok((newest.last, encrypted || newest.object.ends_with(".eseg")));
    }
    if let Some(start) = archive.start().await? {
        return Ok((start, encrypted));
    }
    let start = match t.list().await?.pop() {
        Some(b) => b.sequence,
        None => engine.db().latest_sequence_number(),
    };
    archive.set_start(start).await?;
    Ok((start, encrypted))
}

/// An encrypted backup to `t`: from now on its WAL archive encrypts too
/// (the marker, and the cursor of this process's archiver).
pub(super) async fn mark_archive_encrypted(c: &Ctx, t: &Target) -> Result<()> {
    let mut last = c.archiving.lock().await;
    if last
        .as_ref()
        .is_some_and(|cur| cur.url == t.url && cur.encrypted)
    {
        return Ok(()); // marked (or found marked) already
    }
    backup::wal::Archive::new(t)
        .mark_encrypted(&iso_ms(SystemClock.now_ms()))
        .await?;
    if let Some(cur) = last.as_mut().filter(|cur| cur.url == t.url) {
        cur.encrypted = true;
    }
    Ok(())
}

/// One archiving pass to `t`.
/// `last`: where the previous pass to this process ended (the caller
/// holds the `archiving` lock). Encryption is sticky: once an encrypted
/// backup was made to the location (`wal/ENCRYPTED`) or the archive holds
/// an encrypted segment, later passes encrypt too, whatever `encrypt` says,
/// so turning encryption on for backups never leaves later WAL in plaintext.
pub(super) async fn archive_pass(
    c: &Ctx,
    t: &Target,
    last: &mut Option<ArchiveCursor>,
    encrypt: bool,
) -> Result<backup::wal::PassResult> {
    let started_ms = SystemClock.now_ms();
    let engine = c.slot.get()?;
    let history = engine.history().to_string();
    let (after, encrypted) = match last.as_ref() {
        Some(cur) if cur.url == t.url && cur.history == history => (cur.sequence, cur.encrypted),
        _ => archive_start(t, &engine, &history).await?,
    };
    let encrypt = encrypt || encrypted;
    if encrypt && !encrypted {
        backup::wal::Archive::new(t)
            .mark_encrypted(&iso_ms(SystemClock.now_ms()))
            .await?;
    }
    if encrypt && t.keyring.is_none() {
        return Err(Error::invalid(format!(
            "the WAL archive in {} is encrypted, and the keyring ({}) is missing: restore it \
             before archiving continues",
            t.url,
            c.locations.keyring_path().display()
        )));
    }
    let latest = engine.db().latest_sequence_number();
    if after > latest {
        return Err(Error::invalid(format!(
            "the archive in {} reaches sequence {after} but the store is at {latest}: the store was restored to an earlier point; archive to a new location",
            t.url
        )));
    }
    let r = backup::wal::Archive { target: t, encrypt }
        .pass(engine, after)
        .await?;
    *last = Some(ArchiveCursor {
        url: t.url.clone(),
        history,
        sequence: r.to_sequence,
        encrypted: encrypted || encrypt,
    });
    c.board.update_backup(|record| {
        record.wal_archive = Some(crate::status::WalArchiveRecord {
            location: t.url.clone(),
            archived_sequence: r.to_sequence,
            store_sequence: latest,
            lag_sequences: latest.saturating_sub(r.to_sequence),
            last_pass_at: iso_ms(SystemClock.now_ms()),
            last_pass_bytes: r.bytes,
            // Everything committed before this pass started is archived now.
            last_pass_started_ms: started_ms,
        });
    });
    Ok(r)
}

pub(super) async fn wal_replay(c: &Ctx, p: WalReplayParams) -> Result<Value> {
    let t = target(c, p.from.as_deref())?;
    let engine = c.slot.get()?;
    let mut n = 0usize;
    let limit = p.limit.max(1);
    let (batches, reached, _) = backup::wal::Archive::new(&t)
        .batches(p.from_sequence, |b| {
            n += b.count as usize;
            n <= limit || n == b.count as usize
        })
        .await?;
    let mut events = Vec::new();
    for b in &batches {
        let wb = crate::cdc::WalBatch {
            sequence: b.sequence,
            count: b.count,
            commit_ms: Some(b.commit_ms),
            data: b.data.clone(),
        };
        crate::cdc::events_of(
            &engine,
            &wb,
            p.from_sequence,
            &Default::default(),
            &mut events,
        )?;
    }
    Ok(
        json!({"from": t.url, "from_sequence": p.from_sequence, "next_sequence": reached,
        "events": events, "count": events.len()}),
    )
}
