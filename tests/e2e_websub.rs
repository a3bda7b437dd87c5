//! End to end: the WebSub hub (`POST /hub`) against an independent subscriber
//! (`tests/webhooks/receiver.py`: it answers intent verification by echoing the challenge and
//! checks `X-Hub-Signature` with Python's `hmac`).
//!
//! The websub.rocks hub test list (online only, so not runnable here), and where each is
//! covered:
//! - 100 Typical subscriber request: `subscribe_verify_deliver_unsubscribe`.
//! - 101 Subscriber includes a secret: same test (signatures checked by the subscriber).
//! - 102 Subscriber sends additional parameters: same test (`hub.extra` is ignored).
//! - 103 Subscriber re-subscribes before the subscription expires:
//!   `resubscribing_renews_the_lease_and_topics_keep_their_own_secrets`.
//! - 104 Unsubscribe request: `subscribe_verify_deliver_unsubscribe`.
//! - 105 Plaintext content: same test (a `text/plain` event keeps its content type).
//! - 106 JSON content: same test (an `application/json` event).
mod common;

use std::time::{Duration, Instant};

use common::receiver::Receiver;
use common::{config_file, http_request, Gateway};
use hmac::Hmac;
use serde_json::Value;
use sha2::Sha256;

const HUB_SECRET: &str = "websub-secret-1";
const WAIT: Duration = Duration::from_secs(20);

fn gateway(extra: &str) -> Gateway {
    let toml = format!(
        "[webhooks]\nallow_cidrs = [\"127.0.0.1/32\"]\nretry_schedule_s = [1]\nretry_jitter = 0.0\n\
         timeout_ms = 2000\nlease_min_s = 1\n{extra}\n"
    );
    Gateway::start(&["--config", &config_file(&toml)])
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// POST a hub request; its status and body.
fn hub(gw: &Gateway, fields: &[(&str, &str)]) -> (u16, String) {
    let body: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect();
    let r = http_request(
        gw.addr(),
        "POST",
        "/hub",
        &[("content-type", "application/x-www-form-urlencoded")],
        body.join("&").as_bytes(),
    )
    .expect("POST /hub");
    (r.status, r.text())
}

fn subscribe(gw: &Gateway, callback: &str, topic: &str, secret: Option<&str>, lease: &str) {
    let mut fields = vec![
        ("hub.mode", "subscribe"),
        ("hub.topic", topic),
        ("hub.callback", callback),
        ("hub.lease_seconds", lease),
        ("hub.extra", "ignored"),
    ];
    if let Some(s) = secret {
        fields.push(("hub.secret", s));
    }
    let (status, body) = hub(gw, &fields);
    assert_eq!(status, 202, "{body}");
}

/// Verification GETs for `mode` seen so far.
fn verifications(rx: &Receiver, mode: &str) -> Vec<Value> {
    rx.entries()
        .into_iter()
        .filter(|e| e["method"] == "GET" && e["query"]["hub.mode"] == mode)
        .collect()
}

fn wait_verification(rx: &Receiver, mode: &str, n: usize) -> Vec<Value> {
    rx.wait_until(&format!("{n} {mode} verification(s)"), WAIT, |_| {
        verifications(rx, mode).len() >= n
    });
    verifications(rx, mode)
}

/// Wait until the hub has stored the verified subscription (it does so right after the
/// verification answer).
fn wait_listed(gw: &Gateway, callback: &str, present: bool) {
    let deadline = Instant::now() + WAIT;
    loop {
        let r = http_request(gw.addr(), "GET", "/webhooks", &[], b"").expect("GET /webhooks");
        let v: Value = serde_json::from_str(&r.text()).expect("json");
        let listed = v["webhooks"]
            .as_array()
            .is_some_and(|a| a.iter().any(|w| w["url"] == callback));
        if listed == present {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{callback} listed = {listed}: {v}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn posts_to(rx: &Receiver, path: &str) -> Vec<Value> {
    rx.posts()
        .into_iter()
        .filter(|p| p["path"] == path)
        .collect()
}

#[test]
fn subscribe_verify_deliver_unsubscribe() {
    let gw = gateway("");
    let rx = Receiver::start(None, Some(HUB_SECRET));
    let callback = rx.url("/cb?user=1");
    let topic_url = format!("http://{}/topics/news/events", gw.addr());
    subscribe(&gw, &callback, &topic_url, Some(HUB_SECRET), "60");
    let v = wait_verification(&rx, "subscribe", 1);
    let q = &v[0]["query"];
    assert_eq!(q["hub.topic"], topic_url.as_str());
    assert_eq!(q["hub.lease_seconds"], "60");
    assert_eq!(q["user"], "1", "the callback's own query is kept");
    assert!(q["hub.challenge"].as_str().is_some_and(|c| c.len() >= 16));
    wait_listed(&gw, &callback, true);

    gw.publish_with(
        "news",
        "",
        &[("sluicegate-header-content-type", "text/plain")],
        b"plain words",
    );
    gw.publish_with(
        "news",
        "",
        &[("sluicegate-header-content-type", "application/json")],
        br#"{"headline":"json"}"#,
    );
    let posts = rx.wait_posts(2, WAIT);
    assert_eq!(posts[0]["body"], "plain words");
    assert_eq!(posts[0]["headers"]["content-type"], "text/plain");
    assert_eq!(posts[1]["body"], r#"{"headline":"json"}"#);
    assert_eq!(posts[1]["headers"]["content-type"], "application/json");
    for p in &posts {
        assert_eq!(p["verified"], true, "X-Hub-Signature checks out: {p}");
        let link = p["headers"]["link"].as_str().unwrap_or("");
        assert!(
            link.contains(&format!("<http://{}/hub>; rel=\"hub\"", gw.addr())),
            "{link}"
        );
        assert!(
            link.contains(&format!("<{topic_url}>; rel=\"self\"")),
            "{link}"
        );
    }

    let (status, _) = hub(
        &gw,
        &[
            ("hub.mode", "unsubscribe"),
            ("hub.topic", &topic_url),
            ("hub.callback", &callback),
        ],
    );
    assert_eq!(status, 202);
    wait_verification(&rx, "unsubscribe", 1);
    wait_listed(&gw, &callback, false);
    // A marker subscriber shows when a later event has been delivered.
    let marker = rx.url("/marker");
    subscribe(&gw, &marker, "news", None, "60");
    wait_listed(&gw, &marker, true);
    gw.publish("news", "after unsubscribe");
    rx.wait_until("the marker's delivery", WAIT, |e| {
        e.iter().any(|p| p["path"] == "/marker")
    });
    assert_eq!(posts_to(&rx, "/cb").len(), 2, "nothing after unsubscribing");
}

#[test]
fn unverified_intent_stores_nothing_and_policy_refusals_are_denied() {
    let gw = gateway("[auth]\nanonymous_subscribe = [\"open.*\"]\n");
    let rx = Receiver::start(None, None);
    rx.plan(r#"{"verify": "refuse"}"#);
    let callback = rx.url("/nope");
    subscribe(&gw, &callback, "open.a", None, "60");
    wait_verification(&rx, "subscribe", 1);
    rx.plan(r#"{"verify": "echo"}"#);
    let marker = rx.url("/marker");
    subscribe(&gw, &marker, "open.a", None, "60");
    wait_listed(&gw, &marker, true);
    gw.publish("open.a", "x");
    rx.wait_until("the marker's delivery", WAIT, |e| {
        e.iter().any(|p| p["path"] == "/marker")
    });
    assert!(
        posts_to(&rx, "/nope").is_empty(),
        "an unverified callback gets nothing"
    );

    let denied = rx.url("/denied");
    subscribe(&gw, &denied, "closed", None, "60");
    let v = wait_verification(&rx, "denied", 1);
    assert_eq!(v[0]["path"], "/denied");
    assert_eq!(v[0]["query"]["hub.topic"], "closed");
    assert!(v[0]["query"]["hub.reason"]
        .as_str()
        .is_some_and(|r| !r.is_empty()));
}

#[test]
fn leases_end_and_a_410_removes_the_subscription() {
    let gw = gateway("");
    let rx = Receiver::start(None, None);
    let short = rx.url("/short");
    subscribe(&gw, &short, "lease", None, "2");
    wait_verification(&rx, "subscribe", 1);
    assert_eq!(
        verifications(&rx, "subscribe")[0]["query"]["hub.lease_seconds"],
        "2"
    );
    wait_listed(&gw, &short, true);
    wait_listed(&gw, &short, false);

    rx.plan(r#"[{"status": 410}]"#);
    let gone = rx.url("/gone");
    subscribe(&gw, &gone, "lease", None, "600");
    wait_listed(&gw, &gone, true);
    gw.publish("lease", "first");
    rx.wait_until("the 410", WAIT, |e| e.iter().any(|p| p["path"] == "/gone"));
    wait_listed(&gw, &gone, false);
    assert!(posts_to(&rx, "/short").is_empty());
}

#[test]
fn resubscribing_renews_the_lease_and_topics_keep_their_own_secrets() {
    let gw = gateway("");
    let rx = Receiver::start(None, None);
    let cb = rx.url("/both");
    subscribe(&gw, &cb, "alpha", Some("secret-a"), "60");
    subscribe(&gw, &cb, "beta", Some("secret-b"), "60");
    wait_verification(&rx, "subscribe", 2);
    let deadline = Instant::now() + WAIT;
    loop {
        let r = http_request(gw.addr(), "GET", "/webhooks", &[], b"").expect("list");
        let v: Value = serde_json::from_str(&r.text()).expect("json");
        if v["webhooks"].as_array().map_or(0, |a| a.len()) == 2 {
            break;
        }
        assert!(Instant::now() < deadline, "{v}");
        std::thread::sleep(Duration::from_millis(50));
    }
    // 103: re-subscribe alpha with a new lease; then unsubscribe it; beta keeps its secret.
    subscribe(&gw, &cb, "alpha", Some("secret-a"), "120");
    let v = wait_verification(&rx, "subscribe", 3);
    assert_eq!(v[2]["query"]["hub.lease_seconds"], "120");
    let (status, _) = hub(
        &gw,
        &[
            ("hub.mode", "unsubscribe"),
            ("hub.topic", "alpha"),
            ("hub.callback", &cb),
        ],
    );
    assert_eq!(status, 202);
    wait_verification(&rx, "unsubscribe", 1);
    let deadline = Instant::now() + WAIT;
    loop {
        let r = http_request(gw.addr(), "GET", "/webhooks", &[], b"").expect("list");
        let v: Value = serde_json::from_str(&r.text()).expect("json");
        if v["webhooks"].as_array().map_or(0, |a| a.len()) == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "{v}");
        std::thread::sleep(Duration::from_millis(50));
    }
    gw.publish("beta", "for beta");
    let posts = rx.wait_posts(1, WAIT);
    let sig = posts[0]["headers"]["x-hub-signature"]
        .as_str()
        .expect("signed");
    let hex = common::hmac_hex::<Hmac<Sha256>>(b"secret-b", b"for beta");
    assert_eq!(sig, format!("sha256={hex}"));
}

#[test]
fn bad_hub_requests_get_clear_errors() {
    let gw = gateway("");
    for (fields, status, what) in [
        (
            vec![("hub.mode", "subscribe"), ("hub.topic", "t")],
            400,
            "hub.callback",
        ),
        (
            vec![
                ("hub.mode", "watch"),
                ("hub.topic", "t"),
                ("hub.callback", "http://127.0.0.1:9/"),
            ],
            400,
            "watch",
        ),
        (
            vec![
                ("hub.mode", "subscribe"),
                ("hub.topic", "bad topic"),
                ("hub.callback", "http://127.0.0.1:9/"),
            ],
            400,
            "hub.topic",
        ),
        (
            vec![
                ("hub.mode", "subscribe"),
                ("hub.topic", "t"),
                ("hub.callback", "mailto:x"),
            ],
            400,
            "hub.callback",
        ),
        (
            vec![
                ("hub.mode", "subscribe"),
                ("hub.topic", "t"),
                ("hub.callback", "http://127.0.0.1:9/"),
                ("hub.lease_seconds", "soon"),
            ],
            400,
            "lease",
        ),
    ] {
        let (got, body) = hub(&gw, &fields);
        assert_eq!(got, status, "{fields:?}: {body}");
        assert!(body.contains(what), "{fields:?}: {body}");
    }
    let long = "s".repeat(200);
    let (got, body) = hub(
        &gw,
        &[
            ("hub.mode", "subscribe"),
            ("hub.topic", "t"),
            ("hub.callback", "http://127.0.0.1:9/"),
            ("hub.secret", &long),
        ],
    );
    assert_eq!(got, 400, "{body}");
    let r = http_request(
        gw.addr(),
        "POST",
        "/hub",
        &[("content-type", "application/json")],
        b"{}",
    )
    .expect("post");
    assert_eq!(r.status, 415);
    let r = http_request(gw.addr(), "GET", "/hub", &[], b"").expect("get");
    assert_eq!(r.status, 405);
}
