//! One SSE subscriber connection: connect, send the request, read the response head, unframe
//! the body (chunked or not), parse events with the library's spec-following parser, and hand
//! each event's `(seq, scheduled time)` to the caller.

use std::io::{self, Read, Write};
use std::net::SocketAddr;

use mio::net::TcpStream;
use sluicegate::codec::sse_parse::{ParsedEvent, SseParser};

use crate::flavor::parse_payload;
use crate::httpmini::{parse_head, ChunkDecoder, Framing};

/// Where a subscriber is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SubState {
    /// Not started yet.
    Idle,
    /// Connecting or writing its request.
    Connecting,
    /// Waiting for the response head.
    Head,
    /// Reading events.
    Streaming,
    /// Closed by the server, or failed.
    Closed,
}

/// What a read pass produced.
#[derive(Debug, Default)]
pub struct ReadOutcome {
    /// The response head arrived in this pass (with a 2xx status).
    pub became_ready: bool,
    /// The connection ended or failed in this pass.
    pub closed: bool,
    pub error: Option<String>,
}

/// One subscriber.
pub struct Sub {
    pub stream: Option<TcpStream>,
    pub topic: usize,
    pub slow: bool,
    pub state: SubState,
    request: Vec<u8>,
    written: usize,
    head: Vec<u8>,
    chunked: Option<ChunkDecoder>,
    parser: SseParser,
    /// Bit `seq` is set once event `seq` was received (duplicates are counted by it).
    seen: Vec<u64>,
    pub bytes: u64,
}

impl Sub {
    pub fn new(topic: usize, slow: bool, request: Vec<u8>) -> Self {
        Self {
            stream: None,
            topic,
            slow,
            state: SubState::Idle,
            request,
            written: 0,
            head: Vec::new(),
            chunked: None,
            parser: SseParser::new(),
            seen: Vec::new(),
            bytes: 0,
        }
    }

    /// Starts a non-blocking connect.
    pub fn connect(&mut self, addr: SocketAddr) -> io::Result<&mut TcpStream> {
        let s = TcpStream::connect(addr)?;
        let _ = s.set_nodelay(true);
        self.state = SubState::Connecting;
        Ok(self.stream.insert(s))
    }

    /// On writability: finishes the connect and writes the request. `Err` means it failed.
    pub fn on_writable(&mut self) -> Result<(), String> {
        if self.state != SubState::Connecting {
            return Ok(());
        }
        let Some(s) = self.stream.as_mut() else {
            return Err("no socket".into());
        };
        if let Ok(Some(e)) | Err(e) = s.take_error() {
            return Err(format!("connect: {e}"));
        }
        if let Err(e) = s.peer_addr() {
            // Not connected yet (spurious wakeup) or refused.
            return if e.kind() == io::ErrorKind::NotConnected {
                Ok(())
            } else {
                Err(format!("connect: {e}"))
            };
        }
        while self.written < self.request.len() {
            match s.write(&self.request[self.written..]) {
                Ok(0) => return Err("write returned 0".into()),
                Ok(n) => self.written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("write: {e}")),
            }
        }
        self.state = SubState::Head;
        Ok(())
    }

    /// Reads until the socket would block; calls `on_event(seq, sched_ns, bitset_was_new)`.
    /// `max_seq` bounds the dedup bitset (sequence numbers at or past it are ignored).
    pub fn on_readable(
        &mut self,
        buf: &mut [u8],
        scratch: &mut Vec<u8>,
        events: &mut Vec<ParsedEvent>,
        max_seq: u64,
        mut on_event: impl FnMut(u64, u64, bool),
    ) -> ReadOutcome {
        let mut out = ReadOutcome::default();
        if self.state == SubState::Connecting {
            if let Err(e) = self.on_writable() {
                out.closed = true;
                out.error = Some(e);
                self.state = SubState::Closed;
                return out;
            }
        }
        // Bounded: each read either makes progress or ends the loop; the socket's queue is finite.
        loop {
            let Some(s) = self.stream.as_mut() else {
                return out;
            };
            let n = match s.read(buf) {
                Ok(0) => {
                    out.closed = true;
                    self.state = SubState::Closed;
                    return out;
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return out,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    out.closed = true;
                    out.error = Some(format!("read: {e}"));
                    self.state = SubState::Closed;
                    return out;
                }
            };
            self.bytes += n as u64;
            // A short read drained the socket: with edge-triggered epoll new data raises a new
            // edge, so the extra read that would only return EAGAIN is skipped (it would double
            // the tool's syscalls per delivery).
            let drained = n < buf.len();
            let mut body = &buf[..n];
            let owned_head_rest;
            if self.state == SubState::Head {
                self.head.extend_from_slice(body);
                match parse_head(&self.head) {
                    Ok(None) if drained => return out,
                    Ok(None) => continue,
                    Ok(Some(h)) if (200..300).contains(&h.status) => {
                        if h.framing == Framing::Chunked {
                            self.chunked = Some(ChunkDecoder::default());
                        }
                        owned_head_rest = self.head.split_off(h.len);
                        self.head = Vec::new();
                        self.state = SubState::Streaming;
                        out.became_ready = true;
                    }
                    Ok(Some(h)) => {
                        out.error = Some(format!("status {}", h.status));
                        out.closed = true;
                        self.state = SubState::Closed;
                        return out;
                    }
                    Err(e) => {
                        out.error = Some(e);
                        out.closed = true;
                        self.state = SubState::Closed;
                        return out;
                    }
                }
                body = &owned_head_rest;
            }
            if self.slow {
                // A slow consumer reads its head and then nothing more.
                return out;
            }
            let data: &[u8] = match self.chunked.as_mut() {
                Some(dec) => {
                    scratch.clear();
                    if let Err(e) = dec.decode(body, scratch) {
                        out.error = Some(e);
                        out.closed = true;
                        self.state = SubState::Closed;
                        return out;
                    }
                    scratch
                }
                None => body,
            };
            events.clear();
            self.parser.feed_into(data, events);
            for ev in events.iter() {
                let Some((seq, sched)) = parse_payload(&ev.data) else {
                    continue;
                };
                if seq >= max_seq {
                    continue;
                }
                let word = (seq / 64) as usize;
                if self.seen.len() <= word {
                    self.seen.resize(word + 1, 0);
                }
                let bit = 1u64 << (seq % 64);
                let fresh = self.seen[word] & bit == 0;
                self.seen[word] |= bit;
                on_event(seq, sched, fresh);
            }
            if drained {
                return out;
            }
        }
    }
}
