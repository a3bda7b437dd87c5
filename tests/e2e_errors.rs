//! End-to-end error answers: each bad request gets its status with a short text/plain body, and
//! the gateway is still alive and serving afterwards.

mod common;

use common::{http_request, send_raw, Gateway, Response};

/// Asserts `r` is an error answer with `status` and a short plain-text body, then that the
/// gateway still serves.
fn assert_error(gw: &mut Gateway, what: &str, r: std::io::Result<Response>, status: u16) {
    let r = r.unwrap_or_else(|e| panic!("{what}: no response ({e}); log:\n{}", gw.log()));
    assert_eq!(r.status, status, "{what}: body {:?}", r.text());
    let ct = r.header("content-type").unwrap_or("");
    assert!(ct.starts_with("text/plain"), "{what}: content-type {ct:?}");
    assert!(
        !r.body.is_empty() && r.body.len() < 1024,
        "{what}: body {:?}",
        r.text()
    );
    gw.assert_alive();
}

#[test]
fn bad_topic_name_is_400() {
    let mut gw = Gateway::start(&[]);
    let r = http_request(gw.addr(), "POST", "/topics/bad%20name/events", &[], b"x");
    assert_error(&mut gw, "publish to bad topic", r, 400);
    let r = http_request(
        gw.addr(),
        "GET",
        "/topics/bad%20name/events",
        &[("Accept", "text/event-stream")],
        b"",
    );
    assert_error(&mut gw, "subscribe to bad topic", r, 400);
}

#[test]
fn unknown_path_is_404() {
    let mut gw = Gateway::start(&[]);
    let r = http_request(gw.addr(), "GET", "/no/such/thing", &[], b"");
    assert_error(&mut gw, "unknown path", r, 404);
}

#[test]
fn wrong_method_is_405() {
    let mut gw = Gateway::start(&[]);
    let r = http_request(gw.addr(), "DELETE", "/topics/a/events", &[], b"");
    assert_error(&mut gw, "DELETE events", r, 405);
    let r = http_request(gw.addr(), "POST", "/healthz", &[], b"");
    assert_error(&mut gw, "POST healthz", r, 405);
}

#[test]
fn body_over_limit_is_413() {
    let mut gw = Gateway::start(&["--set", "http.max_body_bytes=1024"]);
    let body = vec![b'x'; 4096];
    let r = http_request(gw.addr(), "POST", "/topics/big/events", &[], &body);
    assert_error(&mut gw, "large body", r, 413);
    // At the limit is fine.
    gw.publish("big", &"y".repeat(1024));
}

#[test]
fn uri_over_limit_is_414() {
    let mut gw = Gateway::start(&["--set", "http.max_uri_bytes=256"]);
    let path = format!("/topics/{}/events", "a".repeat(1000));
    let r = http_request(
        gw.addr(),
        "GET",
        &path,
        &[("Accept", "text/event-stream")],
        b"",
    );
    assert_error(&mut gw, "long uri", r, 414);
}

#[test]
fn head_over_limit_is_431() {
    let mut gw = Gateway::start(&["--set", "http.max_head_bytes=2048"]);
    let pad = "p".repeat(4000);
    let r = http_request(gw.addr(), "GET", "/healthz", &[("X-Pad", &pad)], b"");
    assert_error(&mut gw, "large head", r, 431);
}

#[test]
fn garbage_request_line_is_400() {
    let mut gw = Gateway::start(&[]);
    let r = send_raw(gw.addr(), b"this is not http at all\r\n\r\n");
    assert_error(&mut gw, "garbage request line", r, 400);
}

#[test]
fn malformed_bytes_do_not_kill_the_gateway() {
    let mut gw = Gateway::start(&[]);
    let inputs: [&[u8]; 8] = [
        b"\x00\x01\x02\xff\xfe\r\n\r\n",
        b"GET\r\n\r\n",
        b"GET / HTTP/9.9\r\n\r\n",
        b"POST /topics/a/events HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
        b"POST /topics/a/events HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n",
        b"POST /topics/a/events HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"GET /topics/a/events HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
        b"GET /%ZZ HTTP/1.1\r\nHost: x\r\n\r\n",
    ];
    for input in inputs {
        // Any answer (or a close) is acceptable here; what matters is that the server lives.
        if let Ok(r) = send_raw(gw.addr(), input) {
            assert!(
                (400..500).contains(&r.status) || r.status == 501 || r.status == 505,
                "{:?} answered {}",
                String::from_utf8_lossy(input),
                r.status
            );
        }
        gw.assert_alive();
    }
}

/// The request-smuggling shape of a bare LF inside a head: a proxy that splits lines on CRLF
/// sees one header `X-A` and no chunked body; the gateway must not read `Transfer-Encoding`.
#[test]
fn bare_lf_in_a_head_is_400_and_nothing_is_published() {
    let mut gw = Gateway::start(&[]);
    let mut sub = common::sse::SseClient::connect(gw.addr(), "/topics/t/events", &[]);
    let smuggle = b"POST /topics/t/events HTTP/1.1\r\nHost: x\r\nX-A: 1\nTransfer-Encoding: chunked\r\n\r\n9\r\nSMUGGLED!\r\n0\r\n\r\n";
    let r = send_raw(gw.addr(), smuggle);
    assert_error(&mut gw, "bare LF before Transfer-Encoding", r, 400);
    let all_lf = b"POST /topics/t/events HTTP/1.1\nHost: x\nContent-Length: 5\n\nplain";
    let r = send_raw(gw.addr(), all_lf);
    assert_error(&mut gw, "bare LF line endings", r, 400);
    // A marker published properly is the first (and only) event the subscriber sees.
    gw.publish("t", "marker");
    let events = sub.expect_events(1, std::time::Duration::from_secs(10));
    assert_eq!(events[0].data, "marker");
    assert!(sub
        .events_for(std::time::Duration::from_millis(200))
        .is_empty());
}

/// RFC 9112 §3.2: an HTTP/1.1 request without `Host`, or any request with two, is a 400.
#[test]
fn missing_or_repeated_host_is_400() {
    let mut gw = Gateway::start(&[]);
    let r = send_raw(gw.addr(), b"GET /healthz HTTP/1.1\r\n\r\n");
    assert_error(&mut gw, "no Host", r, 400);
    let r = send_raw(
        gw.addr(),
        b"GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    );
    assert_error(&mut gw, "two Host headers", r, 400);
    let r = send_raw(gw.addr(), b"GET /healthz HTTP/1.0\r\n\r\n").expect("HTTP/1.0 answer");
    assert_eq!(r.status, 200, "HTTP/1.0 needs no Host");
}
