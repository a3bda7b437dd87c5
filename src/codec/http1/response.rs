//! Serializing complete HTTP/1.1 responses (status line, headers, body) into a byte buffer.

use super::HttpError;

/// Serialize a complete response. `keep_alive=false` adds `Connection: close`. Content-Length is
/// always sent, except for 1xx, 204 and 304: those never have a body (RFC 9110 §6.4.1), 1xx/204
/// must not carry Content-Length and on a 304 it would describe another response; their `body`
/// and `content_type` are ignored. An empty `content_type` omits the field.
///
/// Header names and values are the caller's, but any CR or LF in them is replaced by a space so
/// that a value built from client input can never inject a header or end the head early.
pub fn write_response(
    out: &mut Vec<u8>,
    status: u16,
    content_type: &str,
    extra_headers: &[(&str, &str)],
    body: &[u8],
    keep_alive: bool,
) {
    write_response_head(
        out,
        status,
        content_type,
        extra_headers,
        body.len(),
        keep_alive,
    );
    if !is_bodiless(status) {
        out.extend_from_slice(body);
    }
}

/// 1xx, 204 and 304 never have a body (RFC 9110 §6.4.1).
fn is_bodiless(status: u16) -> bool {
    matches!(status, 100..=199 | 204 | 304)
}

/// The status line and header fields of [`write_response`], announcing a body of `body_len`
/// bytes without writing it: the answer to a `HEAD` request, which carries the headers a `GET`
/// would get and no body (RFC 9110 §9.3.2). Writing the body anyway would make a keep-alive
/// client read it as the start of the next response.
pub fn write_response_head(
    out: &mut Vec<u8>,
    status: u16,
    content_type: &str,
    extra_headers: &[(&str, &str)],
    body_len: usize,
    keep_alive: bool,
) {
    let bodiless = is_bodiless(status);
    out.reserve(128 + body_len);
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(itoa::Buffer::new().format(status).as_bytes());
    out.push(b' ');
    out.extend_from_slice(status_reason(status).as_bytes());
    out.extend_from_slice(b"\r\n");
    if !content_type.is_empty() && !bodiless {
        write_header(out, "Content-Type", content_type);
    }
    if !bodiless {
        write_header(out, "Content-Length", itoa::Buffer::new().format(body_len));
    }
    for (name, value) in extra_headers {
        write_header(out, name, value);
    }
    if !keep_alive {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// The short error answer for a bad request: status from `err`, body `err.reason()` plus a
/// newline, `text/plain`, `Connection: close` (the framing of anything after it is unknown).
pub fn write_error(out: &mut Vec<u8>, err: &HttpError) {
    let reason = err.reason();
    let mut body = Vec::with_capacity(reason.len() + 1);
    body.extend_from_slice(reason.as_bytes());
    body.push(b'\n');
    write_response(
        out,
        err.status(),
        "text/plain; charset=utf-8",
        &[],
        &body,
        false,
    );
}

/// The interim answer to `Expect: 100-continue` (see `RequestDecoder::take_continue`).
pub fn write_continue(out: &mut Vec<u8>) {
    out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
}

fn write_header(out: &mut Vec<u8>, name: &str, value: &str) {
    let clean = |b: &u8| if matches!(b, b'\r' | b'\n') { b' ' } else { *b };
    out.extend(name.as_bytes().iter().map(clean));
    out.extend_from_slice(b": ");
    out.extend(value.as_bytes().iter().map(clean));
    out.extend_from_slice(b"\r\n");
}

/// The reason phrase for a status code; "" for codes we never send (an empty reason phrase is
/// valid HTTP/1.1).
pub fn status_reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        417 => "Expectation Failed",
        422 => "Unprocessable Content",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}
