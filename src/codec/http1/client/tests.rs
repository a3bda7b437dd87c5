//! Unit tests: request encoding, each body framing, interim responses, reusability, and one
//! test per `ResponseError`.
use super::*;

const KEPT: usize = 16;
const MAX: usize = 1024;

fn decoder() -> ResponseDecoder {
    ResponseDecoder::new(KEPT, MAX)
}

/// Decode `raw` fed one byte at a time; then, if nothing came out, signal EOF.
fn decode_bytewise(raw: &[u8], eof: bool) -> Result<Option<Response>, ResponseError> {
    let mut dec = decoder();
    let mut buf = BytesMut::new();
    for &b in raw {
        buf.extend_from_slice(&[b]);
        if let Some(r) = dec.decode(&mut buf)? {
            return Ok(Some(r));
        }
    }
    if eof {
        return dec.finish_eof(&mut buf).map(Some);
    }
    Ok(None)
}

fn decode_all(raw: &[u8]) -> Result<Response, ResponseError> {
    let whole = {
        let mut buf = BytesMut::from(raw);
        let mut dec = decoder();
        match dec.decode(&mut buf) {
            Ok(Some(r)) => Ok(r),
            Ok(None) => dec.finish_eof(&mut buf),
            Err(e) => Err(e),
        }
    };
    let bytewise = decode_bytewise(raw, true).map(|r| r.expect("response or error"));
    assert_eq!(whole, bytewise, "whole and byte by byte agree");
    whole
}

fn err(raw: &str) -> ResponseError {
    decode_all(raw.as_bytes()).expect_err("must fail")
}

#[test]
fn encodes_a_post_with_host_headers_and_length() {
    let mut out = Vec::new();
    encode_request(
        &mut out,
        "POST",
        "example.com:8080",
        "/hook?a=1",
        &[("Content-Type", "application/json"), ("X-Sig", "v1,abc")],
        b"{}",
    );
    assert_eq!(
        out,
        b"POST /hook?a=1 HTTP/1.1\r\nHost: example.com:8080\r\nContent-Type: application/json\r\n\
          X-Sig: v1,abc\r\nContent-Length: 2\r\n\r\n{}"
    );
}

#[test]
fn get_without_body_has_no_length_but_empty_post_says_zero() {
    let mut get = Vec::new();
    encode_request(&mut get, "GET", "h", "/", &[], b"");
    assert_eq!(get, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    let mut post = Vec::new();
    encode_request(&mut post, "POST", "h", "/", &[], b"");
    assert_eq!(
        post,
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n"
    );
}

#[test]
fn content_length_body_is_kept_up_to_the_limit_and_read_to_the_end() {
    let body = "x".repeat(100);
    let raw = format!("HTTP/1.1 200 OK\r\nContent-Length: 100\r\nX-A: b\r\n\r\n{body}NEXT");
    let mut buf = BytesMut::from(raw.as_bytes());
    let r = decoder().decode(&mut buf).unwrap().unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(&r.body[..], "x".repeat(KEPT).as_bytes());
    assert_eq!(r.header("X-A"), Some("b"));
    assert!(r.reusable);
    assert_eq!(&buf[..], b"NEXT", "bytes after the body are left alone");
}

#[test]
fn chunked_body_with_extensions_and_trailers() {
    let raw = b"HTTP/1.1 202 Accepted\r\nTransfer-Encoding: chunked\r\n\r\n\
                5;name=val\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n";
    let r = decode_all(raw).unwrap();
    assert_eq!(r.status, 202);
    assert_eq!(&r.body[..], b"hello world");
    assert!(r.reusable);
}

#[test]
fn chunked_body_keeps_only_the_prefix() {
    let chunk = "y".repeat(40);
    let raw =
        format!("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n28\r\n{chunk}\r\n0\r\n\r\n");
    let r = decode_all(raw.as_bytes()).unwrap();
    assert_eq!(r.body.len(), KEPT);
}

#[test]
fn until_close_body_needs_eof_and_is_not_reusable() {
    let raw = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nsome body";
    assert_eq!(decode_bytewise(raw, false), Ok(None), "not done before EOF");
    let r = decode_all(raw).unwrap();
    assert_eq!(&r.body[..], b"some body");
    assert!(!r.reusable);
}

#[test]
fn non_chunked_transfer_coding_runs_to_the_close() {
    let r = decode_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nzz").unwrap();
    assert_eq!(&r.body[..], b"zz");
    assert!(!r.reusable);
}

#[test]
fn no_body_statuses_complete_at_the_head() {
    for status in ["204 No Content", "304 Not Modified"] {
        let raw = format!("HTTP/1.1 {status}\r\n\r\n");
        let r = decode_bytewise(raw.as_bytes(), false).unwrap().unwrap();
        assert!(r.body.is_empty() && r.reusable);
    }
}

#[test]
fn interim_responses_are_skipped() {
    let raw = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n\
                HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok";
    let r = decode_all(raw).unwrap();
    assert_eq!((r.status, &r.body[..]), (201, &b"ok"[..]));
}

#[test]
fn reusability_follows_connection_and_version() {
    let cases: [(&str, bool); 5] = [
        ("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", true),
        (
            "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
            false,
        ),
        ("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", false),
        (
            "HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n",
            true,
        ),
        (
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n",
            false,
        ),
    ];
    for (raw, reusable) in cases {
        assert_eq!(
            decode_all(raw.as_bytes()).unwrap().reusable,
            reusable,
            "{raw}"
        );
    }
}

#[test]
fn two_responses_on_one_connection() {
    let mut dec = decoder();
    let mut buf = BytesMut::from(&b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na"[..]);
    assert_eq!(&dec.decode(&mut buf).unwrap().unwrap().body[..], b"a");
    buf.extend_from_slice(b"HTTP/1.1 500 Oops\r\nContent-Length: 1\r\n\r\nb");
    let second = dec.decode(&mut buf).unwrap().unwrap();
    assert_eq!((second.status, &second.body[..]), (500, &b"b"[..]));
}

#[test]
fn lenient_about_bare_lf() {
    let r = decode_all(b"HTTP/1.1 200 OK\nContent-Length: 1\n\nz").unwrap();
    assert_eq!(&r.body[..], b"z");
}

#[test]
fn error_head_too_large() {
    let raw = format!("HTTP/1.1 200 OK\r\nX-Big: {}\r\n\r\n", "a".repeat(MAX_HEAD));
    assert_eq!(err(&raw), ResponseError::HeadTooLarge { max: MAX_HEAD });
}

#[test]
fn error_too_many_headers() {
    let fields: String = (0..65).map(|i| format!("X-{i}: v\r\n")).collect();
    let raw = format!("HTTP/1.1 200 OK\r\n{fields}\r\n");
    assert_eq!(err(&raw), ResponseError::TooManyHeaders { max: 64 });
}

#[test]
fn error_bad_status_line() {
    assert_eq!(err("HTTP/2.0 200 OK\r\n\r\n"), ResponseError::BadStatusLine);
    assert_eq!(err("HTTP/1.1 2x0 OK\r\n\r\n"), ResponseError::BadStatusLine);
    assert_eq!(err("SSH-2.0-OpenSSH\r\n\r\n"), ResponseError::BadStatusLine);
}

#[test]
fn error_bad_head() {
    assert_eq!(
        err("HTTP/1.1 200 OK\r\nBad Name: v\r\n\r\n"),
        ResponseError::BadHead("invalid header name")
    );
}

#[test]
fn error_unexpected_upgrade() {
    assert_eq!(
        err("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n"),
        ResponseError::UnexpectedUpgrade
    );
}

#[test]
fn error_bad_and_conflicting_content_length() {
    assert_eq!(
        err("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n"),
        ResponseError::BadContentLength
    );
    assert_eq!(
        err("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab"),
        ResponseError::ConflictingContentLength
    );
    // Identical repeats are one length.
    assert!(decode_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1, 1\r\n\r\na").is_ok());
}

#[test]
fn error_body_too_large_declared_chunked_and_until_close() {
    let too_large = ResponseError::BodyTooLarge { max: MAX };
    assert_eq!(
        err("HTTP/1.1 200 OK\r\nContent-Length: 1025\r\n\r\n"),
        too_large
    );
    let chunked = format!(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n200\r\n{0}\r\n201\r\n",
        "a".repeat(0x200)
    );
    assert_eq!(err(&chunked), too_large);
    let until_close = format!("HTTP/1.1 200 OK\r\n\r\n{}", "a".repeat(MAX + 1));
    assert_eq!(err(&until_close), too_large);
}

#[test]
fn error_chunk_framing() {
    let te = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    assert_eq!(err(&format!("{te}zz\r\n")), ResponseError::BadChunkSize);
    assert_eq!(
        err(&format!("{te}1\r\naXY")),
        ResponseError::MissingChunkCrlf
    );
    assert_eq!(err(&format!("{te}0\r\nX: y\n")), ResponseError::BadTrailer);
    let trailer = format!("{te}0\r\nX: {}\r\n\r\n", "t".repeat(MAX_HEAD));
    assert_eq!(
        err(&trailer),
        ResponseError::TrailersTooLarge { max: MAX_HEAD }
    );
}

#[test]
fn error_eof_in_head_and_body() {
    assert_eq!(err(""), ResponseError::EofInHead { received: 0 });
    assert_eq!(
        err("HTTP/1.1 200"),
        ResponseError::EofInHead { received: 12 }
    );
    assert_eq!(
        err("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nabc"),
        ResponseError::EofInBody { received: 3 }
    );
    assert_eq!(
        err("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n2\r\na"),
        ResponseError::EofInBody { received: 5 }
    );
}

#[test]
fn error_messages_say_what_went_wrong() {
    assert_eq!(
        ResponseError::BodyTooLarge { max: 1024 }.to_string(),
        "response body larger than 1024 bytes"
    );
    assert_eq!(
        ResponseError::EofInHead { received: 0 }.to_string(),
        "connection closed after 0 bytes of the response head"
    );
}
