//! The Kafka broker plane: per-shard threads that fetch the partitions their shard owns and
//! produce what the shard publishes, with `rskafka` on a tokio current-thread runtime.
//!
//! # Layout
//! - [`assign`]: pure partition → shard assignment.
//! - [`record`]: [`KafkaRecord`] and where its SSE event type comes from.
//! - [`dedup`]: [`RecentIds`], the owner's window of idempotency keys seen per partition.
//! - [`events`]: the messages between a shard and its plane ([`PlaneEvent`], [`PlaneCommand`]).
//! - [`plane`]: [`KafkaPlane`], the shard-side handle, and `spawn` of the plane thread.
//! - The tokio side: `worker` (entry point and command loop), `supervisor` (connect with
//!   backoff, discovery, reconnect), `state` (what the plane's tasks share, and `request`, the
//!   one timeout -> report -> error path for every request), `settings` (`[kafka]` in protocol
//!   types), `fetch` (fetch loops and catch-up reads), `produce`, `sink` (the ring up to the
//!   shard, with back-pressure), `connect` (clients and error sorting).
//! - [`backoff`]: capped exponential backoff with jitter and an injectable seed.
//! - [`check_bootstrap`]: the start-up check `main` runs when Kafka is configured.
//!
//! Not built in: compression codecs (rskafka's `compression-*` features are off), so a batch
//! a producer compressed cannot be decoded; the fetch loop logs it and the lead can turn the
//! features on. rskafka gives headers as a map: one value per name, sorted by name.
pub mod assign;
pub mod backoff;
mod connect;
pub mod dedup;
pub mod events;
mod fetch;
pub mod plane;
mod produce;
pub mod record;
mod settings;
mod sink;
mod state;
pub mod state_topics;
mod supervisor;
mod worker;

pub use assign::owner_of;
pub use connect::check_bootstrap;
pub use dedup::RecentIds;
pub use events::{
    BrokerState, FetchError, Fetched, PlaneCommand, PlaneEvent, ProduceError, ProduceRecord,
    Produced,
};
pub use plane::KafkaPlane;
pub use record::{EventTypeRule, KafkaRecord, ID_HEADER};

/// Why the Kafka plane could not start or the start-up check failed. Each message names what
/// to fix.
#[derive(Debug, thiserror::Error)]
pub enum KafkaError {
    /// No bootstrap broker answered within the timeout.
    #[error("kafka.bootstrap: cannot reach any of {brokers} within {timeout_ms} ms: {reason}")]
    Unreachable {
        brokers: String,
        timeout_ms: u64,
        reason: String,
    },
    /// A configured topic does not exist and `kafka.create_topics` is false.
    #[error("kafka.topics: topic `{topic}` does not exist on the brokers (create it, or set kafka.create_topics = true)")]
    UnknownTopic { topic: String },
    /// The brokers answered with an error (e.g. topic creation refused).
    #[error("kafka: {context}: {reason}")]
    Broker { context: String, reason: String },
    /// The `[kafka]` section is not usable (normally caught by `Config::validate`).
    #[error("{0}")]
    Config(String),
    /// The plane thread or its runtime could not be created.
    #[error("kafka plane: {0}")]
    Io(#[from] std::io::Error),
}
