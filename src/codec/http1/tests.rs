//! Unit tests for the request decoder and response writer: one per error status, plus framing,
//! keep-alive, pipelining and byte-at-a-time feeding.

use super::*;

fn decode_all(input: &[u8], limits: Limits) -> Result<Vec<Request>, HttpError> {
    let mut dec = RequestDecoder::new(limits);
    let mut buf = BytesMut::from(input);
    let mut out = Vec::new();
    while let Some(req) = dec.decode(&mut buf)? {
        out.push(req);
    }
    Ok(out)
}

fn one(input: &[u8]) -> Request {
    let mut reqs = decode_all(input, Limits::default()).expect("valid request");
    assert_eq!(reqs.len(), 1, "expected exactly one request");
    reqs.remove(0)
}

fn err(input: &[u8], limits: Limits) -> HttpError {
    decode_all(input, limits).expect_err("expected an error")
}

fn status(input: &[u8]) -> u16 {
    err(input, Limits::default()).status()
}

#[test]
fn simple_get() {
    let r = one(b"GET /topics/a/events?x=1&y=2 HTTP/1.1\r\nHost: h\r\nX-Thing:  v \r\n\r\n");
    assert_eq!(r.method, Method::Get);
    assert_eq!(r.target, "/topics/a/events?x=1&y=2");
    assert_eq!(r.path(), "/topics/a/events");
    assert_eq!(r.query(), "x=1&y=2");
    assert_eq!(r.minor_version, 1);
    assert_eq!(r.header("host"), Some(&b"h"[..]));
    assert_eq!(r.header_str("x-thing"), Some("v"));
    assert_eq!(r.header("missing"), None);
    assert!(r.keep_alive);
    assert!(r.body.is_empty());
}

#[test]
fn header_names_lowercased_and_first_match() {
    let r = one(b"GET / HTTP/1.1\r\nX-A: 1\r\nHost: h\r\nx-a: 2\r\n\r\n");
    assert_eq!(r.headers[0].0, "x-a");
    assert_eq!(r.header("x-a"), Some(&b"1"[..]));
    assert_eq!(r.query(), "");
}

#[test]
fn methods() {
    for (text, m) in [
        ("GET", Method::Get),
        ("HEAD", Method::Head),
        ("POST", Method::Post),
        ("PUT", Method::Put),
        ("DELETE", Method::Delete),
        ("OPTIONS", Method::Options),
        ("PATCH", Method::Patch),
        ("TRACE", Method::Other),
        ("get", Method::Other),
    ] {
        let r = one(format!("{text} / HTTP/1.1\r\nHost: h\r\n\r\n").as_bytes());
        assert_eq!(r.method, m, "{text}");
    }
}

#[test]
fn keep_alive_rules() {
    assert!(!one(b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n").keep_alive);
    assert!(!one(b"GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, CLOSE\r\n\r\n").keep_alive);
    assert!(!one(b"GET / HTTP/1.0\r\n\r\n").keep_alive);
    assert!(one(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").keep_alive);
    assert_eq!(one(b"GET / HTTP/1.0\r\n\r\n").minor_version, 0);
}

#[test]
fn content_length_body_and_pipelining() {
    let reqs = decode_all(
        b"POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhelloGET /b HTTP/1.1\r\nHost: h\r\n\r\n\r\nPUT /c HTTP/1.1\r\nHost: h\r\nContent-Length: 2, 2\r\nContent-Length: 2\r\n\r\nok",
        Limits::default(),
    )
    .expect("valid");
    assert_eq!(reqs.len(), 3);
    assert_eq!(&reqs[0].body[..], b"hello");
    assert_eq!(reqs[1].target, "/b");
    assert_eq!(&reqs[2].body[..], b"ok");
}

#[test]
fn chunked_body_with_extensions_and_trailers() {
    let r = one(
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5;name=val\r\nhello\r\nA \t; x\r\n, world!!!\r\n0\r\nX-Trailer: t\r\n\r\n",
    );
    assert_eq!(&r.body[..], b"hello, world!!!");
    let r = one(b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: Chunked\r\n\r\n0\r\n\r\n");
    assert!(r.body.is_empty());
}

#[test]
fn byte_at_a_time_equals_whole() {
    let input: &[u8] = b"\r\nPOST /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\nT: 1\r\n\r\nGET /y?q HTTP/1.0\r\n\r\nPOST /z HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nxyz";
    let whole = decode_all(input, Limits::default()).expect("valid");
    let mut dec = RequestDecoder::default();
    let mut buf = BytesMut::new();
    let mut pieces = Vec::new();
    for &b in input {
        buf.extend_from_slice(&[b]);
        while let Some(r) = dec.decode(&mut buf).expect("valid") {
            pieces.push(r);
        }
    }
    assert_eq!(whole.len(), 3);
    assert_eq!(whole, pieces);
    assert!(buf.is_empty());
}

#[test]
fn incomplete_is_none_not_error() {
    let mut dec = RequestDecoder::default();
    let mut buf = BytesMut::from(&b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\nab"[..]);
    assert_eq!(dec.decode(&mut buf), Ok(None));
    buf.extend_from_slice(b"cd");
    let r = dec.decode(&mut buf).expect("ok").expect("complete");
    assert_eq!(&r.body[..], b"abcd");
}

#[test]
fn expect_continue_reported_once_while_body_missing() {
    let mut dec = RequestDecoder::default();
    let mut buf = BytesMut::from(
        &b"POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n"[..],
    );
    assert_eq!(dec.decode(&mut buf), Ok(None));
    assert!(dec.take_continue());
    assert!(!dec.take_continue());
    buf.extend_from_slice(b"hi");
    assert!(dec.decode(&mut buf).expect("ok").is_some());
}

#[test]
fn status_400_cases() {
    let cases: &[&[u8]] = &[
        b"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: abc\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: +5\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 6\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5 \r\nhello\r\n0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloX\r\n0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\rX0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nT: 1\n\r\n",
        b"GET / HTTP/1.1\r\nHost: h\r\nBad Header: x\r\n\r\n",
        b" GET / HTTP/1.1\r\nHost: h\r\n\r\n",
        b"GET\r\n\r\n",
        b"GET / HTTX/1.1\r\n\r\n",
        b"GET  HTTP/1.1\r\nHost: h\r\n\r\n",
        b"AVERYVERYVERYLONGMETHODNAME / HTTP/1.1\r\nHost: h\r\n\r\n",
    ];
    for case in cases {
        let e = err(case, Limits::default());
        assert_eq!(
            e.status(),
            400,
            "{:?} gave {e:?}",
            String::from_utf8_lossy(case)
        );
    }
    assert_eq!(
        status(b"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"),
        400
    );
    assert_eq!(
        err(
            b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloX",
            Limits::default()
        ),
        HttpError::MissingChunkCrlf
    );
}

#[test]
fn status_413_from_content_length_before_body_arrives() {
    let limits = Limits {
        max_body_bytes: 10,
        ..Limits::default()
    };
    let mut dec = RequestDecoder::new(limits);
    let mut buf = BytesMut::from(&b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\n"[..]);
    assert_eq!(
        dec.decode(&mut buf),
        Err(HttpError::BodyTooLarge { max: 10 })
    );
    assert_eq!(
        status(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999999\r\n\r\n"),
        413
    );
}

#[test]
fn status_413_from_chunk_size_before_data_arrives() {
    let limits = Limits {
        max_body_bytes: 10,
        ..Limits::default()
    };
    let mut dec = RequestDecoder::new(limits.clone());
    // 6 + 5 = 11 > 10: refused on the second size line, no data needed.
    let mut buf = BytesMut::from(
        &b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nabcdef\r\n5"[..],
    );
    assert_eq!(dec.decode(&mut buf).map_err(|e| e.status()), Err(413));
    // A single enormous size is refused while its digits are still arriving.
    let e = err(
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffffffffff",
        limits,
    );
    assert_eq!(e.status(), 413);
    // Exactly at the limit is fine.
    let ok = decode_all(
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nabcdef\r\n4\r\nghij\r\n0\r\n\r\n",
        Limits { max_body_bytes: 10, ..Limits::default() },
    )
    .expect("at limit");
    assert_eq!(&ok[0].body[..], b"abcdefghij");
}

#[test]
fn status_414_even_before_head_ends() {
    let limits = Limits {
        max_uri_bytes: 10,
        ..Limits::default()
    };
    assert_eq!(
        err(
            b"GET /0123456789 HTTP/1.1\r\nHost: h\r\n\r\n",
            limits.clone()
        )
        .status(),
        414
    );
    assert_eq!(err(b"GET /0123456789", limits.clone()).status(), 414);
    assert!(decode_all(
        b"GET /012345678 HTTP/1.1\r\nHost: h\r\n\r\n",
        limits.clone()
    )
    .is_ok());
    // Longer than the head limit too: still 414, because the target is looked at first.
    let mut big = b"GET /".to_vec();
    big.extend(std::iter::repeat_n(b'a', 20_000));
    assert_eq!(err(&big, Limits::default()).status(), 414);
}

#[test]
fn status_431_head_and_header_count_and_trailers() {
    let limits = Limits {
        max_head_bytes: 64,
        max_headers: 2,
        ..Limits::default()
    };
    let mut long = b"GET / HTTP/1.1\r\nHost: h\r\nX: ".to_vec();
    long.extend(std::iter::repeat_n(b'v', 100));
    assert_eq!(err(&long, limits.clone()).status(), 431);
    long.extend_from_slice(b"\r\n\r\n");
    assert_eq!(err(&long, limits.clone()).status(), 431);
    let many = b"GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
    assert_eq!(
        err(many, limits.clone()),
        HttpError::TooManyHeaders { max: 2 }
    );
    let mut trailers =
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nT: ".to_vec();
    trailers.extend(std::iter::repeat_n(b't', 40));
    assert_eq!(err(&trailers, limits).status(), 431);
}

#[test]
fn head_exactly_at_limit_is_accepted() {
    let input = b"GET / HTTP/1.1\r\nHost: h\r\n\r\n";
    let limits = Limits {
        max_head_bytes: input.len(),
        ..Limits::default()
    };
    assert!(decode_all(input, limits.clone()).is_ok());
    let limits = Limits {
        max_head_bytes: input.len() - 1,
        ..limits
    };
    assert_eq!(err(input, limits).status(), 431);
}

#[test]
fn status_501_for_other_transfer_codings() {
    assert_eq!(
        status(b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n"),
        501
    );
    assert_eq!(
        status(b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"),
        501
    );
    assert_eq!(
        status(
            b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"
        ),
        501
    );
}

#[test]
fn status_505_for_other_versions() {
    assert_eq!(status(b"GET / HTTP/2.0\r\n\r\n"), 505);
    assert_eq!(status(b"GET / HTTP/1.2\r\n\r\n"), 505);
}

#[test]
fn error_resets_decoder() {
    let mut dec = RequestDecoder::default();
    let mut buf = BytesMut::from(&b"GET / HTTP/9.9\r\n\r\n"[..]);
    assert!(dec.decode(&mut buf).is_err());
    let mut buf = BytesMut::from(&b"GET /ok HTTP/1.1\r\nHost: h\r\n\r\n"[..]);
    assert_eq!(
        dec.decode(&mut buf).expect("ok").map(|r| r.target),
        Some("/ok".to_owned())
    );
}

#[test]
fn response_serialization() {
    let mut out = Vec::new();
    write_response(
        &mut out,
        201,
        "application/json",
        &[("Location", "/x\r\nEvil: 1")],
        b"{}",
        true,
    );
    assert_eq!(
        out,
        b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 2\r\nLocation: /x  Evil: 1\r\n\r\n{}"
    );
    out.clear();
    write_response(&mut out, 204, "text/plain", &[], b"ignored", false);
    assert_eq!(out, b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
}

#[test]
fn error_serialization() {
    let mut out = Vec::new();
    write_error(&mut out, &HttpError::UriTooLong { max: 8 });
    let text = String::from_utf8(out).expect("ascii");
    assert!(text.starts_with("HTTP/1.1 414 URI Too Long\r\n"), "{text}");
    assert!(text.contains("Content-Type: text/plain"));
    assert!(text.contains("Connection: close\r\n"));
    assert!(text.ends_with("\r\n\r\nrequest target too long\n"));
    assert!(text.contains("Content-Length: 24\r\n"));
}

#[test]
fn status_reasons_cover_the_list() {
    for s in [
        200, 201, 202, 204, 400, 401, 403, 404, 405, 406, 408, 409, 413, 414, 415, 429, 431, 500,
        501, 503, 505,
    ] {
        assert!(!status_reason(s).is_empty(), "{s}");
    }
    assert_eq!(status_reason(429), "Too Many Requests");
}

#[test]
fn bare_lf_line_endings_are_refused() {
    // The smuggling shape: a proxy splitting on CRLF sees one header `X-A` and no chunked body.
    let smuggle = b"POST /topics/t/events HTTP/1.1\r\nHost: x\r\nX-A: 1\nTransfer-Encoding: chunked\r\n\r\n9\r\nSMUGGLED!\r\n0\r\n\r\n";
    assert_eq!(err(smuggle, Limits::default()), HttpError::BareLineFeed);
    assert_eq!(status(smuggle), 400);
    // A whole request with bare LF line endings.
    let all_lf = b"POST /topics/t/events HTTP/1.1\nHost: x\nContent-Length: 2\n\nhi";
    assert_eq!(err(all_lf, Limits::default()), HttpError::BareLineFeed);
    // Only the empty line ends with a bare LF, and a stray bare LF before the request line.
    assert_eq!(
        err(b"GET / HTTP/1.1\r\nHost: h\r\n\n", Limits::default()),
        HttpError::BareLineFeed
    );
    assert_eq!(
        err(b"\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", Limits::default()),
        HttpError::BareLineFeed
    );
    // Refused as soon as the bare LF arrives, not when the head limit runs out.
    let mut dec = RequestDecoder::default();
    let mut buf = BytesMut::from(&b"GET / HTTP/1.1\nHost"[..]);
    assert_eq!(dec.decode(&mut buf), Err(HttpError::BareLineFeed));
}

#[test]
fn host_header_rules() {
    assert_eq!(status(b"GET / HTTP/1.1\r\n\r\n"), 400);
    assert_eq!(
        err(b"GET / HTTP/1.1\r\n\r\n", Limits::default()),
        HttpError::MissingHost
    );
    assert_eq!(
        err(
            b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
            Limits::default()
        ),
        HttpError::DuplicateHost
    );
    assert_eq!(
        err(
            b"GET / HTTP/1.0\r\nHost: a\r\nhost: a\r\n\r\n",
            Limits::default()
        ),
        HttpError::DuplicateHost
    );
    // HTTP/1.0 does not require Host.
    assert_eq!(one(b"GET / HTTP/1.0\r\n\r\n").minor_version, 0);
}
