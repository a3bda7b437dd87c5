//! Checks on values that deserialize fine but cannot work (zero timeouts, CPUs that do not
//! exist, a log filter that does not parse), and the effective shard count.

use super::error::ConfigError;
use super::model::Config;
use std::collections::BTreeSet;
use std::num::NonZeroUsize;

/// Most shards (executor threads) the gateway runs; the ring mesh grows with its square.
pub const MAX_SHARDS: usize = 1024;
/// Most partitions per topic in the memory broker.
pub const MAX_PARTITIONS: u32 = 1024;
/// Smallest shard-to-shard ring.
pub const MIN_RING_CAPACITY: usize = 16;

/// CPUs this process may run on. `available_parallelism` respects the affinity mask and
/// cgroup quota (no unsafe `sysconf` needed), so on a restricted machine it can be below the
/// number of CPUs installed: CPU ids are then checked against the smaller number.
pub fn online_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, NonZeroUsize::get)
}

/// A configuration error naming `key` (shared by the `validate_*` files).
pub(super) fn invalid(key: &str, message: String) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_owned(),
        message,
        origin: None,
    }
}

fn at_least<T: PartialOrd + std::fmt::Display>(
    key: &str,
    value: T,
    min: T,
) -> Result<(), ConfigError> {
    if value < min {
        return Err(invalid(key, format!("must be at least {min}, got {value}")));
    }
    Ok(())
}

impl Config {
    /// Shards to run: `server.shards`, or one per available CPU when it is 0.
    pub fn effective_shards(&self) -> usize {
        match self.server.shards {
            0 => online_cpus(),
            n => n,
        }
    }

    /// Check values that deserialize but cannot work. The error names the dotted key; its
    /// origin is `None` here and filled in by [`Config::load`].
    pub fn validate(&self) -> Result<(), ConfigError> {
        let server = &self.server;
        if server.shards > MAX_SHARDS {
            return Err(invalid(
                "server.shards",
                format!("must be at most {MAX_SHARDS}, got {}", server.shards),
            ));
        }
        self.validate_cpus()?;
        let millis = [
            ("server.drain_timeout_ms", server.drain_timeout_ms),
            ("http.idle_timeout_ms", self.http.idle_timeout_ms),
            ("http.header_timeout_ms", self.http.header_timeout_ms),
            ("sse.heartbeat_ms", self.sse.heartbeat_ms),
            ("sse.retry_ms", u64::from(self.sse.retry_ms)),
            ("sse.cut_off_grace_ms", self.sse.cut_off_grace_ms),
            ("ws.ping_interval_ms", self.ws.ping_interval_ms),
        ];
        for (key, value) in millis {
            at_least(key, value, 1)?;
        }
        // A zero here would refuse every request, connection or subscription.
        let http = &self.http;
        let ones = [
            ("http.max_head_bytes", http.max_head_bytes),
            ("http.max_headers", http.max_headers),
            ("http.max_uri_bytes", http.max_uri_bytes),
            ("http.max_body_bytes", http.max_body_bytes),
            (
                "http.max_connections_per_shard",
                http.max_connections_per_shard,
            ),
            ("sse.max_queue_bytes", self.sse.max_queue_bytes),
            ("ws.max_message_bytes", self.ws.max_message_bytes),
            ("ws.max_frame_bytes", self.ws.max_frame_bytes),
            (
                "sse.max_topics_per_subscription",
                self.sse.max_topics_per_subscription,
            ),
            (
                "memory_broker.history_events",
                self.memory_broker.history_events,
            ),
        ];
        for (key, value) in ones {
            at_least(key, value, 1)?;
        }
        let partitions = self.memory_broker.partitions;
        if !(1..=MAX_PARTITIONS).contains(&partitions) {
            return Err(invalid(
                "memory_broker.partitions",
                format!("must be between 1 and {MAX_PARTITIONS}, got {partitions}"),
            ));
        }
        at_least(
            "mesh.ring_capacity",
            self.mesh.ring_capacity,
            MIN_RING_CAPACITY,
        )?;
        if let Err(err) = tracing_subscriber::EnvFilter::try_new(&self.log.level) {
            return Err(invalid(
                "log.level",
                format!("`{}` is not a valid log filter: {err}", self.log.level),
            ));
        }
        self.validate_cors()?;
        self.validate_policy()?;
        self.validate_storage()?;
        self.validate_webhooks()?;
        self.validate_redis()?;
        self.validate_kafka()
    }

    /// `[kafka]` is only checked when it is on (bootstrap given), except that topics without
    /// brokers is a mistake worth naming.
    fn validate_kafka(&self) -> Result<(), ConfigError> {
        let kafka = &self.kafka;
        if !kafka.enabled() {
            if !kafka.topics.is_empty() {
                return Err(invalid(
                    "kafka.bootstrap",
                    "kafka.topics is set but no bootstrap brokers are given".to_owned(),
                ));
            }
            return Ok(());
        }
        for broker in &kafka.bootstrap {
            check_broker_address(broker)?;
        }
        if kafka.topics.is_empty() {
            return Err(invalid(
                "kafka.topics",
                "name at least one topic to read when kafka.bootstrap is set".to_owned(),
            ));
        }
        let mut seen = BTreeSet::new();
        for topic in &kafka.topics {
            check_kafka_topic(topic)?;
            if !seen.insert(topic.as_str()) {
                return Err(invalid(
                    "kafka.topics",
                    format!("topic `{topic}` is listed twice"),
                ));
            }
        }
        if let Err(message) = kafka.start_position() {
            return Err(invalid("kafka.start", message));
        }
        if !(1..=MAX_PARTITIONS).contains(&kafka.create_partitions) {
            return Err(invalid(
                "kafka.create_partitions",
                format!(
                    "must be between 1 and {MAX_PARTITIONS}, got {}",
                    kafka.create_partitions
                ),
            ));
        }
        at_least("kafka.replication_factor", kafka.replication_factor, 1)?;
        at_least("kafka.fetch_max_bytes", kafka.fetch_max_bytes, 1)?;
        // These go into i32 fields of the Kafka protocol.
        let i32_max = i32::MAX as u64;
        let protocol_ints = [
            ("kafka.fetch_max_bytes", kafka.fetch_max_bytes as u64),
            ("kafka.fetch_max_wait_ms", kafka.fetch_max_wait_ms),
            ("kafka.request_timeout_ms", kafka.request_timeout_ms),
        ];
        for (key, value) in protocol_ints {
            if value > i32_max {
                return Err(invalid(
                    key,
                    format!("must be at most {i32_max}, got {value}"),
                ));
            }
        }
        at_least("kafka.metadata_refresh_ms", kafka.metadata_refresh_ms, 1)?;
        at_least("kafka.request_timeout_ms", kafka.request_timeout_ms, 1)?;
        at_least("kafka.backoff_initial_ms", kafka.backoff_initial_ms, 1)?;
        at_least(
            "kafka.backoff_max_ms",
            kafka.backoff_max_ms,
            kafka.backoff_initial_ms,
        )?;
        at_least(
            "kafka.ring_capacity",
            kafka.ring_capacity,
            MIN_RING_CAPACITY,
        )?;
        if kafka.client_id.is_empty() {
            return Err(invalid("kafka.client_id", "must not be empty".to_owned()));
        }
        Ok(())
    }

    fn validate_cpus(&self) -> Result<(), ConfigError> {
        let cpus = &self.server.cpus;
        if cpus.is_empty() {
            return Ok(());
        }
        let online = online_cpus();
        let mut seen = BTreeSet::new();
        for &cpu in cpus {
            if cpu >= online {
                return Err(invalid(
                    "server.cpus",
                    format!("CPU {cpu} is not available (this process may use {online} CPUs, ids 0 to {})", online - 1),
                ));
            }
            if !seen.insert(cpu) {
                return Err(invalid("server.cpus", format!("CPU {cpu} is listed twice")));
            }
        }
        let shards = self.effective_shards();
        if cpus.len() != shards {
            return Err(invalid(
                "server.cpus",
                format!(
                    "lists {} CPUs but there are {shards} shards; give one CPU per shard",
                    cpus.len()
                ),
            ));
        }
        Ok(())
    }
}

impl Config {
    /// `["*"]` alone or a list of origins; credentials only with a list (browsers refuse `*`
    /// with credentials).
    fn validate_cors(&self) -> Result<(), ConfigError> {
        let http = &self.http;
        let star = http.cors_allow_origins.iter().any(|o| o == "*");
        if star && http.cors_allow_origins.len() > 1 {
            return Err(invalid(
                "http.cors_allow_origins",
                "\"*\" allows every origin; list it alone or list origins instead".to_owned(),
            ));
        }
        if star && http.cors_allow_credentials {
            return Err(invalid(
                "http.cors_allow_credentials",
                "browsers refuse credentials with `*`: list the origins in http.cors_allow_origins"
                    .to_owned(),
            ));
        }
        for origin in &http.cors_allow_origins {
            validate_origin(origin)?;
        }
        Ok(())
    }
}

/// A CORS origin goes into a response header verbatim, so besides the shape check it may
/// not hold whitespace or control characters (no header injection from config).
fn validate_origin(origin: &str) -> Result<(), ConfigError> {
    let key = "http.cors_allow_origins";
    let shape_ok = origin == "*" || origin.starts_with("http://") || origin.starts_with("https://");
    if !shape_ok {
        return Err(invalid(
            key,
            format!("`{origin}` must be \"*\" or start with http:// or https://"),
        ));
    }
    if origin.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid(
            key,
            format!("{origin:?} contains whitespace or a control character"),
        ));
    }
    Ok(())
}

/// `host:port` with a non-empty host and a port that fits u16 (a name is resolved only when
/// the broker plane connects).
fn check_broker_address(broker: &str) -> Result<(), ConfigError> {
    let shape = broker
        .rsplit_once(':')
        .filter(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0));
    if shape.is_none() || broker.chars().any(char::is_whitespace) {
        return Err(invalid(
            "kafka.bootstrap",
            format!("`{broker}` is not host:port (e.g. \"127.0.0.1:9092\")"),
        ));
    }
    Ok(())
}

/// Kafka's own rule: 1 to 249 of `[a-zA-Z0-9._-]`, and not `.` or `..`.
fn check_kafka_topic(topic: &str) -> Result<(), ConfigError> {
    let legal = topic
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if topic.is_empty() || topic.len() > 249 || !legal || topic == "." || topic == ".." {
        return Err(invalid(
            "kafka.topics",
            format!("`{topic}` is not a Kafka topic name (1 to 249 of a-z A-Z 0-9 . _ -)"),
        ));
    }
    Ok(())
}

impl Config {
    fn validate_storage(&self) -> Result<(), ConfigError> {
        let st = &self.storage;
        at_least("storage.segment_bytes", st.segment_bytes, 64 * 1024)?;
        at_least("storage.index_interval_bytes", st.index_interval_bytes, 512)?;
        at_least("storage.fsync_interval_ms", st.fsync_interval_ms, 1)?;
        for (i, r) in st.topic_retention.iter().enumerate() {
            let key = format!("storage.topic_retention[{i}].topics");
            if r.topics.is_empty() {
                return Err(invalid(&key, "name at least one topic pattern".to_owned()));
            }
            crate::policy::acl::Acl::parse(&r.topics).map_err(|e| invalid(&key, e.to_string()))?;
        }
        if st.durable() && st.data_dir.as_os_str().is_empty() {
            return Err(invalid("storage.data_dir", "must not be empty".to_owned()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(edit: impl FnOnce(&mut Config)) -> Result<(), ConfigError> {
        let mut config = Config::default();
        edit(&mut config);
        config.validate()
    }

    fn fails_on(key: &str, want: &str, edit: impl FnOnce(&mut Config)) {
        let err = check(edit).expect_err(key);
        assert_eq!(err.key(), Some(key), "{err}");
        let text = err.to_string();
        assert!(text.starts_with(&format!("config: {key}: ")), "{text}");
        assert!(text.contains(want), "{text}");
    }

    #[test]
    fn defaults_are_valid() {
        assert!(Config::default().validate().is_ok());
    }

    #[test]
    fn each_rule_names_its_key() {
        fails_on("server.shards", "at most 1024", |c| c.server.shards = 1025);
        fails_on("server.drain_timeout_ms", "at least 1", |c| {
            c.server.drain_timeout_ms = 0
        });
        fails_on("http.idle_timeout_ms", "at least 1", |c| {
            c.http.idle_timeout_ms = 0
        });
        fails_on("http.header_timeout_ms", "at least 1", |c| {
            c.http.header_timeout_ms = 0
        });
        fails_on("sse.heartbeat_ms", "got 0", |c| c.sse.heartbeat_ms = 0);
        fails_on("sse.retry_ms", "got 0", |c| c.sse.retry_ms = 0);
        fails_on("http.max_body_bytes", "at least 1", |c| {
            c.http.max_body_bytes = 0
        });
        fails_on("memory_broker.history_events", "at least 1", |c| {
            c.memory_broker.history_events = 0
        });
        fails_on("memory_broker.partitions", "between 1 and 1024", |c| {
            c.memory_broker.partitions = 0
        });
        fails_on("memory_broker.partitions", "got 1025", |c| {
            c.memory_broker.partitions = 1025
        });
        fails_on("mesh.ring_capacity", "at least 16, got 15", |c| {
            c.mesh.ring_capacity = 15
        });
        fails_on("log.level", "not a valid log filter", |c| {
            c.log.level = "sluicegate=notalevel".into()
        });
    }

    fn with_kafka(c: &mut Config) {
        c.kafka.bootstrap = vec!["127.0.0.1:9092".into()];
        c.kafka.topics = vec!["orders".into()];
    }

    #[test]
    fn kafka_rules_name_their_key() {
        assert!(check(with_kafka).is_ok());
        fails_on("kafka.bootstrap", "no bootstrap brokers", |c| {
            c.kafka.topics = vec!["t".into()]
        });
        fails_on("kafka.bootstrap", "not host:port", |c| {
            with_kafka(c);
            c.kafka.bootstrap = vec!["localhost".into()];
        });
        fails_on("kafka.bootstrap", "not host:port", |c| {
            with_kafka(c);
            c.kafka.bootstrap = vec![":9092".into()];
        });
        fails_on("kafka.topics", "at least one topic", |c| {
            with_kafka(c);
            c.kafka.topics.clear();
        });
        fails_on("kafka.topics", "not a Kafka topic name", |c| {
            with_kafka(c);
            c.kafka.topics = vec!["a/b".into()];
        });
        fails_on("kafka.topics", "listed twice", |c| {
            with_kafka(c);
            c.kafka.topics = vec!["a".into(), "a".into()];
        });
        fails_on("kafka.start", "not a start position", |c| {
            with_kafka(c);
            c.kafka.start = "yesterday".into();
        });
        fails_on("kafka.start", "not a start position", |c| {
            with_kafka(c);
            c.kafka.start = "-5".into();
        });
        fails_on("kafka.create_partitions", "between 1 and", |c| {
            with_kafka(c);
            c.kafka.create_partitions = 0;
        });
        fails_on("kafka.fetch_max_bytes", "at most 2147483647", |c| {
            with_kafka(c);
            c.kafka.fetch_max_bytes = 1 << 40;
        });
        fails_on("kafka.backoff_max_ms", "at least 100", |c| {
            with_kafka(c);
            c.kafka.backoff_max_ms = 50;
        });
        fails_on("kafka.ring_capacity", "at least 16", |c| {
            with_kafka(c);
            c.kafka.ring_capacity = 1;
        });
    }

    #[test]
    fn kafka_start_positions_parse() {
        use super::super::model::{parse_start_position, StartPosition};
        assert_eq!(parse_start_position("latest"), Ok(StartPosition::Latest));
        assert_eq!(
            parse_start_position("earliest"),
            Ok(StartPosition::Earliest)
        );
        assert_eq!(
            parse_start_position("1700000000000"),
            Ok(StartPosition::Timestamp(1_700_000_000_000))
        );
        assert!(parse_start_position("").is_err());
    }

    #[test]
    fn cors_origin_shapes() {
        for good in ["*", "http://localhost:3000", "https://app.example.com"] {
            assert!(
                check(|c| c.http.cors_allow_origins = vec![good.into()]).is_ok(),
                "{good}"
            );
        }
        fails_on("http.cors_allow_origins", "must be", |c| {
            c.http.cors_allow_origins = vec!["example.com".into()]
        });
        fails_on("http.cors_allow_origins", "control character", |c| {
            c.http.cors_allow_origins = vec!["https://a.example\r\nX-Evil: 1".into()]
        });
    }

    #[test]
    fn cpus_must_exist_be_unique_and_match_the_shard_count() {
        let online = online_cpus();
        fails_on("server.cpus", "is not available", |c| {
            c.server.shards = 1;
            c.server.cpus = vec![online];
        });
        fails_on("server.cpus", "lists 1 CPUs but there are 2 shards", |c| {
            c.server.shards = 2;
            c.server.cpus = vec![0];
        });
        if online >= 2 {
            fails_on("server.cpus", "listed twice", |c| {
                c.server.shards = 2;
                c.server.cpus = vec![0, 0];
            });
        }
        assert!(check(|c| {
            c.server.shards = online;
            c.server.cpus = (0..online).rev().collect();
        })
        .is_ok());
        // shards = 0 means one per CPU, so a full list matches it.
        assert!(check(|c| c.server.cpus = (0..online).collect()).is_ok());
    }

    #[test]
    fn effective_shards_uses_cpus_when_zero() {
        let mut config = Config::default();
        assert_eq!(config.effective_shards(), online_cpus());
        config.server.shards = 3;
        assert_eq!(config.effective_shards(), 3);
    }
}
