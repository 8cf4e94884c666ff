//! `backup verify`: every object of a backup present with its size; with
//! read-data (or a share of it) downloaded, decoded and checked against its
//! SHA-256. Each bad object is named with the file it holds.

use futures::stream::{self, StreamExt, TryStreamExt};
use serde::Serialize;

use super::download::decode_object;
use super::{sha256, wal, BackupManifest, Target, PARALLEL};
use crate::error::Result;

/// A problem found by verify.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BadObject {
    pub object: String,
    pub file: String,
    pub problem: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    pub name: String,
    pub ok: bool,
    pub files_checked: usize,
    pub bytes_read: u64,
    pub read_data: bool,
    pub bad: Vec<BadObject>,
    pub seconds: f64,
}

impl Target {
    /// Check every object: present with the right size; with `read_fraction`
    /// (0..=1) that share of files is downloaded, decoded and checksummed.
    /// A WAL-based backup is checked with its base's files and its
    /// segments.
    pub async fn verify(&self, m: &BackupManifest, read_fraction: f64) -> Result<VerifyReport> {
        let started = std::time::Instant::now();
        let mut bad_base = None;
        let mut files = m.files.clone();
        if let Some(base) = &m.base {
            match self.manifest(base).await {
                Ok(b) => files.extend(b.files),
                Err(e) => {
                    bad_base = Some(BadObject {
                        object: format!("backups/{base}.json"),
                        file: format!("base backup {base}"),
                        problem: e.message,
                    })
                }
            }
        }
        let files_checked = files.len() + m.wal.len();
        let segments = stream::iter(m.wal.iter().cloned())
            .map(|w| async move {
                let bad = |problem: String| BadObject {
                    object: w.object.clone(),
                    file: format!("WAL {}..={}", w.first, w.last),
                    problem,
                };
                let read = read_fraction >= 1.0 || sample(&w.sha256) < read_fraction;
                if !read {
                    return self
                        .check_size(&w.object, w.size)
                        .await
                        .map(|p| (p.map(bad), 0));
                }
                let body = match self.get_object(&w.object).await {
                    Ok(b) => b,
                    Err(e) if e.kind == crate::error::ErrorKind::NotFound => {
                        return Ok((Some(bad("missing".into())), 0))
                    }
                    Err(e) => return Err(e),
                };
                let n = body.len() as u64;
                let got = sha256(&body);
                if got != w.sha256 {
                    return Ok((
                        Some(bad(format!(
                            "SHA-256 {got} does not match the manifest's {}",
                            w.sha256
                        ))),
                        n,
                    ));
                }
                let decoded = wal::decode(self.keyring.as_deref(), &w.object, &body);
                Ok((decoded.err().map(|e| bad(e.message)), n))
            })
            .buffer_unordered(PARALLEL)
            .try_collect::<Vec<(Option<BadObject>, u64)>>()
            .await?;
        let checks: Vec<(Option<BadObject>, u64)> = stream::iter(files)
            .map(|f| async move {
                let object = f.object();
                let bad = |problem: String| BadObject {
                    object: object.clone(),
                    file: f.name.clone(),
                    problem,
                };
                let read = read_fraction >= 1.0 || sample(&f.sha256) < read_fraction;
                if !read {
                    return self
                        .check_size(&object, f.stored_size)
                        .await
                        .map(|p| (p.map(bad), 0));
                }
                let body = match self.get_object(&object).await {
                    Ok(b) => b,
                    Err(e) if e.kind == crate::error::ErrorKind::NotFound => {
                        return Ok((Some(bad("missing".into())), 0))
                    }
                    Err(e) => return Err(e),
                };
                let n = body.len() as u64;
                Ok((decode_object(&f, body).err().map(|e| bad(e.message)), n))
            })
            .buffer_unordered(PARALLEL)
            .try_collect()
            .await?;
        let checks: Vec<(Option<BadObject>, u64)> = checks.into_iter().chain(segments).collect();
        let bytes_read = checks.iter().map(|(_, n)| n).sum();
        let bad: Vec<BadObject> = bad_base
            .into_iter()
            .chain(checks.into_iter().filter_map(|(b, _)| b))
            .collect();
        Ok(VerifyReport {
            name: m.name.clone(),
            ok: bad.is_empty(),
            files_checked,
            bytes_read,
            read_data: read_fraction > 0.0,
            bad,
            seconds: started.elapsed().as_secs_f64(),
        })
    }
}

/// A stable pseudo-random number in [0, 1) for a file (subset sampling).
fn sample(sha: &str) -> f64 {
    u32::from_str_radix(&sha[..8.min(sha.len())], 16).unwrap_or(0) as f64 / (u32::MAX as f64 + 1.0)
}
