//! What went wrong with one delivery attempt, worded for the attempt log and the dead letter.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::codec::http1::client::ResponseError;
use crate::policy::ssrf::ForbiddenAddress;

/// Why an attempt got no response. None of these says whether the receiver acted on the
/// request (a timeout after the write may follow a delivery); retries are the engine's call.
#[derive(Debug, thiserror::Error)]
pub enum AttemptError {
    /// The host did not resolve (or resolved to nothing).
    #[error("{0}")]
    Resolve(String),
    /// Every address of the host is in a range deliveries may not reach; nothing was sent.
    #[error("refused to connect: {0}")]
    Forbidden(ForbiddenAddress),
    /// The TCP connection could not be made; `reason` reads after the address ("refused",
    /// "timed out after 5 s").
    #[error("connect to {addr} {reason}")]
    Connect { addr: SocketAddr, reason: String },
    /// The TLS handshake failed (certificate not trusted, wrong name, no common protocol).
    #[error("TLS: {0}")]
    Tls(String),
    /// The whole attempt (resolve, connect, TLS, write, read) took longer than its bound.
    #[error("timed out after {}", seconds(.0))]
    Timeout(Duration),
    /// The response could not be read as HTTP/1.1.
    #[error("bad response: {0}")]
    Protocol(ResponseError),
    /// The connection failed while writing the request or reading the response.
    #[error("{0}")]
    Io(String),
}

/// "5 s", "1.5 s", "250 ms": how a person would write the bound.
pub(super) fn seconds(d: &Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else if d.as_secs() == 0 {
        format!("{} ms", d.subsec_millis())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

/// Why the client could not be built (a configuration problem, reported at start).
#[derive(Debug, thiserror::Error)]
pub enum ClientSetupError {
    #[error("reading extra root certificates from {}: {reason}", .path.display())]
    ExtraRoots { path: PathBuf, reason: String },
    #[error("no PEM certificate in {}", .0.display())]
    NoExtraRoots(PathBuf),
    #[error("TLS configuration: {0}")]
    Tls(String),
}
