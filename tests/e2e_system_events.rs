//! End to end: the gateway's system events. A subscriber of `gateway.event.received` sees every
//! accepted publish (HTTP, WebSocket, webhook receiver, on any shard); refused publishes show on
//! `gateway.publish.rejected`; streams opening and closing on `gateway.subscriber.*`; webhook
//! attempts on `gateway.webhook.*`; a webhook endpoint on a system topic is an async hook.
//! Nothing is built while nobody listens (the counter stays at zero).
mod common;

use std::time::Duration;

use common::kafka::metric_sum;
use common::receiver::{create_webhook, Receiver};
use common::ws::WsClient;
use common::{config_file, http_request, Gateway, SseClient};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(10);
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn gateway(extra: &str) -> Gateway {
    let toml = format!(
        "[webhooks]\nallow_cidrs = [\"127.0.0.1/32\"]\nretry_schedule_s = [1]\nretry_jitter = 0.0\n\
         progress_interval_ms = 100\n{extra}\n"
    );
    Gateway::start(&["--config", &config_file(&toml), "--shards", "2"])
}

fn data(ev: &common::ParsedEvent) -> Value {
    serde_json::from_str(&ev.data).unwrap_or_else(|e| panic!("{e}: {}", ev.data))
}

fn metric(gw: &Gateway, name: &str) -> f64 {
    let r = http_request(gw.addr(), "GET", "/metrics", &[], b"").expect("metrics");
    metric_sum(&r.text(), name).unwrap_or(0.0)
}

#[test]
fn every_accepted_publish_is_received_and_refusals_are_rejected() {
    let gw = gateway(
        "[system_events]\ninclude_payload = true\nheaders = [\"content-type\", \"x-trace\"]\n",
    );
    gw.publish("quiet", "nobody listens yet");
    assert_eq!(
        metric(&gw, "sluicegate_system_events_total"),
        0.0,
        "nothing built"
    );
    let mut received = SseClient::connect(gw.addr(), "/topics/gateway.event.received/events", &[]);
    let mut rejected =
        SseClient::connect(gw.addr(), "/topics/gateway.publish.rejected/events", &[]);
    // Two shards: publish on each (new connections land on either).
    for i in 0..6 {
        gw.publish_with(
            "orders",
            "?event=created&key=k1",
            &[
                ("sluicegate-header-x-trace", "t-1"),
                ("sluicegate-header-other", "no"),
            ],
            format!("order {i}").as_bytes(),
        );
    }
    let mut ws = WsClient::connect(gw.addr(), "/ws", &[]);
    ws.send_text(r#"{"op":"publish","id":1,"topic":"orders","data":"over ws"}"#)
        .expect("send");
    let r = http_request(
        gw.addr(),
        "POST",
        "/webhook-receiver?topic=hooks",
        &[("content-type", "application/json")],
        br#"{"from":"provider"}"#,
    )
    .expect("webhook");
    assert_eq!(r.status, 202);
    let events: Vec<Value> = received.expect_events(8, WAIT).iter().map(data).collect();
    let http: Vec<&Value> = events.iter().filter(|e| e["via"] == "http").collect();
    assert_eq!(http.len(), 6, "{events:#?}");
    for e in &http {
        assert_eq!(e["topic"], "orders");
        assert_eq!(e["type"], "created");
        assert_eq!(e["key"], "k1");
        assert_eq!(e["count"], 1);
        assert_eq!(e["principal"], "anonymous");
        assert_eq!(
            e["headers"],
            json!({ "x-trace": "t-1" }),
            "only the configured headers"
        );
        assert!(e["ids"][0].as_str().is_some_and(|id| !id.is_empty()));
        assert!(e["data"][0]
            .as_str()
            .is_some_and(|d| d.starts_with("order ")));
    }
    let shards: std::collections::HashSet<u64> =
        http.iter().filter_map(|e| e["shard"].as_u64()).collect();
    assert!(!shards.is_empty());
    assert!(
        events
            .iter()
            .any(|e| e["via"] == "ws" && e["data"][0] == "over ws"),
        "{events:#?}"
    );
    let hook = events
        .iter()
        .find(|e| e["via"] == "webhook")
        .expect("webhook receiver");
    assert_eq!(hook["headers"]["content-type"], "application/json");
    assert_eq!(hook["size"], 19);

    let r = http_request(gw.addr(), "POST", "/topics/gateway.x/events", &[], b"no").expect("post");
    assert_eq!(r.status, 403);
    let r = http_request(
        gw.addr(),
        "POST",
        "/topics/orders/events?event=a%0Ab",
        &[],
        b"x",
    )
    .expect("post");
    assert_eq!(r.status, 400);
    // The two may come from different shards: in either order.
    let refusals: Vec<Value> = rejected.expect_events(2, WAIT).iter().map(data).collect();
    let forbidden = refusals
        .iter()
        .find(|r| r["status"] == 403)
        .expect("the 403");
    assert_eq!(forbidden["topic"], "gateway.x");
    assert!(forbidden["reason"]
        .as_str()
        .is_some_and(|r| r.contains("reserved")));
    assert!(refusals.iter().any(|r| r["status"] == 400), "{refusals:#?}");
    assert!(metric(&gw, "sluicegate_system_events_total") >= 10.0);
    assert_eq!(metric(&gw, "sluicegate_system_events_dropped_total"), 0.0);
}

#[test]
fn streams_opening_and_closing_are_told_with_the_reason() {
    let gw = gateway("");
    let mut watch = SseClient::connect(
        gw.addr(),
        "/events?topic=gateway.subscriber.connected&topic=gateway.subscriber.disconnected",
        &[],
    );
    // The watcher is told of its own stream first.
    let own = data(&watch.next_event(WAIT).expect("own connected"));
    assert_eq!(own["topics"][0], "gateway.subscriber.connected", "{own}");
    let client = SseClient::connect(gw.addr(), "/events?topic=a&topic=b", &[]);
    let connected = data(&watch.next_event(WAIT).expect("connected"));
    assert_eq!(connected["transport"], "sse");
    assert_eq!(connected["topics"], json!(["a", "b"]));
    drop(client);
    let disconnected = data(&watch.next_event(WAIT).expect("disconnected"));
    assert_eq!(disconnected["subscriber"], connected["subscriber"]);
    assert_eq!(disconnected["reason"], "closed");
    let ws = WsClient::connect(gw.addr(), "/topics/c/ws", &[]);
    let connected = data(&watch.next_event(WAIT).expect("ws connected"));
    assert_eq!(
        (connected["transport"].as_str(), &connected["topics"]),
        (Some("ws"), &json!(["c"]))
    );
    drop(ws);
    let disconnected = data(&watch.next_event(WAIT).expect("ws disconnected"));
    assert_eq!(disconnected["transport"], "ws");
}

#[test]
fn webhook_attempts_are_told_and_a_webhook_on_a_system_topic_is_an_async_hook() {
    let gw = gateway("");
    let rx = Receiver::start(Some(SECRET), None);
    rx.plan(r#"[{"status": 500}]"#);
    let hook = Receiver::start(Some(SECRET), None);
    let create = |url: String, topics: Value| {
        let body = json!({ "url": url, "topics": topics, "secret": SECRET });
        let r = create_webhook(gw.addr(), &body);
        assert_eq!(r.status, 201, "{}", r.text());
    };
    // The async hook: every accepted publish, pushed to a service.
    create(hook.url("/audit"), json!(["gateway.event.received"]));
    let mut watch = SseClient::connect(
        gw.addr(),
        "/events?topic=gateway.webhook.invocationFailed&topic=gateway.webhook.invoked",
        &[],
    );
    create(rx.url("/hook"), json!(["jobs"]));
    gw.publish("jobs", "work");
    let failed = data(&watch.next_event(WAIT).expect("invocationFailed"));
    assert_eq!(failed["attempt"], 1);
    assert_eq!(failed["status"], 500);
    assert_eq!(failed["gave_up"], false);
    assert!(
        failed["next_retry_s"].as_f64().is_some_and(|s| s > 0.0),
        "{failed}"
    );
    let invoked = data(&watch.next_event(WAIT).expect("invoked"));
    // The audit hook's own deliveries are of a system topic: they are not told (no loop),
    // so the next one here is the job's second attempt.
    assert_eq!(invoked["topic"], "jobs", "{invoked}");
    assert_eq!(
        (invoked["attempt"].as_u64(), invoked["status"].as_u64()),
        (Some(2), Some(200))
    );
    let audit = hook.wait_posts(1, WAIT);
    let told: Value = serde_json::from_str(audit[0]["body"].as_str().unwrap_or("")).expect("json");
    assert_eq!(told["topic"], "jobs");
    assert_eq!(audit[0]["verified"], true);
}
