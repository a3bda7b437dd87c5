//! The Kafka broker plane against a real broker (tansu or Kafka): consume, assignment over
//! shards, start positions, catch-up fetch, produce, and a broker restart mid-stream.
//!
//! Needs `SLUICEGATE_TEST_KAFKA=127.0.0.1:PORT` (`tests/services.sh start` prints it) and
//! Python's `kafka-python`, used as an independent producer. The restart test also needs the
//! `tansu` binary: it starts a broker of its own so it can kill it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::task::{Wake, Waker};
use std::thread::Thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use sluicegate::config::KafkaConfig;
use sluicegate::internals::broker::kafka::{
    check_bootstrap, owner_of, spawn_plane, BrokerPlane, BrokerState, EventTypeRule, FetchError,
    KafkaError, LogRecord, PlaneCommand, PlaneEvent, ProduceError, ProduceRecord,
};

mod common;

use common::kafka::{broker, create_topic, python, unique, OwnBroker};

const WAIT: Duration = Duration::from_secs(15);

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn config(bootstrap: &str, topics: &[&str], start: &str) -> KafkaConfig {
    KafkaConfig {
        bootstrap: vec![bootstrap.to_owned()],
        topics: topics.iter().map(|t| (*t).to_owned()).collect(),
        start: start.to_owned(),
        fetch_max_wait_ms: 100,
        metadata_refresh_ms: 500,
        request_timeout_ms: 3000,
        backoff_max_ms: 500,
        ..KafkaConfig::default()
    }
}

fn produce(bootstrap: &str, topic: &str, records: &[(i32, String, String, String)]) {
    let items: Vec<String> = records
        .iter()
        .map(|(p, k, t, v)| format!(r#"[{p}, "{k}", "{t}", "{v}"]"#))
        .collect();
    python(
        bootstrap,
        "p = KafkaProducer(bootstrap_servers=BROKER)\n\
         for (part, key, typ, val) in ARGS['r']:\n\
         \x20   p.send(ARGS['t'], value=val.encode(), key=key.encode(), partition=part,\n\
         \x20          headers=[('ce_type', typ.encode()), ('origin', b'python')])\n\
         p.flush()\n",
        &format!(r#"{{"t": "{topic}", "r": [{}]}}"#, items.join(", ")),
    );
}

struct ThreadWaker(Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// A plane plus what it has said so far.
struct Probe {
    plane: BrokerPlane,
    waker: Waker,
    states: Vec<BrokerState>,
    records: BTreeMap<(String, i32), Vec<LogRecord>>,
    other: Vec<PlaneEvent>,
}

impl Probe {
    fn spawn(config: &KafkaConfig, shard: usize, shards: usize) -> Self {
        let (plane, _thread) = spawn_plane(config, shard, shards, None).expect("spawn plane");
        Self {
            plane,
            waker: Waker::from(Arc::new(ThreadWaker(std::thread::current()))),
            states: Vec::new(),
            records: BTreeMap::new(),
            other: Vec::new(),
        }
    }

    /// Waits (sleeping on the plane's waker) for one event and files it.
    fn step(&mut self, deadline: Instant) -> bool {
        let event = loop {
            if let Some(event) = self.plane.try_recv() {
                break event;
            }
            self.plane.set_waker(&self.waker);
            if let Some(event) = self.plane.try_recv() {
                break event;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            std::thread::park_timeout((deadline - now).min(Duration::from_millis(200)));
        };
        match event {
            PlaneEvent::BrokerState(state) => self.states.push(state),
            PlaneEvent::Records {
                topic,
                partition,
                records,
                high_watermark,
            } => {
                let last = records.last().map_or(-1, |r| r.offset);
                assert!(
                    last < high_watermark,
                    "record {last} at/after hwm {high_watermark}"
                );
                let seen = self
                    .records
                    .entry((topic.to_string(), partition))
                    .or_default();
                seen.extend(records);
            }
            other => self.other.push(other),
        }
        true
    }

    /// Steps until `done(self)` or panics after `WAIT` saying `what`.
    fn until(&mut self, what: &str, mut done: impl FnMut(&Self) -> bool) {
        let deadline = Instant::now() + WAIT;
        while !done(self) {
            assert!(
                self.step(deadline),
                "timed out waiting for {what}; states {:?}, records {:?}, other {:?}",
                self.states,
                self.record_offsets(),
                self.other
            );
        }
    }

    fn record_offsets(&self) -> BTreeMap<(String, i32), Vec<i64>> {
        self.records
            .iter()
            .map(|(k, v)| (k.clone(), v.iter().map(|r| r.offset).collect()))
            .collect()
    }

    fn count(&self, topic: &str) -> usize {
        self.records
            .iter()
            .filter(|((t, _), _)| t == topic)
            .map(|(_, v)| v.len())
            .sum()
    }

    fn got(&self, topic: &str, partition: i32) -> &[LogRecord] {
        self.records
            .get(&(topic.to_owned(), partition))
            .map_or(&[], Vec::as_slice)
    }

    /// Waits until the plane is up and knows `topic`'s partitions, then a little for the fetch
    /// loops to resolve their start offsets (they run right after).
    fn ready(&mut self, topic: &str) {
        self.until("partitions of the topic", |p| {
            p.other.iter().any(
                |e| matches!(e, PlaneEvent::Partitions { topic: t, .. } if t.as_ref() == topic),
            )
        });
        std::thread::sleep(Duration::from_millis(700));
    }

    fn take_other(&mut self, pick: impl Fn(&PlaneEvent) -> bool) -> Option<PlaneEvent> {
        let index = self.other.iter().position(pick)?;
        Some(self.other.remove(index))
    }
}

fn records(
    partition: i32,
    range: std::ops::Range<u32>,
    tag: &str,
) -> Vec<(i32, String, String, String)> {
    range
        .map(|i| {
            (
                partition,
                format!("k{i}"),
                format!("type.{}", i % 3),
                format!("{tag}-{i}"),
            )
        })
        .collect()
}

#[test]
fn records_arrive_in_order_with_key_headers_and_type() {
    let b = broker();
    let topic = unique("plane-order");
    create_topic(&b, &topic, 1);
    produce(&b, &topic, &records(0, 0..20, "v"));
    let mut probe = Probe::spawn(&config(&b, &[&topic], "earliest"), 0, 1);
    probe.until("20 records", |p| p.count(&topic) >= 20);
    assert_eq!(probe.states.first(), Some(&BrokerState::Up));
    let got = probe.got(&topic, 0);
    let rule = EventTypeRule::new("ce_type", "");
    for (i, r) in got.iter().enumerate() {
        assert_eq!(r.offset, i as i64);
        assert_eq!(r.value, Bytes::from(format!("v-{i}")));
        assert_eq!(r.key, Some(Bytes::from(format!("k{i}"))));
        assert_eq!(r.header("origin").map(|v| &v[..]), Some(&b"python"[..]));
        assert_eq!(
            rule.event_type(r).as_deref(),
            Some(format!("type.{}", i % 3).as_str())
        );
        assert!(r.timestamp_ms > 0);
    }
    assert_eq!(got.len(), 20, "no duplicates");
}

#[test]
fn two_shards_each_fetch_only_their_partitions() {
    let b = broker();
    let topic = unique("plane-split");
    create_topic(&b, &topic, 6);
    let mut all = Vec::new();
    for p in 0..6 {
        all.extend(records(p, 0..5, &format!("p{p}")));
    }
    produce(&b, &topic, &all);
    let config = config(&b, &[&topic], "earliest");
    let mut probes = [Probe::spawn(&config, 0, 2), Probe::spawn(&config, 1, 2)];
    for (shard, probe) in probes.iter_mut().enumerate() {
        let owned: Vec<i32> = (0..6)
            .filter(|&p| owner_of(&topic, p, 2) == shard)
            .collect();
        probe.until("owned records", |p| p.count(&topic) >= owned.len() * 5);
        // Give a stray partition time to show up if assignment were wrong.
        std::thread::sleep(Duration::from_millis(500));
        while probe.step(Instant::now() + Duration::from_millis(100)) {}
        let partitions: Vec<i32> = probe.records.keys().map(|(_, p)| *p).collect();
        assert_eq!(partitions, owned, "shard {shard}");
        for &p in &owned {
            let values: Vec<Bytes> = probe
                .got(&topic, p)
                .iter()
                .map(|r| r.value.clone())
                .collect();
            let want: Vec<Bytes> = (0..5).map(|i| Bytes::from(format!("p{p}-{i}"))).collect();
            assert_eq!(values, want, "partition {p} in order, once");
        }
    }
    assert!(
        probes.iter().all(|p| !p.records.is_empty()),
        "both shards own something"
    );
}

#[test]
fn start_positions_latest_earliest_and_timestamp() {
    let b = broker();
    let topic = unique("plane-start");
    create_topic(&b, &topic, 1);
    produce(&b, &topic, &records(0, 0..3, "a"));
    std::thread::sleep(Duration::from_millis(50));
    let middle = now_ms();
    std::thread::sleep(Duration::from_millis(50));
    produce(&b, &topic, &records(0, 3..6, "b"));

    let mut earliest = Probe::spawn(&config(&b, &[&topic], "earliest"), 0, 1);
    let mut latest = Probe::spawn(&config(&b, &[&topic], "latest"), 0, 1);
    let mut stamped = Probe::spawn(&config(&b, &[&topic], &middle.to_string()), 0, 1);
    latest.ready(&topic);
    produce(&b, &topic, &records(0, 6..8, "c"));

    earliest.until("all 8", |p| p.count(&topic) >= 8);
    assert_eq!(earliest.got(&topic, 0).first().map(|r| r.offset), Some(0));
    latest.until("the 2 new ones", |p| p.count(&topic) >= 2);
    let offsets: Vec<i64> = latest.got(&topic, 0).iter().map(|r| r.offset).collect();
    assert_eq!(offsets, vec![6, 7]);
    stamped.until("from the timestamp on", |p| p.count(&topic) >= 5);
    let offsets: Vec<i64> = stamped.got(&topic, 0).iter().map(|r| r.offset).collect();
    assert_eq!(offsets, vec![3, 4, 5, 6, 7]);
}

#[test]
fn catch_up_fetch_reads_old_offsets_and_reports_out_of_range() {
    let b = broker();
    let topic = unique("plane-fetch");
    create_topic(&b, &topic, 1);
    produce(&b, &topic, &records(0, 0..10, "v"));
    let mut probe = Probe::spawn(&config(&b, &[&topic], "latest"), 0, 1);
    probe.ready(&topic);
    let topic_arc: Arc<str> = Arc::from(topic.as_str());
    let fetch = |request_id, offset| PlaneCommand::Fetch {
        request_id,
        topic: Arc::clone(&topic_arc),
        partition: 0,
        offset,
        max_bytes: 1 << 20,
    };
    probe
        .plane
        .send(fetch(1, 4))
        .expect("command ring has room");
    probe
        .plane
        .send(fetch(2, 100))
        .expect("command ring has room");
    let done = |id: u64| move |e: &PlaneEvent| matches!(e, PlaneEvent::FetchDone { request_id, .. } if *request_id == id);
    probe.until("both fetches", |p| {
        p.other
            .iter()
            .filter(|e| matches!(e, PlaneEvent::FetchDone { .. }))
            .count()
            >= 2
    });
    match probe.take_other(done(1)) {
        Some(PlaneEvent::FetchDone {
            result: Ok(fetched),
            ..
        }) => {
            let offsets: Vec<i64> = fetched.records.iter().map(|r| r.offset).collect();
            assert_eq!(offsets, (4..10).collect::<Vec<_>>());
            assert_eq!(fetched.records[0].value, Bytes::from("v-4"));
            assert_eq!(fetched.high_watermark, 10);
        }
        other => panic!("fetch 1: {other:?}"),
    }
    match probe.take_other(done(2)) {
        Some(PlaneEvent::FetchDone {
            result: Err(err), ..
        }) => {
            assert_eq!(
                err,
                FetchError::OffsetOutOfRange {
                    earliest: 0,
                    latest: 10
                }
            );
        }
        other => panic!("fetch 2: {other:?}"),
    }
}

#[test]
fn produced_records_are_acknowledged_and_come_back_through_the_consume_path() {
    let b = broker();
    let topic = unique("plane-produce");
    create_topic(&b, &topic, 2);
    let mut probe = Probe::spawn(&config(&b, &[&topic], "latest"), 0, 1);
    probe.ready(&topic);
    let batch: Vec<ProduceRecord> = (0..4)
        .map(|i| ProduceRecord {
            key: Some(Bytes::from(format!("key-{}", i % 2))),
            headers: vec![("ce_type".to_owned(), Bytes::from("made.here"))],
            value: Bytes::from(format!("produced-{i}")),
            id: None,
            event_type: None,
        })
        .collect();
    let command = PlaneCommand::Produce {
        request_id: 9,
        topic: Arc::from(topic.as_str()),
        partition: None,
        records: batch,
    };
    probe.plane.send(command).expect("command ring has room");
    probe.until("produce answer", |p| {
        p.other
            .iter()
            .any(|e| matches!(e, PlaneEvent::ProduceDone { .. }))
    });
    let produced =
        match probe.take_other(|e| matches!(e, PlaneEvent::ProduceDone { request_id: 9, .. })) {
            Some(PlaneEvent::ProduceDone {
                result: Ok(produced),
                ..
            }) => produced,
            other => panic!("produce: {other:?}"),
        };
    assert_eq!(produced.len(), 4);
    // Same key, same partition; offsets in order within it.
    assert_eq!(produced[0].partition, produced[2].partition);
    assert_eq!(produced[1].partition, produced[3].partition);
    assert!(produced[2].offset > produced[0].offset);
    probe.until("the produced records", |p| p.count(&topic) >= 4);
    for (i, at) in produced.iter().enumerate() {
        let found = probe
            .got(&topic, at.partition)
            .iter()
            .find(|r| r.offset == at.offset)
            .unwrap_or_else(|| panic!("record {i} at {at:?} not consumed"));
        assert_eq!(found.value, Bytes::from(format!("produced-{i}")));
        assert_eq!(found.key, Some(Bytes::from(format!("key-{}", i % 2))));
        assert_eq!(
            found.header("ce_type").map(|v| &v[..]),
            Some(&b"made.here"[..])
        );
    }
    assert_eq!(probe.count(&topic), 4, "nothing duplicated");
}

#[test]
fn missing_topics_are_reported_or_created() {
    let b = broker();
    let absent = unique("plane-absent");
    let mut probe = Probe::spawn(&config(&b, &[&absent], "earliest"), 0, 1);
    probe.until("topic error", |p| {
        p.other
            .iter()
            .any(|e| matches!(e, PlaneEvent::TopicError { .. }))
    });
    match probe.take_other(|e| matches!(e, PlaneEvent::TopicError { .. })) {
        Some(PlaneEvent::TopicError { topic, reason }) => {
            assert_eq!(topic.as_ref(), absent);
            assert!(reason.contains("create_topics"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    let err =
        check_bootstrap(&config(&b, &[&absent], "earliest"), WAIT).expect_err("unknown topic");
    assert!(matches!(err, KafkaError::UnknownTopic { .. }), "{err}");
    assert!(err.to_string().contains(&absent), "{err}");

    let created = unique("plane-created");
    let mut config = config(&b, &[&created], "earliest");
    config.create_topics = true;
    config.create_partitions = 3;
    check_bootstrap(&config, WAIT).expect("create_topics skips the existence check");
    let mut probe = Probe::spawn(&config, 0, 1);
    probe.until("created topic's partitions", |p| {
        p.other
            .iter()
            .any(|e| matches!(e, PlaneEvent::Partitions { count: 3, .. }))
    });
    check_bootstrap(
        &KafkaConfig {
            create_topics: false,
            ..config
        },
        WAIT,
    )
    .expect("now it exists");
}

#[test]
fn check_bootstrap_names_an_unreachable_broker() {
    let _ = broker();
    let config = config("127.0.0.1:1", &["t"], "latest");
    let started = Instant::now();
    let err =
        check_bootstrap(&config, Duration::from_secs(3)).expect_err("nothing listens on port 1");
    assert!(started.elapsed() < Duration::from_secs(10));
    let text = err.to_string();
    assert!(
        text.starts_with("kafka.bootstrap: cannot reach any of 127.0.0.1:1"),
        "{text}"
    );
}

#[test]
fn broker_restart_mid_stream_loses_and_repeats_nothing() {
    let _ = broker();
    let mut own = OwnBroker::start();
    let b = own.addr();
    let topic = unique("plane-restart");
    create_topic(&b, &topic, 1);
    produce(&b, &topic, &records(0, 0..5, "before"));
    let mut probe = Probe::spawn(&config(&b, &[&topic], "earliest"), 0, 1);
    probe.until("first 5", |p| p.count(&topic) >= 5);

    own.kill();
    probe.until("Down", |p| {
        matches!(p.states.last(), Some(BrokerState::Down { .. }))
    });
    let asked = Instant::now();
    let command = PlaneCommand::Produce {
        request_id: 1,
        topic: Arc::from(topic.as_str()),
        partition: Some(0),
        records: vec![ProduceRecord {
            value: Bytes::from("x"),
            ..ProduceRecord::default()
        }],
    };
    probe.plane.send(command).expect("command ring has room");
    probe.until("produce refusal", |p| {
        p.other
            .iter()
            .any(|e| matches!(e, PlaneEvent::ProduceDone { .. }))
    });
    assert!(
        asked.elapsed() < Duration::from_secs(1),
        "refused in {:?}",
        asked.elapsed()
    );
    match probe.take_other(|e| matches!(e, PlaneEvent::ProduceDone { .. })) {
        Some(PlaneEvent::ProduceDone {
            result: Err(ProduceError::BrokerDown(_)),
            ..
        }) => {}
        other => panic!("{other:?}"),
    }

    own.launch();
    probe.until("Up again", |p| p.states.last() == Some(&BrokerState::Up));
    produce(&b, &topic, &records(0, 5..10, "after"));
    probe.until("all 10", |p| p.count(&topic) >= 10);
    std::thread::sleep(Duration::from_millis(300));
    while probe.step(Instant::now() + Duration::from_millis(100)) {}
    let offsets: Vec<i64> = probe.got(&topic, 0).iter().map(|r| r.offset).collect();
    assert_eq!(
        offsets,
        (0..10).collect::<Vec<_>>(),
        "no loss, no duplicate"
    );
    let downs = probe
        .states
        .iter()
        .filter(|s| matches!(s, BrokerState::Down { .. }))
        .count();
    assert_eq!(downs, 1, "one Down per outage: {:?}", probe.states);
}
