//! Finding and calling the daemon: `daemon.json` in the data dir names its
//! address; [`Client`] is a JSON-RPC HTTP client with our error mapping.
//! The CLI, the MCP server and the benchmark all go through it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use jsonrpsee::core::client::{ClientT, Subscription, SubscriptionClientT};
use jsonrpsee::core::traits::ToRpcParams;
use jsonrpsee::http_client::{HeaderMap, HeaderValue, HttpClient, HttpClientBuilder};
use jsonrpsee::ws_client::WsClientBuilder;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;
use tokio_rustls::rustls;

use crate::error::{Error, ErrorKind, Result, RPC_INVALID_PARAMS, RPC_METHOD_NOT_FOUND};

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

/// How a client proves who it is and whom it trusts, from the
/// environment (so the CLI, the MCP server and scripts share one way):
///
/// - `RUVECTOR_STORAGE_TOKEN`, or `RUVECTOR_STORAGE_TOKEN_FILE` (a file
///   holding it): sent as `Authorization: Bearer <token>`;
/// - `RUVECTOR_STORAGE_CA_CERT`: PEM file of the CA that signed the
///   daemon's certificate, for `https://` / `wss://` URLs (default: the
///   system roots).
#[derive(Clone, Default)]
pub struct Credentials {
    pub token: Option<String>,
    pub ca_cert: Option<PathBuf>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("ca_cert", &self.ca_cert)
            .finish()
    }
}

impl Credentials {
    pub fn from_env() -> Result<Credentials> {
        let token = match (
            std::env::var("RUVECTOR_STORAGE_TOKEN").ok(),
            std::env::var_os("RUVECTOR_STORAGE_TOKEN_FILE"),
        ) {
            (Some(t), _) if !t.trim().is_empty() => Some(t.trim().to_string()),
            (_, Some(file)) => {
                let text = std::fs::read_to_string(&file).map_err(|e| {
                    Error::invalid(format!(
                        "RUVECTOR_STORAGE_TOKEN_FILE={}: cannot read it: {e}",
                        Path::new(&file).display()
                    ))
                })?;
                Some(text.trim().to_string())
            }
            _ => None,
        };
        Ok(Credentials {
            token,
            ca_cert: std::env::var_os("RUVECTOR_STORAGE_CA_CERT").map(PathBuf::from),
        })
    }

    fn headers(&self) -> Result<HeaderMap> {
        let mut h = HeaderMap::new();
        if let Some(t) = &self.token {
            let mut v = HeaderValue::from_str(&format!("Bearer {t}")).map_err(|_| {
                Error::invalid("the token contains characters not allowed in an HTTP header")
            })?;
            v.set_sensitive(true);
            h.insert(http::header::AUTHORIZATION, v);
        }
        Ok(h)
    }

    /// A TLS client configuration trusting `ca_cert` (None: system roots).
    fn tls(&self) -> Result<Option<rustls::ClientConfig>> {
        let Some(path) = &self.ca_cert else {
            return Ok(None);
        };
        use rustls::pki_types::{pem::PemObject, CertificateDer};
        let mut roots = rustls::RootCertStore::empty();
        let certs = CertificateDer::pem_file_iter(path)
            .and_then(|it| it.collect::<std::result::Result<Vec<_>, _>>())
            .map_err(|e| Error::invalid(format!("CA certificate {}: {e}", path.display())))?;
        for c in certs {
            roots
                .add(c)
                .map_err(|e| Error::invalid(format!("CA certificate {}: {e}", path.display())))?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let cfg = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::internal(format!("TLS client config: {e}")))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Some(cfg))
    }
}

/// The WebSocket URL of a daemon's HTTP URL (same port).
pub fn ws_url(http_url: &str) -> String {
    if let Some(rest) = http_url.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = http_url.strip_prefix("http://") {
        format!("ws://{rest}")
    } else {
        http_url.to_string()
    }
}

/// A subscription and the WebSocket connection it runs on.
#[derive(Debug)]
pub struct Notifications {
    sub: Subscription<Value>,
    _ws: jsonrpsee::ws_client::WsClient,
}

impl Notifications {
    /// The next notification; None once the server ends the subscription
    /// or the connection drops.
    pub async fn next(&mut self) -> Option<std::result::Result<Value, serde_json::Error>> {
        self.sub.next().await
    }
}

/// An error as a client received it: the JSON-RPC code and the error it
/// stands for (kind from the code, the daemon's message).
#[derive(Debug, Clone)]
pub struct RemoteError {
    pub code: i32,
    pub error: Error,
}

impl RemoteError {
    /// The request itself was malformed (unknown method or bad params shape).
    pub fn is_protocol(&self) -> bool {
        self.code == RPC_METHOD_NOT_FOUND || self.code == RPC_INVALID_PARAMS
    }
}

fn from_rpc(obj: &jsonrpsee::types::ErrorObject<'_>) -> RemoteError {
    RemoteError {
        code: obj.code(),
        error: Error::new(
            ErrorKind::from_rpc_code(obj.code()),
            obj.message().to_string(),
        ),
    }
}

#[derive(Clone, Debug)]
pub struct Client {
    http: HttpClient,
    url: String,
    creds: Credentials,
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
        Self::with_credentials(url, timeout, Credentials::from_env()?)
    }

    pub fn with_credentials(url: &str, timeout: Duration, creds: Credentials) -> Result<Client> {
        let mut builder = HttpClientBuilder::default()
            .max_request_size(u32::MAX)
            .max_response_size(u32::MAX)
            .request_timeout(timeout)
            .set_headers(creds.headers()?);
        if let Some(tls) = creds.tls()? {
            builder = builder.with_custom_cert_store(tls);
        }
        let http = builder
            .build(url)
            .map_err(|e| Error::invalid(format!("bad daemon URL {url:?}: {e}")))?;
        Ok(Client {
            http,
            url: url.to_string(),
            creds,
        })
    }

    /// Subscribe over WebSocket (same address, same credentials). The
    /// connection lives as long as the returned stream.
    pub async fn subscribe(
        &self,
        method: &str,
        params: Value,
        unsubscribe: &str,
    ) -> Result<Notifications> {
        let url = ws_url(&self.url);
        let mut builder = WsClientBuilder::default()
            .max_request_size(u32::MAX)
            .max_response_size(u32::MAX)
            .max_buffer_capacity_per_subscription(4096)
            .set_headers(self.creds.headers()?);
        if let Some(tls) = self.creds.tls()? {
            builder = builder.with_custom_cert_store(tls);
        }
        let ws = builder
            .build(&url)
            .await
            .map_err(|e| Error::unavailable(format!("cannot open a WebSocket to {url}: {e}")))?;
        let sub = ws
            .subscribe(method, Params(params), unsubscribe)
            .await
            .map_err(|e| match e {
                jsonrpsee::core::ClientError::Call(obj) => from_rpc(&obj).error,
                other => Error::unavailable(format!("subscribing to {method}: {other}")),
            })?;
        Ok(Notifications { sub, _ws: ws })
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
