//! The outbound HTTP/1.1 client webhook deliveries go through: one per shard, shared by the
//! shard's delivery tasks through `&self` (`RefCell` inside, `!Send` like the rest of a shard).
//!
//! One [`HttpClient::send`] is one delivery attempt, bounded as a whole by its timeout:
//! resolve the host off the shard's thread (`resolve`), check every address against the SSRF
//! policy and pin the first permitted one, connect, handshake for https (`tls`), write the
//! request and read the response with the sans-IO codec (`conn`, `codec::http1::client`).
//! Connections are kept per origin while the receiver allows it (`pool`); a kept connection
//! that turns out to be closed before it answers (the keep-alive race) is replaced once by a
//! fresh one, which is resolved and checked again like any new connection.
//!
//! Files: `url` (what a webhook URL may be), `resolve`, `tls`, `conn`, `pool`, `error`.

mod conn;
mod error;
mod pool;
mod resolve;
mod tls;
pub mod url;

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures_rustls::TlsConnector;
use glommio::sync::Semaphore;

pub use crate::codec::http1::client::Response;
pub use error::{AttemptError, ClientSetupError};
pub use url::Url;

use crate::codec::http1::client::encode_request;
use crate::policy::ssrf::AddressPolicy;
use conn::Conn;
use pool::{Origin, Pool};

/// How the client connects; one value serves every shard's client.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Special-purpose ranges allowed anyway (receivers on the private network).
    pub allow: AddressPolicy,
    /// Bound on the TCP connect alone (the attempt's timeout bounds everything).
    pub connect_timeout: Duration,
    /// An idle kept connection older than this is closed rather than reused.
    pub idle_timeout: Duration,
    /// Idle connections kept per origin (scheme, host, port).
    pub max_idle_per_origin: usize,
    /// Connections open at once per origin: more requests wait for one (within their
    /// timeout), so 10,000 subscriptions to one receiver do not open 10,000 connections.
    pub max_connections_per_origin: usize,
    /// PEM file of root certificates trusted on top of the system's.
    pub extra_root_pem: Option<PathBuf>,
    /// Bytes of each response body kept for the attempt log; the rest is read and dropped.
    pub max_body_kept: usize,
}

/// One request to send. The engine validates `headers` (no CR/LF, no framing headers).
#[derive(Debug, Clone, Copy)]
pub struct OutboundRequest<'a> {
    pub method: &'a str,
    pub url: &'a Url,
    pub headers: &'a [(&'a str, &'a str)],
    pub body: &'a [u8],
}

/// A shard's webhook HTTP client.
pub struct HttpClient {
    policy: AddressPolicy,
    connect_timeout: Duration,
    max_body_kept: usize,
    tls: TlsConnector,
    pool: RefCell<Pool<Conn>>,
    /// Per origin: permits for open connections (one per attempt in flight).
    open: RefCell<HashMap<Origin, Rc<Semaphore>>>,
    max_connections_per_origin: usize,
}

/// Origins remembered for their connection permits before idle ones are forgotten.
const MAX_ORIGINS: usize = 4096;

impl HttpClient {
    pub fn new(cfg: ClientConfig) -> Result<HttpClient, ClientSetupError> {
        Ok(HttpClient {
            tls: tls::connector(cfg.extra_root_pem.as_deref())?,
            policy: cfg.allow,
            connect_timeout: cfg.connect_timeout,
            max_body_kept: cfg.max_body_kept,
            pool: RefCell::new(Pool::new(cfg.idle_timeout, cfg.max_idle_per_origin)),
            open: RefCell::new(HashMap::new()),
            max_connections_per_origin: cfg.max_connections_per_origin.max(1),
        })
    }

    /// The connection permits of `origin`.
    fn permits(&self, origin: &Origin) -> Rc<Semaphore> {
        let mut open = self.open.borrow_mut();
        if open.len() >= MAX_ORIGINS && !open.contains_key(origin) {
            let full = self.max_connections_per_origin as u64;
            open.retain(|_, s| s.available() < full);
        }
        open.entry(origin.clone())
            .or_insert_with(|| Rc::new(Semaphore::new(self.max_connections_per_origin as u64)))
            .clone()
    }

    /// One attempt: the response, whatever its status, or why there was none. The whole
    /// attempt takes at most `timeout`; when it runs out the connection is dropped, never
    /// reused with a request in flight.
    pub async fn send(
        &self,
        req: &OutboundRequest<'_>,
        timeout: Duration,
    ) -> Result<Response, AttemptError> {
        let timer = async {
            glommio::timer::sleep(timeout).await;
            Err(AttemptError::Timeout(timeout))
        };
        let limited = async {
            let permits = self.permits(&Origin::of(req.url));
            let Ok(_permit) = permits.acquire_permit(1).await else {
                return Err(AttemptError::Io("connection permits closed".into()));
            };
            self.attempt(req).await
        };
        futures_lite::future::or(limited, timer).await
    }

    async fn attempt(&self, req: &OutboundRequest<'_>) -> Result<Response, AttemptError> {
        let url = req.url;
        let origin = Origin::of(url);
        let mut wire = Vec::new();
        let host = url.host_header();
        encode_request(
            &mut wire,
            req.method,
            &host,
            url.path_and_query(),
            req.headers,
            req.body,
        );
        // The borrow ends with the statement: no RefCell borrow is held across an await.
        let kept = self.pool.borrow_mut().take(&origin, Instant::now());
        if let Some(mut conn) = kept {
            match conn.exchange(&wire).await {
                Ok(response) => return Ok(self.release(origin, conn, response)),
                Err(failure) if failure.unanswered => {
                    tracing::debug!(%url, error = %failure.error, "kept connection was closed; retrying on a new one");
                }
                Err(failure) => return Err(failure.error),
            }
        }
        let addr = resolve::resolve(url, &self.policy).await?;
        let mut conn = Conn::open(
            url,
            addr,
            self.connect_timeout,
            &self.tls,
            self.max_body_kept,
        )
        .await?;
        match conn.exchange(&wire).await {
            Ok(response) => Ok(self.release(origin, conn, response)),
            Err(failure) => Err(failure.error),
        }
    }

    /// Keep the connection if the response allows it.
    fn release(&self, origin: Origin, conn: Conn, response: Response) -> Response {
        if response.reusable && !conn.has_leftover() {
            self.pool.borrow_mut().put(origin, conn, Instant::now());
        }
        response
    }
}

#[cfg(test)]
mod tests;
