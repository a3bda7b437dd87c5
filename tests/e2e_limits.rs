//! End to end over loopback: token buckets and admission. Publish limits per principal and per
//! topic (429 with `Retry-After` and the `RateLimit` headers, 413 over the burst), connection
//! limits per client address, and the three egress modes (delay, drop with a notice,
//! disconnect).
//!
//! Every limit here is set so that a slow machine cannot change the outcome: refill rates are
//! far below what the test sends, and a wait for a refill is generous (a stall makes the test
//! slower, never wrong).
mod common;

use common::{config_file, http_request, Gateway, SseClient, EVENT_TIMEOUT};
use std::net::TcpStream;
use std::time::{Duration, Instant};

fn gateway_with(toml: &str) -> Gateway {
    let path = config_file(toml);
    Gateway::start(&["--config", &path])
}

fn post(gw: &Gateway, topic: &str, headers: &[(&str, &str)], body: &[u8]) -> common::Response {
    http_request(
        gw.addr(),
        "POST",
        &format!("/topics/{topic}/events"),
        headers,
        body,
    )
    .unwrap_or_else(|e| panic!("POST {topic}: {e}"))
}

#[test]
fn a_publisher_over_its_rate_gets_429_with_retry_after_and_ratelimit_headers() {
    // Two at once, then one every 10 s: the third publish cannot pass in any test run.
    let gw = gateway_with("[limits]\npublish_events = { per_s = 0.1, burst = 2 }\n");
    assert_eq!(post(&gw, "a", &[], b"1").status, 200);
    assert_eq!(
        post(&gw, "b", &[], b"2").status,
        200,
        "the limit is per principal, not per topic"
    );
    let r = post(&gw, "a", &[], b"3");
    assert_eq!(r.status, 429, "{}", r.text());
    let retry: u64 = r
        .header("retry-after")
        .unwrap_or("")
        .parse()
        .expect("Retry-After seconds");
    assert!((1..=10).contains(&retry), "Retry-After {retry}");
    assert_eq!(
        r.header("ratelimit-policy"),
        Some("\"publish-events\";q=2;w=20")
    );
    assert_eq!(
        r.header("ratelimit"),
        Some(format!("\"publish-events\";r=0;t={retry}").as_str())
    );
    assert!(r.text().contains("publish-events"), "{}", r.text());
    // A batch larger than the whole burst can never pass: 413, not 429.
    let gw = gateway_with("[limits]\ntopic_events = { per_s = 0.1, burst = 3 }\n");
    let r = post(
        &gw,
        "t",
        &[("Content-Type", "application/x-ndjson")],
        b"1\n2\n3\n4\n",
    );
    assert_eq!(r.status, 413, "{}", r.text());
    assert!(r.text().contains("burst"), "{}", r.text());
    let r = post(
        &gw,
        "t",
        &[("Content-Type", "application/x-ndjson")],
        b"1\n2\n3\n",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let r = post(&gw, "t", &[], b"4");
    assert_eq!(r.status, 429, "the topic's bucket is empty");
    assert_eq!(
        post(&gw, "other", &[], b"x").status,
        200,
        "other topics have their own"
    );
    let m = http_request(gw.addr(), "GET", "/metrics", &[], b"").unwrap();
    assert!(
        m.text()
            .contains("sluicegate_publishes_rate_limited_total{shard=\"0\"} 2"),
        "{}",
        m.text()
    );
}

#[test]
fn byte_limits_count_the_event_data() {
    let gw = gateway_with("[limits]\npublish_bytes = { per_s = 1, burst = 100 }\n");
    assert_eq!(post(&gw, "t", &[], &[b'x'; 60]).status, 200);
    let r = post(&gw, "t", &[], &[b'x'; 60]);
    assert_eq!(r.status, 429, "{}", r.text());
    assert!(r
        .header("ratelimit-policy")
        .is_some_and(|p| p.starts_with("\"publish-bytes\"")));
    assert_eq!(
        post(&gw, "t", &[], &[b'x'; 30]).status,
        200,
        "40 bytes were left"
    );
}

/// Opens a raw connection and sends a request head, so it counts as an open connection.
fn hold_connection(gw: &Gateway) -> TcpStream {
    use std::io::Write;
    let mut s = TcpStream::connect(gw.addr()).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).ok();
    // An SSE stream keeps the connection open.
    let req = format!(
        "GET /topics/held/events HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\n\r\n",
        gw.addr()
    );
    s.write_all(req.as_bytes()).expect("send");
    s
}

/// Waits until the gateway counts `n` open connections besides the one asking.
fn wait_open_connections(gw: &Gateway, n: usize) {
    let want = format!("sluicegate_connections_open{{shard=\"0\"}} {}", n + 1);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let m = http_request(gw.addr(), "GET", "/metrics", &[], b"").unwrap();
        if m.text().lines().any(|l| l == want) {
            return;
        }
        assert!(Instant::now() < deadline, "never {want}:\n{}", m.text());
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn one_address_may_hold_only_so_many_connections() {
    let gw = gateway_with("[limits]\nmax_connections_per_ip = 3\n");
    // The start's health checks are closed and released before counting starts.
    wait_open_connections(&gw, 0);
    let first = SseClient::connect(gw.addr(), "/topics/a/events", &[]);
    let _second = SseClient::connect(gw.addr(), "/topics/a/events", &[]);
    let _third = SseClient::connect(gw.addr(), "/topics/a/events", &[]);
    let r = http_request(gw.addr(), "GET", "/healthz", &[], b"").unwrap();
    assert_eq!(r.status, 429, "{}", r.text());
    assert!(
        r.text().contains("too many open connections"),
        "{}",
        r.text()
    );
    drop(first);
    // The close is seen by the gateway soon; poll instead of guessing how soon.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = http_request(gw.addr(), "GET", "/healthz", &[], b"").unwrap();
        if r.status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the closed connection was never released"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let m = http_request(gw.addr(), "GET", "/metrics", &[], b"").unwrap();
    assert!(
        m.text()
            .contains("sluicegate_connections_refused_by_ip_total"),
        "{}",
        m.text()
    );
}

#[test]
fn one_address_may_open_connections_only_so_fast() {
    let gw = gateway_with("[limits]\nip_connections = { per_s = 0.1, burst = 3 }\n");
    // Gateway::start used one connection for its health check.
    let _held: Vec<TcpStream> = (0..2).map(|_| hold_connection(&gw)).collect();
    let r = http_request(gw.addr(), "GET", "/healthz", &[], b"").unwrap();
    assert_eq!(r.status, 429, "{}", r.text());
    assert!(r.header("retry-after").is_some());
    assert!(r
        .header("ratelimit-policy")
        .is_some_and(|p| p.starts_with("\"ip-connections\"")));
}

/// A gateway whose subscriber connections get `egress` (a `[limits]` fragment).
fn egress_gateway(egress: &str) -> Gateway {
    gateway_with(&format!("[limits]\n{egress}\n"))
}

#[test]
fn egress_over_the_limit_in_drop_mode_skips_events_and_says_how_to_get_them() {
    // Two at once, then one every 2 s.
    let gw =
        egress_gateway("egress_events = { per_s = 0.5, burst = 2 }\negress_over_limit = \"drop\"");
    let mut sub = SseClient::connect(gw.addr(), "/topics/t/events", &[]);
    // One batch: its five events reach the fan-out within microseconds of each other.
    let ids = gw.publish_with(
        "t",
        "",
        &[("Content-Type", "application/x-ndjson")],
        b"e1\ne2\ne3\ne4\ne5\n",
    );
    let first = sub.expect_events(2, EVENT_TIMEOUT);
    assert_eq!(first[0].data, "e1");
    assert_eq!(first[1].data, "e2");
    // After a refill, the next event comes with the notice before it.
    std::thread::sleep(Duration::from_millis(2500));
    gw.publish("t", "e6");
    let notice = sub.next_event(EVENT_TIMEOUT).expect("the dropped notice");
    assert_eq!(notice.event_type, "dropped", "{notice:?}");
    assert!(notice.data.contains("\"dropped\":3"), "{}", notice.data);
    // Resuming from the notice's cursor replays exactly what was dropped.
    let resume_from = ids[1].as_str();
    assert!(
        notice
            .data
            .contains(&format!("\"resume_from\":\"{resume_from}\"")),
        "{} (ids {ids:?})",
        notice.data
    );
    let e6 = sub.next_event(EVENT_TIMEOUT).expect("e6");
    assert_eq!(e6.data, "e6");
    let mut again = SseClient::connect(
        gw.addr(),
        "/topics/t/events",
        &[("Last-Event-ID", resume_from)],
    );
    let replayed: Vec<String> = again
        .expect_events(2, EVENT_TIMEOUT)
        .into_iter()
        .map(|e| e.data)
        .collect();
    assert_eq!(
        replayed,
        ["e3", "e4"],
        "a fresh connection's bucket holds two"
    );
}

#[test]
fn egress_over_the_limit_in_delay_mode_paces_the_stream_and_loses_nothing() {
    // One at once, then two a second: five events take at least 2 s to arrive.
    let gw =
        egress_gateway("egress_events = { per_s = 2, burst = 1 }\negress_over_limit = \"delay\"");
    let mut sub = SseClient::connect(gw.addr(), "/topics/t/events", &[]);
    let start = Instant::now();
    gw.publish_with(
        "t",
        "",
        &[("Content-Type", "application/x-ndjson")],
        b"1\n2\n3\n4\n5\n",
    );
    let got: Vec<String> = sub
        .expect_events(5, Duration::from_secs(10))
        .into_iter()
        .map(|e| e.data)
        .collect();
    assert_eq!(got, ["1", "2", "3", "4", "5"]);
    // A busy machine can only make this slower.
    assert!(
        start.elapsed() >= Duration::from_millis(1900),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn egress_over_the_limit_in_disconnect_mode_ends_the_stream_with_a_reason() {
    let gw = egress_gateway(
        "egress_events = { per_s = 0.1, burst = 1 }\negress_over_limit = \"disconnect\"",
    );
    let mut sub = SseClient::connect(gw.addr(), "/topics/t/events", &[]);
    gw.publish_with(
        "t",
        "",
        &[("Content-Type", "application/x-ndjson")],
        b"1\n2\n3\n",
    );
    assert_eq!(
        sub.next_event(EVENT_TIMEOUT).map(|e| e.data).as_deref(),
        Some("1")
    );
    assert!(sub.wait_closed(EVENT_TIMEOUT), "not disconnected");
    assert!(
        sub.raw_text().contains("egress rate limit"),
        "{}",
        sub.raw_text()
    );
    let m = http_request(gw.addr(), "GET", "/metrics", &[], b"").unwrap();
    assert!(
        m.text()
            .contains("sluicegate_egress_disconnects_total{shard=\"0\"} 1"),
        "{}",
        m.text()
    );
}

#[test]
fn a_principal_limit_holds_across_shards() {
    // Twenty at once in total, and practically no refill: however the two shards split the
    // burst, together they admit about twenty (each alone would admit all twenty).
    let path = config_file("[limits]\npublish_events = { per_s = 0.01, burst = 20 }\n");
    let gw = Gateway::start(&["--config", &path, "--shards", "2"]);
    let mut conns = [gw.conn_on_shard(0), gw.conn_on_shard(1)];
    let mut admitted = 0;
    for i in 0..80 {
        let conn = &mut conns[i % 2];
        let r = conn
            .request("POST", "/topics/t/events", &[], b"x")
            .unwrap_or_else(|e| panic!("publish {i}: {e}"));
        match r.status {
            200 => admitted += 1,
            429 => {}
            other => panic!("publish {i}: {other} {}", r.text()),
        }
        // Let the shards rebalance (every 100 ms) a few times during the run.
        std::thread::sleep(Duration::from_millis(10));
    }
    eprintln!("admitted {admitted} of 80 (global burst 20)");
    assert!(
        (16..=24).contains(&admitted),
        "{admitted} of 80 admitted against a global burst of 20"
    );
}
