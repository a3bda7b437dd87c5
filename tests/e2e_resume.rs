//! End-to-end resume: a client that reconnects with `Last-Event-ID` (header or `?lastEventId=`)
//! gets exactly what it missed, then live events; one that asks for more than the gateway still
//! holds first gets a `reset` event.

mod common;

use common::{Gateway, ParsedEvent, SseClient, EVENT_TIMEOUT};
use std::time::Duration;

fn data(evs: &[ParsedEvent]) -> Vec<&str> {
    evs.iter().map(|e| e.data.as_str()).collect()
}

/// Receives 3 of 5 events, drops the connection, publishes 3 more, then reconnects with
/// `connect(last id seen)` and checks the replay is exactly events 4..8, then a live one.
fn resume_scenario(connect: impl Fn(&Gateway, &str) -> SseClient) {
    let gw = Gateway::start(&[]);
    let mut sub = SseClient::connect(gw.addr(), "/topics/resume/events", &[]);
    let ids: Vec<String> = (1..=5)
        .map(|i| gw.publish("resume", &format!("e{i}")))
        .collect();
    let seen = sub.expect_events(3, EVENT_TIMEOUT);
    assert_eq!(data(&seen), ["e1", "e2", "e3"]);
    assert_eq!(seen[2].last_event_id, ids[2]);
    drop(sub);

    for i in 6..=8 {
        gw.publish("resume", &format!("e{i}"));
    }
    let mut again = connect(&gw, &seen[2].last_event_id);
    let replay = again.expect_events(5, EVENT_TIMEOUT);
    assert_eq!(data(&replay), ["e4", "e5", "e6", "e7", "e8"]);
    assert_eq!(replay[0].last_event_id, ids[3]);
    assert_eq!(replay[1].last_event_id, ids[4]);
    assert!(
        again.next_event(Duration::from_millis(300)).is_none(),
        "no duplicates after the replay"
    );
    gw.publish("resume", "live");
    let live = again
        .next_event(EVENT_TIMEOUT)
        .expect("live event after the replay");
    assert_eq!(live.data, "live");
}

#[test]
fn resume_with_last_event_id_header() {
    resume_scenario(|gw, id| {
        SseClient::connect(gw.addr(), "/topics/resume/events", &[("Last-Event-ID", id)])
    });
}

#[test]
fn resume_with_last_event_id_query() {
    resume_scenario(|gw, id| {
        let path = format!("/topics/resume/events?lastEventId={}", percent_encode(id));
        SseClient::connect(gw.addr(), &path, &[])
    });
}

#[test]
fn resume_from_newest_id_replays_nothing() {
    let gw = Gateway::start(&[]);
    let mut last = String::new();
    for i in 0..3 {
        last = gw.publish("newest", &format!("old{i}"));
    }
    let mut sub = SseClient::connect(
        gw.addr(),
        "/topics/newest/events",
        &[("Last-Event-ID", &last)],
    );
    assert!(
        sub.next_event(Duration::from_millis(300)).is_none(),
        "nothing missed"
    );
    gw.publish("newest", "new");
    assert_eq!(sub.next_event(EVENT_TIMEOUT).expect("live").data, "new");
}

#[test]
fn resume_past_history_gets_reset_then_oldest_held() {
    // Memory mode: the history is all there is (the durable log reads older events back).
    let gw = Gateway::start(&[
        "--set",
        "memory_broker.history_events=5",
        "--set",
        "storage.mode=memory",
    ]);
    let first = gw.publish("short", "e0");
    for i in 1..=20 {
        gw.publish("short", &format!("e{i}"));
    }
    let mut sub = SseClient::connect(
        gw.addr(),
        "/topics/short/events",
        &[("Last-Event-ID", &first)],
    );
    let reset = sub.next_event(EVENT_TIMEOUT).expect("reset event");
    assert_eq!(
        reset.event_type, "reset",
        "first event when history was lost: {reset:?}"
    );
    assert!(
        reset.data.trim_start().starts_with('{'),
        "reset data is JSON: {:?}",
        reset.data
    );
    let held = sub.expect_events(5, EVENT_TIMEOUT);
    assert_eq!(data(&held), ["e16", "e17", "e18", "e19", "e20"]);
    assert!(
        sub.next_event(Duration::from_millis(300)).is_none(),
        "only what is held"
    );
    gw.publish("short", "e21");
    assert_eq!(sub.next_event(EVENT_TIMEOUT).expect("live").data, "e21");
}

/// Percent-encodes everything outside the unreserved set (ids are opaque strings).
fn percent_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
