//! Checks on `[redis]`: a URL fred can use, a mode that fits the rest of the configuration
//! (Redis and Kafka cannot both be the log), topics and bounds, each error naming its key.
use std::collections::BTreeSet;

use super::error::ConfigError;
use super::model::Config;
use super::validate::invalid;
use super::validate::MAX_PARTITIONS;

impl Config {
    pub(super) fn validate_redis(&self) -> Result<(), ConfigError> {
        let r = &self.redis;
        if !r.enabled() {
            if !r.topics.is_empty() {
                return Err(invalid(
                    "redis.url",
                    "redis.topics is set but no redis.url is given".to_owned(),
                ));
            }
            return Ok(());
        }
        if r.url.starts_with("rediss://") {
            return Err(invalid(
                "redis.url",
                "TLS (rediss://) is not built in; use redis:// on a trusted network or a local TLS proxy".to_owned(),
            ));
        }
        if let Err(e) = fred::types::config::Config::from_url(&r.url) {
            return Err(invalid(
                "redis.url",
                format!(
                    "`{}` is not a Redis URL (redis://host:port[/db]): {e}",
                    r.url
                ),
            ));
        }
        if !r.key_template.contains("{topic}") || !r.key_template.contains("{partition}") {
            return Err(invalid(
                "redis.key_template",
                format!(
                    "`{}` must contain both {{topic}} and {{partition}}, or partitions would share a stream",
                    r.key_template
                ),
            ));
        }
        let positive = [
            ("redis.sink_queue_events", r.sink_queue_events as u64),
            ("redis.sink_batch", r.sink_batch as u64),
            ("redis.block_ms", r.block_ms),
            ("redis.read_count", r.read_count),
            ("redis.request_timeout_ms", r.request_timeout_ms),
            ("redis.backoff_initial_ms", r.backoff_initial_ms),
        ];
        for (key, value) in positive {
            if value == 0 {
                return Err(invalid(key, "must be at least 1".to_owned()));
            }
        }
        if r.backoff_max_ms < r.backoff_initial_ms {
            return Err(invalid(
                "redis.backoff_max_ms",
                "must be at least redis.backoff_initial_ms".to_owned(),
            ));
        }
        if r.ring_capacity < 16 {
            return Err(invalid(
                "redis.ring_capacity",
                "must be at least 16".to_owned(),
            ));
        }
        for pattern in &r.sink_topics {
            crate::policy::acl::TopicPattern::parse(pattern)
                .map_err(|e| invalid("redis.sink_topics", format!("`{pattern}`: {e}")))?;
        }
        if r.is_broker() {
            self.validate_redis_broker()?;
        } else if !r.topics.is_empty() {
            return Err(invalid(
                "redis.topics",
                "topics are for mode = \"broker\"; the sink mirrors redis.sink_topics".to_owned(),
            ));
        }
        Ok(())
    }

    fn validate_redis_broker(&self) -> Result<(), ConfigError> {
        let r = &self.redis;
        if self.kafka.enabled() {
            return Err(invalid(
                "redis.mode",
                "\"broker\" makes Redis the log, and [kafka] is the log already; use mode = \"sink\" to mirror Kafka's events to Redis".to_owned(),
            ));
        }
        if r.topics.is_empty() {
            return Err(invalid(
                "redis.topics",
                "name at least one topic when redis.mode = \"broker\"".to_owned(),
            ));
        }
        let mut seen = BTreeSet::new();
        for topic in &r.topics {
            if let Err(e) = crate::codec::topic::validate_topic(topic) {
                return Err(invalid("redis.topics", format!("`{topic}`: {e}")));
            }
            if crate::codec::topic::is_reserved(topic) {
                return Err(invalid(
                    "redis.topics",
                    format!("`{topic}` is a system topic; they stay in the embedded broker"),
                ));
            }
            if !seen.insert(topic.as_str()) {
                return Err(invalid(
                    "redis.topics",
                    format!("topic `{topic}` is listed twice"),
                ));
            }
        }
        if !(1..=MAX_PARTITIONS).contains(&r.partitions) {
            return Err(invalid(
                "redis.partitions",
                format!(
                    "must be between 1 and {MAX_PARTITIONS}, got {}",
                    r.partitions
                ),
            ));
        }
        Ok(())
    }
}
