//! A small blocking WebSocket client for the end-to-end tests: the opening handshake, masked
//! client frames (whole, fragmented or deliberately broken) and server frames read one at a
//! time with a timeout. Written from RFC 6455 for the tests, independent of the gateway's codec.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use super::http::{build_request, connect, parse_head, read_head};

/// Opcodes.
pub const CONT: u8 = 0x0;
pub const TEXT: u8 = 0x1;
pub const BINARY: u8 = 0x2;
pub const CLOSE: u8 = 0x8;
pub const PING: u8 = 0x9;
pub const PONG: u8 = 0xA;

/// One frame from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub fin: bool,
    pub opcode: u8,
    pub payload: Vec<u8>,
}

impl Frame {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.payload).into_owned()
    }

    /// A close frame's code (None without one).
    pub fn close_code(&self) -> Option<u16> {
        (self.opcode == CLOSE && self.payload.len() >= 2)
            .then(|| u16::from_be_bytes([self.payload[0], self.payload[1]]))
    }

    pub fn close_reason(&self) -> String {
        String::from_utf8_lossy(self.payload.get(2..).unwrap_or(&[])).into_owned()
    }
}

/// A connected WebSocket client.
#[derive(Debug)]
pub struct WsClient {
    stream: TcpStream,
    buf: Vec<u8>,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    closed: bool,
}

/// The key of every handshake here, and the accept RFC 6455 gives for it.
pub const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
pub const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

impl WsClient {
    /// Sends an upgrade request for `path` with `extra` headers; returns the client whatever
    /// the status (check `status`: 101 is an open WebSocket).
    pub fn open(addr: SocketAddr, path: &str, extra: &[(&str, &str)]) -> io::Result<WsClient> {
        let mut headers = vec![
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", KEY),
            ("Sec-WebSocket-Version", "13"),
        ];
        headers.extend_from_slice(extra);
        let mut stream = connect(addr)?;
        stream.write_all(&build_request(addr, "GET", path, &headers, b"", false))?;
        let mut buf = Vec::new();
        let head_len = read_head(&mut stream, &mut buf)?;
        let (status, headers) = parse_head(&buf[..head_len])?;
        buf.drain(..head_len);
        Ok(WsClient {
            stream,
            buf,
            status,
            headers,
            closed: false,
        })
    }

    /// Opens `path` and panics unless the gateway switched protocols with the right accept.
    pub fn connect(addr: SocketAddr, path: &str, extra: &[(&str, &str)]) -> WsClient {
        let mut c = WsClient::open(addr, path, extra).unwrap_or_else(|e| panic!("{path}: {e}"));
        if c.status != 101 {
            let body = c.read_available(Duration::from_millis(500));
            panic!(
                "{path}: status {} headers {:?} body {:?}",
                c.status,
                c.headers,
                String::from_utf8_lossy(&body)
            );
        }
        assert_eq!(c.header("sec-websocket-accept"), Some(ACCEPT));
        c
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Sends one masked frame (`fin`, `opcode`, `payload`, with `rsv` bits if asked).
    pub fn send_frame(&mut self, fin: bool, rsv: u8, opcode: u8, payload: &[u8]) -> io::Result<()> {
        self.stream
            .write_all(&masked_frame(fin, rsv, opcode, payload, true))
    }

    /// Sends bytes as they are (a broken frame, an unmasked one).
    pub fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)
    }

    pub fn send_text(&mut self, text: &str) -> io::Result<()> {
        self.send_frame(true, 0, TEXT, text.as_bytes())
    }

    /// The next frame, or `None` when `timeout` passes or the server closed the connection.
    pub fn next_frame(&mut self, timeout: Duration) -> Option<Frame> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some((frame, used)) = parse_frame(&self.buf) {
                self.buf.drain(..used);
                return Some(frame);
            }
            if self.closed || !self.fill(deadline) {
                return None;
            }
        }
    }

    /// The next frame that is not a ping (pings are answered with pongs as a client must).
    pub fn next_message(&mut self, timeout: Duration) -> Option<Frame> {
        loop {
            let frame = self.next_frame(timeout)?;
            if frame.opcode == PING {
                let _ = self.send_frame(true, 0, PONG, &frame.payload);
                continue;
            }
            return Some(frame);
        }
    }

    /// Reads until the server closes the TCP connection; whether it did within `timeout`.
    pub fn wait_eof(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while !self.closed {
            if !self.fill(deadline) && !self.closed {
                return false;
            }
        }
        true
    }

    fn fill(&mut self, deadline: Instant) -> bool {
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        let _ = self.stream.set_read_timeout(Some(deadline - now));
        let mut chunk = [0u8; 16 * 1024];
        match self.stream.read(&mut chunk) {
            Ok(0) | Err(_) if self.closed => false,
            Ok(0) => {
                self.closed = true;
                true
            }
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
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
            Err(_) => {
                self.closed = true;
                true
            }
        }
    }

    fn read_available(&mut self, timeout: Duration) -> Vec<u8> {
        let deadline = Instant::now() + timeout;
        while !self.closed && self.fill(deadline) {}
        std::mem::take(&mut self.buf)
    }
}

/// A client frame: masked (with a fixed, non-trivial key) unless `mask` is false.
pub fn masked_frame(fin: bool, rsv: u8, opcode: u8, payload: &[u8], mask: bool) -> Vec<u8> {
    let first = (u8::from(fin) << 7) | ((rsv & 7) << 4) | (opcode & 0xF);
    client_frame(first, payload, mask.then_some([0x37, 0xfa, 0x21, 0x3d]))
}

/// A client frame whose first byte (FIN, RSV, opcode) is `first`, masked with `key` (unmasked,
/// a protocol error from a client, when `None`).
pub fn client_frame(first: u8, payload: &[u8], key: Option<[u8; 4]>) -> Vec<u8> {
    let mut out = vec![first];
    let mask_bit = if key.is_some() { 0x80 } else { 0 };
    match payload.len() {
        n if n < 126 => out.push(mask_bit | n as u8),
        n if n <= 0xFFFF => {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(mask_bit | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    match key {
        Some(key) => {
            out.extend_from_slice(&key);
            out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        }
        None => out.extend_from_slice(payload),
    }
    out
}

/// Parses one server frame from the front of `buf`: (frame, bytes used), or None if incomplete.
/// Server frames are never masked; a masked one is parsed anyway (the test then fails on it).
pub fn parse_frame(buf: &[u8]) -> Option<(Frame, usize)> {
    if buf.len() < 2 {
        return None;
    }
    let fin = buf[0] & 0x80 != 0;
    let opcode = buf[0] & 0x0F;
    let masked = buf[1] & 0x80 != 0;
    let (len, mut at) = match buf[1] & 0x7F {
        126 => (u16::from_be_bytes([*buf.get(2)?, *buf.get(3)?]) as usize, 4),
        127 => {
            let bytes: [u8; 8] = buf.get(2..10)?.try_into().ok()?;
            (u64::from_be_bytes(bytes) as usize, 10)
        }
        n => (n as usize, 2),
    };
    let key = if masked {
        let k: [u8; 4] = buf.get(at..at + 4)?.try_into().ok()?;
        at += 4;
        Some(k)
    } else {
        None
    };
    let payload = buf.get(at..at + len)?;
    let payload = match key {
        Some(k) => payload
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ k[i % 4])
            .collect(),
        None => payload.to_vec(),
    };
    Some((
        Frame {
            fin,
            opcode,
            payload,
        },
        at + len,
    ))
}

/// The topics a subscribe or unsubscribe ack lists (asserting it is an ack).
pub fn ack_topics(v: &serde_json::Value) -> Vec<String> {
    assert_eq!(v["type"], "ack", "{v}");
    v["topics"]
        .as_array()
        .expect("topics")
        .iter()
        .map(|t| t.as_str().unwrap_or("").to_owned())
        .collect()
}
