//! The JSON-RPC 2.0 door (jsonrpsee, HTTP and WebSocket on one port).
//! Every method of the operation table ([`crate::ops::OPS`]) is registered
//! the same way: parse the named params into an [`Op`], check the token's
//! grant against what the operation declares, refuse if shutting down, send
//! it to the actor that serves it ([`Router`]), map errors in [`error`].

pub mod auth_http;
pub mod changes;
pub mod error;
pub mod metrics_http;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use jsonrpsee::server::{Server, ServerConfig, ServerHandle};
use jsonrpsee::types::ErrorObjectOwned;
use jsonrpsee::RpcModule;
use serde_json::Value;
use tracing::Instrument;

use crate::actors::Router;
use crate::engine::EngineSlot;
use crate::error::{Error, Result};
use crate::ops::Op;

/// What the RPC methods share.
pub struct RpcState {
    pub router: Router,
    /// The store, for change subscriptions (which read the WAL directly).
    pub engine: Arc<EngineSlot>,
    /// Tokens are configured: every call must carry a grant.
    pub auth_required: bool,
    accepting: AtomicBool,
}

impl RpcState {
    pub fn new(router: Router, engine: Arc<EngineSlot>, auth_required: bool) -> Self {
        RpcState {
            router,
            engine,
            auth_required,
            accepting: AtomicBool::new(true),
        }
    }

    /// With auth on, run `check` against the request's grant; a request
    /// without one never gets here (the HTTP layer answers 401).
    fn authorize(
        &self,
        identity: Option<&crate::auth::Identity>,
        check: impl FnOnce(&crate::auth::Grant) -> Result<()>,
    ) -> Result<()> {
        match identity {
            Some(id) => check(&id.0)
                .inspect_err(|e| tracing::info!(token = %id.0.name, error = %e, "request refused")),
            None if self.auth_required => Err(Error::permission_denied("no valid token")),
            None => Ok(()),
        }
    }

    /// Refuse new requests from now on (shutdown).
    pub fn stop_accepting(&self) {
        self.accepting.store(false, Ordering::SeqCst);
    }

    async fn dispatch(
        &self,
        method: &'static str,
        params: Option<&str>,
        identity: Option<crate::auth::Identity>,
    ) -> Result<Value, ErrorObjectOwned> {
        let t0 = std::time::Instant::now();
        let op = Op::parse(method, params).map_err(|e| error::parse_to_rpc(&e))?;
        self.authorize(identity.as_ref(), |g| g.allows(&op.access(), op.method()))
            .map_err(|e| error::to_rpc(&e))?;
        let parse_us = t0.elapsed().as_micros() as u64;
        if !self.accepting.load(Ordering::SeqCst) {
            return Err(error::to_rpc(&Error::unavailable(
                "the daemon is shutting down; retry against the next instance",
            )));
        }
        let result = self
            .router
            .call(op)
            .instrument(tracing::info_span!("rpc", method))
            .await;
        tracing::debug!(
            method,
            parse_us,
            total_us = t0.elapsed().as_micros() as u64,
            "request"
        );
        result.map_err(|e| {
            tracing::debug!(method, error = %e, "request failed");
            error::to_rpc(&e)
        })
    }
}

/// How the port is served.
pub struct Listen<'a> {
    pub address: &'a str,
    pub max_request_bytes: u32,
    /// Bearer tokens (None: open, loopback only).
    pub auth: Option<Arc<crate::auth::Authenticator>>,
    /// TLS 1.3 (None: plaintext).
    pub tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
}

/// Bind and start serving; returns the handle and the bound address.
pub async fn start(listen: Listen<'_>, state: Arc<RpcState>) -> Result<(ServerHandle, SocketAddr)> {
    let Listen {
        address: listen,
        max_request_bytes,
        auth,
        tls,
    } = listen;
    let config = ServerConfig::builder()
        .max_request_body_size(max_request_bytes)
        .max_response_body_size(u32::MAX)
        .max_connections(1024)
        .build();
    let probe = state.router.persistence.clone();
    let render: metrics_http::Render = std::sync::Arc::new(move |format| {
        let probe = probe.clone();
        Box::pin(async move {
            let sample = probe.sample().await.map_err(|e| e.message)?;
            crate::metrics::exposition::render(&sample, format)
        })
    });
    let http_middleware = tower::ServiceBuilder::new()
        .layer(auth_http::AuthLayer(auth))
        .layer(metrics_http::MetricsLayer::new(render));
    let builder = Server::builder()
        .set_config(config)
        .set_http_middleware(http_middleware);
    let module = methods(state)?;
    if let Some(tls) = tls {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| Error::io(format!("cannot listen on {listen}: {e}")))?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::io(format!("listener address: {e}")))?;
        return Ok((
            serve_tls(listener, tls, builder.to_service_builder(), module),
            addr,
        ));
    }
    let server = builder
        .build(listen)
        .await
        .map_err(|e| Error::io(format!("cannot listen on {listen}: {e}")))?;
    let addr = server
        .local_addr()
        .map_err(|e| Error::io(format!("listener address: {e}")))?;
    Ok((server.start(module), addr))
}

/// The TLS accept loop: handshake each connection, then serve it with the
/// same service (HTTP + WebSocket, same middleware) as the plain listener.
fn serve_tls(
    listener: tokio::net::TcpListener,
    tls: Arc<tokio_rustls::rustls::ServerConfig>,
    builder: jsonrpsee::server::TowerServiceBuilder<
        tower::layer::util::Identity,
        tower::layer::util::Stack<
            metrics_http::MetricsLayer,
            tower::layer::util::Stack<auth_http::AuthLayer, tower::layer::util::Identity>,
        >,
    >,
    module: RpcModule<RpcState>,
) -> ServerHandle {
    use jsonrpsee::server::{serve_with_graceful_shutdown, stop_channel, HttpBody};
    use tower::Service;
    type Conn = std::pin::Pin<
        Box<
            dyn std::future::Future<Output = std::result::Result<(), jsonrpsee::core::BoxError>>
                + Send,
        >,
    >;
    let methods: jsonrpsee::server::Methods = module.into();
    let (stop, handle) = stop_channel();
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    tokio::spawn(async move {
        loop {
            let (tcp, peer) = tokio::select! {
                r = listener.accept() => match r {
                    Ok(x) => x,
                    Err(e) => {
                        tracing::debug!(error = %e, "accept failed");
                        continue;
                    }
                },
                _ = stop.clone().shutdown() => break,
            };
            let _ = tcp.set_nodelay(true);
            let (acceptor, stop, builder, methods) = (
                acceptor.clone(),
                stop.clone(),
                builder.clone(),
                methods.clone(),
            );
            tokio::spawn(async move {
                let handshake =
                    tokio::time::timeout(std::time::Duration::from_secs(10), acceptor.accept(tcp));
                let stream = tokio::select! {
                    r = handshake => match r {
                        Ok(Ok(s)) => s,
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => return,
                    },
                    _ = stop.clone().shutdown() => return,
                };
                let svc = builder.build(methods, stop.clone());
                let svc = tower::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                    let mut svc = svc.clone();
                    svc.call(req.map(HttpBody::new))
                });
                let conn: Conn =
                    Box::pin(serve_with_graceful_shutdown(stream, svc, stop.shutdown()));
                if let Err(e) = conn.await {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
            });
        }
    });
    handle
}

/// Every method and the change subscription.
fn methods(state: Arc<RpcState>) -> Result<RpcModule<RpcState>> {
    let mut module = RpcModule::from_arc(state);
    for method in crate::ops::methods() {
        module
            .register_async_method(method, move |params, ctx, ext| async move {
                let identity = ext.get::<crate::auth::Identity>().cloned();
                ctx.dispatch(method, params.as_str(), identity).await
            })
            .map_err(|e| Error::internal(format!("registering {method}: {e}")))?;
    }
    module
        .register_subscription(
            changes::SUBSCRIBE,
            changes::NOTIFICATION,
            changes::UNSUBSCRIBE,
            |params, pending, ctx, ext| async move {
                let raw = params.as_str().unwrap_or("{}");
                let p: changes::SubscribeParams = match serde_json::from_str(raw) {
                    Ok(p) => p,
                    Err(e) => {
                        let e = crate::ops::ParseError::Params(format!(
                            "{}: invalid params: {e}",
                            changes::SUBSCRIBE
                        ));
                        pending.reject(error::parse_to_rpc(&e)).await;
                        return Ok(());
                    }
                };
                if !ctx.accepting.load(Ordering::SeqCst) {
                    pending
                        .reject(error::to_rpc(&Error::unavailable(
                            "the daemon is shutting down",
                        )))
                        .await;
                    return Ok(());
                }
                let grant = ext.get::<crate::auth::Identity>().map(|i| i.0.clone());
                if grant.is_none() && ctx.auth_required {
                    let e = Error::permission_denied("no valid token");
                    pending.reject(error::to_rpc(&e)).await;
                    return Ok(());
                }
                let visible =
                    move |e: &crate::cdc::ChangeEvent| grant.as_ref().is_none_or(|g| g.may_see(e));
                changes::serve(ctx.engine.clone(), p, visible, pending).await
            },
        )
        .map_err(|e| Error::internal(format!("registering {}: {e}", changes::SUBSCRIBE)))?;
    Ok(module)
}
