//! The external bus: the daemon's own records (status, metrics, errors,
//! backups …) are also published to another agent's memory server — an MCP
//! server over stdio (e.g. `npx claude-flow mcp start`, through its
//! `memory_store` or `memory_usage` tool) or over streamable HTTP, or a
//! JSON-RPC endpoint (e.g. another ruvector-storage daemon).
//!
//! Publishing never blocks storage work: [`ExternalBus::offer`] only puts
//! the record in a per-target map holding the latest value per (namespace,
//! key), and a task per target sends what is pending. While a target is
//! down the map keeps one value per key (no unbounded queue) and the task
//! reconnects with exponential backoff (0.25 s doubling to 30 s); once it
//! is back, the latest values go out.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmcp::model::CallToolRequestParams;
use rmcp::service::{RoleClient, RunningService};
use rmcp::ServiceExt;

use serde_json::{json, Value};
use tokio::sync::Notify;

use crate::bus::namespace_matches;
use crate::client::{Client, Credentials};
pub use crate::config::ExternalTarget;
use crate::error::{Error, Result};

const BACKOFF_MIN: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Does this target take records of namespace `ns`?
fn wants(cfg: &ExternalTarget, ns: &str) -> bool {
    cfg.namespaces.is_empty() || cfg.namespaces.iter().any(|p| namespace_matches(p, ns))
}

/// What `stats` shows per target.
#[derive(Debug, Default)]
struct Counters {
    sent: AtomicU64,
    failures: AtomicU64,
    last_success_ms: AtomicU64,
}

struct Target {
    cfg: ExternalTarget,
    pending: Mutex<BTreeMap<(String, String), Value>>,
    wake: Notify,
    counters: Counters,
    last_error: Mutex<Option<String>>,
}

/// The running publishers.
pub struct ExternalBus {
    targets: Vec<Arc<Target>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for ExternalBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.targets.iter().map(|t| t.cfg.name.as_str()).collect();
        f.debug_struct("ExternalBus")
            .field("targets", &names)
            .finish()
    }
}

impl ExternalBus {
    /// Start one publishing task per target (on the current runtime).
    pub fn start(targets: &[ExternalTarget]) -> Option<Arc<ExternalBus>> {
        if targets.is_empty() {
            return None;
        }
        let targets: Vec<Arc<Target>> = targets
            .iter()
            .map(|cfg| {
                Arc::new(Target {
                    cfg: cfg.clone(),
                    pending: Mutex::default(),
                    wake: Notify::new(),
                    counters: Counters::default(),
                    last_error: Mutex::default(),
                })
            })
            .collect();
        let tasks = targets
            .iter()
            .map(|t| tokio::spawn(run(t.clone())))
            .collect();
        Some(Arc::new(ExternalBus { targets, tasks }))
    }

    /// Queue a record for every target that wants its namespace (never blocks).
    pub fn offer(&self, namespace: &str, key: &str, value: &Value) {
        for t in &self.targets {
            if wants(&t.cfg, namespace) {
                lock(&t.pending).insert((namespace.to_string(), key.to_string()), value.clone());
                t.wake.notify_one();
            }
        }
    }

    /// Per-target state for `stats` (the `external_bus` record).
    pub fn status(&self) -> Vec<crate::status::ExternalTargetStatus> {
        self.targets
            .iter()
            .map(|t| crate::status::ExternalTargetStatus {
                name: t.cfg.name.clone(),
                endpoint: t
                    .cfg
                    .url
                    .clone()
                    .or_else(|| t.cfg.mcp_url.clone())
                    .unwrap_or_else(|| t.cfg.command.join(" ")),
                sent: t.counters.sent.load(Ordering::Relaxed),
                failures: t.counters.failures.load(Ordering::Relaxed),
                pending: lock(&t.pending).len(),
                last_success_ms: t.counters.last_success_ms.load(Ordering::Relaxed),
                last_error: lock(&t.last_error).clone(),
            })
            .collect()
    }

    pub fn stop(&self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A connection to a target.
enum Conn {
    JsonRpc(Client),
    Mcp(RunningService<RoleClient, ()>, String),
}

fn token(cfg: &ExternalTarget) -> Result<Option<String>> {
    match &cfg.token_env {
        Some(var) => Ok(Some(std::env::var(var).map_err(|_| {
            Error::invalid(format!(
                "bus.external {:?}: token-env {var} is not set",
                cfg.name
            ))
        })?)),
        None => Ok(None),
    }
}

async fn connect(cfg: &ExternalTarget) -> Result<Conn> {
    if let Some(url) = &cfg.mcp_url {
        use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
        use rmcp::transport::StreamableHttpClientTransport;
        let mut conf = StreamableHttpClientTransportConfig::with_uri(url.as_str());
        if let Some(t) = token(cfg)? {
            conf = conf.auth_header(t);
        }
        let transport = StreamableHttpClientTransport::from_config(conf);
        let service = tokio::time::timeout(CALL_TIMEOUT * 3, ().serve(transport))
            .await
            .map_err(|_| Error::unavailable("MCP initialize timed out"))?
            .map_err(|e| Error::unavailable(format!("MCP initialize at {url}: {e}")))?;
        let tool = pick_tool(&service, cfg).await?;
        return Ok(Conn::Mcp(service, tool));
    }
    if let Some(url) = &cfg.url {
        let token = token(cfg)?;
        let creds = Credentials {
            token,
            ..Credentials::from_env().unwrap_or_default()
        };
        let client = Client::with_credentials(url, CALL_TIMEOUT, creds)?;
        return Ok(Conn::JsonRpc(client));
    }
    let (program, args) = cfg
        .command
        .split_first()
        .ok_or_else(|| Error::invalid("bus.external: empty command"))?;
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args).stderr(std::process::Stdio::null());
    let transport = rmcp::transport::TokioChildProcess::new(cmd)
        .map_err(|e| Error::unavailable(format!("cannot start {program}: {e}")))?;
    let service = tokio::time::timeout(CALL_TIMEOUT * 3, ().serve(transport))
        .await
        .map_err(|_| Error::unavailable("MCP initialize timed out"))?
        .map_err(|e| Error::unavailable(format!("MCP initialize: {e}")))?;
    let tool = pick_tool(&service, cfg).await?;
    Ok(Conn::Mcp(service, tool))
}

/// The configured tool, or `memory_store` if the server lists it, else
/// `memory_usage`.
async fn pick_tool(
    service: &RunningService<RoleClient, ()>,
    cfg: &ExternalTarget,
) -> Result<String> {
    Ok(match &cfg.tool {
        Some(t) => t.clone(),
        None => {
            let tools = service
                .list_all_tools()
                .await
                .map_err(|e| Error::unavailable(format!("MCP tools/list: {e}")))?;
            let has = |n: &str| tools.iter().any(|t| t.name == n);
            if has("memory_store") {
                "memory_store".to_string()
            } else if has("memory_usage") {
                "memory_usage".to_string()
            } else {
                return Err(Error::invalid(
                    "the MCP server has neither memory_store nor memory_usage",
                ));
            }
        }
    })
}

/// The arguments of one store call in the tool's shape.
fn arguments(tool: &str, ns: &str, key: &str, value: &Value) -> Value {
    if tool == "memory_usage" {
        // v2 stores strings.
        let text = match value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        json!({"action": "store", "key": key, "value": text, "namespace": ns})
    } else {
        json!({"key": key, "value": value, "namespace": ns, "upsert": true})
    }
}

async fn send(conn: &Conn, ns: &str, key: &str, value: &Value) -> Result<()> {
    match conn {
        Conn::JsonRpc(c) => {
            let tool = "memory_store";
            tokio::time::timeout(CALL_TIMEOUT, c.call(tool, arguments(tool, ns, key, value)))
                .await
                .map_err(|_| Error::unavailable("timed out"))?
                .map(|_| ())
                .map_err(|e| e.into_error())
        }
        Conn::Mcp(service, tool) => {
            let Value::Object(args) = arguments(tool, ns, key, value) else {
                return Err(Error::internal("tool arguments are not an object"));
            };
            let call =
                service.call_tool(CallToolRequestParams::new(tool.clone()).with_arguments(args));
            let result = tokio::time::timeout(CALL_TIMEOUT, call)
                .await
                .map_err(|_| Error::unavailable("timed out"))?
                .map_err(|e| Error::unavailable(format!("{tool}: {e}")))?;
            if result.is_error == Some(true) {
                let text: Vec<String> = result
                    .content
                    .iter()
                    .filter_map(|c| c.as_text().map(|t| t.text.clone()))
                    .collect();
                return Err(Error::invalid(format!(
                    "{tool} returned an error: {}",
                    text.join("; ")
                )));
            }
            Ok(())
        }
    }
}

async fn run(t: Arc<Target>) {
    let mut conn: Option<Conn> = None;
    let mut backoff = BACKOFF_MIN;
    loop {
        if lock(&t.pending).is_empty() {
            t.wake.notified().await;
        }
        let mut batch = std::mem::take(&mut *lock(&t.pending));
        let result: Result<()> = async {
            if conn.is_none() {
                conn = Some(connect(&t.cfg).await?);
            }
            let c = conn
                .as_ref()
                .ok_or_else(|| Error::internal("no connection"))?;
            while let Some((k, v)) = batch.pop_first() {
                if let Err(e) = send(c, &k.0, &k.1, &v).await {
                    batch.insert(k, v);
                    return Err(e);
                }
                t.counters.sent.fetch_add(1, Ordering::Relaxed);
            }
            Ok(())
        }
        .await;
        match result {
            Ok(()) => {
                backoff = BACKOFF_MIN;
                t.counters.last_success_ms.store(
                    chrono::Utc::now().timestamp_millis().max(0) as u64,
                    Ordering::Relaxed,
                );
            }
            Err(e) => {
                // Put back the unsent records that no newer value replaced.
                {
                    let mut pending = lock(&t.pending);
                    for (k, v) in batch {
                        pending.entry(k).or_insert(v);
                    }
                }
                t.counters.failures.fetch_add(1, Ordering::Relaxed);
                let first = lock(&t.last_error).is_none();
                if first {
                    tracing::warn!(target_name = %t.cfg.name, error = %e, "external bus: publishing failed; retrying with backoff");
                } else {
                    tracing::debug!(target_name = %t.cfg.name, error = %e, "external bus: still failing");
                }
                *lock(&t.last_error) = Some(e.message.clone());
                if let Some(Conn::Mcp(service, _)) = conn.take() {
                    let _ = service.cancel().await;
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
                continue;
            }
        }
        if lock(&t.last_error).take().is_some() {
            tracing::info!(target_name = %t.cfg.name, "external bus: publishing resumed");
        }
    }
}
