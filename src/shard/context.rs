//! One shard's state and its broker-side duties: owning partitions, framing, fan-out, history.
//!
//! Everything here is `!Send` and lives on one executor; other shards are reached only through
//! the mesh.
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use crate::broker::durable::recovery::Recovered;
use crate::broker::embedded::EmbeddedBroker;
use crate::broker::framing::Framer;
use crate::broker::log::RecordRef;
use crate::broker::memory::{History, HistoryLimits};
use crate::broker::routing::shard_for;
use crate::broker::{FramedEvent, PartitionKey, PublishError, PublishItem};
use crate::config::Config;
use crate::delivery::registry::Registry;
use crate::delivery::webhook::engine::WebhookEngine;
use crate::delivery::webhook::model::STATE_TOPIC;
use crate::delivery::writer::Writer;
use crate::policy::engine::{Policy, ShardPolicy};
use crate::shard::broker_link::BrokerLink;
use crate::shard::commit::DurableLog;
use crate::shard::event_waiters::EventWaiters;
use crate::shard::mesh::{MeshEndpoint, MeshMsg, PublishRequest};
use crate::shard::replies::Replies;
use crate::shard::shutdown::{DrainBarrier, GlobalShutdown, LocalShutdown};
use crate::telemetry::system_events::{SystemInterest, SystemQueue, SystemTopic};
use crate::telemetry::ShardMetrics;

/// What all shards share (read-only after start, or atomics).
pub struct Shared {
    pub config: Config,
    pub metrics: Box<[ShardMetrics]>,
    pub shutdown: GlobalShutdown,
    /// The embedded broker's incarnation, stamped into every event id.
    pub epoch: u64,
    /// Credentials, ACLs and the limits that hold across shards.
    pub policy: Arc<Policy>,
    /// Per shard: stage latency histograms (`/metrics` summaries).
    pub latency: Box<[crate::telemetry::latency::StageLatencies]>,
    /// What the webhook endpoints API shows about deliveries (written by owner shards).
    pub webhook_status: Arc<crate::telemetry::webhook_status::StatusBoard>,
    /// Who listens to each system topic (system events are built only then).
    pub system_interest: Arc<SystemInterest>,
    /// Native hooks given by a library user (`Gateway::start_with`).
    pub plugins: crate::delivery::hooks::Plugins,
    /// `[hooks]` as last loaded (SIGHUP may replace it) and its generation.
    pub hooks_config: std::sync::RwLock<(u64, crate::config::HooksConfig)>,
}

impl Shared {
    /// Why `/readyz` answers 503 (besides draining), or `None` when the gateway is ready: a
    /// shard's last write to the durable log failed, or (Kafka) a shard does not know every
    /// configured topic's partitions yet.
    pub fn not_ready(&self) -> Option<String> {
        use std::sync::atomic::Ordering::Relaxed;
        let failing: Vec<String> = self
            .metrics
            .iter()
            .enumerate()
            .filter(|(_, m)| m.storage_failing.load(Relaxed) > 0)
            .map(|(shard, _)| shard.to_string())
            .collect();
        if !failing.is_empty() {
            return Some(format!(
                "durable log: the last write of shard(s) {} failed (disk full or I/O error; see the log); publishes to their partitions get 503",
                failing.join(", ")
            ));
        }
        let kafka_waiting = self.config.kafka.enabled()
            && !self
                .metrics
                .iter()
                .all(|m| m.kafka_topics_ready.load(Relaxed) == 1);
        if kafka_waiting {
            return Some("waiting for the partitions of the configured kafka topics".to_owned());
        }
        let redis_waiting = self.config.redis.is_broker()
            && !self
                .metrics
                .iter()
                .all(|m| m.redis_topics_ready.load(Relaxed) == 1);
        redis_waiting.then(|| "waiting for every shard to connect to redis".to_owned())
    }
}

type Reply = Result<Vec<String>, PublishError>;

/// Who waits for a publish's answer: a connection task on this shard, or another shard that
/// forwarded the publish to this owner.
#[derive(Clone, Copy, Debug)]
pub enum ReplyTo {
    Local(u64),
    Remote { from: usize, request_id: u64 },
}

/// One shard.
pub struct ShardContext {
    pub id: usize,
    pub shared: Arc<Shared>,
    pub mesh: RefCell<MeshEndpoint>,
    pub subscribers: RefCell<Registry>,
    /// Writes live events to subscribers' sockets (see `delivery::writer`).
    pub writer: Writer,
    pub histories: RefCell<HashMap<PartitionKey, History>>,
    pub shutdown: LocalShutdown,
    /// Passed when no other shard can send an event for an acknowledged publish any more.
    pub drain_barrier: DrainBarrier,
    /// Set once this shard tells its SSE streams to close; streams opened later close at once.
    pub streams_draining: Cell<bool>,
    pub open_connections: Cell<usize>,
    /// This shard's side of the policy: token cache, its share of the rate limits.
    pub policy: ShardPolicy,
    /// The partitions this shard owns, when the embedded broker is the log.
    embedded: RefCell<EmbeddedBroker>,
    framer: RefCell<Framer>,
    publish_replies: Replies<Reply>,
    /// The shard's end of its broker plane, when an external log (Kafka, or Redis in broker
    /// mode) replaces the embedded broker for user topics.
    pub broker_link: Option<BrokerLink>,
    /// The durable log of the partitions this shard owns (`storage.mode = "durable"`).
    pub durable: Option<DurableLog>,
    /// System events waiting to be published (`shard::system_events`).
    pub system_events: SystemQueue,
    /// Tasks pulling a partition at their own pace (webhook deliveries), woken per event.
    pub event_waiters: EventWaiters,
    /// This shard's sync hooks (native plugins, then `[hooks]`) and the hooks generation
    /// they were built for (a reload moves it: `ShardContext::hooks`).
    hooks: RefCell<(u64, Rc<crate::delivery::hooks::runner::Hooks>)>,
    /// The native plugins' instances on this shard (kept across hook reloads).
    native_hooks: std::cell::OnceCell<Vec<Rc<dyn crate::delivery::hooks::Hook>>>,
    /// This shard's webhook engine (subscriptions, their deliveries), set once at start.
    pub webhooks: std::cell::OnceCell<Rc<WebhookEngine>>,
    /// The Redis sink (`[redis] mode = "sink"`), set once at start.
    pub redis_sink: std::cell::OnceCell<crate::shard::redis_sink::RedisSink>,
    round_robin: Cell<u32>,
}

impl ShardContext {
    pub fn new(
        shared: Arc<Shared>,
        mesh: MeshEndpoint,
        broker_link: Option<BrokerLink>,
        durable: Option<DurableLog>,
    ) -> Self {
        let id = mesh.shard();
        let peers = mesh.shards().saturating_sub(1);
        // Idempotency keys are remembered as long as the history keeps their events.
        let keep_keys = shared.config.memory_broker.history_events;
        let epoch = shared.epoch;
        let policy = ShardPolicy::new(shared.policy.clone(), id);
        let interest = shared.system_interest.clone();
        let queue_events = shared.config.system_events.queue_events;
        Self {
            id,
            shared,
            mesh: RefCell::new(mesh),
            subscribers: RefCell::new(Registry::new(interest)),
            system_events: SystemQueue::new(queue_events),
            writer: Writer::default(),
            histories: RefCell::new(HashMap::new()),
            shutdown: LocalShutdown::default(),
            drain_barrier: DrainBarrier::new(peers),
            streams_draining: Cell::new(false),
            open_connections: Cell::new(0),
            policy,
            embedded: RefCell::new(EmbeddedBroker::new(keep_keys)),
            framer: RefCell::new(Framer::new(epoch)),
            publish_replies: Replies::default(),
            broker_link,
            durable,
            event_waiters: EventWaiters::default(),
            webhooks: std::cell::OnceCell::new(),
            redis_sink: std::cell::OnceCell::new(),
            hooks: RefCell::new((0, Rc::default())),
            native_hooks: std::cell::OnceCell::new(),
            round_robin: Cell::new(0),
        }
    }

    /// Take over what recovery found on disk: every partition's newest events into this
    /// shard's history (so resumes and live starts see the log's head), and for the
    /// partitions this shard owns, the next offset and the idempotency keys.
    pub fn restore(&self, recovered: &Recovered) {
        let limits = self.history_limits();
        let mut histories = self.histories.borrow_mut();
        let mut framer = self.framer.borrow_mut();
        let mut embedded = self.embedded.borrow_mut();
        for p in &recovered.partitions {
            for record in &p.tail {
                let item = crate::broker::durable::publish_item(record);
                match framer.frame(&p.key, record.offset, &item) {
                    Ok(event) => histories
                        .entry(p.key.clone())
                        .or_insert_with(|| History::new(limits))
                        .append(Rc::new(event)),
                    Err(e) => tracing::warn!(
                        topic = %p.key.topic,
                        partition = p.key.partition,
                        offset = record.offset,
                        error = %e,
                        "recovered event cannot be framed; skipped"
                    ),
                }
            }
            if shard_for(&p.key.topic, p.key.partition, self.shards()) == self.id {
                let keys = p
                    .tail
                    .iter()
                    .filter_map(|r| r.idempotency_key.as_deref().map(|k| (r.offset, k)));
                embedded.restore(p.key.clone(), p.next_offset, keys);
            }
        }
    }

    /// This shard's sync hooks, built again from `[hooks]` when a reload changed them (a
    /// build that fails keeps the ones in use, and says so).
    pub fn hooks(&self) -> Rc<crate::delivery::hooks::runner::Hooks> {
        let generation = match self.shared.hooks_config.read() {
            Ok(c) => c.0,
            Err(poisoned) => poisoned.into_inner().0,
        };
        {
            let current = self.hooks.borrow();
            if current.0 == generation {
                return current.1.clone();
            }
        }
        let config = match self.shared.hooks_config.read() {
            Ok(c) => c.1.clone(),
            Err(poisoned) => poisoned.into_inner().1.clone(),
        };
        match self.build_hooks(&config) {
            Ok(hooks) => {
                let hooks = Rc::new(hooks);
                *self.hooks.borrow_mut() = (generation, hooks.clone());
                hooks
            }
            Err(e) => {
                tracing::error!(shard = self.id, error = %e, "reloaded hooks cannot be built; the previous ones stay");
                let mut current = self.hooks.borrow_mut();
                current.0 = generation;
                current.1.clone()
            }
        }
    }

    /// Build this shard's hooks from `config`: the native plugins' instances (made once, on
    /// first use), then the configured HTTP hooks.
    pub fn build_hooks(
        &self,
        config: &crate::config::HooksConfig,
    ) -> Result<crate::delivery::hooks::runner::Hooks, String> {
        let native = self.native_hooks.get_or_init(|| {
            self.shared
                .plugins
                .factories
                .iter()
                .map(|make| make(self.id))
                .collect()
        });
        crate::delivery::hooks::build(native, config, self.config())
    }

    /// Use `hooks` (built at start) for hooks generation `generation`.
    pub fn set_hooks(&self, generation: u64, hooks: crate::delivery::hooks::runner::Hooks) {
        *self.hooks.borrow_mut() = (generation, Rc::new(hooks));
    }

    /// Emit a system event: `build` runs only while someone listens to `topic`.
    pub fn emit(&self, topic: SystemTopic, build: impl FnOnce() -> serde_json::Value) {
        if self.shared.system_interest.wanted(topic) {
            self.system_events.push(topic, &build());
        }
    }

    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    pub fn metrics(&self) -> &ShardMetrics {
        &self.shared.metrics[self.id]
    }

    /// This shard's stage latency histograms.
    pub fn latency(&self) -> &crate::telemetry::latency::StageLatencies {
        &self.shared.latency[self.id]
    }

    pub fn shards(&self) -> usize {
        self.shared.metrics.len()
    }

    pub fn epoch(&self) -> u64 {
        self.shared.epoch
    }

    /// A partition for an event without a key: rotate per shard, so load spreads but one
    /// request's events stay together.
    pub fn next_round_robin(&self, partitions: u32) -> u32 {
        let p = self.round_robin.get();
        self.round_robin.set(p.wrapping_add(1));
        p % partitions.max(1)
    }

    fn history_limits(&self) -> HistoryLimits {
        let c = &self.config().memory_broker;
        HistoryLimits {
            max_events: c.history_events,
            max_bytes: c.history_bytes,
        }
    }

    /// Append `items` to `key` (at its owner shard, wherever that is); the ids they got.
    /// Refusals (busy, draining) are counted here, on the shard that read the request, so a
    /// publish forwarded to its owner is counted once.
    pub async fn publish(&self, key: PartitionKey, items: Vec<PublishItem>) -> Reply {
        let result = self.publish_anywhere(key, items).await;
        if matches!(
            result,
            Err(PublishError::Busy(_) | PublishError::ShuttingDown)
        ) {
            ShardMetrics::add(&self.metrics().publishes_refused_total, 1);
        }
        result
    }

    async fn publish_anywhere(&self, key: PartitionKey, items: Vec<PublishItem>) -> Reply {
        if self.shutdown.is_triggered() {
            return Err(PublishError::ShuttingDown);
        }
        let owner = shard_for(&key.topic, key.partition, self.shards());
        let request_id = self.publish_replies.register();
        if owner == self.id {
            // Answered at once in memory mode; after the disk, by the commit task, when durable.
            self.append_as_owner(&key, &items, ReplyTo::Local(request_id));
            return self
                .publish_replies
                .wait(request_id)
                .await
                .unwrap_or(Err(PublishError::ShuttingDown));
        }
        {
            let mut mesh = self.mesh.borrow_mut();
            if mesh.max_backlog() >= self.config().mesh.max_backlog {
                self.publish_replies.cancel(request_id);
                return Err(PublishError::Busy(format!("ring to shard {owner} is full")));
            }
            mesh.send(
                owner,
                MeshMsg::Publish(PublishRequest {
                    from: self.id,
                    request_id,
                    key,
                    items,
                }),
            );
            mesh.ring_pending();
        }
        self.publish_replies
            .wait(request_id)
            .await
            .unwrap_or(Err(PublishError::ShuttingDown))
    }

    /// Start this shard's shutdown (its mesh task saw the process-wide flag): fence every other
    /// shard, then wake the tasks that stop on shutdown. From here on no publish is appended
    /// here (`append_as_owner` reads the same flag), so every event this shard broadcast for an
    /// acknowledged publish is ahead of the fence in each ring.
    pub fn begin_shutdown(&self) {
        {
            let mut mesh = self.mesh.borrow_mut();
            for to in 0..self.shards() {
                if to != self.id {
                    mesh.send(to, MeshMsg::Fence);
                }
            }
            mesh.ring_pending();
        }
        self.shutdown.trigger();
        // Webhook lanes pull rather than being pushed to: wake them so they see the flag.
        if let Some(engine) = self.webhooks.get() {
            engine.stop_all();
        }
        self.event_waiters.wake_all();
    }

    /// Give each item its offset, frame it once and fan it out to every shard, then answer
    /// `reply`. With the durable log, the fan-out and the answer wait for the disk (the
    /// commit task, `shard::commit`).
    fn append_as_owner(&self, key: &PartitionKey, items: &[PublishItem], reply: ReplyTo) {
        match self.append_checked(key, items, reply) {
            Ok(Some(ids)) => self.reply(reply, Ok(ids)),
            Ok(None) => {}
            Err(e) => self.reply(reply, Err(e)),
        }
    }

    /// The append itself: `Some(ids)` when done, `None` when queued for the disk.
    fn append_checked(
        &self,
        key: &PartitionKey,
        items: &[PublishItem],
        reply: ReplyTo,
    ) -> Result<Option<Vec<String>>, PublishError> {
        // Checked at the owner, whichever shard read the request: once the flag is up this shard
        // may have fenced its peers already, and an event appended now could reach a shard that
        // has closed its streams (see `DrainBarrier`). Refusing is always safe.
        if self.shared.shutdown.is_requested() {
            return Err(PublishError::ShuttingDown);
        }
        if self.mesh.borrow().max_backlog() >= self.config().mesh.max_backlog {
            return Err(PublishError::Busy("fan-out backlog is full".into()));
        }
        if self
            .redis_sink
            .get()
            .is_some_and(|sink| sink.refuses(&key.topic))
        {
            return Err(PublishError::Busy(
                "the Redis sink's queue is full (redis.sink_queue_events; Redis is slow or down)"
                    .into(),
            ));
        }
        let appended =
            self.embedded
                .borrow_mut()
                .append(key, items, &mut self.framer.borrow_mut())?;
        let Some(log) = &self.durable else {
            for event in appended.framed {
                self.broadcast(event);
            }
            return Ok(Some(appended.ids));
        };
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let records = appended
            .new
            .iter()
            .map(|&(offset, i)| RecordRef::from_publish(offset, now_ms, &items[i]));
        let first_new = appended.new.first().map(|&(offset, _)| offset);
        if let Err(e) = log.append(key, records, appended.framed, appended.ids, reply) {
            if let Some(first) = first_new {
                self.rollback_offsets(key, first);
            }
            return Err(e);
        }
        Ok(None)
    }

    /// Answer a publish, on this shard or back over the mesh to the one that forwarded it.
    pub fn reply(&self, to: ReplyTo, result: Reply) {
        match to {
            ReplyTo::Local(id) => self.publish_replies.complete(id, result),
            ReplyTo::Remote { from, request_id } => {
                let mut mesh = self.mesh.borrow_mut();
                mesh.send(from, MeshMsg::PublishDone { request_id, result });
                mesh.ring_pending();
            }
        }
    }

    /// Give the offsets of `key` from `first` on out again (they were never written).
    pub fn rollback_offsets(&self, key: &PartitionKey, first: u64) {
        self.embedded.borrow_mut().rollback(key, first);
    }

    /// Frame events with this shard's arena (Kafka records, backfilled events).
    pub fn framer(&self) -> std::cell::RefMut<'_, Framer> {
        self.framer.borrow_mut()
    }

    /// An event for this shard: keep it in history and offer it to local subscribers.
    pub fn on_event(&self, event: FramedEvent) {
        let event = Rc::new(event);
        let limits = self.history_limits();
        self.histories
            .borrow_mut()
            .entry(event.key.clone())
            .or_insert_with(|| History::new(limits))
            .append(event.clone());
        let n = self.subscribers.borrow().deliver(&event, &self.writer);
        ShardMetrics::add(&self.metrics().deliveries_total, n);
        if let Some(engine) = self.webhooks.get() {
            if &*event.key.topic == STATE_TOPIC {
                engine.on_state_event(&event);
            }
        }
        self.event_waiters.on_event(&event.key);
    }

    /// Handle one message from another shard.
    pub fn on_mesh_message(&self, msg: MeshMsg) {
        match msg {
            MeshMsg::Event(event) => self.on_event(event),
            MeshMsg::Publish(req) => {
                let reply = ReplyTo::Remote {
                    from: req.from,
                    request_id: req.request_id,
                };
                self.append_as_owner(&req.key, &req.items, reply);
            }
            MeshMsg::PublishDone { request_id, result } => {
                self.publish_replies.complete(request_id, result);
            }
            MeshMsg::Fence => self.drain_barrier.on_fence(),
        }
    }

    /// Hand a framed event to every shard: the others through the mesh, this one directly.
    /// Called by the partition owner only.
    pub fn broadcast(&self, event: FramedEvent) {
        {
            let mut mesh = self.mesh.borrow_mut();
            for to in 0..self.shards() {
                if to != self.id {
                    mesh.send(to, MeshMsg::Event(event.clone()));
                }
            }
            mesh.ring_pending();
        }
        ShardMetrics::add(&self.metrics().events_published_total, 1);
        if let Some(sink) = self.redis_sink.get() {
            sink.offer(self.metrics(), &event);
        }
        self.on_event(event);
    }
}
