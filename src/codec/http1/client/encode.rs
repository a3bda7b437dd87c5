//! Writing an outbound HTTP/1.1 request (the webhook client's side of the codec).

/// Append an HTTP/1.1 request to `out`: request line, `Host`, the given `headers` in order,
/// `Content-Length` when there is a body or the method is one that carries one, then `body`.
///
/// No `Connection` header is written: HTTP/1.1 is keep-alive unless someone says `close`, and
/// the client wants its connections kept. Nothing is refused here: the caller (the delivery
/// engine) validates header names and values; CR and LF are only asserted in debug builds,
/// since a line break in a value would let a subscriber's configured header inject a header of
/// its own choosing.
pub fn encode_request(
    out: &mut Vec<u8>,
    method: &str,
    host_header: &str,
    path_and_query: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) {
    debug_assert!(no_line_break(method) && no_line_break(path_and_query));
    debug_assert!(no_line_break(host_header));
    out.reserve(64 + host_header.len() + path_and_query.len() + body.len());
    out.extend_from_slice(method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(path_and_query.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\nHost: ");
    out.extend_from_slice(host_header.as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in headers {
        debug_assert!(
            no_line_break(name) && no_line_break(value),
            "{name}: {value:?}"
        );
        // The framing headers are this function's: a second Content-Length or Host would make
        // the receiver guess which one counts.
        debug_assert!(
            !["host", "content-length", "transfer-encoding"]
                .iter()
                .any(|f| name.eq_ignore_ascii_case(f)),
            "{name} is written by encode_request"
        );
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    // RFC 9110 §8.6: a POST/PUT/PATCH without a body still says 0, or some servers wait for
    // one (and some answer 411).
    if !body.is_empty() || matches!(method, "POST" | "PUT" | "PATCH") {
        let mut n = itoa::Buffer::new();
        out.extend_from_slice(b"Content-Length: ");
        out.extend_from_slice(n.format(body.len()).as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
}

fn no_line_break(s: &str) -> bool {
    !s.bytes().any(|b| b == b'\r' || b == b'\n')
}
