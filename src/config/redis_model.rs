//! `[redis]`: Redis Streams, as a mirror of what flows through the gateway (`sink`) or as the
//! log itself, shared by several gateway instances (`broker`). See the README's "Redis Streams".
use serde::{Deserialize, Serialize};

/// What Redis is to the gateway.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RedisMode {
    /// Events of `sink_topics`, whatever their source, are copied to Redis streams by the shard
    /// owning their partition, in partition order. The gateway's own log stays what it was.
    Sink,
    /// Redis streams are the log of `topics` (instead of the embedded broker): a publish is an
    /// `XADD`, acknowledged after Redis answered; every instance reads every partition.
    Broker,
}

/// What the sink does with an event when `sink_queue_events` are already waiting for Redis.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SinkOverflow {
    /// Refuse publishes to mirrored topics with 503 (and stop reading Kafka) until the queue
    /// drains: nothing is lost, publishers retry.
    Block,
    /// Drop the event from the mirror and count it (`sluicegate_redis_sink_dropped_total`);
    /// subscribers still get it.
    Drop,
}

/// `[redis]`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RedisConfig {
    /// `redis://[user:password@]host:port[/db]`; empty turns Redis off. Default empty.
    pub url: String,
    /// `sink` or `broker`. Default `sink`.
    pub mode: RedisMode,
    /// Stream key of a partition; `{topic}` and `{partition}` are replaced. Default
    /// `sluicegate:{topic}:{partition}`.
    pub key_template: String,
    /// `XADD ... MAXLEN ~ maxlen`: entries a stream keeps (approximately; Redis trims whole
    /// nodes). 0 never trims. Default 1000000.
    pub maxlen: u64,
    /// Sink mode: the topics mirrored (ACL patterns: exact, `*`, `**`). System topics
    /// (`gateway.*`) are mirrored only by a pattern that starts with `gateway.`; the webhook
    /// state topics (`gateway.webhooks*`, which hold secrets) never. Default `["**"]`.
    pub sink_topics: Vec<String>,
    /// Sink mode: events per shard waiting for Redis (during an outage) before `overflow`
    /// applies. Default 100000.
    pub sink_queue_events: usize,
    /// Sink mode: `block` or `drop`. Default `block`.
    pub overflow: SinkOverflow,
    /// Sink mode: most entries in one pipelined round trip. Default 512.
    pub sink_batch: usize,
    /// Broker mode: the topics Redis keeps (any other topic gets 404, as with Kafka).
    pub topics: Vec<String>,
    /// Broker mode: partitions of every topic (1..=1024); every instance must agree.
    /// Default 1.
    pub partitions: u32,
    /// Broker mode: milliseconds one blocking `XREAD` waits for new entries. Default 1000.
    pub block_ms: u64,
    /// Broker mode: most entries one read returns (live reading and a resume's catch-up).
    /// Default 512.
    pub read_count: u64,
    /// Broker mode: idempotency keys remembered per partition (as `kafka.dedup_window`).
    /// Default 4096.
    pub dedup_window: usize,
    /// Milliseconds one Redis command may take before it counts as failed. Default 5000.
    pub request_timeout_ms: u64,
    /// First retry/reconnect delay in milliseconds; it doubles (with jitter) up to
    /// `backoff_max_ms`. Default 100.
    pub backoff_initial_ms: u64,
    /// Longest retry/reconnect delay in milliseconds. Default 5000.
    pub backoff_max_ms: u64,
    /// Capacity, in messages, of each ring between a shard and its Redis thread (at least
    /// 16). Default 1024.
    pub ring_capacity: usize,
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self {
            url: String::new(),
            mode: RedisMode::Sink,
            key_template: "sluicegate:{topic}:{partition}".to_owned(),
            maxlen: 1_000_000,
            sink_topics: vec!["**".to_owned()],
            sink_queue_events: 100_000,
            overflow: SinkOverflow::Block,
            sink_batch: 512,
            topics: Vec::new(),
            partitions: 1,
            block_ms: 1000,
            read_count: 512,
            dedup_window: 4096,
            request_timeout_ms: 5000,
            backoff_initial_ms: 100,
            backoff_max_ms: 5000,
            ring_capacity: 1024,
        }
    }
}

impl RedisConfig {
    /// Redis is on when a URL is given.
    pub fn enabled(&self) -> bool {
        !self.url.is_empty()
    }

    /// Redis streams are the log of `topics`.
    pub fn is_broker(&self) -> bool {
        self.enabled() && self.mode == RedisMode::Broker
    }

    /// Events are mirrored to Redis.
    pub fn is_sink(&self) -> bool {
        self.enabled() && self.mode == RedisMode::Sink
    }

    /// `url` without its password, for logs.
    pub fn display_url(&self) -> String {
        match (self.url.find("://"), self.url.rfind('@')) {
            (Some(scheme), Some(at)) if at > scheme => {
                format!("{}://{}", &self.url[..scheme], &self.url[at + 1..])
            }
            _ => self.url.clone(),
        }
    }

    /// The stream key of one partition.
    pub fn stream_key(&self, topic: &str, partition: u32) -> String {
        self.key_template
            .replace("{topic}", topic)
            .replace("{partition}", itoa::Buffer::new().format(partition))
    }
}
