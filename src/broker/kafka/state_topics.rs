//! The gateway's own state topics in Kafka (webhook subscriptions and their progress), when
//! Kafka is the broker: created when missing and read back whole at start, on the main thread
//! before any shard runs, so a gateway with Kafka keeps its webhook state in Kafka, not on its
//! disk. Their names come from the caller (this layer does not know what they hold).
use std::time::Duration;

use bytes::Bytes;
use rskafka::client::error::ProtocolError;
use rskafka::client::partition::{OffsetAt, UnknownTopicHandling};

use super::connect::{describe, unreachable, with_client};
use super::state::answer_within;
use super::KafkaError;
use crate::config::KafkaConfig;

/// Partitions of a state topic the gateway creates (small, keyed by subscription id).
const STATE_PARTITIONS: i32 = 1;

/// Create `topics` when missing and read every record of them; the values, oldest first per
/// partition.
pub fn load(config: &KafkaConfig, topics: &[&str]) -> Result<Vec<Bytes>, KafkaError> {
    let timeout = Duration::from_millis(config.request_timeout_ms);
    with_client(config, timeout, |client| async move {
        let unreachable = |reason| unreachable(config, timeout, reason);
        let broker = |context: String| move |reason: String| KafkaError::Broker { context, reason };
        let listed = answer_within(timeout, "metadata", client.list_topics())
            .await
            .map_err(|e| unreachable(e.describe()))?;
        for topic in topics {
            if listed.iter().any(|t| t.name == *topic) {
                continue;
            }
            let controller = client
                .controller_client()
                .map_err(|e| broker(format!("creating `{topic}`"))(describe(&e)))?;
            let timeout_ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
            let create = controller.create_topic(
                *topic,
                STATE_PARTITIONS,
                config.replication_factor as i16,
                timeout_ms,
            );
            match answer_within(timeout, "topic creation", create).await {
                Ok(()) => tracing::info!(%topic, "kafka: created the gateway's state topic"),
                Err(e) if matches!(e.protocol_error(), Some(ProtocolError::TopicAlreadyExists)) => {
                }
                Err(e) => return Err(broker(format!("creating `{topic}`"))(e.describe())),
            }
        }
        let listed = answer_within(timeout, "metadata", client.list_topics())
            .await
            .map_err(|e| unreachable(e.describe()))?;
        let mut values = Vec::new();
        for topic in topics {
            let partitions = listed
                .iter()
                .find(|t| t.name == *topic)
                .map(|t| t.partitions.len())
                .unwrap_or(0);
            for partition in 0..partitions as i32 {
                let read = read_partition(&client, topic, partition, config, timeout).await;
                values.extend(read.map_err(broker(format!("reading `{topic}`")))?);
            }
        }
        Ok(values)
    })
}

async fn read_partition(
    client: &rskafka::client::Client,
    topic: &str,
    partition: i32,
    config: &KafkaConfig,
    timeout: Duration,
) -> Result<Vec<Bytes>, String> {
    let pc = client
        .partition_client(topic, partition, UnknownTopicHandling::Retry)
        .await
        .map_err(|e| describe(&e))?;
    let earliest = answer_within(timeout, "list offsets", pc.get_offset(OffsetAt::Earliest))
        .await
        .map_err(|e| e.describe())?;
    let latest = answer_within(timeout, "list offsets", pc.get_offset(OffsetAt::Latest))
        .await
        .map_err(|e| e.describe())?;
    let max_bytes = i32::try_from(config.fetch_max_bytes).unwrap_or(i32::MAX);
    let mut from = earliest;
    let mut values = Vec::new();
    while from < latest {
        let (records, _) = answer_within(timeout, "fetch", pc.fetch_records(from, 1..max_bytes, 0))
            .await
            .map_err(|e| e.describe())?;
        let Some(last) = records.last().map(|r| r.offset) else {
            break;
        };
        for r in records {
            if r.offset >= from {
                if let Some(v) = r.record.value {
                    values.push(Bytes::from(v));
                }
            }
        }
        from = last + 1;
    }
    Ok(values)
}
