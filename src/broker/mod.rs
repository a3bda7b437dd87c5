//! Where events come from and are kept for resume.
//!
//! The interface the rest of the gateway sees is small on purpose: a partition has an *owner*
//! shard that gives each event its offset and frames it once ([`FramedEvent`]); every shard keeps
//! a [`memory::History`] of each partition it has seen, fed in offset order by the ring from the
//! owner, and resumes clients from it. The Kafka source (a later issue) produces the same
//! `FramedEvent`s from fetched records, so delivery does not know which broker it runs on.
//! [`routing`] is the pure partition -> shard (and key -> partition) mapping; it lives here,
//! below `shard`, because the Kafka plane needs it too and a layer never imports one above it.
pub mod durable;
pub mod embedded;
pub mod framing;
pub mod kafka;
pub mod log;
pub mod memory;
pub mod plane;
pub mod redis;
pub mod routing;
pub mod wire;

pub use wire::WireCache;

use std::sync::Arc;

use bytes::Bytes;

/// One partition of one topic.
#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord)]
pub struct PartitionKey {
    pub topic: Arc<str>,
    pub partition: u32,
}

/// An event with its place in a partition, framed once for SSE. Cheap to clone (reference counts).
#[derive(Clone, Debug)]
pub struct FramedEvent {
    pub key: PartitionKey,
    /// Position in the partition, from 0.
    pub offset: u64,
    /// The whole SSE frame: `id:` line first, then `event:`, `data:` lines and the blank line.
    pub frame: Bytes,
    /// Length of the leading `id: ...\n` line, so a subscriber that needs its own id line can
    /// send `frame[id_len..]` after it without copying the payload.
    pub id_len: usize,
    /// What subscriber filters look at: the event type and the key (publisher key or Kafka
    /// record key). Kept beside the frame so filtering never re-parses it.
    pub meta: EventMeta,
    /// Its other wire encodings (WebSocket), made on this shard when first needed.
    pub wire: WireCache,
}

/// The parts of an event that filters match on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventMeta {
    pub event_type: Option<Arc<str>>,
    pub key: Option<Bytes>,
    /// Kafka record headers, or a publish's `Sluicegate-Header-*` headers (names lower case).
    /// Shared, so the per-shard copies of an event do not copy them.
    pub headers: Option<SharedHeaders>,
}

impl EventMeta {
    /// The first header called `name` (ASCII case-insensitive).
    pub fn header(&self, name: &str) -> Option<&Bytes> {
        self.headers
            .as_deref()?
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }
}

/// An event's headers, shared by every copy of it.
pub type SharedHeaders = Arc<[(Box<str>, Bytes)]>;

/// Headers as kept in [`EventMeta`]; `None` when there are none.
pub fn shared_headers(headers: &[(String, Bytes)]) -> Option<SharedHeaders> {
    (!headers.is_empty()).then(|| {
        headers
            .iter()
            .map(|(n, v)| (n.as_str().into(), v.clone()))
            .collect()
    })
}

impl FramedEvent {
    /// The frame without its id line.
    pub fn body(&self) -> &[u8] {
        self.frame.get(self.id_len..).unwrap_or(&[])
    }
}

/// An event as a publisher handed it in, before it has an offset.
#[derive(Clone, Debug)]
pub struct PublishItem {
    /// SSE `event:` type, if any.
    pub event_type: Option<Arc<str>>,
    /// Publisher-chosen idempotency key: a repeat within the retained history is not appended
    /// again; the publish answers with the id the first one got.
    pub idempotency_key: Option<Box<str>>,
    /// The event data (validated UTF-8).
    pub data: Bytes,
    /// The publisher's key (`?key=`), kept for filters and, with Kafka, as the record key.
    pub key: Option<Bytes>,
    /// The publish's `Sluicegate-Header-<name>` headers, kept for filters (and, with Kafka, as
    /// record headers).
    pub headers: Vec<(String, Bytes)>,
}

/// Why a publish was not accepted.
///
/// The HTTP answer of each is decided here, in one place ([`PublishError::status`],
/// [`PublishError::retry_after`]), as a plain status number: this layer names no response type.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum PublishError {
    /// Back-pressure: a ring or backlog between shards is full. Retrying later may help.
    #[error("gateway busy: {0}; retry shortly")]
    Busy(String),
    /// The gateway is shutting down.
    #[error("gateway is shutting down")]
    ShuttingDown,
    /// The event cannot be framed (should have been caught when the request was read).
    #[error("{0}")]
    Invalid(String),
    /// The durable log could not write it (disk full, I/O error): nothing was acknowledged
    /// or delivered. Retrying later may help.
    #[error("storage: {0}; nothing was written, retry later")]
    Storage(String),
}

/// An error a client will see: it says which HTTP status answers it and whether a retry may
/// help, so the delivery layer maps every refusal the same way (`delivery::publish::refusal`).
pub trait Refusal: std::fmt::Display {
    fn status(&self) -> u16;
    /// Seconds worth waiting before a retry, when a retry may help.
    fn retry_after(&self) -> Option<u32>;
}

impl Refusal for PublishError {
    /// The HTTP status a publisher gets: 503 while busy or stopping (nothing was appended), 400
    /// for an event that cannot be framed.
    fn status(&self) -> u16 {
        match self {
            Self::Busy(_) | Self::ShuttingDown | Self::Storage(_) => 503,
            Self::Invalid(_) => 400,
        }
    }

    /// Seconds worth waiting before a retry, when a retry may help. Not while shutting down:
    /// this process will not take the event; the publisher should go to another instance.
    fn retry_after(&self) -> Option<u32> {
        match self {
            Self::Busy(_) | Self::Storage(_) => Some(1),
            Self::ShuttingDown | Self::Invalid(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_errors_decide_their_status_and_retry() {
        let busy = PublishError::Busy("ring full".into());
        assert_eq!((busy.status(), busy.retry_after()), (503, Some(1)));
        let stopping = PublishError::ShuttingDown;
        assert_eq!((stopping.status(), stopping.retry_after()), (503, None));
        let invalid = PublishError::Invalid("bad".into());
        assert_eq!((invalid.status(), invalid.retry_after()), (400, None));
    }
}
