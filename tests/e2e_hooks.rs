//! End to end: sync HTTP hooks (`[[hooks.publish]]`, `[[hooks.subscribe]]`) against a real
//! hook service (`tests/webhooks/receiver.py` answering on a plan): a hook rejects, changes and
//! routes publishes, refuses streams (SSE, WebSocket upgrade, WebSocket subscribe message),
//! and when it is down or slow the failure policy decides (closed: 503, open: accepted), with
//! the circuit breaker sparing a dead hook further calls.
mod common;

use std::time::{Duration, Instant};

use common::receiver::Receiver;
use common::ws::WsClient;
use common::{config_file, free_port, http_request, Gateway, SseClient};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(10);

/// One hook named `check`; `extra` may set `timeout_ms` (else 1000).
fn hook_toml(kind: &str, url: &str, extra: &str) -> String {
    let timeout = if extra.contains("timeout_ms") {
        ""
    } else {
        "timeout_ms = 1000\n"
    };
    format!("[[hooks.{kind}]]\nname = \"check\"\nurl = \"{url}\"\n{timeout}{extra}\n")
}

/// A hook service that accepts unless its plan says otherwise.
fn hook_service() -> Receiver {
    let hook = Receiver::start(None, None);
    hook.plan(r#"{"default": {"body": {"action": "accept"}}}"#);
    hook
}

fn publish(gw: &Gateway, topic: &str, query: &str, body: &str) -> (u16, String) {
    let r = http_request(
        gw.addr(),
        "POST",
        &format!("/topics/{topic}/events{query}"),
        &[],
        body.as_bytes(),
    )
    .expect("publish");
    (r.status, r.text())
}

#[test]
fn a_publish_hook_sees_the_publish_and_rejects_changes_or_routes_it() {
    let hook = hook_service();
    let toml = hook_toml("publish", &hook.url("/publish"), "topics = [\"orders.**\"]");
    let gw = Gateway::start(&["--config", &config_file(&toml)]);
    let mut orders = SseClient::connect(gw.addr(), "/topics/orders.eu/events", &[]);

    // Accept (empty 200), and what the hook was told.
    let (status, _) = publish(&gw, "orders.eu", "?event=created&key=k", "first");
    assert_eq!(status, 200);
    let told = &hook.posts()[0];
    let req: Value = serde_json::from_str(told["body"].as_str().unwrap_or("")).expect("json");
    assert_eq!(req["hook"], "publish");
    assert_eq!(req["topic"], "orders.eu");
    assert_eq!(req["type"], "created");
    assert_eq!(req["key"], "k");
    assert_eq!(req["data"][0], "first");
    assert_eq!(req["principal"], "anonymous");
    assert_eq!(orders.next_event(WAIT).expect("first").data, "first");

    // Reject: the client gets the hook's status and reason.
    hook.plan(r#"[{"body": {"action": "reject", "status": 451, "reason": "embargoed"}}]"#);
    let (status, text) = publish(&gw, "orders.eu", "", "second");
    assert_eq!(status, 451, "{text}");
    assert!(
        text.contains("embargoed") && text.contains("check"),
        "{text}"
    );

    // Modify data and type.
    hook.plan(r#"[{"body": {"action": "modify", "data": "CHANGED", "type": "audited"}}]"#);
    assert_eq!(publish(&gw, "orders.eu", "?event=created", "third").0, 200);
    let ev = orders.next_event(WAIT).expect("changed");
    assert_eq!(
        (ev.data.as_str(), ev.event_type.as_str()),
        ("CHANGED", "audited")
    );

    // Route to other topics.
    let mut a = SseClient::connect(gw.addr(), "/topics/routed.a/events", &[]);
    let mut b = SseClient::connect(gw.addr(), "/topics/routed.b/events", &[]);
    hook.plan(r#"[{"body": {"action": "modify", "topics": ["routed.a", "routed.b"]}}]"#);
    let (status, text) = publish(&gw, "orders.eu", "", "fourth");
    assert_eq!(status, 200, "{text}");
    let ids: Value = serde_json::from_str(&text).expect("ids");
    assert_eq!(ids["ids"].as_array().map(Vec::len), Some(2), "{text}");
    assert_eq!(a.next_event(WAIT).expect("a").data, "fourth");
    assert_eq!(b.next_event(WAIT).expect("b").data, "fourth");

    // A hook that hands back something invalid fails the publish (502), it is not published.
    hook.plan(r#"[{"body": {"action": "modify", "topics": ["gateway.x"]}}]"#);
    assert_eq!(publish(&gw, "orders.eu", "", "fifth").0, 502);

    // Topics the hook is not configured for are not asked about.
    let asked = hook.posts().len();
    assert_eq!(publish(&gw, "other", "", "x").0, 200);
    assert_eq!(hook.posts().len(), asked);
    assert!(
        orders.events_for(Duration::from_millis(300)).is_empty(),
        "nothing else reached orders.eu"
    );
}

#[test]
fn failure_policies_and_the_circuit_breaker() {
    // Nothing listens on this port: every call fails at once.
    let dead = format!("http://127.0.0.1:{}/gone", free_port());
    let closed = hook_toml(
        "publish",
        &dead,
        "topics = [\"closed.*\"]\nbreaker_failures = 3\nbreaker_open_ms = 60000",
    );
    let open = hook_toml(
        "publish",
        &dead,
        "topics = [\"open.*\"]\nfailure = \"open\"",
    );
    let gw = Gateway::start(&["--config", &config_file(&format!("{closed}\n{open}"))]);
    let (status, text) = publish(&gw, "closed.a", "", "x");
    assert_eq!(status, 503, "{text}");
    assert!(text.contains("fails closed"), "{text}");
    assert_eq!(publish(&gw, "open.a", "", "x").0, 200, "fail open");
    for _ in 0..4 {
        assert_eq!(publish(&gw, "closed.a", "", "x").0, 503);
    }
    let r = http_request(gw.addr(), "GET", "/metrics", &[], b"").expect("metrics");
    let text = r.text();
    let calls = common::kafka::metric_sum(&text, "sluicegate_hook_calls_total").unwrap_or(0.0);
    // closed.*: 3 calls open the breaker, the next 2 are answered without a call; open.*: 1.
    assert_eq!(calls, 4.0, "{text}");

    // A slow hook: past its budget it failed; closed refuses, open lets the publish through.
    let slow = Receiver::start(None, None);
    slow.plan(r#"{"default": {"sleep": 2}}"#);
    let closed = hook_toml(
        "publish",
        &slow.url("/slow"),
        "timeout_ms = 300\ntopics = [\"t\"]",
    );
    let open = hook_toml(
        "publish",
        &slow.url("/slow"),
        "timeout_ms = 300\ntopics = [\"u\"]\nfailure = \"open\"",
    );
    let gw = Gateway::start(&["--config", &config_file(&format!("{closed}\n{open}"))]);
    let started = Instant::now();
    assert_eq!(publish(&gw, "u", "", "x").0, 200, "slow, fail open");
    assert!(started.elapsed() < Duration::from_millis(1900));
    let started = Instant::now();
    let (status, text) = publish(&gw, "t", "", "x");
    assert_eq!(status, 503, "{text}");
    assert!(text.contains("300 ms"), "{text}");
    assert!(
        started.elapsed() < Duration::from_millis(1900),
        "answered at the budget, not the hook"
    );
}

#[test]
fn a_subscribe_hook_refuses_streams_and_subscribe_messages() {
    let hook = Receiver::start(None, None);
    hook.plan(
        r#"{"default": {"body": {"action": "reject", "status": 403, "reason": "members only"}}}"#,
    );
    let toml = hook_toml("subscribe", &hook.url("/sub"), "topics = [\"members.*\"]");
    let gw = Gateway::start(&["--config", &config_file(&toml)]);
    let sse = SseClient::open(gw.addr(), "/topics/members.news/events", &[]).expect("open");
    assert_eq!(sse.status(), 403);
    let told: Value =
        serde_json::from_str(hook.posts()[0]["body"].as_str().unwrap_or("")).expect("json");
    assert_eq!(told["hook"], "subscribe");
    assert_eq!(told["topics"][0], "members.news");
    assert_eq!(told["transport"], "sse");
    assert_eq!(
        SseClient::open(gw.addr(), "/topics/public/events", &[])
            .expect("open")
            .status(),
        200
    );
    let r = http_request(
        gw.addr(),
        "GET",
        "/topics/members.news/ws",
        &[
            ("upgrade", "websocket"),
            ("connection", "Upgrade"),
            ("sec-websocket-version", "13"),
            ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ],
        b"",
    )
    .expect("upgrade");
    assert_eq!(r.status, 403, "{}", r.text());
    let mut ws = WsClient::connect(gw.addr(), "/ws", &[]);
    ws.send_text(r#"{"op":"subscribe","id":1,"topic":"members.chat"}"#)
        .expect("send");
    let answer = ws.next_message(WAIT).expect("answer");
    let v: Value = serde_json::from_slice(&answer.payload).expect("json");
    assert_eq!(
        (v["type"].as_str(), v["status"].as_u64()),
        (Some("error"), Some(403)),
        "{v}"
    );
    assert!(
        v["message"]
            .as_str()
            .is_some_and(|m| m.contains("members only")),
        "{v}"
    );
}
