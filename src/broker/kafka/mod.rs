//! The Kafka broker plane: per-shard threads that fetch the partitions their shard owns and
//! produce what the shard publishes, with `rskafka` on a tokio current-thread runtime.
//!
//! The shard-facing pieces every plane shares (the rings, [`crate::broker::plane::PlaneEvent`],
//! the record type, the dedup window, backoff) are in [`crate::broker::plane`].
//!
//! # Layout
//! - [`assign`]: pure partition → shard assignment.
//! - `plane`: [`spawn_plane`], a shard's Kafka plane thread.
//! - The tokio side: `worker` (entry point and command loop), `supervisor` (connect with
//!   backoff, discovery, reconnect), `state` (what the plane's tasks share, and `request`, the
//!   one timeout -> report -> error path for every request), `settings` (`[kafka]` in protocol
//!   types), `fetch` (fetch loops and catch-up reads), `produce`, `connect` (clients and error
//!   sorting).
//! - [`check_bootstrap`]: the start-up check `main` runs when Kafka is configured.
//!
//! Not built in: compression codecs (rskafka's `compression-*` features are off), so a batch
//! a producer compressed cannot be decoded; the fetch loop logs it and the lead can turn the
//! features on. rskafka gives headers as a map: one value per name, sorted by name.
pub mod assign;
mod connect;
mod fetch;
mod plane;
mod produce;
mod settings;
mod state;
pub mod state_topics;
mod supervisor;
mod worker;

pub use assign::owner_of;
pub use connect::check_bootstrap;
pub use plane::spawn_plane;

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
