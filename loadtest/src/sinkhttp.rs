//! The server-side HTTP/1.1 the webhook sink needs: where a request ends (head, then a
//! `Content-Length` body), whether the sender wants the connection closed after it, and the
//! send time a publisher wrote at the start of the event (`flavor::payload`).

use crate::httpmini::find_bytes;

/// A complete request at the start of a buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request {
    /// Bytes of the head including its blank line.
    pub head_len: usize,
    pub body_len: usize,
    /// `Connection: close` (or HTTP/1.0 without keep-alive): close after answering.
    pub close: bool,
}

impl Request {
    pub fn total(&self) -> usize {
        self.head_len + self.body_len
    }
}

/// Largest head accepted; the gateway's are a few hundred bytes.
const MAX_HEAD: usize = 64 * 1024;

/// The request at the start of `buf`: `Ok(None)` until all of it (body too) has arrived.
pub fn parse_request(buf: &[u8]) -> Result<Option<Request>, String> {
    let Some(end) = find_bytes(buf, b"\r\n\r\n") else {
        if buf.len() > MAX_HEAD {
            return Err("request head over 64 KiB".into());
        }
        return Ok(None);
    };
    let text = std::str::from_utf8(&buf[..end]).map_err(|_| "head is not UTF-8".to_string())?;
    let mut lines = text.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let http10 = request_line.ends_with("HTTP/1.0");
    if !http10 && !request_line.ends_with("HTTP/1.1") {
        return Err(format!("bad request line: {request_line:?}"));
    }
    let mut body_len = 0;
    let mut close = http10;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            body_len = value
                .parse()
                .map_err(|_| format!("bad content-length {value:?}"))?;
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            // The gateway always sends a length; a chunked body would be a change worth seeing.
            return Err(format!("unsupported transfer-encoding {value:?}"));
        } else if name.eq_ignore_ascii_case("connection") {
            let v = value.to_ascii_lowercase();
            close = v.contains("close") || (http10 && !v.contains("keep-alive"));
        }
    }
    let req = Request {
        head_len: end + 4,
        body_len,
        close,
    };
    Ok((buf.len() >= req.total()).then_some(req))
}

/// The send time (ns since the Unix epoch) in a body `"SEQ SEND_NS ..."`; only the first
/// bytes are looked at, so a 4 KB body costs no more than a 100 B one.
pub fn send_stamp(body: &[u8]) -> Option<u64> {
    let head = &body[..body.len().min(48)];
    let mut fields = head.split(|b| *b == b' ');
    fields.next()?;
    let stamp = fields.next()?;
    if stamp.is_empty() || stamp.len() > 20 || !stamp.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(stamp).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const REQ: &[u8] = b"POST /hook HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello";

    #[test]
    fn a_request_is_complete_only_with_its_body() {
        for cut in 0..REQ.len() {
            assert_eq!(parse_request(&REQ[..cut]), Ok(None), "cut at {cut}");
        }
        let r = parse_request(REQ).unwrap().unwrap();
        assert_eq!((r.total(), r.body_len, r.close), (REQ.len(), 5, false));
        let mut two = REQ.to_vec();
        two.extend_from_slice(REQ);
        assert_eq!(parse_request(&two).unwrap().unwrap().total(), REQ.len());
    }

    #[test]
    fn connection_close_and_chunked() {
        let close = b"POST / HTTP/1.1\r\nConnection: Close\r\n\r\n";
        assert!(parse_request(close).unwrap().unwrap().close);
        assert!(
            parse_request(b"POST / HTTP/1.0\r\n\r\n")
                .unwrap()
                .unwrap()
                .close
        );
        let chunked = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert!(parse_request(chunked).is_err());
        assert!(parse_request(b"GARBAGE\r\n\r\n").is_err());
    }

    #[test]
    fn send_stamp_reads_the_second_field() {
        assert_eq!(
            send_stamp(b"7 1764460800123456789 xxxx"),
            Some(1_764_460_800_123_456_789)
        );
        assert_eq!(send_stamp(b"hello"), None);
        assert_eq!(send_stamp(b"1 2x3 x"), None);
        assert_eq!(send_stamp(b""), None);
    }
}
