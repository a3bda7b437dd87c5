//! Incremental `text/event-stream` parser following the WHATWG "event stream interpretation"
//! algorithm; used by tests, the load tool and fuzzing to read what a browser would read.
//!
//! Spec: <https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation>
//!
//! Bytes are split into lines before they are decoded: CR and LF never occur inside a UTF-8
//! sequence and they end any incomplete one, so decoding each complete line (lossily, with
//! U+FFFD) gives the same text as decoding the whole stream first. An incomplete line is kept
//! as bytes until its line break arrives, so a chunk may end anywhere.

use memchr::{memchr, memchr2};

const BOM: [u8; 3] = [0xEF, 0xBB, 0xBF];

/// One dispatched event, as a client's `MessageEvent` would show it.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ParsedEvent {
    /// The `event` field, or `"message"` when there was none (or it was empty).
    pub event_type: String,
    /// The `data` lines joined with LF.
    pub data: String,
    /// The last event id seen on the stream so far (it persists across events, per spec).
    pub last_event_id: String,
    /// Set if a valid `retry` field was seen while this event was being built.
    pub retry_ms: Option<u64>,
}

/// Where the stream is in recognising an optional leading byte order mark.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Bom {
    /// This many leading bytes of the stream matched the BOM so far (all of them, so far).
    Matching(usize),
    /// Decided: the stream's first bytes are past.
    Done,
}

impl Default for Bom {
    fn default() -> Self {
        Bom::Matching(0)
    }
}

/// Incremental SSE parser. Feed it chunks as they arrive; it returns the events they complete.
#[derive(Debug, Default)]
pub struct SseParser {
    bom: Bom,
    /// Bytes of the current line whose line break has not arrived yet.
    line: Vec<u8>,
    /// The previous chunk ended with CR: an LF starting the next chunk completes that break.
    skip_lf: bool,
    data: Vec<u8>,
    event_type: Vec<u8>,
    /// The spec's "last event ID buffer" when it differs from `last_event_id` (set by an `id`
    /// field, copied over at the next blank line).
    pending_id: Option<String>,
    /// The spec's "last event ID string".
    last_event_id: String,
    /// A valid `retry` field seen since the last blank line.
    pending_retry: Option<u64>,
    retry_ms: Option<u64>,
    comments_seen: u64,
    last_comment: Option<String>,
}

impl SseParser {
    /// A parser at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds any chunk (it may split a line, a CRLF pair or a UTF-8 sequence anywhere) and
    /// returns the events this chunk dispatched.
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<ParsedEvent> {
        let mut out = Vec::new();
        self.feed_into(chunk, &mut out);
        out
    }

    /// Like [`SseParser::feed`], appending to `out` so a caller can reuse one vector.
    pub fn feed_into(&mut self, chunk: &[u8], out: &mut Vec<ParsedEvent>) {
        if let Some(rest) = self.strip_bom(chunk, out) {
            self.scan(rest, out);
        }
    }

    /// How many comment lines were seen (heartbeats are comments).
    pub fn comments_seen(&self) -> u64 {
        self.comments_seen
    }

    /// The text of the last comment line, without the colon and one leading space.
    pub fn last_comment(&self) -> Option<&str> {
        self.last_comment.as_deref()
    }

    /// The current reconnection time: the last valid `retry` field, if any.
    pub fn retry_ms(&self) -> Option<u64> {
        self.retry_ms
    }

    /// The last event id string (updated at each blank line, as the spec says).
    pub fn last_event_id(&self) -> &str {
        &self.last_event_id
    }

    /// Consumes a leading BOM, which may itself arrive split across chunks. Returns the part
    /// of `chunk` left to scan, or `None` while the stream's first bytes could still be a BOM.
    fn strip_bom<'c>(&mut self, chunk: &'c [u8], out: &mut Vec<ParsedEvent>) -> Option<&'c [u8]> {
        let Bom::Matching(mut matched) = self.bom else {
            return Some(chunk);
        };
        let mut rest = chunk;
        while let Some((&byte, tail)) = rest.split_first() {
            if BOM.get(matched) != Some(&byte) {
                // Not a BOM after all: the bytes held back so far are ordinary stream bytes.
                self.bom = Bom::Done;
                self.scan(BOM.get(..matched).unwrap_or_default(), out);
                return Some(rest);
            }
            matched += 1;
            rest = tail;
            if matched == BOM.len() {
                self.bom = Bom::Done;
                return Some(rest);
            }
        }
        self.bom = Bom::Matching(matched);
        None
    }

    /// Splits bytes into lines (CRLF, LF or CR) and interprets each complete line.
    fn scan(&mut self, chunk: &[u8], out: &mut Vec<ParsedEvent>) {
        let mut rest = chunk;
        if self.skip_lf {
            let Some((&first, tail)) = rest.split_first() else {
                return;
            };
            self.skip_lf = false;
            if first == b'\n' {
                rest = tail;
            }
        }
        while let Some(at) = memchr2(b'\r', b'\n', rest) {
            let (head, tail) = rest.split_at(at);
            let is_cr = tail.first() == Some(&b'\r');
            let after = tail.get(1..).unwrap_or_default();
            rest = match (is_cr, after.first()) {
                (true, Some(b'\n')) => after.get(1..).unwrap_or_default(),
                (true, None) => {
                    // The LF of a CRLF pair may be the next chunk's first byte.
                    self.skip_lf = true;
                    after
                }
                _ => after,
            };
            if self.line.is_empty() {
                self.process_line(head, out);
            } else {
                let mut line = std::mem::take(&mut self.line);
                line.extend_from_slice(head);
                self.process_line(&line, out);
                line.clear();
                self.line = line; // keep the allocation for the next split line
            }
        }
        self.line.extend_from_slice(rest);
    }

    fn process_line(&mut self, line: &[u8], out: &mut Vec<ParsedEvent>) {
        if line.is_empty() {
            self.dispatch(out);
            return;
        }
        let (name, value) = match memchr(b':', line) {
            Some(0) => {
                self.comment(line.get(1..).unwrap_or_default());
                return;
            }
            Some(colon) => {
                let value = line.get(colon + 1..).unwrap_or_default();
                let name = line.get(..colon).unwrap_or_default();
                (name, value.strip_prefix(b" ").unwrap_or(value))
            }
            // A line without a colon is a field name with an empty value.
            None => (line, &[][..]),
        };
        match name {
            b"event" => {
                self.event_type.clear();
                self.event_type.extend_from_slice(value);
            }
            b"data" => {
                // One reservation for value + LF: extend then push would grow the buffer twice.
                self.data.reserve(value.len() + 1);
                self.data.extend_from_slice(value);
                self.data.push(b'\n');
            }
            // An id containing NUL is ignored.
            b"id" if memchr(0, value).is_none() => {
                self.pending_id = Some(String::from_utf8_lossy(value).into_owned());
            }
            // A retry value that is not all ASCII digits is ignored.
            b"retry" if !value.is_empty() && value.iter().all(u8::is_ascii_digit) => {
                // Saturate rather than reject: the value is "an integer", however long.
                let ms = value.iter().fold(0u64, |acc, d| {
                    acc.saturating_mul(10)
                        .saturating_add(u64::from(d.wrapping_sub(b'0')))
                });
                self.retry_ms = Some(ms);
                self.pending_retry = Some(ms);
            }
            _ => {} // unknown fields, and the ignored values above
        }
    }

    fn comment(&mut self, text: &[u8]) {
        self.comments_seen += 1;
        let text = text.strip_prefix(b" ").unwrap_or(text);
        let slot = self.last_comment.get_or_insert_with(String::new);
        slot.clear();
        slot.push_str(&String::from_utf8_lossy(text));
    }

    /// A blank line: the spec's "dispatch the event" steps.
    fn dispatch(&mut self, out: &mut Vec<ParsedEvent>) {
        if let Some(id) = self.pending_id.take() {
            self.last_event_id = id;
        }
        let retry_ms = self.pending_retry.take();
        if self.data.is_empty() {
            self.event_type.clear();
            return;
        }
        if self.data.last() == Some(&b'\n') {
            self.data.pop();
        }
        let event_type = if self.event_type.is_empty() {
            String::from("message")
        } else {
            decode(std::mem::take(&mut self.event_type))
        };
        out.push(ParsedEvent {
            event_type,
            data: decode(std::mem::take(&mut self.data)),
            last_event_id: self.last_event_id.clone(),
            retry_ms,
        });
    }
}

/// UTF-8 decode with U+FFFD for invalid sequences, without copying when the bytes are valid.
fn decode(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(stream: &[u8]) -> (SseParser, Vec<ParsedEvent>) {
        let mut p = SseParser::new();
        let events = p.feed(stream);
        (p, events)
    }

    fn msg(data: &str, id: &str) -> ParsedEvent {
        ParsedEvent {
            event_type: "message".into(),
            data: data.into(),
            last_event_id: id.into(),
            retry_ms: None,
        }
    }

    #[test]
    fn simple_events_and_fields() {
        let (_, ev) = parse_all(b"event: tick\ndata: a\ndata:b\n\ndata\n\n");
        assert_eq!(ev.len(), 2);
        assert_eq!(ev[0].event_type, "tick");
        assert_eq!(ev[0].data, "a\nb");
        // "data" alone is the data field with an empty value: dispatched as "".
        assert_eq!(ev[1], msg("", ""));
    }

    #[test]
    fn only_one_leading_space_is_removed() {
        let (_, ev) = parse_all(b"data:  two\n\n");
        assert_eq!(ev[0].data, " two");
    }

    #[test]
    fn leading_bom_is_skipped_once() {
        let (_, ev) = parse_all(b"\xEF\xBB\xBFdata: x\n\n");
        assert_eq!(ev, vec![msg("x", "")]);
        // A second BOM is part of the first line, which is then an unknown field.
        let (_, ev) = parse_all(b"\xEF\xBB\xBF\xEF\xBB\xBFdata: x\n\ndata: y\n\n");
        assert_eq!(ev, vec![msg("y", "")]);
    }

    #[test]
    fn bom_split_across_chunks() {
        let mut p = SseParser::new();
        assert!(p.feed(b"\xEF").is_empty());
        assert!(p.feed(b"\xBB").is_empty());
        assert_eq!(p.feed(b"\xBFdata: x\n\n"), vec![msg("x", "")]);
    }

    #[test]
    fn partial_bom_is_ordinary_bytes() {
        let mut p = SseParser::new();
        assert!(p.feed(b"\xEF\xBB").is_empty());
        // The held-back bytes start the first line, making it an unknown field.
        assert!(p.feed(b"data: x\n\n").is_empty());
        assert_eq!(p.feed(b"data: y\n\n"), vec![msg("y", "")]);
    }

    #[test]
    fn all_line_endings() {
        let (_, ev) = parse_all(b"data: a\r\ndata: b\rdata: c\n\r\n");
        assert_eq!(ev, vec![msg("a\nb\nc", "")]);
        let (_, ev) = parse_all(b"data: a\r\rdata: b\n\n");
        assert_eq!(ev, vec![msg("a", ""), msg("b", "")]);
    }

    #[test]
    fn crlf_split_across_chunks_is_one_break() {
        let mut p = SseParser::new();
        // If the CR and LF were two breaks, the LF would be a blank line dispatching "a".
        assert!(p.feed(b"data: a\r").is_empty());
        assert!(p.feed(b"\ndata: b\r").is_empty());
        assert!(p.feed(b"").is_empty());
        assert_eq!(p.feed(b"\n\r\n"), vec![msg("a\nb", "")]);
    }

    #[test]
    fn cr_then_other_byte_in_next_chunk() {
        let mut p = SseParser::new();
        assert!(p.feed(b"data: a\r").is_empty());
        assert_eq!(p.feed(b"\r"), vec![msg("a", "")]);
    }

    #[test]
    fn comments_are_counted_not_dispatched() {
        let (p, ev) = parse_all(b": ping\n\n:\n:raw\ndata: x\n\n");
        assert_eq!(ev, vec![msg("x", "")]);
        assert_eq!(p.comments_seen(), 3);
        assert_eq!(p.last_comment(), Some("raw"));
    }

    #[test]
    fn retry_requires_ascii_digits() {
        let (p, _) =
            parse_all(b"retry: 250\n\nretry: 12a\n\nretry: -1\n\nretry:\n\nretry: 1.5\n\n");
        assert_eq!(p.retry_ms(), Some(250));
        let (p, ev) = parse_all(b"retry: 99\ndata: x\n\ndata: y\n\n");
        assert_eq!(p.retry_ms(), Some(99));
        assert_eq!(ev[0].retry_ms, Some(99));
        assert_eq!(ev[1].retry_ms, None);
        let (p, _) = parse_all(b"retry: 99999999999999999999999999\n\n");
        assert_eq!(p.retry_ms(), Some(u64::MAX));
    }

    #[test]
    fn id_with_nul_is_ignored() {
        let (p, ev) = parse_all(b"id: 1\ndata: a\n\nid: 2\0\ndata: b\n\n");
        assert_eq!(ev, vec![msg("a", "1"), msg("b", "1")]);
        assert_eq!(p.last_event_id(), "1");
    }

    #[test]
    fn last_event_id_persists_and_can_be_cleared() {
        let (p, ev) = parse_all(b"id: 7\ndata: a\n\ndata: b\n\nid\ndata: c\n\n");
        assert_eq!(ev, vec![msg("a", "7"), msg("b", "7"), msg("c", "")]);
        assert_eq!(p.last_event_id(), "");
    }

    #[test]
    fn id_without_data_updates_last_event_id_only() {
        let (p, ev) = parse_all(b"id: 9\n\n");
        assert!(ev.is_empty());
        assert_eq!(p.last_event_id(), "9");
    }

    #[test]
    fn empty_data_buffer_is_not_dispatched_and_resets_type() {
        let (_, ev) = parse_all(b"event: x\n\ndata: y\n\n");
        assert_eq!(ev, vec![msg("y", "")]);
    }

    #[test]
    fn unknown_fields_and_unterminated_event_are_ignored() {
        let (_, ev) = parse_all(b"foo: bar\nData: no\ndata: a\n\ndata: pending\n");
        assert_eq!(ev, vec![msg("a", "")]);
    }

    #[test]
    fn utf8_split_across_chunks_and_invalid_bytes() {
        let mut p = SseParser::new();
        let text = "data: é€😀\n\n".as_bytes();
        let mut ev = Vec::new();
        for b in text {
            ev.extend(p.feed(std::slice::from_ref(b)));
        }
        assert_eq!(ev, vec![msg("é€😀", "")]);
        let (_, ev) = parse_all(b"data: a\xffb\xe2\x82\ndata: c\n\n");
        assert_eq!(ev, vec![msg("a\u{FFFD}b\u{FFFD}\nc", "")]);
    }

    #[test]
    fn event_type_from_event_field() {
        let (_, ev) = parse_all(b"event\ndata: a\n\nevent:  sp\ndata: b\n\n");
        assert_eq!(ev[0].event_type, "message");
        assert_eq!(ev[1].event_type, " sp");
    }
}
