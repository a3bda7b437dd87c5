//! Starting the durable log: open and lock the data directory, recover it (on the main thread,
//! before any shard runs), and give each shard the logs of the partitions it owns.
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use crate::broker::durable::data_dir::DataDir;
use crate::broker::durable::partition_log::{LogSettings, PartitionLog};
use crate::broker::durable::recovery::{recover, Recovered, TailLimits};
use crate::broker::durable::StorageError;
use crate::broker::routing::shard_for;
use crate::config::Config;
use crate::shard::commit::DurableLog;

/// The open data directory (locked while this lives) and what recovery found in it.
pub struct OpenedStorage {
    pub dir: DataDir,
    pub recovered: Arc<Recovered>,
}

/// Open, lock and recover the data directory when `storage.mode = "durable"`.
pub fn open(config: &Config) -> Result<Option<OpenedStorage>, StorageError> {
    let storage = &config.storage;
    if !storage.durable() {
        return Ok(None);
    }
    // With Kafka, Kafka is the log of every topic but the gateway's own (`gateway.*`: webhook
    // subscriptions, their progress, dead letters), which the embedded broker keeps here.
    let dir = DataDir::open(&storage.data_dir, config.memory_broker.partitions)?;
    let started = Instant::now();
    let tail = TailLimits {
        events: config.memory_broker.history_events,
        bytes: config.memory_broker.history_bytes,
        // The webhook engine rebuilds its subscriptions from every record of these.
        whole: crate::delivery::webhook::model::is_state_topic,
    };
    let recovered = recover(&dir, tail, storage.index_interval_bytes)?;
    tracing::info!(
        data_dir = %dir.path().display(),
        partitions = recovered.partitions.len(),
        records = recovered.records,
        bytes = recovered.bytes,
        damaged_bytes_dropped = recovered.damaged_bytes,
        millis = started.elapsed().as_millis() as u64,
        "durable log recovered"
    );
    Ok(Some(OpenedStorage {
        dir,
        recovered: Arc::new(recovered),
    }))
}

/// The durable log of the partitions `shard` owns, continuing what recovery found.
pub fn durable_for_shard(
    config: &Config,
    root: &std::path::Path,
    block_bytes: u64,
    shard: usize,
    shards: usize,
    recovered: &Recovered,
) -> DurableLog {
    let settings = LogSettings {
        segment_bytes: config.storage.segment_bytes,
        index_interval: config.storage.index_interval_bytes,
        block_bytes,
    };
    let logs: HashMap<_, _> = recovered
        .partitions
        .iter()
        .filter(|p| shard_for(&p.key.topic, p.key.partition, shards) == shard)
        .map(|p| (p.key.clone(), PartitionLog::recovered(p, settings)))
        .collect();
    DurableLog::new(root.to_owned(), settings, config.storage.fsync, logs)
}
