//! The tokio side of a plane: the supervisor (connect with backoff, report state changes once,
//! discover partitions and start fetch loops, refresh metadata) and the command loop.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeSet, HashMap};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use rskafka::client::error::ProtocolError;
use rskafka::client::partition::{PartitionClient, UnknownTopicHandling};
use rskafka::client::Client;
use tokio::sync::{watch, Notify};

use crate::config::{KafkaConfig, StartPosition};

use super::assign::owner_of;
use super::backoff::Backoff;
use super::connect::{build_client, describe, is_transport, protocol_error};
use super::events::{BrokerState, PlaneCommand, PlaneEvent};
use super::sink::{EventSink, Shared};
use super::{fetch, produce, KafkaError};

/// `[kafka]` converted once into the types the protocol wants.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    pub bootstrap: Vec<String>,
    pub client_id: String,
    pub topics: Vec<Arc<str>>,
    pub start: StartPosition,
    pub create_topics: bool,
    pub create_partitions: i32,
    pub replication_factor: i16,
    pub fetch_max_bytes: i32,
    pub fetch_max_wait_ms: i32,
    pub metadata_refresh: Duration,
    pub request_timeout: Duration,
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    /// Idempotency keys the shard remembers per partition: also how far back a fetch loop
    /// reads, before its start offset, to rebuild that window (0 = not at all).
    pub dedup_window: usize,
    pub shard: usize,
    pub shards: usize,
}

impl Settings {
    pub fn from_config(c: &KafkaConfig, shard: usize, shards: usize) -> Result<Self, KafkaError> {
        let bad = |key: &str, what: String| KafkaError::Config(format!("kafka.{key}: {what}"));
        let start = c.start_position().map_err(|m| bad("start", m))?;
        let int = |key: &str, v: u64| {
            i32::try_from(v).map_err(|_| bad(key, format!("{v} does not fit a Kafka int32")))
        };
        if c.bootstrap.is_empty() {
            return Err(bad(
                "bootstrap",
                "no bootstrap brokers configured".to_owned(),
            ));
        }
        Ok(Self {
            bootstrap: c.bootstrap.clone(),
            client_id: c.client_id.clone(),
            topics: c.topics.iter().map(|t| Arc::from(t.as_str())).collect(),
            start,
            create_topics: c.create_topics,
            create_partitions: int("create_partitions", u64::from(c.create_partitions))?,
            replication_factor: i16::try_from(c.replication_factor)
                .map_err(|_| bad("replication_factor", "too large".to_owned()))?,
            fetch_max_bytes: int("fetch_max_bytes", c.fetch_max_bytes as u64)?.max(1),
            fetch_max_wait_ms: int("fetch_max_wait_ms", c.fetch_max_wait_ms)?,
            metadata_refresh: Duration::from_millis(c.metadata_refresh_ms.max(1)),
            request_timeout: Duration::from_millis(c.request_timeout_ms.max(1)),
            backoff_initial: Duration::from_millis(c.backoff_initial_ms),
            backoff_max: Duration::from_millis(c.backoff_max_ms),
            dedup_window: c.dedup_window,
            shard,
            shards,
        })
    }

    /// A backoff seeded per shard, so planes do not retry in lock-step.
    pub fn backoff(&self) -> Backoff {
        let seed = 0x5eed_u64 ^ ((self.shard as u64) << 32) ^ u64::from(std::process::id());
        Backoff::new(self.backoff_initial, self.backoff_max, seed)
    }
}

/// The connection state every task can watch. `generation` counts successful connects.
#[derive(Clone, Debug, Default)]
pub(crate) struct Link {
    pub generation: u64,
    pub up: bool,
    pub reason: String,
}

/// The supervisor's client: metadata, produce and catch-up fetches go through it. Fetch
/// loops have their own clients (own connections), so a long-polling fetch never queues a
/// produce behind it on the broker.
struct Control {
    generation: u64,
    client: Arc<Client>,
    partitions: HashMap<(Arc<str>, i32), Arc<PartitionClient>>,
}

#[derive(Default)]
struct TopicState {
    /// Partitions seen so far; `None` until the first successful discovery.
    partitions: Option<BTreeSet<i32>>,
    error_reported: bool,
}

/// Why a request could not be sent: the plane is down, or rskafka failed.
pub(crate) enum Unavailable {
    Down(String),
    Failed(rskafka::client::error::Error),
}

pub(crate) struct Inner {
    pub settings: Settings,
    pub sink: EventSink,
    pub shared: Arc<Shared>,
    pub link: watch::Sender<Link>,
    control: RefCell<Option<Control>>,
    trouble: Notify,
    trouble_reason: RefCell<Option<String>>,
    topics: RefCell<HashMap<Arc<str>, TopicState>>,
    round_robin: Cell<u32>,
}

impl Inner {
    pub fn link(&self) -> Link {
        self.link.borrow().clone()
    }

    /// A task saw the connection fail. Only a failure on the current connection counts, so
    /// tasks still finishing on an old client do not take a fresh one down.
    pub fn report_failure(&self, generation: u64, reason: String) {
        let link = self.link.borrow();
        if link.up && link.generation == generation {
            *self.trouble_reason.borrow_mut() = Some(reason);
            self.trouble.notify_one();
        }
    }

    /// Wait until connected with a generation newer than `generation`; `None` if the plane
    /// stops first.
    pub async fn wait_up_after(&self, generation: u64) -> Option<u64> {
        let mut rx = self.link.subscribe();
        loop {
            {
                let link = rx.borrow_and_update();
                if link.up && link.generation > generation {
                    return Some(link.generation);
                }
            }
            if self.shared.is_shutting_down() || rx.changed().await.is_err() {
                return None;
            }
        }
    }

    /// Next round-robin partition for records without a key.
    pub fn next_round_robin(&self, count: u32) -> u32 {
        let n = self.round_robin.get();
        self.round_robin.set(n.wrapping_add(1));
        n % count.max(1)
    }

    /// A partition client on the control connection, created on first use per connection.
    pub async fn control_partition(
        &self,
        topic: &Arc<str>,
        partition: i32,
    ) -> Result<(u64, Arc<PartitionClient>), Unavailable> {
        let (generation, client) = {
            let control = self.control.borrow();
            let Some(control) = control.as_ref() else {
                return Err(Unavailable::Down(self.link().reason));
            };
            if let Some(pc) = control.partitions.get(&(Arc::clone(topic), partition)) {
                return Ok((control.generation, Arc::clone(pc)));
            }
            (control.generation, Arc::clone(&control.client))
        };
        let made = tokio::time::timeout(
            self.settings.request_timeout,
            client.partition_client(topic.as_ref(), partition, UnknownTopicHandling::Error),
        )
        .await;
        let pc = match made {
            Ok(Ok(pc)) => Arc::new(pc),
            Ok(Err(err)) => {
                if is_transport(&err) {
                    self.report_failure(generation, describe(&err));
                }
                return Err(Unavailable::Failed(err));
            }
            Err(_) => {
                self.report_failure(generation, "broker did not answer in time".to_owned());
                return Err(Unavailable::Down(
                    "broker did not answer in time".to_owned(),
                ));
            }
        };
        if let Some(control) = self.control.borrow_mut().as_mut() {
            if control.generation == generation {
                control
                    .partitions
                    .insert((Arc::clone(topic), partition), Arc::clone(&pc));
            }
        }
        Ok((generation, pc))
    }

    /// Partition count of `topic`: known from discovery, else asked of the broker.
    pub async fn partition_count(&self, topic: &Arc<str>) -> Result<Option<u32>, Unavailable> {
        if let Some(known) = self
            .topics
            .borrow()
            .get(topic)
            .and_then(|t| t.partitions.as_ref())
        {
            return Ok(Some(known.len() as u32));
        }
        let (generation, client) = match self.control.borrow().as_ref() {
            Some(c) => (c.generation, Arc::clone(&c.client)),
            None => return Err(Unavailable::Down(self.link().reason)),
        };
        match tokio::time::timeout(self.settings.request_timeout, client.list_topics()).await {
            Ok(Ok(topics)) => Ok(topics
                .iter()
                .find(|t| t.name == topic.as_ref())
                .map(|t| t.partitions.len() as u32)),
            Ok(Err(err)) => {
                if is_transport(&err) {
                    self.report_failure(generation, describe(&err));
                }
                Err(Unavailable::Failed(err))
            }
            Err(_) => {
                self.report_failure(generation, "metadata request timed out".to_owned());
                Err(Unavailable::Down("metadata request timed out".to_owned()))
            }
        }
    }
}

pub(crate) struct Worker {
    inner: Rc<Inner>,
    commands: rtrb::Consumer<PlaneCommand>,
}

impl Worker {
    pub fn new(
        settings: Settings,
        sink: EventSink,
        commands: rtrb::Consumer<PlaneCommand>,
        shared: Arc<Shared>,
    ) -> Self {
        let (link, _) = watch::channel(Link {
            reason: "not connected yet".to_owned(),
            ..Link::default()
        });
        let inner = Rc::new(Inner {
            settings,
            sink,
            shared,
            link,
            control: RefCell::new(None),
            trouble: Notify::new(),
            trouble_reason: RefCell::new(None),
            topics: RefCell::new(HashMap::new()),
            round_robin: Cell::new(0),
        });
        Self { inner, commands }
    }

    /// Run until shut down. Returning drops the `LocalSet`, which cancels every fetch loop.
    pub async fn run(self) {
        let supervisor = tokio::task::spawn_local(supervise(Rc::clone(&self.inner)));
        command_loop(Rc::clone(&self.inner), self.commands).await;
        supervisor.abort();
        // Wake anything waiting on the link so it sees the shutdown.
        self.inner.link.send_modify(|l| l.up = false);
        tracing::debug!(shard = self.inner.settings.shard, "kafka plane stopped");
    }
}

async fn command_loop(inner: Rc<Inner>, mut commands: rtrb::Consumer<PlaneCommand>) {
    loop {
        while let Ok(command) = commands.pop() {
            match command {
                PlaneCommand::Produce {
                    request_id,
                    topic,
                    partition,
                    records,
                } => {
                    let task =
                        produce::run(Rc::clone(&inner), request_id, topic, partition, records);
                    tokio::task::spawn_local(task);
                }
                PlaneCommand::Fetch {
                    request_id,
                    topic,
                    partition,
                    offset,
                    max_bytes,
                } => {
                    let task = fetch::catch_up(
                        Rc::clone(&inner),
                        request_id,
                        topic,
                        partition,
                        offset,
                        max_bytes,
                    );
                    tokio::task::spawn_local(task);
                }
                PlaneCommand::Shutdown => inner.shared.begin_shutdown(),
            }
        }
        if inner.shared.is_shutting_down() || commands.is_abandoned() {
            return;
        }
        inner.shared.commands.notified().await;
    }
}

/// Connect, serve until a task reports a failure, mark down, reconnect: forever.
async fn supervise(inner: Rc<Inner>) {
    let settings = &inner.settings;
    let mut backoff = settings.backoff();
    let mut reported: Option<bool> = None;
    let mut generation = 0u64;
    loop {
        let connected = build_client(
            &settings.bootstrap,
            &settings.client_id,
            settings.request_timeout,
        )
        .await;
        let client = match connected {
            Ok(client) => Arc::new(client),
            Err(reason) => {
                set_down(&inner, &mut reported, reason).await;
                tokio::time::sleep(backoff.next_delay()).await;
                continue;
            }
        };
        backoff.reset();
        generation += 1;
        *inner.trouble_reason.borrow_mut() = None;
        *inner.control.borrow_mut() = Some(Control {
            generation,
            client: Arc::clone(&client),
            partitions: HashMap::new(),
        });
        inner.link.send_modify(|l| {
            l.generation = generation;
            l.up = true;
        });
        if reported != Some(true) {
            reported = Some(true);
            tracing::info!(shard = settings.shard, brokers = ?settings.bootstrap, "kafka: connected");
            inner
                .sink
                .push(PlaneEvent::BrokerState(BrokerState::Up))
                .await;
        }
        loop {
            discover(&inner, &client, generation).await;
            let refresh = tokio::time::sleep(settings.metadata_refresh);
            tokio::select! {
                () = refresh => {}
                () = inner.trouble.notified() => break,
            }
        }
        let reason = inner
            .trouble_reason
            .borrow_mut()
            .take()
            .unwrap_or_else(|| "connection failed".to_owned());
        *inner.control.borrow_mut() = None;
        set_down(&inner, &mut reported, reason).await;
    }
}

async fn set_down(inner: &Inner, reported: &mut Option<bool>, reason: String) {
    inner.link.send_modify(|l| {
        l.up = false;
        l.reason.clone_from(&reason);
    });
    if *reported != Some(false) {
        *reported = Some(false);
        tracing::warn!(shard = inner.settings.shard, %reason, "kafka: disconnected; retrying with backoff");
        let state = BrokerState::Down { reason };
        inner.sink.push(PlaneEvent::BrokerState(state)).await;
    }
}

/// List the configured topics, create missing ones if allowed, and start a fetch loop for
/// every partition this shard owns that has none yet.
async fn discover(inner: &Rc<Inner>, client: &Client, generation: u64) {
    let settings = &inner.settings;
    let mut listed = match list(inner, client, generation).await {
        Some(listed) => listed,
        None => return,
    };
    let missing: Vec<Arc<str>> = settings
        .topics
        .iter()
        .filter(|t| !listed.contains_key(t.as_ref()))
        .cloned()
        .collect();
    if !missing.is_empty() && settings.create_topics {
        for topic in &missing {
            create_topic(inner, client, topic).await;
        }
        listed = match list(inner, client, generation).await {
            Some(listed) => listed,
            None => return,
        };
    }
    for topic in &settings.topics {
        let Some(partitions) = listed.remove(topic.as_ref()) else {
            let reason = if settings.create_topics {
                "the topic does not exist and could not be created".to_owned()
            } else {
                "the topic does not exist on the brokers and kafka.create_topics is false"
                    .to_owned()
            };
            topic_error(inner, topic, reason).await;
            continue;
        };
        start_partitions(inner, topic, partitions).await;
    }
}

async fn list(
    inner: &Inner,
    client: &Client,
    generation: u64,
) -> Option<HashMap<String, BTreeSet<i32>>> {
    match tokio::time::timeout(inner.settings.request_timeout, client.list_topics()).await {
        Ok(Ok(topics)) => Some(topics.into_iter().map(|t| (t.name, t.partitions)).collect()),
        Ok(Err(err)) => {
            inner.report_failure(generation, describe(&err));
            None
        }
        Err(_) => {
            inner.report_failure(generation, "metadata request timed out".to_owned());
            None
        }
    }
}

async fn create_topic(inner: &Inner, client: &Client, topic: &Arc<str>) {
    let s = &inner.settings;
    let Ok(controller) = client.controller_client() else {
        return;
    };
    let timeout_ms = i32::try_from(s.request_timeout.as_millis()).unwrap_or(i32::MAX);
    let create = controller.create_topic(
        topic.as_ref(),
        s.create_partitions,
        s.replication_factor,
        timeout_ms,
    );
    match tokio::time::timeout(s.request_timeout, create).await {
        Ok(Ok(())) => {
            tracing::info!(%topic, partitions = s.create_partitions, "kafka: created topic");
        }
        // Another shard's plane (or another gateway) was first.
        Ok(Err(err))
            if matches!(
                protocol_error(&err),
                Some(ProtocolError::TopicAlreadyExists)
            ) => {}
        Ok(Err(err)) => {
            topic_error(
                inner,
                topic,
                format!("cannot create it: {}", describe(&err)),
            )
            .await
        }
        Err(_) => topic_error(inner, topic, "creating it timed out".to_owned()).await,
    }
}

async fn topic_error(inner: &Inner, topic: &Arc<str>, reason: String) {
    let first = {
        let mut topics = inner.topics.borrow_mut();
        let state = topics.entry(Arc::clone(topic)).or_default();
        !std::mem::replace(&mut state.error_reported, true)
    };
    if first {
        tracing::error!(%topic, %reason, "kafka: cannot read topic");
        let event = PlaneEvent::TopicError {
            topic: Arc::clone(topic),
            reason,
        };
        inner.sink.push(event).await;
    }
}

async fn start_partitions(inner: &Rc<Inner>, topic: &Arc<str>, partitions: BTreeSet<i32>) {
    let s = &inner.settings;
    let (new, first_sight) = {
        let mut topics = inner.topics.borrow_mut();
        let state = topics.entry(Arc::clone(topic)).or_default();
        state.error_reported = false;
        let known = state.partitions.get_or_insert_with(BTreeSet::new);
        let first_sight = known.is_empty();
        let new: Vec<i32> = partitions.difference(known).copied().collect();
        known.extend(new.iter().copied());
        (new, first_sight)
    };
    if new.is_empty() {
        return;
    }
    // Partitions present at the first look start where configured; ones added later start
    // at their beginning, so nothing produced to them before we noticed is skipped.
    let start = if first_sight {
        s.start
    } else {
        StartPosition::Earliest
    };
    let owned: Vec<i32> = partitions
        .iter()
        .copied()
        .filter(|&p| owner_of(topic, p, s.shards) == s.shard)
        .collect();
    for &p in new
        .iter()
        .filter(|&&p| owner_of(topic, p, s.shards) == s.shard)
    {
        tracing::debug!(%topic, partition = p, shard = s.shard, "kafka: fetching partition");
        tokio::task::spawn_local(fetch::run(Rc::clone(inner), Arc::clone(topic), p, start));
    }
    let count = partitions
        .iter()
        .next_back()
        .map_or(0, |&p| p.saturating_add(1));
    let event = PlaneEvent::Partitions {
        topic: Arc::clone(topic),
        count,
        owned,
    };
    inner.sink.push(event).await;
}
