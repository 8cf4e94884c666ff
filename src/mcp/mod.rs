//! The MCP door (rmcp, stdio). `ruvector-storage mcp` is a client of the
//! daemon for its data dir: it finds it through `daemon.json`, starts one in
//! the background when none answers, and forwards each tool call to the
//! JSON-RPC method of the same name. Results carry the JSON object as text
//! in `content[0]` and as `structuredContent`; failures are `isError: true`
//! whose text starts with the error's kind (`invalid_input: …`,
//! `not_found: …`); only an unknown tool is a JSON-RPC error (-32602).

pub mod tools;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler, ServiceExt};
use serde_json::Value;

use crate::client::{Client, Target};
use crate::error::{Error, Result};

pub struct McpServer {
    client: Client,
    tools: Vec<Tool>,
}

impl McpServer {
    pub fn new(client: Client) -> Self {
        McpServer {
            client,
            tools: tools::all(),
        }
    }
}

impl ServerHandler for McpServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("ruvector-storage", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "Durable swarm memory and vector storage (RocksDB). Memory tools follow claude-flow: \
                 memory_usage (v2) and memory_store/retrieve/search/delete/list/stats (v3). \
                 Status records live in namespace ruvector/storage.",
            )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> std::result::Result<ListToolsResult, McpError> {
        Ok(ListToolsResult::with_all_items(self.tools.clone()))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> std::result::Result<CallToolResponse, McpError> {
        let name = request.name.to_string();
        if !self.tools.iter().any(|t| t.name == name) {
            return Err(McpError::invalid_params(
                format!("unknown tool {name:?}"),
                None,
            ));
        }
        let args = Value::Object(request.arguments.unwrap_or_default());
        // Arguments that do not fit the tool's schema are a tool error
        // naming the field (MCP 2025-11-25, SEP-1303), so the model can
        // correct itself; they are checked here, with the server's own
        // types, before anything is sent.
        if let Err(e) = crate::ops::Op::parse(&name, Some(&args.to_string())) {
            return Ok(CallToolResult::error(vec![ContentBlock::text(format!(
                "invalid_input: {e}"
            ))])
            .into());
        }
        match self.client.call(&name, args).await {
            Ok(value) => {
                let failed = value.get("success") == Some(&Value::Bool(false));
                Ok(if failed {
                    CallToolResult::structured_error(value)
                } else {
                    CallToolResult::structured(value)
                }
                .into())
            }
            Err(e) => {
                let e = e.into_error();
                Ok(CallToolResult::error(vec![ContentBlock::text(format!(
                    "{}: {name} failed: {}",
                    e.kind.as_str(),
                    e.message
                ))])
                .into())
            }
        }
    }
}

/// Find the daemon for `data_dir`, starting one in the background when none
/// answers, and wait until it is ready.
pub async fn ensure_daemon(
    data_dir: &Path,
    config: Option<&Path>,
    timeout: Duration,
) -> Result<Client> {
    let target = Target::DataDir(data_dir.to_path_buf());
    if let Ok(c) = Client::connect(&target).await {
        return Ok(c);
    }
    std::fs::create_dir_all(data_dir).map_err(|e| {
        Error::io(format!(
            "cannot create data dir {}: {e}",
            data_dir.display()
        ))
    })?;
    let mut child = spawn_daemon(data_dir, config)?;
    let mut deadline = Instant::now() + timeout;
    let mut last = None;
    let mut exited = None;
    while Instant::now() < deadline {
        match Client::connect(&target).await {
            Ok(c) => return Ok(c),
            Err(e) => last = Some(e),
        }
        if exited.is_none() {
            if let Ok(Some(status)) = child.try_wait() {
                // It may have lost a start race to another daemon (which
                // answers shortly) or failed: give the other one 3 s.
                exited = Some(status);
                deadline = deadline.min(Instant::now() + Duration::from_secs(3));
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if let Some(status) = exited {
        let log = std::fs::read_to_string(data_dir.join("daemon.log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(5).collect();
        return Err(Error::unavailable(format!(
            "the daemon started for {} exited ({status}) and no other daemon answers; last lines of {}:\n{}",
            data_dir.display(),
            data_dir.join("daemon.log").display(),
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        )));
    }
    Err(Error::unavailable(format!(
        "started a daemon for {} but it did not become ready within {:?} (see {}): {}",
        data_dir.display(),
        timeout,
        data_dir.join("daemon.log").display(),
        last.map(|e| e.message).unwrap_or_default()
    )))
}

fn spawn_daemon(data_dir: &Path, config: Option<&Path>) -> Result<std::process::Child> {
    use std::os::unix::process::CommandExt;
    let exe: PathBuf = std::env::current_exe()
        .map_err(|e| Error::io(format!("cannot locate the ruvector-storage binary: {e}")))?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(data_dir.join("daemon.log"))
        .map_err(|e| Error::io(format!("cannot open daemon.log: {e}")))?;
    let log2 = log
        .try_clone()
        .map_err(|e| Error::io(format!("cannot open daemon.log: {e}")))?;
    let mut cmd = std::process::Command::new(exe);
    if let Some(c) = config {
        cmd.arg("--config").arg(c);
    }
    cmd.arg("serve")
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--listen")
        .arg("127.0.0.1:0")
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2)
        .process_group(0);
    cmd.spawn()
        .map_err(|e| Error::io(format!("cannot start the daemon: {e}")))
}

/// Serve MCP on stdin/stdout until stdin closes.
/// MCP over HTTP listens on loopback only.
pub fn check_http_addr(addr: std::net::SocketAddr) -> Result<()> {
    if addr.ip().is_loopback() {
        return Ok(());
    }
    Err(Error::invalid(format!(
        "mcp --http {addr}: MCP over HTTP listens on loopback only (its callers act with this \
         process's daemon token); remote agents should use the daemon's JSON-RPC API with \
         their own tokens"
    )))
}

/// Serve MCP over streamable HTTP at `http://<addr>/mcp` until `shutdown`
/// resolves. Loopback only: every caller acts with this process's daemon
/// credentials, so the listener must not be reachable by others. Requests
/// carrying an `Origin` header (browsers) are refused, and rmcp checks the
/// `Host` header is a loopback name (DNS rebinding).
pub async fn serve_http(
    client: Client,
    addr: std::net::SocketAddr,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<()> {
    use http_body_util::{BodyExt, Full};
    use rmcp::transport::streamable_http_server::{
        session::local::LocalSessionManager, StreamableHttpServerConfig, StreamableHttpService,
    };
    check_http_addr(addr)?;
    // Loopback names, and the address bound (e.g. 127.0.0.2), with any port.
    let mut hosts = vec!["localhost".to_string(), "127.0.0.1".into(), "::1".into()];
    hosts.push(addr.ip().to_string());
    let config = StreamableHttpServerConfig::default()
        .enforce_origin_validation()
        .with_allowed_hosts(hosts)
        // An index_upload chunk (8 MiB) as base64 in a JSON-RPC envelope.
        .with_max_request_body_bytes(crate::engine::indexes::MAX_CHUNK_BYTES / 3 * 4 + (1 << 20));
    let cancel = config.cancellation_token.clone();
    let service: StreamableHttpService<McpServer, LocalSessionManager> = StreamableHttpService::new(
        move || Ok(McpServer::new(client.clone())),
        std::sync::Arc::new(LocalSessionManager::default()),
        config,
    );
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| Error::io(format!("cannot listen on {addr}: {e}")))?;
    let local = listener
        .local_addr()
        .map_err(|e| Error::io(format!("listener address: {e}")))?;
    // The address on stdout (one line) tells a caller that bound port 0 where it is.
    println!("{{\"mcp_url\":\"http://{local}/mcp\"}}");
    tracing::info!(%local, "serving MCP over streamable HTTP at /mcp");
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::debug!(error = %e, "accept failed");
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let service = service.clone();
        tokio::spawn(async move {
            let handler =
                hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                    let service = service.clone();
                    async move {
                        if req.uri().path() == "/mcp" {
                            return Ok::<_, std::convert::Infallible>(service.handle(req).await);
                        }
                        let mut resp = http::Response::new(
                            Full::new(bytes::Bytes::from_static(
                                b"not found: MCP is served at /mcp\n",
                            ))
                            .boxed(),
                        );
                        *resp.status_mut() = http::StatusCode::NOT_FOUND;
                        Ok(resp)
                    }
                });
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(tcp), handler)
                .await
            {
                tracing::debug!(%peer, error = %e, "MCP HTTP connection ended with an error");
            }
        });
    }
    cancel.cancel();
    Ok(())
}

pub async fn serve_stdio(client: Client) -> Result<()> {
    let service = McpServer::new(client)
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|e| Error::io(format!("MCP initialisation failed: {e}")))?;
    service
        .waiting()
        .await
        .map_err(|e| Error::internal(format!("MCP session ended abnormally: {e}")))?;
    Ok(())
}
