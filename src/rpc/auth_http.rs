//! The bearer-token check in front of everything on the JSON-RPC port
//! (HTTP requests, WebSocket upgrades, `/metrics`): a request without a
//! valid token gets `401` and never reaches a method; a valid one carries
//! its [`Identity`] to the method as a request extension.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use jsonrpsee::core::BoxError;
use jsonrpsee::server::{HttpRequest, HttpResponse};
use tower::{Layer, Service};

use crate::auth::{Authenticator, Identity};

/// `None`: authentication is off and requests pass untouched.
#[derive(Clone)]
pub struct AuthLayer(pub Option<Arc<Authenticator>>);

impl<S> Layer<S> for AuthLayer {
    type Service = Auth<S>;
    fn layer(&self, inner: S) -> Auth<S> {
        Auth {
            inner,
            auth: self.0.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Auth<S> {
    inner: S,
    auth: Option<Arc<Authenticator>>,
}

fn unauthorized(why: &str) -> HttpResponse {
    let body = serde_json::json!({"error": "unauthorized", "message": why}).to_string();
    let mut r = super::metrics_http::response(401, "application/json", body);
    r.headers_mut().insert(
        http::header::WWW_AUTHENTICATE,
        http::HeaderValue::from_static("Bearer realm=\"ruvector-storage\""),
    );
    r
}

impl<S> Service<HttpRequest> for Auth<S>
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

    fn call(&mut self, mut req: HttpRequest) -> Self::Future {
        // Taken out of the request, so nothing downstream (jsonrpsee traces
        // whole requests) can log it.
        let header = req.headers_mut().remove(http::header::AUTHORIZATION);
        if let Some(auth) = &self.auth {
            let header = header.as_ref().and_then(|v| v.to_str().ok());
            match auth.authorize(header) {
                Ok(grant) => {
                    req.extensions_mut().insert(Identity(grant));
                }
                Err(why) => {
                    tracing::info!(path = req.uri().path(), reason = why, "request refused");
                    return Box::pin(async move { Ok(unauthorized(why)) });
                }
            }
        }
        let fut = self.inner.call(req);
        Box::pin(async move { fut.await.map_err(Into::into) })
    }
}
