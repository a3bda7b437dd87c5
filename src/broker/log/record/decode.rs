//! Decoding a record: a borrowed view of the bytes, checked in the order that keeps every
//! length bounded before it is used; and the view turned into an owned [`Record`] that shares
//! its read buffer.
use std::sync::Arc;

use bytes::Bytes;

use super::{Record, FORMAT_VERSION, HEADER_LEN, MAX_RECORD_LEN, MIN_BODY_LEN};
use super::{HAS_IDEMPOTENCY_KEY, HAS_KEY, HAS_TYPE, KNOWN_FLAGS};

/// What the bytes at the start of a buffer are.
#[derive(Clone, Copy, Debug)]
pub enum Decoded<'a> {
    /// A whole, valid record of `len` bytes (header included).
    Record { record: RecordView<'a>, len: usize },
    /// The buffer ends inside a record that needs `needed` bytes from its start: read more, or
    /// at the end of a segment, a torn write.
    Incomplete { needed: usize },
    /// These bytes are not a record.
    Corrupt(Corruption),
}

/// Why bytes are not a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Corruption {
    #[error("zero length (zero fill: a preallocated or never written block)")]
    ZeroLength,
    #[error("body length {len} is shorter than any record ({MIN_BODY_LEN})")]
    TooShort { len: usize },
    #[error("record length {len} is over the {MAX_RECORD_LEN} byte limit")]
    TooLarge { len: usize },
    #[error("CRC32C mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    BadCrc { stored: u32, computed: u32 },
    /// The CRC matched, so this was written on purpose by another format version: recovery
    /// must not truncate the log over it (see the module doc).
    #[error("unsupported record format version {0}")]
    UnsupportedVersion(u8),
    #[error("unknown flags {0:#04x}")]
    UnknownFlags(u8),
    #[error("{field} runs past the end of the record body")]
    Overrun { field: &'static str },
    #[error("{extra} bytes after the last field of the record body")]
    TrailingBytes { extra: usize },
    #[error("{field} is not UTF-8")]
    NotUtf8 { field: &'static str },
}

/// A decoded record borrowing the buffer it was read from. Every field has been validated.
#[derive(Clone, Copy, Debug)]
pub struct RecordView<'a> {
    pub offset: u64,
    pub timestamp_ms: i64,
    pub event_type: Option<&'a str>,
    pub idempotency_key: Option<&'a str>,
    pub key: Option<&'a [u8]>,
    pub headers: Headers<'a>,
    pub data: &'a str,
}

/// A record's headers, still in their encoded form (already validated); iterate to read them.
#[derive(Clone, Copy, Debug)]
pub struct Headers<'a> {
    count: u16,
    bytes: &'a [u8],
}

impl<'a> Headers<'a> {
    pub fn len(&self) -> usize {
        self.count.into()
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// `(name, value)` in the order they were written.
    pub fn iter(&self) -> HeaderIter<'a> {
        HeaderIter {
            left: self.count,
            reader: Reader { rest: self.bytes },
        }
    }
}

/// Iterator over [`Headers`].
pub struct HeaderIter<'a> {
    left: u16,
    reader: Reader<'a>,
}

impl<'a> Iterator for HeaderIter<'a> {
    type Item = (&'a str, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        self.left = self.left.checked_sub(1)?;
        // Validated when the record was decoded; an error here cannot happen and ends the list.
        self.reader.header().ok()
    }
}

impl RecordView<'_> {
    /// An owned copy whose data, key and header values are slices of `backing`, the buffer this
    /// view was decoded from (any other buffer works too, but then they are copied).
    pub fn to_record(&self, backing: &Bytes) -> Record {
        Record {
            offset: self.offset,
            timestamp_ms: self.timestamp_ms,
            event_type: self.event_type.map(Arc::from),
            idempotency_key: self.idempotency_key.map(Box::from),
            key: self.key.map(|k| share(backing, k)),
            headers: self
                .headers
                .iter()
                .map(|(n, v)| (n.to_owned(), share(backing, v)))
                .collect(),
            data: share(backing, self.data.as_bytes()),
        }
    }
}

/// `part` as a slice of `backing` when it lies inside it (no copy), else a copy. Like
/// `Bytes::slice_ref`, without its panic for a slice from elsewhere.
fn share(backing: &Bytes, part: &[u8]) -> Bytes {
    let start = (part.as_ptr() as usize).wrapping_sub(backing.as_ptr() as usize);
    match start.checked_add(part.len()) {
        Some(end) if end <= backing.len() && !part.is_empty() => backing.slice(start..end),
        _ => Bytes::copy_from_slice(part),
    }
}

/// Decode the record at the start of `buf`. Never panics and never allocates: every length is
/// bounded by the bytes that are there before it is used.
pub fn decode(buf: &[u8]) -> Decoded<'_> {
    let Some((&[l0, l1, l2, l3, c0, c1, c2, c3], rest)) = buf.split_first_chunk::<HEADER_LEN>()
    else {
        return Decoded::Incomplete { needed: HEADER_LEN };
    };
    // u32 -> usize widens on every target glommio runs on (64-bit Linux).
    let body_len = u32::from_le_bytes([l0, l1, l2, l3]) as usize;
    let len = HEADER_LEN + body_len;
    if body_len == 0 {
        return Decoded::Corrupt(Corruption::ZeroLength);
    }
    if len > MAX_RECORD_LEN {
        return Decoded::Corrupt(Corruption::TooLarge { len });
    }
    if body_len < MIN_BODY_LEN {
        return Decoded::Corrupt(Corruption::TooShort { len: body_len });
    }
    let Some(body) = rest.get(..body_len) else {
        return Decoded::Incomplete { needed: len };
    };
    let stored = u32::from_le_bytes([c0, c1, c2, c3]);
    let computed = crc32c::crc32c(body);
    if stored != computed {
        return Decoded::Corrupt(Corruption::BadCrc { stored, computed });
    }
    match parse_body(body) {
        Ok(record) => Decoded::Record { record, len },
        Err(e) => Decoded::Corrupt(e),
    }
}

/// The fields of a body whose CRC matched. The fields must use up the body exactly: that is
/// what catches a damaged `body_len` (which the CRC does not cover) deterministically — a
/// shorter length cuts the last field, a longer one leaves bytes over.
fn parse_body(body: &[u8]) -> Result<RecordView<'_>, Corruption> {
    let mut r = Reader { rest: body };
    let offset = u64::from_le_bytes(r.array("offset")?);
    let timestamp_ms = i64::from_le_bytes(r.array("timestamp")?);
    let [version] = r.array("version")?;
    if version != FORMAT_VERSION {
        return Err(Corruption::UnsupportedVersion(version));
    }
    let [flags] = r.array("flags")?;
    if flags & !KNOWN_FLAGS != 0 {
        return Err(Corruption::UnknownFlags(flags));
    }
    let event_type = (flags & HAS_TYPE != 0)
        .then(|| r.text16("event type"))
        .transpose()?;
    let idempotency_key = (flags & HAS_IDEMPOTENCY_KEY != 0)
        .then(|| r.text16("idempotency key"))
        .transpose()?;
    let key = (flags & HAS_KEY != 0)
        .then(|| r.bytes32("key"))
        .transpose()?;
    let count = u16::from_le_bytes(r.array("header count")?);
    let header_bytes = r.rest;
    for _ in 0..count {
        r.header()?;
    }
    let headers = Headers {
        count,
        bytes: &header_bytes[..header_bytes.len() - r.rest.len()],
    };
    let data = r.bytes32("data")?;
    let data = std::str::from_utf8(data).map_err(|_| Corruption::NotUtf8 { field: "data" })?;
    if !r.rest.is_empty() {
        return Err(Corruption::TrailingBytes {
            extra: r.rest.len(),
        });
    }
    Ok(RecordView {
        offset,
        timestamp_ms,
        event_type,
        idempotency_key,
        key,
        headers,
        data,
    })
}

/// Reads fields off the front of a body; every read is bounded by what is left.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], Corruption> {
        if n > self.rest.len() {
            return Err(Corruption::Overrun { field });
        }
        let (taken, rest) = self.rest.split_at(n);
        self.rest = rest;
        Ok(taken)
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], Corruption> {
        let (taken, rest) = self
            .rest
            .split_first_chunk::<N>()
            .ok_or(Corruption::Overrun { field })?;
        self.rest = rest;
        Ok(*taken)
    }

    fn text16(&mut self, field: &'static str) -> Result<&'a str, Corruption> {
        let len = u16::from_le_bytes(self.array(field)?);
        let bytes = self.take(len.into(), field)?;
        std::str::from_utf8(bytes).map_err(|_| Corruption::NotUtf8 { field })
    }

    fn bytes32(&mut self, field: &'static str) -> Result<&'a [u8], Corruption> {
        let len = u32::from_le_bytes(self.array(field)?);
        // A length past usize (impossible on 64-bit) is an overrun like any other.
        self.take(usize::try_from(len).unwrap_or(usize::MAX), field)
    }

    fn header(&mut self) -> Result<(&'a str, &'a [u8]), Corruption> {
        Ok((self.text16("header name")?, self.bytes32("header value")?))
    }
}
