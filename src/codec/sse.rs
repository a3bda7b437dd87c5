//! Server-Sent Events encoder: turns one event into its `text/event-stream` frame.
//!
//! A frame is written as `id:` (if any), `event:` (if any), `retry:` (if any), one `data:` line
//! per payload line, then a blank line. The id line always comes first so that a caller can
//! encode the rest of a frame once and prefix it with a per-subscriber id line.
//!
//! SSE cannot carry a carriage return inside data: CR, LF and CRLF all end a line on the wire,
//! and the client joins `data:` lines with LF. A payload therefore reaches the client with every
//! line break (CR, LF or CRLF) turned into a single LF; every other byte arrives unchanged.

use bytes::{BufMut, BytesMut};
use memchr::{memchr2, memchr2_iter, memchr3};

/// One event to frame. All fields borrow from the caller so encoding never copies twice.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SseEvent<'a> {
    /// Event id; the client echoes the last one in `Last-Event-ID` when it reconnects.
    pub id: Option<&'a str>,
    /// Event type; `None` and `Some("")` both reach the client as `"message"`.
    pub event: Option<&'a str>,
    /// Payload; must be UTF-8 (the stream is text).
    pub data: &'a [u8],
    /// Reconnection delay to announce with this event.
    pub retry_ms: Option<u32>,
}

/// Why an event cannot be framed.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    /// A CR or LF in the id would end the `id:` line early and inject fields.
    #[error("event id contains a line break (CR or LF) at byte {at}; an SSE field is one line")]
    IdLineBreak {
        /// Byte offset of the first offending byte.
        at: usize,
    },
    /// Clients ignore an `id:` field containing NUL, so the id would silently be lost.
    #[error("event id contains a NUL byte at byte {at}; clients ignore such ids")]
    IdNul {
        /// Byte offset of the first offending byte.
        at: usize,
    },
    /// A CR or LF in the event type would end the `event:` line early and inject fields.
    #[error("event type contains a line break (CR or LF) at byte {at}; an SSE field is one line")]
    EventLineBreak {
        /// Byte offset of the first offending byte.
        at: usize,
    },
    /// The SSE stream is UTF-8 text; other bytes would reach the client as U+FFFD.
    #[error("event data is not valid UTF-8 (first invalid byte at {at}); SSE carries UTF-8 text")]
    DataNotUtf8 {
        /// Byte offset where the valid UTF-8 prefix ends.
        at: usize,
    },
}

/// Checks that `ev` can be framed without changing its meaning.
pub fn validate(ev: &SseEvent) -> Result<(), FrameError> {
    if let Some(id) = ev.id {
        if let Some(at) = memchr3(b'\r', b'\n', 0, id.as_bytes()) {
            // The first hit decides which error: report the earliest problem.
            return Err(if id.as_bytes().get(at) == Some(&0) {
                FrameError::IdNul { at }
            } else {
                FrameError::IdLineBreak { at }
            });
        }
    }
    if let Some(event) = ev.event {
        if let Some(at) = memchr2(b'\r', b'\n', event.as_bytes()) {
            return Err(FrameError::EventLineBreak { at });
        }
    }
    std::str::from_utf8(ev.data).map_err(|e| FrameError::DataNotUtf8 {
        at: e.valid_up_to(),
    })?;
    Ok(())
}

/// An upper bound on the bytes [`encode_event`] appends for `ev`, used to reserve once.
pub fn encoded_len_hint(ev: &SseEvent) -> usize {
    let id = ev.id.map_or(0, |id| b"id: \n".len() + id.len());
    let event = ev.event.map_or(0, |t| b"event: \n".len() + t.len());
    // u32::MAX has 10 digits.
    let retry = ev.retry_ms.map_or(0, |_| b"retry: \n".len() + 10);
    // Each break byte may start a new line (a CRLF pair is counted twice: still an upper bound).
    let lines = 1 + memchr2_iter(b'\r', b'\n', ev.data).count();
    let data = ev.data.len() + lines * b"data: \n".len();
    id + event + retry + data + 1
}

/// Appends one complete event frame to `out`.
///
/// Returns the byte length of the leading `id: ...\n` line (0 when there is no id), so that a
/// caller can replace that line while sharing the rest of the frame. Nothing is written when
/// the event is invalid (see [`validate`]).
///
/// `event: Some("")` writes no `event:` line: the client would see `"message"` either way.
/// An empty payload still writes one `data: ` line, because the client drops an event whose
/// data buffer is empty; one line makes it arrive with data `""`.
pub fn encode_event(out: &mut BytesMut, ev: &SseEvent) -> Result<usize, FrameError> {
    validate(ev)?;
    out.reserve(encoded_len_hint(ev));
    let id_len = match ev.id {
        Some(id) => {
            put_line(out, b"id: ", id.as_bytes());
            b"id: \n".len() + id.len()
        }
        None => 0,
    };
    if let Some(event) = ev.event.filter(|t| !t.is_empty()) {
        put_line(out, b"event: ", event.as_bytes());
    }
    if let Some(ms) = ev.retry_ms {
        put_line(out, b"retry: ", itoa::Buffer::new().format(ms).as_bytes());
    }
    put_lines(out, b"data: ", ev.data);
    out.put_u8(b'\n');
    Ok(id_len)
}

/// Appends a comment frame (`: text\n\n`), e.g. a heartbeat. Clients never surface comments.
///
/// A line break in `text` would end the comment and make the rest a field, so each line of
/// `text` becomes its own comment line.
pub fn encode_comment(out: &mut BytesMut, text: &str) {
    let lines = 1 + memchr2_iter(b'\r', b'\n', text.as_bytes()).count();
    out.reserve(text.len() + lines * b": \n".len() + 1);
    put_lines(out, b": ", text.as_bytes());
    out.put_u8(b'\n');
}

/// Appends a frame that only sets the client's reconnection delay (`retry: N\n\n`).
pub fn encode_retry(out: &mut BytesMut, ms: u32) {
    out.reserve(b"retry: \n\n".len() + 10);
    put_line(out, b"retry: ", itoa::Buffer::new().format(ms).as_bytes());
    out.put_u8(b'\n');
}

fn put_line(out: &mut BytesMut, prefix: &[u8], value: &[u8]) {
    out.put_slice(prefix);
    out.put_slice(value);
    out.put_u8(b'\n');
}

/// Writes `prefix + line + LF` for each line of `text`, where CRLF, CR and LF each end a line.
/// A trailing break yields a final empty line, and empty text yields one empty line.
fn put_lines(out: &mut BytesMut, prefix: &[u8], text: &[u8]) {
    let mut rest = text;
    while let Some(at) = memchr2(b'\r', b'\n', rest) {
        let (line, tail) = rest.split_at(at);
        put_line(out, prefix, line);
        let break_len = if tail.starts_with(b"\r\n") { 2 } else { 1 };
        rest = tail.get(break_len..).unwrap_or_default();
    }
    put_line(out, prefix, rest);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(ev: &SseEvent) -> (String, usize) {
        let mut out = BytesMut::new();
        let id_len = encode_event(&mut out, ev).unwrap();
        (String::from_utf8(out.to_vec()).unwrap(), id_len)
    }

    #[test]
    fn full_frame_has_fields_in_order() {
        let ev = SseEvent {
            id: Some("42"),
            event: Some("price"),
            data: b"a\nb",
            retry_ms: Some(1500),
        };
        let (text, id_len) = frame(&ev);
        assert_eq!(
            text,
            "id: 42\nevent: price\nretry: 1500\ndata: a\ndata: b\n\n"
        );
        assert_eq!(id_len, "id: 42\n".len());
    }

    #[test]
    fn empty_payload_writes_one_data_line() {
        let (text, id_len) = frame(&SseEvent::default());
        assert_eq!(text, "data: \n\n");
        assert_eq!(id_len, 0);
    }

    #[test]
    fn every_break_kind_is_one_line_break() {
        let ev = SseEvent {
            data: b"a\r\nb\rc\nd\n\r",
            ..SseEvent::default()
        };
        let (text, _) = frame(&ev);
        assert_eq!(
            text,
            "data: a\ndata: b\ndata: c\ndata: d\ndata: \ndata: \n\n"
        );
    }

    #[test]
    fn empty_event_type_writes_no_event_line() {
        let ev = SseEvent {
            id: Some(""),
            event: Some(""),
            data: b"x",
            retry_ms: None,
        };
        let (text, id_len) = frame(&ev);
        assert_eq!(text, "id: \ndata: x\n\n");
        assert_eq!(id_len, "id: \n".len());
    }

    #[test]
    fn validate_reports_field_and_offset() {
        let bad_id = SseEvent {
            id: Some("ab\ncd"),
            ..SseEvent::default()
        };
        assert_eq!(validate(&bad_id), Err(FrameError::IdLineBreak { at: 2 }));
        let nul_id = SseEvent {
            id: Some("a\0\r"),
            ..SseEvent::default()
        };
        assert_eq!(validate(&nul_id), Err(FrameError::IdNul { at: 1 }));
        let bad_type = SseEvent {
            event: Some("x\r"),
            ..SseEvent::default()
        };
        assert_eq!(
            validate(&bad_type),
            Err(FrameError::EventLineBreak { at: 1 })
        );
        let bad_data = SseEvent {
            data: b"ok\xff",
            ..SseEvent::default()
        };
        assert_eq!(validate(&bad_data), Err(FrameError::DataNotUtf8 { at: 2 }));
        let msg = FrameError::IdNul { at: 1 }.to_string();
        assert!(msg.contains("id") && msg.contains("NUL"), "{msg}");
    }

    #[test]
    fn invalid_event_writes_nothing() {
        let mut out = BytesMut::from(&b"keep"[..]);
        let ev = SseEvent {
            event: Some("a\nb"),
            ..SseEvent::default()
        };
        assert!(encode_event(&mut out, &ev).is_err());
        assert_eq!(&out[..], b"keep");
    }

    #[test]
    fn hint_is_an_upper_bound() {
        let ev = SseEvent {
            id: Some("1-2"),
            event: Some("t"),
            data: b"\r\n\r\n\n\rx\r",
            retry_ms: Some(u32::MAX),
        };
        let mut out = BytesMut::new();
        encode_event(&mut out, &ev).unwrap();
        assert!(out.len() <= encoded_len_hint(&ev));
    }

    #[test]
    fn comment_lines_are_split() {
        let mut out = BytesMut::new();
        encode_comment(&mut out, "ping");
        encode_comment(&mut out, "a\r\ndata: injected");
        encode_comment(&mut out, "");
        assert_eq!(&out[..], &b": ping\n\n: a\n: data: injected\n\n: \n\n"[..]);
    }

    #[test]
    fn retry_frame() {
        let mut out = BytesMut::new();
        encode_retry(&mut out, 3000);
        assert_eq!(&out[..], b"retry: 3000\n\n");
    }
}
