//! End to end over loopback: a WebSocket on plain `/ws` subscribes and unsubscribes by message.
//! Each topic is its own subscription (filters, and ids that resume that topic alone); adding
//! one while others run live loses and repeats nothing; refusals carry the HTTP statuses.
mod common;

use common::ws::{ack_topics, WsClient, TEXT};
use common::{config_file, sha256_hex, Gateway, EVENT_TIMEOUT};
use std::time::Duration;

fn json(frame: &common::ws::Frame) -> serde_json::Value {
    assert_eq!(frame.opcode, TEXT, "{frame:?}");
    serde_json::from_slice(&frame.payload)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", frame.text()))
}

fn next(ws: &mut WsClient) -> serde_json::Value {
    json(&ws.next_message(EVENT_TIMEOUT).expect("a message"))
}

/// Send `request` and return its answer (asserting nothing else arrives before it).
fn ask(ws: &mut WsClient, request: &str) -> serde_json::Value {
    ws.send_text(request).expect("send");
    let v = next(ws);
    assert!(v.get("topic").is_none(), "an event before the answer: {v}");
    v
}

/// Receive events until one of `topic` with `data` arrives; returns the events seen.
fn events_until(ws: &mut WsClient, topic: &str, data: &str) -> Vec<(String, String)> {
    let mut seen = Vec::new();
    loop {
        let v = next(ws);
        let pair = (
            v["topic"].as_str().unwrap_or("").to_owned(),
            v["data"].as_str().unwrap_or("").to_owned(),
        );
        let done = pair.0 == topic && pair.1 == data;
        seen.push(pair);
        if done {
            return seen;
        }
        assert!(seen.len() < 1000, "never got {topic}/{data}");
    }
}

#[test]
fn plain_ws_subscribes_filters_and_unsubscribes_by_message() {
    let gw = Gateway::start(&["--shards", "2"]);
    let mut ws = WsClient::connect(gw.addr(), "/ws", &[]);
    let v = ask(&mut ws, r#"{"op":"subscribe","id":1,"topic":"a"}"#);
    assert_eq!(
        (v["id"].as_i64(), ack_topics(&v)),
        (Some(1), vec!["a".into()])
    );
    let v = ask(
        &mut ws,
        r#"{"op":"subscribe","id":2,"topics":["b"],"type":"keep","headers":{"Region":"eu"}}"#,
    );
    assert_eq!(ack_topics(&v), ["a", "b"]);
    let ids_a = gw.publish("a", "a1");
    gw.publish_with(
        "b",
        "?event=drop",
        &[("Sluicegate-Header-Region", "eu")],
        b"b-type",
    );
    gw.publish_with(
        "b",
        "?event=keep",
        &[("Sluicegate-Header-Region", "us")],
        b"b-region",
    );
    gw.publish_with(
        "b",
        "?event=keep",
        &[("Sluicegate-Header-Region", "eu")],
        b"b1",
    );
    let first = next(&mut ws);
    assert_eq!(
        (first["topic"].as_str(), first["data"].as_str()),
        (Some("a"), Some("a1"))
    );
    assert_eq!(
        first["id"],
        ids_a.as_str(),
        "a one-partition topic's own id"
    );
    let second = next(&mut ws);
    assert_eq!(
        (second["topic"].as_str(), second["data"].as_str()),
        (Some("b"), Some("b1")),
        "b's filter passes only type keep with region eu"
    );
    let v = ask(&mut ws, r#"{"op":"unsubscribe","id":3,"topic":"a"}"#);
    assert_eq!(ack_topics(&v), ["b"]);
    gw.publish("a", "a-after");
    gw.publish_with(
        "b",
        "?event=keep",
        &[("Sluicegate-Header-Region", "eu")],
        b"b2",
    );
    let v = next(&mut ws);
    assert_eq!(
        (v["topic"].as_str(), v["data"].as_str()),
        (Some("b"), Some("b2")),
        "nothing of a after its unsubscribe was acknowledged"
    );
    // Subscribing to `a` again starts live: a-after is not replayed.
    let v = ask(&mut ws, r#"{"op":"subscribe","id":4,"topic":"a"}"#);
    assert_eq!(ack_topics(&v), ["b", "a"]);
    gw.publish("a", "a2");
    let v = next(&mut ws);
    assert_eq!(v["data"], "a2");
}

#[test]
fn each_topic_resumes_alone_and_a_resume_does_not_disturb_live_topics() {
    let gw = Gateway::start(&["--shards", "2"]);
    let mut ws = WsClient::connect(gw.addr(), "/ws", &[]);
    ack_topics(&ask(&mut ws, r#"{"op":"subscribe","id":1,"topic":"a"}"#));
    gw.publish("a", "a1");
    let a1 = next(&mut ws);
    let cursor = a1["id"].as_str().expect("id").to_owned();
    drop(ws);
    for i in 2..=4 {
        gw.publish("a", &format!("a{i}"));
    }
    let mut ws = WsClient::connect(gw.addr(), "/ws", &[]);
    ack_topics(&ask(&mut ws, r#"{"op":"subscribe","id":1,"topic":"b"}"#));
    for i in 0..10 {
        gw.publish("b", &format!("b{i}"));
    }
    // Resume `a` while `b` runs live: a's missed events replay, b's go on without a gap or a
    // repeat.
    ws.send_text(&format!(
        r#"{{"op":"subscribe","id":2,"topic":"a","lastEventId":"{cursor}"}}"#
    ))
    .unwrap();
    for i in 10..20 {
        gw.publish("b", &format!("b{i}"));
    }
    gw.publish("a", "a5");
    let mut a_seen = Vec::new();
    let mut b_seen = Vec::new();
    let mut acked = false;
    while a_seen.len() < 4 || b_seen.len() < 20 || !acked {
        let v = next(&mut ws);
        match v["topic"].as_str() {
            Some("a") => a_seen.push(v["data"].as_str().unwrap_or("").to_owned()),
            Some("b") => b_seen.push(v["data"].as_str().unwrap_or("").to_owned()),
            _ => {
                assert_eq!(ack_topics(&v), ["b", "a"]);
                assert!(a_seen.is_empty(), "a's events follow the ack");
                acked = true;
            }
        }
    }
    assert_eq!(a_seen, ["a2", "a3", "a4", "a5"]);
    let expected: Vec<String> = (0..20).map(|i| format!("b{i}")).collect();
    assert_eq!(b_seen, expected);
    assert!(
        ws.next_message(Duration::from_millis(200)).is_none(),
        "nothing more"
    );
}

#[test]
fn a_topic_of_several_partitions_resumes_from_its_own_cursor() {
    let cfg = config_file("[memory_broker]\npartitions = 2\n");
    let gw = Gateway::start(&["--config", &cfg]);
    let mut ws = WsClient::connect(gw.addr(), "/ws", &[]);
    ack_topics(&ask(&mut ws, r#"{"op":"subscribe","id":1,"topic":"p"}"#));
    ack_topics(&ask(&mut ws, r#"{"op":"subscribe","id":2,"topic":"q"}"#));
    for i in 0..4 {
        gw.publish("p", &format!("p{i}"));
    }
    gw.publish("q", "q0");
    let seen = events_until(&mut ws, "q", "q0");
    let p_ids: Vec<String> = (0..4)
        .map(|i| {
            let v = &seen[i];
            assert_eq!(v.0, "p");
            v.1.clone()
        })
        .collect();
    assert_eq!(p_ids, ["p0", "p1", "p2", "p3"]);
    drop(ws);
    // The id of p's second event names p's two partitions (not q's): resuming p with it gives
    // p2 and p3 (and whatever else p has since), whatever q did.
    let mut ws = WsClient::connect(gw.addr(), "/ws", &[]);
    ack_topics(&ask(&mut ws, r#"{"op":"subscribe","id":1,"topic":"p"}"#));
    gw.publish("p", "p-live");
    let mut ids = Vec::new();
    let live = next(&mut ws);
    ids.push(live["id"].as_str().unwrap_or("").to_owned());
    assert_eq!(
        ids[0].split('-').nth(1).map(|c| c.split('.').count()),
        Some(2),
        "a cursor over p's two partitions: {ids:?}"
    );
    drop(ws);
    let mut ws = WsClient::connect(gw.addr(), "/ws", &[]);
    let v = ask(
        &mut ws,
        &format!(
            r#"{{"op":"subscribe","id":1,"topic":"p","lastEventId":"{}"}}"#,
            ids[0]
        ),
    );
    assert_eq!(ack_topics(&v), ["p"]);
    gw.publish("p", "p-next");
    let v = next(&mut ws);
    assert_eq!(v["data"], "p-next", "resumed right after p-live");
}

#[test]
fn refusals_carry_the_http_status_and_say_what_was_wrong() {
    const KEY: &str = "sub-key-1";
    let toml = format!(
        "[sse]\nmax_topics_per_subscription = 3\n\n[[auth.api_keys]]\nname = \"s\"\n\
         sha256 = \"{}\"\npublish = [\"**\"]\nsubscribe = [\"open.**\"]\n",
        sha256_hex(KEY)
    );
    let gw = Gateway::start(&["--config", &config_file(&toml)]);
    let mut ws = WsClient::connect(gw.addr(), &format!("/ws?access_token={KEY}"), &[]);
    let status = |v: &serde_json::Value| {
        assert_eq!(v["type"], "error", "{v}");
        v["status"].as_i64().unwrap_or(0)
    };
    let v = ask(&mut ws, r#"{"op":"subscribe","id":1,"topic":"secret"}"#);
    assert_eq!(status(&v), 403, "outside the subscribe ACL: {v}");
    let v = ask(&mut ws, r#"{"op":"subscribe","id":2,"topic":"gateway.x"}"#);
    assert_eq!(status(&v), 403, "reserved: {v}");
    let v = ask(&mut ws, r#"{"op":"subscribe","id":3,"topic":"bad name"}"#);
    assert_eq!(status(&v), 400, "{v}");
    let v = ask(&mut ws, r#"{"op":"subscribe","id":4}"#);
    assert_eq!(status(&v), 400, "{v}");
    let v = ask(
        &mut ws,
        r#"{"op":"subscribe","id":5,"topics":["open.a","open.b"],"lastEventId":"x-1"}"#,
    );
    assert_eq!(status(&v), 400, "{v}");
    let v = ask(
        &mut ws,
        r#"{"op":"subscribe","id":6,"topic":"open.a","lastEventId":"nope"}"#,
    );
    assert_eq!(status(&v), 400, "{v}");
    ack_topics(&ask(
        &mut ws,
        r#"{"op":"subscribe","id":7,"topic":"open.a"}"#,
    ));
    let v = ask(&mut ws, r#"{"op":"subscribe","id":8,"topic":"open.a"}"#);
    assert_eq!(status(&v), 409, "{v}");
    let v = ask(
        &mut ws,
        r#"{"op":"subscribe","id":9,"topics":["open.b","open.c","open.d"]}"#,
    );
    assert_eq!(status(&v), 400, "four topics on a three-topic limit: {v}");
    let v = ask(&mut ws, r#"{"op":"unsubscribe","id":10,"topic":"open.z"}"#);
    assert_eq!(status(&v), 404, "{v}");
    let v = ask(
        &mut ws,
        r#"{"op":"subscribe","id":11,"topic":"open.b","data":"x"}"#,
    );
    assert_eq!(status(&v), 400, "{v}");
    // Nothing refused was applied: the connection still reads open.a alone.
    let v = ask(&mut ws, r#"{"op":"unsubscribe","id":12,"topic":"open.a"}"#);
    assert!(ack_topics(&v).is_empty());

    // Topics named in the URL form one subscription: one of them cannot leave alone.
    let mut url = WsClient::connect(
        gw.addr(),
        &format!("/ws?topic=open.a&topic=open.b&access_token={KEY}"),
        &[],
    );
    let v = ask(&mut url, r#"{"op":"unsubscribe","id":1,"topic":"open.a"}"#);
    assert_eq!(status(&v), 409, "{v}");
    let v = ask(
        &mut url,
        r#"{"op":"unsubscribe","id":2,"topics":["open.a","open.b"]}"#,
    );
    assert!(ack_topics(&v).is_empty());
    let v = ask(&mut url, r#"{"op":"subscribe","id":3,"topic":"open.c"}"#);
    assert_eq!(ack_topics(&v), ["open.c"]);
    gw.publish_with(
        "open.a",
        "",
        &[("Authorization", &format!("Bearer {KEY}"))],
        b"x",
    );
    gw.publish_with(
        "open.c",
        "",
        &[("Authorization", &format!("Bearer {KEY}"))],
        b"c1",
    );
    let v = next(&mut url);
    assert_eq!(
        (v["topic"].as_str(), v["data"].as_str()),
        (Some("open.c"), Some("c1"))
    );
}
