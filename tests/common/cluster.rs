//! Several gateway instances on loopback sharing one broker, for the scale-out tests: a
//! [`Cluster`] of N `sluicegate` processes started from one config (a shared template plus the
//! broker section the test passes as TOML text, so the Kafka and the Redis broker modes use the
//! same harness), a round-robin [`Publisher`] that tags every event with a global and a per-key
//! sequence number, a [`Roamer`] (an SSE reader that records what it got and can resume on
//! another instance with its last id), and [`check_exactly_once`], the broker-neutral check of
//! what a reader received against what was published.
//!
//! Every wait here polls a condition against a deadline sized for a busy 2-core machine (three
//! gateways, a broker and a `cargo build` may share it), never a fixed sleep.

use super::http::{build_request, read_response};
use super::{parse_ids, wait_ready, Gateway, ParsedEvent, SseClient};
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// How long one publish may take to be answered (produce to the broker and its acknowledgement).
pub const PUBLISH_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a reader waits for the events it expects, in all (not per event).
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(90);
/// How long a stream must stay quiet to show that nothing extra (a duplicate) follows.
pub const QUIET: Duration = Duration::from_millis(1500);
/// How long a reader waits for a stream's opening comment (the subscription is registered).
const OPEN_TIMEOUT: Duration = Duration::from_secs(30);

/// Settings every instance shares, whatever the broker: a small body and queue suffice, and
/// the listener and data directory are per instance (`--listen` and each process's own working
/// directory, where the default relative `storage.data_dir` lands).
const TEMPLATE: &str = "\
[log]
level = \"info\"
";

/// N gateway processes started from one config file; an instance stays in the list after it
/// was killed (for its log), marked dead.
pub struct Cluster {
    config: String,
    args: Vec<String>,
    instances: Vec<Gateway>,
    dead: Vec<bool>,
}

impl Cluster {
    /// Starts `n` instances (in parallel) with the shared template plus `broker_section` (TOML
    /// text, e.g. a `[kafka]` table) and `args` (e.g. `--shards 2`), and waits until every one
    /// answers `/readyz` 200.
    pub fn start(n: usize, broker_section: &str, args: &[&str]) -> Cluster {
        let config = super::config_file(&format!("{TEMPLATE}\n{broker_section}\n"));
        let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        let instances: Vec<Gateway> = std::thread::scope(|s| {
            let started: Vec<_> = (0..n)
                .map(|_| s.spawn(|| start_instance(&config, &args, &[])))
                .collect();
            started
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| panic!("an instance did not start"))
                })
                .collect()
        });
        Cluster {
            config,
            args,
            dead: vec![false; instances.len()],
            instances,
        }
    }

    /// Starts one more instance with the same config plus `extra` arguments (e.g. a different
    /// start position); its index.
    pub fn add(&mut self, extra: &[&str]) -> usize {
        let extra: Vec<String> = extra.iter().map(|a| (*a).to_owned()).collect();
        self.instances
            .push(start_instance(&self.config, &self.args, &extra));
        self.dead.push(false);
        self.instances.len() - 1
    }

    pub fn len(&self) -> usize {
        self.instances.len()
    }

    /// Instance `i` (dead or alive).
    pub fn gateway(&self, i: usize) -> &Gateway {
        &self.instances[i]
    }

    pub fn addr(&self, i: usize) -> SocketAddr {
        self.instances[i].addr()
    }

    /// Every instance with its address, dead ones included (a publisher keeps trying them, as
    /// a load balancer would until its health check notices).
    pub fn targets(&self) -> Vec<(usize, SocketAddr)> {
        self.instances
            .iter()
            .map(Gateway::addr)
            .enumerate()
            .collect()
    }

    /// The instances not killed, with their addresses.
    pub fn alive_targets(&self) -> Vec<(usize, SocketAddr)> {
        self.targets()
            .into_iter()
            .filter(|(i, _)| !self.dead[*i])
            .collect()
    }

    pub fn is_alive(&self, i: usize) -> bool {
        !self.dead[i]
    }

    /// Kills instance `i` with SIGKILL (nothing runs on its way out) and waits until it is gone.
    pub fn kill9(&mut self, i: usize) {
        self.instances[i].kill9();
        self.dead[i] = true;
    }

    /// Panics with every log unless every instance not killed is still running and healthy.
    pub fn assert_alive(&mut self) {
        for i in 0..self.instances.len() {
            if !self.dead[i] {
                self.instances[i].assert_alive();
            }
        }
    }

    /// Every instance's log, for failure messages.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for (i, gw) in self.instances.iter().enumerate() {
            let state = if self.dead[i] { " (killed)" } else { "" };
            out.push_str(&format!(
                "\n===== instance {i} {}{state} =====\n{}",
                gw.addr(),
                gw.log()
            ));
        }
        out
    }
}

/// Starts one instance from `config` and waits for `/readyz`.
fn start_instance(config: &str, args: &[String], extra: &[String]) -> Gateway {
    let mut all = vec!["--config".to_owned(), config.to_owned()];
    all.extend(args.iter().cloned());
    all.extend(extra.iter().cloned());
    let refs: Vec<&str> = all.iter().map(String::as_str).collect();
    let gw = Gateway::start(&refs);
    wait_ready(&gw);
    gw
}

/// What a published event carries, so a reader can tell which publish it is: a global sequence
/// number, the partition key and the key's own sequence number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tag {
    pub seq: u64,
    pub key: String,
    pub key_seq: u64,
}

impl Tag {
    /// The event's data: `seq=S key=K n=N`.
    pub fn data(&self) -> String {
        format!("seq={} key={} n={}", self.seq, self.key, self.key_seq)
    }

    /// Reads back [`Tag::data`].
    pub fn parse(data: &str) -> Option<Tag> {
        let mut f = data.split(' ');
        let seq = f.next()?.strip_prefix("seq=")?.parse().ok()?;
        let key = f.next()?.strip_prefix("key=")?.to_owned();
        let key_seq = f.next()?.strip_prefix("n=")?.parse().ok()?;
        f.next().is_none().then_some(Tag { seq, key, key_seq })
    }
}

/// One publish attempt and its outcome.
#[derive(Clone, Debug)]
pub struct Sent {
    pub tag: Tag,
    /// The instance it was sent to.
    pub instance: usize,
    /// `Ok(id)`: acknowledged (200, the id the answer gave). `Err`: not acknowledged; the event
    /// may or may not be in the broker (a connection refused means it is not).
    pub outcome: Result<String, String>,
}

impl Sent {
    pub fn acked(&self) -> bool {
        self.outcome.is_ok()
    }
}

/// Publishes to the instances in turn (one after the other: the order of acknowledgements is
/// the order of the sequence numbers), cycling over `keys` so each key's events go through
/// every instance.
pub struct Publisher {
    /// `(instance index, address)`, taken in turn.
    targets: Vec<(usize, SocketAddr)>,
    topic: String,
    keys: Vec<String>,
    next_instance: usize,
    next_seq: u64,
    key_seqs: HashMap<String, u64>,
}

impl Publisher {
    /// Publishes to `targets` (see [`Cluster::targets`]) on `topic`.
    pub fn new(targets: Vec<(usize, SocketAddr)>, topic: &str, keys: &[&str]) -> Publisher {
        assert!(!targets.is_empty() && !keys.is_empty());
        Publisher {
            targets,
            topic: topic.to_owned(),
            keys: keys.iter().map(|k| (*k).to_owned()).collect(),
            next_instance: 0,
            next_seq: 0,
            key_seqs: HashMap::new(),
        }
    }

    /// The same publisher (sequence numbers go on) sending to `targets` from now on (e.g.
    /// [`Cluster::alive_targets`]).
    pub fn retarget(mut self, targets: Vec<(usize, SocketAddr)>) -> Publisher {
        assert!(!targets.is_empty());
        self.targets = targets;
        self.next_instance = 0;
        self
    }

    /// Publishes the next event to the next instance; whatever the outcome, the sequence
    /// numbers move on (a lost attempt leaves a gap, never a reuse).
    pub fn publish(&mut self) -> Sent {
        let (instance, addr) = self.targets[self.next_instance % self.targets.len()];
        self.next_instance += 1;
        let key = self.keys[(self.next_seq % self.keys.len() as u64) as usize].clone();
        let key_seq = self.key_seqs.entry(key.clone()).or_insert(0);
        let tag = Tag {
            seq: self.next_seq,
            key: key.clone(),
            key_seq: *key_seq,
        };
        self.next_seq += 1;
        *key_seq += 1;
        let path = format!("/topics/{}/events?key={key}", self.topic);
        let outcome = post(addr, &path, tag.data().as_bytes());
        Sent {
            tag,
            instance,
            outcome,
        }
    }

    /// Publishes `n` events and panics unless every one was acknowledged (for phases where
    /// every instance is up).
    pub fn publish_acked(&mut self, n: usize) -> Vec<Sent> {
        (0..n)
            .map(|_| {
                let sent = self.publish();
                if let Err(e) = &sent.outcome {
                    panic!(
                        "publish {:?} to instance {} not acknowledged: {e}",
                        sent.tag, sent.instance
                    );
                }
                sent
            })
            .collect()
    }
}

/// One POST on a fresh connection with `PUBLISH_TIMEOUT` (the harness's one-shot client waits
/// 5 s, which a produce on a loaded machine may exceed); `Ok(id)` on 200 with one id.
fn post(addr: SocketAddr, path: &str, body: &[u8]) -> Result<String, String> {
    let mut s =
        TcpStream::connect_timeout(&addr, PUBLISH_TIMEOUT).map_err(|e| format!("connect: {e}"))?;
    let _ = s.set_read_timeout(Some(PUBLISH_TIMEOUT));
    let _ = s.set_write_timeout(Some(PUBLISH_TIMEOUT));
    let _ = s.set_nodelay(true);
    s.write_all(&build_request(addr, "POST", path, &[], body, true))
        .map_err(|e| format!("write: {e}"))?;
    let mut buf = Vec::new();
    let r = read_response(&mut s, &mut buf, true).map_err(|e| format!("read: {e}"))?;
    if r.status != 200 {
        return Err(format!("status {} body {:?}", r.status, r.text()));
    }
    match parse_ids(&r.text()).as_deref() {
        Some([id]) => Ok(id.clone()),
        _ => Err(format!("200 without one id: {:?}", r.text())),
    }
}

/// One event as a reader received it.
#[derive(Clone, Debug)]
pub struct Received {
    /// The SSE `id` after this event (the cursor a resume sends back).
    pub id: String,
    pub event_type: String,
    pub data: String,
    /// The instance that delivered it.
    pub instance: usize,
}

/// An SSE subscriber that records every event it reads and can resume on another instance
/// with the id of the last event it read (what a browser does after a reconnect, there through
/// a load balancer).
pub struct Roamer {
    path: String,
    client: Option<SseClient>,
    /// The instance currently (or last) read from.
    pub instance: usize,
    pub got: Vec<Received>,
    /// `(instance, index in got of the first event read there)` per connection.
    pub connections: Vec<(usize, usize)>,
}

/// How a [`Roamer`] sends its last id when it resumes.
#[derive(Clone, Copy, Debug)]
pub enum ResumeWith {
    /// The `Last-Event-ID` header (what `EventSource` sends).
    Header,
    /// `?lastEventId=` (what a client that cannot set headers uses).
    Query,
}

impl Roamer {
    /// Subscribes to `path` on `instance` without an id (live from now) and waits until the
    /// stream's opening comment says the subscription is registered.
    pub fn subscribe(cluster: &Cluster, instance: usize, path: &str) -> Roamer {
        let mut r = Roamer {
            path: path.to_owned(),
            client: None,
            instance,
            got: Vec::new(),
            connections: Vec::new(),
        };
        r.open(cluster, instance, &[], path.to_owned());
        r
    }

    fn open(&mut self, cluster: &Cluster, instance: usize, headers: &[(&str, &str)], path: String) {
        let mut client = match SseClient::try_connect(cluster.addr(instance), &path, headers) {
            Ok(c) => c,
            Err(e) => panic!(
                "subscribe {path} {headers:?} on instance {instance}: {e}{}",
                cluster.logs()
            ),
        };
        // `connect` waits 2 s for the opening comment; a loaded machine may need longer, and a
        // publish before the subscription is registered would not reach it.
        assert!(
            client.wait_for_comment(OPEN_TIMEOUT),
            "no opening comment on {path} at instance {instance} within {OPEN_TIMEOUT:?}"
        );
        self.client = Some(client);
        self.instance = instance;
        self.connections.push((instance, self.got.len()));
    }

    /// The id of the last event read, if any.
    pub fn last_id(&self) -> Option<&str> {
        self.got.last().map(|r| r.id.as_str())
    }

    /// Closes the current connection (whatever it had not read yet is gone with it) and
    /// resumes on `instance` with the last id read (no id: live from now).
    pub fn resume_on(&mut self, cluster: &Cluster, instance: usize, with: ResumeWith) {
        self.client = None;
        let last = self.last_id().map(str::to_owned);
        match (last, with) {
            (None, _) => self.open(cluster, instance, &[], self.path.clone()),
            (Some(id), ResumeWith::Header) => {
                self.open(
                    cluster,
                    instance,
                    &[("Last-Event-ID", &id)],
                    self.path.clone(),
                );
            }
            (Some(id), ResumeWith::Query) => {
                let sep = if self.path.contains('?') { '&' } else { '?' };
                let path = format!("{}{sep}lastEventId={id}", self.path);
                self.open(cluster, instance, &[], path);
            }
        }
    }

    fn record(&mut self, ev: ParsedEvent) {
        self.got.push(Received {
            id: ev.last_event_id,
            event_type: ev.event_type,
            data: ev.data,
            instance: self.instance,
        });
    }

    /// Reads until `done(&self.got)` holds; false when `timeout` passed or the stream ended
    /// first.
    pub fn read_until(&mut self, timeout: Duration, done: impl Fn(&[Received]) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        while !done(&self.got) {
            let left = deadline.saturating_duration_since(Instant::now());
            let Some(client) = self.client.as_mut() else {
                return false;
            };
            if left.is_zero() {
                return false;
            }
            match client.next_event(left) {
                Some(ev) => self.record(ev),
                None => return false,
            }
        }
        true
    }

    /// Reads until at least `n` events were read in all; false on timeout or end of stream.
    pub fn read_count(&mut self, n: usize, timeout: Duration) -> bool {
        self.read_until(timeout, |got| got.len() >= n)
    }

    /// Reads until every acknowledged event of `sent` was read; false on timeout or end of
    /// stream.
    pub fn read_all_acked(&mut self, sent: &[Sent], timeout: Duration) -> bool {
        let want: Vec<u64> = sent
            .iter()
            .filter(|s| s.acked())
            .map(|s| s.tag.seq)
            .collect();
        self.read_until(timeout, |got| {
            let have: std::collections::HashSet<u64> = got
                .iter()
                .filter_map(|r| Tag::parse(&r.data))
                .map(|t| t.seq)
                .collect();
            want.iter().all(|s| have.contains(s))
        })
    }

    /// Reads for `dur` and records whatever arrives; the number of events read.
    pub fn read_for(&mut self, dur: Duration) -> usize {
        let before = self.got.len();
        let evs = match self.client.as_mut() {
            Some(c) => c.events_for(dur),
            None => Vec::new(),
        };
        for ev in evs {
            self.record(ev);
        }
        self.got.len() - before
    }

    /// Reads until the server closes the stream (recording what came before); false when it
    /// is still open after `timeout`.
    pub fn read_until_closed(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let Some(client) = self.client.as_mut() else {
                return true;
            };
            if client.is_closed() {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            if let Some(ev) = client.next_event(left) {
                self.record(ev);
            }
        }
    }

    /// Whether the current connection ended (the server closed it, or the instance died).
    pub fn is_closed(&self) -> bool {
        self.client.as_ref().is_none_or(SseClient::is_closed)
    }
}

/// What [`check_exactly_once`] found: each received event's tag, in arrival order.
#[derive(Debug)]
pub struct Checked {
    pub tags: Vec<Tag>,
    /// Received events whose publish was not acknowledged (allowed, at most once each).
    pub unacked_delivered: usize,
}

/// Checks what one reader received against what was published, whatever the broker: no
/// `reset` or other typed event, every event a tagged publish, no publish twice, every
/// acknowledged publish present, and each key's events in the order they were published (a
/// key maps to one partition, so this is the per-partition order). A publish that was not
/// acknowledged may be present once (its outcome is unknown). Panics with `what` and the
/// cluster's logs otherwise.
pub fn check_exactly_once(
    got: &[Received],
    sent: &[Sent],
    what: &str,
    cluster: &Cluster,
) -> Checked {
    let by_seq: BTreeMap<u64, &Sent> = sent.iter().map(|s| (s.tag.seq, s)).collect();
    let fail = |msg: String| -> ! { panic!("{what}: {msg}{}", cluster.logs()) };
    let mut seen: BTreeMap<u64, usize> = BTreeMap::new();
    let mut last_of_key: HashMap<String, u64> = HashMap::new();
    let mut tags = Vec::with_capacity(got.len());
    let mut unacked_delivered = 0;
    for (i, r) in got.iter().enumerate() {
        if !(r.event_type.is_empty() || r.event_type == "message") {
            fail(format!("event {i} has type {:?}: {r:?}", r.event_type));
        }
        let Some(tag) = Tag::parse(&r.data) else {
            fail(format!("event {i} is not a tagged publish: {r:?}"))
        };
        let Some(s) = by_seq.get(&tag.seq) else {
            fail(format!("event {i} was never published: {r:?}"))
        };
        if s.tag != tag {
            fail(format!(
                "event {i} {tag:?} differs from its publish {:?}",
                s.tag
            ));
        }
        if let Some(first) = seen.insert(tag.seq, i) {
            fail(format!(
                "seq {} delivered twice: as event {first} ({:?}) and event {i} ({r:?})",
                tag.seq, got[first]
            ));
        }
        if let Some(prev) = last_of_key.insert(tag.key.clone(), tag.key_seq) {
            if tag.key_seq <= prev {
                fail(format!(
                    "key {} out of order: n={} after n={prev} (event {i}, {r:?})",
                    tag.key, tag.key_seq
                ));
            }
        }
        if !s.acked() {
            unacked_delivered += 1;
        }
        tags.push(tag);
    }
    let missing: Vec<u64> = sent
        .iter()
        .filter(|s| s.acked() && !seen.contains_key(&s.tag.seq))
        .map(|s| s.tag.seq)
        .collect();
    if !missing.is_empty() {
        fail(format!(
            "{} acknowledged publishes missing (of {} received): seqs {missing:?}",
            missing.len(),
            got.len()
        ));
    }
    Checked {
        tags,
        unacked_delivered,
    }
}
