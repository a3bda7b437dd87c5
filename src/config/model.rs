//! The configuration structs: what each setting means, its unit and its built-in default.
//!
//! Every struct is `deny_unknown_fields` (a typo is an error, not a silently ignored key) and
//! `default` (a key left out keeps its default). `src/config/example.toml` lists every key with
//! its default; a test keeps the two in step.

use serde::{Deserialize, Serialize};
use std::net::{Ipv4Addr, SocketAddr};

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
    /// `[memory_broker]`: the embedded in-memory broker and its resume history.
    pub memory_broker: MemoryBrokerConfig,
    /// `[mesh]`: the shard-to-shard ring mesh.
    pub mesh: MeshConfig,
    /// `[log]`: logging.
    pub log: LogConfig,
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
    /// Value of `Access-Control-Allow-Origin`: "" sends no CORS headers, "*" allows any
    /// origin, otherwise one origin such as `https://app.example.com`. Default "".
    pub cors_allow_origin: String,
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
            cors_allow_origin: String::new(),
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
}

impl Default for SseConfig {
    fn default() -> Self {
        Self {
            heartbeat_ms: 15_000,
            retry_ms: 2000,
            max_queue_bytes: MIB,
            max_topics_per_subscription: 32,
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
    /// `info,sluicegate::delivery=debug`. Default "info".
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            level: "info".to_owned(),
        }
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
