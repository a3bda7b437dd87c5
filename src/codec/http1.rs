//! Sans-IO HTTP/1.1 request decoder (on httparse) and response writer.
//!
//! [`RequestDecoder::decode`] takes bytes off the front of the connection's `BytesMut` and hands
//! back whole requests (head plus body); "need more bytes" is `Ok(None)`, never an error. The
//! decoder keeps its progress between calls (head scan offset, chunked state), so a request that
//! trickles in costs linear time, and any split of the same bytes gives the same requests.
//!
//! Submodules: `head` (request line and headers), `chunked` (chunked bodies), `response`
//! (writing answers), `error` (what went wrong and which status says so), and `client` (the
//! other direction: writing requests and reading responses, for webhook delivery).

mod chunked;
pub mod client;
mod error;
mod head;
mod response;

use bytes::{Bytes, BytesMut};

pub use error::HttpError;
pub use response::{
    status_reason, write_continue, write_error, write_response, write_response_head,
};

use chunked::ChunkedBody;
use head::{Framing, Head, HeadScan};

/// Size limits applied while decoding; exceeding one is an error with its own status.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Request line plus header fields plus the empty line (and chunked trailers). 431 above it.
    pub max_head_bytes: usize,
    /// Number of header fields. 431 above it.
    pub max_headers: usize,
    /// Length of the request-target. 414 above it.
    pub max_uri_bytes: usize,
    /// Body length, declared or de-chunked. 413 above it.
    pub max_body_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_head_bytes: 16 * 1024,
            max_headers: 64,
            max_uri_bytes: 8 * 1024,
            max_body_bytes: 1024 * 1024,
        }
    }
}

/// Request method; the ones the gateway routes on, and `Other` for the rest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
    Put,
    Patch,
    Delete,
    Options,
    Other,
}

impl Method {
    /// Methods are case-sensitive (RFC 9110 §9.1): "get" is `Other`.
    pub fn from_token(token: &str) -> Method {
        match token {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "PATCH" => Method::Patch,
            "DELETE" => Method::Delete,
            "OPTIONS" => Method::Options,
            _ => Method::Other,
        }
    }
}

/// A complete request: head and full body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: Method,
    /// Raw request-target as sent ("/topics/a/events?x=1").
    pub target: String,
    /// 0 or 1.
    pub minor_version: u8,
    /// In order received, names lower-cased, values as sent (without surrounding whitespace).
    pub headers: Vec<(String, Vec<u8>)>,
    /// Full body (Content-Length or de-chunked).
    pub body: Bytes,
    /// HTTP/1.1: true unless "Connection: close"; HTTP/1.0: false unless "Connection: keep-alive".
    pub keep_alive: bool,
}

impl Request {
    /// Value of the first header named `name_lowercase`.
    pub fn header(&self, name_lowercase: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n == name_lowercase)
            .map(|(_, v)| v.as_slice())
    }

    /// Value of the first header named `name_lowercase`, if it is valid UTF-8.
    pub fn header_str(&self, name_lowercase: &str) -> Option<&str> {
        self.header(name_lowercase)
            .and_then(|v| std::str::from_utf8(v).ok())
    }

    /// The target before '?'.
    pub fn path(&self) -> &str {
        self.target.split_once('?').map_or(&self.target, |(p, _)| p)
    }

    /// The target after '?', "" if none.
    pub fn query(&self) -> &str {
        self.target.split_once('?').map_or("", |(_, q)| q)
    }
}

/// A head that has been read, with the state of its body.
#[derive(Debug)]
struct Pending {
    head: Head,
    body: BodyState,
    /// `Expect: 100-continue` not yet reported through `take_continue`.
    continue_due: bool,
}

#[derive(Debug)]
enum BodyState {
    Length(usize),
    Chunked(ChunkedBody),
}

/// Incremental request decoder; one per connection.
#[derive(Debug, Default)]
pub struct RequestDecoder {
    limits: Limits,
    scan: HeadScan,
    pending: Option<Pending>,
}

impl RequestDecoder {
    pub fn new(limits: Limits) -> Self {
        RequestDecoder {
            limits,
            scan: HeadScan::default(),
            pending: None,
        }
    }

    /// Consume from `buf` (split off the bytes used) and return a complete request, or
    /// `Ok(None)` when more bytes are needed. Pipelining: call again on the rest of the buffer.
    /// Between calls the caller may only append to `buf`.
    ///
    /// After an error the connection must be answered (see [`write_error`]) and closed; the
    /// decoder is reset, but what follows in `buf` is not a trustworthy request boundary.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Request>, HttpError> {
        let result = self.decode_inner(buf);
        if result.is_err() {
            self.scan.reset();
            self.pending = None;
        }
        result
    }

    /// True exactly once per request whose head said `Expect: 100-continue` and whose body has
    /// not fully arrived yet: the connection should then send [`write_continue`], or the client
    /// may wait (curl waits a second) before sending the body.
    pub fn take_continue(&mut self) -> bool {
        match &mut self.pending {
            Some(p) if p.continue_due => {
                p.continue_due = false;
                true
            }
            _ => false,
        }
    }

    fn decode_inner(&mut self, buf: &mut BytesMut) -> Result<Option<Request>, HttpError> {
        let mut pending = match self.pending.take() {
            Some(p) => p,
            None => {
                let Some(head) = self.scan.decode(buf, &self.limits)? else {
                    return Ok(None);
                };
                let body = match head.framing {
                    Framing::Empty => return Ok(Some(finish(head, Bytes::new()))),
                    Framing::Length(n) => BodyState::Length(n),
                    Framing::Chunked => BodyState::Chunked(ChunkedBody::new(
                        self.limits.max_body_bytes,
                        self.limits.max_head_bytes,
                        head.len,
                    )),
                };
                let continue_due = head.expect_continue;
                Pending {
                    head,
                    body,
                    continue_due,
                }
            }
        };
        let body = match &mut pending.body {
            BodyState::Length(n) if buf.len() >= *n => Some(buf.split_to(*n).freeze()),
            BodyState::Length(_) => None,
            BodyState::Chunked(c) => c.decode(buf)?,
        };
        match body {
            Some(body) => Ok(Some(finish(pending.head, body))),
            None => {
                self.pending = Some(pending);
                Ok(None)
            }
        }
    }
}

fn finish(head: Head, body: Bytes) -> Request {
    Request {
        method: head.method,
        target: head.target,
        minor_version: head.minor_version,
        headers: head.headers,
        body,
        keep_alive: head.keep_alive,
    }
}

#[cfg(test)]
mod tests;
