//! MCP over stdio with a real MCP client (rmcp): initialize, tools/list
//! against INTEROP.md's schemas, every memory tool, errors, and two MCP
//! processes sharing one data dir through one auto-started daemon.

mod common;

use std::path::Path;

use common::BIN;
use rmcp::model::CallToolRequestParams;
use rmcp::service::{RoleClient, RunningService};
use rmcp::ServiceExt;
use serde_json::{json, Map, Value};

type Mcp = RunningService<RoleClient, ()>;

async fn connect(data_dir: &Path) -> Mcp {
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.arg("mcp").arg("--data-dir").arg(data_dir);
    let transport = rmcp::transport::TokioChildProcess::new(cmd).expect("spawn mcp");
    ().serve(transport).await.expect("initialize")
}

fn args(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap()
}

/// Call a tool; returns (isError, structured or parsed text).
async fn call(m: &Mcp, name: &str, a: Value) -> (bool, Value) {
    let r = m
        .call_tool(CallToolRequestParams::new(name.to_string()).with_arguments(args(a)))
        .await
        .unwrap_or_else(|e| panic!("{name}: protocol error {e}"));
    let text = r
        .content
        .first()
        .and_then(|c| c.as_text())
        .map(|t| t.text.clone())
        .unwrap_or_default();
    let is_error = r.is_error == Some(true);
    if is_error && r.structured_content.is_none() {
        return (true, Value::String(text));
    }
    let parsed: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    if let Some(sc) = &r.structured_content {
        assert_eq!(
            sc, &parsed,
            "content[0] text and structuredContent carry the same object"
        );
    }
    (is_error, parsed)
}

/// Stops the auto-started daemon when the test ends, however it ends.
struct DaemonGuard<'a>(&'a Path);
impl Drop for DaemonGuard<'_> {
    fn drop(&mut self) {
        if let Ok(Some(info)) = ruvector_storage::client::read_daemon_info(self.0) {
            unsafe {
                libc::kill(info.pid as i32, libc::SIGTERM);
            }
            for _ in 0..500 {
                if unsafe { libc::kill(info.pid as i32, 0) } != 0 {
                    return;
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            unsafe {
                libc::kill(info.pid as i32, libc::SIGKILL);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_tools_list_matches_interop_and_memory_tools_work() {
    let dir = tempfile::tempdir().unwrap();
    let _guard = DaemonGuard(dir.path());
    let m = connect(dir.path()).await;
    let info = m.peer_info().expect("server info");
    assert_eq!(
        info.server_info.as_ref().map(|s| s.name.as_str()),
        Some("ruvector-storage")
    );
    assert!(info.capabilities.tools.is_some());

    let tools = m.list_all_tools().await.unwrap();
    let schema = |name: &str| -> Value {
        Value::Object(
            (*tools
                .iter()
                .find(|t| t.name == name)
                .unwrap_or_else(|| panic!("no tool {name}"))
                .input_schema)
                .clone(),
        )
    };
    assert_eq!(
        schema("memory_usage"),
        json!({"type":"object","required":["action"],"properties":{
        "action":{"type":"string","enum":["store","retrieve","list","delete","search"]},
        "key":{"type":"string"},"value":{"type":"string"},
        "namespace":{"type":"string","default":"default"},"ttl":{"type":"number"}}})
    );
    let required = |name: &str| schema(name)["required"].clone();
    assert_eq!(required("memory_store"), json!(["key", "value"]));
    assert_eq!(required("memory_retrieve"), json!(["key"]));
    assert_eq!(required("memory_search"), json!(["query"]));
    assert_eq!(required("memory_delete"), json!(["key"]));
    assert_eq!(schema("memory_list")["required"], Value::Null);
    for (tool, props) in [
        (
            "memory_store",
            &["key", "value", "namespace", "tags", "ttl", "upsert"][..],
        ),
        (
            "memory_search",
            &["query", "namespace", "limit", "threshold"][..],
        ),
        ("memory_list", &["namespace", "limit", "tags"][..]),
    ] {
        let mut have: Vec<String> = schema(tool)["properties"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        have.sort();
        let mut want: Vec<String> = props.iter().map(|s| s.to_string()).collect();
        want.sort();
        assert_eq!(have, want, "{tool} properties");
    }
    assert_eq!(
        schema("memory_store")["properties"]["upsert"]["default"],
        false
    );
    assert_eq!(
        schema("memory_search")["properties"]["limit"]["default"],
        10
    );
    assert_eq!(
        schema("memory_search")["properties"]["threshold"]["default"],
        0.3
    );
    assert!(tools.iter().any(|t| t.name == "memory_stats"));
    for t in [
        "storage_write",
        "storage_read",
        "storage_scan",
        "vector_upsert",
        "collection_create",
    ] {
        assert!(tools.iter().any(|x| x.name == t), "missing {t}");
    }

    // v2 memory_usage, as the seed calls it.
    let record = json!({"vectors_stored": 1000000, "storage_format": "quantized_int8"}).to_string();
    let (e, r) = call(
        &m,
        "memory_usage",
        json!({"action": "store", "key": "swarm/vector/status",
        "namespace": "coordination", "value": record}),
    )
    .await;
    assert!(
        !e && r["stored"] == true && r["namespace"] == "coordination",
        "{r}"
    );
    let (_, r) = call(
        &m,
        "memory_usage",
        json!({"action": "retrieve", "key": "swarm/vector/status", "namespace": "coordination"}),
    )
    .await;
    assert_eq!(r["value"]["storage_format"], "quantized_int8");
    let (_, r) = call(
        &m,
        "memory_usage",
        json!({"action": "search", "value": "vector/status", "namespace": "coordination"}),
    )
    .await;
    assert_eq!(r["count"], 1);
    let (_, r) = call(
        &m,
        "memory_usage",
        json!({"action": "list", "namespace": "coordination"}),
    )
    .await;
    assert!(r["entries"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["key"] == "swarm/vector/status"));
    let (e, r) = call(&m, "memory_usage", json!({"action": "explode"})).await;
    assert!(
        e && r["success"] == false && r["error"] == "Unknown memory action: explode",
        "{r}"
    );

    // v3 tools.
    let (e, r) = call(&m, "memory_store", json!({"key": "plan", "value": {"steps": ["a", "b"]}, "tags": ["t1"], "namespace": "agents/a"})).await;
    assert!(!e && r["created"] == true, "{r}");
    let (e, r) = call(
        &m,
        "memory_store",
        json!({"key": "plan", "value": "again", "namespace": "agents/a"}),
    )
    .await;
    assert!(e, "storing an existing key without upsert is an error: {r}");
    assert!(r.to_string().contains("upsert"), "{r}");
    let (e, _) = call(
        &m,
        "memory_store",
        json!({"key": "plan", "value": "replan", "upsert": true, "namespace": "agents/a"}),
    )
    .await;
    assert!(!e);
    let (_, r) = call(
        &m,
        "memory_retrieve",
        json!({"key": "plan", "namespace": "agents/a"}),
    )
    .await;
    assert_eq!(r["value"], "replan");
    let (_, r) = call(&m, "memory_retrieve", json!({"key": "plan"})).await;
    assert_eq!(r["found"], false, "default namespace does not see agents/a");
    call(&m, "memory_store", json!({"key": "notes", "value": "rocksdb compaction tuning", "namespace": "agents/a", "tags": ["t1", "t2"]})).await;
    let (_, r) = call(
        &m,
        "memory_search",
        json!({"query": "compaction", "namespace": "agents/a"}),
    )
    .await;
    assert_eq!(r["results"][0]["key"], "notes");
    assert!(r["results"][0]["score"].as_f64().unwrap() > 0.3);
    let (_, r) = call(
        &m,
        "memory_list",
        json!({"namespace": "agents/a", "tags": ["t2"]}),
    )
    .await;
    assert_eq!(r["count"], 1);
    let (_, r) = call(
        &m,
        "memory_delete",
        json!({"key": "notes", "namespace": "agents/a"}),
    )
    .await;
    assert_eq!(r["deleted"], true);
    let (_, r) = call(&m, "memory_stats", json!({})).await;
    assert!(
        r["totalEntries"].as_u64().unwrap() >= 2 && r["backend"] == "rocksdb",
        "{r}"
    );

    // Snapshot tools are there too.
    let (e, r) = call(&m, "snapshot_create", json!({"name": "from-mcp"})).await;
    assert!(!e && r["name"] == "from-mcp", "{r}");
    let (_, r) = call(&m, "snapshot_list", json!({"with_size": true})).await;
    assert_eq!(r["snapshots"][0]["name"], "from-mcp");
    let (e, r) = call(&m, "snapshot_delete", json!({"name": "from-mcp"})).await;
    assert!(e && r.to_string().contains("confirm"), "{r}");

    // A failing operation is isError with a readable message.
    let (e, r) = call(
        &m,
        "vector_upsert",
        json!({"collection": "missing", "vectors": [{"id": "a", "vector": [1]}]}),
    )
    .await;
    assert!(e && r.to_string().contains("does not exist"), "{r}");
    // An unknown tool is a JSON-RPC error; arguments that do not fit are a
    // tool error naming the field (MCP 2025-11-25), so the model can fix them.
    let unknown = m
        .call_tool(CallToolRequestParams::new("no_such_tool").with_arguments(Map::new()))
        .await
        .expect_err("an unknown tool is a protocol error");
    assert!(unknown.to_string().contains("-32602"), "{unknown}");
    let (e, r) = call(&m, "memory_store", json!({"key": "x"})).await;
    assert!(e, "a missing value is a tool error: {r}");
    assert!(
        r.to_string().contains("invalid_input") && r.to_string().contains("value"),
        "the error names the field: {r}"
    );
    let (e, r) = call(&m, "storage_scan", json!({"limit": "ten"})).await;
    assert!(e && r.to_string().contains("limit"), "{r}");
    let (_, r) = call(&m, "memory_retrieve", json!({"key": "x"})).await;
    assert_eq!(r["found"], false, "nothing was stored by the refused call");
    m.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_mcp_processes_share_one_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let _guard = DaemonGuard(dir.path());
    let (a, b) = tokio::join!(connect(dir.path()), connect(dir.path()));
    let (e, _) = call(
        &a,
        "memory_store",
        json!({"key": "from-a", "value": "A", "namespace": "shared"}),
    )
    .await;
    assert!(!e);
    let (e, _) = call(
        &b,
        "memory_store",
        json!({"key": "from-b", "value": "B", "namespace": "shared"}),
    )
    .await;
    assert!(!e);
    let (_, r) = call(
        &b,
        "memory_retrieve",
        json!({"key": "from-a", "namespace": "shared"}),
    )
    .await;
    assert_eq!(r["value"], "A");
    let (_, r) = call(
        &a,
        "memory_retrieve",
        json!({"key": "from-b", "namespace": "shared"}),
    )
    .await;
    assert_eq!(r["value"], "B");
    let (_, r) = call(&a, "memory_list", json!({"namespace": "shared"})).await;
    assert_eq!(r["count"], 2);
    // The CLI sees the same data through the same daemon.
    let out = std::process::Command::new(BIN)
        .args([
            "memory",
            "retrieve",
            "--key",
            "from-b",
            "--namespace",
            "shared",
            "--json",
            "--data-dir",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["value"], "B");
    a.cancel().await.unwrap();
    b.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_reports_a_daemon_that_cannot_start() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.toml");
    std::fs::write(&cfg, "sync = \"sometimes\"\n").unwrap();
    let out = tokio::process::Command::new(BIN)
        .arg("--config")
        .arg(&cfg)
        .arg("mcp")
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("exited") && stderr.contains("sync"),
        "{stderr}"
    );
}

/// Raw HTTP/1.1 request; returns the status line.
fn http_status(addr: &str, request: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.lines().next().unwrap_or_default().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_over_streamable_http_serves_the_same_tools_to_a_real_client() {
    use std::io::BufRead;
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().unwrap();
    let _guard = DaemonGuard(dir.path());
    let mut server = Command::new(BIN)
        .args(["mcp", "--http", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut line = String::new();
    std::io::BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let _server = Kill(server);
    let url = serde_json::from_str::<Value>(&line).expect("address line")["mcp_url"]
        .as_str()
        .unwrap()
        .to_string();
    ruvector_storage::tls::install_crypto_provider();
    let transport = rmcp::transport::StreamableHttpClientTransport::from_uri(url.as_str());
    let m: Mcp = ().serve(transport).await.expect("initialize over HTTP");
    let tools = m.list_all_tools().await.unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    assert_eq!(names.len(), ruvector_storage::ops::OPS.len(), "{names:?}");
    for t in [
        "memory_usage",
        "memory_store",
        "index_upload",
        "backup_create",
    ] {
        assert!(names.contains(&t), "{t} missing: {names:?}");
    }
    let (e, _) = call(
        &m,
        "memory_store",
        json!({"key": "over-http", "value": {"n": 1}, "namespace": "agents/h"}),
    )
    .await;
    assert!(!e);
    let (_, r) = call(
        &m,
        "memory_retrieve",
        json!({"key": "over-http", "namespace": "agents/h"}),
    )
    .await;
    assert_eq!(r["value"]["n"], 1, "{r}");
    let (e, bad) = call(&m, "memory_retrieve", json!({"namespace": "agents/h"})).await;
    assert!(
        e && bad.to_string().contains("key"),
        "a missing key is a tool error naming it: {bad}"
    );
    // A large index chunk (6 MiB, 8 MiB as base64) goes through.
    use base64::Engine as _;
    let chunk: Vec<u8> = (0..6 << 20).map(|i: u32| (i % 251) as u8).collect();
    let (e, up) = call(
        &m,
        "index_upload",
        json!({"name": "big", "data": base64::engine::general_purpose::STANDARD.encode(&chunk)}),
    )
    .await;
    assert!(!e, "{up}");
    assert_eq!(up["received"], 6 << 20);
    let (e, r) = call(
        &m,
        "index_commit",
        json!({"name": "big", "upload_id": up["upload_id"], "index_type": "hnsw", "size": 6 << 20}),
    )
    .await;
    assert!(!e, "{r}");
    m.cancel().await.unwrap();

    // Browsers (any Origin), foreign Host names and other paths are refused.
    let addr = url
        .trim_start_matches("http://")
        .trim_end_matches("/mcp")
        .to_string();
    let init = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
    let post = |headers: &str| {
        format!(
            "POST /mcp HTTP/1.1\r\n{headers}Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{init}",
            init.len()
        )
    };
    let with_origin = http_status(
        &addr,
        &post(&format!("Host: {addr}\r\nOrigin: http://evil.example\r\n")),
    );
    assert!(with_origin.contains(" 403"), "{with_origin}");
    let foreign_host = http_status(&addr, &post("Host: evil.example\r\n"));
    assert!(foreign_host.contains(" 403"), "{foreign_host}");
    let plain = http_status(&addr, &post(&format!("Host: {addr}\r\n")));
    assert!(
        plain.contains(" 200"),
        "the same request without them works: {plain}"
    );
    let other = http_status(
        &addr,
        &format!("GET /x HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"),
    );
    assert!(other.contains(" 404"), "{other}");

    // Only loopback.
    let out = Command::new(BIN)
        .args([
            "mcp",
            "--http",
            "0.0.0.0:0",
            "--connect",
            "http://127.0.0.1:9",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("loopback only"), "{err}");
}
