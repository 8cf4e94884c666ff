//! `backup verify` of a whole location: everything a restore will read.
//!
//! - the catalog (`backups/CATALOG`) and every manifest: a manifest that is
//!   damaged, or in the catalog but gone, makes its backup unrestorable;
//! - every backup's objects (present with their size; with read-data
//!   downloaded, decoded and checked against their SHA-256), see
//!   [`Target::verify`];
//! - the WAL archive: its markers readable (each carries its own SHA-256),
//!   `HISTORY`, `START` and `END` present once there are segments and
//!   `HISTORY` the history of the backups that rely on it, `ENCRYPTED`
//!   present once anything is encrypted, the segments contiguous from
//!   `START` to `END`, and with read-data every segment decoded (its own
//!   SHA-256, and its seal when encrypted).
//!
//! Each problem names the object and what it breaks.

use std::collections::BTreeMap;

use futures::stream::{self, StreamExt};
use serde::Serialize;

use super::catalog::CATALOG;
use super::wal::{self, Archive, Segment};
use super::{BackupManifest, Target, PARALLEL};
use crate::error::{ErrorKind, Result};

/// One problem: the object, what is wrong, what it breaks.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Problem {
    pub object: String,
    /// What the object holds (a file of a backup, a WAL range, a marker).
    pub file: String,
    pub problem: String,
    /// What a restore can no longer do because of it.
    pub breaks: String,
}

/// What the archive holds.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ArchiveSummary {
    pub segments: usize,
    /// The archive covers `start + 1 ..= end` (None: no archive).
    pub start: Option<u64>,
    pub end: Option<u64>,
    pub history: Option<String>,
    pub encrypted: bool,
}

/// The result of verifying a location.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditReport {
    pub location: String,
    /// The one backup asked for (None: every backup).
    pub name: Option<String>,
    pub ok: bool,
    pub read_data: bool,
    pub backups: Vec<String>,
    pub files_checked: usize,
    pub segments_checked: usize,
    pub bytes_read: u64,
    pub archive: ArchiveSummary,
    pub bad: Vec<Problem>,
    pub seconds: f64,
}

impl Target {
    /// Verify the location (every backup, or `only` and its base) and the
    /// WAL archive; `read_fraction` (0..=1) of the data is downloaded.
    pub async fn audit(&self, only: Option<&str>, read_fraction: f64) -> Result<AuditReport> {
        let started = std::time::Instant::now();
        let mut bad: Vec<Problem> = Vec::new();
        let (manifests, mut names) = self.manifests_checked(only, &mut bad).await?;
        if names.is_empty()
            && bad.is_empty()
            && only.is_none()
            && Archive::new(self).segments().await?.is_empty()
        {
            return Err(crate::error::Error::not_found(format!(
                "no backups in {}",
                self.url
            )));
        }
        let mut files_checked = 0;
        let mut bytes_read = 0;
        // Objects shared by several backups are reported once, with every
        // backup they break.
        let mut objects: BTreeMap<String, Problem> = BTreeMap::new();
        for m in &manifests {
            let r = self.verify(m, read_fraction).await?;
            files_checked += r.files_checked;
            bytes_read += r.bytes_read;
            for b in r.bad {
                let p = objects.entry(b.object.clone()).or_insert_with(|| Problem {
                    object: b.object.clone(),
                    file: b.file.clone(),
                    problem: b.problem.clone(),
                    breaks: String::new(),
                });
                add_break(&mut p.breaks, &format!("backup {} unrestorable", m.name));
            }
        }
        bad.extend(objects.into_values());
        let (archive, segments_checked, archive_bytes) = self
            .audit_archive(&manifests, read_fraction, &mut bad)
            .await?;
        bytes_read += archive_bytes;
        names.sort();
        Ok(AuditReport {
            location: self.url.clone(),
            name: only.map(str::to_string),
            ok: bad.is_empty(),
            read_data: read_fraction > 0.0,
            backups: names,
            files_checked,
            segments_checked,
            bytes_read,
            archive,
            bad,
            seconds: started.elapsed().as_secs_f64(),
        })
    }

    /// The manifests that read (every backup, or `only` and its base), each
    /// one that does not — or that the catalog lists but is gone — a problem.
    async fn manifests_checked(
        &self,
        only: Option<&str>,
        bad: &mut Vec<Problem>,
    ) -> Result<(Vec<BackupManifest>, Vec<String>)> {
        let listed = self.manifest_names().await?;
        let catalog = match self.catalog().await {
            Ok(c) => c,
            Err(e) => {
                bad.push(Problem {
                    object: CATALOG.into(),
                    file: "the catalog of backups".into(),
                    problem: e.message,
                    breaks: "a lost manifest can no longer be noticed".into(),
                });
                None
            }
        };
        match &catalog {
            Some(entries) => {
                let (mut missing, mut unlisted) = catalog_gaps(entries, &listed);
                if !missing.is_empty() || !unlisted.is_empty() {
                    // A backup or prune running alongside writes manifests
                    // and the catalog one after the other: a gap counts
                    // only when a second reading shows it too.
                    let again = self.manifest_names().await?;
                    if let Ok(Some(entries)) = self.catalog().await {
                        let (m2, u2) = catalog_gaps(&entries, &again);
                        missing.retain(|n| m2.contains(n));
                        unlisted.retain(|n| u2.contains(n));
                    }
                }
                for name in missing.iter().filter(|n| only.is_none_or(|o| o == *n)) {
                    bad.push(Problem {
                        object: format!("backups/{name}.json"),
                        file: format!("the manifest of backup {name}"),
                        problem: "missing (the catalog lists it)".into(),
                        breaks: format!("backup {name} unrestorable"),
                    });
                }
                for n in unlisted {
                    bad.push(Problem {
                        object: CATALOG.into(),
                        file: "the catalog of backups".into(),
                        problem: format!(
                            "backup {n} is not in it (its catalog update was interrupted, or \
                             the catalog lost it)"
                        ),
                        breaks: "a lost manifest can no longer be noticed".into(),
                    });
                }
            }
            None if !listed.is_empty() && bad.iter().all(|p| p.object != CATALOG) => {
                bad.push(Problem {
                    object: CATALOG.into(),
                    file: "the catalog of backups".into(),
                    problem: "missing".into(),
                    breaks: "a lost manifest can no longer be noticed".into(),
                });
            }
            None => {}
        }
        let wanted: Vec<String> = match only {
            Some(n) => vec![n.to_string()],
            None => listed.clone(),
        };
        let mut out = Vec::new();
        for name in &wanted {
            match self.manifest(name).await {
                Ok(m) => out.push(m),
                Err(e) if e.kind == ErrorKind::InvalidInput && e.message.contains("keyring") => {
                    return Err(e)
                }
                Err(e) => bad.push(Problem {
                    object: format!("backups/{name}.json"),
                    file: format!("the manifest of backup {name}"),
                    problem: e.message,
                    breaks: format!("backup {name} unrestorable"),
                }),
            }
        }
        let checksums: BTreeMap<&str, &str> = catalog
            .iter()
            .flatten()
            .map(|e| (e.name.as_str(), e.checksum.as_str()))
            .collect();
        for m in &out {
            if let Some(want) = checksums.get(m.name.as_str()).filter(|c| **c != m.checksum) {
                bad.push(Problem {
                    object: format!("backups/{}.json", m.name),
                    file: format!("the manifest of backup {}", m.name),
                    problem: format!(
                        "its checksum {} is not the catalog's {want}: it was replaced",
                        m.checksum
                    ),
                    breaks: format!("backup {} may not be the backup that was made", m.name),
                });
            }
        }
        Ok((out, listed))
    }

    /// The archive's markers, contiguity and (with read-data) segments.
    async fn audit_archive(
        &self,
        manifests: &[BackupManifest],
        read_fraction: f64,
        bad: &mut Vec<Problem>,
    ) -> Result<(ArchiveSummary, usize, u64)> {
        let archive = Archive::new(self);
        // END before the listing (an archiving pass writes its segment, then
        // END: every segment up to the END read is listed after it), START
        // after it (prune moves START, then deletes the segments below it).
        let end = archive.end().await;
        let segments = archive.segments().await?;
        fn marker_problem(bad: &mut Vec<Problem>, name: &str, problem: String, breaks: &str) {
            bad.push(Problem {
                object: format!("wal/{name}"),
                file: format!("the archive's {name} marker"),
                problem,
                breaks: breaks.to_string(),
            })
        }
        let pitr = "point-in-time restores from this archive are refused";
        let history = match archive.history().await {
            Ok(h) => h,
            Err(e) => {
                marker_problem(bad, wal::HISTORY, e.message, pitr);
                None
            }
        };
        let start = match archive.start().await {
            Ok(s) => s,
            Err(e) => {
                marker_problem(
                    bad,
                    wal::START,
                    e.message,
                    "where the archive begins is unknown",
                );
                None
            }
        };
        let end = match end {
            Ok(e) => e,
            Err(e) => {
                marker_problem(bad, wal::END, e.message, pitr);
                None
            }
        };
        let encrypted = match archive.is_encrypted().await {
            Ok(x) => x,
            Err(e) => {
                marker_problem(
                    bad,
                    wal::ENCRYPTED,
                    e.message,
                    "archiving stops (it cannot tell whether to encrypt)",
                );
                true
            }
        };
        let any_sealed = segments.iter().any(|s| s.object.ends_with(".eseg"))
            || manifests.iter().any(|m| m.encryption.is_some());
        if any_sealed && !encrypted {
            marker_problem(
                bad,
                wal::ENCRYPTED,
                "missing, though the location holds encrypted backups or segments".into(),
                "later archiving passes could write WAL in plaintext",
            );
        }
        if !segments.is_empty() {
            for (name, present) in [
                (wal::HISTORY, history.is_some()),
                (wal::START, start.is_some()),
                (wal::END, end.is_some()),
            ] {
                let damaged = bad.iter().any(|p| p.object == format!("wal/{name}"));
                if !present && !damaged {
                    marker_problem(bad, name, "missing".into(), pitr);
                }
            }
        }
        // Backups the archive rolls forward must be of its history.
        if let Some(h) = &history {
            for m in manifests.iter().filter(|m| m.is_wal()) {
                if m.history.as_ref().is_some_and(|mh| mh != h) {
                    bad.push(Problem {
                        object: format!("wal/{}", wal::HISTORY),
                        file: "the archive's HISTORY marker".into(),
                        problem: format!(
                            "the archive is of history {h}, WAL-based backup {} of {}",
                            m.name,
                            m.history.as_deref().unwrap_or("?")
                        ),
                        breaks: format!("backup {} unrestorable", m.name),
                    });
                }
            }
        }
        // Contiguous from START to END.
        let (from, to) = (start.unwrap_or(0), end.as_ref().map(|e| e.last));
        let mut next = from + 1;
        let mut covered: Vec<&Segment> = Vec::new();
        for s in &segments {
            if s.last < next {
                continue;
            }
            if s.first > next {
                bad.push(gap(next, s.first - 1, manifests));
            }
            next = next.max(s.last + 1);
            covered.push(s);
        }
        if let Some(to) = to {
            if next <= to {
                let last = end.as_ref().map(|e| e.segment.clone()).unwrap_or_default();
                let mut p = gap(next, to, manifests);
                p.problem = format!(
                    "the segments end at sequence {} but wal/END says {to} ({last})",
                    next - 1
                );
                bad.push(p);
            }
        }
        // With read-data: every segment decoded (its SHA-256 and seal).
        let keyring = self.keyring.clone();
        let sampled: Vec<&Segment> = covered
            .iter()
            .copied()
            .filter(|s| read_fraction >= 1.0 || sample(&s.object) < read_fraction)
            .filter(|_| read_fraction > 0.0)
            .collect();
        let checked = stream::iter(sampled)
            .map(|s| {
                let keyring = keyring.clone();
                async move {
                    match self.get_object(&s.object).await {
                        Ok(body) => {
                            let n = body.len() as u64;
                            let e = wal::decode(keyring.as_deref(), &s.object, &body).err();
                            (s, e.map(|e| e.message), n)
                        }
                        Err(e) => (s, Some(e.message), 0),
                    }
                }
            })
            .buffer_unordered(PARALLEL)
            .collect::<Vec<_>>()
            .await;
        let mut bytes = 0;
        for (s, problem, n) in &checked {
            bytes += n;
            if let Some(problem) = problem {
                bad.push(Problem {
                    object: s.object.clone(),
                    file: format!("WAL {}..={}", s.first, s.last),
                    problem: problem.clone(),
                    breaks: breaks_after(s.first - 1, manifests),
                });
            }
        }
        Ok((
            ArchiveSummary {
                segments: segments.len(),
                start,
                end: to,
                history,
                encrypted,
            },
            checked.len(),
            bytes,
        ))
    }
}

/// Sequences `a..=b` are not in the archive.
fn gap(a: u64, b: u64, manifests: &[BackupManifest]) -> Problem {
    Problem {
        object: "wal/".into(),
        file: format!("WAL {a}..={b}"),
        problem: format!("sequences {a}..={b} are missing from the archive"),
        breaks: breaks_after(a - 1, manifests),
    }
}

/// What a missing archive range starting after `seq` breaks.
fn breaks_after(seq: u64, manifests: &[BackupManifest]) -> String {
    let mut out = format!("PITR after sequence {seq} impossible");
    for m in manifests
        .iter()
        .filter(|m| m.is_wal() && m.wal.iter().any(|w| w.last > seq && w.first <= seq + 1))
    {
        add_break(&mut out, &format!("backup {} unrestorable", m.name));
    }
    out
}

fn add_break(breaks: &mut String, what: &str) {
    if !breaks.split("; ").any(|b| b == what) {
        if !breaks.is_empty() {
            breaks.push_str("; ");
        }
        breaks.push_str(what);
    }
}

/// A stable pseudo-random number in [0, 1) for an object (subset sampling).
fn sample(object: &str) -> f64 {
    let h = super::sha256(object.as_bytes());
    u32::from_str_radix(&h[..8], 16).unwrap_or(0) as f64 / (u32::MAX as f64 + 1.0)
}

/// Backups the catalog lists whose manifests are not listed, and manifests
/// listed that the catalog lacks.
fn catalog_gaps(
    entries: &[super::catalog::CatalogEntry],
    listed: &[String],
) -> (Vec<String>, Vec<String>) {
    let missing = entries
        .iter()
        .filter(|e| !listed.contains(&e.name))
        .map(|e| e.name.clone())
        .collect();
    let unlisted = listed
        .iter()
        .filter(|n| !entries.iter().any(|e| e.name == **n))
        .cloned()
        .collect();
    (missing, unlisted)
}
