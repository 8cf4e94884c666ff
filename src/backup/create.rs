//! `backup create`: a checkpoint of its own in `<data>/backup-staging/`,
//! its exact sequence from a read-only open, uploaded as files — or, by
//! `--method auto|wal`, a WAL-based incremental ([`super::incremental`]),
//! with `auto` falling back to files when the WAL is no good (too big, gone,
//! damaged, of another history; `why_not_wal` says which).

use std::path::Path;
use std::time::Instant;

use serde_json::{json, Value};

use super::archiver::mark_archive_encrypted;
use super::incremental::wal_incremental;
use super::params::{CreateParams, Method};
use super::service::{blocking, staging_root, summary, target_with, Ctx};
use crate::backup;
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::snapshot;

pub(super) async fn create(c: &Ctx, p: CreateParams) -> Result<Value> {
    let started = Instant::now();
    let method = p.method;
    if p.full && method == Method::Wal {
        return Err(Error::invalid(
            "a full backup uploads files; method wal is for incremental backups",
        ));
    }
    let encrypt = p.encrypt || c.config.backup.encrypt;
    let t = target_with(c, p.destination.as_deref(), encrypt)?;
    let name = p
        .name
        .clone()
        .unwrap_or_else(|| snapshot::default_name("backup", SystemClock.now_ms()));
    if t.exists(&name).await? {
        return Err(Error::exists(format!(
            "backup {name:?} already exists in {}",
            t.url
        )));
    }
    if encrypt {
        mark_archive_encrypted(c, &t).await?;
    }
    let mut why_files = None;
    if !p.full && method != Method::Files {
        match wal_incremental(c, &t, &name, encrypt, method == Method::Wal).await {
            Ok(Ok(m)) => {
                let mut v = summary(&m);
                v["destination"] = json!(t.url);
                v["duration_ms"] = json!(started.elapsed().as_secs_f64() * 1000.0);
                return Ok(v);
            }
            Ok(Err(why)) => why_files = Some(why),
            Err(e) if method == Method::Wal => {
                return Err(e.context("a WAL-based incremental backup"))
            }
            Err(e) => {
                // Not routine (a gap or a damaged segment in the archive,
                // the archive unreachable, another history): worth an
                // alert, though this backup goes on with files.
                c.board.record_error(
                    "backup",
                    &format!(
                        "backup {name}: a WAL-based incremental was not possible, so it \
                         uploads files instead: {e}"
                    ),
                );
                why_files = Some(e.message)
            }
        }
    }
    let stage = staging_root(&c.config).join(&name);
    let (c2, stage2) = (c.clone(), stage.clone());
    // Checkpoint, exact sequence from a read-only open, CRC32C per file.
    let cut = blocking(move || {
        let _ = std::fs::remove_dir_all(&stage2);
        if let Some(parent) = stage2.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| Error::io(format!("{}: {e}", parent.display())))?;
        }
        let engine = c2.slot.get()?;
        let history = engine.history().to_string();
        rocksdb::checkpoint::Checkpoint::new(engine.db())?
            .create_checkpoint(&stage2)
            .map_err(|e| Error::from(e).context("backup checkpoint"))?;
        drop(engine);
        let sequence = checkpoint_sequence(&stage2, &c2.config)?;
        let files = store_files(&stage2)?
            .into_iter()
            .map(|f| (f.name, f.crc32c))
            .collect::<Vec<_>>();
        Ok((sequence, files, history))
    })
    .await;
    let result = match cut {
        Ok((sequence, files, history)) => {
            t.upload(backup::UploadSpec {
                dir: &stage,
                files: &files,
                name: &name,
                sequence,
                full: p.full,
                encrypt,
                now_ms: SystemClock.now_ms(),
                history: Some(history),
            })
            .await
        }
        Err(e) => Err(e),
    };
    let _ = std::fs::remove_dir_all(&stage);
    let m = result?;
    let mut v = summary(&m);
    v["destination"] = json!(t.url);
    v["duration_ms"] = json!(started.elapsed().as_secs_f64() * 1000.0);
    v["mb_per_s"] = json!(m.total_bytes as f64 / 1e6 / started.elapsed().as_secs_f64().max(1e-9));
    if let Some(why) = why_files {
        v["why_not_wal"] = json!(why);
    }
    Ok(v)
}

/// The last sequence of a checkpoint, from a read-only open.
pub(super) fn checkpoint_sequence(dir: &Path, config: &Config) -> Result<u64> {
    Ok(crate::engine::open_read_only(dir, config)?.latest_sequence_number())
}

/// The files of a store directory (checkpoint or restored store), sorted,
/// each with its size and CRC32C; RocksDB's `LOCK` and info logs and a
/// snapshot manifest are not part of the store.
pub(super) fn store_files(dir: &Path) -> Result<Vec<snapshot::FileEntry>> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(format!("{}: {e}", dir.display())))?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != snapshot::MANIFEST && n != "LOCK" && !n.starts_with("LOG"))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|name| {
            let (crc, size) = crate::fs::crc32c_file(&dir.join(&name))
                .map_err(|e| Error::io(format!("{name}: {e}")))?;
            Ok(snapshot::FileEntry {
                name,
                size,
                crc32c: format!("{crc:08x}"),
            })
        })
        .collect()
}
