//! A shard's end of the Redis sink: the owner of a partition offers each of its events here
//! (`ShardContext::broadcast`, whatever the source), and the ones of mirrored topics are queued
//! for the shard's sink plane (`broker::redis::sink_plane`) as stream entries.
//!
//! The queue is the ring to the plane. `overflow = "block"` refuses publishes to mirrored topics
//! (503) and pauses reading Kafka while `sink_queue_events` are waiting, so nothing is lost;
//! `"drop"` drops from the mirror and counts. The ring has room past the bound for the events
//! admitted before it was reached and still on their way (a durable group commit in flight).
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::context::ShardContext;
use crate::broker::redis::entry::{self, EntryParts};
use crate::broker::redis::sink_plane::{spawn_sink_plane, SinkEntry, SinkShared};
use crate::broker::FramedEvent;
use crate::config::{RedisConfig, SinkOverflow};
use crate::policy::acl::TopicPattern;
use crate::telemetry::ShardMetrics;

/// Room in the ring past `sink_queue_events` for events admitted before the bound was reached.
const ADMITTED_SLACK: usize = 65_536;

/// How often the plane's counters are copied into the shard's metrics.
const METRICS_EVERY: Duration = Duration::from_millis(500);

pub struct RedisSink {
    ring: RefCell<rtrb::Producer<SinkEntry>>,
    shared: Arc<SinkShared>,
    config: RedisConfig,
    capacity: usize,
    patterns: Vec<TopicPattern>,
    /// Whether a topic is mirrored, decided once per topic.
    mirrored: RefCell<HashMap<Arc<str>, bool>>,
    /// The stream key of each partition written, made once (`key_template` filled in).
    keys: RefCell<HashMap<(Arc<str>, u32), Bytes>>,
    dropped_logged: std::cell::Cell<bool>,
}

impl RedisSink {
    /// Start the sink plane of `shard` (pinned to `cpu`).
    pub fn start(config: &RedisConfig, shard: usize, cpu: Option<usize>) -> std::io::Result<Self> {
        let capacity = config.sink_queue_events.saturating_add(ADMITTED_SLACK);
        let (ring, shared, _thread) = spawn_sink_plane(config, shard, cpu, capacity)?;
        let patterns = config
            .sink_topics
            .iter()
            .filter_map(|p| TopicPattern::parse(p).ok())
            .collect();
        Ok(Self {
            ring: RefCell::new(ring),
            shared,
            config: config.clone(),
            capacity,
            patterns,
            mirrored: RefCell::new(HashMap::new()),
            keys: RefCell::new(HashMap::new()),
            dropped_logged: std::cell::Cell::new(false),
        })
    }

    /// Whether `topic`'s events are mirrored. System topics only by a pattern that names
    /// `gateway.` itself; the webhook state topics (secrets) never.
    pub fn mirrors(&self, topic: &Arc<str>) -> bool {
        if let Some(&known) = self.mirrored.borrow().get(topic) {
            return known;
        }
        let decided = if topic.starts_with("gateway.webhooks") {
            false
        } else if crate::codec::topic::is_reserved(topic) {
            self.config
                .sink_topics
                .iter()
                .zip(&self.patterns)
                .any(|(text, p)| text.starts_with("gateway.") && p.matches(topic, None))
        } else {
            self.patterns.iter().any(|p| p.matches(topic, None))
        };
        self.mirrored.borrow_mut().insert(topic.clone(), decided);
        decided
    }

    /// Events waiting for Redis (in the ring and in the plane's unacknowledged batch).
    pub fn lag(&self) -> usize {
        let queued = self.capacity - self.ring.borrow().slots();
        queued + self.shared.in_flight.load(Ordering::Relaxed) as usize
    }

    /// With `overflow = "block"`: the queue is at its bound, so the source must wait (a
    /// publish gets 503, the Kafka plane is not drained).
    pub fn is_blocking(&self) -> bool {
        self.config.overflow == SinkOverflow::Block && self.lag() >= self.config.sink_queue_events
    }

    /// Refuse a publish of `count` events to `topic` while the queue is full (block mode).
    pub fn refuses(&self, topic: &Arc<str>) -> bool {
        self.is_blocking() && self.mirrors(topic)
    }

    /// Queue `event` for its stream when its topic is mirrored.
    pub fn offer(&self, metrics: &ShardMetrics, event: &FramedEvent) {
        if !self.mirrors(&event.key.topic) {
            return;
        }
        let over = self.config.overflow == SinkOverflow::Drop
            && self.lag() >= self.config.sink_queue_events;
        if over || !self.push(event) {
            ShardMetrics::add(&metrics.redis_sink_dropped_total, 1);
            if !self.dropped_logged.replace(true) {
                tracing::warn!(
                    topic = %event.key.topic,
                    "redis sink: queue full (redis.sink_queue_events); event not mirrored (counted in sluicegate_redis_sink_dropped_total; logged once)"
                );
            }
        }
    }

    fn push(&self, event: &FramedEvent) -> bool {
        let data = event.data_text();
        let headers: Vec<(&str, &[u8])> = event
            .meta
            .headers
            .as_deref()
            .unwrap_or(&[])
            .iter()
            .map(|(n, v)| (&**n, &v[..]))
            .collect();
        let id = event.id_str();
        let fields = entry::encode(&EntryParts {
            id: (!id.is_empty()).then_some(id),
            event_type: event.meta.event_type.as_deref().map(str::as_bytes),
            key: event.meta.key.as_deref(),
            headers,
            data: &data,
        });
        let entry = SinkEntry {
            key: self.stream_key(&event.key.topic, event.key.partition),
            fields,
        };
        let pushed = self.ring.borrow_mut().push(entry).is_ok();
        self.shared.pushed();
        pushed
    }

    /// The stream key of `topic`'s `partition`, shared by its entries.
    fn stream_key(&self, topic: &Arc<str>, partition: u32) -> Bytes {
        let mut keys = self.keys.borrow_mut();
        if let Some(key) = keys.get(&(Arc::clone(topic), partition)) {
            return key.clone();
        }
        let key = Bytes::from(self.config.stream_key(topic, partition));
        keys.insert((Arc::clone(topic), partition), key.clone());
        key
    }

    pub fn stop(&self) {
        self.shared.stop();
    }
}

/// Copy the sink plane's counters into this shard's metrics until shutdown.
pub async fn report_metrics(ctx: Rc<ShardContext>) {
    let Some(sink) = ctx.redis_sink.get() else {
        return;
    };
    loop {
        let m = ctx.metrics();
        let shared = &sink.shared;
        ShardMetrics::set(
            &m.redis_sink_mirrored_total,
            shared.mirrored.load(Ordering::Relaxed),
        );
        ShardMetrics::set(
            &m.redis_sink_retries_total,
            shared.retries.load(Ordering::Relaxed),
        );
        ShardMetrics::set(&m.redis_sink_lag, sink.lag() as u64);
        ShardMetrics::set(
            &m.redis_sink_up,
            u64::from(shared.up.load(Ordering::Relaxed)),
        );
        let refused = shared.refused.swap(0, Ordering::Relaxed);
        if refused > 0 {
            ShardMetrics::add(&m.redis_sink_dropped_total, refused);
        }
        if ctx.shutdown.is_triggered() {
            sink.stop();
            return;
        }
        let shutdown = ctx.shutdown.wait();
        let tick = glommio::timer::sleep(METRICS_EVERY);
        futures_lite::future::or(tick, shutdown).await;
    }
}
