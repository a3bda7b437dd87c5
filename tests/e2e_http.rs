//! End-to-end HTTP behaviour beyond single requests: pipelining, keep-alive, the idle and
//! slow-request timeouts, and configuration errors reported by the real binary at start.

mod common;

use std::io::{Read, Write};
use std::process::Command;
use std::time::{Duration, Instant};

use common::http::{connect, read_response};
use common::{parse_ids, Gateway};

#[test]
fn pipelined_requests_get_answers_in_order() {
    let gw = Gateway::start(&[]);
    let mut s = connect(gw.addr()).expect("connect");
    let one = "POST /topics/pipe/events HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\none";
    let two = "POST /topics/pipe/events HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\ntwo";
    let health = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    // All three in one write: the gateway must answer each, in order, on the same connection.
    s.write_all(format!("{one}{two}{health}").as_bytes())
        .expect("write");
    let mut buf = Vec::new();
    let mut ids = Vec::new();
    for _ in 0..2 {
        let r = read_response(&mut s, &mut buf, false).expect("publish answer");
        assert_eq!(r.status, 200, "{}", r.text());
        ids.extend(parse_ids(&r.text()).expect("ids in the answer"));
    }
    let r = read_response(&mut s, &mut buf, false).expect("healthz answer");
    assert_eq!(
        (r.status, r.text().trim().to_owned()),
        (200, "ok".to_owned())
    );
    assert_eq!(ids.len(), 2);
    assert_ne!(ids[0], ids[1]);
}

#[test]
fn idle_keep_alive_connection_is_closed_after_idle_timeout() {
    let gw = Gateway::start(&["--set", "http.idle_timeout_ms=300"]);
    let mut s = connect(gw.addr()).expect("connect");
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("write");
    let mut buf = Vec::new();
    assert_eq!(
        read_response(&mut s, &mut buf, false)
            .expect("answer")
            .status,
        200
    );
    let start = Instant::now();
    let mut byte = [0u8; 1];
    let n = s.read(&mut byte).expect("read until close");
    assert_eq!(n, 0, "idle connection should be closed by the server");
    let waited = start.elapsed();
    assert!(
        waited < Duration::from_secs(3),
        "closed only after {waited:?}"
    );
}

#[test]
fn slow_request_head_gets_408() {
    let gw = Gateway::start(&["--set", "http.header_timeout_ms=300"]);
    let mut s = connect(gw.addr()).expect("connect");
    // Half a request head, then nothing.
    s.write_all(b"POST /topics/slow/events HTTP/1.1\r\nHost: x\r\n")
        .expect("write");
    let mut buf = Vec::new();
    let r = read_response(&mut s, &mut buf, true).expect("an answer before the close");
    assert_eq!(r.status, 408, "{}", r.text());
    assert!(r.text().contains("in time"), "{}", r.text());
}

#[test]
fn unknown_config_key_stops_the_start_naming_the_key() {
    let out = Command::new(env!("CARGO_BIN_EXE_sluicegate"))
        .args(["--listen", "127.0.0.1:1", "--set", "sse.heartbeat_msx=5"])
        .output()
        .expect("run the binary");
    assert_eq!(out.status.code(), Some(2), "exit status");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("sse.heartbeat_msx"), "stderr: {err}");
}

#[test]
fn bad_config_value_from_env_stops_the_start_naming_the_key() {
    let out = Command::new(env!("CARGO_BIN_EXE_sluicegate"))
        .args(["--listen", "127.0.0.1:1"])
        .env("SLUICEGATE__SSE__HEARTBEAT_MS", "soon")
        .output()
        .expect("run the binary");
    assert_eq!(out.status.code(), Some(2), "exit status");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("sse.heartbeat_ms") && err.contains("SLUICEGATE__SSE__HEARTBEAT_MS"),
        "stderr: {err}"
    );
}

#[test]
fn port_in_use_is_a_clear_start_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_sluicegate"))
        .args([
            "--listen",
            &addr,
            "--shards",
            "1",
            "--set",
            "storage.mode=memory",
        ])
        .output()
        .expect("run the binary");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot listen on") && err.contains(&addr),
        "stderr: {err}"
    );
}

#[test]
fn connections_over_the_per_shard_cap_get_503() {
    let gw = Gateway::start(&["--set", "http.max_connections_per_shard=2"]);
    let _a = common::SseClient::connect(gw.addr(), "/topics/cap/events", &[]);
    let _b = common::SseClient::connect(gw.addr(), "/topics/cap/events", &[]);
    let r = common::http_request(gw.addr(), "GET", "/healthz", &[], b"").expect("an answer");
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.header("retry-after"), Some("1"));
}

#[test]
fn subscribe_with_an_accept_that_excludes_event_stream_is_406() {
    let gw = Gateway::start(&[]);
    let r = common::http_request(
        gw.addr(),
        "GET",
        "/topics/a/events",
        &[("Accept", "application/json")],
        b"",
    )
    .expect("an answer");
    assert_eq!(r.status, 406, "{}", r.text());
}

/// `HEAD` gets the `GET`'s status and headers and no body, so a keep-alive client reads the next
/// answer from the right offset (a body here would be taken for the start of the next response).
#[test]
fn head_answers_carry_no_body_and_keep_alive_stays_in_step() {
    let gw = Gateway::start(&[]);
    let mut s = connect(gw.addr()).expect("connect");
    let requests = "HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n\
                    HEAD /no/such/path HTTP/1.1\r\nHost: x\r\n\r\n\
                    GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    s.write_all(requests.as_bytes()).expect("write");
    let mut buf = Vec::new();
    let mut heads = Vec::new();
    for _ in 0..2 {
        let len = common::http::read_head(&mut s, &mut buf).expect("HEAD answer");
        let (status, headers) = common::http::parse_head(&buf[..len]).expect("head parses");
        buf.drain(..len);
        heads.push((status, headers));
    }
    assert_eq!(heads[0].0, 200);
    assert_eq!(
        common::http::find_header(&heads[0].1, "content-length"),
        Some("3"),
        "HEAD announces the GET's body length"
    );
    assert_eq!(heads[1].0, 404);
    // Right after the two bodiless answers comes the GET's answer, not a stray body.
    let r = read_response(&mut s, &mut buf, false).expect("GET answer after the HEADs");
    assert_eq!(
        (r.status, r.text()),
        (200, "ok\n".to_owned()),
        "the GET's answer is read from the right offset"
    );
}
