//! A shard's end of its Kafka broker plane: turn fetched records into framed events (dropping
//! repeats of an idempotency key), send produce and catch-up fetch requests, and track topic
//! metadata and broker state.
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use bytes::Bytes;

use super::context::ShardContext;
use super::replies::Replies;
use crate::broker::framing::Framer;
use crate::broker::plane::{
    BrokerPlane, BrokerState, EventTypeRule, FetchError, Fetched, LogRecord, PlaneCommand,
    PlaneEvent, ProduceError, ProduceRecord, Produced, RecentIds,
};
use crate::broker::Refusal;
use crate::broker::{shared_headers, EventMeta, FramedEvent, PartitionKey};
use crate::config::{KafkaConfig, RedisConfig};
use crate::telemetry::ShardMetrics;
use std::sync::atomic::AtomicU64;

/// Picks one of a shard's metrics, so the link counts into the log's own names.
type MetricOf = fn(&ShardMetrics) -> &AtomicU64;

/// What the link needs to know of the log behind it (`[kafka]` or `[redis]` broker mode).
pub struct LinkSettings {
    /// "kafka" or "redis", in messages.
    pub log: &'static str,
    /// The config key listing the topics ("kafka.topics", "redis.topics").
    pub topics_key: &'static str,
    pub topics: Vec<String>,
    pub rule: EventTypeRule,
    pub type_header: String,
    pub fetch_max_bytes: usize,
    pub dedup_window: usize,
    /// How long one request to the log may take (`kafka.request_timeout_ms`,
    /// `redis.request_timeout_ms`).
    pub request_timeout: std::time::Duration,
    pub skipped: MetricOf,
    pub duplicates: MetricOf,
    pub up: MetricOf,
    pub ready: MetricOf,
}

impl LinkSettings {
    pub fn kafka(config: &KafkaConfig) -> Self {
        Self {
            log: "kafka",
            topics_key: "kafka.topics",
            topics: config.topics.clone(),
            rule: EventTypeRule::new(&config.event_type_header, &config.event_type_field),
            type_header: config.event_type_header.clone(),
            fetch_max_bytes: config.fetch_max_bytes,
            dedup_window: config.dedup_window,
            request_timeout: std::time::Duration::from_millis(config.request_timeout_ms),
            skipped: |m| &m.kafka_records_skipped_total,
            duplicates: |m| &m.kafka_duplicates_dropped_total,
            up: |m| &m.kafka_broker_up,
            ready: |m| &m.kafka_topics_ready,
        }
    }

    /// Redis entries keep the event type in their own `type` field (`LogRecord::event_type`),
    /// so no header rule applies.
    pub fn redis(config: &RedisConfig) -> Self {
        Self {
            log: "redis",
            topics_key: "redis.topics",
            topics: config.topics.clone(),
            rule: EventTypeRule::default(),
            type_header: String::new(),
            // A resume reads about this much per fetch (as `kafka.fetch_max_bytes`' default).
            fetch_max_bytes: 1024 * 1024,
            dedup_window: config.dedup_window,
            request_timeout: std::time::Duration::from_millis(config.request_timeout_ms),
            skipped: |m| &m.redis_records_skipped_total,
            duplicates: |m| &m.redis_duplicates_dropped_total,
            up: |m| &m.redis_broker_up,
            ready: |m| &m.redis_topics_ready,
        }
    }
}

type ProduceReply = Result<Vec<Produced>, ProduceError>;
type FetchReply = Result<Fetched, FetchError>;

/// How a request to the plane ended.
enum Asked<T> {
    Answer(T),
    /// Not handed to the plane (its command ring was full): nothing was done.
    NotSent(String),
    /// Handed over, no answer (shutting down, or past the deadline): the outcome is unknown.
    Unanswered(String),
}

/// Shard-side state of the broker plane (Kafka, or Redis in broker mode).
pub struct BrokerLink {
    plane: RefCell<BrokerPlane>,
    log: &'static str,
    topics_key: &'static str,
    skipped_metric: MetricOf,
    duplicates_metric: MetricOf,
    up_metric: MetricOf,
    ready_metric: MetricOf,
    rule: EventTypeRule,
    /// The record header the event type of a publish is written to ("" = none).
    type_header: String,
    fetch_max_bytes: i32,
    configured: Vec<Arc<str>>,
    /// Partition counts of configured topics, as the plane reported them.
    partitions: RefCell<HashMap<Arc<str>, u32>>,
    topic_errors: RefCell<HashMap<Arc<str>, String>>,
    broker_down: RefCell<Option<String>>,
    produces: Replies<ProduceReply>,
    fetches: Replies<FetchReply>,
    skipped_logged: Cell<bool>,
    /// Per owned partition: idempotency keys seen recently (`kafka.dedup_window` each).
    recent: RefCell<HashMap<(Arc<str>, i32), RecentIds>>,
    dedup_window: usize,
    request_timeout: std::time::Duration,
    duplicate_logged: Cell<bool>,
}

/// Why a Kafka topic cannot be served right now. Its HTTP answer is decided here, in one place
/// ([`TopicUnavailable::status`], [`TopicUnavailable::retry_after`]), as a plain status
/// number: the shard layer names no response type, `delivery` maps it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TopicUnavailable {
    /// Not in `kafka.topics` (or `redis.topics`, named by `key`).
    #[error("topic `{topic}` is not one of {key}")]
    NotConfigured { topic: String, key: &'static str },
    /// Configured, but its partitions are not known (yet): the broker is unreachable, the
    /// topic does not exist, or discovery has not finished.
    #[error("topic `{topic}` is not available yet: {reason}")]
    NotReady { topic: String, reason: String },
}

impl Refusal for TopicUnavailable {
    /// 404 for a topic this gateway does not serve, 503 while its partitions are unknown.
    fn status(&self) -> u16 {
        match self {
            Self::NotConfigured { .. } => 404,
            Self::NotReady { .. } => 503,
        }
    }

    /// Seconds worth waiting before a retry, when a retry may help.
    fn retry_after(&self) -> Option<u32> {
        match self {
            Self::NotConfigured { .. } => None,
            Self::NotReady { .. } => Some(1),
        }
    }
}

impl BrokerLink {
    pub fn new(plane: BrokerPlane, config: LinkSettings) -> Self {
        Self {
            plane: RefCell::new(plane),
            log: config.log,
            topics_key: config.topics_key,
            skipped_metric: config.skipped,
            duplicates_metric: config.duplicates,
            up_metric: config.up,
            ready_metric: config.ready,
            rule: config.rule,
            type_header: config.type_header,
            fetch_max_bytes: i32::try_from(config.fetch_max_bytes).unwrap_or(i32::MAX),
            configured: config
                .topics
                .iter()
                .map(|t| Arc::from(t.as_str()))
                .collect(),
            partitions: RefCell::new(HashMap::new()),
            topic_errors: RefCell::new(HashMap::new()),
            broker_down: RefCell::new(Some("not connected yet".into())),
            produces: Replies::default(),
            fetches: Replies::default(),
            skipped_logged: Cell::new(false),
            recent: RefCell::new(HashMap::new()),
            dedup_window: config.dedup_window,
            request_timeout: config.request_timeout,
            duplicate_logged: Cell::new(false),
        }
    }

    /// The partition count of `topic`, or why a client cannot use it now.
    pub fn partitions(&self, topic: &str) -> Result<u32, TopicUnavailable> {
        if !self.configured.iter().any(|t| &**t == topic) {
            return Err(TopicUnavailable::NotConfigured {
                topic: topic.to_owned(),
                key: self.topics_key,
            });
        }
        if let Some(&n) = self.partitions.borrow().get(topic) {
            return Ok(n);
        }
        let reason = self
            .topic_errors
            .borrow()
            .get(topic)
            .cloned()
            .unwrap_or_else(|| "its partitions are not known yet".into());
        Err(TopicUnavailable::NotReady {
            topic: topic.to_owned(),
            reason,
        })
    }

    /// Idempotency keys remembered per partition (`kafka.dedup_window` or
    /// `redis.dedup_window`), for the backfill's own window.
    pub fn dedup_window(&self) -> usize {
        self.dedup_window
    }

    /// Every configured topic's partitions are known.
    pub fn is_ready(&self) -> bool {
        let known = self.partitions.borrow();
        self.configured.iter().all(|t| known.contains_key(t))
    }

    /// Frame one record as an event of its partition; `None` when its value is not UTF-8 (SSE
    /// carries text only).
    fn frame_record(&self, framer: &mut Framer, record: &LogRecord) -> Option<FramedEvent> {
        let partition = u32::try_from(record.partition).ok()?;
        let offset = u64::try_from(record.offset).ok()?;
        let key = PartitionKey {
            topic: record.topic.clone(),
            partition,
        };
        let meta = EventMeta {
            event_type: self.rule.event_type(record).map(|t| Arc::from(t.as_ref())),
            key: record.key.clone(),
            headers: shared_headers(&record.headers),
        };
        framer.frame_data(&key, offset, &record.value, meta).ok()
    }

    fn skipped(&self, ctx: &ShardContext, record: &LogRecord) {
        ShardMetrics::add((self.skipped_metric)(ctx.metrics()), 1);
        if !self.skipped_logged.replace(true) {
            tracing::warn!(
                log = self.log, topic = %record.topic, partition = record.partition,
                offset = record.offset,
                "record value is not UTF-8 text; SSE cannot carry it, skipped (counted in \
                 sluicegate_{}_records_skipped_total; logged once)", self.log
            );
        }
    }

    /// True when `record` repeats an idempotency key seen recently in its partition: the
    /// owner does not deliver it (the first copy was delivered). Every record with a key
    /// passes through here once, in offset order, so the window is what this shard has read.
    fn is_repeat(&self, ctx: &ShardContext, record: &LogRecord) -> bool {
        let Some(id) = record.idempotency_key() else {
            return false;
        };
        if self.dedup_window == 0 {
            return false;
        }
        let first = self
            .recent
            .borrow_mut()
            .entry((record.topic.clone(), record.partition))
            .or_insert_with(|| RecentIds::new(self.dedup_window))
            .repeat_of(id, record.offset);
        let Some(first) = first else {
            return false;
        };
        ShardMetrics::add((self.duplicates_metric)(ctx.metrics()), 1);
        if !self.duplicate_logged.replace(true) {
            tracing::info!(
                log = self.log, topic = %record.topic, partition = record.partition,
                offset = record.offset, first_offset = first,
                "record repeats an idempotency key (a publisher's retry); not delivered \
                 (counted in sluicegate_{}_duplicates_dropped_total; logged once)", self.log
            );
        }
        true
    }

    /// Remember keys read back from before a partition's start, delivering nothing.
    fn remember_ids(&self, topic: Arc<str>, partition: i32, ids: &[(Bytes, i64)]) {
        if self.dedup_window == 0 {
            return;
        }
        let mut recent = self.recent.borrow_mut();
        let window = recent
            .entry((topic, partition))
            .or_insert_with(|| RecentIds::new(self.dedup_window));
        for (id, offset) in ids {
            window.repeat_of(id, *offset);
        }
    }

    /// Frame a fetched record for one resuming subscriber.
    pub fn frame_for_backfill(
        &self,
        ctx: &ShardContext,
        record: &LogRecord,
    ) -> Option<Rc<FramedEvent>> {
        let framed = self.frame_record(&mut ctx.framer(), record);
        if framed.is_none() {
            self.skipped(ctx, record);
        }
        framed.map(Rc::new)
    }

    fn send(&self, command: PlaneCommand) -> Result<(), String> {
        self.plane
            .borrow_mut()
            .send(command)
            .map_err(|_| format!("the {} plane's command ring is full", self.log))
    }

    /// Produce a batch to `topic` and wait for the broker's acknowledgement.
    pub async fn produce(&self, topic: Arc<str>, records: Vec<ProduceRecord>) -> ProduceReply {
        if let Some(reason) = self.broker_down.borrow().clone() {
            return Err(ProduceError::BrokerDown(reason));
        }
        let request_id = self.produces.register();
        let command = PlaneCommand::Produce {
            request_id,
            topic,
            partition: None,
            records,
        };
        // Once the plane had the command it may have produced it before the gateway stopped,
        // or before its answer got stuck behind records the shard is not draining (a Redis
        // sink at its bound pauses draining): either way the outcome is unknown.
        match self.ask(&self.produces, request_id, command).await {
            Asked::Answer(reply) => reply,
            Asked::NotSent(e) => Err(ProduceError::BrokerDown(e)),
            Asked::Unanswered(why) => Err(ProduceError::Unacknowledged(why)),
        }
    }

    /// Read records of `key` from `offset` back from the broker (a resuming client).
    pub async fn fetch(&self, key: &PartitionKey, offset: u64) -> FetchReply {
        let request_id = self.fetches.register();
        let command = PlaneCommand::Fetch {
            request_id,
            topic: key.topic.clone(),
            partition: i32::try_from(key.partition).unwrap_or(i32::MAX),
            offset: i64::try_from(offset).unwrap_or(i64::MAX),
            max_bytes: self.fetch_max_bytes,
        };
        match self.ask(&self.fetches, request_id, command).await {
            Asked::Answer(reply) => reply,
            Asked::NotSent(e) | Asked::Unanswered(e) => Err(FetchError::BrokerDown(e)),
        }
    }

    /// Send `command` (registered as `request_id` in `replies`) and wait for its answer, at
    /// most twice the log's request timeout plus a second (an answer can take that long when
    /// the plane retries once).
    async fn ask<T>(
        &self,
        replies: &Replies<T>,
        request_id: u64,
        command: PlaneCommand,
    ) -> Asked<T> {
        if let Err(e) = self.send(command) {
            replies.cancel(request_id);
            return Asked::NotSent(e);
        }
        let limit = self.request_timeout * 2 + std::time::Duration::from_secs(1);
        let answer =
            futures_lite::future::or(async { Some(replies.wait(request_id).await) }, async {
                glommio::timer::sleep(limit).await;
                None
            })
            .await;
        replies.cancel(request_id);
        match answer {
            Some(Some(reply)) => Asked::Answer(reply),
            Some(None) => Asked::Unanswered("the gateway is shutting down".into()),
            None => Asked::Unanswered(format!("no answer from the {} plane in time", self.log)),
        }
    }

    /// The record headers of a publish: the event type (under `kafka.event_type_header`) and
    /// the request's `Sluicegate-Header-*` headers.
    pub fn publish_headers(
        &self,
        event_type: Option<&str>,
        extra: &[(String, Bytes)],
    ) -> Vec<(String, Bytes)> {
        let mut headers = extra.to_vec();
        if let (Some(t), false) = (event_type, self.type_header.is_empty()) {
            headers.push((
                self.type_header.clone(),
                Bytes::copy_from_slice(t.as_bytes()),
            ));
        }
        headers
    }

    pub fn stop(&self) {
        let _ = self.plane.borrow_mut().send(PlaneCommand::Shutdown);
    }
}

/// Drain the plane's events into the shard until shutdown; sleeps on the plane's waker.
pub async fn run(ctx: Rc<ShardContext>) {
    let Some(link) = ctx.broker_link.as_ref() else {
        return;
    };
    let mut batch = Vec::with_capacity(256);
    loop {
        if ctx.shutdown.is_triggered() {
            link.stop();
            return;
        }
        // Back-pressure: while the mesh cannot take more, leave records in the plane's ring
        // (the plane then stops fetching) instead of parking them without bound.
        // The same while the Redis sink is at its bound with `overflow = "block"`.
        let sink_blocking = ctx.redis_sink.get().is_some_and(|s| s.is_blocking());
        if sink_blocking || ctx.mesh.borrow().max_backlog() >= ctx.config().mesh.max_backlog {
            glommio::timer::sleep(std::time::Duration::from_millis(1)).await;
            continue;
        }
        let n = link.plane.borrow_mut().drain_into(&mut batch, 256);
        for event in batch.drain(..) {
            handle(&ctx, link, event);
        }
        if n > 0 {
            futures_lite::future::yield_now().await;
            continue;
        }
        let shutdown = ctx.shutdown.wait();
        let events = std::future::poll_fn(|cx| {
            let mut plane = link.plane.borrow_mut();
            plane.set_waker(cx.waker());
            if plane.drain_into(&mut batch, 256) > 0 {
                std::task::Poll::Ready(())
            } else {
                std::task::Poll::Pending
            }
        });
        futures_lite::future::or(events, shutdown).await;
        for event in batch.drain(..) {
            handle(&ctx, link, event);
        }
    }
}

fn handle(ctx: &ShardContext, link: &BrokerLink, event: PlaneEvent) {
    match event {
        PlaneEvent::Records { records, .. } => {
            for record in &records {
                if link.is_repeat(ctx, record) {
                    continue;
                }
                let framed = link.frame_record(&mut ctx.framer(), record);
                match framed {
                    Some(event) => ctx.broadcast(event),
                    None => link.skipped(ctx, record),
                }
            }
        }
        PlaneEvent::SeenIds {
            topic,
            partition,
            ids,
        } => link.remember_ids(topic, partition, &ids),
        PlaneEvent::ProduceDone { request_id, result } => {
            link.produces.complete(request_id, result)
        }
        PlaneEvent::FetchDone { request_id, result } => link.fetches.complete(request_id, result),
        PlaneEvent::BrokerState(BrokerState::Up) => {
            *link.broker_down.borrow_mut() = None;
            ShardMetrics::set((link.up_metric)(ctx.metrics()), 1);
        }
        PlaneEvent::BrokerState(BrokerState::Down { reason }) => {
            // Publishers waiting on a broker that just went away are answered now, not after
            // the request timeout. Their produce may have reached the broker before it went,
            // so the answer is "outcome unknown" (504), never "not written": a retry with the
            // same idempotency key is then delivered once.
            link.produces.complete_all(|| {
                Err(ProduceError::Unacknowledged(format!(
                    "the connection to the broker was lost: {reason}"
                )))
            });
            *link.broker_down.borrow_mut() = Some(reason);
            ShardMetrics::set((link.up_metric)(ctx.metrics()), 0);
        }
        PlaneEvent::Partitions { topic, count, .. } => {
            link.topic_errors.borrow_mut().remove(&topic);
            // Counts only grow; a delayed first announcement must not undo a later one.
            let count = u32::try_from(count).unwrap_or(0);
            let mut known = link.partitions.borrow_mut();
            let entry = known.entry(topic).or_insert(count);
            *entry = (*entry).max(count);
            drop(known);
            ShardMetrics::set(
                (link.ready_metric)(ctx.metrics()),
                u64::from(link.is_ready()),
            );
        }
        PlaneEvent::TopicError { topic, reason } => {
            link.topic_errors.borrow_mut().insert(topic, reason);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_topic_is_404_and_one_not_ready_is_503_with_retry() {
        let unknown = TopicUnavailable::NotConfigured {
            topic: "t".into(),
            key: "kafka.topics",
        };
        assert_eq!((unknown.status(), unknown.retry_after()), (404, None));
        let waiting = TopicUnavailable::NotReady {
            topic: "t".into(),
            reason: "broker down".into(),
        };
        assert_eq!((waiting.status(), waiting.retry_after()), (503, Some(1)));
        assert_eq!(
            waiting.to_string(),
            "topic `t` is not available yet: broker down"
        );
    }
}
