//! The status board: each actor's state, restarts and last error, and the
//! typed summary records ([`Records`]), shared by the actors and services
//! (writers) and `system_health`, `storage_stats` and the status publisher
//! (readers).

mod compaction;
mod records;

pub use compaction::{CompactionRecord, CompactionReport, FamilyPlan, FamilyResult};
pub use records::*;

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde::Serialize;
use serde_json::{json, Value};

use crate::clock::{iso_ms, Clock, SystemClock};

#[derive(Debug, Clone, Serialize)]
pub struct ActorState {
    pub state: String,
    pub since: String,
    pub restarts: u32,
    pub last_error: Option<String>,
    pub last_error_at: Option<String>,
}

/// The most recent error recorded by any actor.
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorEvent {
    /// Increases with every recorded error.
    pub seq: u64,
    pub actor: String,
    pub message: String,
    pub at_ms: i64,
}

#[derive(Debug, Default)]
pub struct StatusBoard {
    latest_error: Mutex<Option<ErrorEvent>>,
    actors: Mutex<BTreeMap<String, ActorState>>,
    /// Summary records, published on the bus as `swarm/storage/<name>`
    /// and shown in `stats`.
    records: Mutex<Records>,
    started_ms: i64,
}

impl StatusBoard {
    pub fn new() -> Self {
        StatusBoard {
            latest_error: Mutex::default(),
            actors: Mutex::default(),
            records: Mutex::default(),
            started_ms: SystemClock.now_ms(),
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut BTreeMap<String, ActorState>) -> R) -> R {
        let mut g = self.actors.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut g)
    }

    pub fn set_state(&self, actor: &str, state: &str) {
        let now = iso_ms(SystemClock.now_ms());
        self.with(|m| {
            let e = m.entry(actor.to_string()).or_insert_with(|| ActorState {
                state: String::new(),
                since: now.clone(),
                restarts: 0,
                last_error: None,
                last_error_at: None,
            });
            if e.state != state {
                e.state = state.to_string();
                e.since = now;
            }
        });
    }

    pub fn latest_error(&self) -> Option<ErrorEvent> {
        self.latest_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn record_error(&self, actor: &str, error: &str) {
        let now_ms = SystemClock.now_ms();
        {
            let mut latest = self.latest_error.lock().unwrap_or_else(|p| p.into_inner());
            let seq = latest.as_ref().map_or(1, |e| e.seq + 1);
            *latest = Some(ErrorEvent {
                seq,
                actor: actor.to_string(),
                message: error.to_string(),
                at_ms: now_ms,
            });
        }
        let now = iso_ms(now_ms);
        self.with(|m| {
            if let Some(e) = m.get_mut(actor) {
                e.last_error = Some(error.to_string());
                e.last_error_at = Some(now);
            }
        });
    }

    pub fn record_restart(&self, actor: &str) {
        self.with(|m| {
            if let Some(e) = m.get_mut(actor) {
                e.restarts += 1;
            }
        });
    }

    /// Change the records in place, under the lock: two writers of
    /// different records (or fields of one) never lose each other's.
    pub fn update_records<R>(&self, change: impl FnOnce(&mut Records) -> R) -> R {
        change(&mut self.records.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Change the `backup` record (starting from an empty one).
    pub fn update_backup(&self, change: impl FnOnce(&mut BackupRecord)) {
        self.update_records(|r| change(r.backup.get_or_insert_with(BackupRecord::default)));
    }

    pub fn records(&self) -> Records {
        self.records
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn snapshot(&self) -> BTreeMap<String, ActorState> {
        self.with(|m| m.clone())
    }

    pub fn overall(&self) -> &'static str {
        let all_running = self.with(|m| m.values().all(|a| a.state == "running"));
        if all_running {
            "ok"
        } else {
            "degraded"
        }
    }

    pub fn uptime_secs(&self) -> i64 {
        (SystemClock.now_ms() - self.started_ms) / 1000
    }

    /// The `swarm/storage/status` record.
    pub fn record(&self) -> Value {
        let actors = self.snapshot();
        let last_error = self
            .latest_error()
            .map(|e| json!({"actor": e.actor, "error": e.message, "at": iso_ms(e.at_ms)}));
        json!({"status": self.overall(), "pid": std::process::id(),
            "version": env!("CARGO_PKG_VERSION"), "uptime_secs": self.uptime_secs(),
            "actors": actors, "last_error": last_error,
            "timestamp": iso_ms(SystemClock.now_ms())})
    }
}
