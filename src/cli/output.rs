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
        "storage_stats" => {
            let s = &v["store"];
            let mut out = format!(
                "store        {}\nsize         {} (on disk {})\nsync         {}\ncompression  {}\nsequence     {}\nvectors      ~{}\nkv keys      ~{}\nmemory       ~{}\nwrites       {} ({})\nreads        {} ({})\nuptime       {}s",
                s["path"].as_str().unwrap_or_default(),
                human_bytes(s["size_bytes"].as_u64().unwrap_or(0)),
                human_bytes(s["disk_bytes"].as_u64().unwrap_or(0)),
                s["sync"].as_str().unwrap_or_default(),
                s["compression"].as_str().unwrap_or_default(),
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
                out.push_str("\n\ncolumn family   keys~      sst        memtable");
                for c in s["column_families"].as_array().into_iter().flatten() {
                    out.push_str(&format!(
                        "\n{:<15} {:<10} {:<10} {}",
                        c["name"].as_str().unwrap_or_default(),
                        c["estimate_num_keys"],
                        human_bytes(c["sst_bytes"].as_u64().unwrap_or(0)),
                        human_bytes(c["memtable_bytes"].as_u64().unwrap_or(0))
                    ));
                }
                out.push_str("\n\nactors\n");
                out.push_str(&pretty(&v["actors"]));
            }
            out
        }
        _ => pretty(v),
    }
}
