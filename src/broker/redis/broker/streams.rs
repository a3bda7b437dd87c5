//! The streams themselves: made at start so `XADD ... NOMKSTREAM` works, and checked for having
//! gone back (Redis lost entries, or all of them, and numbering began again below where this
//! instance reads).
use std::collections::HashMap;
use std::sync::Arc;

use fred::interfaces::StreamsInterface;
use fred::prelude::Client;
use fred::types::Value;

use super::super::conn::{self, describe, Failure};
use super::super::{entry, reply};

/// Make sure each stream exists: an empty stream is made with a throwaway consumer group
/// (`XGROUP CREATE ... MKSTREAM`, then `DESTROY`; Redis has no "create stream" of its own).
/// Every plane does this when it first connects; doing it twice is harmless, and an error from
/// a racing instance (the group exists, or is gone already) is ignored. This is also what makes
/// a stream again after Redis lost its data: at the next start of the gateways.
pub(super) async fn ensure_streams(client: &Client, keys: &[String]) -> Result<(), String> {
    // A group name of this plane's own, so planes starting together do not trip over each
    // other's group (BUSYGROUP, NOGROUP); any such answer is harmless anyway.
    let group = format!(
        "sluicegate-init-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    );
    let group = group.as_str();
    for key in keys {
        let created = client
            .xgroup_create::<Value, _, _, _>(key.as_str(), group, "$", true)
            .await;
        let destroyed = client
            .xgroup_destroy::<Value, _, _>(key.as_str(), group)
            .await;
        for result in [created.map(drop), destroyed.map(drop)] {
            if let Err(e) = result {
                // Only a connection failure matters: every answer Redis gives here (the group
                // exists, or is gone already) leaves the stream made.
                if conn::sort(&e) == Failure::Transport {
                    return Err(describe(&e));
                }
            }
        }
    }
    Ok(())
}

/// Where live reading stands: stream key -> (topic, partition, next offset).
pub(super) type Positions = HashMap<String, (Arc<str>, u32, u64)>;

/// Stop reading each stream whose end is now below where reading stands: its numbering began
/// again, so its offsets no longer mean what this instance delivered. Said loudly; restarting
/// the gateways reads it afresh (clients holding old ids get `reset` while their id is past the
/// new end). Run after every reconnect of the reader (a Redis restart always drops the
/// connection) and every few seconds.
pub(super) async fn drop_regressed(
    client: &Client,
    positions: &mut Positions,
) -> Result<(), fred::error::Error> {
    let keys: Vec<String> = positions.keys().cloned().collect();
    for key in keys {
        let tail = client
            .xrevrange::<Value, _, _, _>(key.as_str(), "+", "-", Some(1))
            .await?;
        let end = match reply::entries(tail).ok().and_then(|e| e.into_iter().next()) {
            Some((id, _)) => entry::offset_of(&id).map_or(0, |o| o + 1),
            None => 0,
        };
        if let Some((topic, partition, next)) = positions.get(&key) {
            if end < *next {
                tracing::error!(%key, %topic, partition, reading_at = *next, stream_end = end, "redis: the stream went back (Redis lost entries); this instance stops reading it until the gateways restart");
                positions.remove(&key);
            }
        }
    }
    Ok(())
}
