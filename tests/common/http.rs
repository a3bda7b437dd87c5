//! A small blocking HTTP/1.1 client over `std::net::TcpStream` for the end-to-end tests: one-shot
//! requests, keep-alive connections (to pin a publisher to a shard) and raw bytes for malformed
//! requests. Every read has a timeout, so a silent server fails a test instead of hanging it.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Read/write timeout of every client socket here.
pub const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// A response head larger than this is treated as a broken server.
const MAX_HEAD: usize = 64 * 1024;

/// A parsed HTTP response.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    /// Header names lowercased, values as sent.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The shard that served this response, from `x-sluicegate-shard`.
    pub fn shard(&self) -> Option<usize> {
        self.header("x-sluicegate-shard")?.trim().parse().ok()
    }
}

pub fn find_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Opens a client socket with the standard timeouts.
pub fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let s = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
    s.set_read_timeout(Some(IO_TIMEOUT))?;
    s.set_write_timeout(Some(IO_TIMEOUT))?;
    s.set_nodelay(true)?;
    Ok(s)
}

/// Serializes a request. Adds `Host` and, when there is a body or the method usually carries
/// one, `Content-Length`; `extra` headers come last and may repeat either.
pub fn build_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    close: bool,
) -> Vec<u8> {
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\n");
    let has = |n: &str| headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(n));
    if !has("content-length") && (!body.is_empty() || matches!(method, "POST" | "PUT")) {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    if close && !has("connection") {
        req.push_str("Connection: close\r\n");
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// One request on a fresh connection (`Connection: close`).
pub fn http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> io::Result<Response> {
    send_raw(
        addr,
        &build_request(addr, method, path, headers, body, true),
    )
}

/// Writes `bytes` as they are on a fresh connection and reads one response. A write error is
/// ignored (a server may answer and close before reading everything, e.g. for 413/431), so
/// the response that was sent can still be read.
pub fn send_raw(addr: SocketAddr, bytes: &[u8]) -> io::Result<Response> {
    let mut s = connect(addr)?;
    let write_result = s.write_all(bytes);
    let mut buf = Vec::new();
    match read_response(&mut s, &mut buf, true) {
        Ok(r) => Ok(r),
        Err(e) => match write_result {
            Err(we) => Err(io::Error::new(
                e.kind(),
                format!("write failed ({we}), then read failed ({e})"),
            )),
            Ok(()) => Err(e),
        },
    }
}

/// Reads into `buf` until it holds a complete response head. Returns the head's length.
pub fn read_head(s: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<usize> {
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(pos) = memchr::memmem::find(buf, b"\r\n\r\n") {
            return Ok(pos + 4);
        }
        if buf.len() > MAX_HEAD {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "response head too large",
            ));
        }
        let n = s.read(&mut chunk)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "connection closed before a response head; got {:?}",
                    String::from_utf8_lossy(buf)
                ),
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Parses a complete head (status line + headers).
pub fn parse_head(head: &[u8]) -> io::Result<(u16, Vec<(String, String)>)> {
    let mut storage = [httparse::EMPTY_HEADER; 64];
    let mut resp = httparse::Response::new(&mut storage);
    match resp.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "partial response head",
            ))
        }
        Err(e) => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "bad response head ({e}): {:?}",
                    String::from_utf8_lossy(head)
                ),
            ))
        }
    }
    let status = resp.code.unwrap_or(0);
    let headers = resp
        .headers
        .iter()
        .map(|h| {
            (
                h.name.to_ascii_lowercase(),
                String::from_utf8_lossy(h.value).into_owned(),
            )
        })
        .collect();
    Ok((status, headers))
}

/// Reads one whole response from `s`; `buf` holds bytes already read and keeps what follows
/// the response (for keep-alive). `eof_body` allows a body delimited by connection close.
pub fn read_response(s: &mut TcpStream, buf: &mut Vec<u8>, eof_body: bool) -> io::Result<Response> {
    let head_len = read_head(s, buf)?;
    let (status, headers) = parse_head(&buf[..head_len])?;
    buf.drain(..head_len);
    let chunked = find_header(&headers, "transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    let length =
        find_header(&headers, "content-length").and_then(|v| v.trim().parse::<usize>().ok());
    let body = if chunked {
        read_chunked(s, buf)?
    } else if let Some(n) = length {
        fill(s, buf, n)?;
        buf.drain(..n).collect()
    } else if eof_body && status != 204 && status != 304 {
        let mut rest = std::mem::take(buf);
        s.read_to_end(&mut rest)?;
        rest
    } else {
        Vec::new()
    };
    Ok(Response {
        status,
        headers,
        body,
    })
}

/// Reads until `buf` holds at least `n` bytes.
fn fill(s: &mut TcpStream, buf: &mut Vec<u8>, n: usize) -> io::Result<()> {
    let mut chunk = [0u8; 16384];
    while buf.len() < n {
        let got = s.read(&mut chunk)?;
        if got == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed mid-body",
            ));
        }
        buf.extend_from_slice(&chunk[..got]);
    }
    Ok(())
}

/// Decodes a chunked body (extensions and trailers ignored).
fn read_chunked(s: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = loop {
            if let Some(p) = memchr::memmem::find(buf, b"\r\n") {
                break p;
            }
            let len = buf.len();
            fill(s, buf, len + 1)?;
        };
        let line = String::from_utf8_lossy(&buf[..line_end]).into_owned();
        let size_text = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("bad chunk size {line:?}"),
            )
        })?;
        buf.drain(..line_end + 2);
        if size == 0 {
            // Trailers end with an empty line.
            loop {
                let p = loop {
                    if let Some(p) = memchr::memmem::find(buf, b"\r\n") {
                        break p;
                    }
                    let len = buf.len();
                    fill(s, buf, len + 1)?;
                };
                buf.drain(..p + 2);
                if p == 0 {
                    return Ok(body);
                }
            }
        }
        fill(s, buf, size + 2)?;
        body.extend_from_slice(&buf[..size]);
        buf.drain(..size + 2);
    }
}

/// A keep-alive connection; reconnects when the server closed the previous one.
pub struct HttpConn {
    addr: SocketAddr,
    stream: Option<TcpStream>,
    buf: Vec<u8>,
}

impl HttpConn {
    pub fn connect(addr: SocketAddr) -> io::Result<HttpConn> {
        Ok(HttpConn {
            addr,
            stream: Some(connect(addr)?),
            buf: Vec::new(),
        })
    }

    /// True while the current TCP connection is open (a reconnect may land on another shard).
    pub fn is_open(&self) -> bool {
        self.stream.is_some()
    }

    pub fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> io::Result<Response> {
        if self.stream.is_none() {
            self.stream = Some(connect(self.addr)?);
            self.buf.clear();
        }
        let req = build_request(self.addr, method, path, headers, body, false);
        let result = match self.stream.as_mut() {
            Some(s) => s
                .write_all(&req)
                .and_then(|()| read_response(s, &mut self.buf, false)),
            None => Err(io::Error::new(io::ErrorKind::NotConnected, "no connection")),
        };
        match &result {
            Ok(r)
                if r.header("connection")
                    .is_some_and(|v| v.eq_ignore_ascii_case("close")) =>
            {
                self.stream = None;
            }
            Err(_) => self.stream = None,
            Ok(_) => {}
        }
        result
    }
}

/// Extracts the strings of the `"ids"` array from a publish answer such as `{"ids":["a","b"]}`.
/// A deliberately small JSON reader (no JSON crate in the dev-dependencies): enough for an array
/// of strings with escapes.
pub fn parse_ids(body: &str) -> Option<Vec<String>> {
    let start = body.find("\"ids\"")? + 5;
    let rest = body[start..].trim_start().strip_prefix(':')?.trim_start();
    let mut chars = rest.strip_prefix('[')?.chars();
    let mut ids = Vec::new();
    loop {
        match chars.by_ref().find(|c| !c.is_whitespace() && *c != ',')? {
            ']' => return Some(ids),
            '"' => {
                let mut s = String::new();
                loop {
                    match chars.next()? {
                        '"' => break,
                        '\\' => match chars.next()? {
                            'n' => s.push('\n'),
                            't' => s.push('\t'),
                            'r' => s.push('\r'),
                            'u' => {
                                let hex: String = chars.by_ref().take(4).collect();
                                s.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
                            }
                            c => s.push(c),
                        },
                        c => s.push(c),
                    }
                }
                ids.push(s);
            }
            _ => return None,
        }
    }
}
