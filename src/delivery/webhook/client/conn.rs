//! One connection to a webhook receiver (plain or TLS) and one request/response exchange on it.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::BytesMut;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use futures_rustls::client::TlsStream;
use futures_rustls::TlsConnector;
use glommio::net::TcpStream;

use super::error::seconds;
use super::url::{Scheme, Url};
use super::{tls, AttemptError};
use crate::codec::http1::client::{Response, ResponseDecoder, ResponseError};

/// Bytes asked of the socket per read.
const READ_CHUNK: usize = 16 * 1024;

/// A body longer than this is an error (and the connection is dropped): a webhook receiver has
/// no reason to answer with more, and reading it would tie up the attempt.
pub(super) const MAX_RESPONSE_BODY: usize = 1024 * 1024;

enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// An open connection and its read buffer.
pub(super) struct Conn {
    stream: Stream,
    buf: BytesMut,
    decoder: ResponseDecoder,
}

/// An exchange that failed; `unanswered` when the connection broke before any response byte,
/// which on a reused connection is the keep-alive race (the server closed it while idle) and
/// worth one try on a fresh connection.
pub(super) struct Failure {
    pub error: AttemptError,
    pub unanswered: bool,
}

impl Conn {
    /// Connect to `addr` (already checked by the SSRF policy) and, for https, handshake with the
    /// URL's host.
    pub(super) async fn open(
        url: &Url,
        addr: SocketAddr,
        connect_timeout: Duration,
        tls: &TlsConnector,
        max_body_kept: usize,
    ) -> Result<Conn, AttemptError> {
        let connect = async {
            TcpStream::connect(addr)
                .await
                .map_err(|e| connect_error(addr, e.into()))
        };
        let timed_out = async {
            glommio::timer::sleep(connect_timeout).await;
            Err(AttemptError::Connect {
                addr,
                reason: format!("timed out after {}", seconds(&connect_timeout)),
            })
        };
        let tcp = futures_lite::future::or(connect, timed_out).await?;
        // The request goes out in one write; no reason to let Nagle hold a short one back.
        let _ = tcp.set_nodelay(true);
        let stream = match url.scheme() {
            Scheme::Http => Stream::Plain(tcp),
            Scheme::Https => Stream::Tls(Box::new(tls::handshake(tls, url.host(), tcp).await?)),
        };
        Ok(Conn {
            stream,
            buf: BytesMut::new(),
            decoder: ResponseDecoder::new(max_body_kept, MAX_RESPONSE_BODY),
        })
    }

    /// Write `request` and read its response.
    pub(super) async fn exchange(&mut self, request: &[u8]) -> Result<Response, Failure> {
        // Whatever a server sent between responses was not an answer to this request.
        self.buf.clear();
        if let Err(e) = self.stream.write_all(request).await {
            return Err(Failure {
                error: AttemptError::Io(format!("writing the request: {e}")),
                unanswered: true,
            });
        }
        let mut received = 0usize;
        loop {
            match self.decoder.decode(&mut self.buf) {
                Ok(Some(response)) => return Ok(response),
                Ok(None) => {}
                Err(e) => return Err(protocol(e)),
            }
            let start = self.buf.len();
            self.buf.resize(start + READ_CHUNK, 0);
            let read = match self.buf.get_mut(start..) {
                Some(space) => self.stream.read(space).await,
                None => Ok(0),
            };
            let n = match read {
                Ok(n) => n,
                // A TLS peer that closes without close_notify; the framing decides if that
                // cut anything short.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => 0,
                Err(e) => {
                    self.buf.truncate(start);
                    return Err(Failure {
                        error: AttemptError::Io(format!("reading the response: {e}")),
                        unanswered: received == 0,
                    });
                }
            };
            self.buf.truncate(start + n);
            received += n;
            if n == 0 {
                return match self.decoder.finish_eof(&mut self.buf) {
                    Ok(response) => Ok(response),
                    Err(_) if received == 0 => Err(Failure {
                        error: AttemptError::Io(
                            "the server closed the connection without answering".to_owned(),
                        ),
                        unanswered: true,
                    }),
                    Err(e) => Err(protocol(e)),
                };
            }
        }
    }

    /// After a response: whether the server left bytes nobody asked for (the connection's
    /// framing is then not to be trusted with another request).
    pub(super) fn has_leftover(&self) -> bool {
        !self.buf.is_empty()
    }
}

impl Stream {
    async fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Stream::Plain(s) => {
                s.write_all(bytes).await?;
                s.flush().await
            }
            Stream::Tls(s) => {
                s.write_all(bytes).await?;
                s.flush().await
            }
        }
    }

    async fn read(&mut self, into: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(into).await,
            Stream::Tls(s) => s.read(into).await,
        }
    }
}

fn protocol(e: ResponseError) -> Failure {
    Failure {
        error: AttemptError::Protocol(e),
        unanswered: false,
    }
}

fn connect_error(addr: SocketAddr, e: io::Error) -> AttemptError {
    let reason = match e.kind() {
        io::ErrorKind::ConnectionRefused => "refused".to_owned(),
        io::ErrorKind::TimedOut => "timed out".to_owned(),
        _ => format!("failed: {e}"),
    };
    AttemptError::Connect { addr, reason }
}
