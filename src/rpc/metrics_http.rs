//! `GET /metrics` on the JSON-RPC port: a tower layer in front of the
//! JSON-RPC service that answers that one path with the latest metrics
//! sample — OpenMetrics when the `Accept` header prefers it, the Prometheus
//! text format otherwise — and passes every other request through.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use jsonrpsee::core::BoxError;
use jsonrpsee::server::{HttpBody, HttpRequest, HttpResponse};
use tower::{Layer, Service};

use crate::metrics::exposition::Format;

/// Produces the exposition in a format (or why it cannot).
pub type Render = Arc<
    dyn Fn(Format) -> Pin<Box<dyn Future<Output = Result<String, String>> + Send>> + Send + Sync,
>;

#[derive(Clone)]
pub struct MetricsLayer {
    render: Render,
}

impl MetricsLayer {
    pub fn new(render: Render) -> Self {
        MetricsLayer { render }
    }
}

impl<S> Layer<S> for MetricsLayer {
    type Service = Metrics<S>;
    fn layer(&self, inner: S) -> Metrics<S> {
        Metrics {
            inner,
            render: self.render.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Metrics<S> {
    inner: S,
    render: Render,
}

/// A plain HTTP response (shared by the layers in front of JSON-RPC).
pub(crate) fn response(status: u16, content_type: &str, body: String) -> HttpResponse {
    let mut r = HttpResponse::new(HttpBody::from(body.into_bytes()));
    *r.status_mut() =
        http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(v) = http::HeaderValue::from_str(content_type) {
        r.headers_mut().insert(http::header::CONTENT_TYPE, v);
    }
    r
}

impl<S> Service<HttpRequest> for Metrics<S>
where
    S: Service<HttpRequest, Response = HttpResponse> + Send,
    S::Error: Into<BoxError> + 'static,
    S::Future: Send + 'static,
{
    type Response = HttpResponse;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: HttpRequest) -> Self::Future {
        if req.method() == http::Method::GET && req.uri().path() == "/metrics" {
            let render = self.render.clone();
            let accept = req
                .headers()
                .get(http::header::ACCEPT)
                .and_then(|v| v.to_str().ok());
            let format = Format::negotiate(accept);
            return Box::pin(async move {
                Ok(match render(format).await {
                    Ok(text) => response(200, format.content_type(), text),
                    Err(e) => response(
                        503,
                        "text/plain; charset=utf-8",
                        format!("metrics unavailable: {e}\n"),
                    ),
                })
            });
        }
        let fut = self.inner.call(req);
        Box::pin(async move { fut.await.map_err(Into::into) })
    }
}
