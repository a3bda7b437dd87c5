//! End-to-end tests of the gateway in Kafka mode against a real broker: records produced by an
//! independent client (kafka-python) reach SSE subscribers on every shard in per-partition
//! order, event types, filters, multi-topic cursors, resume (also across a gateway restart),
//! HTTP publish into Kafka, unknown topics, and a resume from a cursor the broker no longer
//! retains (a `reset` event). A broker killed mid-stream and lost acknowledgements are in
//! `e2e_kafka_outage.rs`.
//!
//! Needs `SLUICEGATE_TEST_KAFKA=127.0.0.1:PORT` (`tests/services.sh start` prints it), Python's
//! `kafka-python`, and for the broker-restart and retention tests the `tansu` binary.

mod common;

use common::kafka::{
    broker, check_cursor_steps, consume, create_topic, cursor, kafka_gateway, kafka_gateway_from,
    metric_sum, offset_bounds, produce, subscribers_on_every_shard, unique, OwnBroker, Rec,
};
use common::{http_request, is_untyped, publish_ids, ParsedEvent, SseClient};
use std::collections::HashSet;
use std::time::Duration;

/// Wait for one event; generous, since a record goes producer -> broker -> fetch -> ring -> SSE.
const EVENT_WAIT: Duration = Duration::from_secs(8);
/// How long a stream must stay quiet to show nothing extra (duplicates, filtered records) came.
const QUIET: Duration = Duration::from_millis(700);

fn data(evs: &[ParsedEvent]) -> Vec<&str> {
    evs.iter().map(|e| e.data.as_str()).collect()
}

/// Values `p{p}-{i}` for `i` in `range` on each of `partitions` partitions, interleaved.
fn spread(partitions: i32, range: std::ops::Range<u32>) -> Vec<Rec> {
    range
        .flat_map(|i| (0..partitions).map(move |p| Rec::at(p, &format!("p{p}-{i}"))))
        .collect()
}

/// The partition a `p{p}-{i}` value was produced to.
fn partition_of(ev: &ParsedEvent) -> usize {
    ev.data
        .strip_prefix('p')
        .and_then(|rest| rest.split('-').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("unexpected event data {:?}", ev.data))
}

/// The values of `evs` that came from partition `p`, in arrival order.
fn of_partition(evs: &[ParsedEvent], p: usize) -> Vec<&str> {
    evs.iter()
        .filter(|e| partition_of(e) == p)
        .map(|e| e.data.as_str())
        .collect()
}

fn assert_quiet(sub: &mut SseClient, what: &str) {
    let extra = sub.events_for(QUIET);
    assert!(
        extra.is_empty(),
        "{what}: unexpected extra events {:?}",
        data(&extra)
    );
}

#[test]
fn records_reach_subscribers_on_both_shards_in_partition_order() {
    let b = broker();
    let topic = unique("e2e-order");
    create_topic(&b, &topic, 3);
    let gw = kafka_gateway(&b, &[&topic], 2, &[]);
    let mut subs = subscribers_on_every_shard(&gw, &format!("/topics/{topic}/events"), 2);
    produce(&b, &topic, &spread(3, 0..10));
    for (shard, sub) in subs.iter_mut().enumerate() {
        let evs = sub.expect_events(30, EVENT_WAIT);
        let end = check_cursor_steps(&evs, &[0, 0, 0], partition_of);
        assert_eq!(end, [10, 10, 10], "shard {shard}: final cursor");
        for p in 0..3 {
            let want: Vec<String> = (0..10).map(|i| format!("p{p}-{i}")).collect();
            assert_eq!(of_partition(&evs, p), want, "shard {shard}, partition {p}");
        }
        assert!(evs.iter().all(is_untyped), "no ce_type header, no type");
        assert_quiet(sub, &format!("shard {shard}"));
    }
}

#[test]
fn event_type_comes_from_ce_type_header_or_json_field() {
    let b = broker();
    let topic = unique("e2e-type");
    create_topic(&b, &topic, 1);
    let gw = kafka_gateway(
        &b,
        &[&topic],
        1,
        &["--set", "kafka.event_type_field=\"kind\""],
    );
    let mut sub = SseClient::connect(gw.addr(), &format!("/topics/{topic}/events"), &[]);
    produce(
        &b,
        &topic,
        &[
            Rec::at(0, r#"{"kind":"from.field"}"#).typed("order.created"),
            Rec::at(0, r#"{"kind":"order.paid","n":1}"#),
            Rec::at(0, "plain"),
            Rec::at(0, "plain too").typed("x.y"),
            Rec::at(0, r#"{"other":"z"}"#),
        ],
    );
    let evs = sub.expect_events(5, EVENT_WAIT);
    let types: Vec<&str> = evs.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(
        types,
        ["order.created", "order.paid", "message", "x.y", "message"],
        "header wins, then the JSON field, else untyped"
    );
    assert_eq!(
        data(&evs),
        [
            r#"{"kind":"from.field"}"#,
            r#"{"kind":"order.paid","n":1}"#,
            "plain",
            "plain too",
            r#"{"other":"z"}"#
        ]
    );
    let ids: Vec<&str> = evs.iter().map(|e| e.last_event_id.as_str()).collect();
    assert_eq!(ids, ["0-1", "0-2", "0-3", "0-4", "0-5"]);
}

#[test]
fn non_utf8_values_are_skipped_and_counted() {
    let b = broker();
    let topic = unique("e2e-utf8");
    create_topic(&b, &topic, 1);
    let gw = kafka_gateway(&b, &[&topic], 1, &[]);
    let mut sub = SseClient::connect(gw.addr(), &format!("/topics/{topic}/events"), &[]);
    let bad = Rec {
        partition: Some(0),
        value: vec![0xff, 0xfe, b'x'],
        ..Rec::default()
    };
    produce(&b, &topic, &[Rec::at(0, "ok-1"), bad, Rec::at(0, "ok-2")]);
    let evs = sub.expect_events(2, EVENT_WAIT);
    assert_eq!(data(&evs), ["ok-1", "ok-2"]);
    assert_eq!(evs[0].last_event_id, "0-1");
    assert_eq!(
        evs[1].last_event_id, "0-3",
        "the skipped offset is passed over"
    );
    assert_quiet(&mut sub, "after the skipped record");
    let page = http_request(gw.addr(), "GET", "/metrics", &[], b"")
        .expect("GET /metrics")
        .text();
    assert_eq!(
        metric_sum(&page, "sluicegate_kafka_records_skipped_total"),
        Some(1.0),
        "metrics page:\n{page}"
    );
}

#[test]
fn type_filter_sends_only_matching_types() {
    let b = broker();
    let topic = unique("e2e-typefilter");
    create_topic(&b, &topic, 2);
    let gw = kafka_gateway(&b, &[&topic], 2, &[]);
    let path = format!("/topics/{topic}/events");
    let mut either =
        SseClient::connect(gw.addr(), &format!("{path}?type=created&type=deleted"), &[]);
    let mut updated = SseClient::connect(gw.addr(), &format!("{path}?type=updated"), &[]);
    produce(
        &b,
        &topic,
        &[
            Rec::at(0, "p0-a").typed("created"),
            Rec::at(0, "p0-b").typed("updated"),
            Rec::at(1, "p1-a").typed("deleted"),
            Rec::at(1, "p1-b").typed("created"),
            Rec::at(0, "p0-c"),
            Rec::at(1, "p1-c").typed("updated"),
            Rec::at(0, "p0-d").typed("deleted"),
            Rec::at(1, "p1-d").typed("created.not"),
        ],
    );
    let evs = either.expect_events(4, EVENT_WAIT);
    assert_eq!(of_partition(&evs, 0), ["p0-a", "p0-d"]);
    assert_eq!(of_partition(&evs, 1), ["p1-a", "p1-b"]);
    for ev in &evs {
        assert!(
            ev.event_type == "created" || ev.event_type == "deleted",
            "{ev:?}"
        );
    }
    assert_quiet(&mut either, "type=created&type=deleted");
    let evs = updated.expect_events(2, EVENT_WAIT);
    let mut got = data(&evs);
    got.sort_unstable();
    assert_eq!(got, ["p0-b", "p1-c"]);
    assert_quiet(&mut updated, "type=updated");
}

#[test]
fn key_filter_matches_the_record_key_exactly() {
    let b = broker();
    let topic = unique("e2e-keyfilter");
    create_topic(&b, &topic, 2);
    let gw = kafka_gateway(&b, &[&topic], 2, &[]);
    let mut sub = SseClient::connect(
        gw.addr(),
        &format!("/topics/{topic}/events?key=user-1"),
        &[],
    );
    produce(
        &b,
        &topic,
        &[
            Rec::at(0, "p0-a").key("user-1"),
            Rec::at(0, "p0-b").key("user-2"),
            Rec::at(1, "p1-a").key("user-1"),
            Rec::at(1, "p1-b"),
            Rec::at(0, "p0-c").key("user-10"),
            Rec::at(0, "p0-d").key("USER-1"),
            Rec::at(0, "p0-e").key("user-1"),
            Rec::at(1, "p1-c").key("user-1").typed("t"),
        ],
    );
    let evs = sub.expect_events(4, EVENT_WAIT);
    assert_eq!(of_partition(&evs, 0), ["p0-a", "p0-e"]);
    assert_eq!(of_partition(&evs, 1), ["p1-a", "p1-c"]);
    assert_quiet(&mut sub, "key=user-1");
}

#[test]
fn multi_topic_subscription_has_one_cursor_element_per_partition() {
    let b = broker();
    let one = unique("e2e-multi-a");
    let two = unique("e2e-multi-b");
    create_topic(&b, &one, 1);
    create_topic(&b, &two, 2);
    let gw = kafka_gateway(&b, &[&one, &two], 2, &[]);
    let mut forward =
        SseClient::connect(gw.addr(), &format!("/events?topic={one}&topic={two}"), &[]);
    let mut backward =
        SseClient::connect(gw.addr(), &format!("/events?topic={two}&topic={one}"), &[]);
    let mut only_two = SseClient::connect(gw.addr(), &format!("/topics/{two}/events"), &[]);
    // Values name where they went: `a-*` to topic one, `p{p}-*` to topic two's partition p.
    let a: Vec<Rec> = (0..4).map(|i| Rec::at(0, &format!("a-{i}"))).collect();
    produce(&b, &one, &a);
    produce(&b, &two, &spread(2, 0..3));
    let slot = |first_is_one: bool| {
        move |ev: &ParsedEvent| {
            let (one_slot, two_base) = if first_is_one { (0, 1) } else { (2, 0) };
            if ev.data.starts_with("a-") {
                one_slot
            } else {
                two_base + partition_of(ev)
            }
        }
    };
    let evs = forward.expect_events(10, EVENT_WAIT);
    assert_eq!(check_cursor_steps(&evs, &[0, 0, 0], slot(true)), [4, 3, 3]);
    let a_values: Vec<&str> = data(&evs)
        .into_iter()
        .filter(|d| d.starts_with("a-"))
        .collect();
    assert_eq!(a_values, ["a-0", "a-1", "a-2", "a-3"]);
    assert_eq!(of_partition_b(&evs, 0), ["p0-0", "p0-1", "p0-2"]);
    assert_eq!(of_partition_b(&evs, 1), ["p1-0", "p1-1", "p1-2"]);
    assert_quiet(&mut forward, "forward");

    let evs = backward.expect_events(10, EVENT_WAIT);
    assert_eq!(
        check_cursor_steps(&evs, &[0, 0, 0], slot(false)),
        [3, 3, 4],
        "topics in subscription order"
    );
    assert_quiet(&mut backward, "backward");

    let evs = only_two.expect_events(6, EVENT_WAIT);
    assert!(
        evs.iter().all(|e| !e.data.starts_with("a-")),
        "{:?}",
        data(&evs)
    );
    assert_eq!(check_cursor_steps(&evs, &[0, 0], partition_of), [3, 3]);
    assert_quiet(&mut only_two, "one topic only");
}

/// Like [`of_partition`] but ignoring topic one's `a-*` values.
fn of_partition_b(evs: &[ParsedEvent], p: usize) -> Vec<&str> {
    evs.iter()
        .filter(|e| !e.data.starts_with("a-") && partition_of(e) == p)
        .map(|e| e.data.as_str())
        .collect()
}

#[test]
fn resume_after_disconnect_across_three_partitions() {
    let b = broker();
    let topic = unique("e2e-resume");
    create_topic(&b, &topic, 3);
    let gw = kafka_gateway(&b, &[&topic], 2, &[]);
    let path = format!("/topics/{topic}/events");
    let mut first = SseClient::connect(gw.addr(), &path, &[]);
    produce(&b, &topic, &spread(3, 0..10));
    let seen = first.expect_events(12, EVENT_WAIT);
    let at = check_cursor_steps(&seen, &[0, 0, 0], partition_of);
    let last = seen[11].last_event_id.clone();
    drop(first);

    produce(&b, &topic, &spread(3, 10..15));
    let mut again = SseClient::connect(gw.addr(), &path, &[("Last-Event-ID", &last)]);
    let rest = again.expect_events(45 - 12, EVENT_WAIT);
    let end = check_cursor_steps(&rest, &at, partition_of);
    assert_eq!(end, [15, 15, 15]);
    assert_quiet(&mut again, "after the replay");

    let all: Vec<ParsedEvent> = seen.iter().chain(rest.iter()).cloned().collect();
    let distinct: HashSet<&str> = data(&all).into_iter().collect();
    assert_eq!(distinct.len(), 45, "every record once: {:?}", data(&all));
    for p in 0..3 {
        let want: Vec<String> = (0..15).map(|i| format!("p{p}-{i}")).collect();
        assert_eq!(of_partition(&all, p), want, "partition {p}");
    }

    produce(&b, &topic, &[Rec::at(1, "p1-15")]);
    let live = again
        .next_event(EVENT_WAIT)
        .expect("a live record after the replay");
    assert_eq!(live.data, "p1-15");
    assert_eq!(cursor(&live.last_event_id), [15, 16, 15]);
}

#[test]
fn resume_across_a_gateway_restart_reads_back_from_kafka() {
    let b = broker();
    let topic = unique("e2e-restart");
    create_topic(&b, &topic, 1);
    let path = format!("/topics/{topic}/events");
    let mut a = kafka_gateway(&b, &[&topic], 2, &[]);
    let mut sub = SseClient::connect(a.addr(), &path, &[]);
    let batch = |range: std::ops::Range<u32>| -> Vec<Rec> {
        range.map(|i| Rec::at(0, &format!("r{i}"))).collect()
    };
    produce(&b, &topic, &batch(0..5));
    let seen = sub.expect_events(5, EVENT_WAIT);
    assert_eq!(data(&seen), ["r0", "r1", "r2", "r3", "r4"]);
    assert_eq!(seen[4].last_event_id, "0-5");
    drop(sub);
    a.sigterm();
    assert!(
        a.wait_exit(Duration::from_secs(10)).is_some(),
        "gateway A did not stop; log:\n{}",
        a.log()
    );

    produce(&b, &topic, &batch(5..10));
    // `latest`: gateway B never read records 5..9 itself, so the resume must fetch them back.
    let gw = kafka_gateway_from(&b, &[&topic], "latest", 2, &[]);
    let mut resumed = SseClient::connect(gw.addr(), &format!("{path}?lastEventId=0-5"), &[]);
    let missed = resumed.expect_events(5, EVENT_WAIT);
    assert_eq!(data(&missed), ["r5", "r6", "r7", "r8", "r9"]);
    let ids: Vec<&str> = missed.iter().map(|e| e.last_event_id.as_str()).collect();
    assert_eq!(ids, ["0-6", "0-7", "0-8", "0-9", "0-10"]);
    assert_quiet(&mut resumed, "after the missed ones");

    produce(&b, &topic, &batch(10..11));
    let live = resumed.expect_events(1, EVENT_WAIT);
    assert_eq!(live[0].data, "r10");
    assert_eq!(live[0].last_event_id, "0-11");
    assert_quiet(&mut resumed, "after the live one");
}

#[test]
fn http_publish_goes_to_kafka_then_to_subscribers() {
    let b = broker();
    let topic = unique("e2e-publish");
    create_topic(&b, &topic, 1);
    let gw = kafka_gateway(&b, &[&topic], 2, &[]);
    let mut sub = SseClient::connect(gw.addr(), &format!("/topics/{topic}/events"), &[]);
    let path = format!("/topics/{topic}/events");

    // One publish from each shard: both produce paths must reach the broker.
    let mut on0 = gw.conn_on_shard(0);
    let r = on0
        .request(
            "POST",
            &format!("{path}?key=k1&event=order.created"),
            &[
                ("Sluicegate-Header-Trace-Id", "abc123"),
                ("Sluicegate-Header-Origin", "e2e"),
            ],
            b"hello",
        )
        .expect("POST on shard 0");
    assert_eq!(publish_ids("publish 1", &r), ["0-1"]);
    let mut on1 = gw.conn_on_shard(1);
    let r = on1
        .request(
            "POST",
            &path,
            &[("Sluicegate-Key", "k2"), ("Sluicegate-Event", "order.paid")],
            b"world",
        )
        .expect("POST on shard 1");
    assert_eq!(publish_ids("publish 2", &r), ["0-2"]);

    let evs = sub.expect_events(2, EVENT_WAIT);
    assert_eq!(data(&evs), ["hello", "world"]);
    assert_eq!(evs[0].event_type, "order.created");
    assert_eq!(evs[1].event_type, "order.paid");
    assert_eq!(evs[0].last_event_id, "0-1");
    assert_eq!(evs[1].last_event_id, "0-2");
    assert_quiet(&mut sub, "each published record once");

    let records = consume(&b, &topic, 2);
    assert_eq!(records.len(), 2, "{records:?}");
    let (r0, r1) = (&records[0], &records[1]);
    assert_eq!((r0.offset, r1.offset), (0, 1));
    assert_eq!(r0.value, b"hello");
    assert_eq!(r0.key.as_deref(), Some(&b"k1"[..]));
    assert_eq!(r0.header("ce_type"), Some(&b"order.created"[..]), "{r0:?}");
    assert_eq!(r0.header("trace-id"), Some(&b"abc123"[..]), "{r0:?}");
    assert_eq!(r0.header("origin"), Some(&b"e2e"[..]), "{r0:?}");
    assert_eq!(r1.value, b"world");
    assert_eq!(r1.key.as_deref(), Some(&b"k2"[..]));
    assert_eq!(r1.header("ce_type"), Some(&b"order.paid"[..]), "{r1:?}");
}

#[test]
fn ndjson_batch_publish_is_one_record_per_line() {
    let b = broker();
    let topic = unique("e2e-ndjson");
    create_topic(&b, &topic, 1);
    let gw = kafka_gateway(&b, &[&topic], 2, &[]);
    let mut sub = SseClient::connect(gw.addr(), &format!("/topics/{topic}/events"), &[]);
    let ids = gw.publish_with(
        &topic,
        "?key=batch&event=line",
        &[("Content-Type", "application/x-ndjson")],
        b"one\ntwo\n{\"n\": 3}\n",
    );
    assert_eq!(ids, ["0-1", "0-2", "0-3"]);
    let evs = sub.expect_events(3, EVENT_WAIT);
    assert_eq!(data(&evs), ["one", "two", "{\"n\": 3}"]);
    let got_ids: Vec<&str> = evs.iter().map(|e| e.last_event_id.as_str()).collect();
    assert_eq!(got_ids, ids);
    assert!(evs.iter().all(|e| e.event_type == "line"), "{evs:?}");
    assert_quiet(&mut sub, "after the batch");

    let records = consume(&b, &topic, 3);
    let values: Vec<&[u8]> = records.iter().map(|r| r.value.as_slice()).collect();
    assert_eq!(values, [&b"one"[..], b"two", b"{\"n\": 3}"]);
    for r in &records {
        assert_eq!(r.key.as_deref(), Some(&b"batch"[..]), "{r:?}");
        assert_eq!(r.header("ce_type"), Some(&b"line"[..]), "{r:?}");
    }
}

#[test]
fn unknown_topics_are_404() {
    let b = broker();
    let topic = unique("e2e-known");
    create_topic(&b, &topic, 1);
    let other = unique("e2e-unknown");
    let gw = kafka_gateway(&b, &[&topic], 2, &[]);
    for path in [
        format!("/topics/{other}/events"),
        format!("/events?topic={topic}&topic={other}"),
    ] {
        match SseClient::try_connect(gw.addr(), &path, &[]) {
            Ok(_) => panic!("GET {path} opened a stream for an unconfigured topic"),
            Err(answer) => {
                assert!(answer.starts_with("status 404 "), "GET {path}: {answer}");
                let body = answer.rsplit("body ").next().unwrap_or("");
                assert!(
                    body.contains(&other),
                    "GET {path}: body should name it: {answer}"
                );
            }
        }
    }
    let r = http_request(
        gw.addr(),
        "POST",
        &format!("/topics/{other}/events"),
        &[],
        b"x",
    )
    .expect("POST");
    assert_eq!(r.status, 404, "POST to an unknown topic: {:?}", r.text());
    // The configured topic still works next to the refusals: its first record is offset 0.
    let mut sub = SseClient::connect(gw.addr(), &format!("/topics/{topic}/events"), &[]);
    assert_eq!(gw.publish(&topic, "fine"), "0-1");
    assert_eq!(sub.expect_events(1, EVENT_WAIT)[0].data, "fine");
}

/// JSON text without the whitespace between tokens (strings kept as they are), so a check
/// does not depend on formatting.
fn compact_json(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_string = false;
    let mut escaped = false;
    for c in text.chars() {
        if in_string {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
        } else if c.is_whitespace() {
            continue;
        }
        out.push(c);
    }
    out
}

#[test]
fn resume_past_retention_starts_with_a_reset_event() {
    let _ = broker();
    let mut own = OwnBroker::start();
    let b = own.addr();
    let topic = unique("e2e-retention");
    create_topic(&b, &topic, 1);
    let batch: Vec<Rec> = (0..10).map(|i| Rec::at(0, &format!("r{i}"))).collect();
    produce(&b, &topic, &batch);
    own.forget_below(&topic, 0, 5);
    assert_eq!(
        offset_bounds(&b, &topic, 0),
        (5, 10),
        "the broker should list offsets 5..10 after records 0..4 were removed"
    );

    let gw = kafka_gateway_from(&b, &[&topic], "latest", 2, &[]);
    let mut sub = SseClient::connect(
        gw.addr(),
        &format!("/topics/{topic}/events?lastEventId=0-2"),
        &[],
    );
    // Take everything that comes (the reset, five records, then a quiet spell) before judging,
    // so a failure shows the whole stream.
    let mut got: Vec<ParsedEvent> = Vec::new();
    while got.len() < 6 {
        match sub.next_event(EVENT_WAIT) {
            Some(ev) => got.push(ev),
            None => break,
        }
    }
    got.extend(sub.events_for(QUIET));
    let stream: Vec<(String, String, String)> = got
        .iter()
        .map(|e| {
            let data = if e.event_type == "reset" {
                compact_json(&e.data)
            } else {
                e.data.clone()
            };
            let kind = if is_untyped(e) {
                "message"
            } else {
                &e.event_type
            };
            (kind.to_owned(), e.last_event_id.clone(), data)
        })
        .collect();
    let reset = format!(
        "{{\"reason\":\"events after Last-Event-ID are no longer retained\",\
         \"partitions\":[{{\"topic\":\"{topic}\",\"partition\":0,\"requested\":2,\"oldest\":5}}]}}"
    );
    let mut want = vec![("reset".to_owned(), "0-5".to_owned(), reset)];
    want.extend((5..10).map(|i| {
        (
            "message".to_owned(),
            format!("0-{}", i + 1),
            format!("r{i}"),
        )
    }));
    assert_eq!(
        stream,
        want,
        "(type, id, data) of the resumed stream; log:\n{}",
        gw.log()
    );
}

/// The harness itself: what kafka-python produces it consumes back (value bytes, key, headers),
/// so a failure elsewhere here points at the gateway, not the helpers.
#[test]
fn harness_produces_and_consumes_with_kafka_python() {
    let b = broker();
    let topic = unique("e2e-harness");
    create_topic(&b, &topic, 2);
    let odd = Rec {
        partition: Some(1),
        value: vec![0xff, 0x00, b'"'],
        ..Rec::default()
    };
    produce(
        &b,
        &topic,
        &[
            Rec::at(0, "a \"quoted\" \\ value").key("k").typed("t.x"),
            odd,
        ],
    );
    let got = consume(&b, &topic, 2);
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!((got[0].partition, got[0].offset), (0, 0));
    assert_eq!(got[0].value, b"a \"quoted\" \\ value");
    assert_eq!(got[0].key.as_deref(), Some(&b"k"[..]));
    assert_eq!(got[0].header("ce_type"), Some(&b"t.x"[..]));
    assert_eq!((got[1].partition, got[1].offset), (1, 0));
    assert_eq!(got[1].value, [0xff, 0x00, b'"']);
    assert_eq!(got[1].key, None);
    assert_eq!(cursor("0-5.0.12"), [5, 0, 12]);
}

/// A cursor past the end of a partition, as a client holds after the topic was deleted and
/// created again (offsets start over): the client gets a `reset` naming the partition, then the
/// partition's events from its start, then live ones. Before the fix a shard that held a history
/// of the partition marked such a client live at the bogus cursor and dropped every event below
/// it, so the client saw only heartbeats.
#[test]
fn resume_past_the_partition_end_gets_a_reset_then_the_events() {
    let b = broker();
    let topic = unique("e2e-recreated");
    create_topic(&b, &topic, 1);
    let gw = kafka_gateway(&b, &[&topic], 2, &["--set", "sse.heartbeat_ms=300"]);
    // Live subscribers on every shard see the three records arrive, so every shard holds them
    // in its history (the case that went wrong) before the old cursor comes back.
    let mut live = subscribers_on_every_shard(&gw, &format!("/topics/{topic}/events"), 2);
    produce(
        &b,
        &topic,
        &(0..3)
            .map(|i| Rec::at(0, &format!("r{i}")))
            .collect::<Vec<_>>(),
    );
    for sub in &mut live {
        let got = sub.expect_events(3, EVENT_WAIT);
        assert_eq!(
            got.iter().map(|e| e.data.as_str()).collect::<Vec<_>>(),
            ["r0", "r1", "r2"]
        );
    }
    let mut resumed = subscribers_on_every_shard(
        &gw,
        &format!("/topics/{topic}/events?lastEventId=0-5000"),
        2,
    );
    let reset = format!(
        "reset {{\"reason\":\"Last-Event-ID is past the end of the partition (was the topic re-created?)\",\
         \"partitions\":[{{\"topic\":\"{topic}\",\"partition\":0,\"requested\":5000,\"oldest\":0}}]}}"
    );
    for sub in &mut resumed {
        let mut got = Vec::new();
        while got.len() < 4 {
            match sub.next_event(EVENT_WAIT) {
                Some(ev) => got.push(ev),
                None => break,
            }
        }
        let seen: Vec<String> = got
            .iter()
            .map(|e| {
                if e.event_type == "reset" {
                    format!("reset {}", compact_json(&e.data))
                } else {
                    format!("{} {}", e.last_event_id, e.data)
                }
            })
            .collect();
        assert_eq!(
            seen,
            [reset.as_str(), "0-1 r0", "0-2 r1", "0-3 r2"],
            "shard {:?}",
            sub.shard()
        );
    }
    produce(&b, &topic, &[Rec::at(0, "live")]);
    for sub in &mut resumed {
        let live = sub.expect_events(1, EVENT_WAIT);
        assert_eq!(
            (live[0].last_event_id.as_str(), live[0].data.as_str()),
            ("0-4", "live"),
            "shard {:?}: live events follow",
            sub.shard()
        );
    }
}
