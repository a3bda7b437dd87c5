//! The durable embedded log: each partition of the embedded broker as append-only segment
//! files on disk (the format is `broker::log`), written only by the partition's owner shard.
//!
//! - [`data_dir`]: the directory, its lock and the log's identity (the epoch in ids).
//! - [`recovery`]: at start, on the main thread before any shard runs: validate every segment,
//!   cut a torn or damaged tail at the last whole record, and hand each shard what it needs
//!   (the next offset, the hot tail for its history, recent idempotency keys).
//! - [`partition_log`]: the owner's writer of one partition, with glommio's direct I/O
//!   (`DmaFile`): records are appended to an in-memory tail; a flush rewrites the partial last
//!   block and writes the new ones, aligned; full segments are sealed and a new one started.
//! - [`reader`]: reading a partition back on any shard (a resume older than the history).
//!
//! When a publish counts as written (and is acknowledged and delivered) is decided by the
//! shard's commit queue (`shard::commit`): after the `fdatasync` that covers it (`batch`), or
//! after the write (`interval`, with a sync every `storage.fsync_interval_ms`).
pub mod data_dir;
pub mod partition_log;
pub mod reader;
pub mod recovery;

/// Why the log cannot be opened or written.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("storage: {what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("storage: {0}")]
    Locked(String),
    #[error("storage: {0}")]
    Identity(String),
}

/// A record read back from the log as the publish it was (to frame it like a new event).
pub fn publish_item(record: &crate::broker::log::Record) -> crate::broker::PublishItem {
    crate::broker::PublishItem {
        event_type: record.event_type.clone(),
        idempotency_key: record.idempotency_key.clone(),
        data: record.data.clone(),
        key: record.key.clone(),
        headers: record.headers.clone(),
    }
}
