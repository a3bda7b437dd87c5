//! A shard's end of the Redis sink: the owner of a partition offers each of its events here
//! (`ShardContext::broadcast`, whatever the source), and the ones of mirrored topics are queued
//! for the shard's sink plane (`broker::redis::sink_plane`) as stream entries.
//!
//! The queue is the ring to the plane. `overflow = "block"` refuses publishes to mirrored topics
//! (503) and pauses reading Kafka while `sink_queue_events` are waiting, and never drops: events
//! admitted before the bound was reached and still on their way (a durable group commit in
//! flight, a Kafka fetch being fanned out) wait in a spill queue on the shard when the ring is
//! full, and move to the ring as it drains. `"drop"` drops from the mirror and counts.
use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
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

/// How often the plane's counters are copied into the shard's metrics.
const METRICS_EVERY: Duration = Duration::from_millis(500);

/// How often the spill queue is moved to the ring while it holds anything.
const SPILL_EVERY: Duration = Duration::from_millis(5);

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
    /// Block mode: entries that found the ring full, oldest first (see the module's doc).
    spill: RefCell<VecDeque<SinkEntry>>,
    /// The plane's thread, waited for at shutdown so what is queued gets written.
    thread: RefCell<Option<std::thread::JoinHandle<()>>>,
    dropped_logged: std::cell::Cell<bool>,
}

impl RedisSink {
    /// Start the sink plane of `shard` (pinned to `cpu`).
    pub fn start(config: &RedisConfig, shard: usize, cpu: Option<usize>) -> std::io::Result<Self> {
        let (ring, shared, thread) =
            spawn_sink_plane(config, shard, cpu, config.sink_queue_events)?;
        // The ring's own capacity (the plane rounds small ones up), for counting what it holds.
        let capacity = ring.buffer().capacity();
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
            spill: RefCell::new(VecDeque::new()),
            thread: RefCell::new(Some(thread)),
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

    /// Events waiting for Redis (spilled, in the ring, and in the plane's unacknowledged batch).
    pub fn lag(&self) -> usize {
        let queued = self.capacity.saturating_sub(self.ring.borrow().slots());
        self.spill.borrow().len() + queued + self.shared.in_flight.load(Ordering::Relaxed) as usize
    }

    /// With `overflow = "block"`: the queue is at its bound, so the source must wait (a
    /// publish gets 503, the Kafka plane is not drained).
    pub fn is_blocking(&self) -> bool {
        self.config.overflow == SinkOverflow::Block && self.lag() >= self.config.sink_queue_events
    }

    /// Refuse a publish to `topic` while the queue is full (block mode).
    pub fn refuses(&self, topic: &Arc<str>) -> bool {
        self.is_blocking() && self.mirrors(topic)
    }

    /// Queue `event` for its stream when its topic is mirrored.
    pub fn offer(&self, metrics: &ShardMetrics, event: &FramedEvent) {
        if !self.mirrors(&event.key.topic) {
            return;
        }
        let block = self.config.overflow == SinkOverflow::Block;
        if !block && self.lag() >= self.config.sink_queue_events {
            self.dropped(metrics, event);
            return;
        }
        let entry = self.entry(event);
        // Behind what is spilled already, so the stream keeps the partition's order.
        self.flush_spill();
        if !self.spill.borrow().is_empty() {
            self.spill.borrow_mut().push_back(entry);
            return;
        }
        let pushed = self.ring.borrow_mut().push(entry);
        self.shared.pushed();
        if let Err(rtrb::PushError::Full(entry)) = pushed {
            if block {
                self.spill.borrow_mut().push_back(entry);
            } else {
                self.dropped(metrics, event);
            }
        }
    }

    fn dropped(&self, metrics: &ShardMetrics, event: &FramedEvent) {
        ShardMetrics::add(&metrics.redis_sink_dropped_total, 1);
        if !self.dropped_logged.replace(true) {
            tracing::warn!(
                topic = %event.key.topic,
                "redis sink: queue full (redis.sink_queue_events, overflow = \"drop\"); event not mirrored (counted in sluicegate_redis_sink_dropped_total; logged once)"
            );
        }
    }

    /// Move spilled entries to the ring while it has room.
    fn flush_spill(&self) {
        let mut spill = self.spill.borrow_mut();
        if spill.is_empty() {
            return;
        }
        let mut ring = self.ring.borrow_mut();
        while ring.slots() > 0 {
            let Some(entry) = spill.pop_front() else {
                break;
            };
            if let Err(rtrb::PushError::Full(entry)) = ring.push(entry) {
                spill.push_front(entry);
                break;
            }
        }
        drop(ring);
        self.shared.pushed();
    }

    fn entry(&self, event: &FramedEvent) -> SinkEntry {
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
        SinkEntry {
            key: self.stream_key(&event.key.topic, event.key.partition),
            fields,
        }
    }

    /// At shutdown, after the streams drained: hand what is spilled to the plane, tell it to
    /// stop once its queue is written, and wait for it (without blocking the executor) up to
    /// `within`. What Redis could not take by then is logged by the plane.
    pub async fn finish(&self, within: Duration) {
        let deadline = std::time::Instant::now() + within;
        loop {
            self.flush_spill();
            if self.spill.borrow().is_empty() || std::time::Instant::now() >= deadline {
                break;
            }
            glommio::timer::sleep(Duration::from_millis(5)).await;
        }
        let left = self.spill.borrow().len();
        if left > 0 {
            tracing::warn!(left, "redis sink: stopping with events not handed to Redis");
        }
        self.shared.stop();
        let thread = self.thread.borrow_mut().take();
        let Some(thread) = thread else { return };
        while !thread.is_finished() && std::time::Instant::now() < deadline {
            glommio::timer::sleep(Duration::from_millis(10)).await;
        }
        if thread.is_finished() {
            let _ = thread.join();
        } else {
            tracing::warn!(
                lag = self.lag(),
                "redis sink: stopping before Redis took every queued event (server.drain_timeout_ms)"
            );
        }
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
}

/// Copy the sink plane's counters into this shard's metrics, and move spilled entries to the
/// ring, until shutdown (`RedisSink::finish` takes over then).
pub async fn report_metrics(ctx: Rc<ShardContext>) {
    let Some(sink) = ctx.redis_sink.get() else {
        return;
    };
    let mut last_metrics = std::time::Instant::now()
        .checked_sub(METRICS_EVERY)
        .unwrap_or_else(std::time::Instant::now);
    loop {
        sink.flush_spill();
        if last_metrics.elapsed() >= METRICS_EVERY {
            last_metrics = std::time::Instant::now();
            copy_metrics(ctx.metrics(), sink);
        }
        if ctx.shutdown.is_triggered() {
            copy_metrics(ctx.metrics(), sink);
            return;
        }
        let every = if sink.spill.borrow().is_empty() {
            METRICS_EVERY
        } else {
            SPILL_EVERY
        };
        let shutdown = ctx.shutdown.wait();
        let tick = glommio::timer::sleep(every);
        futures_lite::future::or(tick, shutdown).await;
    }
}

fn copy_metrics(m: &ShardMetrics, sink: &RedisSink) {
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
}
