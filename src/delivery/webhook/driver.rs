//! Driving one subscription on its owner shard: a lane per partition reads the partition at
//! the subscription's own pace (`feed`), skips what the filter rejects, and delivers each event
//! in order, retrying on the schedule until it is answered 2xx, dead-lettered, or the
//! subscription goes away. The cursor only moves past an event once it is done with, so a
//! restart resumes from it: at-least-once.
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use glommio::sync::Semaphore;

use super::client::{OutboundRequest, Url};
use super::engine::WebhookEngine;
use super::lane;
use super::message::{Message, SigningKeys};
use super::model::{cursor_key, unix_ms, unix_s, CursorMap, Kind, Subscription};
use super::signal::StopFlag;
use crate::broker::{FramedEvent, PartitionKey};
use crate::codec::topic::is_reserved;
use crate::delivery::filter::EventFilter;
use crate::policy::retry_schedule::{parse_retry_after, AttemptOutcome, Verdict};
use crate::shard::context::ShardContext;
use crate::telemetry::latency::Stage;
use crate::telemetry::system_events::SystemTopic;
use crate::telemetry::webhook_status::AttemptRecord;
use crate::telemetry::ShardMetrics;

/// One running subscription.
pub struct Driver {
    pub sub: Subscription,
    url: Url,
    filter: Option<EventFilter>,
    keys: SigningKeys,
    pub stop: StopFlag,
    /// Per partition, the next offset still owed.
    cursor: RefCell<CursorMap>,
    /// The cursor changed since the last progress record.
    dirty: Cell<bool>,
    in_flight: Semaphore,
    /// Lanes and per-key delivery tasks still running.
    lanes: Cell<usize>,
    lanes_done: StopFlag,
    /// Unix seconds of the first failure since the last success.
    failing_since: Cell<Option<u64>>,
    /// A small xorshift state for retry jitter (no shared RNG, no dependency).
    rng: Cell<u64>,
}

impl Driver {
    pub fn new(sub: Subscription, cursor: CursorMap, max_in_flight: usize) -> Result<Self, String> {
        let url = Url::parse(&sub.url).map_err(|e| e.to_string())?;
        let filter = EventFilter::from_fields(
            (!sub.filter.types.is_empty())
                .then(|| sub.filter.types.join(","))
                .as_deref(),
            sub.filter.key.as_deref(),
            sub.filter.headers.clone(),
        );
        let keys = SigningKeys::of(&sub)?;
        let seed = unix_ms() ^ (sub.id.len() as u64).rotate_left(17) ^ 0x9e37_79b9_7f4a_7c15;
        Ok(Self {
            sub,
            url,
            filter,
            keys,
            stop: StopFlag::default(),
            cursor: RefCell::new(cursor),
            dirty: Cell::new(false),
            in_flight: Semaphore::new(max_in_flight.max(1) as u64),
            lanes: Cell::new(0),
            lanes_done: StopFlag::default(),
            failing_since: Cell::new(None),
            rng: Cell::new(seed | 1),
        })
    }

    pub fn id(&self) -> &str {
        &self.sub.id
    }

    pub fn cursor(&self) -> CursorMap {
        self.cursor.borrow().clone()
    }

    /// The cursor, when it changed since the last call.
    pub fn take_dirty_cursor(&self) -> Option<CursorMap> {
        self.dirty.replace(false).then(|| self.cursor())
    }

    /// Write the cursor with the next progress round (the last write failed).
    pub fn mark_dirty(&self) {
        self.dirty.set(true);
    }

    /// Wait until every lane has stopped (after `stop`).
    pub async fn stopped(&self) {
        while self.lanes.get() > 0 {
            self.lanes_done.sleep(Duration::from_millis(200)).await;
        }
    }

    fn next_random(&self) -> u64 {
        let mut x = self.rng.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng.set(x);
        x
    }

    pub fn filter(&self) -> Option<&EventFilter> {
        self.filter.as_ref()
    }

    /// A lane or a delivery task of this driver started (a replacement waits for all of
    /// them to end, so a partition never has two senders).
    pub fn task_started(&self) {
        self.lanes.set(self.lanes.get() + 1);
    }

    pub fn task_ended(&self) {
        self.lanes.set(self.lanes.get() - 1);
        if self.lanes.get() == 0 {
            self.lanes_done.set();
        }
    }

    pub fn done_with(&self, key: &PartitionKey, next: u64) {
        self.cursor.borrow_mut().insert(cursor_key(key), next);
        self.dirty.set(true);
    }
}

/// Partitions of `topic` when known: Kafka's count for a Kafka topic (`None` until the
/// plane has its metadata), the embedded broker's otherwise (the gateway's own topics always).
pub fn known_partitions(ctx: &ShardContext, topic: &str) -> Option<u32> {
    match &ctx.broker_link {
        Some(link) if !crate::codec::topic::is_reserved(topic) => link.partitions(topic).ok(),
        _ => Some(ctx.config().memory_broker.partitions.max(1)),
    }
}

/// Partitions of `topic`, the embedded broker's count while Kafka's is not known (only for
/// requests: a driver waits for the real count).
pub fn partition_count(ctx: &ShardContext, topic: &str) -> u32 {
    known_partitions(ctx, topic).unwrap_or(ctx.config().memory_broker.partitions.max(1))
}

/// How often a driver looks again for a Kafka topic's partitions after a start.
const PARTITIONS_POLL: Duration = Duration::from_millis(100);

/// Start a lane per partition of the subscription's topics (for a Kafka topic, once the
/// plane knows its partitions: right after a start it may not yet).
pub fn start(ctx: &Rc<ShardContext>, engine: &Rc<WebhookEngine>, driver: &Rc<Driver>) {
    for topic in &driver.sub.topics {
        let (ctx, engine, driver, topic) =
            (ctx.clone(), engine.clone(), driver.clone(), topic.clone());
        driver.task_started();
        glommio::spawn_local(async move {
            loop {
                if let Some(n) = known_partitions(&ctx, &topic) {
                    start_lanes(&ctx, &engine, &driver, &topic, n);
                    break;
                }
                if driver.stop.sleep(PARTITIONS_POLL).await || ctx.shutdown.is_triggered() {
                    break;
                }
            }
            driver.task_ended();
        })
        .detach();
    }
}

fn start_lanes(
    ctx: &Rc<ShardContext>,
    engine: &Rc<WebhookEngine>,
    driver: &Rc<Driver>,
    topic: &str,
    partitions: u32,
) {
    for partition in 0..partitions {
        let key = PartitionKey {
            topic: topic.into(),
            partition,
        };
        let from = driver
            .cursor
            .borrow()
            .get(&cursor_key(&key))
            .copied()
            .unwrap_or_else(|| head_of(ctx, &key));
        driver.done_with(&key, from);
        driver.task_started();
        let (ctx, engine, driver) = (ctx.clone(), engine.clone(), driver.clone());
        glommio::spawn_local(async move {
            lane::run(&ctx, &engine, &driver, key, from).await;
            driver.task_ended();
        })
        .detach();
    }
}

/// Where a partition's next event will be: a new subscription starts there.
pub fn head_of(ctx: &ShardContext, key: &PartitionKey) -> u64 {
    ctx.histories.borrow().get(key).map_or(0, |h| h.head())
}

pub enum Delivery {
    /// Answered 2xx or dead-lettered: move on.
    Done,
    /// The subscription stopped (deleted, changed, disabled, gone, shutdown): leave the
    /// cursor where it is.
    Stopped,
}

/// Deliver one event, retrying on the schedule.
pub async fn deliver(
    ctx: &Rc<ShardContext>,
    engine: &Rc<WebhookEngine>,
    driver: &Rc<Driver>,
    event: &Rc<FramedEvent>,
) -> Delivery {
    let message = Message::of(ctx.epoch(), event);
    let settings = engine.settings();
    let mut counted = 0u32;
    let mut attempt = 0u32;
    let first_try = Instant::now();
    loop {
        if driver.stop.is_set() || ctx.shutdown.is_triggered() {
            return Delivery::Stopped;
        }
        let Ok(permit) = driver.in_flight.acquire_permit(1).await else {
            return Delivery::Stopped;
        };
        let now = unix_s();
        let headers = message.headers(&driver.sub, &driver.keys, &settings.hub_url, now);
        let header_refs: Vec<(&str, &str)> = headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let request = OutboundRequest {
            method: "POST",
            url: &driver.url,
            headers: &header_refs,
            body: &message.body,
        };
        let started_ms = unix_ms();
        let started = Instant::now();
        // No system events about deliveries of system events: a webhook on
        // `gateway.webhook.invoked` would otherwise feed itself.
        let tell = !is_reserved(&event.key.topic);
        let about = |attempt: u32| {
            serde_json::json!({
                "subscription": driver.id(),
                "url": driver.sub.url,
                "webhook_id": message.webhook_id,
                "topic": message.topic,
                "attempt": attempt,
            })
        };
        if tell {
            ctx.emit(SystemTopic::WebhookInvoking, || about(attempt + 1));
        }
        let result = engine.client().send(&request, settings.timeout).await;
        let latency = started.elapsed();
        drop(permit);
        attempt += 1;
        ctx.latency().record(Stage::WebhookAttempt, latency);
        ShardMetrics::add(&ctx.metrics().webhook_attempts_total, 1);
        let outcome = match &result {
            Ok(resp) => AttemptOutcome::Status {
                status: resp.status,
                retry_after: resp
                    .header("retry-after")
                    .and_then(|v| parse_retry_after(v, now as i64)),
            },
            Err(_) => AttemptOutcome::Failed,
        };
        let mut verdict = settings
            .schedule
            .judge(&outcome, counted, &mut || driver.next_random());
        if matches!(verdict, Verdict::Retry { .. }) && first_try.elapsed() > settings.max_event_age
        {
            verdict = Verdict::GiveUp {
                reason: format!(
                    "gave up after {} s of retries ({attempt} attempts; the last ones did not count, e.g. 429)",
                    first_try.elapsed().as_secs()
                ),
            };
        }
        let mut record = AttemptRecord {
            at_ms: started_ms,
            webhook_id: message.webhook_id.clone(),
            attempt,
            status: result.as_ref().ok().map(|r| r.status),
            error: result.as_ref().err().map(|e| e.to_string()),
            latency_ms: latency.as_secs_f64() * 1000.0,
            outcome: "delivered",
            retry_in_s: None,
        };
        if tell {
            let failed = !matches!(verdict, Verdict::Delivered);
            let topic = if failed {
                SystemTopic::WebhookInvocationFailed
            } else {
                SystemTopic::WebhookInvoked
            };
            ctx.emit(topic, || {
                let mut e = about(attempt);
                e["status"] = serde_json::json!(record.status);
                e["latency_ms"] = serde_json::json!(record.latency_ms);
                if failed {
                    e["error"] = serde_json::json!(record.error);
                    let (next, gave_up) = match &verdict {
                        Verdict::Retry { after, .. } => (Some(after.as_secs_f64()), false),
                        _ => (None, true),
                    };
                    e["next_retry_s"] = serde_json::json!(next);
                    e["gave_up"] = serde_json::json!(gave_up);
                }
                e
            });
        }
        match verdict {
            Verdict::Delivered => {
                ShardMetrics::add(&ctx.metrics().webhook_delivered_total, 1);
                driver.failing_since.set(None);
                engine.record(driver.id(), record, |s| s.failing_since = None);
                return Delivery::Done;
            }
            Verdict::Retry { after, counts } => {
                ShardMetrics::add(&ctx.metrics().webhook_failures_total, 1);
                if counts {
                    counted += 1;
                }
                let since = *driver.failing_since.get().get_or_insert(now);
                driver.failing_since.set(Some(since));
                record.outcome = "retry";
                record.retry_in_s = Some(after.as_secs_f64());
                engine.record(driver.id(), record, |s| s.failing_since = Some(since));
                if now.saturating_sub(since) >= settings.disable_after_s {
                    let reason = format!(
                        "failing since {since} (Unix s) without a success for {} s",
                        settings.disable_after_s
                    );
                    engine.disable(ctx, driver, reason).await;
                    return Delivery::Stopped;
                }
                if driver.stop.sleep(after).await {
                    return Delivery::Stopped;
                }
            }
            Verdict::GiveUp { reason } => {
                ShardMetrics::add(&ctx.metrics().webhook_failures_total, 1);
                ShardMetrics::add(&ctx.metrics().webhook_dead_letters_total, 1);
                record.outcome = "dead-letter";
                engine.record(driver.id(), record, |_| {});
                let last = result.as_ref().ok();
                if !engine
                    .dead_letter(ctx, driver, event, &message, &reason, last)
                    .await
                {
                    // Not stored (the log refused it): keep the event owed rather than lose it.
                    return Delivery::Stopped;
                }
                return Delivery::Done;
            }
            Verdict::Gone => {
                ShardMetrics::add(&ctx.metrics().webhook_failures_total, 1);
                record.outcome = "gone";
                engine.record(driver.id(), record, |_| {});
                match driver.sub.kind {
                    Kind::Websub => {
                        engine
                            .remove(ctx, driver, "the callback answered 410 Gone")
                            .await
                    }
                    Kind::Endpoint => {
                        engine
                            .disable(ctx, driver, "the endpoint answered 410 Gone".to_owned())
                            .await
                    }
                }
                return Delivery::Stopped;
            }
        }
    }
}
