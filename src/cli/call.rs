//! Running one operation from the command line: one JSON-RPC call, with a
//! progress bar on a terminal for the long backup operations, and the
//! result rendered (or printed as JSON with `--json`).

use std::time::Duration;

use serde_json::Value;

use super::{output, Conn};
use crate::error::{Error, Result};
use crate::ops::OpInfo;

/// Operations that draw a progress bar, and the status method they poll.
const WITH_PROGRESS: &[(&str, &str)] = &[
    ("backup_create", "backup_status"),
    ("backup_restore", "backup_status"),
    ("backup_drill", "backup_status"),
    ("storage_check", "maintenance_status"),
];

/// Make the call and render its result.
pub async fn run(op: &OpInfo, params: Value, conn: &Conn) -> Result<String> {
    use std::io::IsTerminal;
    let detailed = params.get("detailed") == Some(&Value::Bool(true));
    let poll = WITH_PROGRESS
        .iter()
        .find(|(m, _)| *m == op.method)
        .map(|(_, s)| *s);
    let v = if let Some(status) = poll.filter(|_| std::io::stderr().is_terminal() && !conn.json) {
        with_progress(op.method, status, params, conn).await?
    } else {
        conn.client()
            .await?
            .call(op.method, params)
            .await
            .map_err(|e| e.into_error())?
    };
    let text = output::render(conn, op.method, &v, detailed);
    // A verification that found damage fails the command (exit 5).
    if matches!(
        op.method,
        "snapshot_verify" | "backup_verify" | "storage_check"
    ) && v["ok"] == false
    {
        return Err(Error::corruption(text));
    }
    Ok(text)
}

/// The call, with a progress bar on stderr while it runs (polling its
/// status method), and the final figures when it is done.
async fn with_progress(method: &str, status: &str, params: Value, conn: &Conn) -> Result<Value> {
    use crate::backup::progress::{render, Snapshot};
    use std::io::Write;
    let client = conn.client().await?;
    let poller = client.clone();
    let status = || async { poller.call(status, serde_json::json!({})).await.ok() };
    let draw = |s: &Value, end: &str| {
        if let Ok(snap) = serde_json::from_value::<Snapshot>(s.clone()) {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K{}{end}", render(&snap, 30));
            let _ = err.flush();
        }
    };
    let call = client.call(method, params);
    tokio::pin!(call);
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let result = loop {
        tokio::select! {
            r = &mut call => break r,
            _ = tick.tick() => {
                if let Some(s) = status().await {
                    draw(&s["running"], "");
                }
            }
        }
    };
    if let Some(s) = status().await {
        draw(&s["last"], "\n");
    }
    result.map_err(|e| e.into_error())
}
