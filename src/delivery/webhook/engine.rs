//! A shard's webhook engine: the table of every subscription (kept by following the state
//! topic), the drivers of the subscriptions this shard owns, the HTTP client they share, and
//! the writers of state, progress, checkpoints and dead letters.
//!
//! Ownership is the pure routing function over the subscription's id, so exactly one shard
//! drives each subscription, and an API request on any shard only has to write a record: every
//! shard reads it back from the state topic, and the owner starts, restarts or stops its driver.
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use glommio::sync::Semaphore;

use super::client::{ClientConfig, HttpClient};
use super::driver::{self, Driver};
use super::message::Message;
use super::model::{
    unix_ms, unix_s, CursorMap, Kind, StateRecord, DEAD_LETTER_TOPIC, DISABLED_TOPIC,
    PROGRESS_TOPIC, STATE_TOPIC,
};
use super::table::{Change, Entry, Table};
use crate::broker::plane::ProduceRecord;
use crate::broker::routing::{partition_for_key, shard_for};
use crate::broker::{FramedEvent, PartitionKey, PublishError, PublishItem};
use crate::codec::http1::client::Response as HttpResponse;
use crate::config::Config;
use crate::policy::retry_schedule::RetrySchedule;
use crate::policy::ssrf::{AddressPolicy, Cidr};
use crate::shard::context::ShardContext;
use crate::telemetry::webhook_status::{AttemptRecord, StatusBoard, SubscriptionStatus};
use crate::telemetry::ShardMetrics;

/// Bytes of an endpoint's last answer kept in a dead letter.
const BODY_KEPT: usize = 4096;
/// Pause before writing a record again after the log refused it.
const WRITE_RETRY: Duration = Duration::from_secs(1);

/// What the engine's parts read from the config, decoded once.
pub struct Settings {
    pub schedule: RetrySchedule,
    /// An event still owed after this long is given up even if its failures did not count
    /// (an endpoint answering 429 forever): twice the schedule's length, at least an hour.
    pub max_event_age: Duration,
    pub timeout: Duration,
    pub disable_after_s: u64,
    /// `{public_url}/hub`, for WebSub `Link` headers.
    pub hub_url: String,
    /// `{public_url}`.
    pub public_url: String,
    pub max_in_flight: usize,
    pub attempts_kept: usize,
    pub progress_interval: Duration,
    pub checkpoint_interval: Duration,
    pub rotation_overlap_s: u64,
    pub lease_default_s: u64,
    pub lease_min_s: u64,
    pub lease_max_s: u64,
}

impl Settings {
    pub fn from_config(config: &Config) -> Result<(Self, ClientConfig), String> {
        let w = &config.webhooks;
        let schedule = RetrySchedule::new(&w.retry_schedule_s, w.retry_jitter)
            .and_then(|s| s.with_max_retry_after(Duration::from_secs(w.max_retry_after_s)))
            .map_err(|e| format!("webhooks.retry_schedule_s: {e}"))?;
        let allow = w
            .allow_cidrs
            .iter()
            .map(|c| {
                c.parse::<Cidr>()
                    .map_err(|e| format!("webhooks.allow_cidrs: `{c}`: {e}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let public_url = if w.public_url.is_empty() {
            format!("http://{}", config.server.listen)
        } else {
            w.public_url.trim_end_matches('/').to_owned()
        };
        let client = ClientConfig {
            allow: AddressPolicy::new(allow),
            connect_timeout: Duration::from_millis(w.connect_timeout_ms),
            idle_timeout: Duration::from_secs(30),
            max_idle_per_origin: w.max_idle_per_origin.max(1),
            max_connections_per_origin: w.max_connections_per_origin.max(1),
            extra_root_pem: w.extra_ca_file.clone(),
            max_body_kept: BODY_KEPT,
        };
        Ok((
            Self {
                max_event_age: (schedule.delays().iter().sum::<Duration>() * 2)
                    .max(Duration::from_secs(3600)),
                schedule,
                timeout: Duration::from_millis(w.timeout_ms),
                disable_after_s: w.disable_after_s,
                hub_url: format!("{public_url}/hub"),
                public_url,
                max_in_flight: w.max_in_flight,
                attempts_kept: w.attempts_kept,
                progress_interval: Duration::from_millis(w.progress_interval_ms.max(10)),
                checkpoint_interval: Duration::from_secs(w.checkpoint_interval_s.max(1)),
                rotation_overlap_s: w.rotation_overlap_s,
                lease_default_s: w.lease_default_s,
                lease_min_s: w.lease_min_s,
                lease_max_s: w.lease_max_s,
            },
            client,
        ))
    }
}

/// One shard's webhook engine.
pub struct WebhookEngine {
    settings: Settings,
    client: HttpClient,
    table: RefCell<Table>,
    /// The subscriptions this shard owns and drives.
    drivers: RefCell<HashMap<String, Rc<Driver>>>,
    /// One (re)start at a time, so a subscription never has two drivers.
    restarts: Semaphore,
    board: Arc<StatusBoard>,
    shard: usize,
    shards: usize,
    partitions: u32,
    /// The shard, for state records applied from `ShardContext::on_event` (set at start).
    ctx: std::cell::OnceCell<std::rc::Weak<ShardContext>>,
}

impl WebhookEngine {
    pub fn new(
        config: &Config,
        shard: usize,
        shards: usize,
        board: Arc<StatusBoard>,
        table: Table,
    ) -> Result<Self, String> {
        let (settings, client_config) = Settings::from_config(config)?;
        let client = HttpClient::new(client_config).map_err(|e| format!("webhooks: {e}"))?;
        Ok(Self {
            settings,
            client,
            table: RefCell::new(table),
            drivers: RefCell::new(HashMap::new()),
            restarts: Semaphore::new(1),
            board,
            shard,
            shards,
            partitions: config.memory_broker.partitions.max(1),
            ctx: std::cell::OnceCell::new(),
        })
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn client(&self) -> &HttpClient {
        &self.client
    }

    /// A copy of one subscription's entry.
    pub fn entry(&self, id: &str) -> Option<Entry> {
        self.table.borrow().get(id).cloned()
    }

    /// Every subscription.
    pub fn entries(&self) -> Vec<Entry> {
        self.table.borrow().iter().cloned().collect()
    }

    /// Delivery status of one subscription.
    pub fn status(&self, id: &str) -> SubscriptionStatus {
        self.board.get(id).unwrap_or_default()
    }

    fn owns(&self, id: &str) -> bool {
        shard_for(id, 0, self.shards) == self.shard
    }

    /// Change a subscription's status on the board.
    pub fn board_update(
        &self,
        id: &str,
        f: impl FnOnce(&mut crate::telemetry::webhook_status::SubscriptionStatus),
    ) {
        self.board.update(id, f);
    }

    /// Record an attempt on the status board.
    pub fn record(
        &self,
        id: &str,
        attempt: AttemptRecord,
        also: impl FnOnce(&mut SubscriptionStatus),
    ) {
        self.board.record(id, attempt, self.settings.attempts_kept);
        self.board.update(id, also);
    }

    /// Start: drive the owned subscriptions, write progress, end leases.
    pub fn start(self: &Rc<Self>, ctx: &Rc<ShardContext>) {
        let _ = self.ctx.set(Rc::downgrade(ctx));
        let owned: Vec<String> = self
            .table
            .borrow()
            .iter()
            .filter(|e| self.owns(&e.sub.id))
            .map(|e| e.sub.id.clone())
            .collect();
        for id in owned {
            self.restart(ctx, id, None);
        }
        let (engine, ctx2) = (self.clone(), ctx.clone());
        glommio::spawn_local(async move { engine.progress_loop(&ctx2).await }).detach();
        let (engine, ctx3) = (self.clone(), ctx.clone());
        glommio::spawn_local(async move { engine.lease_loop(&ctx3).await }).detach();
    }

    /// Stop every driver (shutdown): sleeping retries end now.
    pub fn stop_all(&self) {
        for d in self.drivers.borrow().values() {
            d.stop.set();
        }
    }

    /// An event of the state topic reached this shard (`ShardContext::on_event`, in offset
    /// order, every shard): apply it now, so a write through the API is visible on the shard
    /// that made it as soon as its publish is answered (the owner's ring delivers the event
    /// before the answer).
    pub fn on_state_event(self: &Rc<Self>, event: &FramedEvent) {
        let Some(ctx) = self.ctx.get().and_then(std::rc::Weak::upgrade) else {
            return;
        };
        match serde_json::from_slice::<StateRecord>(&event.data_text()) {
            Ok(record) => self.apply(&ctx, record),
            Err(e) => {
                tracing::warn!(offset = event.offset, error = %e, "unreadable webhook state record; skipped")
            }
        }
    }

    /// Apply one state record: every shard updates its table; the owner restarts or stops the
    /// driver.
    fn apply(self: &Rc<Self>, ctx: &Rc<ShardContext>, record: StateRecord) {
        let id = record.id().to_owned();
        let change = self.table.borrow_mut().apply(record);
        if !self.owns(&id) {
            return;
        }
        match change {
            Change::Defined => self.restart(ctx, id, None),
            Change::Replayed(cursor) => self.restart(ctx, id, Some(cursor)),
            Change::Removed => {
                if let Some(d) = self.drivers.borrow_mut().remove(&id) {
                    d.stop.set();
                    ShardMetrics::sub(&ctx.metrics().webhook_subscriptions, 1);
                }
                self.board.remove(&id);
            }
            Change::Progress | Change::Ignored => {}
        }
    }

    /// Stop the subscription's driver if it runs and start it again from where it was
    /// (`replay` positions moved back), unless it is now disabled or gone.
    fn restart(self: &Rc<Self>, ctx: &Rc<ShardContext>, id: String, replay: Option<CursorMap>) {
        let (engine, ctx) = (self.clone(), ctx.clone());
        glommio::spawn_local(async move {
            let Ok(_turn) = engine.restarts.acquire_permit(1).await else {
                return;
            };
            let old = engine.drivers.borrow_mut().remove(&id);
            let mut cursor = match &old {
                Some(d) => {
                    d.stop.set();
                    d.stopped().await;
                    ShardMetrics::sub(&ctx.metrics().webhook_subscriptions, 1);
                    d.cursor()
                }
                None => engine.entry(&id).map(|e| e.cursor).unwrap_or_default(),
            };
            if let Some(replay) = replay {
                cursor.extend(replay);
            }
            let Some(entry) = engine.entry(&id) else {
                return;
            };
            if entry.sub.disabled.is_some() || ctx.shutdown.is_triggered() {
                return;
            }
            match Driver::new(entry.sub, cursor, engine.settings.max_in_flight) {
                Ok(d) => {
                    let d = Rc::new(d);
                    engine.drivers.borrow_mut().insert(id, d.clone());
                    ShardMetrics::add(&ctx.metrics().webhook_subscriptions, 1);
                    driver::start(&ctx, &engine, &d);
                    engine.board.update(d.id(), |s| s.cursor = d.cursor());
                }
                Err(e) => tracing::error!(subscription = %id, error = %e, "webhook subscription cannot run"),
            }
        })
        .detach();
    }

    /// Write a state record (any shard); the subscription changes when it is read back.
    ///
    /// With Kafka the record is kept in Kafka's state topic (acknowledged first) and then
    /// published to the embedded broker's topic of the same name, which carries it to every
    /// shard (`on_state_event`); without Kafka the embedded (durable) log keeps and carries it.
    pub async fn write_state(
        &self,
        ctx: &ShardContext,
        record: &StateRecord,
    ) -> Result<(), PublishError> {
        if ctx.config().kafka.enabled() {
            let (state, _) = ctx.config().webhooks.kafka_state_topics();
            self.store_in_kafka(ctx, &state, std::slice::from_ref(record))
                .await?;
        }
        self.write(ctx, STATE_TOPIC, record).await
    }

    /// Produce `records` to Kafka's `topic` and wait for the acknowledgement.
    async fn store_in_kafka(
        &self,
        ctx: &ShardContext,
        topic: &str,
        records: &[StateRecord],
    ) -> Result<(), PublishError> {
        let Some(link) = &ctx.broker_link else {
            return Ok(());
        };
        let produce = records
            .iter()
            .filter_map(|r| {
                let json = serde_json::to_vec(r).ok()?;
                Some(ProduceRecord {
                    key: Some(Bytes::copy_from_slice(r.id().as_bytes())),
                    headers: Vec::new(),
                    value: Bytes::from(json),
                    id: None,
                    event_type: None,
                })
            })
            .collect();
        link.produce(topic.into(), produce)
            .await
            .map(|_| ())
            .map_err(|e| PublishError::Storage(format!("kafka: {e}")))
    }

    async fn write(
        &self,
        ctx: &ShardContext,
        topic: &str,
        record: &StateRecord,
    ) -> Result<(), PublishError> {
        let json = serde_json::to_vec(record).map_err(|e| PublishError::Invalid(e.to_string()))?;
        self.publish(
            ctx,
            topic,
            record.id(),
            Some(record.op()),
            Bytes::from(json),
        )
        .await
    }

    async fn publish(
        &self,
        ctx: &ShardContext,
        topic: &str,
        key: &str,
        event_type: Option<&str>,
        data: Bytes,
    ) -> Result<(), PublishError> {
        let partition = partition_for_key(key.as_bytes(), self.partitions);
        let item = PublishItem {
            event_type: event_type.map(Into::into),
            idempotency_key: None,
            data,
            key: Some(Bytes::copy_from_slice(key.as_bytes())),
            headers: vec![(
                "content-type".to_owned(),
                Bytes::from_static(b"application/json"),
            )],
        };
        let key = PartitionKey {
            topic: topic.into(),
            partition,
        };
        ctx.publish(key, vec![item]).await.map(|_| ())
    }

    /// Write `record` until the log takes it, or the shard stops.
    async fn write_until_stored(&self, ctx: &ShardContext, record: &StateRecord) -> bool {
        loop {
            match self.write_state(ctx, record).await {
                Ok(()) => return true,
                Err(PublishError::ShuttingDown) => return false,
                Err(e) => {
                    tracing::warn!(subscription = %record.id(), error = %e, "cannot store a webhook state change; retrying");
                    glommio::timer::sleep(WRITE_RETRY).await;
                }
            }
        }
    }

    /// Disable a subscription (410 from an endpoint, failing too long) and say so on the
    /// system topic.
    pub async fn disable(&self, ctx: &ShardContext, driver: &Driver, reason: String) {
        driver.stop.set();
        let Some(entry) = self.entry(driver.id()) else {
            return;
        };
        let mut sub = entry.sub;
        sub.disabled = Some(reason.clone());
        sub.version += 1;
        ShardMetrics::add(&ctx.metrics().webhook_disabled_total, 1);
        tracing::warn!(subscription = %sub.id, url = %sub.url, %reason, "webhook subscription disabled");
        let event = serde_json::json!({
            "subscription": sub.id, "url": sub.url, "reason": reason, "at": unix_s(),
        });
        let record = StateRecord::Put {
            sub: Box::new(sub),
            cursor: driver.cursor(),
            at: unix_ms(),
        };
        if self.write_until_stored(ctx, &record).await {
            let data = Bytes::from(event.to_string());
            let _ = self
                .publish(ctx, DISABLED_TOPIC, driver.id(), Some("disabled"), data)
                .await;
        }
    }

    /// Remove a subscription (a WebSub callback answered 410, or its lease ended).
    pub async fn remove(&self, ctx: &ShardContext, driver: &Driver, reason: &str) {
        driver.stop.set();
        ShardMetrics::add(&ctx.metrics().webhook_disabled_total, 1);
        tracing::info!(subscription = %driver.id(), url = %driver.sub.url, %reason, "webhook subscription removed");
        let record = StateRecord::Delete {
            id: driver.id().to_owned(),
            at: unix_ms(),
        };
        self.write_until_stored(ctx, &record).await;
    }

    /// Store an event that exhausted its retries in the dead-letter topic; false when the
    /// subscription stopped before it could be stored (the event stays owed).
    pub async fn dead_letter(
        &self,
        ctx: &ShardContext,
        driver: &Driver,
        event: &FramedEvent,
        message: &Message,
        reason: &str,
        last: Option<&HttpResponse>,
    ) -> bool {
        let letter = serde_json::json!({
            "subscription": driver.id(),
            "url": driver.sub.url,
            "webhook_id": message.webhook_id,
            "topic": &*event.key.topic,
            "partition": event.key.partition,
            "offset": event.offset,
            "type": message.event_type,
            "reason": reason,
            "last_status": last.map(|r| r.status),
            "last_response": last.map(|r| String::from_utf8_lossy(&r.body).into_owned()),
            "data": String::from_utf8_lossy(&message.body),
            "at": unix_s(),
        });
        let data = Bytes::from(letter.to_string());
        loop {
            let stored = self
                .publish(
                    ctx,
                    DEAD_LETTER_TOPIC,
                    driver.id(),
                    Some("dead-letter"),
                    data.clone(),
                )
                .await;
            match stored {
                Ok(()) => return true,
                Err(PublishError::ShuttingDown) => return false,
                Err(e) => {
                    tracing::warn!(subscription = %driver.id(), error = %e, "cannot store a dead letter; retrying");
                    if driver.stop.sleep(WRITE_RETRY).await {
                        return false;
                    }
                }
            }
        }
    }

    /// Every `progress_interval`, write the owned subscriptions' moved cursors; every
    /// `checkpoint_interval`, their whole state.
    async fn progress_loop(self: Rc<Self>, ctx: &Rc<ShardContext>) {
        let mut last_checkpoint = std::time::Instant::now();
        // The first checkpoint right after start: what was loaded is written again before
        // retention can take the records it came from.
        let mut checkpoint_due = true;
        loop {
            if ctx.shutdown.is_triggered() {
                return;
            }
            let drivers: Vec<Rc<Driver>> = self.drivers.borrow().values().cloned().collect();
            let mut records = Vec::new();
            let at = unix_ms();
            if checkpoint_due {
                for d in &drivers {
                    if let Some(entry) = self.entry(d.id()) {
                        let _ = d.take_dirty_cursor();
                        records.push(StateRecord::Put {
                            sub: Box::new(entry.sub),
                            cursor: d.cursor(),
                            at,
                        });
                    }
                }
                last_checkpoint = std::time::Instant::now();
            } else {
                for d in &drivers {
                    if let Some(cursor) = d.take_dirty_cursor() {
                        let id = d.id().to_owned();
                        self.board.update(&id, |s| s.cursor = cursor.clone());
                        records.push(StateRecord::Progress { id, cursor, at });
                    }
                }
            }
            // Checkpoints go to the state topic, which keeps every subscription's newest word
            // for as long as its retention (a week by default), whatever the progress volume.
            let topic = if checkpoint_due {
                STATE_TOPIC
            } else {
                PROGRESS_TOPIC
            };
            self.write_batch(ctx, topic, &records).await;
            glommio::timer::sleep(self.settings.progress_interval).await;
            checkpoint_due = last_checkpoint.elapsed() >= self.settings.checkpoint_interval;
        }
    }

    /// Write progress or checkpoint records to `topic`, one publish per partition (with Kafka,
    /// one produce to Kafka's topic: nobody reads them live, only the next start).
    async fn write_batch(&self, ctx: &ShardContext, topic: &str, records: &[StateRecord]) {
        if ctx.config().kafka.enabled() {
            if records.is_empty() {
                return;
            }
            let (state, progress) = ctx.config().webhooks.kafka_state_topics();
            let kafka_topic = if topic == STATE_TOPIC {
                state
            } else {
                progress
            };
            if let Err(e) = self.store_in_kafka(ctx, &kafka_topic, records).await {
                tracing::warn!(error = %e, "cannot store webhook progress in Kafka; will retry");
                for d in self.drivers.borrow().values() {
                    d.mark_dirty();
                }
            }
            return;
        }
        let mut by_partition: BTreeMap<u32, Vec<PublishItem>> = BTreeMap::new();
        for r in records {
            let Ok(json) = serde_json::to_vec(r) else {
                continue;
            };
            let partition = partition_for_key(r.id().as_bytes(), self.partitions);
            by_partition
                .entry(partition)
                .or_default()
                .push(PublishItem {
                    event_type: Some(r.op().into()),
                    idempotency_key: None,
                    data: Bytes::from(json),
                    key: Some(Bytes::copy_from_slice(r.id().as_bytes())),
                    headers: Vec::new(),
                });
        }
        for (partition, items) in by_partition {
            let key = PartitionKey {
                topic: topic.into(),
                partition,
            };
            if let Err(e) = ctx.publish(key, items).await {
                // The next round writes the cursors again (they stay dirty only in memory:
                // mark them so by leaving the in-memory cursor ahead; a crash redelivers).
                tracing::warn!(error = %e, "cannot store webhook progress; will retry");
                for d in self.drivers.borrow().values() {
                    d.mark_dirty();
                }
            }
        }
    }

    /// WebSub leases: remove the owned subscriptions whose lease ended.
    async fn lease_loop(self: Rc<Self>, ctx: &Rc<ShardContext>) {
        loop {
            if ctx.shutdown.is_triggered() {
                return;
            }
            let now = unix_s();
            let expired: Vec<String> = self
                .table
                .borrow()
                .iter()
                .filter(|e| e.sub.kind == Kind::Websub && self.owns(&e.sub.id))
                .filter(|e| e.sub.lease_expires.is_some_and(|t| t <= now))
                .map(|e| e.sub.id.clone())
                .collect();
            for id in expired {
                tracing::info!(subscription = %id, "WebSub lease ended; subscription removed");
                let record = StateRecord::Delete { id, at: unix_ms() };
                ShardMetrics::add(&ctx.metrics().webhook_disabled_total, 1);
                self.write_until_stored(ctx, &record).await;
            }
            glommio::timer::sleep(Duration::from_secs(1)).await;
        }
    }

    /// Where a new subscription to `topics` starts (`latest`): each partition's head.
    pub fn heads(&self, ctx: &ShardContext, topics: &[String]) -> CursorMap {
        let mut cursor = CursorMap::new();
        for t in topics {
            for partition in 0..driver::partition_count(ctx, t) {
                let key = PartitionKey {
                    topic: t.as_str().into(),
                    partition,
                };
                cursor.insert(super::model::cursor_key(&key), driver::head_of(ctx, &key));
            }
        }
        cursor
    }
}

/// What the log holds of the state and progress topics (at start, from recovery).
pub fn load_table(records: impl IntoIterator<Item = Bytes>) -> Table {
    let parsed = records.into_iter().filter_map(|data| {
        serde_json::from_slice::<StateRecord>(&data)
            .map_err(
                |e| tracing::warn!(error = %e, "unreadable webhook state record at start; skipped"),
            )
            .ok()
    });
    Table::load(parsed)
}

/// Whether `sub` is a WebSub subscription of (callback, topic): its id.
pub fn websub_id(callback: &str, topic: &str) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(format!("{callback}\n{topic}").as_bytes());
    let mut id = String::from("ws_");
    for b in &digest[..10] {
        id.push_str(&format!("{b:02x}"));
    }
    id
}
