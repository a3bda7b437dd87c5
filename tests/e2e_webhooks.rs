//! End to end: the webhook endpoints API (`/webhooks`) and the delivery engine behind it,
//! against a real receiver process (`tests/webhooks/receiver.py`) that verifies our Standard
//! Webhooks signatures with the PyPI `standardwebhooks` package and answers on a plan: 500s,
//! timeouts, 429 with Retry-After, 410. Covers ordering, the retry schedule, dead letters,
//! replay, disabling, secret rotation, filters, the SSRF guard and `kill -9` while retrying.
mod common;

use std::time::{Duration, Instant};

use common::receiver::Receiver;
use common::{config_file, http_request, sha256_hex, Gateway, SseClient};
use serde_json::{json, Value};

/// A Standard Webhooks secret (24 bytes of key).
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
/// Deliveries in these tests take well under a second; waits are generous for a loaded box.
const DELIVERY_WAIT: Duration = Duration::from_secs(20);

/// Webhook settings for tests: loopback allowed, two retries a second apart without jitter, a
/// short attempt timeout, progress written often. A key in `extra` replaces its default.
fn webhooks_toml(extra: &str) -> String {
    let defaults = [
        "allow_cidrs = [\"127.0.0.1/32\"]",
        "retry_schedule_s = [1, 1]",
        "retry_jitter = 0.0",
        "timeout_ms = 2000",
        "connect_timeout_ms = 1000",
        "progress_interval_ms = 100",
    ];
    let given = |line: &str| {
        let key = line.split(" = ").next().unwrap_or("");
        extra.lines().any(|l| l.split(" = ").next() == Some(key))
    };
    let kept: Vec<&str> = defaults.into_iter().filter(|l| !given(l)).collect();
    format!("[webhooks]\n{}\n{extra}\n", kept.join("\n"))
}

fn gateway(extra: &str) -> Gateway {
    Gateway::start(&["--config", &config_file(&webhooks_toml(extra))])
}

fn api(gw: &Gateway, method: &str, path: &str, body: &Value) -> (u16, Value) {
    api_as(gw, method, path, body, &[])
}

fn api_as(
    gw: &Gateway,
    method: &str,
    path: &str,
    body: &Value,
    headers: &[(&str, &str)],
) -> (u16, Value) {
    let bytes = if body.is_null() {
        Vec::new()
    } else {
        body.to_string().into_bytes()
    };
    let mut h = vec![("content-type", "application/json")];
    h.extend_from_slice(headers);
    let r = http_request(gw.addr(), method, path, &h, &bytes)
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    let text = r.text();
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (r.status, value)
}

/// Create an endpoint for `topics` at the receiver; its id.
fn create(gw: &Gateway, rx: &Receiver, topics: &[&str], extra: Value) -> String {
    let mut body = json!({ "url": rx.url("/hook"), "topics": topics, "secret": SECRET });
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            b.insert(k.clone(), v.clone());
        }
    }
    let (status, v) = api(gw, "POST", "/webhooks", &body);
    assert_eq!(status, 201, "create: {v}");
    v["id"].as_str().expect("id").to_owned()
}

/// GET `path` until `done` holds for its JSON (or fail after `DELIVERY_WAIT`); the last answer.
fn poll_api(gw: &Gateway, path: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + DELIVERY_WAIT;
    loop {
        let (_, v) = api(gw, "GET", path, &Value::Null);
        if done(&v) {
            return v;
        }
        assert!(Instant::now() < deadline, "GET {path}: {v}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn bodies(posts: &[Value]) -> Vec<String> {
    posts
        .iter()
        .map(|p| p["body"].as_str().unwrap_or("").to_owned())
        .collect()
}

#[test]
fn the_endpoints_api_creates_lists_changes_and_deletes() {
    let gw = gateway("");
    let (status, v) = api(
        &gw,
        "POST",
        "/webhooks",
        &json!({ "url": "http://127.0.0.1:9/in", "topics": ["orders"] }),
    );
    assert_eq!(status, 201, "{v}");
    let id = v["id"].as_str().expect("id").to_owned();
    let secret = v["secret"]
        .as_str()
        .expect("a generated secret is shown once");
    assert!(
        secret.starts_with("whsec_") && secret.len() > 30,
        "{secret}"
    );
    assert_eq!(v["status"], "active");

    let (status, list) = api(&gw, "GET", "/webhooks", &Value::Null);
    assert_eq!(status, 200);
    assert!(list["webhooks"]
        .as_array()
        .expect("list")
        .iter()
        .any(|w| w["id"] == id.as_str()));
    let (status, one) = api(&gw, "GET", &format!("/webhooks/{id}"), &Value::Null);
    assert_eq!(status, 200);
    assert!(
        one.get("secret").is_none(),
        "the secret is not shown again: {one}"
    );
    assert_eq!(one["topics"], json!(["orders"]));

    let (status, changed) = api(
        &gw,
        "PATCH",
        &format!("/webhooks/{id}"),
        &json!({ "url": "http://127.0.0.1:10/other", "filter": { "types": ["created"] } }),
    );
    assert_eq!(status, 200, "{changed}");
    assert_eq!(changed["url"], "http://127.0.0.1:10/other");
    assert_eq!(changed["filter"]["types"], json!(["created"]));

    let (status, _) = api(&gw, "DELETE", &format!("/webhooks/{id}"), &Value::Null);
    assert_eq!(status, 204);
    let (status, _) = api(&gw, "GET", &format!("/webhooks/{id}"), &Value::Null);
    assert_eq!(status, 404);

    // Bad input: a clear 4xx each.
    for (body, want) in [
        (json!({ "url": "ftp://x/", "topics": ["a"] }), "url"),
        (
            json!({ "url": "http://127.0.0.1:9/", "topics": [] }),
            "topic",
        ),
        (
            json!({ "url": "http://127.0.0.1:9/", "topics": ["bad name"] }),
            "topic",
        ),
        (
            json!({ "url": "http://127.0.0.1:9/", "topics": ["a"], "secret": "whsec_!!" }),
            "secret",
        ),
        (
            json!({ "url": "http://127.0.0.1:9/", "topics": ["a"], "secret": "whsec_c2hvcnQ=" }),
            "secret",
        ),
        (
            json!({ "url": "http://127.0.0.1:9/", "topics": ["a"], "colour": 1 }),
            "colour",
        ),
        (
            json!({ "url": "http://127.0.0.1:9/", "topics": ["a"], "from": "yesterday" }),
            "from",
        ),
    ] {
        let (status, v) = api(&gw, "POST", "/webhooks", &body);
        assert_eq!(status, 400, "{body} -> {v}");
        assert!(v.to_string().contains(want), "{body} -> {v}");
    }
    let r = http_request(gw.addr(), "POST", "/webhooks", &[], b"{not json").expect("post");
    assert_eq!(r.status, 400);
    let (status, _) = api(&gw, "GET", "/webhooks/wh_nope", &Value::Null);
    assert_eq!(status, 404);
    let (status, _) = api(&gw, "PUT", "/webhooks", &Value::Null);
    assert_eq!(status, 405);
    let (status, _) = api(&gw, "GET", "/webhooks/wh_nope/other", &Value::Null);
    assert_eq!(status, 404);
}

#[test]
fn only_admins_manage_webhooks() {
    let toml = format!(
        "{}\n[[auth.api_keys]]\nname = \"ops\"\nsha256 = \"{}\"\nadmin = true\nsubscribe = [\"gateway.**\"]\n\
         [[auth.api_keys]]\nname = \"app\"\nsha256 = \"{}\"\npublish = [\"**\"]\nsubscribe = [\"**\"]\n",
        webhooks_toml(""),
        sha256_hex("ops-key"),
        sha256_hex("app-key")
    );
    let gw = Gateway::start(&["--config", &config_file(&toml)]);
    let body = json!({ "url": "http://127.0.0.1:9/", "topics": ["a"] });
    let (status, _) = api(&gw, "POST", "/webhooks", &body);
    assert_eq!(status, 401, "no credential");
    let (status, v) = api_as(
        &gw,
        "POST",
        "/webhooks",
        &body,
        &[("authorization", "Bearer app-key")],
    );
    assert_eq!(status, 403, "{v}");
    assert!(v.to_string().contains("admin"), "{v}");
    let (status, v) = api_as(
        &gw,
        "POST",
        "/webhooks",
        &body,
        &[("authorization", "Bearer ops-key")],
    );
    assert_eq!(status, 201, "{v}");
    assert_eq!(v["owner"], "ops");
    // Reserved topics: admins may read them (dead letters), others may not.
    let sse = SseClient::open(
        gw.addr(),
        "/topics/gateway.webhooks.dead/events",
        &[("authorization", "Bearer app-key")],
    )
    .expect("open");
    assert_eq!(sse.status(), 403);
    let sse = SseClient::open(
        gw.addr(),
        "/topics/gateway.webhooks.dead/events",
        &[("authorization", "Bearer ops-key")],
    )
    .expect("open");
    assert_eq!(sse.status(), 200);
}

#[test]
fn deliveries_are_signed_in_order_and_verify_independently() {
    let gw = gateway("");
    let rx = Receiver::start(Some(SECRET), None);
    let id = create(&gw, &rx, &["orders"], json!({}));
    for i in 0..5 {
        gw.publish_with(
            "orders",
            "?event=created",
            &[("sluicegate-header-content-type", "text/plain")],
            format!("order {i}").as_bytes(),
        );
    }
    let posts = rx.wait_posts(5, DELIVERY_WAIT);
    assert_eq!(
        bodies(&posts),
        (0..5).map(|i| format!("order {i}")).collect::<Vec<_>>()
    );
    let mut ids = Vec::new();
    for p in &posts {
        let h = &p["headers"];
        assert_eq!(p["verified"], true, "standardwebhooks verifies it: {p}");
        assert_eq!(h["content-type"], "text/plain");
        assert_eq!(h["sluicegate-event-type"], "created");
        assert_eq!(h["sluicegate-topic"], "orders");
        ids.push(h["webhook-id"].as_str().expect("webhook-id").to_owned());
    }
    ids.dedup();
    assert_eq!(ids.len(), 5, "one webhook-id per event: {ids:?}");
    // The status shows the deliveries.
    let v = poll_api(&gw, &format!("/webhooks/{id}/attempts"), |v| {
        v["attempts"].as_array().is_some_and(|a| a.len() >= 5)
    });
    let attempts = v["attempts"].as_array().cloned().unwrap_or_default();
    assert!(
        attempts
            .iter()
            .all(|a| a["outcome"] == "delivered" && a["status"] == 200),
        "{v}"
    );
}

#[test]
fn failures_are_retried_on_the_schedule_in_order() {
    let gw = gateway("");
    let rx = Receiver::start(Some(SECRET), None);
    // A 500 and a timeout use up the budget of 2; a 429 with Retry-After does not count.
    rx.plan(r#"[{"status": 500}, {"sleep": 3}, {"status": 429, "retry_after": "1"}]"#);
    let id = create(&gw, &rx, &["jobs"], json!({}));
    gw.publish("jobs", "first");
    gw.publish("jobs", "second");
    let posts = rx.wait_posts(5, Duration::from_secs(30));
    assert_eq!(
        bodies(&posts),
        ["first", "first", "first", "first", "second"],
        "the first is retried until it succeeds; the second waits for it"
    );
    let at: Vec<f64> = posts
        .iter()
        .map(|p| p["at"].as_f64().unwrap_or(0.0))
        .collect();
    for w in at.windows(2).take(3) {
        assert!(w[1] - w[0] >= 0.9, "a retry waits its delay (1 s): {at:?}");
    }
    let same_id: Vec<&str> = posts[..4]
        .iter()
        .map(|p| p["headers"]["webhook-id"].as_str().unwrap_or(""))
        .collect();
    assert!(
        same_id.windows(2).all(|w| w[0] == w[1]),
        "retries keep the webhook-id: {same_id:?}"
    );
    let (_, v) = api(
        &gw,
        "GET",
        &format!("/webhooks/{id}/attempts"),
        &Value::Null,
    );
    let outcomes: Vec<&str> = v["attempts"]
        .as_array()
        .expect("attempts")
        .iter()
        .map(|a| a["outcome"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        outcomes[..4],
        ["retry", "retry", "retry", "delivered"],
        "{v}"
    );
    assert!(
        v["attempts"][1]["error"]
            .as_str()
            .unwrap_or("")
            .contains("timed out"),
        "{v}"
    );
}

#[test]
fn exhausted_retries_go_to_the_dead_letter_topic_and_replay_sends_again() {
    let gw = gateway("");
    let rx = Receiver::start(Some(SECRET), None);
    rx.plan(r#"{"default": {"status": 500}}"#);
    let id = create(&gw, &rx, &["pay"], json!({}));
    let mut dead = SseClient::connect(gw.addr(), "/topics/gateway.webhooks.dead/events", &[]);
    gw.publish("pay", "doomed");
    let letter = dead.next_event(DELIVERY_WAIT).expect("a dead letter");
    let letter: Value = serde_json::from_str(&letter.data).expect("json letter");
    assert_eq!(letter["subscription"], id.as_str());
    assert_eq!(letter["last_status"], 500);
    assert_eq!(letter["last_response"], "answer body");
    assert_eq!(letter["data"], "doomed");
    assert!(
        letter["reason"].as_str().unwrap_or("").contains("500"),
        "{letter}"
    );
    assert_eq!(rx.posts().len(), 3, "one try and two retries");
    // The endpoint works again; the next event goes through, and a replay from the dead
    // letter's event sends it (and what followed) again.
    rx.plan(r#"{"default": {"status": 200}}"#);
    gw.publish("pay", "after");
    rx.wait_until("the next event", DELIVERY_WAIT, |e| {
        e.iter().any(|p| p["body"] == "after")
    });
    let (status, v) = api(
        &gw,
        "POST",
        &format!("/webhooks/{id}/replay"),
        &json!({ "from": letter["webhook_id"] }),
    );
    assert_eq!(status, 202, "{v}");
    let posts = rx.wait_posts(6, DELIVERY_WAIT);
    assert_eq!(bodies(&posts)[3..], ["after", "doomed", "after"]);
    let (status, _) = api(
        &gw,
        "POST",
        &format!("/webhooks/{id}/replay"),
        &json!({ "from": "zz:pay:0:0" }),
    );
    assert_eq!(status, 409, "an id from another run");
}

#[test]
fn a_410_disables_an_endpoint_until_it_is_enabled_again() {
    let gw = gateway("");
    let rx = Receiver::start(Some(SECRET), None);
    rx.plan(r#"[{"status": 410}]"#);
    let id = create(&gw, &rx, &["news"], json!({}));
    let mut disabled =
        SseClient::connect(gw.addr(), "/topics/gateway.webhook.disabled/events", &[]);
    gw.publish("news", "one");
    let ev = disabled
        .next_event(DELIVERY_WAIT)
        .expect("a disabled event");
    let v: Value = serde_json::from_str(&ev.data).expect("json");
    assert_eq!(v["subscription"], id.as_str());
    assert!(v["reason"].as_str().unwrap_or("").contains("410"), "{v}");
    let (_, v) = api(&gw, "GET", &format!("/webhooks/{id}"), &Value::Null);
    assert_eq!(v["status"], "disabled", "{v}");
    gw.publish("news", "two");
    let (status, v) = api(
        &gw,
        "PATCH",
        &format!("/webhooks/{id}"),
        &json!({ "enabled": true }),
    );
    assert_eq!((status, v["status"].as_str()), (200, Some("active")), "{v}");
    // It resumes where it stopped: the event it was refused, then the rest.
    let posts = rx.wait_posts(3, DELIVERY_WAIT);
    assert_eq!(bodies(&posts), ["one", "one", "two"]);
}

#[test]
fn a_rotated_secret_and_the_old_one_both_sign_during_the_overlap() {
    let gw = gateway("");
    let rx = Receiver::start(Some(SECRET), None);
    let id = create(&gw, &rx, &["rot"], json!({}));
    let (status, v) = api(
        &gw,
        "PATCH",
        &format!("/webhooks/{id}"),
        &json!({ "secret": "rotate" }),
    );
    assert_eq!(status, 200, "{v}");
    let new_secret = v["secret"]
        .as_str()
        .expect("the new secret is shown once")
        .to_owned();
    assert_ne!(new_secret, SECRET);
    gw.publish("rot", "signed twice");
    let posts = rx.wait_posts(1, DELIVERY_WAIT);
    assert_eq!(posts[0]["verified"], true, "the old secret still verifies");
    let sigs = posts[0]["headers"]["webhook-signature"]
        .as_str()
        .unwrap_or("");
    assert_eq!(sigs.split(' ').count(), 2, "{sigs}");
    rx.set_secret(&new_secret);
    gw.publish("rot", "new secret");
    let posts = rx.wait_posts(2, DELIVERY_WAIT);
    assert_eq!(posts[1]["verified"], true, "the new secret verifies");
}

#[test]
fn filters_choose_what_an_endpoint_gets() {
    let gw = gateway("");
    let rx = Receiver::start(Some(SECRET), None);
    create(
        &gw,
        &rx,
        &["mixed"],
        json!({ "filter": { "types": ["keep"] } }),
    );
    gw.publish_with("mixed", "?event=skip", &[], b"a");
    gw.publish_with("mixed", "?event=keep", &[], b"b");
    gw.publish_with("mixed", "", &[], b"c");
    gw.publish_with("mixed", "?event=keep", &[], b"d");
    let posts = rx.wait_posts(2, DELIVERY_WAIT);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(bodies(&rx.posts()), ["b", "d"]);
    assert_eq!(posts.len(), 2);
}

#[test]
fn internal_addresses_are_refused_without_a_connection() {
    // No allowlist: loopback is refused, whatever name it hides behind.
    let gw = Gateway::start(&[
        "--config",
        &config_file("[webhooks]\nretry_schedule_s = [1]\nretry_jitter = 0.0\n"),
    ]);
    let rx = Receiver::start(Some(SECRET), None);
    let port = rx.port;
    let mut ids = Vec::new();
    for url in [
        format!("http://127.0.0.1:{port}/x"),
        format!("http://localhost:{port}/x"),
        format!("http://[::ffff:127.0.0.1]:{port}/x"),
        "http://169.254.169.254/latest/meta-data".to_owned(),
        "http://10.0.0.1/x".to_owned(),
    ] {
        let (status, v) = api(
            &gw,
            "POST",
            "/webhooks",
            &json!({ "url": url, "topics": ["ssrf"] }),
        );
        assert_eq!(status, 201, "{v}");
        ids.push((url, v["id"].as_str().expect("id").to_owned()));
    }
    gw.publish("ssrf", "x");
    for (url, id) in &ids {
        let v = poll_api(&gw, &format!("/webhooks/{id}/attempts"), |v| {
            v["attempts"].as_array().is_some_and(|a| !a.is_empty())
        });
        let a = &v["attempts"][0];
        let error = a["error"].as_str().unwrap_or("");
        assert!(a["status"].is_null(), "{url}: {a}");
        assert!(
            error.contains("loopback") || error.contains("private") || error.contains("link-local"),
            "{url}: {error}"
        );
    }
    assert!(
        rx.entries().is_empty(),
        "nothing reached the receiver: {:?}",
        rx.entries()
    );
}

#[test]
fn kill_9_while_retrying_loses_nothing_and_keeps_order() {
    let data_dir = std::env::temp_dir().join(format!("sluicegate-wh-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data_dir);
    let cfg = config_file(&format!(
        "{}[storage]\ndata_dir = \"{}\"\n",
        webhooks_toml("retry_schedule_s = [1, 1, 1, 1, 1, 1, 1, 1]\n"),
        data_dir.display()
    ));
    let rx = Receiver::start(Some(SECRET), None);
    let mut gw = Gateway::start(&["--config", &cfg]);
    let (status, v) = api(
        &gw,
        "POST",
        "/webhooks",
        &json!({ "url": rx.url("/hook"), "topics": ["ledger"], "secret": SECRET }),
    );
    assert_eq!(status, 201, "{v}");
    const EVENTS: usize = 40;
    let mut published = 0;
    for round in 0..3 {
        // Every fifth delivery fails once, so the gateway is often retrying when killed.
        rx.plan(r#"{"plan": [{"status": 503}, {}, {}, {}, {}, {"status": 500}], "default": {"status": 200}}"#);
        for _ in 0..EVENTS / 4 {
            gw.publish("ledger", &format!("entry {published}"));
            published += 1;
        }
        let seen = rx.posts().len();
        rx.wait_posts(seen + 3, DELIVERY_WAIT);
        gw.kill9();
        gw = Gateway::start(&["--config", &cfg]);
        eprintln!(
            "round {round}: killed after {} deliveries",
            rx.posts().len()
        );
    }
    while published < EVENTS {
        gw.publish("ledger", &format!("entry {published}"));
        published += 1;
    }
    let want: Vec<String> = (0..EVENTS).map(|i| format!("entry {i}")).collect();
    let posts = rx.wait_until("every event delivered", Duration::from_secs(60), |e| {
        let got: std::collections::HashSet<&str> = e
            .iter()
            .filter(|p| {
                p["method"] == "POST" && p["answered"]["status"].as_u64().unwrap_or(200) == 200
            })
            .filter_map(|p| p["body"].as_str())
            .collect();
        want.iter().all(|w| got.contains(w.as_str()))
    });
    let posts: Vec<Value> = posts
        .into_iter()
        .filter(|p| p["method"] == "POST")
        .collect();
    // In order: the first delivery of entry i comes after the first of entry i-1, and each
    // entry is only ever followed by itself or the next (a retry or a redelivery after a
    // crash goes back, never skips ahead).
    let order: Vec<usize> = bodies(&posts)
        .iter()
        .map(|b| b.trim_start_matches("entry ").parse().expect("entry n"))
        .collect();
    let mut highest = 0usize;
    for (i, &n) in order.iter().enumerate() {
        assert!(n <= highest + 1, "skipped ahead at delivery {i}: {order:?}");
        highest = highest.max(n);
    }
    let duplicates = order.len() - EVENTS;
    eprintln!("{} deliveries for {EVENTS} events ({duplicates} repeats: retries and redeliveries after kill -9)", order.len());
    assert!(posts.iter().all(|p| p["verified"] == true));
    let _ = std::fs::remove_dir_all(&data_dir);
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[test]
fn replay_from_a_time_sends_what_was_appended_since() {
    let gw = gateway("");
    let rx = Receiver::start(Some(SECRET), None);
    let id = create(&gw, &rx, &["audit"], json!({}));
    gw.publish("audit", "before");
    rx.wait_posts(1, DELIVERY_WAIT);
    std::thread::sleep(Duration::from_millis(20));
    let since = unix_ms();
    std::thread::sleep(Duration::from_millis(20));
    gw.publish("audit", "after 1");
    gw.publish("audit", "after 2");
    rx.wait_posts(3, DELIVERY_WAIT);
    let (status, v) = api(
        &gw,
        "POST",
        &format!("/webhooks/{id}/replay"),
        &json!({ "from_time_ms": since }),
    );
    assert_eq!(status, 202, "{v}");
    let posts = rx.wait_posts(5, DELIVERY_WAIT);
    assert_eq!(
        bodies(&posts),
        ["before", "after 1", "after 2", "after 1", "after 2"]
    );
    let (status, _) = api(&gw, "POST", &format!("/webhooks/{id}/replay"), &json!({}));
    assert_eq!(status, 400, "neither from nor from_time_ms");

    // The memory history keeps no times.
    let mem = Gateway::start(&[
        "--config",
        &config_file(&webhooks_toml("")),
        "--set",
        "storage.mode=memory",
    ]);
    let id = create(&mem, &rx, &["audit"], json!({}));
    let (status, v) = api(
        &mem,
        "POST",
        &format!("/webhooks/{id}/replay"),
        &json!({ "from_time_ms": since }),
    );
    assert_eq!(status, 409, "{v}");
}

#[test]
fn a_slow_endpoint_does_not_hold_up_a_healthy_one() {
    let gw = gateway("timeout_ms = 5000\n");
    let slow = Receiver::start(Some(SECRET), None);
    slow.plan(r#"{"default": {"sleep": 1.5}}"#);
    let fast = Receiver::start(Some(SECRET), None);
    create(&gw, &slow, &["shared"], json!({}));
    create(&gw, &fast, &["shared"], json!({}));
    for i in 0..5 {
        gw.publish("shared", &format!("e{i}"));
    }
    fast.wait_posts(5, DELIVERY_WAIT);
    assert!(
        slow.posts().len() <= 2,
        "the healthy endpoint got all five while the slow one was on its first or second: {}",
        slow.posts().len()
    );
    let posts = slow.wait_posts(5, Duration::from_secs(30));
    assert_eq!(bodies(&posts), ["e0", "e1", "e2", "e3", "e4"]);
}

#[test]
fn per_key_ordering_lets_other_keys_pass_a_slow_one() {
    let gw = gateway("timeout_ms = 5000\n");
    let rx = Receiver::start(Some(SECRET), None);
    rx.plan(r#"[{"sleep": 1.5}]"#);
    let id = create(&gw, &rx, &["keyed"], json!({ "ordering": "key" }));
    let (_, v) = api(&gw, "GET", &format!("/webhooks/{id}"), &Value::Null);
    assert_eq!(v["ordering"], "key", "{v}");
    for (key, data) in [("a", "a1"), ("b", "b1"), ("b", "b2"), ("a", "a2")] {
        gw.publish_with("keyed", &format!("?key={key}"), &[], data.as_bytes());
    }
    let posts = rx.wait_posts(4, DELIVERY_WAIT);
    let order = bodies(&posts);
    assert_eq!(
        order,
        ["a1", "b1", "b2", "a2"],
        "b's events pass a1 while it is slow"
    );
    let at = |i: usize| posts[i]["at"].as_f64().unwrap_or(0.0);
    assert!(
        at(3) - at(0) >= 1.4,
        "a2 waited for a1's answer: {:?}",
        (at(0), at(3))
    );
    // The cursor only moves past a1 once it is answered: nothing is owed in the end.
    poll_api(&gw, &format!("/webhooks/{id}"), |v| {
        v["cursor"]["keyed:0"] == 4
    });
}

#[test]
fn redirects_are_failures_and_never_followed() {
    let gw = gateway("");
    let rx = Receiver::start(Some(SECRET), None);
    let elsewhere = Receiver::start(Some(SECRET), None);
    let target = elsewhere.url("/stolen");
    rx.plan(&format!(r#"[{{"status": 302, "location": "{target}"}}]"#));
    let id = create(&gw, &rx, &["moved"], json!({}));
    gw.publish("moved", "stay here");
    let posts = rx.wait_posts(2, DELIVERY_WAIT);
    assert_eq!(
        bodies(&posts),
        ["stay here", "stay here"],
        "retried at the same URL"
    );
    let (_, v) = api(
        &gw,
        "GET",
        &format!("/webhooks/{id}/attempts"),
        &Value::Null,
    );
    assert_eq!(v["attempts"][0]["status"], 302, "{v}");
    assert_eq!(v["attempts"][0]["outcome"], "retry", "{v}");
    assert!(
        elsewhere.entries().is_empty(),
        "the redirect was not followed"
    );
}

#[test]
fn an_endpoint_failing_too_long_is_disabled() {
    let gw = gateway("disable_after_s = 1\nretry_schedule_s = [1, 1, 1, 1, 1]\n");
    let rx = Receiver::start(Some(SECRET), None);
    rx.plan(r#"{"default": {"status": 500}}"#);
    let id = create(&gw, &rx, &["flaky"], json!({}));
    let mut disabled =
        SseClient::connect(gw.addr(), "/topics/gateway.webhook.disabled/events", &[]);
    gw.publish("flaky", "x");
    let ev = disabled
        .next_event(DELIVERY_WAIT)
        .expect("a disabled event");
    assert!(
        ev.data.contains(id.as_str()) && ev.data.contains("without a success"),
        "{}",
        ev.data
    );
    let (_, v) = api(&gw, "GET", &format!("/webhooks/{id}"), &Value::Null);
    assert_eq!(v["status"], "disabled", "{v}");
    let attempts = rx.posts().len();
    assert!(
        (2..=3).contains(&attempts),
        "disabled after about a second of failures: {attempts}"
    );
}
