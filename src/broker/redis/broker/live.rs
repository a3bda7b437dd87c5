//! Live reading in broker mode: one blocking `XREAD` over every partition this shard owns, on a
//! client of its own (a blocked connection holds up whatever is queued behind it). It starts at
//! each stream's end (`latest`, as Kafka's default; a resuming client reads older entries through
//! `fetch`) and continues from the exact next entry after any outage, on a new client.
//!
//! Its failures are logged, not reported as the broker's state: whether the shard accepts
//! publishes is the command client's business (`super::keep_connected`).
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use fred::interfaces::StreamsInterface;
use fred::prelude::Client;
use fred::types::Value;

use super::super::conn::{self, describe};
use super::super::entry::{self, read_after};
use super::super::reply;
use super::streams::{drop_regressed, Positions};
use super::{tell_partitions, Inner};
use crate::broker::plane::{LogRecord, PlaneEvent};

/// How often live reading checks that no stream went back, besides after every reconnect.
const REGRESSION_CHECK_EVERY: Duration = Duration::from_secs(5);

/// Whether the reader works, for logging each change once.
struct ReaderHealth {
    shard: usize,
    ok: Option<bool>,
}

impl ReaderHealth {
    fn set(&mut self, ok: bool, reason: impl FnOnce() -> String) {
        if self.ok == Some(ok) {
            return;
        }
        self.ok = Some(ok);
        if ok {
            tracing::info!(shard = self.shard, "redis: live reading");
        } else {
            tracing::warn!(shard = self.shard, reason = %reason(), "redis: live reading failed; reconnecting");
        }
    }
}

pub(super) async fn read_live(inner: Rc<Inner>) {
    if inner.settings.owned.is_empty() {
        return;
    }
    let block = Duration::from_millis(inner.settings.config.block_ms);
    let mut backoff = inner.backoff();
    let mut health = ReaderHealth {
        shard: inner.settings.shard,
        ok: None,
    };
    let mut positions: Option<Positions> = None;
    while !inner.stopping() {
        let client = match conn::try_connect(&inner.settings.conn, block).await {
            Ok(client) => client,
            Err(reason) => {
                health.set(false, || reason);
                tokio::time::sleep(backoff.next_delay()).await;
                continue;
            }
        };
        let outcome = read_on(&inner, &client, &mut positions, &mut health).await;
        // A client that failed is never used again (see `conn`).
        let old = client;
        tokio::task::spawn_local(async move {
            let _ = fred::interfaces::ClientLike::quit(&old).await;
        });
        match outcome {
            Stop::Done => return,
            Stop::Failed(reason) => {
                health.set(false, || reason);
                tokio::time::sleep(backoff.next_delay()).await;
            }
        }
        if health.ok == Some(true) {
            backoff.reset();
        }
    }
}

/// Why reading on one client ended.
enum Stop {
    /// The plane stops, or nothing is left to read.
    Done,
    Failed(String),
}

/// On a fresh client: find the start positions (the first time) or check that no stream went
/// back (after a reconnect), then read until something fails.
async fn read_on(
    inner: &Inner,
    client: &Client,
    positions: &mut Option<Positions>,
    health: &mut ReaderHealth,
) -> Stop {
    let positions = match positions {
        Some(p) => {
            if let Err(e) = drop_regressed(client, p).await {
                return Stop::Failed(describe(&e));
            }
            p
        }
        None => match start_positions(inner, client).await {
            Ok(p) => {
                tell_partitions(inner).await;
                positions.insert(p)
            }
            Err(reason) => return Stop::Failed(reason),
        },
    };
    let mut last_check = tokio::time::Instant::now();
    while !inner.stopping() {
        if last_check.elapsed() >= REGRESSION_CHECK_EVERY {
            last_check = tokio::time::Instant::now();
            if let Err(e) = drop_regressed(client, positions).await {
                return Stop::Failed(describe(&e));
            }
        }
        if positions.is_empty() {
            return Stop::Done;
        }
        let keys: Vec<String> = positions.keys().cloned().collect();
        let ids: Vec<String> = keys
            .iter()
            .filter_map(|k| positions.get(k).map(|(_, _, next)| read_after(*next)))
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
            Err(reason) => return Stop::Failed(reason),
        };
        health.set(true, String::new);
        for (key, entries) in streams {
            if !deliver(inner, positions, &key, entries).await {
                return Stop::Done;
            }
        }
    }
    Stop::Done
}

/// Turn one stream's new entries into records for the shard and move its position. False when
/// the shard's end is gone.
async fn deliver(
    inner: &Inner,
    positions: &mut Positions,
    key: &str,
    entries: Vec<reply::Entry>,
) -> bool {
    let Some((topic, partition, next)) = positions.get_mut(key) else {
        return true;
    };
    let p = i32::try_from(*partition).unwrap_or(i32::MAX);
    let mut records = Vec::with_capacity(entries.len());
    let mut foreign = None;
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
                foreign = Some(e);
                break;
            }
        }
    }
    let (topic, high) = (Arc::clone(topic), *next);
    if let Some(e) = foreign {
        // Nothing after an entry without a 0-n id has an offset: this partition cannot be read.
        tracing::error!(%key, error = %e, "redis: the stream holds an entry this gateway did not write; reading of this partition stops");
        positions.remove(key);
    }
    if records.is_empty() {
        return true;
    }
    let event = PlaneEvent::Records {
        topic,
        partition: p,
        records,
        high_watermark: i64::try_from(high).unwrap_or(i64::MAX),
    };
    inner.sink.push(event).await
}

/// Each owned partition's next offset (the stream's end), and the idempotency keys of up to
/// `dedup_window` entries before it, sent up so a retry of an earlier publish is still
/// recognised after a restart.
async fn start_positions(inner: &Inner, client: &Client) -> Result<Positions, String> {
    let mut positions = Positions::new();
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
        positions.insert(key, (Arc::clone(topic), *partition, next));
    }
    Ok(positions)
}
