//! The JSON-RPC 2.0 door (jsonrpsee, HTTP and WebSocket on one port).
//! Every method of [`crate::ops::METHODS`] is registered the same way: parse
//! the named params into an [`Op`], refuse if shutting down, send it to the
//! persistence actor, map errors in [`error`].

pub mod changes;
pub mod client;
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
use crate::ops::{Op, METHODS};

/// What the RPC methods share.
pub struct RpcState {
    pub router: Router,
    /// The store, for change subscriptions (which read the WAL directly).
    pub engine: Arc<EngineSlot>,
    accepting: AtomicBool,
}

impl RpcState {
    pub fn new(router: Router, engine: Arc<EngineSlot>) -> Self {
        RpcState {
            router,
            engine,
            accepting: AtomicBool::new(true),
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
    ) -> Result<Value, ErrorObjectOwned> {
        let t0 = std::time::Instant::now();
        let op = Op::parse(method, params).map_err(|e| error::parse_to_rpc(&e))?;
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

/// Bind and start serving; returns the handle and the bound address.
pub async fn start(
    listen: &str,
    max_request_bytes: u32,
    state: Arc<RpcState>,
) -> Result<(ServerHandle, SocketAddr)> {
    let config = ServerConfig::builder()
        .max_request_body_size(max_request_bytes)
        .max_response_body_size(u32::MAX)
        .max_connections(1024)
        .build();
    let probe = state.router.persistence.clone();
    let render: metrics_http::Render = std::sync::Arc::new(move || {
        let probe = probe.clone();
        Box::pin(async move { probe.metrics().await.map_err(|e| e.message) })
    });
    let server = Server::builder()
        .set_config(config)
        .set_http_middleware(
            tower::ServiceBuilder::new().layer(metrics_http::MetricsLayer::new(render)),
        )
        .build(listen)
        .await
        .map_err(|e| Error::io(format!("cannot listen on {listen}: {e}")))?;
    let addr = server
        .local_addr()
        .map_err(|e| Error::io(format!("listener address: {e}")))?;
    let mut module = RpcModule::from_arc(state);
    for &method in METHODS {
        module
            .register_async_method(method, move |params, ctx, _| async move {
                ctx.dispatch(method, params.as_str()).await
            })
            .map_err(|e| Error::internal(format!("registering {method}: {e}")))?;
    }
    module
        .register_subscription(
            changes::SUBSCRIBE,
            changes::NOTIFICATION,
            changes::UNSUBSCRIBE,
            |params, pending, ctx, _| async move {
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
                changes::serve(ctx.engine.clone(), p, |_| true, pending).await
            },
        )
        .map_err(|e| Error::internal(format!("registering {}: {e}", changes::SUBSCRIBE)))?;
    Ok((server.start(module), addr))
}
