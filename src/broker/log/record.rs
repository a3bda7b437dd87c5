//! One log record: its byte layout, the encoder, and the owned form; decoding is in `decode`.
//!
//! The layout is in the module doc (`super`); the constants here are its numbers. Decoding is
//! borrowed ([`RecordView`]): recovery validates every record of a segment and must not allocate
//! per record to do it. A reader that keeps a record turns the view into an owned [`Record`]
//! whose data, key and header values are slices of its read buffer ([`RecordView::to_record`]),
//! so the payload is never copied.
use std::sync::Arc;

use bytes::Bytes;

use crate::broker::PublishItem;

mod decode;
pub use decode::{decode, Corruption, Decoded, HeaderIter, Headers, RecordView};

/// `u32 body_len` + `u32 crc32c`.
pub const HEADER_LEN: usize = 8;
/// The body layout this code writes and reads.
pub const FORMAT_VERSION: u8 = 1;
/// Largest whole record (header included). Checked before anything else on decode, so a
/// damaged length can never ask for more than this.
pub const MAX_RECORD_LEN: usize = 64 << 20;
/// Body bytes every record has: offset, timestamp, version, flags, header count, data length.
/// A shorter body (zero fill reads as length 0) cannot be a record.
pub const MIN_BODY_LEN: usize = 8 + 8 + 1 + 1 + 2 + 4;

/// Flags byte: which optional fields follow, so `None` and an empty value stay distinct.
const HAS_TYPE: u8 = 1;
const HAS_IDEMPOTENCY_KEY: u8 = 1 << 1;
const HAS_KEY: u8 = 1 << 2;
const KNOWN_FLAGS: u8 = HAS_TYPE | HAS_IDEMPOTENCY_KEY | HAS_KEY;

/// A record to encode, borrowing everything: built from a `PublishItem` without a copy.
#[derive(Clone, Copy, Debug)]
pub struct RecordRef<'a> {
    pub offset: u64,
    pub timestamp_ms: i64,
    pub event_type: Option<&'a str>,
    pub idempotency_key: Option<&'a str>,
    pub key: Option<&'a [u8]>,
    /// The type a `PublishItem` holds its headers in, so encoding one needs no temporary.
    pub headers: &'a [(String, Bytes)],
    /// Must be UTF-8 (events are text); [`encode`] checks, so nothing unreadable is written.
    pub data: &'a [u8],
}

impl<'a> RecordRef<'a> {
    /// The record a publish becomes once it has its offset and arrival time.
    pub fn from_publish(offset: u64, timestamp_ms: i64, item: &'a PublishItem) -> Self {
        Self {
            offset,
            timestamp_ms,
            event_type: item.event_type.as_deref(),
            idempotency_key: item.idempotency_key.as_deref(),
            key: item.key.as_deref(),
            headers: &item.headers,
            data: &item.data,
        }
    }
}

/// Why a record cannot be written. Nothing is appended when encoding fails.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("{field} is {len} bytes; the log allows at most {max}")]
    FieldTooLong {
        field: &'static str,
        len: usize,
        max: usize,
    },
    #[error("record would be {len} bytes; the log allows at most {MAX_RECORD_LEN}")]
    TooLarge { len: usize },
    #[error("event data is not UTF-8")]
    DataNotUtf8,
}

/// Bytes [`encode`] appends for `rec`.
pub fn encoded_len(rec: &RecordRef<'_>) -> usize {
    let mut len = HEADER_LEN + MIN_BODY_LEN + rec.data.len();
    if let Some(t) = rec.event_type {
        len += 2 + t.len();
    }
    if let Some(k) = rec.idempotency_key {
        len += 2 + k.len();
    }
    if let Some(k) = rec.key {
        len += 4 + k.len();
    }
    for (name, value) in rec.headers {
        len += 2 + name.len() + 4 + value.len();
    }
    len
}

/// Append `rec` to `out` as one record; returns its length. On error `out` is as it was.
pub fn encode(rec: &RecordRef<'_>, out: &mut Vec<u8>) -> Result<usize, EncodeError> {
    let len = encoded_len(rec);
    // Before touching `out`: an oversized record must not make us reserve its size.
    if len > MAX_RECORD_LEN {
        return Err(EncodeError::TooLarge { len });
    }
    // Decode refuses non-UTF-8 data, so writing it would acknowledge an unreadable event.
    if std::str::from_utf8(rec.data).is_err() {
        return Err(EncodeError::DataNotUtf8);
    }
    let start = out.len();
    out.reserve(len);
    if let Err(e) = write_body(rec, out) {
        out.truncate(start);
        return Err(e);
    }
    let (head, body) = out[start..].split_at_mut(HEADER_LEN);
    // `len` <= MAX_RECORD_LEN, so the body length fits a u32.
    let body_len = u32::try_from(body.len()).map_err(|_| EncodeError::TooLarge { len })?;
    head[..4].copy_from_slice(&body_len.to_le_bytes());
    head[4..].copy_from_slice(&crc32c::crc32c(body).to_le_bytes());
    Ok(len)
}

/// The header placeholder and the body; field lengths that do not fit their width are errors.
fn write_body(rec: &RecordRef<'_>, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    out.extend_from_slice(&[0; HEADER_LEN]); // filled in once the body's CRC is known
    out.extend_from_slice(&rec.offset.to_le_bytes());
    out.extend_from_slice(&rec.timestamp_ms.to_le_bytes());
    out.push(FORMAT_VERSION);
    let mut flags = 0;
    if rec.event_type.is_some() {
        flags |= HAS_TYPE;
    }
    if rec.idempotency_key.is_some() {
        flags |= HAS_IDEMPOTENCY_KEY;
    }
    if rec.key.is_some() {
        flags |= HAS_KEY;
    }
    out.push(flags);
    if let Some(t) = rec.event_type {
        put16(out, "event type", t.as_bytes())?;
    }
    if let Some(k) = rec.idempotency_key {
        put16(out, "idempotency key", k.as_bytes())?;
    }
    if let Some(k) = rec.key {
        put32(out, "key", k)?;
    }
    let count = u16::try_from(rec.headers.len()).map_err(|_| EncodeError::FieldTooLong {
        field: "header count",
        len: rec.headers.len(),
        max: u16::MAX.into(),
    })?;
    out.extend_from_slice(&count.to_le_bytes());
    for (name, value) in rec.headers {
        put16(out, "header name", name.as_bytes())?;
        put32(out, "header value", value)?;
    }
    put32(out, "data", rec.data)
}

fn put16(out: &mut Vec<u8>, field: &'static str, bytes: &[u8]) -> Result<(), EncodeError> {
    let len = u16::try_from(bytes.len()).map_err(|_| EncodeError::FieldTooLong {
        field,
        len: bytes.len(),
        max: u16::MAX.into(),
    })?;
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(bytes);
    Ok(())
}

fn put32(out: &mut Vec<u8>, field: &'static str, bytes: &[u8]) -> Result<(), EncodeError> {
    // Only reachable past MAX_RECORD_LEN, which `encode` refuses first; kept so no length is
    // ever silently cut.
    let len = u32::try_from(bytes.len()).map_err(|_| EncodeError::FieldTooLong {
        field,
        len: bytes.len(),
        max: MAX_RECORD_LEN,
    })?;
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(bytes);
    Ok(())
}

/// An owned record: what a reader keeps. Text fields in the types a `PublishItem` and
/// `EventMeta` use; bytes fields share the read buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub offset: u64,
    pub timestamp_ms: i64,
    pub event_type: Option<Arc<str>>,
    pub idempotency_key: Option<Box<str>>,
    pub key: Option<Bytes>,
    pub headers: Vec<(String, Bytes)>,
    /// Valid UTF-8.
    pub data: Bytes,
}

impl Record {
    /// This record as something to encode (a round trip gives back the same bytes).
    pub fn borrowed(&self) -> RecordRef<'_> {
        RecordRef {
            offset: self.offset,
            timestamp_ms: self.timestamp_ms,
            event_type: self.event_type.as_deref(),
            idempotency_key: self.idempotency_key.as_deref(),
            key: self.key.as_deref(),
            headers: &self.headers,
            data: &self.data,
        }
    }
}

#[cfg(test)]
mod tests;
