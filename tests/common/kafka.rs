//! Kafka helpers for the end-to-end tests: the broker address from `SLUICEGATE_TEST_KAFKA`,
//! topic creation, producing and consuming with Python's `kafka-python` (an independent client),
//! a tansu of a test's own that can be killed and restarted, a gateway in Kafka mode, and
//! decoding of the gateway's per-partition cursor ids.

pub use super::wait_ready;
use super::{Gateway, ParsedEvent, SseClient};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The shared test broker; panics with how to start one when the variable is unset.
pub fn broker() -> String {
    std::env::var("SLUICEGATE_TEST_KAFKA").unwrap_or_else(|_| {
        panic!(
            "SLUICEGATE_TEST_KAFKA is not set: start a broker (tests/services.sh start) and \
             export SLUICEGATE_TEST_KAFKA=127.0.0.1:PORT"
        )
    })
}

/// A name no other test (or earlier run against the same broker) uses.
pub fn unique(name: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "{name}-{}-{nanos}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A JSON string literal (no JSON crate in the dev-dependencies).
pub fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len() / 2)
        .filter_map(|i| text.get(2 * i..2 * i + 2))
        .filter_map(|pair| u8::from_str_radix(pair, 16).ok())
        .collect()
}

/// Runs a kafka-python script with `BROKER` and `ARGS` (JSON) set; panics with its stderr.
pub fn python(bootstrap: &str, script: &str, args: &str) -> String {
    let prelude = "import json, os, sys, time\n\
        from kafka import KafkaProducer, KafkaConsumer, KafkaAdminClient, TopicPartition\n\
        from kafka.admin import NewTopic\n\
        BROKER = os.environ['BROKER']\n\
        ARGS = json.loads(os.environ['ARGS'])\n";
    let out = Command::new("timeout")
        .args(["60", "python3", "-c"])
        .arg(format!("{prelude}{script}"))
        .env("BROKER", bootstrap)
        .env("ARGS", args)
        .output()
        .expect("run python3 (kafka-python)");
    assert!(
        out.status.success(),
        "python failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Creates `topic` with `partitions` partitions (replication 1).
pub fn create_topic(bootstrap: &str, topic: &str, partitions: u32) {
    python(
        bootstrap,
        "KafkaAdminClient(bootstrap_servers=BROKER).create_topics(\
         [NewTopic(ARGS['t'], ARGS['n'], 1)])",
        &format!(r#"{{"t": {}, "n": {partitions}}}"#, json_str(topic)),
    );
}

/// One record to produce with kafka-python.
#[derive(Debug, Clone, Default)]
pub struct Rec {
    /// `None` lets the producer's partitioner choose (by key).
    pub partition: Option<i32>,
    pub key: Option<String>,
    pub headers: Vec<(String, Vec<u8>)>,
    pub value: Vec<u8>,
}

impl Rec {
    /// A record with a text value for `partition`.
    pub fn at(partition: i32, value: &str) -> Rec {
        Rec {
            partition: Some(partition),
            value: value.as_bytes().to_vec(),
            ..Rec::default()
        }
    }

    pub fn key(mut self, key: &str) -> Rec {
        self.key = Some(key.to_owned());
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Rec {
        self.headers
            .push((name.to_owned(), value.as_bytes().to_vec()));
        self
    }

    /// Sets the `ce_type` header the gateway reads the event type from by default.
    pub fn typed(self, event_type: &str) -> Rec {
        self.header("ce_type", event_type)
    }
}

/// Produces `records` in order (each acknowledged before the script ends).
pub fn produce(bootstrap: &str, topic: &str, records: &[Rec]) {
    let items: Vec<String> = records
        .iter()
        .map(|r| {
            let partition = r.partition.map_or("null".to_owned(), |p| p.to_string());
            let key = r.key.as_deref().map_or("null".to_owned(), json_str);
            let headers: Vec<String> = r
                .headers
                .iter()
                .map(|(n, v)| format!("[{}, \"{}\"]", json_str(n), hex(v)))
                .collect();
            format!(
                "[{partition}, {key}, [{}], \"{}\"]",
                headers.join(", "),
                hex(&r.value)
            )
        })
        .collect();
    python(
        bootstrap,
        "p = KafkaProducer(bootstrap_servers=BROKER)\n\
         sent = [p.send(ARGS['t'], value=bytes.fromhex(val),\n\
         \x20              key=None if key is None else key.encode(), partition=part,\n\
         \x20              headers=[(n, bytes.fromhex(v)) for (n, v) in hdrs])\n\
         \x20       for (part, key, hdrs, val) in ARGS['r']]\n\
         p.flush()\n\
         for f in sent: f.get(timeout=30)\n",
        &format!(
            r#"{{"t": {}, "r": [{}]}}"#,
            json_str(topic),
            items.join(", ")
        ),
    );
}

/// A record as kafka-python's consumer saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consumed {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Vec<u8>,
    pub headers: Vec<(String, Vec<u8>)>,
}

impl Consumed {
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }
}

/// kafka-python: a consumer `c` without a group, and `parts`, the partitions of `ARGS['t']`
/// (waiting up to 15 s, until `deadline`, for the topic to appear).
pub const WAIT_FOR_PARTITIONS: &str =
    "c = KafkaConsumer(bootstrap_servers=BROKER, group_id=None, enable_auto_commit=False)\n\
     deadline = time.time() + 15\n\
     parts = None\n\
     while parts is None and time.time() < deadline:\n\
     \x20   parts = c.partitions_for_topic(ARGS['t'])\n\
     \x20   if parts is None: time.sleep(0.1)\n";

/// Reads every partition of `topic` from the beginning with kafka-python (no consumer group)
/// until `n` records arrived or 15 s passed; returns them sorted by (partition, offset).
pub fn consume(bootstrap: &str, topic: &str, n: usize) -> Vec<Consumed> {
    let out = python(
        bootstrap,
        &format!(
            "{WAIT_FOR_PARTITIONS}\
         tps = [TopicPartition(ARGS['t'], p) for p in sorted(parts or [])]\n\
         c.assign(tps)\n\
         c.seek_to_beginning(*tps)\n\
         got = []\n\
         while len(got) < ARGS['n'] and time.time() < deadline:\n\
         \x20   for recs in c.poll(timeout_ms=200).values():\n\
         \x20       got.extend(recs)\n\
         for r in got:\n\
         \x20   key = '-' if r.key is None else r.key.hex()\n\
         \x20   hdrs = ','.join(n.encode().hex() + ':' + v.hex() for (n, v) in (r.headers or []))\n\
         \x20   print(r.partition, r.offset, key, r.value.hex() or '-', hdrs or '-')\n"
        ),
        &format!(r#"{{"t": {}, "n": {n}}}"#, json_str(topic)),
    );
    let mut records: Vec<Consumed> = out
        .lines()
        .filter_map(|line| {
            let mut f = line.split(' ');
            let partition = f.next()?.parse().ok()?;
            let offset = f.next()?.parse().ok()?;
            let key = f.next()?;
            let value = f.next()?;
            let headers = f.next()?;
            Some(Consumed {
                partition,
                offset,
                key: (key != "-").then(|| unhex(key)),
                value: if value == "-" {
                    Vec::new()
                } else {
                    unhex(value)
                },
                headers: headers
                    .split(',')
                    .filter(|h| *h != "-")
                    .filter_map(|h| {
                        let (n, v) = h.split_once(':')?;
                        Some((String::from_utf8_lossy(&unhex(n)).into_owned(), unhex(v)))
                    })
                    .collect(),
            })
        })
        .collect();
    records.sort_by_key(|r| (r.partition, r.offset));
    records
}

/// The earliest and the next offset of `topic`'s `partition` as kafka-python's consumer
/// lists them (ListOffsets).
pub fn offset_bounds(bootstrap: &str, topic: &str, partition: i32) -> (i64, i64) {
    let out = python(
        bootstrap,
        "c = KafkaConsumer(bootstrap_servers=BROKER, group_id=None, enable_auto_commit=False)\n\
         tp = TopicPartition(ARGS['t'], ARGS['p'])\n\
         print(c.beginning_offsets([tp])[tp], c.end_offsets([tp])[tp])\n",
        &format!(r#"{{"t": {}, "p": {partition}}}"#, json_str(topic)),
    );
    let mut f = out.split_whitespace().map(str::parse::<i64>);
    match (f.next(), f.next()) {
        (Some(Ok(low)), Some(Ok(high))) => (low, high),
        _ => panic!("offset bounds: unexpected output {out:?}"),
    }
}

/// The `--set` arguments of a gateway reading `topics` from `bootstrap` from `start`, with short
/// fetch waits and metadata refreshes so tests stay quick.
pub fn kafka_args(bootstrap: &str, topics: &[&str], start: &str) -> Vec<String> {
    let topics: Vec<String> = topics.iter().map(|t| json_str(t)).collect();
    [
        format!("kafka.bootstrap=[{}]", json_str(bootstrap)),
        format!("kafka.topics=[{}]", topics.join(",")),
        format!("kafka.start={}", json_str(start)),
        "kafka.fetch_max_wait_ms=100".to_owned(),
        "kafka.metadata_refresh_ms=500".to_owned(),
    ]
    .into_iter()
    .flat_map(|s| ["--set".to_owned(), s])
    .collect()
}

/// Starts a gateway in Kafka mode reading from the earliest offset with `shards` shards plus
/// `extra` arguments, and waits for `/readyz`.
pub fn kafka_gateway(bootstrap: &str, topics: &[&str], shards: usize, extra: &[&str]) -> Gateway {
    kafka_gateway_from(bootstrap, topics, "earliest", shards, extra)
}

/// Like [`kafka_gateway`] with the start position `start` (`earliest`, `latest`, ms).
pub fn kafka_gateway_from(
    bootstrap: &str,
    topics: &[&str],
    start: &str,
    shards: usize,
    extra: &[&str],
) -> Gateway {
    let mut args = vec!["--shards".to_owned(), shards.to_string()];
    args.extend(kafka_args(bootstrap, topics, start));
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let gw = Gateway::start(&refs);
    wait_ready(&gw);
    gw
}

/// Opens SSE connections to `path` until one landed on each of `shards` shards (tries up to
/// 100 connections; the others are closed). Index `i` of the result is on shard `i`.
pub fn subscribers_on_every_shard(gw: &Gateway, path: &str, shards: usize) -> Vec<SseClient> {
    let mut found: Vec<Option<SseClient>> = (0..shards).map(|_| None).collect();
    for _ in 0..100 {
        let client = SseClient::connect(gw.addr(), path, &[]);
        let shard = client
            .shard()
            .unwrap_or_else(|| panic!("no x-sluicegate-shard on {:?}", client.headers()));
        if let Some(slot @ None) = found.get_mut(shard) {
            *slot = Some(client);
        }
        if found.iter().all(Option::is_some) {
            return found.into_iter().flatten().collect();
        }
    }
    panic!("no SSE connection landed on every one of {shards} shards in 100 tries");
}

/// Decodes a cursor id `0-{n0}.{n1}...` into its per-partition next offsets.
pub fn cursor(id: &str) -> Vec<u64> {
    let rest = id
        .strip_prefix("0-")
        .unwrap_or_else(|| panic!("cursor id {id:?} does not start with 0-"));
    rest.split('.')
        .map(|n| {
            n.parse()
                .unwrap_or_else(|_| panic!("cursor id {id:?}: {n:?} is not a number"))
        })
        .collect()
}

/// Checks that each event moves exactly one element of the cursor, by exactly one, starting
/// from `start`, and that the element moved is `slot(event)` (the partition the test knows
/// the record went to). Returns the cursor after the last event.
pub fn check_cursor_steps(
    events: &[ParsedEvent],
    start: &[u64],
    slot: impl Fn(&ParsedEvent) -> usize,
) -> Vec<u64> {
    let mut prev = start.to_vec();
    for (i, ev) in events.iter().enumerate() {
        let now = cursor(&ev.last_event_id);
        assert_eq!(
            now.len(),
            prev.len(),
            "event {i} ({:?}) id {:?}: wrong number of partitions",
            ev.data,
            ev.last_event_id
        );
        let moved: Vec<usize> = (0..now.len()).filter(|&j| now[j] != prev[j]).collect();
        let want = slot(ev);
        assert_eq!(
            moved,
            vec![want],
            "event {i} ({:?}): id {:?} after {prev:?} should move only element {want}",
            ev.data,
            ev.last_event_id
        );
        assert_eq!(
            now[want],
            prev[want] + 1,
            "event {i} ({:?}): id {:?} after {prev:?} skips or repeats an offset",
            ev.data,
            ev.last_event_id
        );
        prev = now;
    }
    prev
}

/// Sums every sample of the metric `name` (any labels) in a Prometheus text page.
pub fn metric_sum(page: &str, name: &str) -> Option<f64> {
    let mut found = None;
    for line in page.lines() {
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        if !(rest.starts_with(' ') || rest.starts_with('{')) {
            continue;
        }
        let value = rest.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok());
        if let Some(v) = value {
            found = Some(found.unwrap_or(0.0) + v);
        }
    }
    found
}

/// A tansu of a test's own, so it can be killed and restarted on the same database.
pub struct OwnBroker {
    dir: std::path::PathBuf,
    port: u16,
    /// The port the broker tells clients to connect to (a proxy's), when not its own.
    advertised: Option<u16>,
    child: Option<Child>,
}

impl OwnBroker {
    pub fn start() -> OwnBroker {
        Self::start_with(None)
    }

    /// A broker that advertises `127.0.0.1:port` (where a test's proxy listens) instead of its
    /// own address, so clients that follow the metadata keep going through the proxy.
    pub fn start_advertising(port: u16) -> OwnBroker {
        Self::start_with(Some(port))
    }

    fn start_with(advertised: Option<u16>) -> OwnBroker {
        let dir = std::env::temp_dir().join(unique("sluicegate-e2e-tansu"));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let mut broker = OwnBroker {
            dir,
            port: super::free_port(),
            advertised,
            child: None,
        };
        broker.launch();
        broker
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// tansu's sqlite database, for tests that edit the storage while the broker is stopped.
    pub fn db_path(&self) -> std::path::PathBuf {
        self.dir.join("tansu.db")
    }

    /// Starts tansu (again) on the same port and sqlite database; waits until it listens.
    pub fn launch(&mut self) {
        let url = format!("tcp://{}", self.addr());
        let advertised = match self.advertised {
            Some(port) => format!("tcp://127.0.0.1:{port}"),
            None => url.clone(),
        };
        let child = Command::new("tansu")
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &advertised,
            ])
            .args(["--storage-engine", "sqlite://tansu.db"])
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect(
                "this test needs `tansu` on PATH \
                 (cargo install tansu --version 0.6.0 --features dynostore,libsql)",
            );
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(15);
        while std::net::TcpStream::connect(self.addr()).is_err() {
            assert!(
                Instant::now() < deadline,
                "own tansu did not listen on {}",
                self.addr()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Simulates retention: stops the broker, deletes the records (and their headers) of
    /// `topic`'s `partition` below `offset` from tansu's sqlite database, sets the partition's
    /// low watermark to `offset`, and starts the broker again. tansu 0.6 has no DeleteRecords
    /// and its time-based retention cannot be aimed at an offset, so the test edits its storage.
    pub fn forget_below(&mut self, topic: &str, partition: i32, offset: i64) {
        self.kill();
        let db = self.dir.join("tansu.db");
        let script = "import json, os, sqlite3, sys\n\
            a = json.loads(os.environ['ARGS'])\n\
            c = sqlite3.connect(a['db'])\n\
            row = c.execute('select tp.id from topition tp join topic t on t.id = tp.topic \
            where t.name = ? and tp.partition = ?', (a['t'], a['p'])).fetchone()\n\
            if row is None: sys.exit('no such topic partition in ' + a['db'])\n\
            tp = row[0]\n\
            c.execute('delete from header where topition = ? and offset_id < ?', (tp, a['o']))\n\
            gone = c.execute('delete from record where topition = ? and offset_id < ?', \
            (tp, a['o'])).rowcount\n\
            c.execute('update watermark set low = ? where topition = ?', (a['o'], tp))\n\
            c.commit()\n\
            print(gone)\n";
        let args = format!(
            r#"{{"db": {}, "t": {}, "p": {partition}, "o": {offset}}}"#,
            json_str(&db.to_string_lossy()),
            json_str(topic)
        );
        let out = edit_tansu_db(script, &args);
        let gone = out;
        assert_eq!(
            gone.trim(),
            offset.to_string(),
            "records deleted below offset {offset}"
        );
        self.launch();
    }

    /// Kills the broker process (SIGKILL) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for OwnBroker {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs a Python `script` that edits a (stopped or running) tansu's sqlite database, with `ARGS`
/// (JSON) in its environment; its standard output. Panics with its stderr when it fails.
pub fn edit_tansu_db(script: &str, args: &str) -> String {
    let out = Command::new("python3")
        .args(["-c", script])
        .env("ARGS", args)
        .output()
        .expect("run python3 (sqlite3)");
    assert!(
        out.status.success(),
        "editing tansu's database failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
