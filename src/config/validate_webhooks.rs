//! Checks on `[webhooks]`' outbound settings: what would make the delivery engine refuse to
//! start is reported here, with the key, before anything runs.
use super::error::ConfigError;
use super::model::Config;
use super::validate::invalid;

impl Config {
    pub(super) fn validate_webhooks(&self) -> Result<(), ConfigError> {
        let w = &self.webhooks;
        for cidr in &w.allow_cidrs {
            cidr.parse::<crate::policy::ssrf::Cidr>()
                .map_err(|e| invalid("webhooks.allow_cidrs", format!("`{cidr}`: {e}")))?;
        }
        crate::policy::retry_schedule::RetrySchedule::new(&w.retry_schedule_s, w.retry_jitter)
            .and_then(|s| {
                s.with_max_retry_after(std::time::Duration::from_secs(w.max_retry_after_s))
            })
            .map_err(|e| invalid("webhooks.retry_schedule_s", e.to_string()))?;
        let positive = [
            ("webhooks.timeout_ms", w.timeout_ms),
            ("webhooks.connect_timeout_ms", w.connect_timeout_ms),
            ("webhooks.max_in_flight", w.max_in_flight as u64),
            (
                "webhooks.max_connections_per_origin",
                w.max_connections_per_origin as u64,
            ),
            ("webhooks.progress_interval_ms", w.progress_interval_ms),
            ("webhooks.checkpoint_interval_s", w.checkpoint_interval_s),
            ("webhooks.attempts_kept", w.attempts_kept as u64),
            ("webhooks.lease_min_s", w.lease_min_s),
        ];
        for (key, value) in positive {
            if value == 0 {
                return Err(invalid(key, "must be at least 1".to_owned()));
            }
        }
        if !(w.lease_min_s <= w.lease_default_s && w.lease_default_s <= w.lease_max_s) {
            return Err(invalid(
                "webhooks.lease_default_s",
                format!(
                    "must lie between lease_min_s ({}) and lease_max_s ({}), got {}",
                    w.lease_min_s, w.lease_max_s, w.lease_default_s
                ),
            ));
        }
        if let Some(path) = &w.extra_ca_file {
            if !path.is_file() {
                return Err(invalid(
                    "webhooks.extra_ca_file",
                    format!("{} is not a readable file", path.display()),
                ));
            }
        }
        crate::codec::topic::validate_topic(&format!("{}.progress", w.kafka_state_topic))
            .and_then(|()| crate::codec::topic::validate_topic(&w.kafka_state_topic))
            .map_err(|e| invalid("webhooks.kafka_state_topic", e.to_string()))?;
        let url = &w.public_url;
        if !(url.is_empty() || url.starts_with("http://") || url.starts_with("https://")) {
            return Err(invalid(
                "webhooks.public_url",
                format!("`{url}` is not an http(s) URL"),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    fn check(edit: impl FnOnce(&mut Config)) -> Result<(), String> {
        let mut c = Config::default();
        edit(&mut c);
        c.validate().map_err(|e| e.to_string())
    }

    #[test]
    fn outbound_settings_are_checked() {
        assert!(check(|_| {}).is_ok());
        let e = check(|c| c.webhooks.allow_cidrs = vec!["10.0.0.0/33".into()]).unwrap_err();
        assert!(e.contains("webhooks.allow_cidrs"), "{e}");
        let e = check(|c| c.webhooks.retry_schedule_s = vec![]).unwrap_err();
        assert!(e.contains("webhooks.retry_schedule_s"), "{e}");
        let e = check(|c| c.webhooks.timeout_ms = 0).unwrap_err();
        assert!(e.contains("webhooks.timeout_ms"), "{e}");
        let e = check(|c| c.webhooks.lease_default_s = 1).unwrap_err();
        assert!(e.contains("lease_default_s"), "{e}");
        let e = check(|c| c.webhooks.public_url = "example.com".into()).unwrap_err();
        assert!(e.contains("public_url"), "{e}");
    }
}
