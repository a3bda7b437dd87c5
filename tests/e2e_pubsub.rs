//! End-to-end publish/subscribe over loopback: HTTP publish in, SSE out, through the real
//! binary (single events, event types, multi-line data, NDJSON batches, several topics, order,
//! delivery across shards, and curl as an independent client).

mod common;

use common::{is_untyped, publish_on, Gateway, SseClient, EVENT_TIMEOUT};
use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

#[test]
fn published_event_reaches_subscriber() {
    let gw = Gateway::start(&[]);
    let mut sub = SseClient::connect(gw.addr(), "/topics/news/events", &[]);
    let id = gw.publish("news", "hello world");
    let ev = sub.next_event(EVENT_TIMEOUT).expect("event within timeout");
    assert_eq!(ev.data, "hello world");
    assert_eq!(
        ev.last_event_id, id,
        "SSE id is the id the publish answered"
    );
    assert!(
        is_untyped(&ev),
        "no event type was given, got {:?}",
        ev.event_type
    );
    assert!(!id.is_empty(), "ids are non-empty");
}

#[test]
fn event_type_from_query_and_header() {
    let gw = Gateway::start(&[]);
    let mut sub = SseClient::connect(gw.addr(), "/topics/typed/events", &[]);
    gw.publish_with("typed", "?event=greeting", &[], b"hi");
    gw.publish_with("typed", "", &[("Sluicegate-Event", "farewell")], b"bye");
    let evs = sub.expect_events(2, EVENT_TIMEOUT);
    assert_eq!(
        (evs[0].event_type.as_str(), evs[0].data.as_str()),
        ("greeting", "hi")
    );
    assert_eq!(
        (evs[1].event_type.as_str(), evs[1].data.as_str()),
        ("farewell", "bye")
    );
}

#[test]
fn key_and_idempotency_id_are_accepted() {
    let gw = Gateway::start(&[]);
    let mut sub = SseClient::connect(gw.addr(), "/topics/keyed/events", &[]);
    gw.publish_with("keyed", "?key=user-1", &[], b"k1");
    gw.publish_with("keyed", "", &[("Sluicegate-Key", "user-2")], b"k2");
    gw.publish_with("keyed", "?id=req-1", &[], b"i1");
    let evs = sub.expect_events(3, EVENT_TIMEOUT);
    let data: Vec<&str> = evs.iter().map(|e| e.data.as_str()).collect();
    assert_eq!(data, ["k1", "k2", "i1"]);
}

#[test]
fn multi_line_data_arrives_as_lf_joined_lines() {
    let gw = Gateway::start(&[]);
    let mut sub = SseClient::connect(gw.addr(), "/topics/lines/events", &[]);
    gw.publish("lines", "a\rb\nc\r\nd");
    let ev = sub.next_event(EVENT_TIMEOUT).expect("event");
    assert_eq!(ev.data, "a\nb\nc\nd");
    // The raw frame must not carry a bare CR or an unescaped line break inside a data line.
    let raw = sub.raw_text();
    assert!(!raw.contains('\r'), "CR leaked into the stream: {raw:?}");
}

#[test]
fn empty_data_is_delivered() {
    let gw = Gateway::start(&[]);
    let mut sub = SseClient::connect(gw.addr(), "/topics/empty/events", &[]);
    let id = gw.publish("empty", "");
    gw.publish("empty", "after");
    let evs = sub.expect_events(2, EVENT_TIMEOUT);
    assert_eq!(evs[0].data, "");
    assert_eq!(evs[0].last_event_id, id);
    assert_eq!(evs[1].data, "after");
}

#[test]
fn ndjson_batch_publishes_each_line_in_order() {
    let gw = Gateway::start(&[]);
    let mut sub = SseClient::connect(gw.addr(), "/topics/batch/events", &[]);
    let body = b"one\ntwo\n\n{\"n\": 3}\n";
    let ids = gw.publish_with(
        "batch",
        "",
        &[("Content-Type", "application/x-ndjson")],
        body,
    );
    assert_eq!(ids.len(), 3, "empty lines are skipped: {ids:?}");
    let evs = sub.expect_events(3, EVENT_TIMEOUT);
    let data: Vec<&str> = evs.iter().map(|e| e.data.as_str()).collect();
    assert_eq!(data, ["one", "two", "{\"n\": 3}"]);
    let got_ids: Vec<&str> = evs.iter().map(|e| e.last_event_id.as_str()).collect();
    assert_eq!(got_ids, ids);
    assert!(
        sub.next_event(Duration::from_millis(300)).is_none(),
        "no extra event"
    );
}

#[test]
fn subscribe_to_several_topics() {
    let gw = Gateway::start(&[]);
    let mut sub = SseClient::connect(gw.addr(), "/events?topic=alpha&topic=beta", &[]);
    gw.publish("alpha", "alpha-1");
    gw.publish("gamma", "gamma-1");
    gw.publish("beta", "beta-1");
    gw.publish("alpha", "alpha-2");
    gw.publish("beta", "beta-2");
    let evs = sub.expect_events(4, EVENT_TIMEOUT);
    let mut data: Vec<&str> = evs.iter().map(|e| e.data.as_str()).collect();
    let alpha: Vec<&str> = data
        .iter()
        .copied()
        .filter(|d| d.starts_with("alpha"))
        .collect();
    let beta: Vec<&str> = data
        .iter()
        .copied()
        .filter(|d| d.starts_with("beta"))
        .collect();
    assert_eq!(alpha, ["alpha-1", "alpha-2"], "per-topic order");
    assert_eq!(beta, ["beta-1", "beta-2"], "per-topic order");
    gw.publish("alpha", "alpha-3");
    let last = sub.next_event(EVENT_TIMEOUT).expect("alpha-3");
    data.push(&last.data);
    assert_eq!(
        last.data, "alpha-3",
        "gamma (not subscribed) must not arrive: {data:?}"
    );
}

#[test]
fn thousand_events_keep_their_order() {
    let gw = Gateway::start(&["--shards", "2"]);
    let mut subs: Vec<SseClient> = (0..2)
        .map(|_| SseClient::connect(gw.addr(), "/topics/ordered/events", &[]))
        .collect();
    let mut conn = common::HttpConn::connect(gw.addr()).expect("connect");
    let ids: Vec<String> = (0..1000)
        .map(|i| publish_on(&mut conn, "ordered", &format!("e{i}")))
        .collect();
    for sub in &mut subs {
        let evs = sub.expect_events(1000, EVENT_TIMEOUT);
        for (i, ev) in evs.iter().enumerate() {
            assert_eq!(ev.data, format!("e{i}"), "event {i} out of order");
            assert_eq!(ev.last_event_id, ids[i], "id of event {i}");
        }
    }
}

#[test]
fn events_cross_shards_in_order() {
    let gw = Gateway::start(&["--shards", "2"]);
    // Keep connecting until one subscriber sits on each shard.
    let mut on: [Option<SseClient>; 2] = [None, None];
    for _ in 0..100 {
        if on.iter().all(Option::is_some) {
            break;
        }
        let c = SseClient::connect(gw.addr(), "/topics/cross/events", &[]);
        let shard = c
            .shard()
            .expect("x-sluicegate-shard header on the SSE response");
        assert!(shard < 2, "shard {shard} out of range");
        if on[shard].is_none() {
            on[shard] = Some(c);
        }
    }
    let [Some(mut s0), Some(mut s1)] = on else {
        panic!("could not get one SSE connection on each shard");
    };
    // Publish from each shard in turn: shard 1 first, then shard 0.
    let mut p1 = gw.conn_on_shard(1);
    let mut p0 = gw.conn_on_shard(0);
    let mut expected = Vec::new();
    for i in 0..10 {
        let data = format!("from1-{i}");
        expected.push((publish_on(&mut p1, "cross", &data), data));
    }
    for i in 0..10 {
        let data = format!("from0-{i}");
        expected.push((publish_on(&mut p0, "cross", &data), data));
    }
    for (name, sub) in [("shard 0", &mut s0), ("shard 1", &mut s1)] {
        let evs = sub.expect_events(expected.len(), EVENT_TIMEOUT);
        let got: Vec<(String, String)> =
            evs.into_iter().map(|e| (e.last_event_id, e.data)).collect();
        assert_eq!(got, expected, "subscriber on {name}");
    }
}

#[test]
fn curl_receives_events() {
    let gw = Gateway::start(&[]);
    let url = format!("http://{}/topics/curl/events", gw.addr());
    let mut child = Command::new("curl")
        .args(["-sN", "-H", "Accept: text/event-stream", &url])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn curl (tests/run-all.sh installs it)");
    let mut out = child.stdout.take().expect("curl stdout");
    let (tx, rx) = mpsc::channel::<Vec<u8>>();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = out.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut parser = common::sse::SseParser::new();
    let mut events = Vec::new();
    // Wait for the stream's opening comment, so the subscription exists before publishing.
    let deadline = Instant::now() + EVENT_TIMEOUT;
    let mut published = false;
    while events.len() < 2 && Instant::now() < deadline {
        if let Ok(bytes) = rx.recv_timeout(Duration::from_millis(100)) {
            events.extend(parser.feed(&bytes));
        }
        if !published && parser.comments_seen() > 0 {
            gw.publish_with("curl", "?event=note", &[], b"via curl");
            gw.publish("curl", "line1\nline2");
            published = true;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let _ = reader.join();
    assert!(published, "curl never saw the opening comment");
    assert_eq!(events.len(), 2, "events seen by curl: {events:?}");
    assert_eq!(
        (events[0].event_type.as_str(), events[0].data.as_str()),
        ("note", "via curl")
    );
    assert_eq!(events[1].data, "line1\nline2");
}
