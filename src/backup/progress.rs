//! Progress of the running backup operation, for `backup_status` (and the
//! CLI's progress bars, which poll it).
//!
//! One [`Progress`] per backup actor: backups, restores and drills run one
//! at a time (the actor's `busy` lock), so their phases never interleave.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use serde::{Deserialize, Serialize};

#[derive(Debug, Default)]
pub struct Progress {
    state: Mutex<State>,
    files_total: AtomicU64,
    files_done: AtomicU64,
    bytes_total: AtomicU64,
    bytes_done: AtomicU64,
}

#[derive(Debug, Default)]
struct State {
    /// The operation running and since when (None: idle).
    running: Option<(String, Instant)>,
    phase: String,
    /// The last operation's final figures.
    last: Option<Snapshot>,
}

/// What `backup_status` reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub operation: String,
    pub phase: String,
    pub files_done: u64,
    pub files_total: u64,
    pub bytes_done: u64,
    pub bytes_total: u64,
    pub elapsed_ms: u64,
}

impl Progress {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding this lock leaves plain data behind.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// An operation starts.
    pub fn begin(&self, operation: &str) {
        let mut s = self.state();
        s.running = Some((operation.to_string(), Instant::now()));
        s.phase = "starting".into();
        drop(s);
        self.phase("starting", 0, 0);
    }

    /// A new phase with its totals; the counters restart.
    pub fn phase(&self, phase: &str, files_total: u64, bytes_total: u64) {
        self.state().phase = phase.to_string();
        self.files_total.store(files_total, Ordering::Relaxed);
        self.bytes_total.store(bytes_total, Ordering::Relaxed);
        self.files_done.store(0, Ordering::Relaxed);
        self.bytes_done.store(0, Ordering::Relaxed);
    }

    /// One file (object, segment) of `bytes` is done.
    pub fn advance(&self, bytes: u64) {
        self.files_done.fetch_add(1, Ordering::Relaxed);
        self.bytes_done.fetch_add(bytes, Ordering::Relaxed);
    }

    /// `n` more items done (vectors of a re-encode).
    pub fn advance_items(&self, n: u64) {
        self.files_done.fetch_add(n, Ordering::Relaxed);
    }

    /// Bytes done within the current file (a long read reports as it goes).
    pub fn add_bytes(&self, bytes: u64) {
        self.bytes_done.fetch_add(bytes, Ordering::Relaxed);
    }

    /// The operation ended; its last phase's figures are kept as `last`.
    pub fn end(&self) {
        let mut s = self.state();
        let snap = Self::snapshot_of(self, &s);
        s.running = None;
        s.last = snap;
    }

    fn snapshot_of(&self, s: &State) -> Option<Snapshot> {
        let (operation, since) = s.running.as_ref()?;
        Some(Snapshot {
            operation: operation.clone(),
            phase: s.phase.clone(),
            files_done: self.files_done.load(Ordering::Relaxed),
            files_total: self.files_total.load(Ordering::Relaxed),
            bytes_done: self.bytes_done.load(Ordering::Relaxed),
            bytes_total: self.bytes_total.load(Ordering::Relaxed),
            elapsed_ms: since.elapsed().as_millis() as u64,
        })
    }

    /// (running operation, last finished one).
    pub fn report(&self) -> (Option<Snapshot>, Option<Snapshot>) {
        let s = self.state();
        (self.snapshot_of(&s), s.last.clone())
    }
}

/// One line for a terminal: `restore · downloading [=====>    ] 52%  12/23 files  80.1/153.9 MB  41.2 MB/s`.
pub fn render(s: &Snapshot, width: usize) -> String {
    let fraction = if s.bytes_total > 0 {
        s.bytes_done as f64 / s.bytes_total as f64
    } else if s.files_total > 0 {
        s.files_done as f64 / s.files_total as f64
    } else {
        0.0
    }
    .clamp(0.0, 1.0);
    let filled = (fraction * width as f64).round() as usize;
    let bar: String = (0..width)
        .map(|i| match i.cmp(&filled) {
            std::cmp::Ordering::Less => '=',
            std::cmp::Ordering::Equal if filled < width => '>',
            _ => ' ',
        })
        .collect();
    let secs = (s.elapsed_ms as f64 / 1000.0).max(1e-3);
    format!(
        "{} · {} [{bar}] {:>3.0}%  {}/{} files  {:.1}/{:.1} MB  {:.1} MB/s",
        s.operation,
        s.phase,
        fraction * 100.0,
        s.files_done,
        s.files_total,
        s.bytes_done as f64 / 1e6,
        s.bytes_total as f64 / 1e6,
        s.bytes_done as f64 / 1e6 / secs,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_phases_and_keeps_the_last_operation() {
        let p = Progress::default();
        assert_eq!(p.report(), (None, None));
        p.begin("backup_restore");
        p.phase("downloading", 2, 300);
        p.advance(100);
        let (now, _) = p.report();
        let now = now.unwrap();
        assert_eq!(
            (now.phase.as_str(), now.files_done, now.bytes_done),
            ("downloading", 1, 100)
        );
        p.advance(200);
        p.end();
        let (now, last) = p.report();
        assert!(now.is_none());
        let last = last.unwrap();
        assert_eq!(
            (last.operation.as_str(), last.files_done, last.bytes_done),
            ("backup_restore", 2, 300)
        );
    }

    #[test]
    fn renders_a_bar_in_proportion() {
        let s = Snapshot {
            operation: "backup_create".into(),
            phase: "uploading".into(),
            files_done: 1,
            files_total: 4,
            bytes_done: 50_000_000,
            bytes_total: 100_000_000,
            elapsed_ms: 2000,
        };
        let line = render(&s, 10);
        assert!(line.contains("[=====>    ]"), "{line}");
        assert!(line.contains(" 50%"), "{line}");
        assert!(line.contains("1/4 files"), "{line}");
        assert!(line.contains("50.0/100.0 MB"), "{line}");
        assert!(line.contains("25.0 MB/s"), "{line}");
        let done = Snapshot {
            bytes_done: 100_000_000,
            ..s
        };
        assert!(render(&done, 4).contains("[====] 100%"));
    }
}
