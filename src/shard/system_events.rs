//! Each shard's publisher of its system events (`telemetry::system_events`): it takes what is
//! queued, publishes it to the system topics through the ordinary publish path (this shard's
//! partition of each, so one shard's events stay in order), and counts what it had to drop.
use std::collections::BTreeMap;
use std::rc::Rc;

use bytes::Bytes;

use crate::broker::{PartitionKey, PublishItem};
use crate::shard::context::ShardContext;
use crate::telemetry::ShardMetrics;

/// Publish this shard's system events until shutdown.
pub async fn run(ctx: Rc<ShardContext>) {
    let partitions = ctx.config().memory_broker.partitions.max(1);
    let partition = (ctx.id as u32) % partitions;
    loop {
        let batch = ctx.system_events.next_batch().await;
        if ctx.shutdown.is_triggered() {
            return;
        }
        let mut by_topic: BTreeMap<&'static str, Vec<PublishItem>> = BTreeMap::new();
        for (topic, json) in batch {
            by_topic.entry(topic.name()).or_default().push(PublishItem {
                event_type: None,
                idempotency_key: None,
                data: Bytes::from(json),
                key: None,
                headers: Vec::new(),
            });
        }
        for (topic, items) in by_topic {
            let n = items.len() as u64;
            let key = PartitionKey {
                topic: topic.into(),
                partition,
            };
            match ctx.publish(key, items).await {
                Ok(_) => ShardMetrics::add(&ctx.metrics().system_events_total, n),
                // Busy, storage trouble, draining: telemetry gives way.
                Err(_) => ctx.system_events.count_dropped(n),
            }
        }
        ShardMetrics::add(
            &ctx.metrics().system_events_dropped_total,
            ctx.system_events.take_dropped(),
        );
    }
}
