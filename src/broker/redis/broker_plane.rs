//! Broker mode's plane: Redis streams are the log of `[redis] topics`. It speaks the same
//! [`PlaneEvent`]/[`PlaneCommand`] protocol as the Kafka plane, so the shard's link, the publish
//! path, resume backfill and webhook lanes run on it unchanged.
//!
//! - Live reading: one blocking `XREAD` over every partition this shard owns, on a client of
//!   its own (a blocked connection holds up whatever is queued behind it), from where it left
//!   off, so a reconnect resumes from the exact next entry.
//! - Produce: `XADD key MAXLEN ~ n 0-* fields` per record, pipelined on the command client,
//!   answered after Redis replied (the offset is the entry's sequence number).
//! - Catch-up fetch: `XRANGE` from the asked offset, with the stream's first and last entries
//!   to tell "trimmed" (a `reset` for the client) from "caught up".
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use fred::interfaces::StreamsInterface;
use fred::prelude::Client;
use fred::types::Value;

use super::conn::{self, describe, is_transport, ConnSettings};
use super::entry::{self, read_after, stream_id_of, EntryParts};
use super::reply;
use crate::broker::plane::events::combine_produce_errors;
use crate::broker::plane::sink::{serve_commands, EventSink, Shared};
use crate::broker::plane::{
    handle, BrokerPlane, BrokerState, FetchError, Fetched, LogRecord, PlaneCommand, PlaneEvent,
    ProduceError, ProduceRecord, Produced, ID_HEADER,
};
use crate::broker::routing::{partition_for_key, shard_for};
use crate::config::RedisConfig;

/// Seeds the backoff jitter differently per plane.
static SEED: AtomicU64 = AtomicU64::new(0x5eed);

/// `[redis]` as this plane uses it.
#[derive(Clone, Debug)]
struct Settings {
    conn: ConnSettings,
    shard: usize,
    topics: Vec<Arc<str>>,
    partitions: u32,
    owned: Vec<(Arc<str>, u32)>,
    config: RedisConfig,
}

/// Start the broker-mode Redis plane of `shard` (of `shards`), pinned to `cpu` when given.
pub fn spawn_broker_plane(
    config: &RedisConfig,
    shard: usize,
    shards: usize,
    cpu: Option<usize>,
) -> std::io::Result<(BrokerPlane, JoinHandle<()>)> {
    let topics: Vec<Arc<str>> = config
        .topics
        .iter()
        .map(|t| Arc::from(t.as_str()))
        .collect();
    let owned = topics
        .iter()
        .flat_map(|t| (0..config.partitions).map(move |p| (Arc::clone(t), p)))
        .filter(|(t, p)| shard_for(t, *p, shards.max(1)) == shard)
        .collect();
    let settings = Settings {
        conn: ConnSettings::from_config(config),
        shard,
        topics,
        partitions: config.partitions,
        owned,
        config: config.clone(),
    };
    handle::spawn(
        format!("redis-{shard}"),
        shard,
        cpu,
        config.ring_capacity,
        move |sink, commands, shared| run(settings, sink, commands, shared),
    )
}

/// What the plane's tasks share.
struct Inner {
    settings: Settings,
    sink: EventSink,
    shared: Arc<Shared>,
    client: RefCell<Option<Client>>,
    /// The last state told to the shard (`None`: nothing yet).
    told_up: Cell<Option<bool>>,
    round_robin: Cell<u32>,
    missing_logged: Cell<bool>,
}

impl Inner {
    async fn report(&self, up: bool, reason: impl FnOnce() -> String) {
        if self.told_up.get() == Some(up) {
            return;
        }
        self.told_up.set(Some(up));
        let state = if up {
            tracing::info!(shard = self.settings.shard, "redis: connected");
            BrokerState::Up
        } else {
            let reason = reason();
            tracing::warn!(shard = self.settings.shard, %reason, "redis: unavailable; retrying");
            BrokerState::Down { reason }
        };
        self.sink.push(PlaneEvent::BrokerState(state)).await;
    }

    fn key(&self, topic: &str, partition: u32) -> String {
        self.settings.config.stream_key(topic, partition)
    }

    fn stopping(&self) -> bool {
        self.shared.is_shutting_down()
    }
}

async fn run(
    settings: Settings,
    sink: EventSink,
    mut commands: rtrb::Consumer<PlaneCommand>,
    shared: Arc<Shared>,
) {
    let inner = Rc::new(Inner {
        settings,
        sink,
        shared,
        client: RefCell::new(None),
        told_up: Cell::new(None),
        round_robin: Cell::new(0),
        missing_logged: Cell::new(false),
    });
    let connector = tokio::task::spawn_local(connect_commands(Rc::clone(&inner)));
    let reader = tokio::task::spawn_local(read_live(Rc::clone(&inner)));
    command_loop(&inner, &mut commands).await;
    connector.abort();
    reader.abort();
    let client = inner.client.borrow_mut().take();
    if let Some(client) = client {
        let _ = fred::interfaces::ClientLike::quit(&client).await;
    }
    tracing::debug!(shard = inner.settings.shard, "redis plane stopped");
}

/// Connect the command client, then tell the shard the topics' partitions (known from the
/// configuration: Redis streams have no partition metadata).
async fn connect_commands(inner: Rc<Inner>) {
    let Some(client) = connect(&inner, Duration::ZERO).await else {
        return;
    };
    *inner.client.borrow_mut() = Some(client.clone());
    inner.report(true, String::new).await;
    tokio::task::spawn_local(watch_health(Rc::clone(&inner), client));
    // A shard reading no partition is ready once it can produce; the others say so when
    // their reader knows where each stream ends (`read_live`).
    if inner.settings.owned.is_empty() {
        tell_partitions(&inner).await;
    }
}

/// While the shard believes Redis is down it refuses publishes without asking the plane, so
/// nothing else would ever find out that Redis came back: ping it (with backoff) until it
/// answers, then say so. Reading, when this shard reads anything, reports the same on its own.
async fn watch_health(inner: Rc<Inner>, client: Client) {
    let mut backoff = inner
        .settings
        .conn
        .backoff(SEED.fetch_add(1, Ordering::Relaxed));
    while !inner.stopping() {
        if inner.told_up.get() == Some(false) {
            match fred::interfaces::ClientLike::ping::<Value>(&client, None).await {
                Ok(_) => {
                    backoff.reset();
                    inner.report(true, String::new).await;
                }
                Err(e) => inner.report(false, || describe(&e)).await,
            }
            tokio::time::sleep(backoff.next_delay()).await;
        } else {
            tokio::time::sleep(HEALTH_IDLE_CHECK).await;
        }
    }
}

/// How often the health watcher looks at the reported state while Redis is up.
const HEALTH_IDLE_CHECK: Duration = Duration::from_millis(200);

/// Tell the shard the topics' partitions (known from the configuration: Redis streams have no
/// partition metadata). Until then the shard answers 503 for the topics and `/readyz` waits, so
/// no client subscribes before live reading has a position.
async fn tell_partitions(inner: &Inner) {
    let count = i32::try_from(inner.settings.partitions).unwrap_or(i32::MAX);
    for topic in &inner.settings.topics {
        let owned = inner
            .settings
            .owned
            .iter()
            .filter(|(t, _)| t == topic)
            .map(|(_, p)| i32::try_from(*p).unwrap_or(i32::MAX))
            .collect();
        let event = PlaneEvent::Partitions {
            topic: Arc::clone(topic),
            count,
            owned,
        };
        if !inner.sink.push(event).await {
            return;
        }
    }
}

async fn command_loop(inner: &Rc<Inner>, commands: &mut rtrb::Consumer<PlaneCommand>) {
    serve_commands(commands, &inner.shared, |command| match command {
        PlaneCommand::Produce {
            request_id,
            topic,
            partition,
            records,
        } => {
            let inner = Rc::clone(inner);
            tokio::task::spawn_local(async move {
                let result = produce(&inner, &topic, partition, records).await;
                let event = PlaneEvent::ProduceDone { request_id, result };
                inner.sink.push(event).await;
            });
        }
        PlaneCommand::Fetch {
            request_id,
            topic,
            partition,
            offset,
            ..
        } => {
            let inner = Rc::clone(inner);
            tokio::task::spawn_local(async move {
                let result = fetch(&inner, &topic, partition, offset).await;
                let event = PlaneEvent::FetchDone { request_id, result };
                inner.sink.push(event).await;
            });
        }
        PlaneCommand::Shutdown => {}
    })
    .await;
}

/// Connect, retrying with backoff and telling the shard the broker is down meanwhile; `None`
/// when the plane stops first.
async fn connect(inner: &Inner, extra_timeout: Duration) -> Option<Client> {
    let mut backoff = inner
        .settings
        .conn
        .backoff(SEED.fetch_add(1, Ordering::Relaxed));
    while !inner.stopping() {
        match conn::try_connect(&inner.settings.conn, extra_timeout).await {
            Ok(client) => return Some(client),
            Err(reason) => inner.report(false, || reason).await,
        }
        tokio::time::sleep(backoff.next_delay()).await;
    }
    None
}

fn client(inner: &Inner) -> Option<Client> {
    inner.client.borrow().clone()
}

/// The partition of each record: by key hash, else by idempotency key hash (a retry lands
/// where its first attempt did), else round robin; as the Kafka plane and the embedded broker.
fn choose_partition(inner: &Inner, record: &ProduceRecord) -> u32 {
    let count = inner.settings.partitions.max(1);
    match record.key.as_ref().or(record.id.as_ref()) {
        Some(key) => partition_for_key(key, count),
        None => {
            let next = inner.round_robin.get().wrapping_add(1);
            inner.round_robin.set(next);
            next % count
        }
    }
}

async fn produce(
    inner: &Inner,
    topic: &Arc<str>,
    partition: Option<i32>,
    records: Vec<ProduceRecord>,
) -> Result<Vec<Produced>, ProduceError> {
    let Some(client) = client(inner) else {
        return Err(ProduceError::BrokerDown(
            "not connected to redis yet".into(),
        ));
    };
    if !inner.settings.topics.iter().any(|t| t == topic) {
        return Err(ProduceError::UnknownTopic(format!(
            "topic `{topic}` is not one of redis.topics"
        )));
    }
    let pipeline = client.pipeline();
    let mut targets = Vec::with_capacity(records.len());
    for record in &records {
        let target = match partition {
            Some(p) => u32::try_from(p).unwrap_or(0),
            None => choose_partition(inner, record),
        };
        targets.push(target);
        let mut headers: Vec<(&str, &[u8])> = record
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), &v[..]))
            .collect();
        if let Some(id) = &record.id {
            headers.push((ID_HEADER, &id[..]));
        }
        let fields = entry::encode(&EntryParts {
            id: None,
            event_type: record.event_type.as_deref(),
            key: record.key.as_deref(),
            headers,
            data: &record.value,
        });
        let key = inner.key(topic, target);
        // Queuing in a pipeline only buffers the command; an error here is an argument
        // error, before anything was sent.
        // NOMKSTREAM: a stream that is gone (Redis lost its data) is not silently begun
        // again at 0-1 under readers positioned past it; see `ensure_streams`.
        let queued = pipeline
            .xadd::<Value, _, _, _, _>(key, true, cap(&inner.settings.config), "0-*", fields)
            .await;
        if let Err(e) = queued {
            return Err(ProduceError::Rejected(describe(&e)));
        }
    }
    let answers = conn::send_pipeline(&client, &pipeline).await;
    let mut out = Vec::with_capacity(records.len());
    let mut errors = Vec::new();
    let mut some_written = false;
    for (target, answer) in targets.iter().zip(answers) {
        let partition = i32::try_from(*target).unwrap_or(i32::MAX);
        match answer {
            Ok(Value::Null) => {
                if !inner.missing_logged.replace(true) {
                    tracing::error!(%topic, partition, "redis: the partition's stream does not exist (did Redis lose its data?); publishes to it are refused until the gateways restart, which begins it again (logged once)");
                }
                errors.push(ProduceError::BrokerDown(format!(
                    "the stream of {topic} partition {partition} is missing in Redis (was its data lost?); restart the gateways to begin it again"
                )));
            }
            Ok(value) => {
                let id = value.as_str().map(|s| s.to_string()).unwrap_or_default();
                match entry::offset_of(&id) {
                    Ok(offset) => {
                        some_written = true;
                        out.push(Produced {
                            partition,
                            offset: i64::try_from(offset).unwrap_or(i64::MAX),
                        });
                    }
                    Err(e) => errors.push(ProduceError::Rejected(e.to_string())),
                }
            }
            Err(e) if is_transport(&e) => {
                inner.report(false, || describe(&e)).await;
                errors.push(ProduceError::Unacknowledged(describe(&e)));
            }
            Err(e) => errors.push(ProduceError::Rejected(describe(&e))),
        }
    }
    if errors.is_empty() && out.len() < records.len() {
        errors.push(ProduceError::Unacknowledged(
            "redis answered fewer commands than were sent".into(),
        ));
    }
    match combine_produce_errors(errors, some_written) {
        Some(err) => Err(err),
        None => {
            inner.report(true, String::new).await;
            Ok(out)
        }
    }
}

/// `MAXLEN ~ n`, or no trimming for 0.
pub(super) fn cap(config: &RedisConfig) -> fred::types::streams::XCap {
    let n = i64::try_from(config.maxlen).unwrap_or(i64::MAX);
    if n == 0 {
        return None::<()>.into();
    }
    ("MAXLEN", "~", n)
        .try_into()
        .unwrap_or_else(|_| None::<()>.into())
}

/// The first and next offsets of a stream (`(0, 0)` when it is empty or missing).
fn bounds(first: Value, last: Value) -> Result<(u64, u64), String> {
    let first = reply::entries(first)?;
    let last = reply::entries(last)?;
    let (Some((first_id, _)), Some((last_id, _))) = (first.first(), last.first()) else {
        return Ok((0, 0));
    };
    let first = entry::offset_of(first_id).map_err(|e| e.to_string())?;
    let last = entry::offset_of(last_id).map_err(|e| e.to_string())?;
    Ok((first, last + 1))
}

async fn fetch(
    inner: &Inner,
    topic: &Arc<str>,
    partition: i32,
    offset: i64,
) -> Result<Fetched, FetchError> {
    let Some(client) = client(inner) else {
        return Err(FetchError::BrokerDown("not connected to redis yet".into()));
    };
    let p = u32::try_from(partition).map_err(|_| FetchError::Failed("bad partition".into()))?;
    let from = u64::try_from(offset).unwrap_or(0);
    let key = inner.key(topic, p);
    let count = Some(inner.settings.config.read_count);
    let pipeline = client.pipeline();
    let queued = [
        pipeline
            .xrange::<Value, _, _, _>(key.as_str(), stream_id_of(from), "+", count)
            .await,
        pipeline
            .xrange::<Value, _, _, _>(key.as_str(), "-", "+", Some(1))
            .await,
        pipeline
            .xrevrange::<Value, _, _, _>(key.as_str(), "+", "-", Some(1))
            .await,
    ];
    if let Some(Err(e)) = queued.into_iter().find(Result::is_err) {
        return Err(FetchError::Failed(describe(&e)));
    }
    let mut answers = conn::send_pipeline(&client, &pipeline).await.into_iter();
    let mut next = || match answers.next() {
        Some(Ok(v)) => Ok(v),
        Some(Err(e)) if is_transport(&e) => Err(FetchError::BrokerDown(describe(&e))),
        Some(Err(e)) => Err(FetchError::Failed(describe(&e))),
        None => Err(FetchError::Failed("redis answered fewer commands".into())),
    };
    let (range, first, last) = (next()?, next()?, next()?);
    let (earliest, latest) = bounds(first, last).map_err(FetchError::Failed)?;
    let entries = reply::entries(range).map_err(FetchError::Failed)?;
    let mut records = Vec::with_capacity(entries.len());
    for (id, fields) in entries {
        match entry::decode(topic, partition, &id, fields) {
            Ok(record) => records.push(record),
            // An entry without data is skipped; a foreign id ends the read (nothing after
            // it has an offset).
            Err(entry::EntryError::NoData(_)) => {}
            Err(e) => return Err(FetchError::Failed(e.to_string())),
        }
    }
    let out_of_range = FetchError::OffsetOutOfRange {
        earliest: i64::try_from(earliest).unwrap_or(i64::MAX),
        latest: i64::try_from(latest).unwrap_or(i64::MAX),
    };
    // Below what the stream keeps (trimmed), or past its end (the stream was lost and began
    // again): the client's cursor cannot continue here.
    if (latest > 0 && from < earliest) || from > latest {
        return Err(out_of_range);
    }
    Ok(Fetched {
        records,
        high_watermark: i64::try_from(latest).unwrap_or(i64::MAX),
    })
}

/// Where each owned partition's live reading stands.
struct Positions {
    /// Stream key -> (topic, partition, next offset).
    by_key: HashMap<String, (Arc<str>, u32, u64)>,
}

/// Read every owned partition live, from the stream's end at start (`latest`, as Kafka's
/// default; a resuming client reads older entries through `fetch`), then exactly from the
/// next entry after any outage.
async fn read_live(inner: Rc<Inner>) {
    if inner.settings.owned.is_empty() {
        return;
    }
    let block = Duration::from_millis(inner.settings.config.block_ms);
    let Some(client) = connect(&inner, block).await else {
        return;
    };
    let mut backoff = inner
        .settings
        .conn
        .backoff(SEED.fetch_add(1, Ordering::Relaxed));
    let mut positions = loop {
        match start_positions(&inner, &client).await {
            Ok(p) => break p,
            Err(reason) => {
                inner.report(false, || reason).await;
                tokio::time::sleep(backoff.next_delay()).await;
            }
        }
        if inner.stopping() {
            return;
        }
    };
    tell_partitions(&inner).await;
    let mut foreign_logged = false;
    let mut last_check = tokio::time::Instant::now();
    while !inner.stopping() {
        if last_check.elapsed() >= REGRESSION_CHECK_EVERY {
            last_check = tokio::time::Instant::now();
            if let Err(reason) = drop_regressed(&client, &mut positions).await {
                inner.report(false, || reason).await;
            }
        }
        let keys: Vec<String> = positions.by_key.keys().cloned().collect();
        if keys.is_empty() {
            return;
        }
        let ids: Vec<String> = keys
            .iter()
            .filter_map(|k| {
                positions
                    .by_key
                    .get(k)
                    .map(|(_, _, next)| read_after(*next))
            })
            .collect();
        let answer = client
            .xread::<Value, _, _>(
                Some(inner.settings.config.read_count),
                Some(inner.settings.config.block_ms),
                keys,
                ids,
            )
            .await;
        let streams = match answer.map_err(|e| describe(&e)).and_then(reply::streams) {
            Ok(streams) => streams,
            Err(reason) => {
                inner.report(false, || reason).await;
                tokio::time::sleep(backoff.next_delay()).await;
                continue;
            }
        };
        backoff.reset();
        inner.report(true, String::new).await;
        for (key, entries) in streams {
            let Some((topic, partition, next)) = positions.by_key.get_mut(&key) else {
                continue;
            };
            let p = i32::try_from(*partition).unwrap_or(i32::MAX);
            let mut records = Vec::with_capacity(entries.len());
            let mut stop = false;
            for (id, fields) in entries {
                match entry::decode(topic, p, &id, fields) {
                    Ok(record) => {
                        *next = u64::try_from(record.offset).unwrap_or(0) + 1;
                        records.push(record);
                    }
                    Err(entry::EntryError::NoData(_)) => {
                        if let Ok(offset) = entry::offset_of(&id) {
                            *next = offset + 1;
                        }
                    }
                    Err(e) => {
                        if !foreign_logged {
                            foreign_logged = true;
                            tracing::error!(%key, error = %e, "redis: stream holds an entry this gateway did not write; reading of this partition stops");
                        }
                        stop = true;
                        break;
                    }
                }
            }
            let (topic, high) = (Arc::clone(topic), *next);
            if stop {
                positions.by_key.remove(&key);
            }
            if records.is_empty() {
                continue;
            }
            let event = PlaneEvent::Records {
                topic,
                partition: p,
                records,
                high_watermark: i64::try_from(high).unwrap_or(i64::MAX),
            };
            if !inner.sink.push(event).await {
                return;
            }
        }
    }
}

/// How often live reading checks that no stream went back (Redis lost its data and something
/// began it again): cheap, one `XREVRANGE ... COUNT 1` per owned partition.
const REGRESSION_CHECK_EVERY: Duration = Duration::from_secs(5);

/// Stop reading a stream whose last entry is now below where reading stands: its numbering
/// began again, so its offsets no longer mean what this instance delivered. Said loudly;
/// restarting the gateways begins reading it afresh (clients holding old ids get `reset`).
async fn drop_regressed(client: &Client, positions: &mut Positions) -> Result<(), String> {
    let keys: Vec<String> = positions.by_key.keys().cloned().collect();
    for key in keys {
        let tail = client
            .xrevrange::<Value, _, _, _>(key.as_str(), "+", "-", Some(1))
            .await
            .map_err(|e| describe(&e))?;
        let end = match reply::entries(tail)?.first() {
            Some((id, _)) => entry::offset_of(id).map_or(0, |o| o + 1),
            None => 0,
        };
        if let Some((topic, partition, next)) = positions.by_key.get(&key) {
            if end < *next {
                tracing::error!(%key, %topic, partition, reading_at = *next, stream_end = end, "redis: the stream went back (Redis lost its data); this instance stops reading it until it restarts");
                positions.by_key.remove(&key);
            }
        }
    }
    Ok(())
}

/// Make sure each stream exists, so `XADD ... NOMKSTREAM` works: an empty stream is made with
/// a throwaway consumer group (`XGROUP CREATE ... MKSTREAM`, then `DESTROY`). Every instance
/// does this at start; doing it twice is harmless, and errors from a racing instance (the group
/// exists) are ignored. This is also what begins a stream again after Redis lost its data: at
/// the next start of the gateways.
async fn ensure_streams(client: &Client, keys: &[String]) -> Result<(), String> {
    let group = "sluicegate-init";
    for key in keys {
        let created = client
            .xgroup_create::<Value, _, _, _>(key.as_str(), group, "$", true)
            .await;
        if let Err(e) = &created {
            if is_transport(e) {
                return Err(describe(e));
            }
        }
        let destroyed = client
            .xgroup_destroy::<Value, _, _>(key.as_str(), group)
            .await;
        if let Err(e) = &destroyed {
            if is_transport(e) {
                return Err(describe(e));
            }
        }
    }
    Ok(())
}

/// Each owned partition's next offset (the stream's end), and the idempotency keys of up to
/// `dedup_window` entries before it, sent up so a retry of an earlier publish is still
/// recognised after a restart.
async fn start_positions(inner: &Inner, client: &Client) -> Result<Positions, String> {
    let keys: Vec<String> = inner
        .settings
        .owned
        .iter()
        .map(|(t, p)| inner.key(t, *p))
        .collect();
    ensure_streams(client, &keys).await?;
    let mut by_key = HashMap::new();
    let window = inner.settings.config.dedup_window.max(1) as u64;
    for (topic, partition) in &inner.settings.owned {
        let key = inner.key(topic, *partition);
        let tail = client
            .xrevrange::<Value, _, _, _>(key.as_str(), "+", "-", Some(window))
            .await
            .map_err(|e| describe(&e))?;
        let tail = reply::entries(tail)?;
        let next = match tail.first() {
            Some((id, _)) => entry::offset_of(id).map_err(|e| format!("{key}: {e}"))? + 1,
            None => 0,
        };
        let p = i32::try_from(*partition).unwrap_or(i32::MAX);
        let ids: Vec<(Bytes, i64)> = tail
            .into_iter()
            .rev()
            .filter_map(|(id, fields)| entry::decode(topic, p, &id, fields).ok())
            .filter_map(|r: LogRecord| Some((r.idempotency_key()?.clone(), r.offset)))
            .collect();
        if !ids.is_empty() && inner.settings.config.dedup_window > 0 {
            let event = PlaneEvent::SeenIds {
                topic: Arc::clone(topic),
                partition: p,
                ids,
            };
            if !inner.sink.push(event).await {
                return Err("stopping".into());
            }
        }
        by_key.insert(key, (Arc::clone(topic), *partition, next));
    }
    Ok(Positions { by_key })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry_value(id: &str) -> Value {
        Value::Array(vec![Value::Array(vec![
            Value::String(id.into()),
            Value::Array(vec![
                Value::String("data".into()),
                Value::String("x".into()),
            ]),
        ])])
    }

    #[test]
    fn stream_bounds_are_first_and_one_past_last() {
        assert_eq!(bounds(entry_value("0-3"), entry_value("0-9")), Ok((2, 9)));
        assert_eq!(
            bounds(Value::Array(Vec::new()), Value::Array(Vec::new())),
            Ok((0, 0))
        );
        assert!(bounds(entry_value("1700-0"), entry_value("0-9")).is_err());
    }
}
