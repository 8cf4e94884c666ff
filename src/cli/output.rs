//! Human-readable output for client commands (`--json` prints the raw result).

use serde_json::Value;

use super::Conn;

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
}

fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut x = b as f64;
    let mut u = 0;
    while x >= 1024.0 && u < UNITS.len() - 1 {
        x /= 1024.0;
        u += 1;
    }
    format!("{x:.1} {}", UNITS[u])
}

pub fn render(conn: &Conn, method: &str, v: &Value, detailed: bool) -> String {
    if conn.json {
        return pretty(v);
    }
    match method {
        "storage_write" => format!("wrote {} key(s)", v["written"]),
        "storage_read" => match v["value"].as_str() {
            Some(s) => s.to_string(),
            None => format!("(not found: {})", v["key"].as_str().unwrap_or_default()),
        },
        "storage_delete" => format!("deleted {} of {}", v["deleted"], v["requested"]),
        "storage_scan" => {
            let mut out = String::new();
            for e in v["entries"].as_array().into_iter().flatten() {
                out.push_str(&format!(
                    "{}\t{}\n",
                    e["key"].as_str().unwrap_or_default(),
                    e["value"].as_str().unwrap_or_default()
                ));
            }
            if let Some(c) = v["next_cursor"].as_str() {
                out.push_str(&format!("(more: --cursor {c:?})\n"));
            }
            out.trim_end().to_string()
        }
        "storage_stats" if v["history"].is_object() => history_report(&v["history"]),
        "storage_stats" => {
            let s = &v["store"];
            let mut out = format!(
                "store        {}\nsize         {} (on disk {})\nsync         {}\ncompression  {}\nsequence     {}\nvectors      ~{}\nkv keys      ~{}\nmemory       ~{}\nwrites       {} ({})\nreads        {} ({})\nuptime       {}s",
                s["path"].as_str().unwrap_or_default(),
                human_bytes(s["size_bytes"].as_u64().unwrap_or(0)),
                human_bytes(s["disk_bytes"].as_u64().unwrap_or(0)),
                s["sync"].as_str().unwrap_or_default(),
                s["compression"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(cf, spec)| format!("{cf}={}", spec.as_str().unwrap_or_default()))
                    .collect::<Vec<_>>()
                    .join(" "),
                s["latest_sequence"],
                v["vectors_estimate"],
                v["kv_keys_estimate"],
                v["memory_entries_estimate"],
                s["writes"],
                human_bytes(s["write_bytes"].as_u64().unwrap_or(0)),
                s["reads"],
                human_bytes(s["read_bytes"].as_u64().unwrap_or(0)),
                s["uptime_secs"],
            );
            if detailed {
                out.push_str(
                    "\n\ncolumn family   keys~      sst        memtable   compression  ratio",
                );
                for c in s["column_families"].as_array().into_iter().flatten() {
                    let name = c["name"].as_str().unwrap_or_default();
                    let (raw, stored) = (
                        c["raw_bytes"].as_u64().unwrap_or(0),
                        c["stored_bytes"].as_u64().unwrap_or(0),
                    );
                    out.push_str(&format!(
                        "\n{:<15} {:<10} {:<10} {:<10} {:<12} {}",
                        name,
                        c["estimate_num_keys"],
                        human_bytes(c["sst_bytes"].as_u64().unwrap_or(0)),
                        human_bytes(c["memtable_bytes"].as_u64().unwrap_or(0)),
                        s["compression"][name].as_str().unwrap_or_default(),
                        if stored > 0 {
                            format!("{:.2}", raw as f64 / stored as f64)
                        } else {
                            "-".to_string()
                        }
                    ));
                }
                out.push_str("\n\nactors\n");
                out.push_str(&pretty(&v["actors"]));
                out.push_str("\n\nrecords (also on the memory bus)\n");
                out.push_str(&pretty(&v["records"]));
                out.push_str("\n\nmetrics (as on GET /metrics)");
                for (name, value) in v["metrics"].as_object().into_iter().flatten() {
                    out.push_str(&format!("\n{name:<60} {value}"));
                }
            }
            out
        }
        "snapshot_list" => {
            let mut out = format!(
                "{:<36} {:<9} {:<25} {:>12} {:>12}  verified",
                "name", "kind", "created_at", "size", "exclusive"
            );
            for s in v["snapshots"].as_array().into_iter().flatten() {
                out.push_str(&format!(
                    "\n{:<36} {:<9} {:<25} {:>12} {:>12}  {}",
                    s["name"].as_str().unwrap_or_default(),
                    s["kind"].as_str().unwrap_or_default(),
                    s["created_at"].as_str().unwrap_or_default(),
                    human_bytes(s["total_bytes"].as_u64().unwrap_or(0)),
                    s["exclusive_bytes"]
                        .as_u64()
                        .map(human_bytes)
                        .unwrap_or_else(|| "-".into()),
                    match s["verified"].as_bool() {
                        Some(true) => "yes",
                        Some(false) => "FAILED",
                        None => "-",
                    },
                ));
            }
            out
        }
        "snapshot_prune" => {
            let mut out = String::new();
            for d in v["plan"].as_array().into_iter().flatten() {
                let keep = d["keep"].as_bool().unwrap_or(true);
                let reasons: Vec<&str> = d["reasons"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|r| r.as_str())
                    .collect();
                out.push_str(&format!(
                    "{} {:<36} {}\n",
                    if keep { "keep  " } else { "delete" },
                    d["name"].as_str().unwrap_or_default(),
                    reasons.join(", ")
                ));
            }
            out.push_str(&format!(
                "{}: keep {}, delete {}",
                if v["dry_run"].as_bool().unwrap_or(false) {
                    "plan (dry run, nothing deleted)"
                } else {
                    "pruned"
                },
                v["keep"],
                v["delete"]
            ));
            out
        }
        "snapshot_verify" => {
            let mut out = format!(
                "snapshot {}: {} ({} files, {}, {} keys read, {:.0} MB/s)",
                v["name"].as_str().unwrap_or_default(),
                if v["ok"].as_bool() == Some(true) {
                    "OK"
                } else {
                    "FAILED"
                },
                v["files_checked"],
                human_bytes(v["bytes_checked"].as_u64().unwrap_or(0)),
                v["keys_read"],
                v["mb_per_s"].as_f64().unwrap_or(0.0)
            );
            for b in v["bad_files"].as_array().into_iter().flatten() {
                out.push_str(&format!(
                    "\n  bad: {}: {}",
                    b["file"].as_str().unwrap_or_default(),
                    b["problem"].as_str().unwrap_or_default()
                ));
            }
            out
        }
        "storage_check" => check_report(v),
        "analyze_compression" => compression_report(v),
        "storage_compress" if v.get("collection").is_some() => match v["job"].as_str() {
            Some(state) => format!(
                "{}: {} -> {} {state}\n{}",
                v["collection"].as_str().unwrap_or_default(),
                v["from"].as_str().unwrap_or_default(),
                v["to"].as_str().unwrap_or_default(),
                v["note"].as_str().unwrap_or_default()
            ),
            None => format!(
                "{}: {} -> {}, {} vectors re-encoded ({:.1} s)",
                v["collection"].as_str().unwrap_or_default(),
                v["from"].as_str().unwrap_or_default(),
                v["to"].as_str().unwrap_or_default(),
                v["reencoded"],
                v["elapsed_ms"].as_f64().unwrap_or(0.0) / 1000.0
            ),
        },
        "storage_compress" => {
            let mut out = format!(
                "{}: {} (was {})",
                v["type"].as_str().unwrap_or_default(),
                v["compression"].as_str().unwrap_or_default(),
                v["previous"].as_str().unwrap_or_default()
            );
            let r = &v["rewrite"];
            if r.is_object() {
                out.push_str(&format!(
                    "\nrewritten: {} -> {} of table files, ratio {} -> {} ({:.1} s)",
                    human_bytes(r["sst_bytes_before"].as_u64().unwrap_or(0)),
                    human_bytes(r["sst_bytes_after"].as_u64().unwrap_or(0)),
                    r["ratio_before"],
                    r["ratio_after"],
                    r["elapsed_ms"].as_f64().unwrap_or(0.0) / 1000.0
                ));
            }
            if let Some(note) = v["note"].as_str() {
                out.push_str(&format!("\n{note}"));
            }
            out
        }
        "backup_verify" => verify_report(v),
        _ => pretty(v),
    }
}

/// The bars of a sparkline, lowest to highest.
const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// One character per value, scaled between `min` and `max` (a flat series
/// is drawn at the bottom; a missing value is a space).
pub fn sparkline(values: &[Option<f64>], min: f64, max: f64) -> String {
    values
        .iter()
        .map(|v| match v {
            None => ' ',
            Some(_) if max <= min => BARS[0],
            Some(v) => {
                let x = ((v - min) / (max - min) * 7.0).round().clamp(0.0, 7.0);
                BARS[x as usize]
            }
        })
        .collect()
}

/// `stats --history`: a header with the window and the encoding's ratio,
/// then a sparkline per metric with its min, max and last value.
fn history_report(h: &Value) -> String {
    let ms = |k: &str| h[k].as_i64().unwrap_or(0);
    let mut out = format!(
        "metrics history {} .. {}: {} point(s)",
        crate::clock::iso_ms(ms("since_ms")),
        crate::clock::iso_ms(ms("until_ms")),
        h["points"]
    );
    match h["ratio"].as_f64() {
        Some(r) => out.push_str(&format!(
            "; stored {} in {} chunk(s), {} B/point vs {} B/point as JSON records ({r}x)",
            human_bytes(h["encoded_bytes"].as_u64().unwrap_or(0)),
            h["chunks"],
            h["bytes_per_point"],
            h["json_bytes_per_point"],
        )),
        None => out.push_str(" (nothing recorded yet: a point is kept every status tick)"),
    }
    let fig = |v: &Value| v.as_f64().map_or("-".to_string(), |x| format!("{x}"));
    for m in h["metrics"].as_array().into_iter().flatten() {
        let values: Vec<Option<f64>> = m["values"]
            .as_array()
            .into_iter()
            .flatten()
            .map(Value::as_f64)
            .collect();
        let (min, max) = (m["min"].as_f64(), m["max"].as_f64());
        out.push_str(&format!(
            "\n{:<20} {}  min {} max {} last {}",
            m["name"].as_str().unwrap_or_default(),
            sparkline(&values, min.unwrap_or(0.0), max.unwrap_or(0.0)),
            fig(&m["min"]),
            fig(&m["max"]),
            fig(&m["last"]),
        ));
    }
    for b in h["bad_chunks"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "\n  bad chunk at {}: {}",
            crate::clock::iso_ms(b["start_ms"].as_i64().unwrap_or(0)),
            b["problem"].as_str().unwrap_or_default()
        ));
    }
    out
}

/// `check [--verify-integrity]`: a line per column family, then the problems.
fn check_report(v: &Value) -> String {
    let mut out = format!(
        "{}: {} at sequence {} ({:.1} s, {:.0} MB/s)",
        if v["deep"] == true {
            "check --verify-integrity"
        } else {
            "check"
        },
        if v["ok"] == true {
            "OK".to_string()
        } else {
            format!("{} PROBLEM(S)", v["problems_total"])
        },
        v["sequence"],
        v["seconds"].as_f64().unwrap_or(0.0),
        v["mb_per_s"].as_f64().unwrap_or(0.0)
    );
    for cf in v["column_families"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "\n  {:<9} {:>10} keys {:>10}  {}",
            cf["name"].as_str().unwrap_or_default(),
            cf["keys"],
            human_bytes(cf["bytes"].as_u64().unwrap_or(0)),
            match cf["problems"].as_u64() {
                Some(0) | None => "ok".to_string(),
                Some(n) => format!("{n} problem(s)"),
            }
        ));
    }
    out.push_str(&format!(
        "\n  collections {}, indexes checked {}, access counters {} ({} orphaned)",
        v["collections"], v["indexes_checked"], v["access_counters"], v["orphan_access_counters"]
    ));
    for p in v["problems"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "\n  bad: {} {:?}: {}",
            p["column_family"].as_str().unwrap_or_default(),
            p["key"].as_str().unwrap_or_default(),
            p["problem"].as_str().unwrap_or_default()
        ));
    }
    out
}

/// `backup verify`: a summary line, then each problem and what it breaks.
fn verify_report(v: &Value) -> String {
    let archive = &v["archive"];
    let mut out = format!(
        "{}: {} ({} backup(s), {} files, {} WAL segment(s) {}, {} read, {:.1} s)",
        v["location"].as_str().unwrap_or_default(),
        if v["ok"] == true {
            "OK".to_string()
        } else {
            format!("{} PROBLEM(S)", v["bad"].as_array().map_or(0, |b| b.len()))
        },
        v["backups"].as_array().map_or(0, |b| b.len()),
        v["files_checked"],
        archive["segments"],
        match (archive["start"].as_u64(), archive["end"].as_u64()) {
            (Some(a), Some(b)) => format!("covering {}..={b}", a + 1),
            _ => "(no archive range)".to_string(),
        },
        human_bytes(v["bytes_read"].as_u64().unwrap_or(0)),
        v["seconds"].as_f64().unwrap_or(0.0)
    );
    for b in v["bad"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "\n  bad: {} ({}): {} — {}",
            b["object"].as_str().unwrap_or_default(),
            b["file"].as_str().unwrap_or_default(),
            b["problem"].as_str().unwrap_or_default(),
            b["breaks"].as_str().unwrap_or_default()
        ));
    }
    out
}

/// `analyze-compression`: a line per column family (and its candidates
/// with `--show-ratio`), then each collection's quantization levels.
fn compression_report(v: &Value) -> String {
    let mut out = format!(
        "{:<10} {:<13} {:>10} {:>10} {:>7}  recommended",
        "family", "compression", "raw", "stored", "ratio"
    );
    for f in v["families"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "\n{:<10} {:<13} {:>10} {:>10} {:>7}  {}",
            f["family"].as_str().unwrap_or_default(),
            f["compression"].as_str().unwrap_or_default(),
            human_bytes(f["raw_bytes"].as_u64().unwrap_or(0)),
            human_bytes(f["stored_bytes"].as_u64().unwrap_or(0)),
            f["ratio"],
            f["recommended"].as_str().unwrap_or("-"),
        ));
        for c in f["candidates"].as_array().into_iter().flatten() {
            out.push_str(&format!(
                "\n    {:<13} predicted {:>7}  {:>8} MB/s{}",
                c["compression"].as_str().unwrap_or_default(),
                c["predicted_ratio"],
                c["encode_mb_s"]
                    .as_f64()
                    .map_or("-".to_string(), |s| s.to_string()),
                c["note"]
                    .as_str()
                    .map(|n| format!("  ({n})"))
                    .unwrap_or_default()
            ));
        }
    }
    for c in v["collections"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "\n\ncollection {} ({}-dim, {}, {} vectors sampled)\n    {:<15} {:>9} {:>10}",
            c["collection"].as_str().unwrap_or_default(),
            c["dimension"],
            c["storage_format"].as_str().unwrap_or_default(),
            c["vectors_sampled"],
            "quantization",
            "ratio",
            "recall@10"
        ));
        if let Some(d) = c.get("dedup").filter(|d| !d.is_null()) {
            out.push_str(&format!(
                "\n    dedup: {} ids over {} distinct vectors, ratio {:.2}",
                d["vectors"],
                d["unique_vectors"],
                d["dedup_ratio"].as_f64().unwrap_or(1.0)
            ));
        }
        for q in c["candidates"].as_array().into_iter().flatten() {
            match q["refused"].as_str() {
                Some(why) => out.push_str(&format!(
                    "\n    {:<15} refused: {why}",
                    q["storage_format"].as_str().unwrap_or_default()
                )),
                None => out.push_str(&format!(
                    "\n    {:<15} {:>9} {:>10}",
                    q["storage_format"].as_str().unwrap_or_default(),
                    q["predicted_ratio"],
                    q["recall_at_10"]
                )),
            }
        }
    }
    out
}
