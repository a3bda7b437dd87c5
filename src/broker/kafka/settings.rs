//! `[kafka]` converted once, at plane start, into the types the Kafka protocol wants (int32
//! sizes, durations), so a bad value stops the start with the key's name instead of failing
//! later inside a request.

use std::sync::Arc;
use std::time::Duration;

use crate::config::{KafkaConfig, StartPosition};

use super::KafkaError;
use crate::broker::plane::backoff::Backoff;

/// `[kafka]` converted once into the types the protocol wants.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    pub bootstrap: Vec<String>,
    pub client_id: String,
    pub topics: Vec<Arc<str>>,
    pub start: StartPosition,
    pub create_topics: bool,
    pub create_partitions: i32,
    pub replication_factor: i16,
    pub fetch_max_bytes: i32,
    pub fetch_max_wait_ms: i32,
    pub metadata_refresh: Duration,
    pub request_timeout: Duration,
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    /// Idempotency keys the shard remembers per partition: also how far back a fetch loop
    /// reads, before its start offset, to rebuild that window (0 = not at all).
    pub dedup_window: usize,
    pub shard: usize,
    pub shards: usize,
}

impl Settings {
    pub fn from_config(c: &KafkaConfig, shard: usize, shards: usize) -> Result<Self, KafkaError> {
        let bad = |key: &str, what: String| KafkaError::Config(format!("kafka.{key}: {what}"));
        let start = c.start_position().map_err(|m| bad("start", m))?;
        let int = |key: &str, v: u64| {
            i32::try_from(v).map_err(|_| bad(key, format!("{v} does not fit a Kafka int32")))
        };
        if c.bootstrap.is_empty() {
            return Err(bad(
                "bootstrap",
                "no bootstrap brokers configured".to_owned(),
            ));
        }
        Ok(Self {
            bootstrap: c.bootstrap.clone(),
            client_id: c.client_id.clone(),
            topics: c.topics.iter().map(|t| Arc::from(t.as_str())).collect(),
            start,
            create_topics: c.create_topics,
            create_partitions: int("create_partitions", u64::from(c.create_partitions))?,
            replication_factor: i16::try_from(c.replication_factor)
                .map_err(|_| bad("replication_factor", "too large".to_owned()))?,
            fetch_max_bytes: int("fetch_max_bytes", c.fetch_max_bytes as u64)?.max(1),
            fetch_max_wait_ms: int("fetch_max_wait_ms", c.fetch_max_wait_ms)?,
            metadata_refresh: Duration::from_millis(c.metadata_refresh_ms.max(1)),
            request_timeout: Duration::from_millis(c.request_timeout_ms.max(1)),
            backoff_initial: Duration::from_millis(c.backoff_initial_ms),
            backoff_max: Duration::from_millis(c.backoff_max_ms),
            dedup_window: c.dedup_window,
            shard,
            shards,
        })
    }

    /// A backoff seeded per shard, so planes do not retry in lock-step.
    pub fn backoff(&self) -> Backoff {
        let seed = 0x5eed_u64 ^ ((self.shard as u64) << 32) ^ u64::from(std::process::id());
        Backoff::new(self.backoff_initial, self.backoff_max, seed)
    }
}
