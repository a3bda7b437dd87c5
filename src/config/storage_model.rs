//! `[storage]`: where the embedded broker keeps its log, and what an acknowledged publish
//! promises (see the README's "Durability" section for the exact guarantees of each mode).
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// One mebibyte.
const MIB: u64 = 1024 * 1024;

/// Whether the embedded broker's events outlive the process.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum StorageMode {
    /// Each partition is an append-only log in `data_dir`: events survive a restart or a crash,
    /// and ids stay valid across restarts.
    Durable,
    /// Events live in memory only (the history of each partition); a restart loses them.
    Memory,
}

/// When an acknowledged publish has reached the disk.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum FsyncPolicy {
    /// Group commit: a publish is acknowledged (and delivered) after the `fdatasync` that covers
    /// it; publishes arriving meanwhile share the next one.
    Batch,
    /// Acknowledged after the write reached the device; `fdatasync` every `fsync_interval_ms`.
    Interval,
}

/// `[storage]`: the embedded broker's log on disk.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// `durable` (a log on disk) or `memory`. Default `durable`. Not used with `[kafka]`:
    /// Kafka is the log then.
    pub mode: StorageMode,
    /// Directory of the log, created if missing; relative paths are from the working directory.
    /// One gateway at a time (a lock file). Default `sluicegate-data`.
    pub data_dir: PathBuf,
    /// `batch` or `interval` (see [`FsyncPolicy`]). Default `batch`.
    pub fsync: FsyncPolicy,
    /// Milliseconds between syncs with `fsync = "interval"`. Default 100.
    pub fsync_interval_ms: u64,
    /// Bytes per segment file before a new one starts (at least 64 KiB). Default 67108864
    /// (64 MiB).
    pub segment_bytes: u64,
    /// Bytes of log between two entries of a segment's sparse offset index. Default 4096.
    pub index_interval_bytes: u32,
    /// Per partition: whole segments are deleted, oldest first, while the partition is larger
    /// than this; 0 keeps everything. Default 1073741824 (1 GiB).
    pub retention_bytes: u64,
    /// Per partition: a segment whose newest event is older than this many milliseconds is
    /// deleted; 0 keeps everything. Default 604800000 (7 days).
    pub retention_ms: u64,
    /// Other retention for some topics: the first entry whose patterns match a topic applies
    /// to it. Default none.
    pub topic_retention: Vec<TopicRetention>,
}

/// `[[storage.topic_retention]]`: retention for the topics matching `topics` (ACL patterns:
/// exact, `*`, `**`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TopicRetention {
    pub topics: Vec<String>,
    /// As `storage.retention_bytes`; the global value when left out.
    pub retention_bytes: Option<u64>,
    /// As `storage.retention_ms`; the global value when left out.
    pub retention_ms: Option<u64>,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            mode: StorageMode::Durable,
            data_dir: PathBuf::from("sluicegate-data"),
            fsync: FsyncPolicy::Batch,
            fsync_interval_ms: 100,
            segment_bytes: 64 * MIB,
            index_interval_bytes: 4096,
            retention_bytes: 1024 * MIB,
            retention_ms: 7 * 24 * 3600 * 1000,
            topic_retention: Vec::new(),
        }
    }
}

impl StorageConfig {
    pub fn durable(&self) -> bool {
        self.mode == StorageMode::Durable
    }
}
