//! Finding and calling the daemon: `daemon.json` in the data dir names its
//! address; [`Client`] is a JSON-RPC HTTP client with our error mapping.
//! The CLI, the MCP server and the benchmark all go through it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use jsonrpsee::core::client::ClientT;
use jsonrpsee::core::traits::ToRpcParams;
use jsonrpsee::http_client::{HttpClient, HttpClientBuilder};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;

use super::error::{from_rpc, RemoteError};
use crate::error::{Error, Result};

pub const DAEMON_JSON: &str = "daemon.json";

/// Written by the daemon once it serves; removed at clean shutdown.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DaemonInfo {
    pub pid: u32,
    pub address: String,
    pub url: String,
    pub ws_url: String,
    pub data_dir: String,
    pub version: String,
    pub started_at: String,
}

pub fn daemon_json_path(data_dir: &Path) -> PathBuf {
    data_dir.join(DAEMON_JSON)
}

/// `Ok(None)` when no daemon.json exists.
pub fn read_daemon_info(data_dir: &Path) -> Result<Option<DaemonInfo>> {
    let path = daemon_json_path(data_dir);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| Error::corruption(format!("{} is not valid: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(format!("reading {}: {e}", path.display()))),
    }
}

/// Where a client command should connect.
#[derive(Debug, Clone)]
pub enum Target {
    Url(String),
    DataDir(PathBuf),
}

struct Params(Value);

impl ToRpcParams for Params {
    fn to_rpc_params(self) -> std::result::Result<Option<Box<RawValue>>, serde_json::Error> {
        serde_json::value::to_raw_value(&self.0).map(Some)
    }
}

#[derive(Clone, Debug)]
pub struct Client {
    http: HttpClient,
    url: String,
}

/// A call failed: the daemon answered with an error, or could not be reached.
#[derive(Debug, Clone)]
pub enum CallError {
    Remote(RemoteError),
    Transport(Error),
}

impl CallError {
    pub fn into_error(self) -> Error {
        match self {
            CallError::Remote(r) => r.error,
            CallError::Transport(e) => e,
        }
    }
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Remote(r) => write!(f, "{}", r.error),
            CallError::Transport(e) => write!(f, "{e}"),
        }
    }
}

impl Client {
    /// A client for `url` (no request is made).
    pub fn new(url: &str, timeout: Duration) -> Result<Client> {
        let http = HttpClientBuilder::default()
            .max_request_size(u32::MAX)
            .max_response_size(u32::MAX)
            .request_timeout(timeout)
            .build(url)
            .map_err(|e| Error::invalid(format!("bad daemon URL {url:?}: {e}")))?;
        Ok(Client {
            http,
            url: url.to_string(),
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Resolve the target and check that the daemon answers `system_health`.
    pub async fn connect(target: &Target) -> Result<Client> {
        let url = match target {
            Target::Url(u) => u.clone(),
            Target::DataDir(dir) => match read_daemon_info(dir)? {
                Some(info) => info.url,
                None => {
                    return Err(Error::unavailable(format!(
                        "no ruvector-storage daemon is running for data dir {} (no {DAEMON_JSON}); \
                         start one with `ruvector-storage serve --data-dir {}`",
                        dir.display(),
                        dir.display()
                    )))
                }
            },
        };
        let client = Client::new(&url, Duration::from_secs(300))?;
        client.health().await.map_err(|e| {
            Error::unavailable(format!(
                "no ruvector-storage daemon is reachable at {url}: {e}; is `ruvector-storage serve` running?"
            ))
        })?;
        Ok(client)
    }

    pub async fn health(&self) -> Result<Value> {
        self.call("system_health", Value::Object(Default::default()))
            .await
            .map_err(CallError::into_error)
    }

    /// Call a method with named params (a JSON object).
    pub async fn call(&self, method: &str, params: Value) -> std::result::Result<Value, CallError> {
        self.http
            .request::<Value, _>(method, Params(params))
            .await
            .map_err(|e| match e {
                jsonrpsee::core::ClientError::Call(obj) => CallError::Remote(from_rpc(&obj)),
                other => {
                    CallError::Transport(Error::unavailable(format!("calling {method}: {other}")))
                }
            })
    }
}
