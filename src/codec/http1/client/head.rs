//! Response head: find where it ends without re-scanning, parse it with httparse, and work out
//! how the body is delimited and whether the connection survives it (RFC 9112 §6.3, §9.3).

use bytes::{Buf, BytesMut};

use super::ResponseError;

/// Status line plus header fields plus the empty line.
pub(super) const MAX_HEAD: usize = 16 * 1024;
/// Header fields per response.
pub(super) const MAX_HEADERS: usize = 64;

/// How the body after a head is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Framing {
    /// 204, 304, or `Content-Length: 0`.
    Empty,
    Length(usize),
    Chunked,
    /// Neither length nor chunked: the body is whatever arrives until the server closes.
    UntilClose,
}

/// A parsed response head, owned.
#[derive(Debug)]
pub(super) struct Head {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub framing: Framing,
    /// The connection may carry another request after this response's body.
    pub keep_alive: bool,
    /// Bytes the head took, so chunked trailers count against the same limit.
    pub len: usize,
}

/// Progress through the next head, kept between calls so a head trickling in is scanned once.
#[derive(Debug, Default)]
pub(super) struct HeadScan {
    /// Offset up to which no end of head was found.
    scanned: usize,
    /// Where the line being scanned starts.
    line_start: usize,
}

impl HeadScan {
    /// Take a complete head off the front of `buf`, or `Ok(None)` if more bytes are needed.
    pub(super) fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Head>, ResponseError> {
        let window = buf.get(..buf.len().min(MAX_HEAD)).unwrap_or_default();
        let mut end = None;
        while let Some(off) = window
            .get(self.scanned..)
            .and_then(|rest| memchr::memchr(b'\n', rest))
        {
            let nl = self.scanned + off;
            let line = window.get(self.line_start..nl).unwrap_or_default();
            // Servers are lenient about bare LF and so is httparse on responses: a client has
            // no proxy behind it to disagree with about where a line ends.
            if self.line_start > 0 && (line.is_empty() || line == b"\r") {
                end = Some(nl + 1);
                break;
            }
            self.scanned = nl + 1;
            self.line_start = nl + 1;
        }
        let Some(end) = end else {
            self.scanned = window.len();
            return if buf.len() > MAX_HEAD {
                Err(ResponseError::HeadTooLarge { max: MAX_HEAD })
            } else {
                Ok(None)
            };
        };
        let head = parse(buf.get(..end).unwrap_or_default())?;
        buf.advance(end);
        *self = HeadScan::default();
        Ok(Some(head))
    }
}

fn parse(raw: &[u8]) -> Result<Head, ResponseError> {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut res = httparse::Response::new(&mut slots);
    match res.parse(raw) {
        Ok(httparse::Status::Complete(_)) => {}
        // The scan saw the empty line, so httparse cannot want more.
        Ok(httparse::Status::Partial) => return Err(ResponseError::BadHead("incomplete head")),
        Err(e) => return Err(map_parse_error(e)),
    }
    let (Some(minor), Some(status)) = (res.version, res.code) else {
        return Err(ResponseError::BadStatusLine);
    };
    let headers: Vec<(String, String)> = res
        .headers
        .iter()
        .map(|h| {
            let value = String::from_utf8_lossy(h.value).into_owned();
            (h.name.to_ascii_lowercase(), value)
        })
        .collect();
    let (close, keep) = connection_tokens(&headers);
    let framing = framing(status, &headers)?;
    let mut keep_alive = if minor >= 1 { !close } else { keep && !close };
    let has_length = headers.iter().any(|(n, _)| n == "content-length");
    // A body delimited by the close cannot be followed by anything; and a response with both
    // Transfer-Encoding and Content-Length is read by the former (RFC 9112 §6.3) but is the
    // shape of response splitting, so its connection is not trusted with another request.
    if framing == Framing::UntilClose || (framing == Framing::Chunked && has_length) {
        keep_alive = false;
    }
    Ok(Head {
        status,
        headers,
        framing,
        keep_alive,
        len: raw.len(),
    })
}

fn map_parse_error(e: httparse::Error) -> ResponseError {
    match e {
        httparse::Error::TooManyHeaders => ResponseError::TooManyHeaders { max: MAX_HEADERS },
        httparse::Error::HeaderName => ResponseError::BadHead("invalid header name"),
        httparse::Error::HeaderValue => ResponseError::BadHead("invalid header value"),
        httparse::Error::NewLine => ResponseError::BadHead("invalid line ending"),
        httparse::Error::Version | httparse::Error::Status | httparse::Error::Token => {
            ResponseError::BadStatusLine
        }
    }
}

/// Whether `Connection` says `close` and whether it says `keep-alive`.
fn connection_tokens(headers: &[(String, String)]) -> (bool, bool) {
    let (mut close, mut keep) = (false, false);
    for (_, value) in headers.iter().filter(|(n, _)| n == "connection") {
        for token in value.split(',').map(str::trim) {
            close |= token.eq_ignore_ascii_case("close");
            keep |= token.eq_ignore_ascii_case("keep-alive");
        }
    }
    (close, keep)
}

/// RFC 9112 §6.3, for a response to a request that is not HEAD or CONNECT.
fn framing(status: u16, headers: &[(String, String)]) -> Result<Framing, ResponseError> {
    if status == 204 || status == 304 || status < 200 {
        return Ok(Framing::Empty);
    }
    let mut codings: Vec<&str> = Vec::new();
    let mut length: Option<usize> = None;
    for (name, value) in headers {
        match name.as_str() {
            "transfer-encoding" => {
                codings.extend(value.split(',').map(str::trim).filter(|c| !c.is_empty()))
            }
            "content-length" => {
                // A list of identical values ("5, 5") is allowed by RFC 9110 §8.6.
                for item in value.split(',').map(str::trim) {
                    let n = parse_decimal(item).ok_or(ResponseError::BadContentLength)?;
                    match length {
                        Some(prev) if prev != n => {
                            return Err(ResponseError::ConflictingContentLength)
                        }
                        _ => length = Some(n),
                    }
                }
            }
            _ => {}
        }
    }
    if let Some(last) = codings.last() {
        // §6.3 rule 4: chunked last means chunked; any other final coding means the body runs
        // to the close (its bytes are kept as received, still encoded).
        return Ok(if last.eq_ignore_ascii_case("chunked") {
            Framing::Chunked
        } else {
            Framing::UntilClose
        });
    }
    Ok(match length {
        Some(0) => Framing::Empty,
        Some(n) => Framing::Length(n),
        None => Framing::UntilClose,
    })
}

/// `1*DIGIT`, saturating: a length too big for usize is simply "too large" later.
fn parse_decimal(s: &str) -> Option<usize> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(s.bytes().fold(0usize, |acc, d| {
        acc.saturating_mul(10).saturating_add(usize::from(d - b'0'))
    }))
}
