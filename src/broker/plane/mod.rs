//! A broker *plane*: the thread beside each shard that talks to an external log (Kafka with
//! `rskafka`, Redis Streams with `fred`; both tokio crates, so the plane runs a tokio
//! current-thread runtime, not glommio) and the messages it exchanges with its shard.
//!
//! Both logs speak the same protocol to the shard, so the shard's end (`shard::broker_link`)
//! and every delivery path above it (publish, backfill, webhook lanes) do not know which log
//! they run on:
//! - [`events`]: [`PlaneEvent`] up the ring, [`PlaneCommand`] down.
//! - [`handle`]: [`BrokerPlane`], the shard-side handle (two `rtrb` rings and the wakers), and
//!   [`handle::spawn`], which starts a plane thread around a log's worker.
//! - [`sink`]: the plane's end of the event ring (waits, never drops, while it is full).
//! - [`record`]: [`LogRecord`], a record read back from the log, and [`EventTypeRule`].
//! - [`dedup`]: [`RecentIds`], the owner's window of idempotency keys per partition.
//! - [`backoff`]: capped exponential backoff with jitter for reconnects and retries.
pub mod backoff;
pub mod dedup;
pub mod events;
pub mod handle;
pub mod record;
pub(crate) mod sink;

pub use dedup::RecentIds;
pub use events::{
    BrokerState, FetchError, Fetched, PlaneCommand, PlaneEvent, ProduceError, ProduceRecord,
    Produced,
};
pub use handle::BrokerPlane;
pub use record::{EventTypeRule, LogRecord, ID_HEADER};
