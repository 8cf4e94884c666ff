//! Cron jobs: parsing `schedules/*.toml` and deciding, for a given time,
//! which jobs are due. Pure logic over an injected "now", so firing times
//! are tested without sleeping; the scheduler actor drives it with the wall
//! clock and sends each due job as a message to the actor that does the work.
//!
//! ```toml
//! [[job]]
//! name = "hourly-snapshot"
//! cron = "0 5 * * * *"        # sec min hour day month weekday (UTC); 5 fields = minute precision
//! action = "snapshot.create"
//! args = { prefix = "hourly" }
//! ```
//!
//! Actions: `snapshot.create` {prefix, verify}, `snapshot.verify` {name?
//! (default: newest)}, `snapshot.prune` {keep-last, keep-hourly, keep-daily,
//! keep-weekly, keep-monthly, keep-within}, `wal.checkpoint` {}.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use croner::Cron;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::clock::iso_ms;
use crate::error::{Error, Result};
use crate::snapshot::retention::Policy;
use crate::snapshot::Kind;

/// The schedule shipped with the project (`schedules/default.toml`), used
/// when no `schedule-file` is configured.
pub const DEFAULT_SCHEDULE: &str = include_str!("../schedules/default.toml");

/// What a job does.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    SnapshotCreate {
        prefix: String,
        verify: bool,
    },
    SnapshotVerify {
        name: Option<String>,
    },
    SnapshotPrune {
        policy: Policy,
        kind: Option<Kind>,
    },
    WalCheckpoint,
    BackupCreate {
        full: bool,
    },
    BackupPrune {
        policy: Policy,
    },
    BackupDrill,
    /// `backup verify` of the default location; `read_data_subset` like "10%".
    BackupVerify {
        read_data: bool,
        read_data_subset: Option<String>,
    },
    /// `check`, deep with `verify-integrity = true`.
    CheckIntegrity {
        deep: bool,
    },
    /// `compact --full`.
    CompactFull,
    /// `compact --incremental --threshold T`.
    CompactIncremental {
        threshold: Option<f64>,
    },
}

impl Action {
    pub fn name(&self) -> &'static str {
        match self {
            Action::SnapshotCreate { .. } => "snapshot.create",
            Action::SnapshotVerify { .. } => "snapshot.verify",
            Action::SnapshotPrune { .. } => "snapshot.prune",
            Action::WalCheckpoint => "wal.checkpoint",
            Action::BackupCreate { .. } => "backup.create",
            Action::BackupPrune { .. } => "backup.prune",
            Action::BackupDrill => "backup.drill",
            Action::BackupVerify { .. } => "backup.verify",
            Action::CheckIntegrity { .. } => "check.integrity",
            Action::CompactFull => "compact.full",
            Action::CompactIncremental { .. } => "compact.incremental",
        }
    }
}

#[derive(Debug, Clone)]
pub struct JobSpec {
    pub name: String,
    pub cron_text: String,
    pub cron: Cron,
    pub action: Action,
    /// Where the job is declared, `file:line`.
    pub origin: String,
}

#[derive(Deserialize)]
struct FileToml {
    #[serde(default)]
    job: Vec<toml::Spanned<JobToml>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JobToml {
    name: String,
    cron: String,
    action: String,
    #[serde(default)]
    args: toml::Table,
    #[serde(default = "yes")]
    enabled: bool,
}

const fn yes() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateArgs {
    #[serde(default = "default_prefix")]
    prefix: String,
    #[serde(default)]
    verify: bool,
}

fn default_prefix() -> String {
    "scheduled".into()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VerifyArgs {
    #[serde(default)]
    name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BackupArgs {
    #[serde(default)]
    full: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct BackupVerifyArgs {
    #[serde(default)]
    read_data: bool,
    #[serde(default)]
    read_data_subset: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct CheckArgs {
    #[serde(default)]
    verify_integrity: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CompactArgs {
    #[serde(default)]
    threshold: Option<f64>,
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

pub fn parse_cron(text: &str) -> std::result::Result<Cron, String> {
    Cron::from_str(text).map_err(|e| format!("invalid cron expression {text:?}: {e}"))
}

/// Parse and validate a schedule file. Every error names `label:line`.
pub fn parse(label: &str, text: &str) -> Result<Vec<JobSpec>> {
    let file: FileToml = toml::from_str(text).map_err(|e| {
        let line = e.span().map(|s| line_of(text, s.start)).unwrap_or(0);
        Error::invalid(format!("{label}:{line}: {}", e.message()))
    })?;
    let mut out: Vec<JobSpec> = Vec::new();
    for spanned in file.job {
        let line = line_of(text, spanned.span().start);
        let at = format!("{label}:{line}");
        let job = spanned.into_inner();
        let fail = |msg: String| Error::invalid(format!("{at}: job {:?}: {msg}", job.name));
        if job.name.is_empty() {
            return Err(Error::invalid(format!("{at}: a job needs a name")));
        }
        if out.iter().any(|j| j.name == job.name) {
            return Err(fail("the name is used twice".into()));
        }
        let cron = parse_cron(&job.cron).map_err(fail)?;
        let args = toml::Value::Table(job.args.clone());
        let action = match job.action.as_str() {
            "snapshot.create" => {
                let a: CreateArgs = args.try_into().map_err(|e| fail(format!("args: {e}")))?;
                crate::snapshot::check_name(&a.prefix).map_err(|e| fail(format!("args.prefix: {e}")))?;
                if a.prefix.len() > 100 {
                    return Err(fail("args.prefix: at most 100 bytes (a timestamp is appended)".into()));
                }
                Action::SnapshotCreate { prefix: a.prefix, verify: a.verify }
            }
            "snapshot.verify" => {
                let a: VerifyArgs = args.try_into().map_err(|e| fail(format!("args: {e}")))?;
                Action::SnapshotVerify { name: a.name }
            }
            "snapshot.prune" => {
                let mut table = job.args.clone();
                let kind = match table.remove("kind") {
                    None => None,
                    Some(k) => Some(k.try_into::<Kind>().map_err(|e| fail(format!("args.kind: {e}")))?),
                };
                let p: Policy = toml::Value::Table(table)
                    .try_into()
                    .map_err(|e| fail(format!("args: {e}")))?;
                p.validate().map_err(|e| fail(e.message))?;
                Action::SnapshotPrune { policy: p, kind }
            }
            "wal.checkpoint" => Action::WalCheckpoint,
            "backup.create" => {
                let a: BackupArgs = args.try_into().map_err(|e| fail(format!("args: {e}")))?;
                Action::BackupCreate { full: a.full }
            }
            "backup.prune" => {
                let p: Policy = args.try_into().map_err(|e| fail(format!("args: {e}")))?;
                p.validate().map_err(|e| fail(e.message))?;
                Action::BackupPrune { policy: p }
            }
            "backup.drill" => Action::BackupDrill,
            "backup.verify" => {
                let a: BackupVerifyArgs = args.try_into().map_err(|e| fail(format!("args: {e}")))?;
                Action::BackupVerify {
                    read_data: a.read_data,
                    read_data_subset: a.read_data_subset,
                }
            }
            "check.integrity" => {
                let a: CheckArgs = args.try_into().map_err(|e| fail(format!("args: {e}")))?;
                Action::CheckIntegrity { deep: a.verify_integrity }
            }
            "compact.full" => {
                if !job.args.is_empty() {
                    return Err(fail("compact.full takes no args".to_string()));
                }
                Action::CompactFull
            }
            "compact.incremental" => {
                let a: CompactArgs = args.try_into().map_err(|e| fail(format!("args: {e}")))?;
                if let Some(t) = a.threshold.filter(|t| !(*t > 0.0 && *t < 1.0)) {
                    return Err(fail(format!(
                        "threshold {t} is out of range: a garbage ratio between 0 and 1"
                    )));
                }
                Action::CompactIncremental {
                    threshold: a.threshold,
                }
            }
            other => {
                return Err(fail(format!(
                    "unknown action {other:?}; known: snapshot.create, snapshot.verify, snapshot.prune, wal.checkpoint, backup.create, backup.prune, backup.drill, backup.verify, check.integrity, compact.full, compact.incremental"
                )))
            }
        };
        if job.enabled {
            out.push(JobSpec {
                name: job.name,
                cron_text: job.cron,
                cron,
                action,
                origin: at,
            });
        }
    }
    Ok(out)
}

/// The last outcome of a job.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RunResult {
    pub ok: bool,
    pub message: String,
    pub started_at: String,
    pub finished_at: String,
}

#[derive(Debug, Clone)]
pub struct JobState {
    pub spec: JobSpec,
    pub next_run_ms: Option<i64>,
    pub last_run_ms: Option<i64>,
    pub last_result: Option<RunResult>,
    pub running_since: Option<i64>,
    pub runs: u64,
    pub skipped: u64,
}

fn next_after(cron: &Cron, now_ms: i64) -> Option<i64> {
    // Whole seconds: croner keeps the sub-second part of the start time.
    let t: DateTime<Utc> = DateTime::from_timestamp_millis(now_ms - now_ms.rem_euclid(1000))?;
    cron.find_next_occurrence(&t, false)
        .ok()
        .map(|t| t.timestamp_millis())
}

/// The jobs and their timing state.
#[derive(Debug, Clone, Default)]
pub struct Scheduler {
    pub jobs: Vec<JobState>,
}

impl Scheduler {
    pub fn new(specs: Vec<JobSpec>, now_ms: i64) -> Self {
        Scheduler {
            jobs: specs
                .into_iter()
                .map(|spec| JobState {
                    next_run_ms: next_after(&spec.cron, now_ms),
                    spec,
                    last_run_ms: None,
                    last_result: None,
                    running_since: None,
                    runs: 0,
                    skipped: 0,
                })
                .collect(),
        }
    }

    /// Replace the jobs, keeping the history of jobs whose name and cron stay.
    pub fn reload(&mut self, specs: Vec<JobSpec>, now_ms: i64) {
        let mut next = Scheduler::new(specs, now_ms);
        for job in &mut next.jobs {
            if let Some(old) = self.jobs.iter().find(|o| o.spec.name == job.spec.name) {
                job.last_run_ms = old.last_run_ms;
                job.last_result = old.last_result.clone();
                job.running_since = old.running_since;
                job.runs = old.runs;
                job.skipped = old.skipped;
            }
        }
        *self = next;
    }

    /// When the next job is due.
    pub fn next_wakeup(&self) -> Option<i64> {
        self.jobs.iter().filter_map(|j| j.next_run_ms).min()
    }

    /// Jobs due at `now`, marked running. A job still running from its
    /// previous firing is not started again (counted as skipped).
    pub fn due(&mut self, now_ms: i64) -> Vec<usize> {
        let mut out = Vec::new();
        for (i, job) in self.jobs.iter_mut().enumerate() {
            let Some(at) = job.next_run_ms else { continue };
            if at > now_ms {
                continue;
            }
            job.next_run_ms = next_after(&job.spec.cron, now_ms);
            if job.running_since.is_some() {
                job.skipped += 1;
                continue;
            }
            job.running_since = Some(now_ms);
            job.last_run_ms = Some(now_ms);
            job.runs += 1;
            out.push(i);
        }
        out
    }

    /// Record the end of a run started by [`due`](Self::due). Looked up
    /// by name: a reload may have reordered or removed the job meanwhile.
    pub fn finish(&mut self, name: &str, result: std::result::Result<String, String>, now_ms: i64) {
        let Some(job) = self.jobs.iter_mut().find(|j| j.spec.name == name) else {
            return;
        };
        let started = job.running_since.take().unwrap_or(now_ms);
        let (ok, message) = match result {
            Ok(m) => (true, m),
            Err(m) => (false, m),
        };
        job.last_result = Some(RunResult {
            ok,
            message,
            started_at: iso_ms(started),
            finished_at: iso_ms(now_ms),
        });
    }

    pub fn list(&self) -> Value {
        let jobs: Vec<Value> = self
            .jobs
            .iter()
            .map(|j| {
                json!({"name": j.spec.name, "cron": j.spec.cron_text, "action": j.spec.action.name(),
                    "origin": j.spec.origin,
                    "next_run": j.next_run_ms.map(iso_ms), "last_run": j.last_run_ms.map(iso_ms),
                    "last_result": j.last_result, "running": j.running_since.is_some(),
                    "runs": j.runs, "skipped_overlapping": j.skipped})
            })
            .collect();
        json!({"jobs": jobs, "count": jobs.len()})
    }
}

/// Where the jobs come from.
#[derive(Debug, Clone)]
pub enum ScheduleSource {
    /// The copy of `schedules/default.toml` compiled into the binary.
    Builtin,
    File(std::path::PathBuf),
}

impl ScheduleSource {
    pub fn load(&self) -> Result<Vec<JobSpec>> {
        match self {
            ScheduleSource::Builtin => parse(&self.label(), DEFAULT_SCHEDULE),
            ScheduleSource::File(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    Error::invalid(format!("cannot read schedule file {}: {e}", path.display()))
                })?;
                parse(&self.label(), &text)
            }
        }
    }

    pub fn label(&self) -> String {
        match self {
            ScheduleSource::Builtin => "schedules/default.toml (built in)".to_string(),
            ScheduleSource::File(p) => p.display().to_string(),
        }
    }
}

/// The scheduler's state: its jobs and where they came from.
#[derive(Debug)]
pub struct Jobs {
    pub scheduler: Scheduler,
    pub source: ScheduleSource,
}

impl Jobs {
    /// `schedule list`.
    pub fn list(&self) -> Value {
        let mut v = self.scheduler.list();
        v["source"] = json!(self.source.label());
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-01-01T00:00:00Z.
    const T0: i64 = 1_767_225_600_000;
    const MIN: i64 = 60_000;
    const H: i64 = 60 * MIN;

    fn sched(text: &str) -> Scheduler {
        Scheduler::new(parse("test.toml", text).unwrap(), T0)
    }

    /// Jump from wakeup to wakeup until `end`, finishing each run at once.
    fn fire_times(s: &mut Scheduler, end: i64) -> Vec<(String, i64)> {
        let mut fired = Vec::new();
        while let Some(t) = s.next_wakeup().filter(|t| *t <= end) {
            for i in s.due(t) {
                let name = s.jobs[i].spec.name.clone();
                fired.push((name.clone(), t));
                s.finish(&name, Ok("done".into()), t);
            }
        }
        fired
    }

    #[test]
    fn shipped_default_schedule_is_valid() {
        let jobs = parse("schedules/default.toml", DEFAULT_SCHEDULE).unwrap();
        assert!(jobs.iter().any(|j| j.action.name() == "snapshot.create"));
        assert!(jobs.iter().any(|j| j.action.name() == "snapshot.prune"));
    }

    #[test]
    fn jobs_fire_at_the_expected_times() {
        let mut s = sched(
            r#"
[[job]]
name = "hourly"
cron = "0 5 * * * *"
action = "snapshot.create"

[[job]]
name = "nightly"
cron = "30 2 * * *"
action = "snapshot.prune"
args = { keep-daily = 7 }
"#,
        );
        let fired = fire_times(&mut s, T0 + 48 * H);
        let hourly: Vec<i64> = fired
            .iter()
            .filter(|f| f.0 == "hourly")
            .map(|f| f.1)
            .collect();
        let want: Vec<i64> = (0..48).map(|h| T0 + h * H + 5 * MIN).collect();
        assert_eq!(hourly, want);
        let nightly: Vec<i64> = fired
            .iter()
            .filter(|f| f.0 == "nightly")
            .map(|f| f.1)
            .collect();
        assert_eq!(nightly, vec![T0 + 2 * H + 30 * MIN, T0 + 26 * H + 30 * MIN]);
        let list = s.list();
        assert_eq!(list["jobs"][0]["runs"], 48);
        assert_eq!(list["jobs"][0]["last_result"]["ok"], true);
        assert_eq!(list["jobs"][0]["next_run"], iso_ms(T0 + 48 * H + 5 * MIN));
    }

    #[test]
    fn a_running_job_is_not_started_again() {
        let mut s =
            sched("[[job]]\nname = \"j\"\ncron = \"* * * * *\"\naction = \"wal.checkpoint\"\n");
        let t1 = s.next_wakeup().unwrap();
        assert_eq!(s.due(t1), vec![0]);
        let t2 = s.next_wakeup().unwrap();
        assert_eq!(t2, t1 + MIN);
        assert!(s.due(t2).is_empty(), "still running: skipped");
        assert_eq!(s.jobs[0].skipped, 1);
        s.finish("j", Err("disk full".into()), t2 + 10);
        let t3 = s.next_wakeup().unwrap();
        assert_eq!(s.due(t3), vec![0]);
        assert_eq!(s.list()["jobs"][0]["last_result"]["message"], "disk full");
    }

    #[test]
    fn errors_name_the_file_and_line() {
        let cases = [
            ("[[job]]\nname = \"a\"\ncron = \"0 0 * * * *\"\naction = \"wal.checkpoint\"\n\n[[job]]\nname = \"b\"\ncron = \"61 * * * *\"\naction = \"wal.checkpoint\"\n", "test.toml:6", "cron"),
            ("[[job]]\nname = \"a\"\ncron = \"0 0 * * *\"\naction = \"snapshot.explode\"\n", "test.toml:1", "unknown action"),
            ("[[job]]\nname = \"a\"\ncron = \"0 0 * * *\"\naction = \"snapshot.prune\"\n", "test.toml:1", "at least one"),
            ("[[job]]\nname = \"a\"\ncron = \"0 0 * * *\"\naction = \"snapshot.create\"\nargs = { prefix = \"../x\" }\n", "test.toml:1", "prefix"),
            ("[[job]]\nname = \"a\"\ncron = \"0 0 * * *\"\nactoin = \"wal.checkpoint\"\n", "test.toml:", "actoin"),
            ("[[job]]\nname = \"a\"\ncron = \"0 0 * * *\"\naction = \"wal.checkpoint\"\n[[job]]\nname = \"a\"\ncron = \"0 0 * * *\"\naction = \"wal.checkpoint\"\n", "test.toml:5", "twice"),
        ];
        for (text, at, why) in cases {
            let e = parse("test.toml", text).unwrap_err();
            assert!(
                e.message.contains(at) && e.message.contains(why),
                "{text}\n=> {e}"
            );
        }
    }

    #[test]
    fn reload_keeps_history_of_kept_jobs() {
        let text = "[[job]]\nname = \"j\"\ncron = \"0 * * * *\"\naction = \"wal.checkpoint\"\n";
        let mut s = sched(text);
        let t = s.next_wakeup().unwrap();
        s.due(t);
        s.finish("j", Ok("ok".into()), t);
        s.reload(parse("test.toml", text).unwrap(), t + 1);
        assert_eq!(s.jobs[0].runs, 1);
        assert_eq!(s.jobs[0].next_run_ms, Some(t + H));
        // A run that ends after a reload that reordered the jobs is still recorded.
        let two = "[[job]]\nname = \"new\"\ncron = \"0 * * * *\"\naction = \"wal.checkpoint\"\n[[job]]\nname = \"j\"\ncron = \"0 * * * *\"\naction = \"wal.checkpoint\"\n";
        let t2 = s.next_wakeup().unwrap();
        assert_eq!(s.due(t2), vec![0]);
        s.reload(parse("test.toml", two).unwrap(), t2 + 1);
        s.finish("j", Ok("after reload".into()), t2 + 2);
        assert_eq!(s.jobs[1].running_since, None, "not stuck as running");
        assert_eq!(
            s.list()["jobs"][1]["last_result"]["message"],
            "after reload"
        );
    }
}
