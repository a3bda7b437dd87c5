//! End-to-end test of the gateway in Kafka mode when a topic grows while it runs: its metadata
//! refresh must notice the new partition, so a subscription with a cursor that covers it is
//! accepted and delivers the new partition's records.
//!
//! tansu 0.6 does not implement CreatePartitions (kafka-python's `create_partitions` fails with
//! IncompatibleBrokerVersion), so the tests grow the topic in the sqlite storage of a tansu of
//! their own: once with that broker stopped and started again (the gateway must reconnect), and
//! once under the running broker (only the gateway's periodic metadata refresh can notice).
//!
//! Needs `SLUICEGATE_TEST_KAFKA=127.0.0.1:PORT` (`tests/services.sh start` prints it), Python's
//! `kafka-python` and `sqlite3`, and the `tansu` binary.

mod common;

use common::kafka::{
    broker, create_topic, edit_tansu_db, json_str, kafka_gateway, offset_bounds, produce, python,
    unique, OwnBroker, Rec, WAIT_FOR_PARTITIONS,
};
use common::{ParsedEvent, SseClient};
use std::time::{Duration, Instant};

/// Wait for one event; generous, since a record goes producer -> broker -> fetch -> ring -> SSE.
const EVENT_WAIT: Duration = Duration::from_secs(8);
/// How long the gateway may take to notice a new partition (its refresh here is 300 ms, but it
/// also has to reconnect to the restarted broker first).
const PICKUP: Duration = Duration::from_secs(15);
/// How long a stream must stay quiet to show nothing extra came.
const QUIET: Duration = Duration::from_millis(700);
const SHARDS: usize = 2;

fn data(evs: &[ParsedEvent]) -> Vec<(&str, &str)> {
    evs.iter()
        .map(|e| (e.last_event_id.as_str(), e.data.as_str()))
        .collect()
}

/// Grows `topic` to `partitions` partitions in tansu's sqlite database at `db` the way tansu's
/// own topic creation lays them out: raises `topic.partitions` and adds a `topition` row per new
/// partition with a `watermark` row without bounds (as tansu's `watermark_insert.sql` does).
/// tansu reads topic metadata from the database on each request, so this works on a running
/// broker too. Returns the partition count before.
fn grow_storage(db: &std::path::Path, topic: &str, partitions: i32) -> i32 {
    let script = "import json, os, sqlite3, sys\n\
        a = json.loads(os.environ['ARGS'])\n\
        c = sqlite3.connect(a['db'])\n\
        row = c.execute('select id, partitions from topic where name = ?', (a['t'],)).fetchone()\n\
        if row is None: sys.exit('no topic ' + a['t'] + ' in ' + a['db'])\n\
        (topic, have) = row\n\
        if have >= a['n']: sys.exit('the topic already has %d partitions' % have)\n\
        c.execute('update topic set partitions = ? where id = ?', (a['n'], topic))\n\
        for p in range(have, a['n']):\n\
        \x20   tp = c.execute('insert into topition (topic, partition) values (?, ?)', \
        (topic, p)).lastrowid\n\
        \x20   c.execute('insert into watermark (topition) values (?)', (tp,))\n\
        c.commit()\n\
        print(have)\n";
    let args = format!(
        r#"{{"db": {}, "t": {}, "n": {partitions}}}"#,
        json_str(&db.to_string_lossy()),
        json_str(topic)
    );
    let before = edit_tansu_db(script, &args);
    before
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("partition count before: {before:?}"))
}

/// The partitions of `topic` as kafka-python's metadata lists them (waits up to 15 s for the
/// topic to appear).
fn partitions_listed(bootstrap: &str, topic: &str) -> Vec<i32> {
    let out = python(
        bootstrap,
        &format!("{WAIT_FOR_PARTITIONS}print(' '.join(str(p) for p in sorted(parts or [])))\n"),
        &format!(r#"{{"t": {}}}"#, json_str(topic)),
    );
    out.split_whitespace()
        .map(|p| {
            p.parse()
                .unwrap_or_else(|_| panic!("partition list: unexpected output {out:?}"))
        })
        .collect()
}

/// How the topic is grown under the running gateway.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Growth {
    /// Broker stopped, storage edited, broker started again: the gateway has to reconnect and
    /// may learn the new partition in the discovery after reconnecting.
    WithRestart,
    /// Storage edited under the running broker: the gateway keeps its connections, so only its
    /// periodic metadata refresh can learn the new partition.
    Live,
}

#[test]
fn partitions_added_to_a_topic_while_the_gateway_runs_are_picked_up() {
    grow_under_the_gateway(Growth::WithRestart);
}

#[test]
fn partitions_added_without_a_broker_restart_are_picked_up_by_the_metadata_refresh() {
    grow_under_the_gateway(Growth::Live);
}

/// Subscribes to a 1-partition topic, grows it to 2 partitions the `growth` way, produces to
/// the new partition, and expects a new subscription resuming at `0-1.0` to be accepted on
/// every shard within `PICKUP` and to deliver that record as `0-1.1`.
fn grow_under_the_gateway(growth: Growth) {
    let _ = broker();
    let mut own = OwnBroker::start();
    let b = own.addr();
    let topic = unique("e2e-grow");
    create_topic(&b, &topic, 1);
    let mut gw = kafka_gateway(
        &b,
        &[&topic],
        SHARDS,
        &["--set", "kafka.metadata_refresh_ms=300"],
    );
    let events = format!("/topics/{topic}/events");
    let resume = format!("{events}?lastEventId=0-1.0");

    let mut first = SseClient::connect(gw.addr(), &events, &[]);
    produce(&b, &topic, &[Rec::at(0, "p0-0")]);
    let seen = first.expect_events(1, EVENT_WAIT);
    assert_eq!(data(&seen), [("0-1", "p0-0")], "1-partition stream");
    // While the topic has one partition, a two-element cursor does not fit it.
    match SseClient::try_connect(gw.addr(), &resume, &[]) {
        Err(e) => assert!(
            e.starts_with("status 400"),
            "a 2-element cursor on a 1-partition topic: {e}"
        ),
        Ok(c) => panic!(
            "a 2-element cursor on a 1-partition topic was accepted (headers {:?})",
            c.headers()
        ),
    }

    let before = match growth {
        Growth::WithRestart => {
            own.kill();
            let before = grow_storage(&own.db_path(), &topic, 2);
            own.launch();
            before
        }
        Growth::Live => grow_storage(&own.db_path(), &topic, 2),
    };
    let grown = Instant::now();
    assert_eq!(before, 1, "partitions before growing");
    assert_eq!(
        partitions_listed(&b, &topic),
        [0, 1],
        "kafka-python should see the grown topic"
    );
    produce(&b, &topic, &[Rec::at(1, "p1-0")]);
    assert_eq!(
        offset_bounds(&b, &topic, 1),
        (0, 1),
        "the broker should hold one record in the new partition"
    );
    gw.assert_alive();

    // Until the gateway knows the new partition it refuses the cursor (400); retry until a
    // subscription is accepted on every shard, since each shard learns the count on its own.
    let asked = Instant::now();
    let deadline = asked + PICKUP;
    let mut on_shard: Vec<Option<SseClient>> = (0..SHARDS).map(|_| None).collect();
    let mut refusals: Vec<String> = Vec::new();
    while on_shard.iter().any(Option::is_none) {
        assert!(
            Instant::now() < deadline,
            "no 200 for {resume} on every shard within {PICKUP:?} (accepted on {:?}); \
             {} refusals, last: {:?}; log:\n{}",
            on_shard.iter().map(Option::is_some).collect::<Vec<_>>(),
            refusals.len(),
            refusals.last(),
            gw.log()
        );
        match SseClient::try_connect(gw.addr(), &resume, &[]) {
            Ok(client) => {
                let shard = client
                    .shard()
                    .unwrap_or_else(|| panic!("no x-sluicegate-shard on {:?}", client.headers()));
                if let Some(slot @ None) = on_shard.get_mut(shard) {
                    *slot = Some(client);
                }
            }
            Err(e) => {
                refusals.push(e);
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
    eprintln!(
        "{growth:?}: new partition accepted {:?} after growing the topic ({:?} after the first \
         try, {} refusals before)",
        grown.elapsed(),
        asked.elapsed(),
        refusals.len()
    );
    for e in &refusals {
        assert!(
            e.starts_with("status 400") || e.starts_with("status 503"),
            "a refusal other than 400 (cursor does not fit) or 503 (broker not back yet): {e}"
        );
    }
    for (shard, sub) in on_shard.iter_mut().enumerate() {
        let Some(sub) = sub else { continue };
        let got = sub.expect_events(1, EVENT_WAIT);
        assert_eq!(
            data(&got),
            [("0-1.1", "p1-0")],
            "resume at 0-1.0 on shard {shard}; log:\n{}",
            gw.log()
        );
        let extra = sub.events_for(QUIET);
        assert!(
            extra.is_empty(),
            "shard {shard}: nothing after the new partition's record, got {:?}",
            data(&extra)
        );
    }

    // What the subscription opened with a 1-partition cursor sees is not specified here; shown
    // for whoever reads the test output.
    let later = first.events_for(QUIET);
    eprintln!(
        "{growth:?}: the first subscription (closed: {}) got after the growth: {:?}",
        first.is_closed(),
        data(&later)
    );
    gw.assert_alive();
    eprintln!(
        "{growth:?}: the gateway logged a disconnect: {}",
        gw.log().contains("kafka: disconnected")
    );
    if growth == Growth::Live {
        // The point of this variant: no reconnect happened, so the refresh found the partition.
        // (The log does hold the plane's messages: the connect is there.)
        assert!(
            gw.log().contains("kafka: connected"),
            "no connect message in the log:\n{}",
            gw.log()
        );
        assert!(
            !gw.log().contains("kafka: disconnected"),
            "the gateway lost the broker although it kept running; log:\n{}",
            gw.log()
        );
    }
}
