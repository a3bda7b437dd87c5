//! End-to-end life of connections and of the process: health and metrics endpoints, the SSE
//! preamble, heartbeats, cutting off a slow consumer without hurting a fast one, and a graceful
//! SIGTERM drain.

mod common;

use common::{http, http_request, publish_on, Gateway, HttpConn, SseClient, EVENT_TIMEOUT};
use std::io::{ErrorKind, Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[test]
fn healthz_and_metrics_answer() {
    let gw = Gateway::start(&[]);
    let r = http_request(gw.addr(), "GET", "/healthz", &[], b"").expect("healthz");
    assert_eq!(r.status, 200);
    let r = http_request(gw.addr(), "GET", "/metrics", &[], b"").expect("metrics");
    assert_eq!(r.status, 200);
    let ct = r.header("content-type").unwrap_or("");
    assert!(
        ct.starts_with("text/plain"),
        "prometheus text format, got {ct:?}"
    );
    let text = r.text();
    assert!(
        text.contains("# TYPE "),
        "metrics carry TYPE lines: {text:?}"
    );
    let has_sample = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .any(|l| {
            l.rsplit(' ')
                .next()
                .is_some_and(|v| v.parse::<f64>().is_ok())
        });
    assert!(has_sample, "metrics carry at least one sample: {text:?}");
}

#[test]
fn stream_starts_with_retry_and_ok_comment() {
    let gw = Gateway::start(&[]);
    let mut sub = SseClient::connect(gw.addr(), "/topics/pre/events", &[]);
    assert_eq!(
        sub.shard(),
        Some(0),
        "x-sluicegate-shard on a 1-shard gateway"
    );
    assert!(sub.wait_for_comment(EVENT_TIMEOUT));
    let raw = sub.raw_text();
    assert!(
        raw.starts_with("retry:"),
        "stream starts with retry: {raw:?}"
    );
    assert!(
        raw.lines().any(|l| l == ": ok" || l == ":ok"),
        "opening comment `: ok`: {raw:?}"
    );
}

#[test]
fn heartbeats_are_sent() {
    let gw = Gateway::start(&["--set", "sse.heartbeat_ms=200"]);
    let mut sub = SseClient::connect(gw.addr(), "/topics/hb/events", &[]);
    let before = sub.comments_seen();
    let evs = sub.events_for(Duration::from_millis(1500));
    assert!(
        evs.is_empty(),
        "heartbeats are comments, not events: {evs:?}"
    );
    let beats = sub.comments_seen() - before;
    assert!(
        beats >= 3,
        "expected >= 3 heartbeats in 1.5 s at 200 ms, got {beats}"
    );
    assert!(!sub.is_closed());
}

const SLOW_EVENTS: usize = 2000;
const SLOW_EVENT_BYTES: usize = 10 * 1024;

fn big_event(i: usize) -> String {
    let mut s = format!("{i:05}:");
    s.push_str(&"x".repeat(SLOW_EVENT_BYTES - s.len()));
    s
}

#[test]
fn slow_consumer_is_cut_off_fast_one_gets_everything() {
    let mut gw = Gateway::start(&["--set", "sse.max_queue_bytes=65536"]);
    let addr = gw.addr();

    // The slow client reads the response head and then never reads again.
    let mut slow = http::connect(addr).expect("connect slow");
    slow.write_all(&http::build_request(
        addr,
        "GET",
        "/topics/flood/events",
        &[("Accept", "text/event-stream")],
        b"",
        false,
    ))
    .expect("slow GET");
    let mut head = Vec::new();
    http::read_head(&mut slow, &mut head).expect("slow head");

    // The fast client reads everything on its own thread and counts what it got.
    let mut fast = SseClient::connect(addr, "/topics/flood/events", &[]);
    let received = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&received);
    let reader = std::thread::spawn(move || {
        let mut bad = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut n = 0;
        while n < SLOW_EVENTS && Instant::now() < deadline {
            match fast.next_event(Duration::from_secs(5)) {
                Some(ev) => {
                    if ev.data != big_event(n) {
                        bad.push(n);
                    }
                    n += 1;
                    counter.store(n, Ordering::Release);
                }
                None => break,
            }
        }
        (n, bad, fast.is_closed())
    });

    let mut conn = HttpConn::connect(addr).expect("publisher");
    // One deadline for the whole publishing loop, so a stalled reader fails the test quickly.
    let publish_deadline = Instant::now() + Duration::from_secs(30);
    for i in 0..SLOW_EVENTS {
        // Keep the fast reader within ~2 MB of the publisher: it must never be the slow one.
        while i > received.load(Ordering::Acquire) + 200
            && !reader.is_finished()
            && Instant::now() < publish_deadline
        {
            std::thread::sleep(Duration::from_millis(1));
        }
        if reader.is_finished() || Instant::now() >= publish_deadline {
            break;
        }
        publish_on(&mut conn, "flood", &big_event(i));
    }

    let (n, bad, fast_closed) = reader.join().expect("fast reader thread");
    assert_eq!(
        n, SLOW_EVENTS,
        "fast subscriber got every event (closed: {fast_closed})"
    );
    assert!(
        bad.is_empty(),
        "fast subscriber got wrong data at {:?}",
        &bad[..bad.len().min(10)]
    );

    // Now drain the slow one: the server must have closed it, so reading hits EOF (or a reset).
    slow.set_read_timeout(Some(Duration::from_secs(2)))
        .expect("timeout");
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut total = head.len();
    let mut buf = vec![0u8; 1 << 16];
    let closed = loop {
        if Instant::now() > deadline {
            break false;
        }
        match slow.read(&mut buf) {
            Ok(0) => break true,
            Ok(n) => total += n,
            Err(e) if e.kind() == ErrorKind::ConnectionReset => break true,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                break false
            }
            Err(e) => panic!("slow read: {e}"),
        }
    };
    assert!(closed, "slow consumer still connected after {total} bytes");
    assert!(
        total < SLOW_EVENTS * SLOW_EVENT_BYTES,
        "slow consumer was sent everything ({total} bytes): it was not cut off"
    );
    gw.assert_alive();
}

#[test]
fn sigterm_closes_streams_with_retry_and_exits_zero() {
    let mut gw = Gateway::start(&["--set", "server.drain_timeout_ms=2000"]);
    let mut sub = SseClient::connect(gw.addr(), "/topics/drain/events", &[]);
    gw.publish("drain", "before");
    assert_eq!(sub.next_event(EVENT_TIMEOUT).expect("event").data, "before");
    let seen = sub.raw().len();

    gw.sigterm();
    assert!(
        sub.wait_closed(Duration::from_secs(5)),
        "stream closed on SIGTERM"
    );
    let tail = String::from_utf8_lossy(&sub.raw()[seen..]).into_owned();
    assert!(
        tail.lines().any(|l| l.starts_with("retry:")),
        "a retry: field before close, got {tail:?}"
    );
    let status = gw
        .wait_exit(Duration::from_secs(5))
        .expect("exited after SIGTERM");
    assert_eq!(status.code(), Some(0), "exit status; log:\n{}", gw.log());
}

#[test]
fn sigterm_when_idle_exits_zero() {
    let mut gw = Gateway::start(&["--shards", "2", "--set", "server.drain_timeout_ms=1000"]);
    gw.sigterm();
    let status = gw
        .wait_exit(Duration::from_secs(5))
        .expect("exited after SIGTERM");
    assert_eq!(status.code(), Some(0), "exit status; log:\n{}", gw.log());
    assert!(
        http_request(gw.addr(), "GET", "/healthz", &[], b"").is_err(),
        "nothing listens after exit"
    );
}
