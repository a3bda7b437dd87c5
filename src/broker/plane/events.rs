//! The messages between a shard and its broker plane: events up the ring, commands down.

use std::sync::Arc;

use bytes::Bytes;

use super::record::LogRecord;
use crate::broker::Refusal;

/// What the plane tells its shard.
#[derive(Debug)]
pub enum PlaneEvent {
    /// New records of a partition this shard owns, in offset order, never repeated.
    Records {
        topic: Arc<str>,
        partition: i32,
        records: Vec<LogRecord>,
        /// The partition's next offset to be written, as of this fetch.
        high_watermark: i64,
    },
    /// Idempotency keys of records before where a partition's fetch loop started (read back
    /// once, at most `kafka.dedup_window` records): the owner remembers them without
    /// delivering anything, so a retry of a publish written before the start is still dropped.
    SeenIds {
        topic: Arc<str>,
        partition: i32,
        /// `(key, offset)` in offset order.
        ids: Vec<(Bytes, i64)>,
    },
    /// The answer to [`PlaneCommand::Fetch`].
    FetchDone {
        request_id: u64,
        result: Result<Fetched, FetchError>,
    },
    /// The answer to [`PlaneCommand::Produce`], after the broker acknowledged.
    ProduceDone {
        request_id: u64,
        result: Result<Vec<Produced>, ProduceError>,
    },
    /// The connection to the brokers changed state (sent once per change).
    BrokerState(BrokerState),
    /// A configured topic's partitions, when first seen and when the count changes.
    Partitions {
        topic: Arc<str>,
        /// Partitions the topic has (ids 0..count).
        count: i32,
        /// Those this shard owns and now fetches.
        owned: Vec<i32>,
    },
    /// A configured topic cannot be read (sent once until it can): it does not exist and
    /// `create_topics` is false, or creating it failed.
    TopicError { topic: Arc<str>, reason: String },
}

/// Whether the plane can talk to the brokers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BrokerState {
    Up,
    Down { reason: String },
}

/// Records read back for a resuming client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fetched {
    /// From the asked offset on, in order; empty when the partition has nothing there yet.
    pub records: Vec<LogRecord>,
    /// The partition's next offset to be written: the client is caught up when it has read
    /// up to here.
    pub high_watermark: i64,
}

/// Why a catch-up fetch failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// The offset is outside what the broker retains: below `earliest` (deleted by retention:
    /// answer the client with `event: reset`) or past `latest`.
    #[error("offset out of range: the partition retains offsets {earliest}..{latest}")]
    OffsetOutOfRange { earliest: i64, latest: i64 },
    /// Not connected to the brokers.
    #[error("the log (kafka or redis) is unavailable: {0}")]
    BrokerDown(String),
    /// The broker refused the request (unknown partition, ...).
    #[error("reading the log failed: {0}")]
    Failed(String),
}

/// One record to produce.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProduceRecord {
    pub key: Option<Bytes>,
    pub headers: Vec<(String, Bytes)>,
    pub value: Bytes,
    /// The publisher's idempotency key. Written as the [`super::record::ID_HEADER`] header, and
    /// (when there is no `key`) hashed to pick the partition, so a retry lands where the first
    /// attempt did and the owner shard can recognise the repeat.
    pub id: Option<Bytes>,
    /// The event type, for a log that keeps it in a field of its own (Redis); Kafka carries
    /// it in the `kafka.event_type_header` header, put in `headers` by the shard.
    pub event_type: Option<Bytes>,
}

/// Where a produced record landed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Produced {
    pub partition: i32,
    pub offset: i64,
}

/// Why a produce failed, split by what the publisher may assume about the records.
///
/// The HTTP answer of each is decided here, in one place ([`ProduceError::status`],
/// [`ProduceError::retry_after`]), as a plain status number: this layer names no response type.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProduceError {
    /// Refused before any produce request was issued (the broker is known to be down, the
    /// plane's command ring is full, or finding the partition failed): nothing was written.
    #[error("the log (kafka or redis) is unavailable, nothing was written: {0}")]
    BrokerDown(String),
    /// A produce request was issued but no acknowledgement came back (connection lost, or no
    /// answer within `kafka.request_timeout_ms`): the records may or may not have been written.
    /// rskafka retries a broken connection internally, so which attempt's bytes reached the
    /// broker cannot be known from the final error: any transport failure after issuing counts.
    #[error(
        "the broker did not acknowledge ({0}); the events may or may not have been written; \
         retry with the same Sluicegate-Id to publish at most once"
    )]
    Unacknowledged(String),
    /// The topic does not exist (or has no such partition).
    #[error("unknown topic or partition: {0}")]
    UnknownTopic(String),
    /// The broker refused the records (too large, ...).
    #[error("the log refused the records: {0}")]
    Rejected(String),
}

impl Refusal for ProduceError {
    /// The HTTP status a publisher gets: 503 "nothing written, retry later", 504 "outcome
    /// unknown", 404 unknown topic, 502 the broker said no.
    fn status(&self) -> u16 {
        match self {
            Self::BrokerDown(_) => 503,
            Self::Unacknowledged(_) => 504,
            Self::UnknownTopic(_) => 404,
            Self::Rejected(_) => 502,
        }
    }

    /// Seconds worth waiting before a retry, when a retry may help.
    fn retry_after(&self) -> Option<u32> {
        match self {
            Self::BrokerDown(_) | Self::Unacknowledged(_) => Some(1),
            Self::UnknownTopic(_) | Self::Rejected(_) => None,
        }
    }
}

impl ProduceError {
    /// True when records may have reached the broker: a failure that says so outranks one
    /// that says "nothing written" when a batch spans partitions.
    pub fn may_have_written(&self) -> bool {
        matches!(self, Self::Unacknowledged(_))
    }
}

/// The answer for a command whose batches (one per partition) did not all succeed. A failure
/// that may have written outranks one that did not; and when another partition's batch was
/// written, "nothing written" would be false, so the answer is "outcome unknown" then too.
pub(crate) fn combine_produce_errors(
    errors: Vec<ProduceError>,
    some_written: bool,
) -> Option<ProduceError> {
    let worst = errors
        .iter()
        .find(|e| e.may_have_written())
        .or_else(|| errors.first())
        .cloned()?;
    if some_written && !worst.may_have_written() {
        return Some(ProduceError::Unacknowledged(format!(
            "part of the batch was written, the rest failed: {worst}"
        )));
    }
    Some(worst)
}

/// What a shard asks its plane to do.
#[derive(Debug)]
pub enum PlaneCommand {
    /// Produce `records` as one batch per partition and answer with [`PlaneEvent::ProduceDone`]
    /// once the broker acknowledged. `partition: None` picks it by key hash (the same function
    /// the embedded broker uses) or round robin for records without a key.
    Produce {
        request_id: u64,
        topic: Arc<str>,
        partition: Option<i32>,
        records: Vec<ProduceRecord>,
    },
    /// Read up to `max_bytes` of records of any partition from `offset` (a resuming client);
    /// answered with [`PlaneEvent::FetchDone`].
    Fetch {
        request_id: u64,
        topic: Arc<str>,
        partition: i32,
        offset: i64,
        max_bytes: i32,
    },
    /// Stop fetching and end the plane thread.
    Shutdown,
}
