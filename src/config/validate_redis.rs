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
        check_key_template(&r.key_template)?;
        // Lower bounds: a zero would stall; upper bounds: these are allocated up front (rings,
        // batches) or asked of Redis in one reply.
        let bounded = [
            (
                "redis.sink_queue_events",
                r.sink_queue_events as u64,
                1,
                10_000_000,
            ),
            ("redis.sink_batch", r.sink_batch as u64, 1, 10_000),
            ("redis.block_ms", r.block_ms, 1, 60_000),
            ("redis.read_count", r.read_count, 1, 10_000),
            ("redis.dedup_window", r.dedup_window as u64, 0, 1_000_000),
            ("redis.request_timeout_ms", r.request_timeout_ms, 1, 600_000),
            ("redis.backoff_initial_ms", r.backoff_initial_ms, 1, 600_000),
            ("redis.backoff_max_ms", r.backoff_max_ms, 1, 600_000),
            ("redis.ring_capacity", r.ring_capacity as u64, 16, 1_000_000),
            ("redis.maxlen", r.maxlen, 0, i64::MAX as u64),
        ];
        for (key, value, min, max) in bounded {
            if !(min..=max).contains(&value) {
                return Err(invalid(
                    key,
                    format!("must be between {min} and {max}, got {value}"),
                ));
            }
        }
        if r.backoff_max_ms < r.backoff_initial_ms {
            return Err(invalid(
                "redis.backoff_max_ms",
                "must be at least redis.backoff_initial_ms".to_owned(),
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

/// A stream key template gives every (topic, partition) its own key: both placeholders, no other
/// braces (an unknown `{name}` would stay literal), and between the two placeholders a character
/// no topic name has (topics are `[a-zA-Z0-9._-]`), or `{topic}{partition}` would give topic
/// `a1` partition 0 and topic `a` partition 10 the same key.
fn check_key_template(template: &str) -> Result<(), ConfigError> {
    let bad = |why: &str| {
        Err(invalid(
            "redis.key_template",
            format!("`{template}`: {why} (e.g. \"sluicegate:{{topic}}:{{partition}}\")"),
        ))
    };
    let (Some(t), Some(p)) = (template.find("{topic}"), template.find("{partition}")) else {
        return bad(
            "must contain both {topic} and {partition}, or partitions would share a stream",
        );
    };
    let rest = template
        .replacen("{topic}", "", 1)
        .replacen("{partition}", "", 1);
    if rest.contains(['{', '}']) {
        return bad("only {topic} and {partition} may appear in braces, once each");
    }
    let between = if t < p {
        &template[t + "{topic}".len()..p]
    } else {
        &template[p + "{partition}".len()..t]
    };
    let separates = between
        .chars()
        .any(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')));
    if !separates {
        return bad("{topic} and {partition} need a character between them that no topic name has, such as ':'");
    }
    Ok(())
}
