//! Incremental `Transfer-Encoding: chunked` body decoder (RFC 9112 §7.1).
//!
//! A byte-driven state machine: every byte is looked at once, whatever the split of the input,
//! so feeding the same bytes in any pieces yields the same body or the same error. Chunk data is
//! copied in bulk; only the framing is walked byte by byte.

use bytes::{Buf, Bytes, BytesMut};

use super::HttpError;

/// Longest chunk-size line accepted (size, extensions, CRLF). Extensions are ignored, so there
/// is no reason to buffer long ones.
const MAX_SIZE_LINE: usize = 4096;

#[derive(Debug, Clone, Copy)]
enum State {
    /// Reading the hex chunk size; `digits` counts digits seen so far.
    Size {
        value: usize,
        digits: usize,
    },
    /// Whitespace after the size, which must lead to a `;` extension.
    SizeWs {
        value: usize,
    },
    /// Inside chunk extensions, skipped until CR.
    Ext {
        value: usize,
    },
    /// Saw CR at the end of the size line; LF must follow.
    SizeLf {
        value: usize,
    },
    /// Copying chunk data.
    Data {
        remaining: usize,
    },
    DataCr,
    DataLf,
    /// At the start of a trailer line (or of the empty line that ends the body).
    TrailerStart,
    TrailerLine,
    /// Saw CR in the trailer section; `last` means it ended the empty closing line.
    TrailerLf {
        last: bool,
    },
}

/// State of one chunked body being received.
#[derive(Debug)]
pub(super) struct ChunkedBody {
    state: State,
    body: BytesMut,
    /// Body bytes kept in `body`; the rest is counted and dropped (a webhook response is read
    /// to the end to keep the connection, but only its start is worth keeping).
    keep: usize,
    /// De-chunked bytes seen, kept or not: what `max_body` bounds.
    seen: usize,
    max_body: usize,
    /// Bytes of the current size line, bounded by `MAX_SIZE_LINE`.
    line_len: usize,
    /// Trailer bytes still allowed: what the head left of `max_head_bytes`.
    trailer_budget: usize,
    max_head: usize,
}

impl ChunkedBody {
    pub(super) fn new(max_body: usize, max_head: usize, head_len: usize) -> Self {
        ChunkedBody {
            state: State::Size {
                value: 0,
                digits: 0,
            },
            body: BytesMut::new(),
            keep: usize::MAX,
            seen: 0,
            max_body,
            line_len: 0,
            trailer_budget: max_head.saturating_sub(head_len),
            max_head,
        }
    }

    /// Keep only the first `keep` bytes of the body (all of it is still read and bounded).
    pub(super) fn keeping(mut self, keep: usize) -> Self {
        self.keep = keep;
        self
    }

    /// De-chunked body bytes read so far, kept or not.
    pub(super) fn seen(&self) -> usize {
        self.seen
    }

    /// Consume what is available of the body from `buf`. `Ok(Some(body))` once the closing empty
    /// line has been read; `Ok(None)` when everything in `buf` was consumed and more is needed.
    pub(super) fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, HttpError> {
        loop {
            if let State::Data { remaining } = self.state {
                let n = remaining.min(buf.len());
                let kept = n.min(self.keep.saturating_sub(self.body.len()));
                self.body
                    .extend_from_slice(buf.get(..kept).unwrap_or_default());
                buf.advance(n);
                self.seen += n;
                if n < remaining {
                    self.state = State::Data {
                        remaining: remaining - n,
                    };
                    return Ok(None);
                }
                self.state = State::DataCr;
            }
            let Some(&b) = buf.first() else {
                return Ok(None);
            };
            buf.advance(1);
            if self.step(b)? {
                return Ok(Some(std::mem::take(&mut self.body).freeze()));
            }
        }
    }

    /// Advance the framing by one byte; `Ok(true)` when the body is complete.
    fn step(&mut self, b: u8) -> Result<bool, HttpError> {
        if matches!(
            self.state,
            State::Size { .. } | State::SizeWs { .. } | State::Ext { .. } | State::SizeLf { .. }
        ) {
            self.line_len += 1;
            if self.line_len > MAX_SIZE_LINE {
                return Err(HttpError::BadChunkSize);
            }
        }
        if matches!(
            self.state,
            State::TrailerStart | State::TrailerLine | State::TrailerLf { .. }
        ) {
            self.trailer_budget = self
                .trailer_budget
                .checked_sub(1)
                .ok_or(HttpError::HeadTooLarge { max: self.max_head })?;
        }
        self.state = match self.state {
            State::Size { value, digits } => match (hex_value(b), b) {
                (Some(d), _) => State::Size {
                    value: self.grow(value, d)?,
                    digits: digits + 1,
                },
                (None, _) if digits == 0 => return Err(HttpError::BadChunkSize),
                (None, b'\r') => State::SizeLf { value },
                (None, b';') => State::Ext { value },
                (None, b' ' | b'\t') => State::SizeWs { value },
                (None, _) => return Err(HttpError::BadChunkSize),
            },
            State::SizeWs { value } => match b {
                b' ' | b'\t' => State::SizeWs { value },
                b';' => State::Ext { value },
                _ => return Err(HttpError::BadChunkSize),
            },
            State::Ext { value } => match b {
                b'\r' => State::SizeLf { value },
                // Control bytes (a bare LF above all) have no place in an extension.
                b'\t' | b' '..=0x7e | 0x80..=0xff => State::Ext { value },
                _ => return Err(HttpError::BadChunkSize),
            },
            State::SizeLf { value } => match b {
                b'\n' => {
                    self.line_len = 0;
                    if value == 0 {
                        State::TrailerStart
                    } else {
                        // Grow once per chunk, bounded by the limit already checked.
                        let room = self.keep.saturating_sub(self.body.len());
                        self.body.reserve(value.min(64 * 1024).min(room));
                        State::Data { remaining: value }
                    }
                }
                _ => return Err(HttpError::BadChunkSize),
            },
            // decode() drains Data in bulk and only calls step() once it reached zero.
            State::Data { .. } => State::DataCr,
            State::DataCr => match b {
                b'\r' => State::DataLf,
                _ => return Err(HttpError::MissingChunkCrlf),
            },
            State::DataLf => match b {
                b'\n' => State::Size {
                    value: 0,
                    digits: 0,
                },
                _ => return Err(HttpError::MissingChunkCrlf),
            },
            State::TrailerStart => match b {
                b'\r' => State::TrailerLf { last: true },
                b'\n' => return Err(HttpError::BadTrailer),
                _ => State::TrailerLine,
            },
            State::TrailerLine => match b {
                b'\r' => State::TrailerLf { last: false },
                b'\n' => return Err(HttpError::BadTrailer),
                _ => State::TrailerLine,
            },
            State::TrailerLf { last } => match b {
                b'\n' if last => return Ok(true),
                b'\n' => State::TrailerStart,
                _ => return Err(HttpError::BadTrailer),
            },
        };
        Ok(false)
    }

    /// Append a hex digit to a chunk size, refusing as soon as the size (plus the body so far)
    /// exceeds the limit: the digits only make it bigger, so there is no need to wait.
    fn grow(&self, value: usize, digit: u8) -> Result<usize, HttpError> {
        let too_large = HttpError::BodyTooLarge { max: self.max_body };
        let next = value
            .checked_mul(16)
            .and_then(|v| v.checked_add(usize::from(digit)))
            .ok_or_else(|| too_large.clone())?;
        if next > self.max_body.saturating_sub(self.seen) {
            return Err(too_large);
        }
        Ok(next)
    }
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}
