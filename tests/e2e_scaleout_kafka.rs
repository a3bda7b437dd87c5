//! Scale-out over Kafka: three gateway processes on loopback (own ports, own data directories,
//! two shards each) read and produce one 3-partition topic on one broker (tansu). Publishes
//! spread over the instances reach subscribers on every instance once each in partition order;
//! a subscriber that moves between instances with its last id gets exactly the rest; killing an
//! instance (SIGKILL) loses nothing for the clients that move away from it, including one that
//! moves to an instance started after the kill (which must fetch the history back from Kafka).
//!
//! Needs `SLUICEGATE_TEST_KAFKA=127.0.0.1:PORT` (`tests/services.sh start` writes it) and
//! Python's `kafka-python` (topic creation). The harness is `tests/common/cluster.rs`.

mod common;

use common::cluster::{
    check_exactly_once, Cluster, Publisher, Received, ResumeWith, Roamer, Sent, Tag,
    DELIVERY_TIMEOUT, QUIET,
};
use common::kafka::{broker, create_topic, cursor, json_str, unique};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const INSTANCES: usize = 3;
const PARTITIONS: usize = 3;
/// Ten keys: coprime with the three instances, so each key's events go through every instance
/// in turn (nine would pin each key to one instance), and they hash onto all three partitions
/// (asserted below).
const KEYS: [&str; 10] = ["k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7", "k8", "k9"];

/// The `[kafka]` section every instance shares, and a webhook state topic of the cluster's
/// own (each gateway with Kafka loads it at start; the default one is shared by every test on
/// the broker).
fn kafka_section(bootstrap: &str, topic: &str) -> String {
    format!(
        "[kafka]\n\
         bootstrap = [{}]\n\
         topics = [{}]\n\
         start = \"earliest\"\n\
         fetch_max_wait_ms = 100\n\
         metadata_refresh_ms = 1000\n\
         request_timeout_ms = 30000\n\
         \n\
         [webhooks]\n\
         kafka_state_topic = {}\n",
        json_str(bootstrap),
        json_str(topic),
        json_str(&unique("e2e-scaleout-state")),
    )
}

/// A fresh 3-partition topic and three instances reading it; the subscribe path.
fn kafka_cluster(name: &str) -> (Cluster, String, String) {
    let b = broker();
    let topic = unique(name);
    create_topic(&b, &topic, PARTITIONS as u32);
    let cluster = Cluster::start(INSTANCES, &kafka_section(&b, &topic), &["--shards", "2"]);
    let path = format!("/topics/{topic}/events");
    (cluster, topic, path)
}

/// Where an event sits in Kafka: its partition and the partition's next offset after it.
type Placement = (usize, u64);

/// Walks the cursor ids of `got` from `start`: each event must move exactly one partition's
/// element, by exactly one (so nothing of that partition was skipped or repeated, and the
/// partition's events came in offset order), and a key must always move the same partition.
/// Returns each event's placement by sequence number.
fn cursor_walk(
    got: &[Received],
    start: &[u64],
    what: &str,
    cluster: &Cluster,
) -> BTreeMap<u64, Placement> {
    let fail = |msg: String| -> ! { panic!("{what}: {msg}{}", cluster.logs()) };
    let mut prev = start.to_vec();
    let mut key_partition: BTreeMap<String, usize> = BTreeMap::new();
    let mut out = BTreeMap::new();
    for (i, r) in got.iter().enumerate() {
        let now = cursor(&r.id);
        if now.len() != prev.len() {
            fail(format!(
                "event {i} id {:?}: not {} partitions",
                r.id,
                prev.len()
            ));
        }
        let moved: Vec<usize> = (0..now.len()).filter(|&p| now[p] != prev[p]).collect();
        let [p] = moved[..] else {
            fail(format!(
                "event {i} ({:?} from instance {}): id {:?} after {prev:?} moves {moved:?}",
                r.data, r.instance, r.id
            ))
        };
        if now[p] != prev[p] + 1 {
            fail(format!(
                "event {i} ({:?} from instance {}): id {:?} after {prev:?} skips or repeats \
                 offsets of partition {p}",
                r.data, r.instance, r.id
            ));
        }
        let tag = Tag::parse(&r.data).unwrap_or_else(|| fail(format!("untagged {r:?}")));
        if let Some(was) = key_partition.insert(tag.key.clone(), p) {
            if was != p {
                fail(format!("key {} moved from partition {was} to {p}", tag.key));
            }
        }
        out.insert(tag.seq, (p, now[p]));
        prev = now;
    }
    out
}

/// The placements every reader saw must be the same (they read one log), and cover all three
/// partitions.
fn assert_same_placements(walks: &[(String, BTreeMap<u64, Placement>)], cluster: &Cluster) {
    let (first_name, first) = &walks[0];
    for (name, walk) in &walks[1..] {
        for (seq, place) in walk {
            if let Some(other) = first.get(seq) {
                assert_eq!(
                    place,
                    other,
                    "seq {seq}: {name} and {first_name} disagree on its (partition, \
                     next offset){}",
                    cluster.logs()
                );
            }
        }
    }
    let used: std::collections::BTreeSet<usize> = first.values().map(|(p, _)| *p).collect();
    assert_eq!(
        used.len(),
        PARTITIONS,
        "the keys should spread over every partition, used {used:?}"
    );
}

fn acked(sent: &[Sent]) -> usize {
    sent.iter().filter(|s| s.acked()).count()
}

#[test]
fn publishes_spread_over_three_instances_reach_every_subscriber_once_in_partition_order() {
    let (mut cluster, topic, path) = kafka_cluster("e2e-scaleout-spread");
    // Two subscribers per instance (with two shards each, most runs cover both shards).
    let mut subs: Vec<Roamer> = (0..2 * INSTANCES)
        .map(|i| Roamer::subscribe(&cluster, i % INSTANCES, &path))
        .collect();
    let mut publisher = Publisher::new(cluster.targets(), &topic, &KEYS);
    let sent = publisher.publish_acked(90);
    for (i, s) in sent.iter().enumerate() {
        assert_eq!(s.instance, i % INSTANCES, "round robin over the instances");
    }

    let mut walks = Vec::new();
    for (i, sub) in subs.iter_mut().enumerate() {
        let what = format!("subscriber {i} on instance {}", sub.instance);
        assert!(
            sub.read_all_acked(&sent, DELIVERY_TIMEOUT),
            "{what}: got {} of {} events within {DELIVERY_TIMEOUT:?}: {:?}{}",
            sub.got.len(),
            sent.len(),
            sub.got.iter().map(|r| &r.data).collect::<Vec<_>>(),
            cluster.logs()
        );
        // Anything after the last one would be a duplicate.
        sub.read_for(QUIET);
        let checked = check_exactly_once(&sub.got, &sent, &what, &cluster);
        assert_eq!(checked.tags.len(), sent.len(), "{what}");
        walks.push((
            what.clone(),
            cursor_walk(&sub.got, &[0; PARTITIONS], &what, &cluster),
        ));
    }
    assert_same_placements(&walks, &cluster);

    // Each publish answer names the offset the record got (`0-{offset + 1}`, one partition):
    // it must be where every subscriber saw that event.
    let placements = &walks[0].1;
    for s in &sent {
        let (_, next) = placements[&s.tag.seq];
        assert_eq!(
            s.outcome.as_deref(),
            Ok(format!("0-{next}").as_str()),
            "publish answer of {:?} (instance {})",
            s.tag,
            s.instance
        );
    }
    cluster.assert_alive();
}

#[test]
fn a_subscriber_moving_between_instances_with_its_last_id_gets_exactly_the_rest() {
    let (mut cluster, topic, path) = kafka_cluster("e2e-scaleout-move");
    let mut roamer = Roamer::subscribe(&cluster, 0, &path);
    // A subscriber that stays put, to compare with.
    let mut stayer = Roamer::subscribe(&cluster, 2, &path);
    let mut publisher = Publisher::new(cluster.targets(), &topic, &KEYS);

    let mut sent = publisher.publish_acked(30);
    // Leaves instance 0 a third of the way in (what it had not read yet is dropped with the
    // connection), and resumes on instance 1 with the Last-Event-ID header.
    assert!(
        roamer.read_count(10, DELIVERY_TIMEOUT),
        "first 10 on instance 0{}",
        cluster.logs()
    );
    roamer.resume_on(&cluster, 1, ResumeWith::Header);
    sent.extend(publisher.publish_acked(30));
    assert!(
        roamer.read_count(40, DELIVERY_TIMEOUT),
        "40 after moving to instance 1{}",
        cluster.logs()
    );
    // Moves on with `?lastEventId=` while events are published, then reads to the end there.
    roamer.resume_on(&cluster, 2, ResumeWith::Query);
    sent.extend(publisher.publish_acked(30));
    assert!(
        roamer.read_all_acked(&sent, DELIVERY_TIMEOUT),
        "every event after moving to instance 2, got {}{}",
        roamer.got.len(),
        cluster.logs()
    );
    // Back to where it started, with nothing left to read: nothing must come, then exactly
    // what is published next.
    roamer.resume_on(&cluster, 0, ResumeWith::Header);
    assert_eq!(
        roamer.read_for(QUIET),
        0,
        "a resume with the newest id replays nothing: {:?}",
        roamer.got.last()
    );
    sent.extend(publisher.publish_acked(6));
    assert!(
        roamer.read_all_acked(&sent, DELIVERY_TIMEOUT),
        "the last 6 on instance 0{}",
        cluster.logs()
    );
    roamer.read_for(QUIET);
    assert!(stayer.read_all_acked(&sent, DELIVERY_TIMEOUT), "stayer");
    stayer.read_for(QUIET);

    let instances: Vec<usize> = roamer.connections.iter().map(|(i, _)| *i).collect();
    assert_eq!(instances, [0, 1, 2, 0], "the roamer's connections");
    // Each connection delivered something, so every move was a resume with events to replay
    // or to follow (not an empty hop).
    for w in roamer.connections.windows(2) {
        assert!(w[1].1 > w[0].1, "connections {:?}", roamer.connections);
    }
    let checked = check_exactly_once(&roamer.got, &sent, "roamer", &cluster);
    assert_eq!(checked.tags.len(), sent.len());
    check_exactly_once(&stayer.got, &sent, "stayer", &cluster);
    let walks = vec![
        (
            "roamer".to_owned(),
            cursor_walk(&roamer.got, &[0; PARTITIONS], "roamer", &cluster),
        ),
        (
            "stayer".to_owned(),
            cursor_walk(&stayer.got, &[0; PARTITIONS], "stayer", &cluster),
        ),
    ];
    assert_same_placements(&walks, &cluster);
    cluster.assert_alive();
}

/// Publishes round robin over `publisher`'s instances until `stop`, one after the other with a
/// short pause (a steady stream, not a flood); counts acknowledgements in `acked`.
fn publish_until(
    mut publisher: Publisher,
    stop: Arc<AtomicBool>,
    acked: Arc<AtomicUsize>,
) -> std::thread::JoinHandle<(Publisher, Vec<Sent>)> {
    std::thread::spawn(move || {
        let mut sent = Vec::new();
        while !stop.load(Ordering::Acquire) {
            let s = publisher.publish();
            if s.acked() {
                acked.fetch_add(1, Ordering::AcqRel);
            }
            sent.push(s);
            std::thread::sleep(Duration::from_millis(10));
        }
        (publisher, sent)
    })
}

/// Polls `cond` every 20 ms until it holds; false after `timeout`.
fn wait_for(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while !cond() {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

#[test]
fn killing_an_instance_loses_nothing_for_clients_that_move_away() {
    let (mut cluster, topic, path) = kafka_cluster("e2e-scaleout-kill");
    let victim = 0;
    // On the victim: `reader` reads until its stream dies; `laggard` reads a few events and
    // then nothing (the rest sits unread in its socket when the instance dies).
    let mut reader = Roamer::subscribe(&cluster, victim, &path);
    let mut laggard = Roamer::subscribe(&cluster, victim, &path);
    let mut others = [
        Roamer::subscribe(&cluster, 1, &path),
        Roamer::subscribe(&cluster, 2, &path),
    ];

    let stop = Arc::new(AtomicBool::new(false));
    let acked_count = Arc::new(AtomicUsize::new(0));
    let publishing = publish_until(
        Publisher::new(cluster.targets(), &topic, &KEYS),
        stop.clone(),
        acked_count.clone(),
    );
    assert!(
        laggard.read_count(5, DELIVERY_TIMEOUT),
        "laggard's first 5{}",
        cluster.logs()
    );
    assert!(
        reader.read_count(20, DELIVERY_TIMEOUT),
        "reader's first 20{}",
        cluster.logs()
    );

    // The crash, mid-stream: publishes keep coming (those sent to the dead instance fail).
    let acked_before_kill = acked_count.load(Ordering::Acquire);
    cluster.kill9(victim);
    assert!(
        reader.read_until_closed(DELIVERY_TIMEOUT),
        "the victim's stream should end when it dies"
    );
    // A replacement joins while the publisher runs, reading Kafka from its end: whatever a
    // client resuming there needs from before has to come back from Kafka.
    let fresh = cluster.add(&["--set", "kafka.start=\"latest\""]);
    assert!(
        wait_for(DELIVERY_TIMEOUT, || acked_count.load(Ordering::Acquire)
            >= acked_before_kill + 30),
        "publishes after the kill not acknowledged{}",
        cluster.logs()
    );
    reader.resume_on(&cluster, 1, ResumeWith::Header);
    laggard.resume_on(&cluster, fresh, ResumeWith::Query);
    stop.store(true, Ordering::Release);
    let (mut publisher, mut sent) = publishing.join().expect("publisher thread");

    // Then more publishes over the surviving instances and the replacement: live delivery
    // continues everywhere after the resumes.
    publisher = publisher.retarget(cluster.alive_targets());
    sent.extend(publisher.publish_acked(12));

    let lost_attempts = sent
        .iter()
        .filter(|s| !s.acked() && s.instance == victim)
        .count();
    assert!(
        sent.iter().all(|s| s.acked() || s.instance == victim),
        "only publishes to the victim may fail: {:?}",
        sent.iter().filter(|s| !s.acked()).collect::<Vec<_>>()
    );
    let mut walks = Vec::new();
    let mut readers: Vec<(&str, &mut Roamer)> =
        vec![("reader", &mut reader), ("laggard", &mut laggard)];
    let [o1, o2] = &mut others;
    readers.push(("subscriber on instance 1", o1));
    readers.push(("subscriber on instance 2", o2));
    for (name, r) in readers {
        assert!(
            r.read_all_acked(&sent, DELIVERY_TIMEOUT),
            "{name}: got {} events, {} acknowledged{}",
            r.got.len(),
            acked(&sent),
            cluster.logs()
        );
        r.read_for(QUIET);
        let checked = check_exactly_once(&r.got, &sent, name, &cluster);
        eprintln!(
            "{name}: {} events over connections {:?}, {} of them unacknowledged publishes",
            checked.tags.len(),
            r.connections,
            checked.unacked_delivered
        );
        walks.push((
            name.to_owned(),
            cursor_walk(&r.got, &[0; PARTITIONS], name, &cluster),
        ));
    }
    assert_same_placements(&walks, &cluster);
    // The laggard resumed far behind the replacement's start: most of what it got there was
    // fetched back from Kafka, and it continued live.
    let (_, at) = laggard.connections[1];
    assert!(
        laggard.got.len() - at > 30,
        "laggard got {} events on the replacement",
        laggard.got.len() - at
    );
    eprintln!(
        "published {} ({} acknowledged, {lost_attempts} attempts on the dead instance failed)",
        sent.len(),
        acked(&sent)
    );
    cluster.assert_alive();
}

#[test]
fn an_instance_joining_at_latest_delivers_what_is_published_once_it_is_ready() {
    // An instance added behind a load balancer starts at `latest` (the default): a client that
    // subscribes as soon as it answers /readyz must get what is published after that. Seen
    // failing: round 1 got seq 13 and 14 but not 12, all three published through instance 0
    // after the subscription opened (`BrokerLink::is_ready` counts known partitions only;
    // `fetch::run` resolves `latest` later, on its own connection).
    let b = broker();
    let topic = unique("e2e-scaleout-join");
    create_topic(&b, &topic, PARTITIONS as u32);
    let mut cluster = Cluster::start(1, &kafka_section(&b, &topic), &["--shards", "2"]);
    let path = format!("/topics/{topic}/events");
    let mut publisher = Publisher::new(cluster.targets(), &topic, &KEYS);
    let mut sent = publisher.publish_acked(9);
    for round in 0..5 {
        let joined = cluster.add(&["--set", "kafka.start=\"latest\""]);
        let mut sub = Roamer::subscribe(&cluster, joined, &path);
        let first = sent.len();
        sent.extend(publisher.publish_acked(3));
        assert!(
            sub.read_all_acked(&sent[first..], DELIVERY_TIMEOUT),
            "round {round}: the subscriber on the new instance got {:?} of {:?}{}",
            sub.got.iter().map(|r| &r.data).collect::<Vec<_>>(),
            sent[first..]
                .iter()
                .map(|s| s.tag.data())
                .collect::<Vec<_>>(),
            cluster.logs()
        );
        sub.read_for(QUIET);
        check_exactly_once(
            &sub.got,
            &sent[first..],
            &format!("round {round}"),
            &cluster,
        );
        cluster.kill9(joined);
    }
}
