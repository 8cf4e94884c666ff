//! TLS (rustls with ring): the process-wide crypto provider, and TLS 1.3
//! for the JSON-RPC port, where each accepted connection is handshaken,
//! then served by the same jsonrpsee service (HTTP and WebSocket) as the
//! plain listener. Plaintext connections fail the handshake and are closed.

use std::path::Path;
use std::sync::Arc;

use tokio_rustls::rustls;

use crate::error::{Error, Result};

/// reqwest (object_store's and rmcp's HTTP client) is built with rustls but
/// without a bundled crypto provider: the process installs ring once, at
/// start (in `cli::main`), before any client exists. Idempotent.
pub fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// Load a certificate chain and key into a TLS-1.3-only server config.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>> {
    use rustls::pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<std::result::Result<Vec<_>, _>>())
        .map_err(|e| Error::invalid(format!("tls.cert {}: {e}", cert.display())))?;
    if certs.is_empty() {
        return Err(Error::invalid(format!(
            "tls.cert {}: no certificate in the file",
            cert.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| Error::invalid(format!("tls.key {}: {e}", key.display())))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| Error::internal(format!("TLS config: {e}")))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| Error::invalid(format!("tls.cert/tls.key do not form a usable pair: {e}")))?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}
