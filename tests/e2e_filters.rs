//! Subscriber filters on headers (`?header.<name>=<value>`), with the embedded broker (publish
//! headers `Sluicegate-Header-<Name>`) and with Kafka (record headers from an independent
//! producer). Type and key filters are covered in e2e_kafka.rs.

mod common;

use std::time::Duration;

use common::kafka::{broker, create_topic, kafka_gateway, produce, unique, Rec};
use common::{Gateway, SseClient, EVENT_TIMEOUT};

fn data_of(sub: &mut SseClient, n: usize) -> Vec<String> {
    sub.expect_events(n, EVENT_TIMEOUT)
        .into_iter()
        .map(|e| e.data)
        .collect()
}

#[test]
fn header_filter_with_the_embedded_broker() {
    let gw = Gateway::start(&["--shards", "2"]);
    let mut eu = SseClient::connect(gw.addr(), "/topics/hf/events?header.region=eu", &[]);
    let mut all = SseClient::connect(gw.addr(), "/topics/hf/events", &[]);
    gw.publish_with("hf", "", &[("Sluicegate-Header-Region", "us")], b"one");
    gw.publish_with("hf", "", &[("Sluicegate-Header-Region", "eu")], b"two");
    gw.publish_with("hf", "", &[], b"three");
    gw.publish_with("hf", "", &[("Sluicegate-Header-Region", "eu")], b"four");
    assert_eq!(data_of(&mut all, 4), ["one", "two", "three", "four"]);
    assert_eq!(data_of(&mut eu, 2), ["two", "four"]);
    assert!(
        eu.next_event(Duration::from_millis(300)).is_none(),
        "a non-matching event got through"
    );
}

#[test]
fn header_filter_on_kafka_record_headers() {
    let b = broker();
    let topic = unique("e2e-hdr");
    create_topic(&b, &topic, 1);
    let gw = kafka_gateway(&b, &[&topic], 2, &[]);
    let mut sub = SseClient::connect(
        gw.addr(),
        &format!("/topics/{topic}/events?header.tenant=acme"),
        &[],
    );
    produce(
        &b,
        &topic,
        &[
            Rec::at(0, "r0").header("tenant", "other"),
            Rec::at(0, "r1").header("tenant", "acme"),
            Rec::at(0, "r2"),
            Rec::at(0, "r3").header("tenant", "acme").typed("created"),
        ],
    );
    let evs = sub.expect_events(2, EVENT_TIMEOUT);
    let got: Vec<(&str, &str)> = evs
        .iter()
        .map(|e| (e.data.as_str(), e.last_event_id.as_str()))
        .collect();
    assert_eq!(got, [("r1", "0-2"), ("r3", "0-4")]);
    assert!(
        sub.next_event(Duration::from_millis(300)).is_none(),
        "a non-matching record got through"
    );
}
