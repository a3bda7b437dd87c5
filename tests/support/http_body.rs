//! Writing an HTTP/1.1 message body for the codec property tests: `Content-Length`, or chunked
//! with the chunk sizes given (cycled), the size line chosen by the caller, and an optional
//! trailer. Included by `tests/http_codec_props.rs` and `tests/http_response_props.rs`.

/// Append the framing header, the blank line and `body` framed as `chunks` says.
pub fn encode_body(
    out: &mut Vec<u8>,
    body: &[u8],
    chunks: Option<&[usize]>,
    trailer: bool,
    size_line: impl Fn(usize) -> String,
) {
    let Some(sizes) = chunks else {
        out.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
        out.extend_from_slice(body);
        return;
    };
    out.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
    let mut rest = body;
    for size in sizes.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (chunk, tail) = rest.split_at((*size).min(rest.len()));
        out.extend_from_slice(size_line(chunk.len()).as_bytes());
        out.extend_from_slice(chunk);
        out.extend_from_slice(b"\r\n");
        rest = tail;
    }
    out.extend_from_slice(b"0\r\n");
    if trailer {
        out.extend_from_slice(b"X-Checksum: abc\r\n");
    }
    out.extend_from_slice(b"\r\n");
}
