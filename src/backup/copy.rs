//! `backup copy`: replicate what a second location lacks — objects, WAL
//! segments, then manifests last — so a copied backup is visible there
//! only when complete. Run it again and it copies nothing.

use std::collections::HashSet;

use serde_json::{json, Value};

use super::params::CopyParams;
use super::service::{open_target, target, Ctx};
use crate::backup::{self, BackupManifest};
use crate::clock::{iso_ms, Clock, SystemClock};
use crate::error::{Error, Result};

/// Copy what `to` lacks: objects, then WAL segments, then manifests (last,
/// so a copied backup is visible only when complete).
pub(super) async fn copy_backups(c: &Ctx, p: CopyParams) -> Result<Value> {
    let from = target(c, p.from.as_deref())?;
    let to = open_target(c, &p.to)?;
    let mut wanted: Vec<BackupManifest> = match &p.name {
        Some(n) => vec![from.manifest(n).await?],
        None => from.list().await?,
    };
    // A WAL-based backup needs its base there too (copied first).
    let mut bases = Vec::new();
    for m in &wanted {
        if let Some(b) = &m.base {
            if !wanted.iter().any(|w| &w.name == b)
                && !bases.iter().any(|x: &BackupManifest| &x.name == b)
            {
                bases.push(from.manifest(b).await?);
            }
        }
    }
    bases.append(&mut wanted);
    let wanted = bases;
    // One archive holds one store history.
    let (src_archive, dst_archive) = (
        backup::wal::Archive::new(&from),
        backup::wal::Archive::new(&to),
    );
    match (src_archive.history().await?, dst_archive.history().await?) {
        (Some(a), Some(b)) if a != b => {
            return Err(Error::invalid(format!(
                "the WAL archive in {} is of another store history than the one in {}; copy to a new location",
                to.url, from.url
            )))
        }
        (Some(a), None) => dst_archive.set_history(&a).await?,
        _ => {}
    }
    // An encrypted archive stays encrypted in its copy too.
    if src_archive.is_encrypted().await? && !dst_archive.is_encrypted().await? {
        dst_archive
            .mark_encrypted(&iso_ms(SystemClock.now_ms()))
            .await?;
    }
    let have_objects = to.existing_objects().await?;
    let mut copied_objects = 0u64;
    let mut copied_bytes = 0u64;
    let mut copied = Vec::new();
    for m in &wanted {
        if m.is_sealed() {
            return Err(Error::invalid(format!(
                "backup {:?} is encrypted and the keyring is not available; nothing was copied for it",
                m.name
            )));
        }
        if to.exists(&m.name).await? {
            if to.manifest_clear(&m.name).await?.checksum != m.checksum {
                return Err(Error::exists(format!(
                    "{} holds another backup named {:?}; nothing was copied for it",
                    to.url, m.name
                )));
            }
            continue;
        }
        for f in &m.files {
            let o = f.object();
            if have_objects.contains(&o) {
                continue;
            }
            let body = from.get_object(&o).await?;
            copied_bytes += body.len() as u64;
            to.put_object(&o, body).await?;
            copied_objects += 1;
        }
        copied.push(m.name.clone());
    }
    // END before the listing: an archiving pass writes its segment, then
    // END, so every segment up to the END read is in the listing after it.
    let src_end = src_archive.end().await?;
    let src_wal = src_archive.segments().await?;
    let dst_wal: HashSet<String> = dst_archive
        .segments()
        .await?
        .into_iter()
        .map(|s| s.object)
        .collect();
    let mut copied_segments = 0u64;
    for s in src_wal.iter().filter(|s| !dst_wal.contains(&s.object)) {
        let body = from.get_object(&s.object).await?;
        copied_bytes += body.len() as u64;
        to.put_object(&s.object, body).await?;
        copied_segments += 1;
    }
    // Where the archive starts and ends goes with it.
    if let (Some(start), None) = (src_archive.start().await?, dst_archive.start().await?) {
        dst_archive.set_start(start).await?;
    }
    if let Some(end) = src_end {
        let dst_end = dst_archive.end().await?;
        if dst_end.is_none_or(|d| d.last <= end.last) {
            dst_archive.set_end(&end).await?;
        }
    }
    // A WAL-based backup's own segments, each present with its size.
    for m in wanted.iter().filter(|m| copied.contains(&m.name)) {
        for w in &m.wal {
            if to.check_size(&w.object, w.size).await?.is_none() {
                continue;
            }
            let body = from.get_object(&w.object).await?;
            if body.len() as u64 != w.size {
                return Err(Error::corruption(format!(
                    "WAL segment {} in {} is {} bytes, backup {:?} says {}; nothing more was copied",
                    w.object,
                    from.url,
                    body.len(),
                    m.name,
                    w.size
                )));
            }
            copied_bytes += body.len() as u64;
            to.put_object(&w.object, body).await?;
            copied_segments += 1;
        }
    }
    for name in &copied {
        let body = from.get_object(&format!("backups/{name}.json")).await?;
        let m = BackupManifest::decode(name, &body)?;
        to.put_object(&format!("backups/{name}.json"), body).await?;
        to.catalog_add(name, &m.checksum).await?;
    }
    Ok(
        json!({"from": from.url, "to": to.url, "copied_backups": copied,
        "copied_objects": copied_objects, "copied_segments": copied_segments, "copied_bytes": copied_bytes}),
    )
}
