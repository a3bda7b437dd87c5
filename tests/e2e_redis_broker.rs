//! End-to-end tests of `[redis] mode = "broker"` (Redis Streams as the log): real gateway
//! binaries on loopback, a real `redis-server`, real SSE. Several instances share one Redis;
//! an independent reader (Python's `redis`) checks what the streams hold; a Redis restart and
//! a `kill -9` of an instance lose nothing acknowledged; idempotency keys deliver once; a
//! broker mode that cannot work refuses to start.
//!
//! Needs `SLUICEGATE_TEST_REDIS_URL` (tests/services.sh start), `redis-server` on the PATH (the
//! restart test runs one of its own) and Python 3 with the `redis` package. A missing piece
//! fails the test with how to provide it: nothing here passes by skipping.
//!
//! The shared Redis is used by other tests at the same time: every test writes under a key
//! template of its own (`sgt-<unique>:{topic}:{partition}`) and deletes only its own keys.
//!
//! The multi-instance helpers are local to this file (the shared harness in
//! tests/common/cluster.rs was not on main when this was written).

mod common;

use common::http::{build_request, read_response};
use common::kafka::{cursor, json_str, metric_sum, unique};
use common::redis::OwnRedis;
use common::READY_TIMEOUT;
use common::{
    config_file, free_port, http_request, parse_ids, wait_ready, Gateway, ParsedEvent, Response,
};
use common::{HttpConn, SseClient};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a reader may wait for everything it expects, in all.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a stream must stay quiet to show that nothing extra (a duplicate) follows.
const QUIET: Duration = Duration::from_millis(1500);
/// The longest a publish may take to be answered, whatever the answer: beyond it is a hang.
/// (The configs below set `redis.request_timeout_ms` to 2 s, so an outage answers well
/// within this even on a loaded machine.)
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------------------------
// Configuration and instances

/// The shared test Redis; panics with how to start one when the variable is unset.
fn shared_redis() -> String {
    std::env::var("SLUICEGATE_TEST_REDIS_URL").unwrap_or_else(|_| {
        panic!(
            "SLUICEGATE_TEST_REDIS_URL is not set: run `bash tests/services.sh start` and \
             `set -a; . target/test-services/env; set +a`"
        )
    })
}

/// One broker-mode setup: a Redis, the topics, and a key template no other test uses.
#[derive(Clone)]
struct Setup {
    url: String,
    template: String,
    topics: Vec<String>,
    partitions: u32,
    maxlen: u64,
}

impl Setup {
    fn new(url: &str, topics: &[&str], partitions: u32) -> Setup {
        Setup {
            url: url.to_owned(),
            template: format!("sgt-{}:{{topic}}:{{partition}}", unique("rb")),
            topics: topics.iter().map(|t| (*t).to_owned()).collect(),
            partitions,
            maxlen: 0,
        }
    }

    fn key(&self, topic: &str, partition: u32) -> String {
        self.template
            .replace("{topic}", topic)
            .replace("{partition}", &partition.to_string())
    }

    fn keys(&self, topic: &str) -> Vec<String> {
        (0..self.partitions).map(|p| self.key(topic, p)).collect()
    }

    /// The config file every instance of this setup starts from. Short Redis timeouts and
    /// backoffs keep outages quick to notice and to recover from.
    fn config(&self) -> String {
        let topics: Vec<String> = self.topics.iter().map(|t| json_str(t)).collect();
        config_file(&format!(
            "[log]\nlevel = \"info\"\n\n[redis]\nurl = {url}\nmode = \"broker\"\n\
             key_template = {template}\ntopics = [{topics}]\npartitions = {partitions}\n\
             maxlen = {maxlen}\nblock_ms = 500\nrequest_timeout_ms = 2000\n\
             backoff_initial_ms = 50\nbackoff_max_ms = 500\n",
            url = json_str(&self.url),
            template = json_str(&self.template),
            topics = topics.join(", "),
            partitions = self.partitions,
            maxlen = self.maxlen,
        ))
    }

    /// Deletes this setup's streams (only ever its own keys: the Redis is shared).
    fn cleanup(&self) {
        for topic in &self.topics {
            let keys = self.keys(topic);
            let mut args: Vec<&str> = vec!["del"];
            args.extend(keys.iter().map(String::as_str));
            redis_py(&self.url, &args);
        }
    }
}

/// Starts one instance from `config` with `shards` shards and waits for `/readyz`.
fn start_instance(config: &str, shards: usize) -> Gateway {
    let shards = shards.to_string();
    let gw = Gateway::start(&["--config", config, "--shards", &shards]);
    wait_ready(&gw);
    gw
}

/// One request on a fresh connection with a read deadline of `PUBLISH_TIMEOUT` (the common
/// client gives up after 5 s, which a loaded machine can reach without anything hanging).
fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<Response> {
    use std::io::Write;
    let mut s = TcpStream::connect_timeout(&addr, PUBLISH_TIMEOUT)?;
    s.set_read_timeout(Some(PUBLISH_TIMEOUT))?;
    s.set_write_timeout(Some(PUBLISH_TIMEOUT))?;
    s.write_all(&build_request(addr, method, path, headers, body, true))?;
    read_response(&mut s, &mut Vec::new(), true)
}

/// Publishes `data` to `topic` on `addr` with optional `?key=` and extra headers.
fn publish(
    addr: SocketAddr,
    topic: &str,
    data: &str,
    key: Option<&str>,
    headers: &[(&str, &str)],
) -> std::io::Result<Response> {
    let path = match key {
        Some(k) => format!("/topics/{topic}/events?key={k}"),
        None => format!("/topics/{topic}/events"),
    };
    request(addr, "POST", &path, headers, data.as_bytes())
}

/// Publishes and insists on 200.
fn publish_ok(gw: &Gateway, topic: &str, data: &str, key: Option<&str>, headers: &[(&str, &str)]) {
    let r = publish(gw.addr(), topic, data, key, headers)
        .unwrap_or_else(|e| panic!("publish {data:?}: {e}; log:\n{}", gw.log()));
    assert_eq!(
        r.status,
        200,
        "publish {data:?}: {} {:?}; log:\n{}",
        r.status,
        r.text(),
        gw.log()
    );
    assert!(
        parse_ids(&r.text()).is_some_and(|ids| ids.len() == 1),
        "{:?}",
        r.text()
    );
}

/// An SSE subscription to `topic` on `gw`, from `last_id` when given (else live).
fn subscribe(gw: &Gateway, topic: &str, last_id: Option<&str>) -> SseClient {
    let headers: Vec<(&str, &str)> = last_id
        .map(|id| ("Last-Event-ID", id))
        .into_iter()
        .collect();
    SseClient::connect(gw.addr(), &format!("/topics/{topic}/events"), &headers)
}

// ---------------------------------------------------------------------------------------------
// The independent reader: Python's `redis` package

/// Runs one Redis command through Python's `redis` client and prints each reply as lines:
/// `XRANGE` as `E <id> <field>=<hex value> ...`, anything else as `V <repr>`. An independent
/// client, so a test does not trust the gateway's own reading of what it wrote.
const REDIS_PY: &str = r#"
import sys
try:
    import redis
except ImportError:
    sys.exit("python3 cannot import redis: pip install redis (tests/run-all.sh installs it)")
url, cmd, args = sys.argv[1], sys.argv[2].lower(), sys.argv[3:]
r = redis.Redis.from_url(url, socket_timeout=10)
if cmd == "xrange":
    for sid, fields in r.xrange(args[0], "-", "+"):
        parts = ["E", sid.decode()]
        for name, value in fields.items():
            parts.append(name.decode() + "=" + value.hex())
        print(" ".join(parts))
else:
    print("V", r.execute_command(cmd, *args))
"#;

fn redis_py(url: &str, args: &[&str]) -> String {
    let out = Command::new("python3")
        .arg("-c")
        .arg(REDIS_PY)
        .arg(url)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run python3: {e}"));
    assert!(
        out.status.success(),
        "python3 redis {args:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// One stream entry as the independent reader saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    id: String,
    /// Field name -> value, in the order Redis returned them.
    fields: Vec<(String, String)>,
}

impl Entry {
    fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn data(&self) -> &str {
        self.field("data")
            .unwrap_or_else(|| panic!("entry {} has no data field: {:?}", self.id, self.fields))
    }
}

fn unhex(text: &str) -> String {
    let bytes: Vec<u8> = (0..text.len() / 2)
        .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).expect("hex from python"))
        .collect();
    String::from_utf8(bytes).expect("entries written by these tests are UTF-8")
}

/// Every entry of stream `key`, in stream order.
fn xrange(url: &str, key: &str) -> Vec<Entry> {
    redis_py(url, &["xrange", key])
        .lines()
        .map(|line| {
            let mut words = line.split(' ');
            assert_eq!(words.next(), Some("E"), "reader line {line:?}");
            let id = words.next().expect("an id").to_owned();
            let fields = words
                .map(|w| {
                    let (name, value) = w.split_once('=').expect("field=hex");
                    (name.to_owned(), unhex(value))
                })
                .collect();
            Entry { id, fields }
        })
        .collect()
}

/// `XLEN key` as the reader saw it.
fn xlen(url: &str, key: &str) -> u64 {
    let out = redis_py(url, &["xlen", key]);
    out.trim()
        .strip_prefix("V ")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("XLEN {key}: {out:?}"))
}

/// The data of every entry of each partition of `topic`, checking on the way that each
/// stream's ids are `0-1, 0-2, ...` without a gap (offset `i` is `0-(i+1)`).
fn truth(setup: &Setup, topic: &str) -> Vec<Vec<String>> {
    setup
        .keys(topic)
        .iter()
        .map(|key| {
            let entries = xrange(&setup.url, key);
            for (i, e) in entries.iter().enumerate() {
                assert_eq!(e.id, format!("0-{}", i + 1), "stream {key}: entry {i}");
            }
            entries.iter().map(|e| e.data().to_owned()).collect()
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// What a subscriber received

/// What one subscriber received, sorted by partition through its cursor ids: every event must
/// move exactly one partition's next offset by exactly one (so nothing is skipped or repeated
/// within a partition, and each partition is in order); a `reset` moves the cursor without an
/// event.
#[derive(Clone, Debug)]
struct Received {
    /// Per partition: (offset, data) in arrival order.
    parts: Vec<Vec<(u64, String)>>,
    /// The cursor after the last event (`None` until one came).
    last_id: Option<String>,
    next: Vec<u64>,
    resets: Vec<ParsedEvent>,
}

impl Received {
    fn new(start: &[u64]) -> Received {
        Received {
            parts: vec![Vec::new(); start.len()],
            last_id: None,
            next: start.to_vec(),
            resets: Vec::new(),
        }
    }

    fn count(&self) -> usize {
        self.parts.iter().map(Vec::len).sum()
    }

    fn add(&mut self, ev: ParsedEvent, who: &str) {
        let now = cursor(&ev.last_event_id);
        assert_eq!(
            now.len(),
            self.next.len(),
            "{who}: id {:?} names the wrong number of partitions",
            ev.last_event_id
        );
        self.last_id = Some(ev.last_event_id.clone());
        if ev.event_type == "reset" {
            self.next = now;
            self.resets.push(ev);
            return;
        }
        let moved: Vec<usize> = (0..now.len()).filter(|&p| now[p] != self.next[p]).collect();
        assert!(
            moved.len() == 1 && now[moved[0]] == self.next[moved[0]] + 1,
            "{who}: event {:?} id {:?} after cursor {:?} must move one partition by one \
             (a skipped, repeated or reordered event)",
            ev.data,
            ev.last_event_id,
            self.next
        );
        let p = moved[0];
        self.parts[p].push((self.next[p], ev.data));
        self.next = now;
    }

    /// Reads `sub` until it has `want` events in all (or the stream ends, or the deadline).
    fn read_until(&mut self, sub: &mut SseClient, want: usize, who: &str) {
        let deadline = Instant::now() + DELIVERY_TIMEOUT;
        while self.count() < want {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "{who}: {} of {want} events after {DELIVERY_TIMEOUT:?}: {:?}",
                self.count(),
                self.parts
            );
            match sub.next_event(left.min(Duration::from_secs(1))) {
                Some(ev) => self.add(ev, who),
                None if sub.is_closed() => return,
                None => {}
            }
        }
    }

    /// Reads `sub` until it ends (the server went away), taking every event it sent.
    fn read_to_end(&mut self, sub: &mut SseClient, who: &str) {
        let deadline = Instant::now() + DELIVERY_TIMEOUT;
        while !sub.is_closed() {
            assert!(Instant::now() < deadline, "{who}: the stream did not end");
            if let Some(ev) = sub.next_event(Duration::from_millis(500)) {
                self.add(ev, who);
            }
        }
        while let Some(ev) = sub.next_event(Duration::ZERO) {
            self.add(ev, who);
        }
    }

    /// Nothing more arrives for `QUIET`.
    fn assert_quiet(&mut self, sub: &mut SseClient, who: &str) {
        let extra = sub.events_for(QUIET);
        assert!(
            extra.is_empty(),
            "{who}: extra events after everything arrived: {:?}",
            extra
                .iter()
                .map(|e| (&e.last_event_id, &e.data))
                .collect::<Vec<_>>()
        );
    }

    /// What was received equals what the streams hold from `from` on, partition by partition.
    fn assert_matches(&self, truth: &[Vec<String>], from: &[u64], who: &str) {
        for (p, got) in self.parts.iter().enumerate() {
            let want: Vec<(u64, String)> = truth[p]
                .iter()
                .enumerate()
                .skip(from[p] as usize)
                .map(|(i, d)| (i as u64, d.clone()))
                .collect();
            assert_eq!(got, &want, "{who}: partition {p} differs from the stream");
        }
    }
}

/// Reads until `sub` has every entry of `truth` (from `rec.next`'s start), then checks it.
fn expect_all(
    sub: &mut SseClient,
    rec: &mut Received,
    truth: &[Vec<String>],
    from: &[u64],
    who: &str,
) {
    let want: usize = truth
        .iter()
        .zip(from)
        .map(|(t, &f)| t.len().saturating_sub(f as usize))
        .sum();
    rec.read_until(sub, want, who);
    rec.assert_quiet(sub, who);
    rec.assert_matches(truth, from, who);
}

// ---------------------------------------------------------------------------------------------
// 1. Three instances on one Redis

/// Publishes spread round robin over three instances (keys over several partitions) reach
/// live subscribers on every instance once each, in partition order, as the streams hold them;
/// a subscriber moving from instance to instance with its last id gets exactly the rest.
#[test]
fn three_instances_deliver_every_event_once_and_a_roamer_gets_exactly_the_rest() {
    let topic = unique("orders");
    let setup = Setup::new(&shared_redis(), &[&topic], 3);
    let config = setup.config();
    let gws: Vec<Gateway> = (0..3).map(|_| start_instance(&config, 2)).collect();
    let start = vec![0u64; 3];

    let mut subs: Vec<SseClient> = gws.iter().map(|g| subscribe(g, &topic, None)).collect();
    let mut recs: Vec<Received> = (0..3).map(|_| Received::new(&start)).collect();
    let mut roamer = subscribe(&gws[0], &topic, None);
    let mut roamed = Received::new(&start);

    // Three rounds of 30 publishes (round robin over the instances, 7 keys); the roamer takes
    // part of each round's events, then moves on to the next instance with its last id.
    let mut published = Vec::new();
    for round in 0..3 {
        for i in 0..30 {
            let n = round * 30 + i;
            let data = format!("e{n}");
            let key = format!("k{}", n % 7);
            publish_ok(&gws[n % 3], &topic, &data, Some(&key), &[]);
            published.push(data);
        }
        let who = format!("roamer on instance {round}");
        roamed.read_until(&mut roamer, round * 30 + 11, &who);
        if round < 2 {
            let last = roamed.last_id.clone().expect("the roamer got events");
            roamer = subscribe(&gws[round + 1], &topic, Some(&last));
        }
    }

    let truth = truth(&setup, &topic);
    let mut in_streams: Vec<&String> = truth.iter().flatten().collect();
    in_streams.sort();
    let mut acked: Vec<&String> = published.iter().collect();
    acked.sort();
    assert_eq!(
        in_streams, acked,
        "the streams hold exactly what was acknowledged"
    );
    assert!(
        truth.iter().filter(|t| !t.is_empty()).count() >= 2,
        "7 keys should use several of 3 partitions: {truth:?}"
    );

    for (i, (sub, rec)) in subs.iter_mut().zip(&mut recs).enumerate() {
        expect_all(
            sub,
            rec,
            &truth,
            &start,
            &format!("subscriber on instance {i}"),
        );
    }
    expect_all(&mut roamer, &mut roamed, &truth, &start, "roamer");
    for gw in &gws {
        assert!(!gw.log().contains("panicked"), "log:\n{}", gw.log());
    }
    setup.cleanup();
}

/// Clients connected to an instance that is killed (`kill -9`) mid-stream, while publishes go
/// on over all three, reconnect to the others with their last id and lose nothing
/// acknowledged: each ends up with exactly what the streams hold, in order.
#[test]
fn kill_9_of_one_instance_loses_nothing_for_clients_that_move_away() {
    let topic = unique("killed");
    let setup = Setup::new(&shared_redis(), &[&topic], 3);
    let config = setup.config();
    let mut gws: Vec<Gateway> = (0..3).map(|_| start_instance(&config, 1)).collect();
    let start = vec![0u64; 3];
    let victim = 2;
    let mut clients: Vec<(SseClient, Received)> = (0..4)
        .map(|_| (subscribe(&gws[victim], &topic, None), Received::new(&start)))
        .collect();

    // A publisher thread keeps publishing round robin over the three; after the victim was
    // killed it skips it. A publish to the victim may fail any way: its outcome is unknown
    // (the streams tell). Every 200 is recorded as acknowledged.
    let addrs: Vec<SocketAddr> = gws.iter().map(Gateway::addr).collect();
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let dead = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let publisher = {
        let (acked, dead, stop, topic) = (acked.clone(), dead.clone(), stop.clone(), topic.clone());
        std::thread::spawn(move || {
            let mut n = 0usize;
            while !stop.load(Ordering::SeqCst) {
                let target = n % 3;
                n += 1;
                if target == victim && dead.load(Ordering::SeqCst) {
                    continue;
                }
                let data = format!("e{n}");
                let key = format!("k{}", n % 5);
                match publish(addrs[target], &topic, &data, Some(&key), &[]) {
                    Ok(r) if r.status == 200 => acked.lock().unwrap().push(data),
                    Ok(r) if target == victim => {
                        assert!(matches!(r.status, 503 | 504), "{} {:?}", r.status, r.text())
                    }
                    Err(_) if target == victim => {}
                    Ok(r) => panic!("publish {data} to a survivor: {} {:?}", r.status, r.text()),
                    Err(e) => panic!("publish {data} to a survivor: {e}"),
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let wait_acked = |n: usize| {
        let deadline = Instant::now() + DELIVERY_TIMEOUT;
        while acked.lock().unwrap().len() < n {
            assert!(
                Instant::now() < deadline && !publisher.is_finished(),
                "publisher stalled"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    wait_acked(40);
    // The clients have read part of the stream when the instance dies.
    for (i, (sub, rec)) in clients.iter_mut().enumerate() {
        rec.read_until(sub, 5 + i * 5, &format!("client {i} before the kill"));
    }
    gws[victim].kill9();
    dead.store(true, Ordering::SeqCst);
    let acked_at_kill = acked.lock().unwrap().len();
    wait_acked(acked_at_kill + 60);
    stop.store(true, Ordering::SeqCst);
    publisher.join().expect("publisher thread");

    let truth = truth(&setup, &topic);
    let in_streams: Vec<&String> = truth.iter().flatten().collect();
    for a in acked.lock().unwrap().iter() {
        assert!(
            in_streams.contains(&a),
            "acknowledged {a} is not in the streams"
        );
    }
    for (i, (sub, rec)) in clients.iter_mut().enumerate() {
        let who = format!("client {i}");
        // Whatever the victim sent before it died counts; then move to a survivor.
        rec.read_to_end(sub, &who);
        let survivor = &gws[i % 2];
        let mut moved = match &rec.last_id {
            Some(id) => subscribe(survivor, &topic, Some(id)),
            None => subscribe(survivor, &topic, Some("0-0.0.0")),
        };
        expect_all(
            &mut moved,
            rec,
            &truth,
            &start,
            &format!("{who} after moving"),
        );
    }
    setup.cleanup();
}

// ---------------------------------------------------------------------------------------------
// 2. The independent reader: content, order, ids, MAXLEN trimming

/// What broker mode writes is what an independent consumer expects: fields `type`, `key`,
/// `header.<name>`, `data` (and the idempotency key as `header.sluicegate-id`), in publish
/// order, with ids `0-1, 0-2, ...`.
#[test]
fn an_independent_reader_sees_the_fields_in_order_with_sequence_ids() {
    let topic = unique("content");
    let setup = Setup::new(&shared_redis(), &[&topic], 1);
    let gw = start_instance(&setup.config(), 2);
    let mut sub = subscribe(&gw, &topic, None);

    publish_ok(&gw, &topic, "plain", None, &[]);
    publish_ok(
        &gw,
        &topic,
        "{\"n\":2}\nsecond line",
        Some("cust-7"),
        &[
            ("Sluicegate-Event", "order.created"),
            ("Sluicegate-Header-Trace", "abc-123"),
            ("Sluicegate-Id", "pub-2"),
        ],
    );
    publish_ok(
        &gw,
        &topic,
        "três",
        None,
        &[("Sluicegate-Header-X-Tenant", "t1")],
    );

    let entries = xrange(&setup.url, &setup.key(&topic, 0));
    let fields: Vec<(String, Vec<(String, String)>)> =
        entries.into_iter().map(|e| (e.id, e.fields)).collect();
    let f = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect()
    };
    assert_eq!(
        fields,
        vec![
            ("0-1".to_owned(), f(&[("data", "plain")])),
            (
                "0-2".to_owned(),
                f(&[
                    ("type", "order.created"),
                    ("key", "cust-7"),
                    ("header.trace", "abc-123"),
                    ("header.sluicegate-id", "pub-2"),
                    ("data", "{\"n\":2}\nsecond line"),
                ])
            ),
            (
                "0-3".to_owned(),
                f(&[("header.x-tenant", "t1"), ("data", "três")])
            ),
        ],
        "entries of {}",
        setup.key(&topic, 0)
    );

    // The gateway reads back what it wrote: same data, type, and ids as offsets.
    let got = sub.expect_events(3, DELIVERY_TIMEOUT);
    let seen: Vec<(&str, &str, &str)> = got
        .iter()
        .map(|e| {
            (
                e.last_event_id.as_str(),
                e.event_type.as_str(),
                e.data.as_str(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            ("0-1", "message", "plain"),
            ("0-2", "order.created", "{\"n\":2}\nsecond line"),
            ("0-3", "message", "três"),
        ]
    );
    setup.cleanup();
}

/// With `maxlen = 100`, 1000 publishes leave a bounded stream (Redis trims whole nodes, so
/// approximately), and a resume from below the trimmed start, on an instance that holds none
/// of it in memory, gets a `reset` naming the requested and oldest offsets, then exactly the
/// retained entries.
#[test]
fn maxlen_bounds_the_stream_and_a_resume_below_it_gets_a_reset() {
    let topic = unique("trimmed");
    let mut setup = Setup::new(&shared_redis(), &[&topic], 1);
    setup.maxlen = 100;
    let config = setup.config();
    let writer = start_instance(&config, 1);
    let mut conn = HttpConn::connect(writer.addr()).expect("connect");
    let path = format!("/topics/{topic}/events");
    for i in 0..1000 {
        let r = conn
            .request("POST", &path, &[], format!("m{i}").as_bytes())
            .unwrap_or_else(|e| panic!("publish m{i}: {e}"));
        assert_eq!(r.status, 200, "publish m{i}: {:?}", r.text());
    }

    let key = setup.key(&topic, 0);
    let len = xlen(&setup.url, &key);
    assert!(
        (100..300).contains(&len),
        "MAXLEN ~ 100 after 1000 entries: XLEN {len}"
    );
    let entries = xrange(&setup.url, &key);
    assert_eq!(entries.len() as u64, len);
    let oldest: u64 = entries[0]
        .id
        .strip_prefix("0-")
        .unwrap()
        .parse::<u64>()
        .unwrap()
        - 1;
    for (i, e) in entries.iter().enumerate() {
        let offset = oldest + i as u64;
        assert_eq!(
            e.id,
            format!("0-{}", offset + 1),
            "ids stay consecutive after trimming"
        );
        assert_eq!(e.data(), format!("m{offset}"));
    }
    assert_eq!(oldest + len, 1000, "the newest entry is the last publish");

    // A fresh instance: nothing in its memory, so only Redis can answer the resume.
    let reader = start_instance(&config, 1);
    let mut sub = subscribe(&reader, &topic, Some("0-5"));
    let mut rec = Received::new(&[5]);
    rec.read_until(&mut sub, len as usize, "resumed below the trimmed start");
    rec.assert_quiet(&mut sub, "resumed below the trimmed start");
    assert_eq!(rec.resets.len(), 1, "one reset: {:?}", rec.resets);
    let reset = rec.resets[0].data.replace([' ', '\n'], "");
    assert!(
        reset.contains(&format!(
            "\"partitions\":[{{\"topic\":\"{topic}\",\"partition\":0,\"requested\":5,\"oldest\":{oldest}}}]"
        )),
        "reset {reset:?} should name requested 5 and oldest {oldest}"
    );
    assert_eq!(rec.resets[0].last_event_id, format!("0-{oldest}"));
    let want: Vec<(u64, String)> = (oldest..1000).map(|o| (o, format!("m{o}"))).collect();
    assert_eq!(
        rec.parts[0], want,
        "after the reset: the earliest retained entry on"
    );
    setup.cleanup();
}

// ---------------------------------------------------------------------------------------------
// 3. Redis restart mid-stream

/// Polls `/metrics` until all `shards` of `gw` report Redis up (`sluicegate_redis_broker_up`).
fn wait_redis_up(gw: &Gateway, shards: usize) {
    let deadline = Instant::now() + DELIVERY_TIMEOUT;
    loop {
        let page = http_request(gw.addr(), "GET", "/metrics", &[], b"")
            .map(|r| r.text())
            .unwrap_or_default();
        if metric_sum(&page, "sluicegate_redis_broker_up") == Some(shards as f64) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "not every shard reconnected to Redis; log:\n{}",
            gw.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The next publish of the restart test: data, key (4 keys over the partitions), instance.
fn next(n: &mut usize) -> (String, String, usize) {
    *n += 1;
    (format!("e{n}"), format!("k{}", *n % 4), *n % 2)
}

/// Redis restarts mid-stream: publishes during the outage are answered 503 or 504 in bounded
/// time (never a hang), succeed again once it is back; nothing acknowledged is lost (AOF with
/// fsync always), and subscribers that stayed connected, or reconnect with their last id,
/// continue from the exact next entry: each acknowledged event exactly once, in order.
#[test]
fn redis_restart_mid_stream_loses_nothing_acknowledged() {
    let mut redis = OwnRedis::start();
    let topic = unique("restart");
    let setup = Setup::new(&redis.url(), &[&topic], 2);
    let config = setup.config();
    let gws: Vec<Gateway> = (0..2).map(|_| start_instance(&config, 2)).collect();
    let start = vec![0u64; 2];
    let mut stay: Vec<(SseClient, Received)> = gws
        .iter()
        .map(|g| (subscribe(g, &topic, None), Received::new(&start)))
        .collect();
    let mut leaver = subscribe(&gws[0], &topic, None);
    let mut left = Received::new(&start);

    let mut acked = Vec::new();
    let mut n = 0usize;
    for _ in 0..20 {
        let (data, key, g) = next(&mut n);
        publish_ok(&gws[g], &topic, &data, Some(&key), &[]);
        acked.push(data);
    }
    left.read_until(&mut leaver, 10, "leaver before the outage");
    drop(leaver);

    redis.stop();
    // Redis is gone: every publish is refused or unknown, in bounded time.
    for _ in 0..6 {
        let (data, key, g) = next(&mut n);
        let began = Instant::now();
        let r = publish(gws[g].addr(), &topic, &data, Some(&key), &[])
            .unwrap_or_else(|e| panic!("publish {data} during the outage: no answer ({e})"));
        assert!(
            matches!(r.status, 503 | 504) && r.header("retry-after").is_some(),
            "publish {data} during the outage: {} {:?} after {:?}",
            r.status,
            r.text(),
            began.elapsed()
        );
    }

    redis.launch();
    // Back: each shard of each instance reconnects on its own (a publish is produced by the
    // shard that took the connection), so wait until every shard says Redis is up.
    for gw in &gws {
        wait_redis_up(gw, 2);
    }
    // From here publishes succeed. A 503 (refused up front: nothing written, so a plain retry
    // is exact) can still come from a shard whose command connection is a moment behind; a 504
    // (outcome unknown) with Redis up would be a gateway fault.
    for _ in 0..24 {
        let (data, key, g) = next(&mut n);
        let deadline = Instant::now() + DELIVERY_TIMEOUT;
        loop {
            let r = publish(gws[g].addr(), &topic, &data, Some(&key), &[])
                .unwrap_or_else(|e| panic!("publish {data} after the restart: {e}"));
            if r.status == 200 {
                acked.push(data);
                break;
            }
            assert!(
                r.status == 503 && Instant::now() < deadline,
                "publish {data} after the restart: {} {:?}; log:\n{}",
                r.status,
                r.text(),
                gws[g].log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    let truth = truth(&setup, &topic);
    let in_streams: Vec<&String> = truth.iter().flatten().collect();
    for a in &acked {
        assert!(
            in_streams.contains(&a),
            "acknowledged {a} is not in the streams after the restart"
        );
    }
    for (i, (sub, rec)) in stay.iter_mut().enumerate() {
        expect_all(
            sub,
            rec,
            &truth,
            &start,
            &format!("subscriber on instance {i} through the outage"),
        );
    }
    let last = left.last_id.clone().expect("the leaver got events");
    let mut back = subscribe(&gws[1], &topic, Some(&last));
    expect_all(
        &mut back,
        &mut left,
        &truth,
        &start,
        "leaver resuming on the other instance",
    );
    for gw in &gws {
        gw.sigterm();
    }
}

// ---------------------------------------------------------------------------------------------
// 4. Idempotency

/// The same `Sluicegate-Id` published twice on one instance and once more on another is
/// delivered once: to live subscribers on both instances and to a resume from the start.
#[test]
fn a_repeated_idempotency_key_is_delivered_once() {
    let topic = unique("dedup");
    let setup = Setup::new(&shared_redis(), &[&topic], 1);
    let config = setup.config();
    let a = start_instance(&config, 2);
    let b = start_instance(&config, 2);
    let mut subs = vec![subscribe(&a, &topic, None), subscribe(&b, &topic, None)];

    let id = [("Sluicegate-Id", "order-42")];
    publish_ok(&a, &topic, "once", None, &id);
    publish_ok(&a, &topic, "once", None, &id);
    publish_ok(&b, &topic, "once", None, &id);
    publish_ok(&b, &topic, "after", None, &[]);

    // The stream holds every copy (as Kafka's topic would); delivery drops the repeats.
    let entries = xrange(&setup.url, &setup.key(&topic, 0));
    assert_eq!(entries.len(), 4, "{entries:?}");
    subs.push(subscribe(&b, &topic, Some("0-0")));
    for (i, sub) in subs.iter_mut().enumerate() {
        let mut got = Vec::new();
        let deadline = Instant::now() + DELIVERY_TIMEOUT;
        while !got.iter().any(|e: &ParsedEvent| e.data == "after") {
            assert!(Instant::now() < deadline, "subscriber {i}: {got:?}");
            if let Some(ev) = sub.next_event(Duration::from_secs(1)) {
                got.push(ev);
            }
        }
        got.extend(sub.events_for(QUIET));
        let data: Vec<&str> = got.iter().map(|e| e.data.as_str()).collect();
        assert_eq!(data, ["once", "after"], "subscriber {i}");
        assert_eq!(
            got[0].last_event_id, "0-1",
            "subscriber {i}: the first copy"
        );
    }
    let mut resumed = subscribe(&a, &topic, Some("0-1"));
    let rest = resumed.events_for(QUIET * 2);
    let data: Vec<&str> = rest.iter().map(|e| e.data.as_str()).collect();
    assert_eq!(
        data,
        ["after"],
        "a resume after the first copy skips the repeats"
    );
    setup.cleanup();
}

// ---------------------------------------------------------------------------------------------
// 5. Configurations broker mode cannot run with

/// Runs the gateway with `toml` and expects it to refuse to start: a non-zero exit within a
/// bound, with a message. Returns what it printed.
fn refused(toml: &str) -> String {
    let config = config_file(toml);
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluicegate"))
        .args([
            "--config",
            &config,
            "--listen",
            &format!("127.0.0.1:{}", free_port()),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sluicegate");
    let deadline = Instant::now() + READY_TIMEOUT;
    let status = loop {
        if let Some(s) = child.try_wait().expect("try_wait") {
            break s;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the gateway started with an invalid config:\n{toml}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = child.wait_with_output().expect("output");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !status.success(),
        "exit {status} for:\n{toml}\noutput:\n{text}"
    );
    text
}

#[test]
fn broker_mode_with_kafka_or_tls_refuses_to_start() {
    let url = shared_redis();
    let with_kafka = refused(&format!(
        "[kafka]\nbootstrap = [\"127.0.0.1:9\"]\ntopics = [\"k\"]\n\n\
         [redis]\nurl = {}\nmode = \"broker\"\ntopics = [\"orders\"]\n",
        json_str(&url)
    ));
    assert!(
        with_kafka.contains("redis.mode") && with_kafka.contains("[kafka]"),
        "the refusal should name redis.mode and [kafka]: {with_kafka}"
    );
    let tls = refused(
        "[redis]\nurl = \"rediss://127.0.0.1:6380\"\nmode = \"broker\"\ntopics = [\"orders\"]\n",
    );
    assert!(
        tls.contains("redis.url") && tls.contains("rediss://"),
        "the refusal should name redis.url and rediss://: {tls}"
    );
}

/// An unconfigured topic is 404 for publish and subscribe, as with Kafka.
#[test]
fn a_topic_outside_redis_topics_is_404() {
    let topic = unique("known");
    let setup = Setup::new(&shared_redis(), &[&topic], 1);
    let gw = start_instance(&setup.config(), 1);
    let other = unique("unknown");
    let r = publish(gw.addr(), &other, "x", None, &[]).expect("publish");
    assert_eq!(r.status, 404, "{:?}", r.text());
    let Err(err) = SseClient::try_connect(gw.addr(), &format!("/topics/{other}/events"), &[])
    else {
        panic!("subscribing to an unconfigured topic must fail");
    };
    assert!(err.starts_with("status 404"), "{err}");
    let streams = redis_py(&setup.url, &["exists", &setup.key(&other, 0)]);
    assert_eq!(
        streams.trim(),
        "V 0",
        "nothing was written for the unknown topic"
    );
}

/// Redis loses its data under a running gateway (FLUSHALL stands in for a restart without
/// persistence): publishes are refused with 503 naming the missing stream instead of being
/// numbered again from 0-1 under readers positioned past it (which would hide them from live
/// subscribers); a restarted gateway begins the stream again and a client holding an old id
/// gets `reset`.
#[test]
fn a_stream_lost_under_a_running_gateway_is_refused_not_silently_renumbered() {
    let mut redis = OwnRedis::start();
    let setup = Setup::new(&redis.url(), &["lost"], 1);
    let config = setup.config();
    let gw = start_instance(&config, 1);
    let mut sub = subscribe(&gw, "lost", None);
    for i in 0..3 {
        publish_ok(&gw, "lost", &format!("a{i}"), None, &[]);
    }
    let mut last_id = String::new();
    for i in 0..3 {
        let ev = sub
            .next_event(DELIVERY_TIMEOUT)
            .unwrap_or_else(|| panic!("a{i} not delivered; log:\n{}", gw.log()));
        assert_eq!(ev.data, format!("a{i}"));
        last_id = ev.last_event_id.clone();
    }
    redis_py(&redis.url(), &["flushall"]);
    let r = publish(gw.addr(), "lost", "b0", None, &[]).expect("publish after the loss");
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(r.text().contains("missing"), "{}", r.text());
    assert_eq!(
        xlen(&redis.url(), &setup.key("lost", 0)),
        0,
        "nothing begun again"
    );
    drop(sub);
    drop(gw);
    // A restart of the gateway begins the stream again; the old id is past its end.
    let gw = start_instance(&config, 1);
    publish_ok(&gw, "lost", "c0", None, &[]);
    let mut resumed = subscribe(&gw, "lost", Some(&last_id));
    let first = resumed
        .next_event(DELIVERY_TIMEOUT)
        .unwrap_or_else(|| panic!("nothing after resuming {last_id}; log:\n{}", gw.log()));
    assert_eq!(first.event_type, "reset", "{first:?}");
    let next = resumed
        .next_event(DELIVERY_TIMEOUT)
        .unwrap_or_else(|| panic!("c0 not delivered; log:\n{}", gw.log()));
    assert_eq!(next.data, "c0");
    redis.stop();
}
