//! Per-shard counters and their Prometheus text.
//!
//! Each shard writes only its own [`ShardMetrics`] (relaxed atomics on lines no other core
//! writes, so an increment costs about what a plain add does); `/metrics` on any shard reads all
//! of them.
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

pub mod latency;
pub mod system_events;
pub mod webhook_status;

macro_rules! counters {
    ($($(#[doc = $doc:literal])* $name:ident: $kind:literal,)*) => {
        /// One shard's counters and gauges. Aligned to 128 bytes (two cache lines, as the
        /// adjacent-line prefetcher pairs them) so that shards, which sit side by side in one
        /// slice, never write to a line another shard writes.
        #[derive(Default)]
        #[repr(align(128))]
        pub struct ShardMetrics {
            $($(#[doc = $doc])* pub $name: AtomicU64,)*
        }

        impl ShardMetrics {
            fn describe() -> &'static [(&'static str, &'static str, &'static str)] {
                &[$((stringify!($name), $kind, concat!($($doc),*)),)*]
            }

            fn values(&self) -> Vec<u64> {
                vec![$(self.$name.load(Ordering::Relaxed),)*]
            }
        }
    };
}

counters! {
    /// Connections accepted.
    connections_accepted_total: "counter",
    /// Connections open now.
    connections_open: "gauge",
    /// SSE subscribers connected now.
    sse_subscribers: "gauge",
    /// Events appended by partitions this shard owns.
    events_published_total: "counter",
    /// Publishes refused because the gateway was busy or draining.
    publishes_refused_total: "counter",
    /// Event frames queued to subscribers on this shard.
    deliveries_total: "counter",
    /// Bytes written to SSE subscribers.
    sse_bytes_written_total: "counter",
    /// Write system calls made for SSE subscribers (deliveries / writes = frames per syscall).
    sse_writes_total: "counter",
    /// Times an SSE session task was woken and polled (the shard writer writes live events
    /// without waking sessions; wakes / deliveries is the wake-up cost per delivery).
    sse_session_wakes_total: "counter",
    /// Subscribers disconnected because they fell too far behind.
    slow_consumer_disconnects_total: "counter",
    /// Subscribers that resumed from a Last-Event-ID.
    resumes_total: "counter",
    /// Resumes that had to start with a reset (asked for events no longer held).
    resets_total: "counter",
    /// HTTP requests answered with a 4xx status.
    http_client_errors_total: "counter",
    /// Requests refused with 401: no credential where one is needed, or a bad one.
    auth_failures_total: "counter",
    /// Requests refused with 403: a topic the principal may not publish to or read.
    forbidden_total: "counter",
    /// Publishes refused by a rate limit (429, or 413 when larger than a limit's burst).
    publishes_rate_limited_total: "counter",
    /// Connections refused by a per-address limit (open connections or new-connection rate).
    connections_refused_by_ip_total: "counter",
    /// Events not sent to a subscriber over its egress limit (`limits.egress_over_limit =
    /// "drop"`).
    egress_events_dropped_total: "counter",
    /// Streams closed for going over their egress limit (`"disconnect"`).
    egress_disconnects_total: "counter",
    /// Streams closed because their token expired.
    token_expired_closes_total: "counter",
    /// WebSocket connections open now.
    ws_connections: "gauge",
    /// WebSocket streams closed for a client's protocol error, its close, or a missed pong.
    ws_protocol_closes_total: "counter",
    /// Messages WebSocket clients sent (publish requests, pongs excluded).
    ws_messages_received_total: "counter",
    /// Mesh messages parked because a ring was full.
    mesh_parked_total: "counter",
    /// Kafka records not delivered because their value is not UTF-8 text.
    kafka_records_skipped_total: "counter",
    /// Kafka records not delivered because they repeat an idempotency key (Sluicegate-Id) seen
    /// recently in their partition: a publisher's retry of a publish whose first attempt did
    /// reach the broker.
    kafka_duplicates_dropped_total: "counter",
    /// 1 while this shard's Kafka plane is connected to the brokers (0 without Kafka).
    kafka_broker_up: "gauge",
    /// 1 once this shard knows the partitions of every configured Kafka topic.
    kafka_topics_ready: "gauge",
    /// Redis broker mode: entries not delivered because their data is not UTF-8 text.
    redis_records_skipped_total: "counter",
    /// Redis broker mode: entries not delivered because they repeat an idempotency key seen
    /// recently in their partition (a publisher's retry).
    redis_duplicates_dropped_total: "counter",
    /// 1 while this shard's Redis plane (broker mode) is connected (0 otherwise).
    redis_broker_up: "gauge",
    /// 1 once this shard's Redis plane (broker mode) is connected and serves its topics.
    redis_topics_ready: "gauge",
    /// Redis sink: events written to their Redis stream (acknowledged by Redis).
    redis_sink_mirrored_total: "counter",
    /// Redis sink: pipelined writes retried after a failure (each may repeat entries).
    redis_sink_retries_total: "counter",
    /// Redis sink: events not mirrored: the queue was full (`overflow = "drop"`), or Redis
    /// refused the entry itself (a key of another type).
    redis_sink_dropped_total: "counter",
    /// Redis sink: events waiting to be written (the lag), now.
    redis_sink_lag: "gauge",
    /// Redis sink: 1 while the last write to Redis succeeded (0 during an outage).
    redis_sink_up: "gauge",
    /// Events written to the durable log by this shard (the owner of their partition).
    storage_records_written_total: "counter",
    /// Bytes of records written to the durable log.
    storage_bytes_written_total: "counter",
    /// Flushes of the durable log (one per partition written per group commit).
    storage_flushes_total: "counter",
    /// fdatasync calls on the durable log.
    storage_fsyncs_total: "counter",
    /// Microseconds spent in fdatasync (divide by `storage_fsyncs_total` for the mean).
    storage_fsync_micros_total: "counter",
    /// Writes or syncs of the durable log that failed (disk full, I/O error); each refuses
    /// the publishes it carried with 503.
    storage_errors_total: "counter",
    /// 1 while this shard's last write to the durable log failed (reads go on; publishes to
    /// its partitions get 503 until a write succeeds again).
    storage_failing: "gauge",
    /// Webhook subscriptions this shard drives now.
    webhook_subscriptions: "gauge",
    /// Webhook requests sent (every attempt, retries included).
    webhook_attempts_total: "counter",
    /// Webhook deliveries answered 2xx.
    webhook_delivered_total: "counter",
    /// Webhook attempts that failed (non-2xx, timeout, refused address, connection error).
    webhook_failures_total: "counter",
    /// Events given up on after the retry budget and sent to the dead-letter topic.
    webhook_dead_letters_total: "counter",
    /// Events a webhook subscription never got because they were gone when it reached them
    /// (memory mode's bounded history, or retention of the log/Kafka).
    webhook_events_skipped_total: "counter",
    /// Webhook subscriptions disabled (410 Gone, or failing too long) or removed (WebSub 410,
    /// lease expiry).
    webhook_disabled_total: "counter",
    /// System events published (`gateway.event.received`, `gateway.subscriber.*`, ...).
    system_events_total: "counter",
    /// System events dropped: the shard's queue was full or the broker refused them.
    system_events_dropped_total: "counter",
    /// Sync hook calls made (publish and subscribe hooks).
    hook_calls_total: "counter",
    /// Sync hook calls that failed (error, time limit, open circuit); the hook's failure
    /// policy answered them.
    hook_failures_total: "counter",
    /// Publishes and streams a sync hook refused.
    hook_rejections_total: "counter",
}

impl ShardMetrics {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn set(gauge: &AtomicU64, n: u64) {
        gauge.store(n, Ordering::Relaxed);
    }

    pub fn sub(counter: &AtomicU64, n: u64) {
        counter.fetch_sub(n, Ordering::Relaxed);
    }
}

/// Prometheus text exposition of every shard's metrics, labelled by shard.
pub fn render(shards: &[ShardMetrics]) -> String {
    let mut out = String::with_capacity(4096);
    let per_shard: Vec<Vec<u64>> = shards.iter().map(ShardMetrics::values).collect();
    for (i, (name, kind, help)) in ShardMetrics::describe().iter().enumerate() {
        let _ = writeln!(out, "# HELP sluicegate_{name} {}", help.trim());
        let _ = writeln!(out, "# TYPE sluicegate_{name} {kind}");
        for (shard, values) in per_shard.iter().enumerate() {
            let _ = writeln!(out, "sluicegate_{name}{{shard=\"{shard}\"}} {}", values[i]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_metrics_do_not_share_cache_lines() {
        assert_eq!(std::mem::align_of::<ShardMetrics>(), 128);
        assert_eq!(std::mem::size_of::<ShardMetrics>() % 128, 0);
    }

    #[test]
    fn renders_every_shard() {
        let shards = [ShardMetrics::default(), ShardMetrics::default()];
        ShardMetrics::add(&shards[1].deliveries_total, 7);
        let text = render(&shards);
        assert!(text.contains("# TYPE sluicegate_deliveries_total counter"));
        assert!(text.contains("sluicegate_deliveries_total{shard=\"1\"} 7"));
        assert!(text.contains("sluicegate_deliveries_total{shard=\"0\"} 0"));
    }
}
