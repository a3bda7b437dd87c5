//! The client's half of WebSocket (RFC 6455) the load tool needs: the upgrade request and the
//! check of its `101` answer, an incremental reader of the server's (unmasked) frames, and
//! masked client frames (pongs, the closing answer).

use sluicegate::codec::ws::accept_key;

/// Opcodes (RFC 6455 §5.2).
pub const CONTINUATION: u8 = 0x0;
pub const TEXT: u8 = 0x1;
pub const BINARY: u8 = 0x2;
pub const CLOSE: u8 = 0x8;
pub const PING: u8 = 0x9;
pub const PONG: u8 = 0xA;

/// Largest message the tool accepts (the test's events are a few KiB at most).
const MAX_MESSAGE: usize = 16 << 20;

/// A `Sec-WebSocket-Key` for connection `i`: base64 of 16 bytes, distinct per connection.
pub fn client_key(i: usize) -> String {
    // Any 16 bytes will do for the handshake; 16 bytes encode to 22 chars plus "==".
    const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut x = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut key = String::with_capacity(24);
    for k in 0..22 {
        // Only 4 bits of the last character are encoded (16 bytes = 128 bits = 21 x 6 + 2).
        let v = if k == 21 { (x & 3) << 4 } else { x & 63 };
        key.push(char::from(B64[v as usize]));
        x = x.rotate_right(6) ^ (k as u64).wrapping_mul(0x2545_F491_4F6C_DD1D);
    }
    key.push_str("==");
    key
}

/// The upgrade request for `path` (which may carry a query).
pub fn upgrade_request(host: &str, path: &str, key: &str) -> Vec<u8> {
    format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    .into_bytes()
}

/// Checks a `101` head (`head` is its bytes up to the blank line) against the key sent.
pub fn check_accept(head: &[u8], key: &str) -> Result<(), String> {
    let text = String::from_utf8_lossy(head);
    let want = accept_key(key);
    let got = text.split("\r\n").find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.eq_ignore_ascii_case("sec-websocket-accept")
            .then(|| value.trim())
    });
    match got {
        Some(v) if v == want => Ok(()),
        Some(v) => Err(format!("Sec-WebSocket-Accept {v:?}, expected {want:?}")),
        None => Err("101 without Sec-WebSocket-Accept".into()),
    }
}

/// Appends one masked, final client frame (RFC 6455 §5.3: every client frame is masked).
pub fn masked_frame(opcode: u8, payload: &[u8], mask: [u8; 4], out: &mut Vec<u8>) {
    out.push(0x80 | opcode);
    match payload.len() {
        n @ 0..=125 => out.push(0x80 | n as u8),
        n @ 126..=0xFFFF => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
}

/// One complete message or control frame from the server.
pub enum Message<'a> {
    Text(&'a [u8]),
    Binary,
    Ping(&'a [u8]),
    Pong,
    /// The close code (if any).
    Close(Option<u16>),
}

/// Incremental reader of server frames: feed bytes, then take messages until `None`.
#[derive(Default)]
pub struct FrameReader {
    buf: Vec<u8>,
    /// Bytes of `buf` already consumed.
    pos: usize,
    /// A fragmented message being put together: its opcode and payload so far.
    partial: Option<(u8, Vec<u8>)>,
    /// The last message completed from fragments (what `Text` borrows).
    assembled: Vec<u8>,
}

impl FrameReader {
    pub fn feed(&mut self, input: &[u8]) {
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        } else if self.pos > 64 * 1024 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(input);
    }

    /// The next whole message, `Ok(None)` when more bytes are needed.
    pub fn next_message(&mut self) -> Result<Option<Message<'_>>, String> {
        loop {
            let rest = &self.buf[self.pos..];
            let Some((fin, opcode, start, len)) = parse_header(rest)? else {
                return Ok(None);
            };
            if rest.len() < start + len {
                return Ok(None);
            }
            let from = self.pos + start;
            self.pos = from + len;
            let payload = from..from + len;
            match opcode {
                TEXT | BINARY if fin && self.partial.is_none() => {
                    return Ok(Some(if opcode == TEXT {
                        Message::Text(&self.buf[payload])
                    } else {
                        Message::Binary
                    }));
                }
                TEXT | BINARY if self.partial.is_none() => {
                    self.partial = Some((opcode, self.buf[payload].to_vec()));
                }
                CONTINUATION => {
                    let Some((op, mut data)) = self.partial.take() else {
                        return Err("continuation frame without a message".into());
                    };
                    data.extend_from_slice(&self.buf[payload]);
                    if data.len() > MAX_MESSAGE {
                        return Err("message over 16 MiB".into());
                    }
                    if !fin {
                        self.partial = Some((op, data));
                        continue;
                    }
                    if op != TEXT {
                        return Ok(Some(Message::Binary));
                    }
                    self.assembled = data;
                    return Ok(Some(Message::Text(&self.assembled)));
                }
                PING => return Ok(Some(Message::Ping(&self.buf[payload]))),
                PONG => return Ok(Some(Message::Pong)),
                CLOSE => {
                    let p = &self.buf[payload];
                    let code = (p.len() >= 2).then(|| u16::from_be_bytes([p[0], p[1]]));
                    return Ok(Some(Message::Close(code)));
                }
                op => return Err(format!("unexpected frame opcode {op:#x}")),
            }
        }
    }
}

/// `(fin, opcode, header length, payload length)` of the frame at the start of `b`.
fn parse_header(b: &[u8]) -> Result<Option<(bool, u8, usize, usize)>, String> {
    let [b0, b1, ..] = *b else {
        return Ok(None);
    };
    if b1 & 0x80 != 0 {
        return Err("server frame is masked".into());
    }
    if b0 & 0x70 != 0 {
        return Err("reserved bits set (no extension was negotiated)".into());
    }
    let (start, len) = match b1 & 0x7F {
        126 => match b.get(2..4) {
            Some(x) => (4, usize::from(u16::from_be_bytes([x[0], x[1]]))),
            None => return Ok(None),
        },
        127 => match b.get(2..10).and_then(|x| <[u8; 8]>::try_from(x).ok()) {
            Some(x) => (10, u64::from_be_bytes(x) as usize),
            None => return Ok(None),
        },
        n => (2, usize::from(n)),
    };
    if len > MAX_MESSAGE {
        return Err("frame over 16 MiB".into());
    }
    Ok(Some((b0 & 0x80 != 0, b0 & 0x0F, start, len)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluicegate::codec::ws::{close_frame, ping_frame, text_frame};

    #[test]
    fn keys_are_valid_and_distinct() {
        let (a, b) = (client_key(0), client_key(1));
        assert_eq!(a.len(), 24);
        assert_ne!(a, b);
        let head = format!("HTTP/1.1 101 x\r\nsec-websocket-accept: {}", accept_key(&a));
        assert!(check_accept(head.as_bytes(), &a).is_ok());
        assert!(check_accept(head.as_bytes(), &b).is_err());
    }

    #[test]
    fn reads_server_frames_split_anywhere() {
        let long = vec![b'y'; 300];
        let mut wire = Vec::new();
        for f in [text_frame(b"1 2 x"), ping_frame(b"p"), text_frame(&long)] {
            wire.extend_from_slice(&f);
        }
        wire.extend_from_slice(&close_frame(1001, "bye"));
        for cut in 0..wire.len() {
            let mut r = FrameReader::default();
            let mut seen = Vec::new();
            for part in [&wire[..cut], &wire[cut..]] {
                r.feed(part);
                while let Some(m) = r.next_message().expect("valid") {
                    seen.push(match m {
                        Message::Text(t) => format!("text {}", t.len()),
                        Message::Ping(p) => format!("ping {}", p.len()),
                        Message::Close(c) => format!("close {c:?}"),
                        Message::Binary | Message::Pong => "other".into(),
                    });
                }
            }
            assert_eq!(seen, ["text 5", "ping 1", "text 300", "close Some(1001)"]);
        }
    }

    #[test]
    fn joins_fragments() {
        let mut r = FrameReader::default();
        r.feed(&[0x01, 2, b'a', b'b', 0x00, 1, b'c', 0x80, 1, b'd']);
        match r.next_message().expect("valid") {
            Some(Message::Text(t)) => assert_eq!(t, b"abcd"),
            _ => panic!("expected text"),
        }
    }

    #[test]
    fn masks_client_frames() {
        let mut out = Vec::new();
        masked_frame(PONG, b"hi", [1, 2, 3, 4], &mut out);
        assert_eq!(out, [0x8A, 0x82, 1, 2, 3, 4, b'h' ^ 1, b'i' ^ 2]);
    }
}
