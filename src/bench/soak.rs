//! `bench --soak DURATION`: does the daemon's memory stay bounded under a
//! steady load with its schedules running fast?
//!
//! One daemon (its defaults, `limits.memory-mb` included) with WAL archiving
//! on and accelerated schedules: a snapshot every 20 s, snapshot verify and
//! prune every minute, an incremental backup every 30 s, a restore drill
//! every 2 minutes, backup verify (10% read) and prune every 2 minutes.
//! Four writers pace ~165 acknowledged writes a second between them,
//! rotating `memory_store`, `vector_upsert` (384-dim) and `storage_write`
//! over a fixed key space (~20 MB live, every key written once before the
//! clock starts), with a `memory_search` every 50th call. Every minute: the daemon's RSS (median and maximum of once-a-second
//! samples), its memory figures
//! (`ruvector_storage_memory_bytes`), write latency p50/p99, errors and the
//! schedule's runs. At the end every acknowledged `storage_write` of a
//! sample is read back.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::harness::Daemon;
use super::BenchArgs;
use crate::client::Client;
use crate::error::{Error, Result};

/// The accelerated schedules (the issue's soak, plus backup verify/prune so
/// the backup location does not grow without bound either).
const SCHEDULES: &str = r#"
[[job]]
name = "snapshot"
cron = "*/20 * * * * *"
action = "snapshot.create"
args = { prefix = "soak" }

[[job]]
name = "snapshot-verify"
cron = "5 * * * * *"
action = "snapshot.verify"

[[job]]
name = "snapshot-prune"
cron = "10 * * * * *"
action = "snapshot.prune"
args = { kind = "scheduled", keep-last = 3 }

[[job]]
name = "backup"
cron = "15,45 * * * * *"
action = "backup.create"

[[job]]
name = "drill"
cron = "30 */2 * * * *"
action = "backup.drill"

[[job]]
name = "backup-verify"
cron = "50 */2 * * * *"
action = "backup.verify"
args = { read-data-subset = "10%" }

[[job]]
name = "backup-prune"
cron = "55 */2 * * * *"
action = "backup.prune"
args = { keep-last = 4 }
"#;

const WRITERS: usize = 4;
const WRITES_PER_SEC: f64 = 165.0;
const DIM: usize = 384;
/// Keys per writer: writes cycle through them, so the live data stays
/// about 20 MB and the store reaches a steady state (as a swarm's memory
/// does: values updated in place) instead of growing for the whole soak.
const KEYSPACE: u64 = 2500;

/// Parse `30m`, `90s`, `1h`, `1h30m` or bare seconds.
pub fn parse_duration(text: &str) -> std::result::Result<Duration, String> {
    let bad = || format!("{text:?}: expected a duration like 30m, 90s or 1h30m");
    let mut total = 0u64;
    let mut digits = String::new();
    for c in text.trim().chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let n: u64 = digits.parse().map_err(|_| bad())?;
        digits.clear();
        total += n * match c {
            'h' => 3600,
            'm' => 60,
            's' => 1,
            _ => return Err(bad()),
        };
    }
    if !digits.is_empty() {
        total += digits.parse::<u64>().map_err(|_| bad())?;
    }
    if total == 0 {
        return Err(format!("{text:?}: a soak needs at least one second"));
    }
    Ok(Duration::from_secs(total))
}

/// What one minute saw.
#[derive(Debug, Default, Clone, serde::Serialize)]
struct Minute {
    minute: usize,
    /// Median of the minute's once-a-second samples (a job's transient
    /// peak does not move it; `rss_max_mib` shows those).
    rss_mib: f64,
    rss_max_mib: f64,
    /// `rss_mib` less the block cache at the minute's end: what the budget's
    /// cache does not bound (the cache fills to its capacity over time, as
    /// compaction leaves blocks of deleted files in it until evicted).
    rss_less_cache_mib: f64,
    writes: u64,
    errors: u64,
    p50_ms: f64,
    p99_ms: f64,
    jobs_run: u64,
    /// Jobs whose last run had failed at the minute's end.
    jobs_failed: u64,
    /// `ruvector_storage_memory_bytes{kind}` at the end of the minute, MiB.
    memory_mib: BTreeMap<String, f64>,
}

/// Shared between the writers and the sampler.
#[derive(Default)]
struct Tally {
    stop: AtomicBool,
    acked: AtomicU64,
    errors: AtomicU64,
    /// Latencies (ms) of the current minute.
    latencies: Mutex<Vec<f64>>,
    /// The last acknowledged value of every 16th `storage_write` key (for
    /// the read-back).
    acked_keys: Mutex<BTreeMap<String, String>>,
    first_error: Mutex<Option<String>>,
}

impl Tally {
    fn error(&self, e: impl std::fmt::Display) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut f) = self.first_error.lock() {
            f.get_or_insert_with(|| e.to_string());
        }
    }
}

/// Run the soak; returns (table, JSON).
pub async fn run(dir: &Path, args: &BenchArgs, length: Duration) -> Result<(String, Value)> {
    let warmup = args
        .soak_warmup
        .unwrap_or((length / 3).min(Duration::from_secs(120)));
    // The reference is the minute the warm-up ends in; at least one whole
    // minute must follow it.
    if warmup.as_secs().div_ceil(60) >= length.as_secs().div_ceil(60) {
        return Err(Error::invalid(format!(
            "--soak-warmup {warmup:?} leaves no whole minute of --soak {length:?} to measure"
        )));
    }
    let data = dir.join("soak");
    std::fs::create_dir_all(&data)?;
    let schedule = dir.join("soak-schedules.toml");
    std::fs::write(&schedule, SCHEDULES)?;
    let backups = format!("file://{}", dir.join("soak-backups").display());
    let schedule_env = schedule.display().to_string();
    let env = [
        ("RUVECTOR_STORAGE__SCHEDULE_FILE", schedule_env.as_str()),
        ("RUVECTOR_STORAGE__BACKUP__DESTINATION", backups.as_str()),
        ("RUVECTOR_STORAGE__BACKUP__ARCHIVE_WAL", "true"),
    ];
    let d = Daemon::start_env(&data, args, &args.sync, &env).await?;
    let budget_mib = d
        .client
        .call("storage_stats", json!({"detailed": true}))
        .await
        .map_err(|e| e.into_error())?["metrics"]["ruvector_storage_memory_budget_bytes"]
        .as_f64()
        .map(|b| b / 1048576.0);
    d.client
        .call(
            "collection_create",
            json!({"name": "soak", "dimension": DIM}),
        )
        .await
        .map_err(|e| e.into_error())?;
    let t = Instant::now();
    prefill(&d.client).await?;
    eprintln!(
        "  every key written once in {:.1} s (set-up, not measured)",
        t.elapsed().as_secs_f64()
    );
    // Something for every job from its first run: a snapshot to verify and
    // a backup to drill.
    for (method, params) in [("snapshot_create", json!({})), ("backup_create", json!({}))] {
        d.client
            .call(method, params)
            .await
            .map_err(|e| e.into_error().context(format!("soak set-up: {method}")))?;
    }
    eprintln!(
        "ruvector-storage bench --soak: {length:?} ({warmup:?} warm-up), {WRITERS} writers at {WRITES_PER_SEC}/s, accelerated schedules"
    );
    let tally = Arc::new(Tally::default());
    let started = Instant::now();
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| tokio::spawn(writer(d.client.clone(), w, tally.clone())))
        .collect();
    let mut minutes: Vec<Minute> = Vec::new();
    let mut current = Minute::default();
    let mut rss_samples: Vec<f64> = Vec::new();
    let mut acked_before = 0;
    let mut errors_before = 0;
    let mut runs_before = 0;
    let pid = d.child.id();
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let rss = crate::alloc::rss_of(pid).unwrap_or(0) as f64 / 1048576.0;
        current.rss_max_mib = current.rss_max_mib.max(rss);
        rss_samples.push(rss);
        let elapsed = started.elapsed();
        let last = elapsed >= length;
        if !(last || elapsed.as_secs() / 60 > minutes.len() as u64) {
            continue;
        }
        current.minute = minutes.len() + 1;
        rss_samples.sort_by(f64::total_cmp);
        current.rss_mib = quantile(&std::mem::take(&mut rss_samples), 0.5);
        let acked = tally.acked.load(Ordering::Relaxed);
        let errors = tally.errors.load(Ordering::Relaxed);
        current.writes = acked - acked_before;
        current.errors = errors - errors_before;
        (acked_before, errors_before) = (acked, errors);
        let mut lat = std::mem::take(&mut *tally.latencies.lock().map_err(poisoned)?);
        lat.sort_by(f64::total_cmp);
        current.p50_ms = quantile(&lat, 0.50);
        current.p99_ms = quantile(&lat, 0.99);
        if let Ok(jobs) = d.client.call("schedule_list", json!({})).await {
            let jobs = jobs["jobs"].as_array().cloned().unwrap_or_default();
            let runs: u64 = jobs.iter().filter_map(|j| j["runs"].as_u64()).sum();
            current.jobs_run = runs - runs_before;
            runs_before = runs;
            current.jobs_failed = jobs
                .iter()
                .filter(|j| j["last_result"]["ok"] == false)
                .count() as u64;
        }
        if let Ok(s) = d
            .client
            .call("storage_stats", json!({"detailed": true}))
            .await
        {
            current.memory_mib = memory_figures(&s["metrics"]);
        }
        current.rss_less_cache_mib = current.rss_mib
            - current
                .memory_mib
                .get("block_cache")
                .copied()
                .unwrap_or(0.0);
        eprintln!(
            "  minute {:>3}: RSS median {:>7.1} MiB (max {:>7.1}, less the block cache {:>7.1}), {:>6} writes, p50 {:>6.2} ms, p99 {:>7.2} ms, {} errors, {} jobs ({} failing)",
            current.minute, current.rss_mib, current.rss_max_mib, current.rss_less_cache_mib,
            current.writes, current.p50_ms, current.p99_ms, current.errors, current.jobs_run,
            current.jobs_failed
        );
        minutes.push(std::mem::take(&mut current));
        if last {
            break;
        }
    }
    tally.stop.store(true, Ordering::Relaxed);
    for w in writers {
        let _ = w.await;
    }
    let missing = read_back(&d.client, &tally).await?;
    let jobs = d
        .client
        .call("schedule_list", json!({}))
        .await
        .map_err(|e| e.into_error())?;
    d.stop();
    summarise(&minutes, warmup, budget_mib, &tally, missing, &jobs)
}

fn poisoned<T>(_: T) -> Error {
    Error::internal("a soak writer panicked")
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

/// `ruvector_storage_memory_bytes{kind="…"}` from a detailed stats result, MiB.
fn memory_figures(metrics: &Value) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for (name, v) in metrics.as_object().into_iter().flatten() {
        if let Some(kind) = name
            .strip_prefix("ruvector_storage_memory_bytes{kind=\"")
            .and_then(|k| k.strip_suffix("\"}"))
        {
            out.insert(kind.to_string(), v.as_f64().unwrap_or(0.0) / 1048576.0);
        }
    }
    out
}

/// Write every key of the key space once (all three kinds), before the
/// clock starts: the store is then at its steady size, and the warm-up
/// measures the load rather than the data set growing to its size (minutes
/// at 165 writes/s). A swarm's daemon starts with its memory in it.
async fn prefill(client: &Client) -> Result<()> {
    use futures::StreamExt;
    let call = |method: &'static str, params: Value| async move {
        client
            .call(method, params)
            .await
            .map_err(|e| e.into_error().context(format!("soak set-up: {method}")))
    };
    let mut state = 0x5EED_50A4_u64;
    for w in 0..WRITERS {
        let slots: Vec<u64> = (0..KEYSPACE).collect();
        for chunk in slots.chunks(500) {
            let entries: Vec<Value> = chunk
                .iter()
                .map(|s| json!({"key": format!("w{w}-{s}"), "value": format!("value 0 of writer {w}")}))
                .collect();
            call("storage_write", json!({"entries": entries})).await?;
            let vectors: Vec<Value> = chunk
                .iter()
                .map(|s| {
                    let v: Vec<f32> = (0..DIM).map(|_| super::noise(&mut state)).collect();
                    json!({"id": format!("w{w}-{s}"), "vector": v, "metadata": {"writer": w, "i": 0}})
                })
                .collect();
            call(
                "vector_upsert",
                json!({"collection": "soak", "vectors": vectors}),
            )
            .await?;
        }
        let stores = futures::stream::iter(slots)
            .map(|s| {
                call(
                    "memory_store",
                    json!({"key": format!("w{w}-{s}"), "namespace": "soak", "upsert": true,
                        "value": format!("note 0 from writer {w}: {}", "x".repeat(200))}),
                )
            })
            .buffer_unordered(8);
        let results: Vec<Result<Value>> = stores.collect().await;
        results.into_iter().collect::<Result<Vec<_>>>()?;
    }
    Ok(())
}

/// One writer: its share of the rate, rotating the write kinds.
async fn writer(client: Client, w: usize, tally: Arc<Tally>) {
    let every = Duration::from_secs_f64(WRITERS as f64 / WRITES_PER_SEC);
    let mut next = Instant::now();
    let mut i = 0u64;
    let mut state = 0x9E37_79B9_7F4A_7C15u64 ^ (w as u64 + 1);
    while !tally.stop.load(Ordering::Relaxed) {
        next += every;
        if let Some(wait) = next.checked_duration_since(Instant::now()) {
            tokio::time::sleep(wait).await;
        }
        i += 1;
        let slot = i % KEYSPACE;
        let key = format!("w{w}-{slot}");
        let (method, params) = match i % 3 {
            _ if i.is_multiple_of(50) => (
                "memory_search",
                json!({"query": format!("note {}", i / 7), "namespace": "soak", "limit": 5}),
            ),
            0 => (
                "memory_store",
                json!({"key": key, "namespace": "soak", "upsert": true,
                    "value": format!("note {} from writer {w}: {}", i / 7, "x".repeat(200))}),
            ),
            1 => {
                let vector: Vec<f32> = (0..DIM).map(|_| super::noise(&mut state)).collect();
                (
                    "vector_upsert",
                    json!({"collection": "soak", "vectors": [{"id": key, "vector": vector,
                        "metadata": {"writer": w, "i": i}}]}),
                )
            }
            _ => (
                "storage_write",
                json!({"key": key, "value": format!("value {i} of writer {w}")}),
            ),
        };
        let t = Instant::now();
        match client.call(method, params.clone()).await {
            Ok(_) => {
                let ms = t.elapsed().as_secs_f64() * 1000.0;
                if method != "memory_search" {
                    tally.acked.fetch_add(1, Ordering::Relaxed);
                    if let Ok(mut l) = tally.latencies.lock() {
                        l.push(ms);
                    }
                }
                // Every write to a sampled key is recorded: the read-back
                // compares with the last acknowledged value.
                if method == "storage_write" && slot % 16 == 2 {
                    if let (Ok(mut k), Some(v)) =
                        (tally.acked_keys.lock(), params["value"].as_str())
                    {
                        k.insert(key, v.to_string());
                    }
                }
            }
            Err(e) => tally.error(format!("{method}: {e}")),
        }
    }
}

/// Read back the sampled acknowledged writes; returns how many are missing
/// or wrong.
async fn read_back(client: &Client, tally: &Tally) -> Result<u64> {
    let keys = std::mem::take(&mut *tally.acked_keys.lock().map_err(poisoned)?);
    let mut missing = 0;
    for (key, value) in keys {
        let got = client
            .call("storage_read", json!({"key": key}))
            .await
            .map_err(|e| e.into_error())?;
        if got["value"].as_str() != Some(value.as_str()) {
            missing += 1;
        }
    }
    Ok(missing)
}

fn summarise(
    minutes: &[Minute],
    warmup: Duration,
    budget_mib: Option<f64>,
    tally: &Tally,
    missing: u64,
    jobs: &Value,
) -> Result<(String, Value)> {
    // The minute in which the warm-up ends is the reference.
    let warm_minute = warmup.as_secs().div_ceil(60) as usize;
    let warm = minutes
        .get(warm_minute.saturating_sub(1))
        .or(minutes.first())
        .ok_or_else(|| Error::invalid("the soak ended before its first sample"))?;
    let last = minutes.last().unwrap_or(warm);
    let growth = (last.rss_mib - warm.rss_mib) / warm.rss_mib.max(1.0) * 100.0;
    let growth_less_cache = (last.rss_less_cache_mib - warm.rss_less_cache_mib)
        / warm.rss_less_cache_mib.max(1.0)
        * 100.0;
    let rss_max = minutes.iter().map(|m| m.rss_max_mib).fold(0.0, f64::max);
    let second_p99 = minutes.get(1).unwrap_or(warm).p99_ms;
    let runs: BTreeMap<String, Value> = jobs["jobs"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|j| {
            (
                j["name"].as_str().unwrap_or_default().to_string(),
                json!({"runs": j["runs"], "last_ok": j["last_result"]["ok"]}),
            )
        })
        .collect();
    let errors = tally.errors.load(Ordering::Relaxed);
    let first_error = tally.first_error.lock().map_err(poisoned)?.clone();
    let summary = json!({
        "allocator": crate::alloc::allocator_name(),
        "minutes": minutes,
        "warmup_minutes": warm.minute,
        "rss_after_warmup_mib": warm.rss_mib,
        "rss_end_mib": last.rss_mib,
        "rss_growth_pct": growth,
        "rss_less_cache_after_warmup_mib": warm.rss_less_cache_mib,
        "rss_less_cache_end_mib": last.rss_less_cache_mib,
        "rss_less_cache_growth_pct": growth_less_cache,
        "rss_max_mib": rss_max,
        "memory_budget_mib": budget_mib,
        "p99_second_minute_ms": second_p99,
        "p99_last_minute_ms": last.p99_ms,
        "acknowledged_writes": tally.acked.load(Ordering::Relaxed),
        "errors": errors,
        "first_error": first_error,
        "missing_of_sample": missing,
        "jobs": runs,
    });
    let table = format!(
        "soak ({} allocator): {} minute(s); RSS after warm-up {:.1} MiB → end {:.1} MiB ({:+.1}%; less the block cache {:+.1}%), max {:.1} MiB (budget {}); \
         write p99 {:.2} ms in minute 2, {:.2} ms in the last; {} acknowledged writes, {} errors, {} of the read-back sample missing",
        crate::alloc::allocator_name(), minutes.len(), warm.rss_mib, last.rss_mib, growth,
        growth_less_cache, rss_max,
        budget_mib.map_or("none".into(), |b| format!("{b} MiB")),
        second_p99, last.p99_ms, summary["acknowledged_writes"], errors, missing
    );
    Ok((table, json!({"soak": summary})))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_and_nonsense_is_refused() {
        assert_eq!(parse_duration("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("2m10s"), Ok(Duration::from_secs(130)));
        for bad in ["", "0s", "3x", "m", "-1m"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn quantiles_of_sorted_latencies() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&v, 0.5), 51.0);
        assert_eq!(quantile(&v, 0.99), 99.0);
        assert_eq!(quantile(&[], 0.99), 0.0);
    }
}
