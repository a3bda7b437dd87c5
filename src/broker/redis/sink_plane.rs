//! Sink mode's plane: the entries a shard mirrors arrive on an `rtrb` ring and are written to
//! Redis with pipelined `XADD key MAXLEN ~ n * fields`, in ring order, so a partition's order
//! (its owner shard is the only writer) holds in its stream.
//!
//! At least once: a batch is taken off the ring and kept until Redis acknowledged all of it. A
//! failure of the connection, or Redis answering "not now" (loading, out of memory, read-only),
//! retries from the first unacknowledged entry (with backoff, for as long as it lasts) on a new
//! client, so an entry may be written twice but is never skipped. An entry Redis itself refuses
//! (a key of another type) cannot succeed by retrying: it is dropped, counted and logged. While
//! it retries, the ring fills; what happens then is the shard's `overflow` policy
//! (`shard::redis_sink`).
use std::sync::atomic::{fence, AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use fred::interfaces::StreamsInterface;
use fred::prelude::Client;
use fred::types::Value;
use tokio::sync::Notify;

use super::conn::{self, cap, describe, ConnSettings, Failure};
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
        // Pairs with the fence in `run`: either the plane sees the entry in the ring before it
        // sleeps, or this sees `sleeping` set and wakes it (a store then a load on each side:
        // only SeqCst fences order those).
        fence(Ordering::SeqCst);
        if self.sleeping.load(Ordering::Relaxed) && self.sleeping.swap(false, Ordering::AcqRel) {
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

/// How long an idle plane sleeps before looking at its ring anyway: only for a shard that went
/// away without `stop` (a wakeup is never missed otherwise; see `SinkShared::pushed`).
const IDLE_RECHECK: Duration = Duration::from_secs(1);

async fn run(
    settings: ConnSettings,
    config: RedisConfig,
    mut ring: rtrb::Consumer<SinkEntry>,
    shared: Arc<SinkShared>,
    shard: usize,
) {
    let mut backoff = settings.backoff(0xa11ce ^ shard as u64);
    let mut state = State {
        shard,
        told_up: None,
        refused_logged: false,
    };
    // Connect at once, so a wrong URL or an unreachable Redis is in the log before any event.
    let mut client: Option<Client> = match conn::try_connect(&settings, Duration::ZERO).await {
        Ok(c) => {
            state.up(&shared);
            Some(c)
        }
        Err(reason) => {
            state.down(&shared, &reason);
            None
        }
    };
    let mut batch: Vec<SinkEntry> = Vec::with_capacity(config.sink_batch);
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
            let notified = shared.wake.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            shared.sleeping.store(true, Ordering::Relaxed);
            fence(Ordering::SeqCst);
            if ring.is_empty() && !shared.stop.load(Ordering::Acquire) {
                let _ = tokio::time::timeout(IDLE_RECHECK, notified).await;
            }
            shared.sleeping.store(false, Ordering::Relaxed);
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
                    state.down(&shared, &reason);
                    if give_up(&shared, &ring) {
                        break;
                    }
                    tokio::time::sleep(backoff.next_delay()).await;
                    continue;
                }
            },
        };
        let written = write(&connected, &config, &batch).await;
        // Entries before `done` are settled: acknowledged, or refused by Redis (dropped and
        // counted: that command cannot succeed). The rest go again, in order, from the first
        // that failed for the connection or for the server's state.
        let done = written.done.min(batch.len());
        let refused = written.refused.len();
        shared
            .mirrored
            .fetch_add(done.saturating_sub(refused) as u64, Ordering::Relaxed);
        shared.refused.fetch_add(refused as u64, Ordering::Relaxed);
        if let Some((key, error)) = written.refused.first() {
            if !state.refused_logged {
                state.refused_logged = true;
                tracing::error!(shard, %key, %error, "redis sink: Redis refused an entry; dropped (counted in sluicegate_redis_sink_dropped_total; logged once)");
            }
        }
        batch.drain(..done);
        shared
            .in_flight
            .store(batch.len() as u64, Ordering::Relaxed);
        match written.failure {
            None => {
                state.up(&shared);
                backoff.reset();
            }
            Some((failure, reason)) => {
                if failure == Failure::Transport {
                    // Never reuse a client that failed (see `conn`).
                    if let Some(old) = client.take() {
                        tokio::task::spawn_local(async move {
                            let _ = fred::interfaces::ClientLike::quit(&old).await;
                        });
                    }
                }
                shared.retries.fetch_add(1, Ordering::Relaxed);
                state.down(&shared, &reason);
                if give_up(&shared, &ring) {
                    break;
                }
                tokio::time::sleep(backoff.next_delay()).await;
            }
        }
    }
    if let Some(c) = client {
        let _ = fred::interfaces::ClientLike::quit(&c).await;
    }
}

/// What the plane has said about itself, so each change is logged once.
struct State {
    shard: usize,
    told_up: Option<bool>,
    refused_logged: bool,
}

impl State {
    fn up(&mut self, shared: &SinkShared) {
        shared.up.store(true, Ordering::Relaxed);
        if self.told_up != Some(true) {
            self.told_up = Some(true);
            tracing::info!(shard = self.shard, "redis sink: connected");
        }
    }

    fn down(&mut self, shared: &SinkShared, reason: &str) {
        shared.up.store(false, Ordering::Relaxed);
        if self.told_up != Some(false) {
            self.told_up = Some(false);
            tracing::warn!(shard = self.shard, %reason, "redis sink: cannot write; retrying with backoff (events queue up to redis.sink_queue_events)");
        }
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

/// The outcome of one pipelined batch.
struct Written {
    /// The first `done` entries are settled (acknowledged, or refused).
    done: usize,
    /// Entries Redis refused, with its message: (stream key, error).
    refused: Vec<(String, String)>,
    /// What stopped the rest, if anything.
    failure: Option<(Failure, String)>,
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
            return Written {
                done: 0,
                refused: Vec::new(),
                failure: Some((Failure::NotNow, describe(&e))),
            };
        }
    }
    let answers = conn::send_pipeline(client, &pipeline, batch.len()).await;
    let mut refused = Vec::new();
    for (i, answer) in answers.iter().enumerate() {
        let Err(e) = answer else { continue };
        match conn::sort(e) {
            Failure::Refused => {
                let key = batch
                    .get(i)
                    .map(|b| String::from_utf8_lossy(&b.key).into_owned())
                    .unwrap_or_default();
                refused.push((key, describe(e)));
            }
            // The connection, or the server's state ("LOADING", "OOM", "READONLY"): this entry
            // and the ones after it go again. (Those after it usually failed the same way; one
            // that got through would be written twice.)
            failure => {
                return Written {
                    done: i,
                    refused,
                    failure: Some((failure, describe(e))),
                }
            }
        }
    }
    if answers.len() < batch.len() {
        return Written {
            done: answers.len(),
            refused,
            failure: Some((
                Failure::Transport,
                "redis answered fewer commands than were sent".into(),
            )),
        };
    }
    Written {
        done: batch.len(),
        refused,
        failure: None,
    }
}
