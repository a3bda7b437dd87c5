//! The part of the policy SIGHUP can change without a restart: the API keys (who, their ACLs,
//! limits, admin flag), anonymous access and its ACLs, and the rate limits. Built whole from a
//! config and swapped whole; shards notice by a generation number (one atomic read per
//! request) and take the new one.
use std::collections::BTreeMap;
use std::sync::Arc;

use super::acl::Acl;
use super::api_keys::ApiKeys;
use super::principal::{Kind, Principal};
use crate::config::{AnonymousMode, ApiKeyConfig, Config, LimitsConfig};

/// What a reload may replace.
pub struct Reloadable {
    pub api_keys: ApiKeys,
    /// `None`: requests without a credential get 401.
    pub anonymous: Option<Arc<Principal>>,
    pub limits: LimitsConfig,
    /// What it was built from (to say what a reload changed).
    source: Source,
}

#[derive(Clone, PartialEq)]
struct Source {
    keys: BTreeMap<String, ApiKeyConfig>,
    anonymous: (AnonymousMode, Vec<String>, Vec<String>),
    limits: LimitsConfig,
}

impl Reloadable {
    pub fn from_config(config: &Config) -> Result<Self, String> {
        let auth = &config.auth;
        let limits = &config.limits;
        let api_keys = ApiKeys::from_config(&auth.api_keys, limits)?;
        let anonymous_allowed = match auth.anonymous {
            AnonymousMode::Allow => true,
            AnonymousMode::Deny => false,
            // Loopback-only without credentials is enforced by config validation.
            AnonymousMode::Auto => !auth.has_credentials(),
        };
        let anonymous = if anonymous_allowed {
            let acl = |list: &[String], key: &str| {
                Acl::parse(list).map_err(|e| format!("auth.{key}: {e}"))
            };
            Some(Arc::new(Principal {
                kind: Kind::Anonymous,
                name: Arc::from("anonymous"),
                sub: None,
                publish: Arc::new(acl(&auth.anonymous_publish, "anonymous_publish")?),
                subscribe: Arc::new(acl(&auth.anonymous_subscribe, "anonymous_subscribe")?),
                expires_at: None,
                publish_events: limits.publish_events,
                publish_bytes: limits.publish_bytes,
                // The open gateway of the first command (no credentials, loopback only) is
                // managed by whoever can reach it; an explicit `allow` on any listener is not.
                admin: auth.anonymous == AnonymousMode::Auto,
            }))
        } else {
            None
        };
        Ok(Self {
            api_keys,
            anonymous,
            limits: limits.clone(),
            source: Source {
                keys: auth
                    .api_keys
                    .iter()
                    .map(|k| (k.name.clone(), k.clone()))
                    .collect(),
                anonymous: (
                    if anonymous_allowed {
                        auth.anonymous
                    } else {
                        AnonymousMode::Deny
                    },
                    auth.anonymous_publish.clone(),
                    auth.anonymous_subscribe.clone(),
                ),
                limits: limits.clone(),
            },
        })
    }

    /// What changed from `old` to `self`, for the reload's log line; empty when nothing did.
    pub fn changes_from(&self, old: &Reloadable) -> Vec<String> {
        let (was, now) = (&old.source, &self.source);
        let mut out = Vec::new();
        let added: Vec<&str> = now
            .keys
            .keys()
            .filter(|k| !was.keys.contains_key(*k))
            .map(String::as_str)
            .collect();
        let removed: Vec<&str> = was
            .keys
            .keys()
            .filter(|k| !now.keys.contains_key(*k))
            .map(String::as_str)
            .collect();
        let changed: Vec<&str> = now
            .keys
            .iter()
            .filter(|(k, v)| was.keys.get(*k).is_some_and(|w| w != *v))
            .map(|(k, _)| k.as_str())
            .collect();
        for (what, names) in [("added", added), ("removed", removed), ("changed", changed)] {
            if !names.is_empty() {
                out.push(format!("API keys {what}: {}", names.join(", ")));
            }
        }
        if was.anonymous != now.anonymous {
            out.push(match (&was.anonymous.0, &now.anonymous.0) {
                (AnonymousMode::Deny, AnonymousMode::Deny) => "anonymous ACLs changed".into(),
                (_, AnonymousMode::Deny) => "anonymous access turned off".into(),
                (AnonymousMode::Deny, _) => "anonymous access turned on".into(),
                _ => "anonymous access changed".into(),
            });
        }
        if was.limits != now.limits {
            out.push("rate limits changed".into());
        }
        out
    }
}
