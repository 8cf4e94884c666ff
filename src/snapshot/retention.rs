//! Retention in restic's vocabulary, as a plan first: `keep-last`,
//! `keep-hourly`, `keep-daily`, `keep-weekly`, `keep-monthly`, `keep-within`.
//!
//! Snapshots are walked newest first. `keep-last n` keeps the n newest.
//! `keep-hourly n` (daily, weekly, monthly alike) keeps the newest snapshot
//! of each of the n most recent hours (days, ISO weeks, months) that have
//! one. `keep-within d` keeps every snapshot taken within d of the newest
//! snapshot. Whatever the policy, the newest verified snapshot is kept.

use std::time::Duration;

use chrono::{DateTime, Datelike, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Which snapshots (or backups) to keep.
#[derive(
    Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema, clap::Args,
)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Policy {
    /// Keep the n newest.
    #[arg(long)]
    pub keep_last: Option<u32>,
    /// Keep the newest of each of the n most recent hours that have one.
    #[arg(long)]
    pub keep_hourly: Option<u32>,
    /// Keep the newest of each of the n most recent days that have one.
    #[arg(long)]
    pub keep_daily: Option<u32>,
    /// Keep the newest of each of the n most recent ISO weeks that have one.
    #[arg(long)]
    pub keep_weekly: Option<u32>,
    /// Keep the newest of each of the n most recent months that have one.
    #[arg(long)]
    pub keep_monthly: Option<u32>,
    /// Keep every one taken within this long of the newest, e.g. 36h, 7d, 2w, 1d12h.
    #[arg(long)]
    pub keep_within: Option<String>,
}

impl Policy {
    pub fn is_empty(&self) -> bool {
        self.keep_last.is_none()
            && self.keep_hourly.is_none()
            && self.keep_daily.is_none()
            && self.keep_weekly.is_none()
            && self.keep_monthly.is_none()
            && self.keep_within.is_none()
    }

    pub fn validate(&self) -> Result<()> {
        let counts = [
            self.keep_last,
            self.keep_hourly,
            self.keep_daily,
            self.keep_weekly,
            self.keep_monthly,
        ];
        if !counts.iter().any(|c| c.unwrap_or(0) > 0) && self.keep_within.is_none() {
            return Err(Error::invalid(
                "a retention policy needs at least one of keep-last, keep-hourly, keep-daily, keep-weekly, keep-monthly (> 0) or keep-within; refusing a policy that would delete everything",
            ));
        }
        if let Some(w) = &self.keep_within {
            parse_duration(w)?;
        }
        Ok(())
    }
}

/// `1w2d3h30m15s` → Duration. Units: w, d, h, m, s.
pub fn parse_duration(text: &str) -> Result<Duration> {
    let bad = || {
        Error::invalid(format!(
            "keep-within {text:?} is not a duration like 36h, 7d, 2w or 1d12h"
        ))
    };
    let mut total = 0u64;
    let mut num = String::new();
    for c in text.trim().chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let n: u64 = num.parse().map_err(|_| bad())?;
        num.clear();
        let unit = match c {
            'w' => 7 * 86_400,
            'd' => 86_400,
            'h' => 3_600,
            'm' => 60,
            's' => 1,
            _ => return Err(bad()),
        };
        total = total
            .checked_add(n.checked_mul(unit).ok_or_else(bad)?)
            .ok_or_else(bad)?;
    }
    if !num.is_empty() || total == 0 {
        return Err(bad());
    }
    Ok(Duration::from_secs(total))
}

/// What retention sees of a snapshot.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub name: String,
    pub created_at_ms: i64,
    pub verified: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    pub name: String,
    pub created_at_ms: i64,
    pub keep: bool,
    /// Every rule that keeps it, e.g. `daily 2026-11-25`, `last 3`.
    pub reasons: Vec<String>,
}

/// The plan: one decision per snapshot, newest first.
pub fn plan(policy: &Policy, snapshots: &[Candidate]) -> Result<Vec<Decision>> {
    policy.validate()?;
    let mut sorted: Vec<&Candidate> = snapshots.iter().collect();
    sorted.sort_by(|a, b| {
        b.created_at_ms
            .cmp(&a.created_at_ms)
            .then(b.name.cmp(&a.name))
    });
    let newest = sorted.first().map(|c| c.created_at_ms).unwrap_or(0);
    let within = match &policy.keep_within {
        Some(w) => Some(parse_duration(w)?.as_millis() as i64),
        None => None,
    };
    type Bucket = fn(DateTime<Utc>) -> String;
    let mut rules: Vec<(&str, u32, Bucket, Option<String>)> = Vec::new();
    let buckets: [(&str, Option<u32>, Bucket); 4] = [
        ("hourly", policy.keep_hourly, |t| {
            t.format("%Y-%m-%d %H:00").to_string()
        }),
        ("daily", policy.keep_daily, |t| {
            t.format("%Y-%m-%d").to_string()
        }),
        ("weekly", policy.keep_weekly, |t| {
            let w = t.iso_week();
            format!("{}-W{:02}", w.year(), w.week())
        }),
        ("monthly", policy.keep_monthly, |t| {
            format!("{}-{:02}", t.year(), t.month())
        }),
    ];
    for (label, n, f) in buckets {
        if let Some(n) = n {
            rules.push((label, n, f, None));
        }
    }
    let mut last_left = policy.keep_last.unwrap_or(0);
    let newest_verified = sorted.iter().find(|c| c.verified).map(|c| c.name.clone());
    let mut out = Vec::with_capacity(sorted.len());
    for c in sorted {
        let t = DateTime::from_timestamp_millis(c.created_at_ms).unwrap_or_default();
        let mut reasons = Vec::new();
        if last_left > 0 {
            reasons.push(format!("last {}", policy.keep_last.unwrap_or(0)));
            last_left -= 1;
        }
        for (label, left, bucket_of, last_bucket) in rules.iter_mut() {
            if *left == 0 {
                continue;
            }
            let b = bucket_of(t);
            if last_bucket.as_deref() != Some(b.as_str()) {
                reasons.push(format!("{label} {b}"));
                *last_bucket = Some(b);
                *left -= 1;
            }
        }
        if let Some(w) = within {
            if newest - c.created_at_ms <= w {
                reasons.push(format!(
                    "within {}",
                    policy.keep_within.clone().unwrap_or_default()
                ));
            }
        }
        if newest_verified.as_deref() == Some(c.name.as_str()) {
            reasons.push("newest verified snapshot".into());
        }
        out.push(Decision {
            name: c.name.clone(),
            created_at_ms: c.created_at_ms,
            keep: !reasons.is_empty(),
            reasons,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000;
    const D: i64 = 24 * H;
    /// 2026-01-01T00:00:00Z, a Thursday.
    const T0: i64 = 1_767_225_600_000;

    fn hourly_history(hours: i64) -> Vec<Candidate> {
        (0..hours)
            .map(|i| Candidate {
                name: format!("s{i:04}"),
                created_at_ms: T0 + i * H + 5 * 60_000,
                verified: false,
            })
            .collect()
    }

    fn kept(plan: &[Decision]) -> Vec<String> {
        let mut k: Vec<String> = plan
            .iter()
            .filter(|d| d.keep)
            .map(|d| d.name.clone())
            .collect();
        k.sort();
        k
    }

    #[test]
    fn keep_last_keeps_the_newest_n() {
        let h = hourly_history(300);
        let p = plan(
            &Policy {
                keep_last: Some(5),
                ..Default::default()
            },
            &h,
        )
        .unwrap();
        assert_eq!(kept(&p), ["s0295", "s0296", "s0297", "s0298", "s0299"]);
        assert_eq!(p.len(), 300);
        assert_eq!(p[0].name, "s0299", "plan is newest first");
    }

    #[test]
    fn daily_keeps_the_newest_of_each_day() {
        // 300 hourly snapshots from 2026-01-01 00:05 to 2026-01-13 11:05.
        let h = hourly_history(300);
        let p = plan(
            &Policy {
                keep_daily: Some(3),
                ..Default::default()
            },
            &h,
        )
        .unwrap();
        // Newest of Jan 13 (hour 299), Jan 12 (hour 287 = 11*24+23), Jan 11 (263).
        assert_eq!(kept(&p), ["s0263", "s0287", "s0299"]);
        let reasons = &p.iter().find(|d| d.name == "s0287").unwrap().reasons;
        assert_eq!(reasons, &["daily 2026-01-12"]);
    }

    #[test]
    fn hourly_weekly_monthly_and_within_combine() {
        // One snapshot a day at 00:05 for 400 days, from 2026-01-01.
        let h: Vec<Candidate> = (0..400)
            .map(|i| Candidate {
                name: format!("d{i:03}"),
                created_at_ms: T0 + i * D + 5 * 60_000,
                verified: false,
            })
            .collect();
        let p = plan(
            &Policy {
                keep_weekly: Some(2),
                keep_monthly: Some(3),
                keep_within: Some("2d".into()),
                ..Default::default()
            },
            &h,
        )
        .unwrap();
        // Newest: day 399 = 2027-02-04 (Thursday, ISO week 2027-W05).
        // within 2d: days 397, 398, 399. weekly: newest of W05 (399) and W04
        // (Sunday 2027-01-31 = day 395). monthly: Feb 2027 (399), Jan 2027
        // (day 395 = Jan 31), Dec 2026 (day 364 = Dec 31).
        assert_eq!(kept(&p), ["d364", "d395", "d397", "d398", "d399"]);
        let d395 = p.iter().find(|d| d.name == "d395").unwrap();
        assert_eq!(d395.reasons, ["weekly 2027-W04", "monthly 2027-01"]);
        let p = plan(
            &Policy {
                keep_hourly: Some(24),
                ..Default::default()
            },
            &hourly_history(30),
        )
        .unwrap();
        assert_eq!(kept(&p).len(), 24);
    }

    #[test]
    fn newest_verified_is_never_pruned() {
        let mut h = hourly_history(10);
        h[3].verified = true;
        h[1].verified = true;
        let p = plan(
            &Policy {
                keep_last: Some(2),
                ..Default::default()
            },
            &h,
        )
        .unwrap();
        assert_eq!(kept(&p), ["s0003", "s0008", "s0009"]);
        assert!(p
            .iter()
            .find(|d| d.name == "s0003")
            .unwrap()
            .reasons
            .contains(&"newest verified snapshot".to_string()));
    }

    #[test]
    fn bad_policies_are_refused() {
        assert!(plan(&Policy::default(), &[]).is_err());
        assert!(plan(
            &Policy {
                keep_last: Some(0),
                keep_daily: Some(0),
                ..Default::default()
            },
            &[]
        )
        .is_err());
        for bad in ["", "7", "3x", "d", "-1d", "0s"] {
            let p = Policy {
                keep_within: Some(bad.into()),
                ..Default::default()
            };
            assert!(plan(&p, &[]).is_err(), "{bad:?}");
        }
        assert_eq!(
            parse_duration("1d12h").unwrap(),
            Duration::from_secs(36 * 3600)
        );
        assert_eq!(
            parse_duration("2w").unwrap(),
            Duration::from_secs(14 * 86_400)
        );
    }
}
