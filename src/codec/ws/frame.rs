//! Server-to-client frames (RFC 6455 §5.2). Server frames are never masked, so the bytes of a
//! frame do not depend on who receives it: encode once, share the `Bytes`.
//!
//! Every frame written here is final (FIN set): the gateway never fragments what it sends, and
//! RSV bits are clear because no extension (e.g. permessage-deflate) is negotiated.

use bytes::{BufMut, Bytes, BytesMut};

/// Longest frame header a server writes: 2 bytes plus an 8-byte length (no masking key).
pub const MAX_HEADER_LEN: usize = 10;

/// Control frames carry at most 125 payload bytes (RFC 6455 §5.5).
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// Close reasons get what is left of a control payload after the 2-byte code.
pub const MAX_CLOSE_REASON: usize = MAX_CONTROL_PAYLOAD - 2;

/// The frame types (RFC 6455 §5.2); the value is the 4-bit opcode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum OpCode {
    /// A later fragment of a message.
    Continuation = 0x0,
    /// A UTF-8 text message.
    Text = 0x1,
    /// A binary message.
    Binary = 0x2,
    /// Starts or answers the closing handshake.
    Close = 0x8,
    /// Asks the peer for a pong.
    Ping = 0x9,
    /// Answers a ping (or is an unsolicited heartbeat).
    Pong = 0xA,
}

/// Bytes [`encode_header`] writes for a payload of `payload_len` bytes: 2, 4 or 10.
pub fn header_len(payload_len: usize) -> usize {
    match payload_len {
        0..=125 => 2,
        126..=0xFFFF => 4,
        _ => 10,
    }
}

/// Writes a final, unmasked frame header for `payload_len` bytes, using the shortest length
/// form (7-bit up to 125, 16-bit up to 65535, else 64-bit), as RFC 6455 §5.2 requires.
pub fn encode_header(out: &mut impl BufMut, opcode: OpCode, payload_len: usize) {
    out.put_u8(0x80 | opcode as u8);
    match payload_len {
        // The match arms bound the value, so these casts never truncate.
        0..=125 => out.put_u8(payload_len as u8),
        126..=0xFFFF => {
            out.put_u8(126);
            out.put_u16(payload_len as u16);
        }
        _ => {
            out.put_u8(127);
            out.put_u64(payload_len as u64);
        }
    }
}

/// A whole frame: header plus `payload`, in one allocation.
pub fn frame(opcode: OpCode, payload: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(header_len(payload.len()) + payload.len());
    encode_header(&mut out, opcode, payload.len());
    out.put_slice(payload);
    out.freeze()
}

/// A text frame. `payload` must be UTF-8; the client fails the connection otherwise.
pub fn text_frame(payload: &[u8]) -> Bytes {
    frame(OpCode::Text, payload)
}

/// A close frame with `code` and `reason`, the reason cut on a character boundary to the 123
/// bytes a control frame leaves for it. The codes a server may send are 1000-1003, 1007-1011
/// and 3000-4999 (RFC 6455 §7.4); others are written as given.
pub fn close_frame(code: u16, reason: &str) -> Bytes {
    let reason = truncate_utf8(reason, MAX_CLOSE_REASON);
    let mut out = BytesMut::with_capacity(2 + 2 + reason.len());
    encode_header(&mut out, OpCode::Close, 2 + reason.len());
    out.put_u16(code);
    out.put_slice(reason.as_bytes());
    out.freeze()
}

/// A ping frame; a payload over 125 bytes is cut to 125 (a control frame cannot carry more).
pub fn ping_frame(payload: &[u8]) -> Bytes {
    frame(OpCode::Ping, cap_control(payload))
}

/// A pong frame; a payload over 125 bytes is cut to 125 (a control frame cannot carry more).
/// Pongs answering client pings come from `ClientFrames`; this one is for heartbeats.
pub fn pong_frame(payload: &[u8]) -> Bytes {
    frame(OpCode::Pong, cap_control(payload))
}

fn cap_control(payload: &[u8]) -> &[u8] {
    &payload[..payload.len().min(MAX_CONTROL_PAYLOAD)]
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
pub(crate) fn truncate_utf8(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    // A char is at most 4 bytes, so this steps back at most 3 times.
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests;
