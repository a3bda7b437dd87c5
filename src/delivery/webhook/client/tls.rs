//! The TLS side of the client: which roots are trusted, and the handshake over a TCP stream.

use std::path::Path;
use std::sync::Arc;

use futures_rustls::client::TlsStream;
use futures_rustls::TlsConnector;
use glommio::net::TcpStream;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

use super::{AttemptError, ClientSetupError};

/// A connector trusting the system's roots plus those in `extra_root_pem` (a private CA, or the
/// test's own). Only ring is compiled in, so that is the provider.
pub(super) fn connector(extra_root_pem: Option<&Path>) -> Result<TlsConnector, ClientSetupError> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    if !native.errors.is_empty() {
        tracing::warn!(errors = ?native.errors, "some system root certificates could not be read");
    }
    let (_, unusable) = roots.add_parsable_certificates(native.certs);
    if unusable > 0 {
        tracing::debug!(
            unusable,
            "system root certificates rustls cannot use were skipped"
        );
    }
    if let Some(path) = extra_root_pem {
        let unreadable = |reason: String| ClientSetupError::ExtraRoots {
            path: path.to_owned(),
            reason,
        };
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(|e| unreadable(e.to_string()))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| unreadable(e.to_string()))?;
        if certs.is_empty() {
            return Err(ClientSetupError::NoExtraRoots(path.to_owned()));
        }
        for cert in certs {
            roots.add(cert).map_err(|e| unreadable(e.to_string()))?;
        }
    }
    if roots.is_empty() {
        tracing::warn!("no trusted root certificates: every https webhook will fail");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ClientSetupError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    // Say HTTP/1.1 up front, so a server that prefers h2 does not pick it.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsConnector::from(Arc::new(config)))
}

/// Handshake with `host` (the URL's host: a name is sent as SNI and checked against the
/// certificate; an IP literal is checked against the certificate's IP addresses, no SNI).
pub(super) async fn handshake(
    connector: &TlsConnector,
    host: &str,
    tcp: TcpStream,
) -> Result<TlsStream<TcpStream>, AttemptError> {
    let name = ServerName::try_from(host.to_owned())
        .map_err(|e| AttemptError::Tls(format!("{host:?} is not a TLS server name: {e}")))?;
    connector
        .connect(name, tcp)
        .await
        .map_err(|e| AttemptError::Tls(format!("handshake with {host} failed: {e}")))
}
