//! The JSON object each event reaches a WebSocket client in:
//! `{"topic":"…","id":"…","type":"…"|null,"data":"…"}`, as one text frame.
//!
//! The object is written head first (`{"topic":…,"id":…`) and tail last (`,"type":…}`), so a
//! subscriber whose id differs from the event's own (a multi-partition cursor) gets its own
//! small head ([`envelope_head`]) in front of a tail shared by all ([`envelope_tail`]): two
//! buffers, one frame, the payload escaped once.
//!
//! Strings are escaped as JSON requires (RFC 8259 §7): `"` and `\` with a backslash, `\n`,
//! `\r`, `\t` by name, other control characters as `\u00XX`; everything else, all non-ASCII
//! UTF-8 included, passes through unchanged. `data` is text checked upstream; should it not be
//! UTF-8 anyway, invalid sequences become U+FFFD so the frame stays valid text.

use bytes::{BufMut, Bytes, BytesMut};

use super::frame::{encode_header, header_len, OpCode, MAX_HEADER_LEN};

const OPEN_TOPIC: &[u8] = b"{\"topic\":\"";
const ID: &[u8] = b"\",\"id\":\"";
const END_ID: &[u8] = b"\"";
const TYPE: &[u8] = b",\"type\":\"";
const TYPE_NULL: &[u8] = b",\"type\":null";
const DATA_AFTER_TYPE: &[u8] = b"\",\"data\":\"";
const DATA_AFTER_NULL: &[u8] = b",\"data\":\"";
const CLOSE: &[u8] = b"\"}";

/// Per byte: 0 = copied as is, `u` = `\u00XX`, any other = a backslash and that byte.
static ESCAPE: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = b'u';
        b += 1;
    }
    table[b'\n' as usize] = b'n';
    table[b'\r' as usize] = b'r';
    table[b'\t' as usize] = b't';
    table[b'"' as usize] = b'"';
    table[b'\\' as usize] = b'\\';
    table
};

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends the whole envelope (payload only, no frame header) for one event.
pub fn event_envelope(
    out: &mut Vec<u8>,
    topic: &str,
    id: &str,
    event_type: Option<&str>,
    data: &[u8],
) {
    let data = String::from_utf8_lossy(data);
    out.reserve(estimate(topic, id, event_type, &data));
    write_head(out, topic, id);
    write_tail(out, event_type, &data);
}

/// The envelope for one event as a complete text frame, in one allocation: the payload is
/// written after room for the longest header, and the header then fills the end of that room
/// (its length depends on the payload's, known only once escaping is done).
pub fn event_frame(topic: &str, id: &str, event_type: Option<&str>, data: &[u8]) -> Bytes {
    let data = String::from_utf8_lossy(data);
    let mut buf = Vec::with_capacity(MAX_HEADER_LEN + estimate(topic, id, event_type, &data));
    buf.resize(MAX_HEADER_LEN, 0);
    write_head(&mut buf, topic, id);
    write_tail(&mut buf, event_type, &data);
    let payload_len = buf.len() - MAX_HEADER_LEN;
    let start = MAX_HEADER_LEN - header_len(payload_len);
    let mut slot = &mut buf[start..MAX_HEADER_LEN];
    encode_header(&mut slot, OpCode::Text, payload_len);
    Bytes::from(buf).slice(start..)
}

/// The shared part of the envelope, from `,"type"` to the closing brace.
pub fn envelope_tail(event_type: Option<&str>, data: &[u8]) -> Bytes {
    let data = String::from_utf8_lossy(data);
    let mut out = Vec::with_capacity(estimate("", "", event_type, &data));
    write_tail(&mut out, event_type, &data);
    Bytes::from(out)
}

/// Appends a text frame header for the whole envelope (this head plus `tail_len` bytes of
/// [`envelope_tail`]) and then `{"topic":"…","id":"…"`. Sending these bytes followed by the tail
/// is exactly one text frame.
pub fn envelope_head(out: &mut BytesMut, topic: &str, id: &str, tail_len: usize) {
    let head_len = OPEN_TOPIC.len()
        + escaped_len(topic.as_bytes())
        + ID.len()
        + escaped_len(id.as_bytes())
        + END_ID.len();
    let payload_len = head_len + tail_len;
    out.reserve(header_len(payload_len) + head_len);
    encode_header(out, OpCode::Text, payload_len);
    write_head(out, topic, id);
}

/// Room for the envelope when nothing needs escaping, plus an eighth of `data` for escapes.
fn estimate(topic: &str, id: &str, event_type: Option<&str>, data: &str) -> usize {
    64 + topic.len() + id.len() + event_type.map_or(0, str::len) + data.len() + data.len() / 8
}

fn write_head(out: &mut impl BufMut, topic: &str, id: &str) {
    out.put_slice(OPEN_TOPIC);
    escape_into(out, topic.as_bytes());
    out.put_slice(ID);
    escape_into(out, id.as_bytes());
    out.put_slice(END_ID);
}

fn write_tail(out: &mut impl BufMut, event_type: Option<&str>, data: &str) {
    match event_type {
        Some(t) => {
            out.put_slice(TYPE);
            escape_into(out, t.as_bytes());
            out.put_slice(DATA_AFTER_TYPE);
        }
        None => {
            out.put_slice(TYPE_NULL);
            out.put_slice(DATA_AFTER_NULL);
        }
    }
    escape_into(out, data.as_bytes());
    out.put_slice(CLOSE);
}

/// Appends `s` as the inside of a JSON string, copying runs that need no escape in one go.
fn escape_into(out: &mut impl BufMut, s: &[u8]) {
    let mut start = 0;
    for (i, &b) in s.iter().enumerate() {
        let esc = ESCAPE[usize::from(b)];
        if esc == 0 {
            continue;
        }
        out.put_slice(&s[start..i]);
        if esc == b'u' {
            let hex = [HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xF)]];
            out.put_slice(&[b'\\', b'u', b'0', b'0', hex[0], hex[1]]);
        } else {
            out.put_slice(&[b'\\', esc]);
        }
        start = i + 1;
    }
    out.put_slice(&s[start..]);
}

/// Bytes [`escape_into`] writes for `s`.
fn escaped_len(s: &[u8]) -> usize {
    s.iter()
        .map(|&b| match ESCAPE[usize::from(b)] {
            0 => 1,
            b'u' => 6,
            _ => 2,
        })
        .sum()
}

#[cfg(test)]
mod tests;
