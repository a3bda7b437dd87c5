//! End to end against a real Kafka-protocol broker: a WebSocket on plain `/ws` resumes one topic
//! by message (fetched back from Kafka, the gateway never read it) while another topic it
//! subscribed to runs live, and unsubscribes that one while the first is still read back.
//!
//! Needs `SLUICEGATE_TEST_KAFKA=127.0.0.1:PORT` (`tests/services.sh start` prints it) and
//! Python's `kafka-python`.
mod common;

use common::kafka::{broker, create_topic, kafka_gateway_from, produce, unique, Rec};
use common::ws::{ack_topics, WsClient, TEXT};
use std::time::Duration;

/// A record goes producer -> broker -> fetch -> ring -> socket: generous.
const EVENT_WAIT: Duration = Duration::from_secs(8);

fn next(ws: &mut WsClient) -> serde_json::Value {
    let frame = ws.next_message(EVENT_WAIT).expect("a message");
    assert_eq!(frame.opcode, TEXT, "{frame:?}");
    serde_json::from_slice(&frame.payload).expect("JSON")
}

fn acked(ws: &mut WsClient, request: &str) -> Vec<String> {
    ws.send_text(request).expect("send");
    ack_topics(&next(ws))
}

#[test]
fn a_topic_resumed_by_message_is_read_back_from_kafka_while_another_runs_live() {
    let b = broker();
    let (ta, tb) = (unique("ws-a"), unique("ws-b"));
    create_topic(&b, &ta, 2);
    create_topic(&b, &tb, 1);
    let old: Vec<Rec> = (0..10).map(|i| Rec::at(i % 2, &format!("a{i}"))).collect();
    produce(&b, &ta, &old);
    // `latest`: the gateway never reads a0..a9 itself; a resume must fetch them back.
    let gw = kafka_gateway_from(&b, &[&ta, &tb], "latest", 2, &[]);
    let mut ws = WsClient::connect(gw.addr(), "/ws", &[]);
    assert_eq!(
        acked(
            &mut ws,
            &format!(r#"{{"op":"subscribe","id":1,"topic":"{tb}"}}"#)
        ),
        [tb.as_str()]
    );
    let live = |range: std::ops::Range<i32>| -> Vec<Rec> {
        range.map(|i| Rec::at(0, &format!("b{i}"))).collect()
    };
    produce(&b, &tb, &live(0..5));
    let mut b_seen: Vec<String> = (0..5)
        .map(|_| next(&mut ws)["data"].as_str().unwrap_or("").to_owned())
        .collect();
    // Resume `ta` from its start: Kafka ids have epoch 0, one position per partition.
    assert_eq!(
        acked(
            &mut ws,
            &format!(r#"{{"op":"subscribe","id":2,"topic":"{ta}","lastEventId":"0-0.0"}}"#)
        ),
        [tb.as_str(), ta.as_str()]
    );
    produce(&b, &tb, &live(5..10));
    let mut a_seen: Vec<(String, String)> = Vec::new();
    while a_seen.len() < 10 || b_seen.len() < 10 {
        let v = next(&mut ws);
        let (topic, data) = (
            v["topic"].as_str().unwrap_or(""),
            v["data"].as_str().unwrap_or("").to_owned(),
        );
        if topic == ta {
            a_seen.push((v["id"].as_str().unwrap_or("").to_owned(), data));
        } else {
            assert_eq!(topic, tb, "{v}");
            b_seen.push(data);
        }
    }
    let expected_b: Vec<String> = (0..10).map(|i| format!("b{i}")).collect();
    assert_eq!(b_seen, expected_b, "b: live, in order, no gap, no repeat");
    for p in 0..2 {
        let of_p: Vec<&str> = a_seen
            .iter()
            .map(|(_, d)| d.as_str())
            .filter(|d| d[1..].parse::<usize>().is_ok_and(|i| i % 2 == p))
            .collect();
        let want: Vec<String> = (0..10)
            .filter(|i| i % 2 == p)
            .map(|i| format!("a{i}"))
            .collect();
        assert_eq!(of_p, want, "partition {p} of a, in order, once each");
    }
    // a's ids are cursors over a's two partitions alone; the last is where a stands.
    let last = &a_seen[9].0;
    assert_eq!(last, "0-5.5", "{a_seen:?}");
    // Unsubscribe b; a goes on live.
    assert_eq!(
        acked(
            &mut ws,
            &format!(r#"{{"op":"unsubscribe","id":3,"topic":"{tb}"}}"#)
        ),
        [ta.as_str()]
    );
    produce(&b, &tb, &live(10..11));
    produce(&b, &ta, &[Rec::at(1, "a-live")]);
    let v = next(&mut ws);
    assert_eq!(
        (v["topic"].as_str(), v["data"].as_str()),
        (Some(ta.as_str()), Some("a-live"))
    );
}
