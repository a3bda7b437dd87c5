//! One subscriber connection: connect, send the request (SSE, or a WebSocket upgrade), read the
//! response head, decode the body by transport (`body`), answer what must be answered (pongs),
//! and hand each event's `(seq, scheduled time)` to the caller.

use std::io::{self, Read, Write};
use std::net::SocketAddr;

use mio::net::TcpStream;
use sluicegate::codec::sse_parse::ParsedEvent;

use crate::body::Body;
use crate::flavor::parse_payload;
use crate::httpmini::{parse_head, Framing};
use crate::wsframe::check_accept;

/// A WebSocket subscription: the key its upgrade sent, and whether frames are JSON envelopes.
pub struct WsOpen {
    pub key: String,
    pub envelope: bool,
}

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
    /// `Some` for a WebSocket subscriber.
    ws: Option<WsOpen>,
    /// Set once the response head is read.
    body: Option<Body>,
    /// Bytes to send back (pongs) that the socket did not take yet.
    outbox: Vec<u8>,
    /// Bit `seq` is set once event `seq` was received (duplicates are counted by it).
    seen: Vec<u64>,
    pub bytes: u64,
}

impl Sub {
    pub fn new(topic: usize, slow: bool, request: Vec<u8>, ws: Option<WsOpen>) -> Self {
        Self {
            stream: None,
            topic,
            slow,
            state: SubState::Idle,
            request,
            written: 0,
            head: Vec::new(),
            ws,
            body: None,
            outbox: Vec::new(),
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

    /// Writes what is waiting in the outbox (pongs); `Err` when the socket failed.
    pub fn flush_outbox(&mut self) -> Result<(), String> {
        let Some(s) = self.stream.as_mut() else {
            return Ok(());
        };
        let mut done = 0;
        while done < self.outbox.len() {
            match s.write(&self.outbox[done..]) {
                Ok(0) => return Err("write returned 0".into()),
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("write: {e}")),
            }
        }
        self.outbox.drain(..done);
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
                    Ok(Some(h)) if self.head_ok(h.status) => {
                        if let Some(ws) = &self.ws {
                            if let Err(e) = check_accept(&self.head[..h.len], &ws.key) {
                                out.error = Some(e);
                                out.closed = true;
                                self.state = SubState::Closed;
                                return out;
                            }
                        }
                        self.body = Some(match &self.ws {
                            Some(ws) => Body::ws(ws.envelope),
                            None => Body::sse(h.framing == Framing::Chunked),
                        });
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
            let Some(decoder) = self.body.as_mut() else {
                return out;
            };
            let seen = &mut self.seen;
            let fed = decoder.feed(body, scratch, events, &mut self.outbox, |data| {
                let Some((seq, sched)) = parse_payload(data) else {
                    return;
                };
                if seq >= max_seq {
                    return;
                }
                let word = (seq / 64) as usize;
                if seen.len() <= word {
                    seen.resize(word + 1, 0);
                }
                let bit = 1u64 << (seq % 64);
                let fresh = seen[word] & bit == 0;
                seen[word] |= bit;
                on_event(seq, sched, fresh);
            });
            let flushed = if self.outbox.is_empty() {
                Ok(())
            } else {
                self.flush_outbox()
            };
            let closed = match (fed, flushed) {
                (Err(e), _) | (_, Err(e)) => Some(e),
                (Ok(f), _) => f
                    .closed
                    .map(|code| format!("WebSocket closed by the server ({code:?})")),
            };
            if let Some(e) = closed {
                out.error = Some(e);
                out.closed = true;
                self.state = SubState::Closed;
                return out;
            }
            if drained {
                return out;
            }
        }
    }

    /// A WebSocket upgrade is answered `101`; an SSE stream with a 2xx.
    fn head_ok(&self, status: u16) -> bool {
        match self.ws {
            Some(_) => status == 101,
            None => (200..300).contains(&status),
        }
    }
}
