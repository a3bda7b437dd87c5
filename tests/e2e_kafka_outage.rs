//! End-to-end tests of what a publish answer promises when the broker fails: 503 means nothing
//! was written, 504 means the outcome is unknown, and a retry carrying the same `Sluicegate-Id`
//! is delivered once either way. The "sent, no acknowledgement" case is forced with a proxy
//! that swallows Produce answers (deterministic); the broker-kill test asserts the same
//! contract without depending on when the kill lands.
//!
//! Needs `SLUICEGATE_TEST_KAFKA` (as the other Kafka tests), Python's `kafka-python` and the
//! `tansu` binary (each test runs a broker of its own).

mod common;

use common::kafka::{
    broker, consume, create_topic, kafka_gateway, kafka_gateway_from, metric_sum, produce, unique,
    OwnBroker, Rec,
};
use common::kafka_proxy::KafkaProxy;
use common::{free_port, http_request, parse_ids, Gateway, ParsedEvent, Response, SseClient};
use std::time::{Duration, Instant};

/// Wait for one event; generous, since a record goes producer -> broker -> fetch -> ring -> SSE.
const EVENT_WAIT: Duration = Duration::from_secs(8);
/// How long a stream must stay quiet to show nothing extra (duplicates) came.
const QUIET: Duration = Duration::from_millis(700);
/// How long publishes are tried after the broker was killed.
const WAIT_503: Duration = Duration::from_secs(8);
/// How long a publish may keep failing after the broker is reachable again.
const RECOVERY: Duration = Duration::from_secs(20);

fn data(evs: &[ParsedEvent]) -> Vec<&str> {
    evs.iter().map(|e| e.data.as_str()).collect()
}

fn assert_quiet(sub: &mut SseClient, what: &str) {
    let extra = sub.events_for(QUIET);
    assert!(
        extra.is_empty(),
        "{what}: unexpected extra events {:?}",
        data(&extra)
    );
}

/// POST `body` to `topic` with the idempotency key `id` (when given).
fn publish(gw: &Gateway, topic: &str, body: &str, id: Option<&str>) -> Response {
    let headers: Vec<(&str, &str)> = id.map(|id| ("Sluicegate-Id", id)).into_iter().collect();
    publish_with_headers(gw, topic, body, &headers)
}

fn publish_with_headers(
    gw: &Gateway,
    topic: &str,
    body: &str,
    headers: &[(&str, &str)],
) -> Response {
    let path = format!("/topics/{topic}/events");
    http_request(gw.addr(), "POST", &path, headers, body.as_bytes())
        .unwrap_or_else(|e| panic!("POST {body:?}: {e}; log:\n{}", gw.log()))
}

fn metrics(gw: &Gateway) -> String {
    http_request(gw.addr(), "GET", "/metrics", &[], b"")
        .expect("GET /metrics")
        .text()
}

/// Publish until answered 200 (within `RECOVERY`); every earlier answer must be a 503 or 504
/// with `Retry-After`. Returns the ids of the 200.
fn publish_until_accepted(gw: &Gateway, topic: &str, body: &str, id: Option<&str>) -> Vec<String> {
    let deadline = Instant::now() + RECOVERY;
    loop {
        let r = publish(gw, topic, body, id);
        if r.status == 200 {
            return parse_ids(&r.text()).unwrap_or_else(|| panic!("no ids in {:?}", r.text()));
        }
        assert!(
            matches!(r.status, 503 | 504) && r.header("retry-after").is_some(),
            "publish {body:?} while recovering: {} {:?} (headers {:?})",
            r.status,
            r.text(),
            r.headers
        );
        assert!(
            Instant::now() < deadline,
            "publish {body:?} still failing after {RECOVERY:?}: {} {:?}; log:\n{}",
            r.status,
            r.text(),
            gw.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Reads events until one has `last` as data (or `EVENT_WAIT` passes without an event).
fn events_until(sub: &mut SseClient, last: &str) -> Vec<ParsedEvent> {
    let mut got = Vec::new();
    while !got.iter().any(|e: &ParsedEvent| e.data == last) {
        match sub.next_event(EVENT_WAIT) {
            Some(ev) => got.push(ev),
            None => panic!("no {last:?} within {EVENT_WAIT:?}; got {:?}", data(&got)),
        }
    }
    got
}

/// The next offset of an SSE id `0-N` of a one-partition topic.
fn next_offset(id: &str) -> u64 {
    id.strip_prefix("0-")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{id:?} is not a one-partition cursor"))
}

#[test]
fn a_publish_whose_ack_is_lost_is_504_and_its_retry_is_delivered_once() {
    let _ = broker();
    let proxy_port = free_port();
    let own = OwnBroker::start_advertising(proxy_port);
    let proxy = KafkaProxy::start(proxy_port, own.addr());
    let b = proxy.addr();
    let topic = unique("e2e-lost-ack");
    create_topic(&b, &topic, 3);
    let gw = kafka_gateway(
        &b,
        &[&topic],
        2,
        &["--set", "kafka.request_timeout_ms=2000"],
    );
    let mut sub = SseClient::connect(gw.addr(), &format!("/topics/{topic}/events"), &[]);

    proxy.swallow_produce_acks(true);
    let lost = publish(&gw, &topic, "paid", Some("order-1"));
    proxy.swallow_produce_acks(false);
    assert_eq!(
        lost.status,
        504,
        "sent but not acknowledged: {:?}; log:\n{}",
        lost.text(),
        gw.log()
    );
    assert_eq!(lost.header("retry-after"), Some("1"));
    let reason = lost.text();
    assert!(
        reason.contains("may or may not have been written") && reason.contains("Sluicegate-Id"),
        "the 504 says what is known and how to retry: {reason:?}"
    );
    // The broker did write it (the proxy dropped its answer): subscribers get it.
    let first = sub.expect_events(1, EVENT_WAIT);
    assert_eq!(data(&first), ["paid"]);
    let deadline = Instant::now() + EVENT_WAIT;
    while proxy.swallowed() == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        proxy.swallowed(),
        1,
        "the proxy swallowed one produce answer"
    );

    // The publisher retries with the same key, as the 504 told it to (on a slow machine a
    // retry may itself go unacknowledged and be retried: each copy is a repeat).
    publish_until_accepted(&gw, &topic, "paid", Some("order-1"));
    // Every attempt is in the topic, on the partition the key hashes to; one reached
    // subscribers.
    let records = consume(&b, &topic, 2);
    assert!(
        records.len() >= 2,
        "both attempts are in the topic: {records:?}"
    );
    for r in &records {
        assert_eq!(r.partition, records[0].partition, "{records:?}");
        assert_eq!(r.value, b"paid");
        assert_eq!(r.header("sluicegate-id"), Some(&b"order-1"[..]), "{r:?}");
    }
    assert_quiet(&mut sub, "the retry of a delivered publish");
    let page = metrics(&gw);
    let dropped = metric_sum(&page, "sluicegate_kafka_duplicates_dropped_total");
    assert!(dropped >= Some(1.0), "{page}");

    // A later event on the same partition (its key hashes like the id did) still arrives, and
    // a subscriber resuming from the start (its shard's history) sees the first copy only,
    // across the hole the dropped repeat left.
    let shipped = publish_with_headers(&gw, &topic, "shipped", &[("Sluicegate-Key", "order-1")]);
    assert_eq!(shipped.status, 200, "{:?}", shipped.text());
    assert_eq!(data(&sub.expect_events(1, EVENT_WAIT)), ["shipped"]);
    let mut resumed = SseClient::connect(
        gw.addr(),
        &format!("/topics/{topic}/events"),
        &[("Last-Event-ID", "0-0.0.0")],
    );
    let replay = events_until(&mut resumed, "shipped");
    assert_eq!(data(&replay), ["paid", "shipped"], "resume from the start");
    assert_quiet(&mut resumed, "the resumed stream");
    drop(resumed);
    drop(sub);
    drop(gw);

    // A new gateway starting at `latest` has read nothing: a resume from the start is served
    // from Kafka (backfill), which skips the repeat too; and the owner read back the keys
    // before its start, so one more retry of the same publish is still not delivered.
    let gw = kafka_gateway_from(&b, &[&topic], "latest", 2, &[]);
    let mut resumed = SseClient::connect(
        gw.addr(),
        &format!("/topics/{topic}/events"),
        &[("Last-Event-ID", "0-0.0.0")],
    );
    let replay = events_until(&mut resumed, "shipped");
    assert_eq!(
        data(&replay),
        ["paid", "shipped"],
        "backfill after a restart"
    );
    // At `latest`, a record produced before a fetch loop found its start is never read: wait
    // until the owner delivered one (records go to the repeat's partition, by its key).
    let by_key = [("Sluicegate-Key", "order-1")];
    let deadline = Instant::now() + RECOVERY;
    while metric_sum(&metrics(&gw), "sluicegate_events_published_total").unwrap_or(0.0) < 1.0 {
        assert!(Instant::now() < deadline, "the new gateway read nothing");
        let warm = publish_with_headers(&gw, &topic, "warm", &by_key);
        assert_eq!(warm.status, 200, "{:?}", warm.text());
        std::thread::sleep(Duration::from_millis(300));
    }
    let again = publish(&gw, &topic, "paid", Some("order-1"));
    assert_eq!(again.status, 200, "{:?}", again.text());
    // On the same partition, so it is read after the repeat.
    let next = publish_with_headers(&gw, &topic, "next", &by_key);
    assert_eq!(next.status, 200, "{:?}", next.text());
    let tail = events_until(&mut resumed, "next");
    assert!(
        data(&tail).iter().all(|d| *d == "warm" || *d == "next"),
        "the repeat after the restart was delivered: {:?}",
        data(&tail)
    );
    assert_quiet(&mut resumed, "after the restart");
    assert_eq!(
        metric_sum(&metrics(&gw), "sluicegate_kafka_duplicates_dropped_total"),
        Some(1.0),
        "the retry after the restart was recognised"
    );
}

#[test]
fn broker_killed_and_restarted_mid_stream_loses_and_repeats_nothing() {
    let _ = broker();
    let mut own = OwnBroker::start();
    let b = own.addr();
    let topic = unique("e2e-outage");
    create_topic(&b, &topic, 1);
    let gw = kafka_gateway(
        &b,
        &[&topic],
        2,
        &[
            "--set",
            "sse.heartbeat_ms=200",
            "--set",
            "kafka.request_timeout_ms=3000",
            "--set",
            "kafka.backoff_max_ms=500",
        ],
    );
    let mut sub = SseClient::connect(gw.addr(), &format!("/topics/{topic}/events"), &[]);
    let batch = |range: std::ops::Range<u32>| -> Vec<Rec> {
        range.map(|i| Rec::at(0, &format!("r{i}"))).collect()
    };
    produce(&b, &topic, &batch(0..3));
    let before = sub.expect_events(3, EVENT_WAIT);
    assert_eq!(data(&before), ["r0", "r1", "r2"]);

    own.kill();
    let killed = Instant::now();
    // Every publish with the broker down fails: 503 when the gateway knew it sent nothing, 504
    // when a request was on its way when the broker died (which one the first attempts get
    // depends on when the gateway notices; neither is checked against time). Each carries its
    // own idempotency key. Keep every attempt so a failure shows the whole sequence.
    struct Attempt {
        body: String,
        id: String,
        status: u16,
        text: String,
        took: Duration,
        since: Duration,
    }
    let mut attempts: Vec<Attempt> = Vec::new();
    while attempts.iter().filter(|a| a.status == 503).count() < 3 && killed.elapsed() < WAIT_503 {
        let i = attempts.len();
        let (body, id) = (format!("while-down-{i}"), format!("down-{i}"));
        let since = killed.elapsed();
        let started = Instant::now();
        let r = publish(&gw, &topic, &body, Some(&id));
        assert!(
            r.header("retry-after").is_some() || !matches!(r.status, 503 | 504),
            "{} without Retry-After",
            r.status
        );
        attempts.push(Attempt {
            body,
            id,
            status: r.status,
            text: r.text(),
            took: started.elapsed(),
            since,
        });
        std::thread::sleep(Duration::from_millis(100));
    }
    let history = attempts
        .iter()
        .map(|a| {
            format!(
                "  at {:?}: {} {:?} in {:?}",
                a.since, a.status, a.text, a.took
            )
        })
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        attempts.iter().all(|a| matches!(a.status, 503 | 504)),
        "every publish with the broker down is a 503 or a 504:\n{history}"
    );
    assert!(
        attempts.iter().any(|a| a.status == 503),
        "the gateway noticed the outage and refused at once:\n{history}"
    );
    // Nobody waits longer than the request timeout (3 s) plus rskafka's retry deadline (1 s).
    assert!(
        attempts.iter().all(|a| a.took < Duration::from_secs(6)),
        "a publish hung with the broker down:\n{history}"
    );
    assert!(
        attempts.iter().all(|a| !a.text.trim().is_empty()),
        "an answer without a reason:\n{history}"
    );

    let beats = sub.comments_seen();
    let during = sub.events_for(Duration::from_millis(1500));
    assert!(during.is_empty(), "events while down: {:?}", data(&during));
    assert!(
        !sub.is_closed(),
        "the stream closed while the broker was down"
    );
    assert!(
        sub.comments_seen() >= beats + 2,
        "heartbeats stopped: {} then {}",
        beats,
        sub.comments_seen()
    );

    own.launch();
    produce(&b, &topic, &batch(3..8));
    let after = events_until(&mut sub, "r7");
    // A 504'd publish may have been written before the broker died (then it comes first); a
    // 503'd one never is.
    let (down, rest): (Vec<&ParsedEvent>, Vec<&ParsedEvent>) = after
        .iter()
        .partition(|e| e.data.starts_with("while-down-"));
    let rest_data: Vec<&str> = rest.iter().map(|e| e.data.as_str()).collect();
    assert_eq!(rest_data, ["r3", "r4", "r5", "r6", "r7"], "{history}");
    for ev in &down {
        let attempt = attempts.iter().find(|a| a.body == ev.data);
        assert!(
            attempt.is_some_and(|a| a.status == 504),
            "{:?} was delivered but its publish was answered 503 (\"nothing written\"):\n{history}",
            ev.data
        );
    }
    // Ids: one step per record after r2 (offset 3), the records after the outage contiguous.
    let offsets: Vec<u64> = after
        .iter()
        .map(|e| next_offset(&e.last_event_id))
        .collect();
    let mut want = 3;
    for (ev, got) in after.iter().zip(&offsets) {
        assert!(*got > want, "{:?} has id {:?}", ev.data, ev.last_event_id);
        want = *got;
    }
    let r3 = offsets[after.iter().position(|e| e.data == "r3").unwrap_or(0)];
    assert_eq!(offsets[offsets.len() - 1], r3 + 4, "r3..r7 are contiguous");

    // Retrying every failed publish with its key is safe: each is delivered exactly once,
    // whether its first attempt was written or not.
    let mut delivered: Vec<String> = down.iter().map(|e| e.data.clone()).collect();
    for a in &attempts {
        publish_until_accepted(&gw, &topic, &a.body, Some(&a.id));
    }
    let ids = publish_until_accepted(&gw, &topic, "r8", None);
    let last = events_until(&mut sub, "r8");
    delivered.extend(
        last.iter()
            .filter(|e| e.data.starts_with("while-down-"))
            .map(|e| e.data.clone()),
    );
    delivered.sort();
    let mut want: Vec<String> = attempts.iter().map(|a| a.body.clone()).collect();
    want.sort();
    assert_eq!(delivered, want, "each retried publish once:\n{history}");
    let r8 = last
        .last()
        .map(|e| e.last_event_id.clone())
        .unwrap_or_default();
    assert_eq!(ids, [r8], "the publish answer names the delivered event");
    assert_quiet(&mut sub, "nothing duplicated after the outage");
}
