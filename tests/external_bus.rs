//! The external bus against real servers: a second daemon receives the
//! records over JSON-RPC, and over MCP through a real MCP server (this
//! binary's `mcp`, spawned over stdio, and `mcp --http`, over streamable
//! HTTP). While the second daemon is down,
//! storage work goes on and failures are counted; when it returns on the
//! same port, publishing resumes.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;
use ruvector_storage::client::Client;
use serde_json::{json, Value};

/// The port of a daemon's `http://127.0.0.1:<port>` URL (from its
/// daemon.json).
fn port_of(url: &str) -> u16 {
    url.trim_end_matches('/')
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in daemon URL {url:?}"))
}

/// The value of `key` in `ns` on `c`, parsed, if present.
async fn record(c: &Client, ns: &str, key: &str) -> Option<Value> {
    let r = c
        .call("memory_retrieve", json!({"key": key, "namespace": ns}))
        .await
        .ok()?;
    if r["found"] != true {
        return None;
    }
    match &r["value"] {
        Value::String(s) => serde_json::from_str(s).ok(),
        v => Some(v.clone()),
    }
}

async fn wait_for<T>(what: &str, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn external_stats(c: &Client) -> Vec<Value> {
    let s = ok(c, "storage_stats", json!({})).await;
    s["records"]["external_bus"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_reach_a_second_server_and_publishing_survives_its_outage() {
    let tmp = tempfile::tempdir().unwrap();
    let b_dir = tmp.path().join("b");
    // b binds an ephemeral port itself (no probe-then-reuse race) and
    // reports it in its daemon.json; a's configuration names that address.
    let b = start(&b_dir);
    let b_url = b.url.clone();
    let port = port_of(&b_url);
    // A third path: MCP over streamable HTTP, served by this binary's
    // `mcp --http` in front of b.
    let (mcp_http, mcp_url) = mcp_http_server(&b_url);
    let cfg = tmp.path().join("a.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"status-interval-secs = 1

[[bus.external]]
name = "b-jsonrpc"
url = "{b_url}"
namespaces = ["ruvector/storage"]

[[bus.external]]
name = "b-mcp"
command = [{bin:?}, "mcp", "--connect", "{b_url}"]
namespaces = ["ruvector/metrics"]

[[bus.external]]
name = "b-mcp-http"
mcp-url = "{mcp_url}"
namespaces = ["ruvector/storage"]
"#,
            bin = BIN
        ),
    )
    .unwrap();
    let a = start_full(
        &tmp.path().join("a"),
        &[],
        &[],
        &["--config", cfg.to_str().unwrap()],
        Stdio::inherit(),
    );
    let ac = a.client();
    let bc = b.client();

    // Both paths deliver: status over JSON-RPC, metrics over MCP.
    let status = wait_for("status on b", async || {
        record(&bc, "ruvector/storage", "swarm/storage/status").await
    })
    .await;
    assert!(status["timestamp"].is_string(), "{status}");
    let metrics = wait_for("metrics on b", async || {
        record(&bc, "ruvector/metrics", "swarm/storage/metrics").await
    })
    .await;
    assert!(metrics.get("timestamp").is_some(), "{metrics}");
    // Namespace filters hold: the MCP target did not get status records.
    let stats = wait_for("both targets counted as sending", async || {
        let s = external_stats(&ac).await;
        (s.len() == 3 && s.iter().all(|t| t["sent"].as_u64().unwrap_or(0) > 0)).then_some(s)
    })
    .await;
    assert!(stats.iter().all(|t| t["failures"] == 0), "{stats:?}");

    // Take b down: a keeps serving, failures are counted.
    b.terminate();
    for i in 0..20 {
        ok(
            &ac,
            "storage_write",
            json!({"key": format!("during-outage-{i}"), "value": "v"}),
        )
        .await;
    }
    let down = wait_for("failures while b is down", async || {
        let s = external_stats(&ac).await;
        s.iter()
            .all(|t| t["failures"].as_u64().unwrap_or(0) > 0 && t["last_error"].is_string())
            .then_some(s)
    })
    .await;
    assert!(
        down.iter().all(|t| t["pending"].as_u64().unwrap_or(0) >= 1),
        "{down:?}"
    );
    assert_eq!(
        ok(&ac, "storage_read", json!({"key": "during-outage-19"})).await["value"],
        "v"
    );

    // b returns on the same port: newer records arrive, errors clear. The
    // port is the one b held until a moment ago, so reusing it is a small,
    // accepted race (another process could take it in between); a's
    // configuration is fixed, so the address must stay the same.
    let b = start_with(&b_dir, &[], &["--listen", &format!("127.0.0.1:{port}")]);
    assert_eq!(b.url, b_url, "b came back on the address a publishes to");
    let bc = b.client();
    let before = status["timestamp"].as_str().unwrap().to_string();
    wait_for("a newer status on b", async || {
        let s = record(&bc, "ruvector/storage", "swarm/storage/status").await?;
        (s["timestamp"].as_str()? > before.as_str()).then_some(())
    })
    .await;
    let before_m = metrics["timestamp"].clone();
    wait_for("newer metrics on b (over MCP)", async || {
        let m = record(&bc, "ruvector/metrics", "swarm/storage/metrics").await?;
        (m["timestamp"] != before_m).then_some(())
    })
    .await;
    wait_for("errors cleared", async || {
        let s = external_stats(&ac).await;
        s.iter().all(|t| t["last_error"].is_null()).then_some(())
    })
    .await;
    drop(mcp_http);
}

/// `mcp --http 127.0.0.1:0 --connect <url>`; returns the process (killed on
/// drop) and its MCP URL.
fn mcp_http_server(daemon_url: &str) -> (KillOnDrop, String) {
    use std::io::BufRead;
    let mut child = std::process::Command::new(BIN)
        .args(["mcp", "--http", "127.0.0.1:0", "--connect", daemon_url])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn mcp --http");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("address line");
    let child = KillOnDrop(child);
    let url = serde_json::from_str::<Value>(&line).expect("address line is JSON")["mcp_url"]
        .as_str()
        .expect("mcp_url")
        .to_string();
    (child, url)
}

struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_bad_external_target_is_refused_at_start() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("a.toml");
    std::fs::write(
        &cfg,
        "[[bus.external]]\nname = \"x\"\nurl = \"ftp://nowhere\"\n",
    )
    .unwrap();
    let (code, _, e) = cli(&[
        "--config",
        cfg.to_str().unwrap(),
        "serve",
        "--data-dir",
        tmp.path().join("d").to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "{e}");
    assert!(
        e.contains("bus.external[0]") && e.contains("http://"),
        "{e}"
    );
}
