//! The Redis Streams sink against a real redis-server: what the gateway mirrors is read back by
//! an independent client (Python `redis`) and checked for content, per-partition order and
//! MAXLEN trimming; a Redis restart loses nothing acknowledged; the overflow policies.
mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::redis::{port_of, shared_url, xlen, xrange, OwnRedis, StreamEntry};
use common::{free_port, http_request, Gateway};

const DEADLINE: Duration = Duration::from_secs(60);

fn unique(prefix: &str) -> String {
    format!("{prefix}{}x{}", std::process::id(), free_port())
}

fn sink_gateway(url: &str, template: &str, extra: &[&str]) -> Gateway {
    let url_arg = format!("redis.url={url:?}");
    let template_arg = format!("redis.key_template={template:?}");
    let mut args = vec![
        "--shards",
        "2",
        "--set",
        "storage.mode=\"memory\"",
        "--set",
        "memory_broker.partitions=2",
        "--set",
        &url_arg,
        "--set",
        "redis.mode=\"sink\"",
        "--set",
        &template_arg,
    ];
    args.extend_from_slice(extra);
    Gateway::start(&args)
}

/// Entries of every partition's stream of `topic`.
fn streams(port: u16, template: &str, topic: &str) -> BTreeMap<u32, Vec<StreamEntry>> {
    (0..2)
        .map(|p| {
            let key = template
                .replace("{topic}", topic)
                .replace("{partition}", &p.to_string());
            (p, xrange(port, &key))
        })
        .collect()
}

fn total(s: &BTreeMap<u32, Vec<StreamEntry>>) -> usize {
    s.values().map(Vec::len).sum()
}

fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The `n` of data `ev-n`.
fn seq(e: &StreamEntry) -> u32 {
    e.field("data")
        .and_then(|d| d.strip_prefix("ev-"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("entry {e:?} has no ev-N data"))
}

/// A metric summed over the shards (0 when absent).
fn sink_metric(gw: &Gateway, name: &str) -> f64 {
    let page = http_request(gw.addr(), "GET", "/metrics", &[], b"")
        .expect("metrics")
        .text();
    common::kafka::metric_sum(&page, name).unwrap_or(0.0)
}

fn publish(gw: &Gateway, topic: &str, i: u32) -> u16 {
    let path = format!("/topics/{topic}/events?event=made&key=k{}", i % 4);
    let r = http_request(
        gw.addr(),
        "POST",
        &path,
        &[("Sluicegate-Header-Trace", "t1")],
        format!("ev-{i}").as_bytes(),
    )
    .expect("publish");
    r.status
}

#[test]
fn mirrored_topics_reach_their_streams_in_order_with_every_field() {
    let url = shared_url();
    let port = port_of(&url);
    let template = format!("{}:{{topic}}:{{partition}}", unique("sink"));
    let gw = sink_gateway(
        &url,
        &template,
        &["--set", "redis.sink_topics=[\"orders.*\"]"],
    );
    for i in 0..40 {
        assert_eq!(publish(&gw, "orders.eu", i), 200);
    }
    assert_eq!(publish(&gw, "audit", 0), 200);
    let got = wait_for("40 mirrored entries", || {
        let s = streams(port, &template, "orders.eu");
        (total(&s) >= 40).then_some(s)
    });
    assert_eq!(total(&got), 40, "each event once");
    for (partition, entries) in &got {
        let seqs: Vec<u32> = entries.iter().map(seq).collect();
        let mut sorted = seqs.clone();
        sorted.sort_unstable();
        assert_eq!(seqs, sorted, "partition {partition} in publish order");
        for e in entries {
            let n = seq(e);
            assert_eq!(e.field("type"), Some("made"));
            assert_eq!(e.field("key"), Some(format!("k{}", n % 4).as_str()));
            assert_eq!(e.field("header.trace"), Some("t1"));
            assert!(e.field("id").is_some_and(|id| !id.is_empty()), "{e:?}");
            let names: Vec<&str> = e.fields.iter().map(|(n, _)| n.as_str()).collect();
            assert_eq!(names, ["id", "type", "key", "header.trace", "data"]);
        }
    }
    assert_eq!(
        total(&streams(port, &template, "audit")),
        0,
        "not a mirrored topic"
    );
}

#[test]
fn maxlen_bounds_each_stream() {
    let url = shared_url();
    let port = port_of(&url);
    let template = format!("{}:{{topic}}:{{partition}}", unique("trim"));
    let gw = sink_gateway(&url, &template, &["--set", "redis.maxlen=100"]);
    let key = template
        .replace("{topic}", "bulk")
        .replace("{partition}", "0");
    // One key: one partition, so one stream takes all 1000.
    let batch: String = (0..1000).map(|i| format!("{{\"n\":{i}}}\n")).collect();
    let r = http_request(
        gw.addr(),
        "POST",
        "/topics/bulk/events?key=same",
        &[("content-type", "application/x-ndjson")],
        batch.as_bytes(),
    )
    .expect("publish batch");
    assert_eq!(r.status, 200, "{}", r.text());
    let other = template
        .replace("{topic}", "bulk")
        .replace("{partition}", "1");
    let (hot, len) = wait_for("the last event mirrored", || {
        for k in [&key, &other] {
            let last = xrange(port, k)
                .last()
                .and_then(|e| e.field("data").map(str::to_owned));
            if last.as_deref() == Some("{\"n\":999}") {
                return Some((k.clone(), xlen(port, k)));
            }
        }
        None
    });
    // `MAXLEN ~` trims whole nodes (100 entries by default): at least 100 stay, far fewer
    // than 1000.
    assert!(
        (100..400).contains(&len),
        "{hot}: XLEN {len} after 1000 with maxlen 100"
    );
}

#[test]
fn a_redis_restart_loses_nothing_acknowledged() {
    let mut redis = OwnRedis::start();
    let template = "restart:{topic}:{partition}";
    let gw = sink_gateway(&redis.url(), template, &[]);
    let mut acked = Vec::new();
    for i in 0..30 {
        assert_eq!(publish(&gw, "orders", i), 200);
        acked.push(i);
    }
    redis.stop();
    // Accepted while Redis is down: they wait in the sink's queue.
    for i in 30..60 {
        assert_eq!(publish(&gw, "orders", i), 200);
        acked.push(i);
    }
    std::thread::sleep(Duration::from_millis(300));
    redis.launch();
    for i in 60..90 {
        assert_eq!(publish(&gw, "orders", i), 200);
        acked.push(i);
    }
    let got = wait_for("every acknowledged event mirrored", || {
        let s = streams(redis.port, template, "orders");
        let seen: std::collections::BTreeSet<u32> = s.values().flatten().map(seq).collect();
        acked.iter().all(|i| seen.contains(i)).then_some(s)
    });
    for (partition, entries) in got {
        // At least once: a retried write may repeat entries, never reorder them.
        let mut firsts = Vec::new();
        for e in &entries {
            let n = seq(e);
            if !firsts.contains(&n) {
                firsts.push(n);
            }
        }
        let mut sorted = firsts.clone();
        sorted.sort_unstable();
        assert_eq!(firsts, sorted, "partition {partition} keeps publish order");
    }
    // What the metrics must show is every event acknowledged by Redis (copied into them
    // every half second).
    wait_for("sluicegate_redis_sink_mirrored_total to count them", || {
        let mirrored = sink_metric(&gw, "sluicegate_redis_sink_mirrored_total");
        (mirrored >= acked.len() as f64).then_some(())
    });
}

#[test]
fn overflow_block_refuses_publishes_until_redis_is_back() {
    let mut redis = OwnRedis::start();
    let template = "block:{topic}:{partition}";
    let gw = sink_gateway(
        &redis.url(),
        template,
        &[
            "--set",
            "redis.sink_queue_events=20",
            "--set",
            "redis.overflow=\"block\"",
        ],
    );
    redis.stop();
    let mut acked = Vec::new();
    let mut refused = None;
    for i in 0..200 {
        let path = format!("/topics/orders/events?key=k{}", i % 4);
        let r = http_request(gw.addr(), "POST", &path, &[], format!("ev-{i}").as_bytes())
            .expect("publish");
        match r.status {
            200 => acked.push(i),
            503 => {
                refused = Some(r.text());
                break;
            }
            other => panic!("unexpected {other}: {}", r.text()),
        }
    }
    let refused = refused.expect("a publish refused once the queue is full");
    assert!(refused.contains("Redis sink"), "{refused}");
    assert!(
        acked.len() >= 20,
        "the bound admits 20 first, got {}",
        acked.len()
    );
    redis.launch();
    let next = acked.len() as u32 + 1000;
    wait_for("publishes accepted again", || {
        (publish(&gw, "orders", next) == 200).then_some(())
    });
    acked.push(next);
    wait_for("every acknowledged event mirrored", || {
        let s = streams(redis.port, template, "orders");
        let seen: std::collections::BTreeSet<u32> = s.values().flatten().map(seq).collect();
        acked.iter().all(|i| seen.contains(i)).then_some(())
    });
}

#[test]
fn overflow_drop_keeps_publishing_and_counts_what_it_drops() {
    let mut redis = OwnRedis::start();
    let gw = sink_gateway(
        &redis.url(),
        "drop:{topic}:{partition}",
        &[
            "--set",
            "redis.sink_queue_events=10",
            "--set",
            "redis.overflow=\"drop\"",
        ],
    );
    redis.stop();
    for i in 0..60 {
        assert_eq!(publish(&gw, "orders", i), 200, "drop mode never refuses");
    }
    let dropped = sink_metric(&gw, "sluicegate_redis_sink_dropped_total");
    assert!(
        dropped >= 30.0,
        "60 published, at most ~10 per shard queued: dropped {dropped}"
    );
    redis.launch();
}

/// The sink mirrors whatever the source: records produced to Kafka by an independent producer
/// (kafka-python) reach their streams from the partition's owner shard, in partition order,
/// with the type from `ce_type` and the record key.
#[test]
fn records_from_kafka_are_mirrored_in_partition_order() {
    use common::kafka::{
        broker, create_topic, kafka_gateway, produce, unique as kafka_unique, Rec,
    };
    let url = shared_url();
    let port = port_of(&url);
    let bootstrap = broker();
    let topic = kafka_unique("mirrored");
    create_topic(&bootstrap, &topic, 2);
    let template = format!("{}:{{topic}}:{{partition}}", unique("ksink"));
    let url_arg = format!("redis.url={url:?}");
    let template_arg = format!("redis.key_template={template:?}");
    let _gw = kafka_gateway(
        &bootstrap,
        &[&topic],
        2,
        &[
            "--set",
            &url_arg,
            "--set",
            "redis.mode=\"sink\"",
            "--set",
            &template_arg,
        ],
    );
    let records: Vec<Rec> = (0..30)
        .map(|i| {
            Rec::at(i % 2, &format!("ev-{i}"))
                .key(&format!("k{i}"))
                .typed("made")
        })
        .collect();
    produce(&bootstrap, &topic, &records);
    let got = wait_for("30 records mirrored", || {
        let s = streams(port, &template, &topic);
        (total(&s) >= 30).then_some(s)
    });
    assert_eq!(total(&got), 30);
    for (partition, entries) in &got {
        let seqs: Vec<u32> = entries.iter().map(seq).collect();
        let want: Vec<u32> = (0..30).filter(|i| i % 2 == *partition).collect();
        assert_eq!(
            seqs, want,
            "partition {partition}: every record once, in order"
        );
        for e in entries {
            assert_eq!(e.field("type"), Some("made"));
            assert_eq!(e.field("key"), Some(format!("k{}", seq(e)).as_str()));
        }
    }
}
