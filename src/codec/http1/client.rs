//! Sans-IO HTTP/1.1 client side: writing a request and reading the response to it (the webhook
//! delivery client's codec).
//!
//! [`ResponseDecoder::decode`] takes bytes off the front of the connection's `BytesMut` and
//! hands back a whole [`Response`]; "need more bytes" is `Ok(None)`, never an error. Progress is
//! kept between calls, so any split of the same bytes gives the same response. The body is read
//! to its end (so the connection can be reused) but only its first `max_body_kept` bytes are
//! kept: a webhook receiver's answer is logged, not processed. Interim 1xx responses are
//! skipped. Responses to HEAD are not supported (the client never sends one).
//!
//! Submodules: `encode` (the request), `head` (status line, headers, framing), `error`.

mod encode;
mod error;
mod head;

use bytes::{Buf, Bytes, BytesMut};

pub use encode::encode_request;
pub use error::ResponseError;

use super::chunked::ChunkedBody;
use super::HttpError;
use head::{Framing, Head, HeadScan, MAX_HEAD};

/// A complete response: status, head fields and the kept start of the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    /// In order received, names lower-cased, values as sent (trimmed; invalid UTF-8 replaced).
    pub headers: Vec<(String, String)>,
    /// The first `max_body_kept` bytes of the body (de-chunked).
    pub body: Bytes,
    /// The connection may carry another request: false after `Connection: close`, an HTTP/1.0
    /// response without `keep-alive`, or a body delimited by the close.
    pub reusable: bool,
}

impl Response {
    /// Value of the first header named `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Where the decoder stands in the current response.
#[derive(Debug)]
enum State {
    Head(HeadScan),
    Body { head: Head, body: Body },
}

#[derive(Debug)]
enum Body {
    /// `remaining` bytes still to read of a Content-Length body.
    Length {
        remaining: usize,
        kept: BytesMut,
    },
    Chunked(ChunkedBody),
    /// Read until the server closes; `seen` counts every byte for the `max_body` bound.
    UntilClose {
        seen: usize,
        kept: BytesMut,
    },
}

/// Incremental response decoder; one per connection, reused for each response on it.
#[derive(Debug)]
pub struct ResponseDecoder {
    max_body_kept: usize,
    max_body: usize,
    state: State,
}

impl ResponseDecoder {
    /// Keep the first `max_body_kept` bytes of each body; refuse a body longer than `max_body`
    /// (declared or received), after which the connection must be closed.
    pub fn new(max_body_kept: usize, max_body: usize) -> Self {
        ResponseDecoder {
            max_body_kept,
            max_body,
            state: State::Head(HeadScan::default()),
        }
    }

    /// Consume from `buf` and return the response once complete, or `Ok(None)` when more bytes
    /// are needed. Between calls the caller may only append to `buf`. Bytes left in `buf` after a
    /// response are not part of it (a server that sends them is not to be trusted with the
    /// connection). After an error the decoder is reset, but the connection must be dropped.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Response>, ResponseError> {
        let result = self.decode_inner(buf);
        if !matches!(result, Ok(None)) {
            self.state = State::Head(HeadScan::default());
        }
        result
    }

    /// The server closed the connection: decode what is left in `buf`, then either finish a
    /// body delimited by the close or report where the response was cut short.
    pub fn finish_eof(&mut self, buf: &mut BytesMut) -> Result<Response, ResponseError> {
        if let Some(response) = self.decode(buf)? {
            return Ok(response);
        }
        let state = std::mem::replace(&mut self.state, State::Head(HeadScan::default()));
        match state {
            State::Head(_) => Err(ResponseError::EofInHead {
                received: buf.len(),
            }),
            State::Body {
                head,
                body: Body::UntilClose { kept, .. },
            } => Ok(finish(head, kept.freeze())),
            State::Body { head, body } => Err(ResponseError::EofInBody {
                received: received(&head, &body),
            }),
        }
    }

    fn decode_inner(&mut self, buf: &mut BytesMut) -> Result<Option<Response>, ResponseError> {
        loop {
            if let State::Head(scan) = &mut self.state {
                let Some(head) = scan.decode(buf)? else {
                    return Ok(None);
                };
                match head.status {
                    101 => return Err(ResponseError::UnexpectedUpgrade),
                    // Interim (100 Continue, 103 Early Hints): the real response follows.
                    100..=199 => continue,
                    _ => {}
                }
                let body = match head.framing {
                    Framing::Empty => return Ok(Some(finish(head, Bytes::new()))),
                    Framing::Length(n) if n > self.max_body => {
                        return Err(ResponseError::BodyTooLarge { max: self.max_body })
                    }
                    Framing::Length(n) => Body::Length {
                        remaining: n,
                        kept: BytesMut::with_capacity(n.min(self.max_body_kept)),
                    },
                    Framing::Chunked => Body::Chunked(
                        ChunkedBody::new(self.max_body, MAX_HEAD, head.len)
                            .keeping(self.max_body_kept),
                    ),
                    Framing::UntilClose => Body::UntilClose {
                        seen: 0,
                        kept: BytesMut::new(),
                    },
                };
                self.state = State::Body { head, body };
            }
            let State::Body { body, .. } = &mut self.state else {
                continue;
            };
            let done = match body {
                Body::Length { remaining, kept } => {
                    let n = (*remaining).min(buf.len());
                    keep_prefix(kept, buf, n, self.max_body_kept);
                    *remaining -= n;
                    (*remaining == 0).then(|| std::mem::take(kept).freeze())
                }
                Body::Chunked(chunked) => chunked.decode(buf).map_err(from_chunked)?,
                Body::UntilClose { seen, kept } => {
                    *seen = seen.saturating_add(buf.len());
                    if *seen > self.max_body {
                        return Err(ResponseError::BodyTooLarge { max: self.max_body });
                    }
                    let n = buf.len();
                    keep_prefix(kept, buf, n, self.max_body_kept);
                    None
                }
            };
            let Some(body) = done else {
                return Ok(None);
            };
            let state = std::mem::replace(&mut self.state, State::Head(HeadScan::default()));
            if let State::Body { head, .. } = state {
                return Ok(Some(finish(head, body)));
            }
        }
    }
}

/// Move `n` bytes off the front of `buf`, appending to `kept` what fits under `max_kept`.
fn keep_prefix(kept: &mut BytesMut, buf: &mut BytesMut, n: usize, max_kept: usize) {
    let room = max_kept.saturating_sub(kept.len()).min(n);
    kept.extend_from_slice(buf.get(..room).unwrap_or_default());
    buf.advance(n);
}

/// Body bytes received so far, for the "closed inside the body" error.
fn received(head: &Head, body: &Body) -> usize {
    match (head.framing, body) {
        (Framing::Length(n), Body::Length { remaining, .. }) => n - remaining,
        (_, Body::UntilClose { seen, .. }) => *seen,
        (_, Body::Chunked(chunked)) => chunked.seen(),
        // A Length body always has Length framing.
        (_, Body::Length { .. }) => 0,
    }
}

/// The request decoder's chunked errors, restated for a response.
fn from_chunked(e: HttpError) -> ResponseError {
    match e {
        HttpError::BodyTooLarge { max } => ResponseError::BodyTooLarge { max },
        HttpError::HeadTooLarge { max } => ResponseError::TrailersTooLarge { max },
        HttpError::MissingChunkCrlf => ResponseError::MissingChunkCrlf,
        HttpError::BadTrailer => ResponseError::BadTrailer,
        _ => ResponseError::BadChunkSize,
    }
}

fn finish(head: Head, body: Bytes) -> Response {
    Response {
        status: head.status,
        headers: head.headers,
        body,
        reusable: head.keep_alive,
    }
}

#[cfg(test)]
mod tests;
