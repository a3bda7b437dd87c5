//! Request head: find where it ends without re-scanning, enforce the size limits, parse it with
//! httparse and work out how the body is framed.
//!
//! Every check here depends only on a prefix of the input and, once decided, stays decided as
//! more bytes arrive. That is what makes the decoder give the same answer for any split.

use bytes::{Buf, BytesMut};

use super::{HttpError, Limits, Method};

/// Longest method token accepted. The longest registered method is 17 bytes
/// (UPDATEREDIRECTREF); this bound exists so a request line without spaces is refused early.
const MAX_METHOD_BYTES: usize = 24;

/// httparse needs a slice of header slots; up to this many live on the stack.
const STACK_HEADERS: usize = 64;

/// How the body that follows a head is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Framing {
    /// No Content-Length and no Transfer-Encoding: a request without a body.
    Empty,
    Length(usize),
    Chunked,
}

/// A parsed head, owned, waiting for its body.
#[derive(Debug)]
pub(super) struct Head {
    pub method: Method,
    pub target: String,
    pub minor_version: u8,
    pub headers: Vec<(String, Vec<u8>)>,
    pub keep_alive: bool,
    pub framing: Framing,
    /// `Expect: 100-continue` on an HTTP/1.1 request.
    pub expect_continue: bool,
    /// Bytes the head took, so chunked trailers can be counted against the same limit.
    pub len: usize,
}

/// Progress through the head of the next request, kept between calls so that bytes already
/// looked at are not looked at again (a head trickling in byte by byte stays linear).
#[derive(Debug, Default)]
pub(super) struct HeadScan {
    /// Progress of the method/target length check.
    line: LineCheck,
    /// Offset up to which the request-line check found no delimiter.
    line_searched: usize,
    /// Offset up to which no end-of-head was found.
    scanned: usize,
}

impl HeadScan {
    /// Forget progress (after an error, or once a head was taken).
    pub(super) fn reset(&mut self) {
        *self = HeadScan::default();
    }

    /// Take a complete head off the front of `buf`, or `Ok(None)` if more bytes are needed.
    /// The caller must only append to `buf` between calls.
    pub(super) fn decode(
        &mut self,
        buf: &mut BytesMut,
        limits: &Limits,
    ) -> Result<Option<Head>, HttpError> {
        if self.line != LineCheck::Done {
            // RFC 9112 §2.2: ignore empty lines before the request line (some clients send a
            // stray CRLF after a body). Only CRLF: a bare LF is refused like anywhere in a head.
            loop {
                match (buf.first(), buf.get(1)) {
                    (Some(b'\n'), _) => return Err(HttpError::BareLineFeed),
                    (Some(b'\r'), Some(b'\n')) => buf.advance(2),
                    (Some(b'\r'), None) | (None, _) => return Ok(None),
                    _ => break,
                }
            }
            let max_uri = limits.max_uri_bytes;
            if !check_request_line(&mut self.line, &mut self.line_searched, buf, max_uri)? {
                return Ok(None);
            }
        }
        let end = match find_head_end(buf, &mut self.scanned, limits.max_head_bytes)? {
            Some(end) => end,
            None if buf.len() > limits.max_head_bytes => {
                return Err(HttpError::HeadTooLarge {
                    max: limits.max_head_bytes,
                })
            }
            None => return Ok(None),
        };
        let head = parse_head(buf.get(..end).unwrap_or_default(), limits)?;
        buf.advance(end);
        self.reset();
        Ok(Some(head))
    }
}

/// Where the request-line check stands. Both phases resume where the previous call stopped.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum LineCheck {
    /// Looking for the space after the method; no delimiter before `searched`.
    #[default]
    Method,
    /// Method ends at `sp`; looking for the end of the target, none before `searched`.
    Target { sp: usize },
    /// Method and target are within limits.
    Done,
}

/// Check the method and target lengths from the start of the request line. `Ok(true)` when both
/// are within limits, `Ok(false)` when more bytes are needed to tell.
fn check_request_line(
    state: &mut LineCheck,
    searched: &mut usize,
    buf: &[u8],
    max_uri: usize,
) -> Result<bool, HttpError> {
    if *state == LineCheck::Method {
        let Some(sp) = find_delim(buf, searched, MAX_METHOD_BYTES + 1) else {
            return if buf.len() > MAX_METHOD_BYTES {
                Err(HttpError::MethodTooLong)
            } else {
                Ok(false)
            };
        };
        if sp == 0 || buf.get(sp) != Some(&b' ') {
            return Err(HttpError::BadRequestLine);
        }
        *state = LineCheck::Target { sp };
        *searched = sp + 1;
    }
    if let LineCheck::Target { sp } = *state {
        // The target starts at sp + 1; a delimiter anywhere in its first max_uri + 1 bytes
        // means it is at most max_uri long.
        let target_start = sp + 1;
        let window_end = target_start.saturating_add(max_uri).saturating_add(1);
        if find_delim(buf, searched, window_end).is_none() {
            return if buf.len() >= window_end {
                Err(HttpError::UriTooLong { max: max_uri })
            } else {
                Ok(false)
            };
        }
        *state = LineCheck::Done;
    }
    Ok(true)
}

/// Position of the first SP, CR or LF in `buf[*searched..window_end]`; on `None`, `*searched`
/// moves to where the next call should resume.
fn find_delim(buf: &[u8], searched: &mut usize, window_end: usize) -> Option<usize> {
    let window_end = window_end.min(buf.len());
    let found = buf
        .get(*searched..window_end)
        .and_then(|w| w.iter().position(|b| matches!(b, b' ' | b'\r' | b'\n')))
        .map(|i| *searched + i);
    *searched = found.unwrap_or(window_end.max(*searched));
    found
}

/// Find the end of the head (just past the CRLF CRLF) within its first `limit` bytes, starting
/// at `*from`. On `None`, `*from` is advanced to where the next search should resume. Looking no
/// further than `limit` keeps the answer independent of how the bytes arrive: a bare LF beyond
/// the limit is a too-large head whether it came in one read or in many.
///
/// Every line must end with CRLF. RFC 9112 §2.2 lets a recipient accept a bare LF, but a gateway
/// behind a proxy must not: a proxy that splits lines only on CRLF reads `X-A: 1\nTransfer-
/// Encoding: chunked` as one header, this gateway would read two, and the two disagree on where
/// the body ends (request smuggling). So a bare LF is an error the moment it is seen.
fn find_head_end(buf: &[u8], from: &mut usize, limit: usize) -> Result<Option<usize>, HttpError> {
    let window = buf.get(..limit.min(buf.len())).unwrap_or_default();
    let mut i = *from;
    while let Some(off) = window.get(i..).and_then(|rest| memchr::memchr(b'\n', rest)) {
        let nl = i + off;
        if nl == 0 || buf.get(nl - 1) != Some(&b'\r') {
            return Err(HttpError::BareLineFeed);
        }
        // The line that ends here is empty when the byte before its CR ends the previous line
        // (whose own CR was checked when that LF was found). The request line is never empty.
        if nl >= 3 && buf.get(nl - 2) == Some(&b'\n') {
            return Ok(Some(nl + 1));
        }
        i = nl + 1;
    }
    *from = window.len();
    Ok(None)
}

/// Parse a complete head (`raw` ends with the empty line).
fn parse_head(raw: &[u8], limits: &Limits) -> Result<Head, HttpError> {
    let mut stack = [httparse::EMPTY_HEADER; STACK_HEADERS];
    let mut heap;
    let slots: &mut [httparse::Header<'_>] = if limits.max_headers <= STACK_HEADERS {
        stack.get_mut(..limits.max_headers).unwrap_or_default()
    } else {
        heap = vec![httparse::EMPTY_HEADER; limits.max_headers];
        &mut heap
    };
    let mut req = httparse::Request::new(slots);
    match req.parse(raw) {
        Ok(httparse::Status::Complete(_)) => {}
        // find_head_end saw the empty line, so httparse cannot want more; treat it as malformed.
        Ok(httparse::Status::Partial) => return Err(HttpError::BadHead("incomplete head")),
        Err(e) => return Err(map_parse_error(e, raw, limits)),
    }
    let (Some(method), Some(target), Some(minor_version)) = (req.method, req.path, req.version)
    else {
        return Err(HttpError::BadRequestLine);
    };
    if target.len() > limits.max_uri_bytes {
        // Unreachable after check_request_line, kept so the limit holds on its own.
        return Err(HttpError::UriTooLong {
            max: limits.max_uri_bytes,
        });
    }
    let headers: Vec<(String, Vec<u8>)> = req
        .headers
        .iter()
        .map(|h| (h.name.to_ascii_lowercase(), h.value.to_vec()))
        .collect();
    check_host(&headers, minor_version)?;
    let framing = framing(&headers, minor_version, limits)?;
    let (mut close, mut keep) = (false, false);
    let mut expect_continue = false;
    for (name, value) in &headers {
        match name.as_str() {
            "connection" => {
                for token in list_items(value) {
                    close |= token.eq_ignore_ascii_case(b"close");
                    keep |= token.eq_ignore_ascii_case(b"keep-alive");
                }
            }
            "expect" => expect_continue |= trim(value).eq_ignore_ascii_case(b"100-continue"),
            _ => {}
        }
    }
    Ok(Head {
        method: Method::from_token(method),
        target: target.to_owned(),
        minor_version,
        keep_alive: if minor_version >= 1 {
            !close
        } else {
            keep && !close
        },
        expect_continue: expect_continue && minor_version >= 1,
        headers,
        framing,
        len: raw.len(),
    })
}

fn map_parse_error(e: httparse::Error, raw: &[u8], limits: &Limits) -> HttpError {
    match e {
        httparse::Error::TooManyHeaders => HttpError::TooManyHeaders {
            max: limits.max_headers,
        },
        httparse::Error::Version => {
            // "HTTP/2.0" is a version we do not speak (505); "HTTX/1.1" is just garbage (400).
            let line = raw.split(|&b| b == b'\n').next().unwrap_or_default();
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let version = trim(line.rsplit(|&b| b == b' ').next().unwrap_or_default());
            match version.strip_prefix(b"HTTP/") {
                Some(num)
                    if !num.is_empty() && num.iter().all(|b| b.is_ascii_digit() || *b == b'.') =>
                {
                    HttpError::UnsupportedVersion
                }
                _ => HttpError::BadRequestLine,
            }
        }
        httparse::Error::HeaderName => HttpError::BadHead("invalid header name"),
        httparse::Error::HeaderValue => HttpError::BadHead("invalid header value"),
        httparse::Error::NewLine => HttpError::BadHead("invalid line ending"),
        httparse::Error::Token | httparse::Error::Status => HttpError::BadRequestLine,
    }
}

/// RFC 9112 §3.2: an HTTP/1.1 request has exactly one `Host` field, an HTTP/1.0 one at most. Two
/// of them could route differently at a proxy and here, so both shapes are refused.
fn check_host(headers: &[(String, Vec<u8>)], minor_version: u8) -> Result<(), HttpError> {
    match headers.iter().filter(|(name, _)| name == "host").count() {
        0 if minor_version >= 1 => Err(HttpError::MissingHost),
        0 | 1 => Ok(()),
        _ => Err(HttpError::DuplicateHost),
    }
}

/// Decide the body framing from Content-Length / Transfer-Encoding (RFC 9112 §6.3), refusing
/// every ambiguous combination rather than guessing (request smuggling lives in the guesses).
fn framing(
    headers: &[(String, Vec<u8>)],
    minor_version: u8,
    limits: &Limits,
) -> Result<Framing, HttpError> {
    let mut length: Option<usize> = None;
    let mut has_te = false;
    let mut codings: Vec<&[u8]> = Vec::new();
    for (name, value) in headers {
        match name.as_str() {
            "content-length" => {
                // A list of identical values ("5, 5") is allowed by RFC 9110 §8.6.
                let mut any = false;
                for item in value.split(|&b| b == b',').map(trim) {
                    any = true;
                    let n = parse_decimal(item).ok_or(HttpError::BadContentLength)?;
                    match length {
                        Some(prev) if prev != n => return Err(HttpError::ConflictingContentLength),
                        _ => length = Some(n),
                    }
                }
                if !any {
                    return Err(HttpError::BadContentLength);
                }
            }
            "transfer-encoding" => {
                has_te = true;
                codings.extend(list_items(value));
            }
            _ => {}
        }
    }
    if has_te {
        if minor_version == 0 {
            return Err(HttpError::TransferEncodingInHttp10);
        }
        if length.is_some() {
            return Err(HttpError::LengthAndTransferEncoding);
        }
        return match codings.as_slice() {
            [only] if only.eq_ignore_ascii_case(b"chunked") => Ok(Framing::Chunked),
            [] => Err(HttpError::BadHead("empty Transfer-Encoding")),
            _ => Err(HttpError::UnsupportedTransferEncoding),
        };
    }
    match length {
        Some(n) if n > limits.max_body_bytes => Err(HttpError::BodyTooLarge {
            max: limits.max_body_bytes,
        }),
        Some(0) | None => Ok(Framing::Empty),
        Some(n) => Ok(Framing::Length(n)),
    }
}

/// `1*DIGIT`, saturating: a length too big for usize is simply "too large" later.
fn parse_decimal(s: &[u8]) -> Option<usize> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(s.iter().fold(0usize, |acc, d| {
        acc.saturating_mul(10).saturating_add(usize::from(d - b'0'))
    }))
}

/// Non-empty, trimmed elements of a comma-separated header list.
fn list_items(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(trim)
        .filter(|s| !s.is_empty())
}

fn trim(s: &[u8]) -> &[u8] {
    let is_ows = |b: &u8| *b == b' ' || *b == b'\t';
    let start = s.iter().position(|b| !is_ows(b)).unwrap_or(s.len());
    let end = s.iter().rposition(|b| !is_ows(b)).map_or(start, |i| i + 1);
    s.get(start..end).unwrap_or_default()
}
