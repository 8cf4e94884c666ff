//! The metrics history: which figures of each tick are kept (the numeric
//! fields of the `ruvector/metrics` record, plus the write throughput and
//! the daemon's RSS), and what a history query returns: the values of each
//! metric over a window (averaged down to a number of points), min, max and
//! last, and the size of the encoding against the JSON records it replaces.
//! The storage is the engine's `series` family, the encoding
//! [`crate::series`].

use serde::Serialize;
use serde_json::{Map, Value};

use super::records::MetricsRecord;
use super::tick::Rates;
use super::Sample;
use crate::engine::series::{BadChunk, SeriesRead};
use crate::error::{Error, Result};
use crate::series::{Column, Point};

const fn col(name: &'static str, decimals: u8) -> Column {
    Column { name, decimals }
}

/// The figures kept per tick, with the decimals they keep (as the record
/// rounds them: kept exactly).
pub const COLUMNS: [Column; 10] = [
    col("total_size_gb", 3),
    col("available_space_gb", 3),
    col("usage_percentage", 1),
    col("write_iops", 0),
    col("read_iops", 0),
    col("compression_ratio", 2),
    col("backup_age_hours", 2),
    col("disk_io_utilization", 3),
    col("write_mbs", 3),
    col("memory_rss_mb", 1),
];

/// The metric names, for messages.
pub fn metric_names() -> String {
    COLUMNS.map(|c| c.name).join(", ")
}

/// One tick's point: the record's figures, the write throughput, the RSS.
pub fn point(record: &MetricsRecord, rates: &Rates, sample: &Sample) -> Point {
    let r = record;
    Point {
        at_ms: r.timestamp,
        values: vec![
            Some(r.total_size_gb),
            Some(r.available_space_gb),
            Some(r.usage_percentage),
            Some(r.write_iops),
            Some(r.read_iops),
            Some(r.compression_ratio),
            r.backup_age_hours,
            r.disk_io_utilization,
            Some(rates.write_mbs),
            sample.memory.process_rss.map(|b| b as f64 / 1_048_576.0),
        ],
    }
}

/// A window like `90s`, `30m`, `24h` or `7d`, in ms.
pub fn parse_since(s: &str) -> Result<i64> {
    let bad = || {
        Error::invalid(format!(
            "since {s:?}: expected a positive whole number and a unit s, m, h or d (e.g. 90s, 30m, 24h, 7d)"
        ))
    };
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (n, unit) = s.split_at(split);
    let n: i64 = n.parse().map_err(|_| bad())?;
    let unit_ms = match unit {
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(bad()),
    };
    match n.checked_mul(unit_ms) {
        Some(ms) if n > 0 && ms <= 3650 * 86_400_000 => Ok(ms),
        _ => Err(bad()),
    }
}

/// The metrics a query names (comma-separated; none: all), as indexes
/// into [`COLUMNS`].
pub fn select(metric: Option<&str>) -> Result<Vec<usize>> {
    let Some(list) = metric.filter(|m| !m.trim().is_empty()) else {
        return Ok((0..COLUMNS.len()).collect());
    };
    list.split(',')
        .map(|name| {
            let name = name.trim();
            COLUMNS.iter().position(|c| c.name == name).ok_or_else(|| {
                Error::invalid(format!(
                    "unknown metric {name:?}: expected one of {} (several: comma-separated)",
                    metric_names()
                ))
            })
        })
        .collect()
}

/// One metric over the window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricHistory {
    pub name: &'static str,
    pub decimals: u8,
    /// Over every point of the window (not only the returned values).
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub last: Option<f64>,
    /// One per entry of `timestamps`: the mean of its points (null: none
    /// had the metric).
    pub values: Vec<Option<f64>>,
}

/// What `stats --history` returns.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct History {
    pub since_ms: i64,
    pub until_ms: i64,
    /// Points in the window.
    pub points: usize,
    /// The time of each returned value: the last point it averages.
    pub timestamps: Vec<i64>,
    pub metrics: Vec<MetricHistory>,
    /// The stored chunks read (those that may hold points of the window)
    /// and their points: what the ratio is measured on.
    pub chunks: usize,
    pub stored_points: usize,
    pub encoded_bytes: usize,
    /// The same points as `ruvector/metrics`-style JSON records (every
    /// figure and the timestamp), one per point.
    pub json_bytes: usize,
    /// `json_bytes / encoded_bytes` (null when nothing is stored).
    pub ratio: Option<f64>,
    pub bytes_per_point: Option<f64>,
    pub json_bytes_per_point: Option<f64>,
    pub retention_secs: i64,
    /// Chunks that do not decode (`check --verify-integrity` lists them too).
    pub bad_chunks: Vec<BadChunk>,
}

fn round(v: f64, places: u8) -> f64 {
    let m = 10f64.powi(i32::from(places));
    (v * m).round() / m
}

/// The history of the `selected` metrics between `since_ms` and
/// `until_ms` (inclusive), averaged down to at most `width` values.
pub fn summarize(
    read: &SeriesRead,
    since_ms: i64,
    until_ms: i64,
    selected: &[usize],
    width: usize,
    retention_ms: i64,
) -> History {
    let width = width.max(1);
    let mut json_bytes = 0;
    let mut stored_points = 0;
    // (time, value per selected metric) of the points in the window.
    let mut window: Vec<(i64, Vec<Option<f64>>)> = Vec::new();
    for c in &read.chunks {
        let cols = &c.chunk.columns;
        let at: Vec<Option<usize>> = selected
            .iter()
            .map(|i| cols.iter().position(|(n, _)| n == COLUMNS[*i].name))
            .collect();
        for p in &c.chunk.points {
            stored_points += 1;
            let mut rec = Map::new();
            for ((name, _), v) in cols.iter().zip(&p.values) {
                rec.insert(name.clone(), v.map_or(Value::Null, Value::from));
            }
            rec.insert("timestamp".into(), p.at_ms.into());
            json_bytes += Value::Object(rec).to_string().len();
            if (since_ms..=until_ms).contains(&p.at_ms) {
                let vals = at.iter().map(|i| i.and_then(|i| p.values[i])).collect();
                window.push((p.at_ms, vals));
            }
        }
    }
    window.sort_by_key(|(t, _)| *t);
    let n = window.len();
    let buckets = n.min(width);
    let bounds = |b: usize| (b * n / buckets, (b + 1) * n / buckets);
    let timestamps = (0..buckets).map(|b| window[bounds(b).1 - 1].0).collect();
    let metrics = selected
        .iter()
        .enumerate()
        .map(|(k, i)| {
            let col = COLUMNS[*i];
            let all = || window.iter().filter_map(|(_, v)| v[k]);
            let values = (0..buckets)
                .map(|b| {
                    let (lo, hi) = bounds(b);
                    let vs: Vec<f64> = window[lo..hi].iter().filter_map(|(_, v)| v[k]).collect();
                    (!vs.is_empty())
                        .then(|| round(vs.iter().sum::<f64>() / vs.len() as f64, col.decimals + 1))
                })
                .collect();
            MetricHistory {
                name: col.name,
                decimals: col.decimals,
                min: all().reduce(f64::min),
                max: all().reduce(f64::max),
                last: window.last().and_then(|(_, v)| v[k]),
                values,
            }
        })
        .collect();
    let encoded_bytes: usize = read.chunks.iter().map(|c| c.encoded_bytes).sum();
    let per =
        |bytes: usize| (stored_points > 0).then(|| round(bytes as f64 / stored_points as f64, 1));
    History {
        since_ms,
        until_ms,
        points: n,
        timestamps,
        metrics,
        chunks: read.chunks.len(),
        stored_points,
        encoded_bytes,
        json_bytes,
        ratio: (encoded_bytes > 0).then(|| round(json_bytes as f64 / encoded_bytes as f64, 1)),
        bytes_per_point: per(encoded_bytes),
        json_bytes_per_point: per(json_bytes),
        retention_secs: retention_ms / 1000,
        bad_chunks: read.bad.clone(),
    }
}

#[cfg(test)]
mod tests;
