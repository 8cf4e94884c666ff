//! Running one operation from the command line: one JSON-RPC call, with a
//! progress bar on a terminal for the long backup operations, and the
//! result rendered (or printed as JSON with `--json`). A restore into a
//! directory, and `backup list`/`verify` with no daemon, run in this
//! process (`backup::offline`): recovering a machine needs no daemon.

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
    ("storage_compress", "maintenance_status"),
    ("analyze_compression", "maintenance_status"),
];

/// Make the call and render its result. With no daemon, a restore into a
/// directory and the reading backup operations run here, in this process:
/// recovering a machine needs no daemon.
pub async fn run(
    op: &OpInfo,
    params: Value,
    conn: &Conn,
    config: Option<&std::path::Path>,
) -> Result<String> {
    use std::io::IsTerminal;
    let detailed = params.get("detailed") == Some(&Value::Bool(true));
    let here = match op.method {
        "backup_restore" => params["to"].is_string(),
        m => OFFLINE_READS.contains(&m),
    };
    if here && conn.connect.is_none() {
        if let Err(e) = conn.client().await {
            if e.kind != crate::error::ErrorKind::Unavailable {
                return Err(e);
            }
            let v = if op.method == "backup_restore" {
                restore_here(params, conn, config).await?
            } else {
                read_here(op.method, params, conn, config).await?
            };
            return finish(op.method, conn, &v, detailed);
        }
    }
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
    finish(op.method, conn, &v, detailed)
}

/// Backup operations that only read the location: with no daemon serving
/// the data dir (and no `--connect`), the CLI runs them itself, as it does
/// a restore into a directory.
const OFFLINE_READS: &[&str] = &["backup_list", "backup_verify"];

/// Render a result; a verification that found damage fails the command
/// (exit 5).
fn finish(method: &str, conn: &Conn, v: &Value, detailed: bool) -> Result<String> {
    let text = output::render(conn, method, v, detailed);
    if matches!(
        method,
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

/// The configuration for running without a daemon (the default location
/// and keyring): `--config` or the built-in defaults, with an explicit
/// `--data-dir`; credentials come from the environment.
fn config_here(
    conn: &Conn,
    config: Option<&std::path::Path>,
) -> Result<std::sync::Arc<crate::config::Config>> {
    // An explicit --data-dir names where the default location and keyring
    // are; otherwise the config's data dir does.
    let data_dir = (conn.data_dir != std::path::Path::new(crate::config::DEFAULT_DATA_DIR))
        .then(|| conn.data_dir.clone());
    Ok(std::sync::Arc::new(crate::config::Config::load(
        config,
        &crate::config::Overrides {
            data_dir,
            ..Default::default()
        },
    )?))
}

/// `backup list` / `backup verify` without a daemon.
async fn read_here(
    method: &str,
    params: Value,
    conn: &Conn,
    config: Option<&std::path::Path>,
) -> Result<Value> {
    use crate::backup::offline;
    let config = config_here(conn, config)?;
    let bad = |e: serde_json::Error| Error::invalid(format!("{method}: {e}"));
    match method {
        "backup_list" => offline::list(config, serde_json::from_value(params).map_err(bad)?).await,
        _ => offline::verify(config, serde_json::from_value(params).map_err(bad)?).await,
    }
}

/// `backup restore --to DIR` without a daemon.
async fn restore_here(
    params: Value,
    conn: &Conn,
    config: Option<&std::path::Path>,
) -> Result<Value> {
    use std::io::IsTerminal;
    let p: crate::backup::params::RestoreParams = serde_json::from_value(params)
        .map_err(|e| Error::invalid(format!("backup restore: {e}")))?;
    let config = config_here(conn, config)?;
    let progress = std::sync::Arc::new(crate::backup::progress::Progress::default());
    let bar = (std::io::stderr().is_terminal() && !conn.json).then(|| {
        let progress = progress.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(250));
            loop {
                tick.tick().await;
                if let (Some(s), _) = progress.report() {
                    draw(&s, "");
                }
            }
        })
    });
    let result = crate::backup::offline::restore(config, p, progress.clone()).await;
    if let Some(bar) = bar {
        bar.abort();
        if let (_, Some(last)) = progress.report() {
            draw(&last, "\n");
        }
    }
    result
}

/// One progress line on stderr.
fn draw(s: &crate::backup::progress::Snapshot, end: &str) {
    use std::io::Write;
    let mut err = std::io::stderr().lock();
    let _ = write!(
        err,
        "\r\x1b[2K{}{end}",
        crate::backup::progress::render(s, 30)
    );
    let _ = err.flush();
}
