//! Checks on `[auth]` and `[limits]`: the safe default (no open gateway off loopback without
//! an explicit opt-in) and limits that could never admit anything.
use super::error::ConfigError;
use super::model::Config;
use super::policy_model::{AnonymousMode, Rate};
use super::validate::invalid;

impl Config {
    pub(super) fn validate_policy(&self) -> Result<(), ConfigError> {
        self.validate_exposure()?;
        let l = &self.limits;
        let rates = [
            ("limits.publish_events", l.publish_events),
            ("limits.publish_bytes", l.publish_bytes),
            ("limits.topic_events", l.topic_events),
            ("limits.topic_bytes", l.topic_bytes),
            ("limits.ip_connections", l.ip_connections),
            ("limits.egress_events", l.egress_events),
            ("limits.egress_bytes", l.egress_bytes),
        ];
        for (key, rate) in rates {
            check_rate(key, rate)?;
        }
        for (i, key) in self.auth.api_keys.iter().enumerate() {
            for (field, rate) in [
                ("publish_events", key.publish_events),
                ("publish_bytes", key.publish_bytes),
            ] {
                if let Some(rate) = rate {
                    check_rate(&format!("auth.api_keys[{i}].{field}"), rate)?;
                }
            }
        }
        if l.rebalance_ms == 0 {
            return Err(invalid(
                "limits.rebalance_ms",
                "must be at least 1".to_owned(),
            ));
        }
        for (i, key) in self.auth.jwt_keys.iter().enumerate() {
            if key.algorithms.is_empty() {
                return Err(invalid(
                    &format!("auth.jwt_keys[{i}].algorithms"),
                    "list the algorithms this key may verify (e.g. [\"ES256\"]); none is trusted by default"
                        .to_owned(),
                ));
            }
        }
        Ok(())
    }

    /// With no credentials and anonymous access left on `auto`, the gateway must only be
    /// reachable from this machine.
    fn validate_exposure(&self) -> Result<(), ConfigError> {
        let listen = self.server.listen;
        let auth = &self.auth;
        if auth.anonymous == AnonymousMode::Auto
            && !auth.has_credentials()
            && !listen.ip().is_loopback()
        {
            return Err(invalid(
                "server.listen",
                format!(
                    "{listen} is not a loopback address and [auth] configures no credential, so \
                     anyone who can reach the port could publish to and read every topic. \
                     Configure API keys or JWT keys under [auth] (see the README's Security \
                     section), or set auth.anonymous = \"allow\" to serve anonymous clients on \
                     purpose"
                ),
            ));
        }
        Ok(())
    }
}

fn check_rate(key: &str, rate: Rate) -> Result<(), ConfigError> {
    if !rate.per_s.is_finite() || rate.per_s < 0.0 || !rate.burst.is_finite() || rate.burst < 0.0 {
        return Err(invalid(
            key,
            "per_s and burst must be finite and not negative".to_owned(),
        ));
    }
    if rate.is_limited() && rate.effective_burst() < 1.0 {
        return Err(invalid(
            key,
            format!(
                "a burst of {} admits nothing; use at least 1 (or leave burst at 0 for one second's worth)",
                rate.effective_burst()
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ApiKeyConfig;

    #[test]
    fn an_open_gateway_must_stay_on_loopback_unless_asked() {
        let mut c = Config::default();
        assert!(c.validate().is_ok(), "the default listens on loopback");
        c.server.listen = "0.0.0.0:8080".parse().unwrap();
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("server.listen"), "{err}");
        assert!(err.contains("auth.anonymous = \"allow\""), "{err}");
        c.auth.anonymous = AnonymousMode::Allow;
        assert!(c.validate().is_ok());
        c.auth.anonymous = AnonymousMode::Auto;
        c.auth.api_keys.push(ApiKeyConfig {
            name: "a".into(),
            ..ApiKeyConfig::default()
        });
        assert!(c.validate().is_ok(), "credentials configured");
        c.server.listen = "[::1]:8080".parse().unwrap();
        c.auth.api_keys.clear();
        assert!(c.validate().is_ok(), "IPv6 loopback");
    }

    #[test]
    fn limits_that_admit_nothing_are_refused() {
        let mut c = Config::default();
        c.limits.topic_events = Rate::new(10.0, 0.5);
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("limits.topic_events"), "{err}");
        c.limits.topic_events = Rate::new(-1.0, 0.0);
        assert!(c.validate().is_err());
        c.limits.topic_events = Rate::new(0.5, 0.0);
        assert!(
            c.validate().is_err(),
            "half an event per second with no burst"
        );
        c.limits.topic_events = Rate::new(0.5, 1.0);
        assert!(c.validate().is_ok());
    }
}
