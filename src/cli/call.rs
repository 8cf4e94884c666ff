//! Running one operation from the command line: one JSON-RPC call, with a
//! progress bar on a terminal for the long backup operations, and the
//! result rendered (or printed as JSON with `--json`).

use std::time::Duration;

use serde_json::Value;

use super::{output, Conn};
use crate::error::{Error, Result};
use crate::ops::OpInfo;

/// Operations that draw a progress bar (from `backup_status`).
const WITH_PROGRESS: &[&str] = &["backup_create", "backup_restore", "backup_drill"];

/// Make the call and render its result.
pub async fn run(op: &OpInfo, params: Value, conn: &Conn) -> Result<String> {
    use std::io::IsTerminal;
    let detailed = params.get("detailed") == Some(&Value::Bool(true));
    let v = if WITH_PROGRESS.contains(&op.method) && std::io::stderr().is_terminal() && !conn.json {
        with_progress(op.method, params, conn).await?
    } else {
        conn.client()
            .await?
            .call(op.method, params)
            .await
            .map_err(|e| e.into_error())?
    };
    let text = output::render(conn, op.method, &v, detailed);
    // A verification that found damage fails the command (exit 5).
    if (op.method == "snapshot_verify" || op.method == "backup_verify") && v["ok"] == false {
        return Err(Error::corruption(text));
    }
    Ok(text)
}

/// The call, with a progress bar on stderr while it runs (polling
/// `backup_status`), and the final figures when it is done.
async fn with_progress(method: &str, params: Value, conn: &Conn) -> Result<Value> {
    use crate::backup::progress::{render, Snapshot};
    use std::io::Write;
    let client = conn.client().await?;
    let poller = client.clone();
    let status = || async {
        poller
            .call("backup_status", serde_json::json!({}))
            .await
            .ok()
    };
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
