//! The JSON-RPC load generator of (b), (c) and (d): a minimal keep-alive
//! HTTP/1.1 client, so the benchmark measures the daemon rather than a
//! heavyweight client sharing its two cores.

use std::time::{Duration, Instant};

use crate::error::{Error, Result};

use super::harness::share;

/// A minimal keep-alive HTTP/1.1 JSON-RPC client, so the benchmark measures
/// the daemon rather than a heavyweight client sharing its two cores.
pub(super) struct RawRpc {
    stream: tokio::io::BufStream<tokio::net::TcpStream>,
    next_id: u64,
}

impl RawRpc {
    pub(super) async fn connect(url: &str) -> Result<RawRpc> {
        let addr = url.trim_start_matches("http://").trim_end_matches('/');
        let stream = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| Error::unavailable(format!("connecting to {addr}: {e}")))?;
        stream
            .set_nodelay(true)
            .map_err(|e| Error::io(e.to_string()))?;
        Ok(RawRpc {
            stream: tokio::io::BufStream::new(stream),
            next_id: 0,
        })
    }

    /// Send one call whose params are already serialised; fail on a JSON-RPC error.
    pub(super) async fn call(&mut self, method: &str, params_json: &str) -> Result<()> {
        use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
        self.next_id += 1;
        let body = format!(
            "{{\"jsonrpc\":\"2.0\",\"id\":{},\"method\":\"{method}\",\"params\":{params_json}}}",
            self.next_id
        );
        let head = format!(
            "POST / HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        let io = |e: std::io::Error| Error::io(format!("bench client: {e}"));
        self.stream.write_all(head.as_bytes()).await.map_err(io)?;
        self.stream.write_all(body.as_bytes()).await.map_err(io)?;
        self.stream.flush().await.map_err(io)?;
        let mut len = 0usize;
        let mut line = String::new();
        loop {
            line.clear();
            if self.stream.read_line(&mut line).await.map_err(io)? == 0 {
                return Err(Error::unavailable("daemon closed the connection"));
            }
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut buf = vec![0u8; len];
        self.stream.read_exact(&mut buf).await.map_err(io)?;
        if buf.windows(8).any(|w| w == b"\"error\":") {
            return Err(Error::internal(format!(
                "{method} failed: {}",
                String::from_utf8_lossy(&buf)
            )));
        }
        Ok(())
    }
}

/// `clients` connections, each making `total / clients` calls in sequence.
pub(super) async fn raw_load<F>(
    url: &str,
    clients: usize,
    total: usize,
    method: &'static str,
    params: F,
) -> Result<Duration>
where
    F: Fn(usize) -> String + Clone + Send + 'static,
{
    let mut conns = Vec::new();
    for _ in 0..clients {
        conns.push(RawRpc::connect(url).await?);
    }
    let t = Instant::now();
    let tasks: Vec<_> = conns
        .into_iter()
        .enumerate()
        .map(|(c, mut conn)| {
            let params = params.clone();
            tokio::spawn(async move {
                for i in share(c, clients, total) {
                    conn.call(method, &params(i)).await?;
                }
                Ok::<(), Error>(())
            })
        })
        .collect();
    for task in tasks {
        task.await.map_err(|e| Error::internal(e.to_string()))??;
    }
    Ok(t.elapsed())
}
