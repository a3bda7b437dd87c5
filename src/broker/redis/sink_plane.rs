//! Sink mode's plane: the entries a shard mirrors arrive on an `rtrb` ring and are written to
//! Redis with pipelined `XADD key MAXLEN ~ n * fields`, in ring order, so a partition's order
//! (its owner shard is the only writer) holds in its stream.
//!
//! At least once: a batch is taken off the ring and kept until Redis acknowledged all of it. A
//! transport failure retries from the first unacknowledged entry (with backoff, for as long as
//! the outage lasts), so an entry may be written twice but never skipped or reordered. An entry
//! Redis itself refuses (a key of another type) cannot succeed by retrying: it is dropped,
//! counted and logged. While it retries, the ring fills; what happens then is the shard's
//! `overflow` policy (`shard::redis_sink`).
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use fred::interfaces::StreamsInterface;
use fred::prelude::Client;
use fred::types::Value;
use tokio::sync::Notify;

use super::broker_plane::cap;
use super::conn::{self, describe, is_transport, ConnSettings};
use crate::broker::plane::handle::pin_to_cpu;
use crate::config::RedisConfig;

/// One entry to write: its stream key and fields (see [`super::entry`]). The key is shared by
/// every entry of the partition (the shard makes it once).
#[derive(Debug)]
pub struct SinkEntry {
    pub key: Bytes,
    pub fields: Vec<(Bytes, Bytes)>,
}

/// What the shard and its sink plane share: the wakeup, and the counters the shard copies
/// into its metrics.
#[derive(Debug, Default)]
pub struct SinkShared {
    /// Set by the plane while it waits for entries; the shard then notifies `wake`.
    sleeping: AtomicBool,
    wake: Notify,
    stop: AtomicBool,
    /// Entries Redis acknowledged.
    pub mirrored: AtomicU64,
    /// Pipelined writes retried after a failure.
    pub retries: AtomicU64,
    /// Entries Redis refused outright (not retried).
    pub refused: AtomicU64,
    /// Entries taken off the ring and not yet acknowledged.
    pub in_flight: AtomicU64,
    /// True while the last write succeeded.
    pub up: AtomicBool,
}

impl SinkShared {
    /// The shard pushed entries: wake the plane if it sleeps. One atomic load per push while
    /// the plane is busy.
    pub fn pushed(&self) {
        if self.sleeping.load(Ordering::Acquire) && self.sleeping.swap(false, Ordering::AcqRel) {
            self.wake.notify_one();
        }
    }

    /// Stop after writing what is queued (bounded by the request timeout per attempt).
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Release);
        self.wake.notify_one();
    }
}

/// Start the sink plane of `shard`: the producer end of its ring (capacity `capacity`), what
/// both ends share, and the thread.
pub fn spawn_sink_plane(
    config: &RedisConfig,
    shard: usize,
    cpu: Option<usize>,
    capacity: usize,
) -> std::io::Result<(rtrb::Producer<SinkEntry>, Arc<SinkShared>, JoinHandle<()>)> {
    let (tx, rx) = rtrb::RingBuffer::new(capacity.max(16));
    let shared = Arc::new(SinkShared::default());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let plane_shared = Arc::clone(&shared);
    let settings = ConnSettings::from_config(config);
    let config = config.clone();
    let thread = std::thread::Builder::new()
        .name(format!("redis-sink-{shard}"))
        .spawn(move || {
            if let Some(cpu) = cpu {
                if let Err(err) = pin_to_cpu(cpu) {
                    tracing::warn!(shard, cpu, %err, "redis sink: cannot pin to CPU; running unpinned");
                }
            }
            let local = tokio::task::LocalSet::new();
            local.block_on(&runtime, run(settings, config, rx, plane_shared, shard));
        })?;
    Ok((tx, shared, thread))
}

async fn run(
    settings: ConnSettings,
    config: RedisConfig,
    mut ring: rtrb::Consumer<SinkEntry>,
    shared: Arc<SinkShared>,
    shard: usize,
) {
    let mut backoff = settings.backoff(0xa11ce ^ shard as u64);
    let mut client: Option<Client> = None;
    let mut batch: Vec<SinkEntry> = Vec::with_capacity(config.sink_batch);
    let mut refused_logged = false;
    loop {
        if batch.is_empty() {
            while batch.len() < config.sink_batch {
                match ring.pop() {
                    Ok(entry) => batch.push(entry),
                    Err(_) => break,
                }
            }
            shared
                .in_flight
                .store(batch.len() as u64, Ordering::Relaxed);
        }
        if batch.is_empty() {
            if shared.stop.load(Ordering::Acquire) || ring.is_abandoned() {
                break;
            }
            shared.sleeping.store(true, Ordering::Release);
            if ring.is_empty() {
                // The timeout covers a push that saw `sleeping` false just before we set it.
                let _ =
                    tokio::time::timeout(Duration::from_millis(100), shared.wake.notified()).await;
            }
            shared.sleeping.store(false, Ordering::Release);
            continue;
        }
        let connected = match &client {
            Some(c) => c.clone(),
            None => match conn::try_connect(&settings, Duration::ZERO).await {
                Ok(c) => {
                    client = Some(c.clone());
                    c
                }
                Err(reason) => {
                    fail(&shared, shard, &reason);
                    if give_up(&shared, &ring) {
                        break;
                    }
                    tokio::time::sleep(backoff.next_delay()).await;
                    continue;
                }
            },
        };
        match write(&connected, &config, &batch).await {
            Written::All => {
                shared
                    .mirrored
                    .fetch_add(batch.len() as u64, Ordering::Relaxed);
                batch.clear();
                shared.in_flight.store(0, Ordering::Relaxed);
                if !shared.up.swap(true, Ordering::Relaxed) {
                    tracing::info!(shard, "redis sink: writing");
                }
                backoff.reset();
            }
            Written::Upto {
                done,
                refused,
                error,
            } => {
                // Entries before `done` are acknowledged; those Redis refused are dropped;
                // the rest (from the first transport failure on) go again, in order.
                let acknowledged = done.saturating_sub(refused.len());
                shared
                    .mirrored
                    .fetch_add(acknowledged as u64, Ordering::Relaxed);
                shared
                    .refused
                    .fetch_add(refused.len() as u64, Ordering::Relaxed);
                if !refused.is_empty() && !refused_logged {
                    refused_logged = true;
                    tracing::error!(shard, key = %refused[0].0, error = %refused[0].1, "redis sink: Redis refused an entry; dropped (counted in sluicegate_redis_sink_dropped_total; logged once)");
                }
                batch.drain(..done.min(batch.len()));
                shared
                    .in_flight
                    .store(batch.len() as u64, Ordering::Relaxed);
                if let Some(reason) = error {
                    shared.retries.fetch_add(1, Ordering::Relaxed);
                    fail(&shared, shard, &reason);
                    if give_up(&shared, &ring) {
                        break;
                    }
                    tokio::time::sleep(backoff.next_delay()).await;
                }
            }
        }
    }
    if let Some(c) = client {
        let _ = fred::interfaces::ClientLike::quit(&c).await;
    }
}

/// Stopping with Redis down: what is still queued cannot be written; say how much.
fn give_up(shared: &SinkShared, ring: &rtrb::Consumer<SinkEntry>) -> bool {
    let stopping = shared.stop.load(Ordering::Acquire) || ring.is_abandoned();
    if stopping {
        tracing::warn!(
            queued = ring.slots() as u64 + shared.in_flight.load(Ordering::Relaxed),
            "redis sink: stopping while Redis is unavailable; queued events were not mirrored"
        );
    }
    stopping
}

fn fail(shared: &SinkShared, shard: usize, reason: &str) {
    if shared.up.swap(false, Ordering::Relaxed) {
        tracing::warn!(shard, %reason, "redis sink: write failed; retrying with backoff (events queue up to redis.sink_queue_events)");
    }
}

enum Written {
    All,
    /// The first `done` entries are settled (acknowledged, or `refused` by Redis with its
    /// message); `error` is the transport failure that stopped the rest.
    Upto {
        done: usize,
        refused: Vec<(String, String)>,
        error: Option<String>,
    },
}

async fn write(client: &Client, config: &RedisConfig, batch: &[SinkEntry]) -> Written {
    let pipeline = client.pipeline();
    for entry in batch {
        let queued = pipeline
            .xadd::<Value, _, _, _, _>(
                entry.key.clone(),
                false,
                cap(config),
                "*",
                entry.fields.clone(),
            )
            .await;
        if let Err(e) = queued {
            return Written::Upto {
                done: 0,
                refused: Vec::new(),
                error: Some(describe(&e)),
            };
        }
    }
    let answers = conn::send_pipeline(client, &pipeline).await;
    let mut refused = Vec::new();
    for (i, answer) in answers.iter().enumerate() {
        match answer {
            Ok(_) => {}
            Err(e) if is_transport(e) => {
                return Written::Upto {
                    done: i,
                    refused,
                    error: Some(describe(e)),
                }
            }
            Err(e) => {
                let key = batch
                    .get(i)
                    .map(|b| String::from_utf8_lossy(&b.key).into_owned())
                    .unwrap_or_default();
                refused.push((key, describe(e)));
            }
        }
    }
    if answers.len() < batch.len() {
        return Written::Upto {
            done: answers.len(),
            refused,
            error: Some("redis answered fewer commands than were sent".into()),
        };
    }
    if refused.is_empty() {
        Written::All
    } else {
        Written::Upto {
            done: batch.len(),
            refused,
            error: None,
        }
    }
}
