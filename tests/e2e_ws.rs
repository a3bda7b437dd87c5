//! End to end over loopback: WebSocket subscribers (JSON envelopes and raw mode), publishing
//! over the socket, resume, pings and pongs, close codes, the handshake's refusals, and SSE and
//! WebSocket subscribers of one topic seeing the same events in the same order.
mod common;

use common::ws::{masked_frame, WsClient, BINARY, CLOSE, PING, PONG, TEXT};
use common::{config_file, http_request, sha256_hex, Gateway, SseClient, EVENT_TIMEOUT};
use std::time::Duration;

fn json(frame: &common::ws::Frame) -> serde_json::Value {
    assert_eq!(frame.opcode, TEXT, "{frame:?}");
    serde_json::from_slice(&frame.payload)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", frame.text()))
}

#[test]
fn a_websocket_subscriber_gets_each_event_as_a_json_envelope() {
    let gw = Gateway::start(&[]);
    let mut ws = WsClient::connect(gw.addr(), "/topics/orders/ws", &[]);
    let data = "line one\nline \"two\" é ✓\ttab";
    let ids = gw.publish_with("orders", "?event=created", &[], data.as_bytes());
    let frame = ws.next_message(EVENT_TIMEOUT).expect("the event");
    assert!(frame.fin);
    let v = json(&frame);
    assert_eq!(v["topic"], "orders");
    assert_eq!(v["type"], "created");
    assert_eq!(v["data"], data);
    assert_eq!(v["id"], ids[0].as_str(), "the same id an SSE client gets");
    // Untyped events say so with null.
    gw.publish("orders", "plain");
    let v = json(&ws.next_message(EVENT_TIMEOUT).expect("second"));
    assert_eq!(v["type"], serde_json::Value::Null);
    assert_eq!(v["data"], "plain");
}

#[test]
fn raw_mode_sends_just_the_data() {
    let gw = Gateway::start(&[]);
    let mut by_query = WsClient::connect(gw.addr(), "/topics/t/ws?mode=raw", &[]);
    let mut by_protocol = WsClient::connect(
        gw.addr(),
        "/topics/t/ws",
        &[("Sec-WebSocket-Protocol", "chat, sluicegate.raw")],
    );
    assert_eq!(
        by_protocol.header("sec-websocket-protocol"),
        Some("sluicegate.raw")
    );
    gw.publish("t", "{\"n\":1}");
    for ws in [&mut by_query, &mut by_protocol] {
        let frame = ws.next_message(EVENT_TIMEOUT).expect("event");
        assert_eq!(frame.text(), "{\"n\":1}");
    }
    // Raw mode is for one topic.
    let refused = WsClient::open(gw.addr(), "/ws?topic=a&topic=b&mode=raw", &[]).unwrap();
    assert_eq!(refused.status, 400);
}

#[test]
fn several_topics_on_one_socket_carry_a_cursor_and_resume_from_it() {
    let gw = Gateway::start(&[]);
    let mut ws = WsClient::connect(gw.addr(), "/ws?topic=a&topic=b", &[]);
    gw.publish("a", "a1");
    gw.publish("b", "b1");
    let first = json(&ws.next_message(EVENT_TIMEOUT).expect("a1"));
    let second = json(&ws.next_message(EVENT_TIMEOUT).expect("b1"));
    assert_eq!(
        (first["topic"].as_str(), first["data"].as_str()),
        (Some("a"), Some("a1"))
    );
    assert_eq!(
        (second["topic"].as_str(), second["data"].as_str()),
        (Some("b"), Some("b1"))
    );
    let cursor = first["id"].as_str().expect("id").to_owned();
    drop(ws);
    gw.publish("a", "a2");
    // Resume after the first event: b1 and a2 come back.
    let mut again = WsClient::connect(
        gw.addr(),
        &format!("/ws?topic=a&topic=b&lastEventId={cursor}"),
        &[],
    );
    let mut got: Vec<String> = (0..2)
        .map(|_| {
            let v = json(&again.next_message(EVENT_TIMEOUT).expect("replayed"));
            v["data"].as_str().unwrap_or("").to_owned()
        })
        .collect();
    got.sort();
    assert_eq!(got, ["a2", "b1"]);
}

#[test]
fn publishing_over_the_socket_is_acknowledged_and_reaches_sse_and_websocket_alike() {
    let gw = Gateway::start(&["--shards", "2"]);
    // An SSE and a WebSocket subscriber on each shard (SO_REUSEPORT picks the shard: connect
    // until each lands where wanted).
    let sse_on = |shard: usize| {
        (0..200)
            .map(|_| SseClient::connect(gw.addr(), "/topics/mixed/events", &[]))
            .find(|c| c.shard() == Some(shard))
            .unwrap_or_else(|| panic!("no SSE connection landed on shard {shard}"))
    };
    let ws_on = |shard: usize| {
        (0..200)
            .map(|_| WsClient::connect(gw.addr(), "/topics/mixed/ws", &[]))
            .find(|c| c.header("x-sluicegate-shard") == Some(&shard.to_string()))
            .unwrap_or_else(|| panic!("no WebSocket landed on shard {shard}"))
    };
    let mut sses = [sse_on(0), sse_on(1)];
    let mut wss = [ws_on(0), ws_on(1)];
    let mut publisher = WsClient::connect(gw.addr(), "/topics/other/ws", &[]);
    for i in 0..20 {
        publisher
            .send_text(&format!(
                r#"{{"op":"publish","id":{i},"topic":"mixed","data":"m{i}","type":"t"}}"#
            ))
            .unwrap();
    }
    let mut acked = Vec::new();
    while acked.len() < 20 {
        let v = json(&publisher.next_message(EVENT_TIMEOUT).expect("ack"));
        assert_eq!(v["type"], "ack", "{v}");
        acked.push(v["id"].as_i64().expect("request id"));
    }
    acked.sort();
    assert_eq!(acked, (0..20).collect::<Vec<i64>>());
    let mut seen: Vec<Vec<String>> = Vec::new();
    for ws in &mut wss {
        seen.push(
            (0..20)
                .map(|_| {
                    json(&ws.next_message(EVENT_TIMEOUT).expect("ws event"))["data"]
                        .as_str()
                        .unwrap_or("")
                        .to_owned()
                })
                .collect(),
        );
    }
    for sse in &mut sses {
        seen.push(
            sse.expect_events(20, EVENT_TIMEOUT)
                .into_iter()
                .map(|e| e.data)
                .collect(),
        );
    }
    for other in &seen[1..] {
        assert_eq!(
            other, &seen[0],
            "same events, same order on every shard and transport"
        );
    }
    let mut sorted = seen[0].clone();
    sorted.sort();
    let mut expected: Vec<String> = (0..20).map(|i| format!("m{i}")).collect();
    expected.sort();
    assert_eq!(sorted, expected);
    // A bad request gets an error with the HTTP status and message.
    publisher
        .send_text(r#"{"op":"publish","id":"x","topic":"gateway.sys","data":"no"}"#)
        .unwrap();
    let v = json(&publisher.next_message(EVENT_TIMEOUT).expect("error"));
    assert_eq!(
        (v["type"].as_str(), v["status"].as_i64()),
        (Some("error"), Some(403))
    );
    assert_eq!(v["id"], "x");
    publisher.send_text("not json").unwrap();
    let v = json(&publisher.next_message(EVENT_TIMEOUT).expect("error"));
    assert_eq!(v["status"], 400);
}

#[test]
fn pings_are_answered_and_a_silent_client_is_closed() {
    let path = config_file("[ws]\nping_interval_ms = 300\n");
    let gw = Gateway::start(&["--config", &path]);
    // A client that never answers the server's pings is closed with 1008.
    let mut silent = WsClient::connect(gw.addr(), "/topics/t/ws", &[]);
    let mut saw_ping = false;
    let close = loop {
        let frame = silent.next_frame(Duration::from_secs(10)).expect("a frame");
        match frame.opcode {
            PING => saw_ping = true,
            CLOSE => break frame,
            other => panic!("unexpected opcode {other}"),
        }
    };
    assert!(saw_ping);
    assert_eq!(close.close_code(), Some(1008), "{}", close.close_reason());
    // A client that answers pings stays: its pings are answered too, and over several ping
    // intervals (next_message answers the server's pings as it reads) it is not closed.
    let mut live = WsClient::connect(gw.addr(), "/topics/t/ws", &[]);
    live.send_frame(true, 0, PING, b"hi").unwrap();
    let pong = loop {
        let f = live.next_frame(EVENT_TIMEOUT).expect("pong");
        if f.opcode == PING {
            live.send_frame(true, 0, PONG, &f.payload).unwrap();
            continue;
        }
        break f;
    };
    assert_eq!((pong.opcode, pong.payload.as_slice()), (PONG, &b"hi"[..]));
    // Five ping intervals, answering each ping.
    let deadline = std::time::Instant::now() + Duration::from_millis(1500);
    let mut pings = 0;
    while let Some(f) =
        live.next_frame(deadline.saturating_duration_since(std::time::Instant::now()))
    {
        assert_eq!(f.opcode, PING, "only pings while idle: {f:?}");
        live.send_frame(true, 0, PONG, &f.payload).unwrap();
        pings += 1;
    }
    assert!(pings >= 1, "the server pings every 300 ms");
    gw.publish("t", "still here");
    let v = json(&live.next_message(EVENT_TIMEOUT).expect("event"));
    assert_eq!(v["data"], "still here");
}

#[test]
fn protocol_errors_close_with_their_codes() {
    let path = config_file("[ws]\nmax_message_bytes = 1024\nmax_frame_bytes = 1024\n");
    let gw = Gateway::start(&["--config", &path]);
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        (
            "unmasked client frame",
            masked_frame(true, 0, TEXT, b"{}", false),
            1002,
        ),
        (
            "reserved bit",
            masked_frame(true, 1, TEXT, b"{}", true),
            1002,
        ),
        (
            "unknown opcode",
            masked_frame(true, 0, 0x3, b"", true),
            1002,
        ),
        (
            "invalid UTF-8",
            masked_frame(true, 0, TEXT, b"\xff\xfe", true),
            1007,
        ),
        (
            "too big",
            masked_frame(true, 0, TEXT, &[b'a'; 2000], true),
            1009,
        ),
        ("binary", masked_frame(true, 0, BINARY, b"\x01", true), 1003),
        (
            "fragmented ping",
            masked_frame(false, 0, PING, b"", true),
            1002,
        ),
    ];
    for (what, bytes, code) in cases {
        let mut ws = WsClient::connect(gw.addr(), "/topics/t/ws", &[]);
        ws.send_raw(&bytes).unwrap();
        let close = loop {
            let f = ws
                .next_frame(EVENT_TIMEOUT)
                .unwrap_or_else(|| panic!("{what}: no close"));
            if f.opcode == CLOSE {
                break f;
            }
        };
        assert_eq!(
            close.close_code(),
            Some(code),
            "{what}: {}",
            close.close_reason()
        );
        assert!(
            ws.wait_eof(EVENT_TIMEOUT),
            "{what}: the connection stays open"
        );
    }
    // A client's close is answered with its code, then the connection ends.
    let mut ws = WsClient::connect(gw.addr(), "/topics/t/ws", &[]);
    ws.send_frame(true, 0, CLOSE, &1000u16.to_be_bytes())
        .unwrap();
    let reply = ws.next_frame(EVENT_TIMEOUT).expect("close reply");
    assert_eq!(reply.close_code(), Some(1000));
    assert!(ws.wait_eof(EVENT_TIMEOUT));
}

#[test]
fn bad_handshakes_are_refused_with_the_right_status() {
    let gw = Gateway::start(&[]);
    let r = http_request(
        gw.addr(),
        "GET",
        "/topics/t/ws",
        &[
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Version", "12"),
            ("Sec-WebSocket-Key", common::ws::KEY),
        ],
        b"",
    )
    .unwrap();
    assert_eq!(r.status, 426, "{}", r.text());
    assert_eq!(r.header("sec-websocket-version"), Some("13"));
    let r = http_request(gw.addr(), "GET", "/topics/t/ws", &[], b"").unwrap();
    assert_eq!(r.status, 400, "{}", r.text());
    let r = http_request(gw.addr(), "POST", "/topics/t/ws", &[], b"x").unwrap();
    assert_eq!(r.status, 405);
}

#[test]
fn draining_closes_websockets_with_going_away() {
    let mut gw = Gateway::start(&[]);
    let mut ws = WsClient::connect(gw.addr(), "/topics/t/ws", &[]);
    gw.publish("t", "before");
    assert_eq!(
        json(&ws.next_message(EVENT_TIMEOUT).expect("event"))["data"],
        "before"
    );
    gw.sigterm();
    let close = ws.next_message(Duration::from_secs(10)).expect("close");
    assert_eq!(close.close_code(), Some(1001), "{}", close.close_reason());
    assert!(gw
        .wait_exit(Duration::from_secs(10))
        .is_some_and(|s| s.success()));
}

#[test]
fn websockets_authenticate_by_query_token_and_check_the_origin() {
    const KEY: &str = "ws-key-1";
    let toml = format!(
        "[http]\ncors_allow_origins = [\"https://app.test\"]\n\n[[auth.api_keys]]\nname = \"w\"\n\
         sha256 = \"{}\"\npublish = [\"t\"]\nsubscribe = [\"t\"]\n",
        sha256_hex(KEY)
    );
    let gw = Gateway::start(&["--config", &config_file(&toml)]);
    let refused = WsClient::open(gw.addr(), "/topics/t/ws", &[]).unwrap();
    assert_eq!(refused.status, 401);
    let forbidden =
        WsClient::open(gw.addr(), &format!("/topics/u/ws?access_token={KEY}"), &[]).unwrap();
    assert_eq!(forbidden.status, 403);
    let evil = WsClient::open(
        gw.addr(),
        &format!("/topics/t/ws?access_token={KEY}"),
        &[("Origin", "https://evil.test")],
    )
    .unwrap();
    assert_eq!(evil.status, 403);
    let mut ws = WsClient::connect(
        gw.addr(),
        &format!("/topics/t/ws?access_token={KEY}"),
        &[("Origin", "https://app.test")],
    );
    ws.send_text(r#"{"op":"publish","id":1,"topic":"t","data":"by ws"}"#)
        .unwrap();
    let mut seen = Vec::new();
    while seen.len() < 2 {
        seen.push(json(
            &ws.next_message(EVENT_TIMEOUT).expect("ack and event"),
        ));
    }
    assert!(seen.iter().any(|v| v["type"] == "ack"), "{seen:?}");
    assert!(seen.iter().any(|v| v["data"] == "by ws"), "{seen:?}");
}

#[test]
fn a_websocket_that_stops_reading_is_closed_with_1008() {
    // A long grace: the test reads only after publishing, on a machine that may be busy.
    let gw = Gateway::start(&[
        "--set",
        "sse.max_queue_bytes=65536",
        "--set",
        "sse.cut_off_grace_ms=20000",
    ]);
    let mut slow = WsClient::connect(gw.addr(), "/topics/flood/ws", &[]);
    let mut conn = common::HttpConn::connect(gw.addr()).expect("publisher");
    let event = "x".repeat(8 * 1024);
    let cut_off = |gw: &Gateway| {
        http_request(gw.addr(), "GET", "/metrics", &[], b"")
            .map(|m| {
                m.text()
                    .contains("sluicegate_slow_consumer_disconnects_total{shard=\"0\"} 1")
            })
            .unwrap_or(false)
    };
    // Up to ~24 MB: far more than the socket buffers and the 64 KiB queue hold; stop once the
    // cut-off happened.
    for i in 0..3000 {
        common::publish_on(&mut conn, "flood", &event);
        if i % 10 == 9 && cut_off(&gw) {
            break;
        }
    }
    // The slow client's socket holds events written before the cut-off, then the close.
    let close = loop {
        let f = slow
            .next_frame(Duration::from_secs(30))
            .expect("frames, then a close");
        if f.opcode == CLOSE {
            break f;
        }
    };
    assert_eq!(close.close_code(), Some(1008));
    assert!(
        close.close_reason().contains("slow consumer"),
        "{}",
        close.close_reason()
    );
    let m = http_request(gw.addr(), "GET", "/metrics", &[], b"").unwrap();
    assert!(
        m.text()
            .contains("sluicegate_slow_consumer_disconnects_total{shard=\"0\"} 1"),
        "{}",
        m.text()
    );
}

#[test]
fn a_flood_of_requests_is_answered_once_each_with_an_ack_or_a_503() {
    let gw = Gateway::start(&[]);
    let mut ws = WsClient::connect(gw.addr(), "/topics/quiet/ws", &[]);
    // 300 requests in one write, not waiting for acks: at most 64 are handled at once, the
    // rest are refused with 503 (how many depends on how reads split them).
    let mut burst = Vec::new();
    for i in 0..300 {
        let text = format!(r#"{{"op":"publish","id":{i},"topic":"flood","data":"d{i}"}}"#);
        burst.extend(masked_frame(true, 0, TEXT, text.as_bytes(), true));
    }
    ws.send_raw(&burst).unwrap();
    let mut answered = vec![0u32; 300];
    for _ in 0..300 {
        let v = json(&ws.next_message(EVENT_TIMEOUT).expect("an answer"));
        let id = v["id"].as_u64().expect("request id") as usize;
        answered[id] += 1;
        match v["type"].as_str() {
            Some("ack") => {}
            Some("error") => assert_eq!(v["status"], 503, "{v}"),
            other => panic!("{other:?}: {v}"),
        }
    }
    assert!(answered.iter().all(|&n| n == 1), "{answered:?}");
}
