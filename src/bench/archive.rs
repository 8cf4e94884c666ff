//! (i) continuous WAL archiving at the default interval under paced
//! writes: how long a committed write takes to reach the archive.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::client::Client;
use crate::error::{Error, Result};

use super::harness::Daemon;
use super::{BenchArgs, Report};

/// Measure (i) with a daemon of its own (`archive-wal = true`).
pub(super) async fn run(dir: &Path, args: &BenchArgs, r: &mut Report) -> Result<()> {
    let ad = Daemon::start_env(
        &dir.join("daemon-archive"),
        args,
        &args.sync,
        &[("RUVECTOR_STORAGE__BACKUP__ARCHIVE_WAL", "true")],
    )
    .await?;
    let lag = archive_lag(&ad.client, 5000.0, Duration::from_secs(args.archive_secs)).await?;
    ad.stop();
    r.add(
        "archive_write_rate",
        "(i) paced storage_write rate while archiving",
        lag.rate,
        "writes/s",
    );
    r.add(
        "archive_lag_p50_ms",
        "(i) WAL archive lag, commit → archived, p50",
        lag.p50_ms,
        "ms",
    );
    r.add("archive_lag_p99_ms", "    p99", lag.p99_ms, "ms");
    r.add("archive_lag_max_ms", "    max", lag.max_ms, "ms");
    Ok(())
}

/// What (i) measured.
struct Lag {
    rate: f64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
}

/// Paced single-key writes at `rate` for `span` from 16 clients; every
/// 20 ms the store's latest sequence is sampled, and each sample's lag is
/// the time until the archiver's `archived_sequence` (in `storage_stats`)
/// reaches it.
async fn archive_lag(c: &Client, rate: f64, span: Duration) -> Result<Lag> {
    const CLIENTS: usize = 16;
    let start = tokio::time::Instant::now();
    let period = Duration::from_secs_f64(CLIENTS as f64 / rate);
    let writers: Vec<_> = (0..CLIENTS)
        .map(|w| {
            let c = c.clone();
            tokio::spawn(async move {
                let mut n = 0u64;
                let mut next = start + period.mul_f64(w as f64 / CLIENTS as f64);
                while next < start + span {
                    tokio::time::sleep_until(next).await;
                    c.call(
                        "storage_write",
                        json!({"key": format!("lag-{w}-{n}"), "value": "x".repeat(100)}),
                    )
                    .await
                    .map_err(|e| e.into_error())?;
                    n += 1;
                    next += period;
                }
                Ok::<u64, Error>(n)
            })
        })
        .collect();
    let mut pending: Vec<(Instant, u64)> = Vec::new();
    let mut lags: Vec<f64> = Vec::new();
    let deadline = Instant::now() + span + Duration::from_secs(10);
    loop {
        let now = Instant::now();
        let writing = start.elapsed() < span;
        if writing {
            let h = c.health().await?;
            if let Some(s) = h["latest_sequence"].as_u64() {
                pending.push((now, s));
            }
        }
        let stats = c
            .call("storage_stats", json!({}))
            .await
            .map_err(|e| e.into_error())?;
        let archived = stats["records"]["backup"]["wal_archive"]["archived_sequence"]
            .as_u64()
            .unwrap_or(0);
        let at = Instant::now();
        pending.retain(|(t, s)| {
            if *s <= archived {
                lags.push(at.duration_since(*t).as_secs_f64() * 1000.0);
                false
            } else {
                true
            }
        });
        if !writing && pending.is_empty() {
            break;
        }
        if at > deadline {
            return Err(Error::unavailable(format!(
                "(i) the WAL archive did not catch up: {} samples pending, archived sequence {archived}",
                pending.len()
            )));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut written = 0u64;
    for w in writers {
        written += w
            .await
            .map_err(|e| Error::internal(format!("writer task: {e}")))??;
    }
    if lags.is_empty() {
        return Err(Error::internal("(i) no lag samples"));
    }
    lags.sort_by(|a, b| a.total_cmp(b));
    let q = |p: f64| lags[((lags.len() - 1) as f64 * p).round() as usize];
    Ok(Lag {
        rate: written as f64 / span.as_secs_f64(),
        p50_ms: q(0.5),
        p99_ms: q(0.99),
        max_ms: q(1.0),
    })
}
