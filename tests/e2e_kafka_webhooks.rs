//! End to end against a real Kafka-protocol broker: a webhook endpoint on a Kafka topic gets
//! records an independent producer (kafka-python) wrote, including ones the gateway never read
//! itself (fetched back from Kafka), in order per partition; its subscription and progress
//! survive `kill -9` and a restart on an empty data directory (they are kept in Kafka), and
//! records produced while it was down are delivered after the restart.
//!
//! Needs `SLUICEGATE_TEST_KAFKA=127.0.0.1:PORT` (`tests/services.sh start` prints it) and
//! Python's `kafka-python` and `standardwebhooks`.
mod common;

use std::time::Duration;

use common::kafka::{broker, create_topic, kafka_gateway_from, produce, unique, Rec};
use common::receiver::{create_webhook, Receiver};
use common::{config_file, http_request, Gateway};
use serde_json::{json, Value};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const WAIT: Duration = Duration::from_secs(30);

fn start(b: &str, topic: &str, cfg: &str) -> Gateway {
    kafka_gateway_from(b, &[topic], "latest", 2, &["--config", cfg])
}

/// Each partition's values in delivery order, first deliveries only.
fn per_partition(posts: &[Value]) -> [Vec<String>; 2] {
    let mut out: [Vec<String>; 2] = Default::default();
    for p in posts {
        let body = p["body"].as_str().unwrap_or("").to_owned();
        let part = usize::from(body.starts_with('q'));
        if !out[part].contains(&body) {
            out[part].push(body);
        }
    }
    out
}

#[test]
fn a_webhook_on_a_kafka_topic_survives_kill_9_and_catches_up_from_kafka() {
    let b = broker();
    let topic = unique("wh");
    create_topic(&b, &topic, 2);
    // p0 values start with "p", p1 values with "q".
    let rec = |i: usize| {
        let p = (i % 2) as i32;
        Rec::at(p, &format!("{}{i:02}", if p == 0 { 'p' } else { 'q' }))
    };
    produce(&b, &topic, &(0..10).map(rec).collect::<Vec<_>>());
    // Each start gets a fresh scratch directory (so a fresh data directory): what survives
    // comes from Kafka. A state topic of this test's own keeps other runs' subscriptions out.
    let cfg = config_file(&format!(
        "[webhooks]\nallow_cidrs = [\"127.0.0.1/32\"]\nretry_schedule_s = [1, 1, 1]\n\
         retry_jitter = 0.0\nprogress_interval_ms = 100\nkafka_state_topic = \"{}\"\n",
        unique("gw-state")
    ));
    let rx = Receiver::start(Some(SECRET), None);
    let mut gw = start(&b, &topic, &cfg);
    let body =
        json!({ "url": rx.url("/k"), "topics": [&topic], "secret": SECRET, "from": "earliest" });
    let r = create_webhook(gw.addr(), &body);
    assert_eq!(r.status, 201, "{}", r.text());
    // `latest`: the gateway never read these ten; the webhook fetches them back.
    rx.wait_posts(10, WAIT);
    produce(&b, &topic, &(10..16).map(rec).collect::<Vec<_>>());
    rx.wait_posts(16, WAIT);
    // An endpoint on a topic this gateway does not read is refused.
    let other = json!({ "url": rx.url("/k"), "topics": ["not-configured"] });
    let r = create_webhook(gw.addr(), &other);
    assert_eq!(r.status, 404, "{}", r.text());

    std::thread::sleep(Duration::from_millis(300)); // progress written
    gw.kill9();
    produce(&b, &topic, &(16..24).map(rec).collect::<Vec<_>>());
    let gw = start(&b, &topic, &cfg);
    let posts = rx.wait_until("every record after the restart", WAIT, |e| {
        let posts: Vec<Value> = e
            .iter()
            .filter(|p| p["method"] == "POST")
            .cloned()
            .collect();
        per_partition(&posts).iter().map(Vec::len).sum::<usize>() >= 24
    });
    let posts: Vec<Value> = posts
        .into_iter()
        .filter(|p| p["method"] == "POST")
        .collect();
    let [p0, p1] = per_partition(&posts);
    let want = |part: usize| -> Vec<String> {
        (0..24)
            .filter(|i| i % 2 == part)
            .map(|i| rec(i).value)
            .map(|v| String::from_utf8(v).unwrap_or_default())
            .collect()
    };
    assert_eq!(p0, want(0), "partition 0 complete and in order");
    assert_eq!(p1, want(1), "partition 1 complete and in order");
    assert!(posts.iter().all(|p| p["verified"] == true));
    eprintln!(
        "{} deliveries for 24 records ({} repeats after kill -9)",
        posts.len(),
        posts.len() - 24
    );
    let r = http_request(gw.addr(), "GET", "/webhooks", &[], b"").expect("list");
    assert!(
        r.text().contains(&topic),
        "the subscription survived: {}",
        r.text()
    );
}
