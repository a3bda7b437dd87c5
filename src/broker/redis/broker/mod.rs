//! Broker mode's plane: Redis streams are the log of `[redis] topics`. It speaks the same
//! [`PlaneEvent`]/[`PlaneCommand`] protocol as the Kafka plane, so the shard's link, the publish
//! path, resume backfill and webhook lanes run on it unchanged.
//!
//! - [`produce`]: `XADD key MAXLEN ~ n NOMKSTREAM 0-* fields` per record, pipelined, answered
//!   after Redis replied (the offset is the entry's sequence number - 1).
//! - [`fetch`]: a resume's catch-up, `XRANGE` from the asked offset with the stream's first and
//!   last entries to tell "trimmed" (a `reset`) from "caught up".
//! - [`live`]: one blocking `XREAD` over every partition this shard owns, on a client of its
//!   own, from where it left off.
//! - [`streams`]: making the streams at start and noticing one that went back.
//! - Here: the plane's start, its command client (kept connected, and the only source of the
//!   up/down state the shard sees) and the command loop.
mod fetch;
mod live;
mod produce;
mod streams;

use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use fred::prelude::Client;
use fred::types::Value;

use super::conn::{self, describe, ConnSettings};
use crate::broker::plane::sink::{serve_commands, EventSink, Shared};
use crate::broker::plane::{handle, BrokerPlane, BrokerState, PlaneCommand, PlaneEvent};
use crate::broker::routing::shard_for;
use crate::config::RedisConfig;

/// Seeds the backoff jitter differently per plane and task.
static SEED: AtomicU64 = AtomicU64::new(0x5eed);

/// How often the command client's keeper looks at the stop flag while Redis is up.
const KEEPER_IDLE_CHECK: Duration = Duration::from_millis(200);

/// `[redis]` as this plane uses it.
#[derive(Clone, Debug)]
struct Settings {
    conn: ConnSettings,
    shard: usize,
    topics: Vec<Arc<str>>,
    partitions: u32,
    /// The (topic, partition)s this shard reads live.
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
    /// The command client; `None` while (re)connecting. A client that failed is dropped, never
    /// reused (see `conn`).
    client: RefCell<Option<Client>>,
    /// The last state told to the shard (`None`: nothing yet). Only the command client's
    /// outcomes move it: it is what decides whether the shard accepts publishes.
    told_up: Cell<Option<bool>>,
    round_robin: Cell<u32>,
    /// Stream keys already logged as missing (each logged once).
    missing_logged: RefCell<HashSet<String>>,
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

    fn every_key(&self) -> Vec<String> {
        self.settings
            .topics
            .iter()
            .flat_map(|t| (0..self.settings.partitions).map(move |p| (t, p)))
            .map(|(t, p)| self.key(t, p))
            .collect()
    }

    fn stopping(&self) -> bool {
        self.shared.is_shutting_down()
    }

    fn client(&self) -> Option<Client> {
        self.client.borrow().clone()
    }

    /// The command client failed on its connection: drop it (its keeper makes a new one) and
    /// tell the shard.
    async fn drop_client(&self, reason: String) {
        let old = self.client.borrow_mut().take();
        if let Some(old) = old {
            tokio::task::spawn_local(async move {
                let _ = fred::interfaces::ClientLike::quit(&old).await;
            });
        }
        self.report(false, || reason).await;
    }

    fn backoff(&self) -> crate::broker::plane::backoff::Backoff {
        self.settings
            .conn
            .backoff(SEED.fetch_add(1, Ordering::Relaxed))
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
        missing_logged: RefCell::new(HashSet::new()),
    });
    let keeper = tokio::task::spawn_local(keep_connected(Rc::clone(&inner)));
    let reader = tokio::task::spawn_local(live::read_live(Rc::clone(&inner)));
    command_loop(&inner, &mut commands).await;
    keeper.abort();
    reader.abort();
    let client = inner.client.borrow_mut().take();
    if let Some(client) = client {
        let _ = fred::interfaces::ClientLike::quit(&client).await;
    }
    tracing::debug!(shard = inner.settings.shard, "redis plane stopped");
}

/// Keep the command client connected: connect with backoff; the first time, make every
/// stream (so `XADD ... NOMKSTREAM` works) before saying "up"; while the shard believes Redis
/// is down (it then refuses publishes without asking the plane, so nothing else would find out
/// that Redis came back), ping it until it answers.
async fn keep_connected(inner: Rc<Inner>) {
    let mut backoff = inner.backoff();
    let mut first = true;
    // The current client's connection errors. fred reports a closed connection here at once,
    // while its state still says "connected" (there is no reconnect policy to move it), so
    // this is how a lost connection is noticed before a publish times out on it.
    let mut errors: Option<
        tokio::sync::broadcast::Receiver<(fred::error::Error, Option<fred::types::config::Server>)>,
    > = None;
    while !inner.stopping() {
        if inner.client().is_none() {
            let connected = match conn::try_connect(&inner.settings.conn, Duration::ZERO).await {
                Ok(client) if first => streams::ensure_streams(&client, &inner.every_key())
                    .await
                    .map(|()| client),
                other => other,
            };
            match connected {
                Ok(client) => {
                    errors = Some(fred::interfaces::EventInterface::error_rx(&client));
                    *inner.client.borrow_mut() = Some(client);
                    inner.report(true, String::new).await;
                    backoff.reset();
                    // A shard reading no partition is ready once it can produce; the others
                    // say so when their reader knows where each stream ends (`live`).
                    if first && inner.settings.owned.is_empty() {
                        tell_partitions(&inner).await;
                    }
                    first = false;
                }
                Err(reason) => {
                    inner.report(false, || reason).await;
                    tokio::time::sleep(backoff.next_delay()).await;
                    continue;
                }
            }
        } else if inner.told_up.get() == Some(false) {
            if let Some(client) = inner.client() {
                match fred::interfaces::ClientLike::ping::<Value>(&client, None).await {
                    Ok(_) => {
                        backoff.reset();
                        inner.report(true, String::new).await;
                    }
                    Err(e) => inner.drop_client(describe(&e)).await,
                }
            }
            tokio::time::sleep(backoff.next_delay()).await;
            continue;
        }
        let error = async {
            match errors.as_mut() {
                Some(rx) => rx.recv().await.ok().map(|(e, _)| e),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            e = error => {
                let reason = e.map_or_else(|| "redis: connection closed".to_owned(), |e| describe(&e));
                errors = None;
                inner.drop_client(reason).await;
            }
            _ = tokio::time::sleep(KEEPER_IDLE_CHECK) => {}
        }
    }
}

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
                let result = produce::produce(&inner, &topic, partition, records).await;
                let event = PlaneEvent::ProduceDone { request_id, result };
                inner.sink.push(event).await;
            });
        }
        PlaneCommand::Fetch {
            request_id,
            topic,
            partition,
            offset,
            max_bytes,
        } => {
            let inner = Rc::clone(inner);
            tokio::task::spawn_local(async move {
                let result = fetch::fetch(&inner, &topic, partition, offset, max_bytes).await;
                let event = PlaneEvent::FetchDone { request_id, result };
                inner.sink.push(event).await;
            });
        }
        PlaneCommand::Shutdown => {}
    })
    .await;
}
