//! A blocking Server-Sent Events client for the end-to-end tests: sends the GET, checks the
//! response head, then parses the stream (un-chunking it when the server uses chunked encoding)
//! and hands out events one at a time with a timeout.

// Swap to `sluicegate::codec::sse_parse::{ParsedEvent, SseParser}` once that module lands; the
// stand-in has the same API.
pub use sluicegate::codec::sse_parse::{ParsedEvent, SseParser};

use super::http::{build_request, connect, find_header, parse_head, read_head, Response};
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// Incremental decoder of a chunked body.
#[derive(Debug, Default)]
struct Dechunker {
    pending: Vec<u8>,
    /// Body bytes left in the current chunk (+2 for its CRLF is handled via `skip_crlf`).
    left: usize,
    skip_crlf: usize,
    done: bool,
}

impl Dechunker {
    fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) {
        self.pending.extend_from_slice(input);
        let mut pos = 0;
        while pos < self.pending.len() && !self.done {
            if self.left > 0 {
                let n = self.left.min(self.pending.len() - pos);
                out.extend_from_slice(&self.pending[pos..pos + n]);
                self.left -= n;
                pos += n;
                if self.left == 0 {
                    self.skip_crlf = 2;
                }
            } else if self.skip_crlf > 0 {
                let n = self.skip_crlf.min(self.pending.len() - pos);
                self.skip_crlf -= n;
                pos += n;
            } else {
                let Some(end) = memchr::memmem::find(&self.pending[pos..], b"\r\n") else {
                    break;
                };
                let line = String::from_utf8_lossy(&self.pending[pos..pos + end]).into_owned();
                pos += end + 2;
                let size = usize::from_str_radix(line.split(';').next().unwrap_or("").trim(), 16);
                match size {
                    Ok(0) | Err(_) => self.done = true,
                    Ok(n) => self.left = n,
                }
            }
        }
        self.pending.drain(..pos);
    }
}

/// An open SSE subscription.
#[derive(Debug)]
pub struct SseClient {
    stream: TcpStream,
    status: u16,
    headers: Vec<(String, String)>,
    parser: SseParser,
    dechunker: Option<Dechunker>,
    pending: VecDeque<ParsedEvent>,
    /// Every body byte received so far (after un-chunking), to look at the raw framing.
    raw: Vec<u8>,
    closed: bool,
}

impl SseClient {
    /// Subscribes to `path`; panics (with the server's answer) unless it is a 200 event stream.
    /// Waits up to 2 s for the stream's opening comment, so a publish right after this call is
    /// not raced against the subscription being registered.
    pub fn connect(addr: SocketAddr, path: &str, extra_headers: &[(&str, &str)]) -> SseClient {
        match SseClient::try_connect(addr, path, extra_headers) {
            Ok(c) => c,
            Err(e) => panic!("SSE connect to {path} failed: {e}"),
        }
    }

    /// Like [`SseClient::connect`], but returns the non-SSE answer as an error message.
    pub fn try_connect(
        addr: SocketAddr,
        path: &str,
        extra_headers: &[(&str, &str)],
    ) -> Result<SseClient, String> {
        let mut client = SseClient::open(addr, path, extra_headers).map_err(|e| e.to_string())?;
        if client.status != 200 {
            let body = client.read_rest(Duration::from_secs(1));
            return Err(format!(
                "status {} (headers {:?}), body {:?}",
                client.status,
                client.headers,
                String::from_utf8_lossy(&body)
            ));
        }
        let ct = client
            .header("content-type")
            .unwrap_or("")
            .to_ascii_lowercase();
        if !ct.starts_with("text/event-stream") {
            return Err(format!("content-type {ct:?}, headers {:?}", client.headers));
        }
        client.wait_for_comment(Duration::from_secs(2));
        Ok(client)
    }

    /// Sends the request and reads the head, whatever its status.
    pub fn open(
        addr: SocketAddr,
        path: &str,
        extra_headers: &[(&str, &str)],
    ) -> io::Result<SseClient> {
        let mut headers = vec![("Accept", "text/event-stream")];
        headers.extend_from_slice(extra_headers);
        let mut stream = connect(addr)?;
        stream.write_all(&build_request(addr, "GET", path, &headers, b"", false))?;
        let mut buf = Vec::new();
        let head_len = read_head(&mut stream, &mut buf)?;
        let (status, headers) = parse_head(&buf[..head_len])?;
        let chunked = find_header(&headers, "transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
        let mut client = SseClient {
            stream,
            status,
            headers,
            parser: SseParser::new(),
            dechunker: chunked.then(Dechunker::default),
            pending: VecDeque::new(),
            raw: Vec::new(),
            closed: false,
        };
        client.ingest(&buf[head_len..]);
        Ok(client)
    }

    pub fn status(&self) -> u16 {
        self.status
    }

    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    /// The shard that accepted this connection (`x-sluicegate-shard`).
    pub fn shard(&self) -> Option<usize> {
        self.header("x-sluicegate-shard")?.trim().parse().ok()
    }

    /// The response head as a [`Response`] without body (for error reporting).
    pub fn head(&self) -> Response {
        Response {
            status: self.status,
            headers: self.headers.clone(),
            body: Vec::new(),
        }
    }

    pub fn comments_seen(&self) -> u64 {
        self.parser.comments_seen()
    }

    pub fn last_comment(&self) -> Option<&str> {
        self.parser.last_comment()
    }

    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Every body byte received so far.
    pub fn raw(&self) -> &[u8] {
        &self.raw
    }

    pub fn raw_text(&self) -> String {
        String::from_utf8_lossy(&self.raw).into_owned()
    }

    /// The next event, or `None` when `timeout` passes or the stream ends first.
    pub fn next_event(&mut self, timeout: Duration) -> Option<ParsedEvent> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(ev) = self.pending.pop_front() {
                return Some(ev);
            }
            if self.closed || !self.read_some(deadline) {
                return None;
            }
        }
    }

    /// Collects `n` events, each within `per_event`; panics with what was received otherwise.
    pub fn expect_events(&mut self, n: usize, per_event: Duration) -> Vec<ParsedEvent> {
        let mut got = Vec::with_capacity(n);
        while got.len() < n {
            match self.next_event(per_event) {
                Some(ev) => got.push(ev),
                None => panic!(
                    "expected {n} events, got {} (closed: {}): {:?}",
                    got.len(),
                    self.closed,
                    got.iter().map(|e| &e.data).collect::<Vec<_>>()
                ),
            }
        }
        got
    }

    /// Reads and parses for `dur`, returning the events that arrived.
    pub fn events_for(&mut self, dur: Duration) -> Vec<ParsedEvent> {
        let deadline = Instant::now() + dur;
        while !self.closed && self.read_some(deadline) {}
        self.pending.drain(..).collect()
    }

    /// Reads until `comments_seen() > 0` or `timeout`; returns whether one was seen.
    pub fn wait_for_comment(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while self.comments_seen() == 0 {
            if self.closed || !self.read_some(deadline) {
                return false;
            }
        }
        true
    }

    /// Reads (parsing, keeping events queued) until the server closes the stream or `timeout`
    /// passes; returns whether it closed. A reset counts as closed.
    pub fn wait_closed(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while !self.closed && self.read_some(deadline) {}
        self.closed
    }

    /// One read with the time left until `deadline`. Returns false on timeout or close.
    fn read_some(&mut self, deadline: Instant) -> bool {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        // A zero read timeout means "block forever" to std, hence the 1 ms floor.
        if self
            .stream
            .set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .is_err()
        {
            return false;
        }
        let mut chunk = [0u8; 65536];
        match self.stream.read(&mut chunk) {
            Ok(0) => {
                self.closed = true;
                false
            }
            Ok(n) => {
                self.ingest(&chunk[..n]);
                true
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                false
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => true,
            Err(_) => {
                self.closed = true;
                false
            }
        }
    }

    fn ingest(&mut self, bytes: &[u8]) {
        let body = match self.dechunker.as_mut() {
            Some(d) => {
                let mut out = Vec::new();
                d.feed(bytes, &mut out);
                out
            }
            None => bytes.to_vec(),
        };
        self.raw.extend_from_slice(&body);
        let events = self.parser.feed(&body);
        self.pending.extend(events);
    }

    /// Reads raw bytes until close or timeout (for non-200 answers).
    fn read_rest(&mut self, timeout: Duration) -> Vec<u8> {
        let deadline = Instant::now() + timeout;
        while !self.closed && self.read_some(deadline) {}
        self.raw.clone()
    }
}
