//! The configuration structs: what each setting means, its unit and its built-in default.
//!
//! Every struct is `deny_unknown_fields` (a typo is an error, not a silently ignored key) and
//! `default` (a key left out keeps its default). `src/config/example.toml` lists every key with
//! its default; a test keeps the two in step.

use serde::{Deserialize, Serialize};
use std::net::{Ipv4Addr, SocketAddr};

use super::events_model::SystemEventsConfig;
use super::hooks_model::HooksConfig;
use super::policy_model::{AuthConfig, LimitsConfig};
use super::redis_model::RedisConfig;
use super::storage_model::StorageConfig;
use super::webhook_model::WebhooksConfig;

/// One mebibyte, the unit several byte limits are written in.
const MIB: usize = 1024 * 1024;

/// The whole gateway configuration, one field per TOML section.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// `[server]`: listen address, shard count and CPU pinning, shutdown.
    pub server: ServerConfig,
    /// `[http]`: HTTP/1.1 request limits, timeouts and CORS.
    pub http: HttpConfig,
    /// `[sse]`: server-sent-events streams to subscribers.
    pub sse: SseConfig,
    /// `[ws]`: WebSocket connections.
    pub ws: WsConfig,
    /// `[memory_broker]`: the embedded in-memory broker and its resume history.
    pub memory_broker: MemoryBrokerConfig,
    /// `[storage]`: the embedded broker's log on disk (or memory only).
    pub storage: StorageConfig,
    /// `[mesh]`: the shard-to-shard ring mesh.
    pub mesh: MeshConfig,
    /// `[log]`: logging.
    pub log: LogConfig,
    /// `[kafka]`: the Kafka source and sink; off while `bootstrap` is empty.
    pub kafka: KafkaConfig,
    /// `[redis]`: Redis Streams as a mirror (sink) or the log (broker); off while `url` is
    /// empty.
    pub redis: RedisConfig,
    /// `[auth]`: credentials and what anonymous requests may do.
    pub auth: AuthConfig,
    /// `[limits]`: rate limits (token buckets) and admission.
    pub limits: LimitsConfig,
    /// `[webhooks]`: receiving webhooks, and delivering them (endpoints, WebSub hub).
    pub webhooks: WebhooksConfig,
    /// `[system_events]`: the gateway's events about its own work.
    pub system_events: SystemEventsConfig,
    /// `[hooks]`: sync HTTP hooks on publish and subscribe.
    pub hooks: HooksConfig,
}

/// `[server]`: where the gateway listens and how many executors it runs.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address the HTTP listener binds (every shard binds it with SO_REUSEPORT).
    /// Default `127.0.0.1:8080`.
    pub listen: SocketAddr,
    /// Number of shards (one executor thread each); 0 means one per CPU available to the
    /// process. At most 1024. Default 0.
    pub shards: usize,
    /// CPU ids to pin to: shard `i` runs on `cpus[i]`. Empty means shard `i` on CPU `i`. When
    /// non-empty it must list exactly one CPU per shard. Default empty.
    pub cpus: Vec<usize>,
    /// Milliseconds to let open connections finish after a shutdown signal before they are
    /// closed. Default 5000.
    pub drain_timeout_ms: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 8080)),
            shards: 0,
            cpus: Vec::new(),
            drain_timeout_ms: 5000,
        }
    }
}

/// `[http]`: limits that keep one client from using more than its share.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Largest request head (request line plus headers), in bytes; larger gets 431.
    /// Default 16384.
    pub max_head_bytes: usize,
    /// Most header fields in one request; more gets 431. Default 64.
    pub max_headers: usize,
    /// Longest request target (path plus query), in bytes; longer gets 414. Default 8192.
    pub max_uri_bytes: usize,
    /// Largest request body, in bytes; larger gets 413. Default 1048576 (1 MiB).
    pub max_body_bytes: usize,
    /// Milliseconds a keep-alive connection may sit with no request before it is closed.
    /// Default 60000.
    pub idle_timeout_ms: u64,
    /// Milliseconds within which a request head, once its first byte arrived, must be
    /// complete; a slower client gets 408. Default 10000.
    pub header_timeout_ms: u64,
    /// Most open client connections per shard; further accepts are closed at once.
    /// Default 100000.
    pub max_connections_per_shard: usize,
    /// Origins allowed to read answers from a browser (CORS): empty sends no CORS headers,
    /// `["*"]` allows any origin, otherwise a list such as `["https://app.example.com"]`; a
    /// listed request `Origin` is echoed back. Default empty.
    pub cors_allow_origins: Vec<String>,
    /// Send `Access-Control-Allow-Credentials: true` to listed origins, so browsers send
    /// cookies (cookie auth from another origin). Not allowed with `["*"]`. Default false.
    pub cors_allow_credentials: bool,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            max_head_bytes: 16384,
            max_headers: 64,
            max_uri_bytes: 8192,
            max_body_bytes: MIB,
            idle_timeout_ms: 60_000,
            header_timeout_ms: 10_000,
            max_connections_per_shard: 100_000,
            cors_allow_origins: Vec::new(),
            cors_allow_credentials: false,
        }
    }
}

/// `[sse]`: server-sent-events delivery.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SseConfig {
    /// Milliseconds between comment heartbeats on an idle stream (keeps proxies from
    /// closing it). Default 15000.
    pub heartbeat_ms: u64,
    /// Milliseconds sent as the `retry:` field when a stream opens: how long a browser waits
    /// before reconnecting. Default 2000.
    pub retry_ms: u32,
    /// Bytes of events queued for one connection; a client further behind is cut off (it can
    /// resume with Last-Event-ID). Default 1048576 (1 MiB).
    pub max_queue_bytes: usize,
    /// Most topics one subscription may name. Default 32.
    pub max_topics_per_subscription: usize,
    /// Milliseconds a client that was cut off (too slow, token expired) gets to take its last
    /// bytes (the notice or close frame saying why) before its socket closes. Default 500.
    pub cut_off_grace_ms: u64,
}

impl Default for SseConfig {
    fn default() -> Self {
        Self {
            heartbeat_ms: 15_000,
            retry_ms: 2000,
            max_queue_bytes: MIB,
            max_topics_per_subscription: 32,
            cut_off_grace_ms: 500,
        }
    }
}

/// `[ws]`: WebSocket connections (`/topics/{topic}/ws`, `/ws`). Queue and topic limits are
/// `[sse]`'s: both transports share one subscriber queue.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct WsConfig {
    /// Milliseconds between the server's pings; a client that has not answered the previous
    /// ping by the next one is closed (1008). Default 15000.
    pub ping_interval_ms: u64,
    /// Largest message a client may send, in bytes (all its fragments); larger is closed with
    /// 1009. Default 65536.
    pub max_message_bytes: usize,
    /// Largest single frame a client may send, in bytes; larger is closed with 1009.
    /// Default 65536.
    pub max_frame_bytes: usize,
}

impl Default for WsConfig {
    fn default() -> Self {
        Self {
            ping_interval_ms: 15_000,
            max_message_bytes: 65_536,
            max_frame_bytes: 65_536,
        }
    }
}

/// `[memory_broker]`: the embedded broker that keeps recent events for resume.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MemoryBrokerConfig {
    /// Partitions per topic (1..=1024); a topic's events are ordered within a partition.
    /// Default 1.
    pub partitions: u32,
    /// Events kept per partition for resume; older ones are dropped. Default 10000.
    pub history_events: usize,
    /// Bytes of event data kept per partition for resume; older events are dropped.
    /// Default 16777216 (16 MiB).
    pub history_bytes: usize,
}

impl Default for MemoryBrokerConfig {
    fn default() -> Self {
        Self {
            partitions: 1,
            history_events: 10_000,
            history_bytes: 16 * MIB,
        }
    }
}

/// `[mesh]`: the single-producer single-consumer rings between every pair of shards.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MeshConfig {
    /// Capacity of each shard-to-shard ring, in messages (at least 16). Default 4096.
    pub ring_capacity: usize,
    /// Messages parked per destination shard while its ring is full; past this, publishes
    /// are refused with 503. Default 65536.
    pub max_backlog: usize,
}

impl Default for MeshConfig {
    fn default() -> Self {
        Self {
            ring_capacity: 4096,
            max_backlog: 65_536,
        }
    }
}

/// `[log]`: logging.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// A `tracing_subscriber::EnvFilter` directive string, e.g. `info` or
    /// `info,sluicegate::delivery=debug`. Default "info,rskafka=error" (the Kafka client logs every connection and every retry; the gateway logs state changes itself).
    pub level: String,
    /// `text` (human-readable lines) or `json` (one JSON object per line: `timestamp`,
    /// `level`, `fields` with `message` and the event's fields, `target`). Default `text`.
    pub format: LogFormat,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            level: "info,rskafka=error".to_owned(),
            format: LogFormat::Text,
        }
    }
}

/// `[kafka]`: read topics from Kafka and produce published events to it. Kafka is used when
/// `bootstrap` is not empty; otherwise the embedded memory broker is.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaConfig {
    /// Bootstrap brokers as `host:port`; empty turns Kafka off. Default empty.
    pub bootstrap: Vec<String>,
    /// Topics to read (every partition of each). Required when `bootstrap` is set.
    /// Default empty.
    pub topics: Vec<String>,
    /// Where reading starts when the gateway starts: `latest` (only new records), `earliest`
    /// (everything retained) or a timestamp in milliseconds since the Unix epoch (the first
    /// record at or after it). Partitions added while running are read from their start.
    /// Default "latest".
    pub start: String,
    /// Create a configured topic that does not exist (with `create_partitions` partitions and
    /// `replication_factor`); when false a missing topic is an error naming it. Default false.
    pub create_topics: bool,
    /// Partitions of a topic created by the gateway (1..=1024). Default 1.
    pub create_partitions: u32,
    /// Replication factor of a topic created by the gateway (at least 1). Default 1.
    pub replication_factor: u16,
    /// Most bytes one fetch returns per partition (1..=2147483647); a single larger record is
    /// still returned whole. Default 1048576 (1 MiB).
    pub fetch_max_bytes: usize,
    /// Milliseconds the broker may hold a fetch open waiting for new records. Default 500.
    pub fetch_max_wait_ms: u64,
    /// Milliseconds between metadata refreshes, which pick up partitions added to a topic.
    /// Default 30000.
    pub metadata_refresh_ms: u64,
    /// Milliseconds one broker request (connect, produce, list offsets) may take before it
    /// counts as failed. Default 10000.
    pub request_timeout_ms: u64,
    /// First reconnect delay in milliseconds; it doubles (with jitter) per failed attempt up
    /// to `backoff_max_ms`. Default 100.
    pub backoff_initial_ms: u64,
    /// Longest reconnect delay in milliseconds. Default 5000.
    pub backoff_max_ms: u64,
    /// Record header holding the SSE event type (CloudEvents binary mode: `ce_type`); "" to
    /// not use headers. Default "ce_type".
    pub event_type_header: String,
    /// Top-level JSON string field of the record value holding the event type, used when the
    /// header is absent; "" never parses values. Default "".
    pub event_type_field: String,
    /// Capacity, in messages, of each ring between a shard and its broker thread (at least
    /// 16). A full ring pauses fetching; nothing is dropped. Default 1024.
    pub ring_capacity: usize,
    /// Client id sent to the brokers. Default "sluicegate".
    pub client_id: String,
    /// Idempotency keys (`?id=` / `Sluicegate-Id`, the `sluicegate-id` record header) the owner
    /// shard remembers per partition; a record repeating one of them is not delivered (a
    /// publisher's retry after a 504). The window is rebuilt from what the shard reads after a
    /// start: a gateway starting at `latest` remembers nothing older. 0 turns it off.
    /// Default 4096.
    pub dedup_window: usize,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        Self {
            bootstrap: Vec::new(),
            topics: Vec::new(),
            start: "latest".to_owned(),
            create_topics: false,
            create_partitions: 1,
            replication_factor: 1,
            fetch_max_bytes: MIB,
            fetch_max_wait_ms: 500,
            metadata_refresh_ms: 30_000,
            request_timeout_ms: 10_000,
            backoff_initial_ms: 100,
            backoff_max_ms: 5000,
            event_type_header: "ce_type".to_owned(),
            event_type_field: String::new(),
            ring_capacity: 1024,
            client_id: "sluicegate".to_owned(),
            dedup_window: 4096,
        }
    }
}

/// Where the Kafka source starts reading a partition, parsed from `kafka.start`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartPosition {
    /// Only records produced after the gateway started.
    Latest,
    /// Every retained record.
    Earliest,
    /// The first record whose timestamp is at or after this many ms since the Unix epoch.
    Timestamp(i64),
}

impl KafkaConfig {
    /// Kafka is on when bootstrap brokers are given.
    pub fn enabled(&self) -> bool {
        !self.bootstrap.is_empty()
    }

    /// `start` parsed; the error says what is accepted.
    pub fn start_position(&self) -> Result<StartPosition, String> {
        parse_start_position(&self.start)
    }
}

/// Parse `latest`, `earliest` or a non-negative millisecond timestamp.
pub fn parse_start_position(text: &str) -> Result<StartPosition, String> {
    match text.trim() {
        "latest" => Ok(StartPosition::Latest),
        "earliest" => Ok(StartPosition::Earliest),
        other => match other.parse::<i64>() {
            Ok(ms) if ms >= 0 => Ok(StartPosition::Timestamp(ms)),
            _ => Err(format!(
                "`{text}` is not a start position; use \"latest\", \"earliest\" or a timestamp in milliseconds since the Unix epoch"
            )),
        },
    }
}

impl Config {
    /// The configuration as a TOML document, every key present (what `--check-config` prints).
    pub fn to_toml(&self) -> String {
        // Our structs only hold strings, addresses and integers that came from TOML, so this
        // cannot fail in practice; still, no panic: say so in the output instead.
        match toml::to_string_pretty(self) {
            Ok(text) => text,
            Err(err) => format!("# cannot print the configuration as TOML: {err}\n"),
        }
    }
}
