//! Stand-in for `sluicegate::codec::sse_parse` with the same API, used by the test harness until
//! the real parser lands (swap the `use` in `common/sse.rs`). Follows the WHATWG EventSource
//! parsing rules: lines end in CR, LF or CRLF; `:` starts a comment; a blank line dispatches.

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ParsedEvent {
    /// The `event:` field, or "message" when none (or an empty one) was sent.
    pub event_type: String,
    /// `data:` lines joined with LF.
    pub data: String,
    /// The last `id:` seen on the stream so far (it persists across events, as in browsers).
    pub last_event_id: String,
    /// The last `retry:` value seen since the previous dispatch, if any.
    pub retry_ms: Option<u64>,
}

/// Incremental parser: feed any split of the stream, get the events completed so far.
#[derive(Debug, Default)]
pub struct SseParser {
    line: Vec<u8>,
    /// The previous chunk ended in CR: a LF at the start of the next one belongs to it.
    after_cr: bool,
    started: bool,
    event_type: String,
    data: String,
    has_data: bool,
    last_event_id: String,
    retry_ms: Option<u64>,
    comments: u64,
    last_comment: Option<String>,
}

impl SseParser {
    pub fn new() -> SseParser {
        SseParser::default()
    }

    pub fn feed(&mut self, mut bytes: &[u8]) -> Vec<ParsedEvent> {
        let mut out = Vec::new();
        if !self.started && !bytes.is_empty() {
            // A leading UTF-8 BOM is not part of the first line.
            self.started = true;
            if let Some(rest) = bytes.strip_prefix(b"\xEF\xBB\xBF") {
                bytes = rest;
            }
        }
        for &b in bytes {
            if self.after_cr {
                self.after_cr = false;
                if b == b'\n' {
                    continue;
                }
            }
            match b {
                b'\r' => {
                    self.after_cr = true;
                    self.end_line(&mut out);
                }
                b'\n' => self.end_line(&mut out),
                _ => self.line.push(b),
            }
        }
        out
    }

    pub fn comments_seen(&self) -> u64 {
        self.comments
    }

    pub fn last_comment(&self) -> Option<&str> {
        self.last_comment.as_deref()
    }

    fn end_line(&mut self, out: &mut Vec<ParsedEvent>) {
        let line = String::from_utf8_lossy(&self.line).into_owned();
        self.line.clear();
        if line.is_empty() {
            self.dispatch(out);
            return;
        }
        if let Some(comment) = line.strip_prefix(':') {
            self.comments += 1;
            self.last_comment = Some(comment.strip_prefix(' ').unwrap_or(comment).to_string());
            return;
        }
        let (field, value) = match line.find(':') {
            Some(i) => {
                let v = &line[i + 1..];
                (&line[..i], v.strip_prefix(' ').unwrap_or(v))
            }
            None => (line.as_str(), ""),
        };
        match field {
            "event" => self.event_type = value.to_string(),
            "data" => {
                self.data.push_str(value);
                self.data.push('\n');
                self.has_data = true;
            }
            "id" if !value.contains('\0') => self.last_event_id = value.to_string(),
            "retry" if !value.is_empty() && value.bytes().all(|c| c.is_ascii_digit()) => {
                self.retry_ms = value.parse().ok();
            }
            _ => {}
        }
    }

    fn dispatch(&mut self, out: &mut Vec<ParsedEvent>) {
        let mut event_type = std::mem::take(&mut self.event_type);
        let mut data = std::mem::take(&mut self.data);
        if !self.has_data {
            return;
        }
        self.has_data = false;
        if event_type.is_empty() {
            event_type.push_str("message");
        }
        if data.ends_with('\n') {
            data.pop();
        }
        out.push(ParsedEvent {
            event_type,
            data,
            last_event_id: self.last_event_id.clone(),
            retry_ms: self.retry_ms.take(),
        });
    }
}
