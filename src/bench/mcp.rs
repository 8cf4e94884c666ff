//! (e) MCP `memory_store` over stdio, one client making sequential calls,
//! against our `mcp` and optionally another MCP server (`--compare-mcp`).

use std::path::Path;
use std::process::Stdio;
use std::time::Instant;

use serde_json::{json, Map, Value};

use crate::client::Client;
use crate::error::{Error, Result};

use super::harness::rate;
use super::{BenchArgs, Report};

/// Measure (e): our `mcp --connect` in front of the daemon at `c`, then
/// the comparison server if one is given.
pub(super) async fn run(c: &Client, dir: &Path, args: &BenchArgs, r: &mut Report) -> Result<()> {
    let exe = std::env::current_exe().map_err(|e| Error::io(e.to_string()))?;
    let mut ours = tokio::process::Command::new(exe);
    ours.args(["mcp", "--connect", c.url()])
        .stderr(Stdio::null());
    let mcp_rate = mcp_store_rate(ours, args.mcp_calls).await?;
    r.add(
        "mcp_store_per_s",
        "(e) MCP memory_store (ruvector-storage, stdio)",
        mcp_rate,
        "calls/s",
    );
    if let Some(cmd) = &args.compare_mcp {
        let mut theirs = tokio::process::Command::new("sh");
        theirs
            .args(["-c", cmd])
            .stderr(Stdio::null())
            .current_dir(dir);
        let other = mcp_store_rate(theirs, (args.mcp_calls / 10).max(20)).await?;
        r.add(
            "mcp_compare_per_s",
            "(e) MCP memory_store (comparison server)",
            other,
            "calls/s",
        );
        r.add(
            "ratio_mcp_vs_compare",
            "    ratio ours/theirs",
            mcp_rate / other,
            "x",
        );
    }
    Ok(())
}

/// Drive an MCP stdio server with sequential `memory_store` calls.
async fn mcp_store_rate(cmd: tokio::process::Command, calls: usize) -> Result<f64> {
    use rmcp::model::CallToolRequestParams;
    use rmcp::ServiceExt;
    let transport = rmcp::transport::TokioChildProcess::new(cmd)
        .map_err(|e| Error::io(format!("starting MCP server: {e}")))?;
    let client = ().serve(transport).await.map_err(|e| Error::io(format!("MCP initialize: {e}")))?;
    let tools = client
        .list_all_tools()
        .await
        .map_err(|e| Error::io(format!("tools/list: {e}")))?;
    let v3 = tools.iter().any(|t| t.name == "memory_store");
    let args = |i: usize| -> Map<String, Value> {
        let v = if v3 {
            json!({"key": format!("bench/{i}"), "value": format!("value {i}"), "namespace": "bench", "upsert": true})
        } else {
            json!({"action": "store", "key": format!("bench/{i}"), "value": format!("value {i}"), "namespace": "bench"})
        };
        v.as_object().cloned().unwrap_or_default()
    };
    let name = if v3 { "memory_store" } else { "memory_usage" };
    let t = Instant::now();
    for i in 0..calls {
        let res = client
            .call_tool(CallToolRequestParams::new(name).with_arguments(args(i)))
            .await
            .map_err(|e| Error::io(format!("tools/call {name}: {e}")))?;
        if res.is_error == Some(true) {
            return Err(Error::internal(format!("{name} failed: {:?}", res.content)));
        }
    }
    let r = rate(calls, t.elapsed());
    let _ = client.cancel().await;
    Ok(r)
}
