//! The little HTTP/1.1 client-side parsing the load tool needs: a response head (status, body
//! framing) and an incremental `chunked` decoder, since peers frame streams differently.

/// How a response body is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    Length(usize),
    Chunked,
    /// Until the connection closes (a stream without either header).
    Close,
}

/// A parsed response head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Head {
    pub status: u16,
    pub framing: Framing,
    /// Bytes of the head including its blank line.
    pub len: usize,
}

/// Parses a response head from the start of `buf`: `Ok(None)` while it is incomplete.
pub fn parse_head(buf: &[u8]) -> Result<Option<Head>, String> {
    let Some(end) = find_bytes(buf, b"\r\n\r\n") else {
        if buf.len() > 64 * 1024 {
            return Err("response head over 64 KiB".into());
        }
        return Ok(None);
    };
    let text = std::str::from_utf8(&buf[..end]).map_err(|_| "head is not UTF-8".to_string())?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.split(' ');
    let version = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        return Err(format!("bad status line: {status_line:?}"));
    }
    let status = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line: {status_line:?}"))?;
    let mut framing = Framing::Close;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("transfer-encoding")
            && value.to_ascii_lowercase().contains("chunked")
        {
            framing = Framing::Chunked;
        } else if name.eq_ignore_ascii_case("content-length") && framing != Framing::Chunked {
            let n = value
                .parse()
                .map_err(|_| format!("bad content-length {value:?}"))?;
            framing = Framing::Length(n);
        }
    }
    Ok(Some(Head {
        status,
        framing,
        len: end + 4,
    }))
}

/// Where the chunked decoder is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ChunkState {
    /// Reading hex digits of a chunk size (accumulated so far).
    Size(usize),
    /// Past the size digits (extensions or CR), waiting for LF.
    SizeLineEnd(usize),
    /// Inside a chunk: this many data bytes left.
    Data(usize),
    /// After a chunk's data: skipping its CRLF (this many bytes left).
    DataEnd(u8),
    /// The zero-size chunk was read; trailers are ignored.
    Done,
}

/// Incremental `Transfer-Encoding: chunked` decoder.
#[derive(Debug)]
pub struct ChunkDecoder {
    state: ChunkState,
}

impl Default for ChunkDecoder {
    fn default() -> Self {
        Self {
            state: ChunkState::Size(0),
        }
    }
}

impl ChunkDecoder {
    /// Appends the payload bytes of `input` to `out`; errors on malformed framing.
    pub fn decode(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
        let mut i = 0;
        while i < input.len() {
            let b = input[i];
            match self.state {
                ChunkState::Size(n) => {
                    let digit = match b {
                        b'0'..=b'9' => Some(b - b'0'),
                        b'a'..=b'f' => Some(b - b'a' + 10),
                        b'A'..=b'F' => Some(b - b'A' + 10),
                        _ => None,
                    };
                    match digit {
                        Some(d) => {
                            let n = n
                                .checked_mul(16)
                                .and_then(|n| n.checked_add(usize::from(d)))
                                .filter(|n| *n < 1 << 30)
                                .ok_or("chunk size too large")?;
                            self.state = ChunkState::Size(n);
                        }
                        None => self.state = ChunkState::SizeLineEnd(n),
                    }
                    if b == b'\n' {
                        self.end_size_line(n);
                    }
                    i += 1;
                }
                ChunkState::SizeLineEnd(n) => {
                    if b == b'\n' {
                        self.end_size_line(n);
                    }
                    i += 1;
                }
                ChunkState::Data(left) => {
                    let take = left.min(input.len() - i);
                    out.extend_from_slice(&input[i..i + take]);
                    i += take;
                    self.state = if take == left {
                        ChunkState::DataEnd(2)
                    } else {
                        ChunkState::Data(left - take)
                    };
                }
                ChunkState::DataEnd(left) => {
                    // Tolerate a bare LF as well as CRLF.
                    self.state = if b == b'\n' || left <= 1 {
                        ChunkState::Size(0)
                    } else {
                        ChunkState::DataEnd(left - 1)
                    };
                    i += 1;
                }
                ChunkState::Done => return Ok(()),
            }
        }
        Ok(())
    }

    fn end_size_line(&mut self, n: usize) {
        self.state = if n == 0 {
            ChunkState::Done
        } else {
            ChunkState::Data(n)
        };
    }

    /// True once the last (zero-size) chunk has been read.
    #[cfg(test)]
    pub fn done(&self) -> bool {
        self.state == ChunkState::Done
    }
}

/// A small substring search (heads are short, so a window scan is cheap enough).
pub fn find_bytes(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_with_chunked_framing() {
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX: y\r\n\r\nrest";
        let h = parse_head(raw).expect("ok").expect("complete");
        assert_eq!(h.status, 200);
        assert_eq!(h.framing, Framing::Chunked);
        assert_eq!(&raw[h.len..], b"rest");
    }

    #[test]
    fn head_incomplete_and_bad() {
        assert_eq!(parse_head(b"HTTP/1.1 200 OK\r\n").expect("ok"), None);
        assert!(parse_head(b"SMTP 200\r\n\r\n").is_err());
        let h = parse_head(b"HTTP/1.1 201 Created\r\ncontent-length: 12\r\n\r\n")
            .expect("ok")
            .expect("complete");
        assert_eq!((h.status, h.framing), (201, Framing::Length(12)));
    }

    #[test]
    fn chunks_split_anywhere_decode_the_same() {
        let raw = b"5\r\nhello\r\na;ext=1\r\n, world!!!\r\n0\r\n\r\n";
        for cut in 0..raw.len() {
            let mut d = ChunkDecoder::default();
            let mut out = Vec::new();
            d.decode(&raw[..cut], &mut out).expect("ok");
            d.decode(&raw[cut..], &mut out).expect("ok");
            assert_eq!(out, b"hello, world!!!", "cut at {cut}");
            assert!(d.done());
        }
    }

    #[test]
    fn oversized_chunk_is_an_error() {
        let mut d = ChunkDecoder::default();
        assert!(d
            .decode(b"ffffffffffffffffff\r\n", &mut Vec::new())
            .is_err());
    }
}
