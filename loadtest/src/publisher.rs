//! Keep-alive HTTP publisher connections, each with one request in flight. Events wait in a
//! queue with their scheduled send time already fixed, so a server that is slow to accept
//! publishes shows up as latency, never as a lower offered rate (no coordinated omission).

use std::io::{self, Read, Write};
use std::net::SocketAddr;

use mio::net::TcpStream;

use crate::httpmini::{find_bytes, parse_head, Framing};

/// One event waiting to be published.
#[derive(Clone, Copy, Debug)]
pub struct Pending {
    pub seq: u64,
    pub topic: usize,
    pub sched_ns: u64,
}

/// What a publisher connection reported.
#[derive(Debug, Default)]
pub struct PubOutcome {
    /// Sequence numbers whose publish got a 2xx answer.
    pub ok: Vec<u64>,
    /// Sequence numbers whose publish failed (non-2xx, or the connection broke).
    pub failed: Vec<u64>,
    /// The connection broke and must be replaced.
    pub broken: bool,
    pub error: Option<String>,
}

/// One publisher connection.
pub struct PubConn {
    pub stream: Option<TcpStream>,
    connected: bool,
    out: Vec<u8>,
    written: usize,
    inbuf: Vec<u8>,
    /// The event whose request is in flight.
    inflight: Option<u64>,
}

impl PubConn {
    pub fn connect(addr: SocketAddr) -> io::Result<Self> {
        let s = TcpStream::connect(addr)?;
        let _ = s.set_nodelay(true);
        Ok(Self {
            stream: Some(s),
            connected: false,
            out: Vec::new(),
            written: 0,
            inbuf: Vec::new(),
            inflight: None,
        })
    }

    /// Ready to take the next request.
    pub fn idle(&self) -> bool {
        self.connected && self.inflight.is_none()
    }

    /// Starts publishing `seq` with the request bytes `build` appends.
    pub fn send(&mut self, seq: u64, build: impl FnOnce(&mut Vec<u8>)) -> PubOutcome {
        self.out.clear();
        self.written = 0;
        build(&mut self.out);
        self.inflight = Some(seq);
        self.flush()
    }

    fn fail(&mut self, why: String) -> PubOutcome {
        PubOutcome {
            failed: self.inflight.take().into_iter().collect(),
            broken: true,
            error: Some(why),
            ..PubOutcome::default()
        }
    }

    /// Writes what is pending.
    pub fn flush(&mut self) -> PubOutcome {
        let Some(s) = self.stream.as_mut() else {
            return self.fail("no socket".into());
        };
        if !self.connected {
            if let Ok(Some(e)) | Err(e) = s.take_error() {
                return self.fail(format!("publisher connect: {e}"));
            }
            match s.peer_addr() {
                Ok(_) => self.connected = true,
                Err(e) if e.kind() == io::ErrorKind::NotConnected => return PubOutcome::default(),
                Err(e) => return self.fail(format!("publisher connect: {e}")),
            }
        }
        while self.written < self.out.len() {
            match s.write(&self.out[self.written..]) {
                Ok(0) => return self.fail("publisher write returned 0".into()),
                Ok(n) => self.written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return self.fail(format!("publisher write: {e}")),
            }
        }
        PubOutcome::default()
    }

    /// Reads answers until the socket would block.
    pub fn on_readable(&mut self, buf: &mut [u8]) -> PubOutcome {
        let mut result = self.flush();
        if result.broken {
            return result;
        }
        loop {
            let Some(s) = self.stream.as_mut() else {
                return result;
            };
            match s.read(buf) {
                Ok(0) => {
                    let mut r = self.fail("publisher connection closed".into());
                    r.ok.append(&mut result.ok);
                    return r;
                }
                Ok(n) => self.inbuf.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let mut r = self.fail(format!("publisher read: {e}"));
                    r.ok.append(&mut result.ok);
                    return r;
                }
            }
            // Answers are consumed as they complete.
            match self.take_answer() {
                Ok(Some(status)) => {
                    if let Some(seq) = self.inflight.take() {
                        if (200..300).contains(&status) {
                            result.ok.push(seq);
                        } else {
                            result.failed.push(seq);
                        }
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    let mut r = self.fail(e);
                    r.ok.append(&mut result.ok);
                    return r;
                }
            }
        }
        result
    }

    /// Removes one complete answer from the input buffer and returns its status.
    fn take_answer(&mut self) -> Result<Option<u16>, String> {
        let Some(head) = parse_head(&self.inbuf)? else {
            return Ok(None);
        };
        let total = match head.framing {
            Framing::Length(n) => head.len + n,
            Framing::Chunked => match find_bytes(&self.inbuf[head.len..], b"0\r\n\r\n") {
                Some(at) => head.len + at + 5,
                None => return Ok(None),
            },
            Framing::Close => return Err("publish answer without length".into()),
        };
        if self.inbuf.len() < total {
            return Ok(None);
        }
        self.inbuf.drain(..total);
        Ok(Some(head.status))
    }
}
