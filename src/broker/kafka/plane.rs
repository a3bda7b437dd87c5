//! [`spawn_plane`]: a shard's Kafka plane, the generic plane thread running the Kafka worker.
use std::thread::JoinHandle;

use crate::broker::plane::{handle, BrokerPlane};
use crate::config::KafkaConfig;

use super::settings::Settings;
use super::worker::Worker;
use super::KafkaError;

/// Start the Kafka plane of `shard` (of `shards`): a thread, pinned to `cpu` when given, that
/// connects (retrying with backoff for as long as it takes), fetches the partitions this shard
/// owns and serves commands.
///
/// Errors only when the configuration is unusable or the thread/runtime cannot be created; an
/// unreachable broker is not an error here (see `check_bootstrap`).
pub fn spawn_plane(
    config: &KafkaConfig,
    shard: usize,
    shards: usize,
    cpu: Option<usize>,
) -> Result<(BrokerPlane, JoinHandle<()>), KafkaError> {
    let settings = Settings::from_config(config, shard, shards.max(1))?;
    let spawned = handle::spawn(
        format!("kafka-{shard}"),
        shard,
        cpu,
        config.ring_capacity,
        move |sink, commands, shared| Worker::new(settings, sink, commands, shared).run(),
    )?;
    Ok(spawned)
}
