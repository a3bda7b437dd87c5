//! The topics that take signed webhooks (`[[webhooks.receivers]]`): each topic's scheme and
//! secret, loaded once at start, and the principal a verified delivery publishes as (it may
//! publish to that topic only, under the usual publish limits).
use std::collections::HashMap;
use std::sync::Arc;

use super::acl::Acl;
use super::principal::{Kind, Principal};
use super::webhook_signature::{
    standard_key, verify_hub_signature, verify_standard, SignatureError, StandardHeaders,
};
use crate::config::{LimitsConfig, SignatureScheme, WebhooksConfig};

/// One topic's receiver.
#[derive(Debug)]
pub struct Receiver {
    scheme: SignatureScheme,
    secret: String,
    pub principal: Arc<Principal>,
}

/// What a delivery carries that a signature covers.
#[derive(Debug, Clone, Copy)]
pub struct Delivery<'a> {
    pub hub_signature: Option<&'a str>,
    pub standard: StandardHeaders<'a>,
    pub body: &'a [u8],
}

impl Receiver {
    /// Check a delivery's signature at Unix time `now`.
    pub fn verify(
        &self,
        d: Delivery<'_>,
        now: i64,
        tolerance_s: u64,
    ) -> Result<(), SignatureError> {
        match self.scheme {
            SignatureScheme::Websub => {
                verify_hub_signature(self.secret.as_bytes(), d.hub_signature, d.body)
            }
            SignatureScheme::StandardWebhooks => {
                verify_standard(&self.secret, d.standard, d.body, now, tolerance_s)
            }
        }
    }
}

/// Every receiver, by topic.
#[derive(Debug, Default)]
pub struct Receivers {
    by_topic: HashMap<String, Arc<Receiver>>,
}

impl Receivers {
    /// Load `[[webhooks.receivers]]`, reading secret files; an error names the entry.
    pub fn from_config(webhooks: &WebhooksConfig, limits: &LimitsConfig) -> Result<Self, String> {
        let mut by_topic = HashMap::new();
        for (i, r) in webhooks.receivers.iter().enumerate() {
            let at = format!("webhooks.receivers[{i}]");
            let secret = match &r.secret_file {
                Some(path) => std::fs::read_to_string(path)
                    .map_err(|e| format!("{at}.secret_file {}: {e}", path.display()))?
                    .trim_end()
                    .to_owned(),
                None => r.secret.clone(),
            };
            if secret.is_empty() {
                return Err(format!("{at}: give a secret or a secret_file"));
            }
            if r.scheme == SignatureScheme::StandardWebhooks {
                standard_key(&secret).map_err(|e| format!("{at}.secret: {e}"))?;
            }
            let acl = Acl::parse(std::slice::from_ref(&r.topic))
                .map_err(|e| format!("{at}.topic: {e}"))?;
            let principal = Arc::new(Principal {
                kind: Kind::Webhook,
                name: Arc::from(format!("webhook:{}", r.topic)),
                sub: None,
                publish: Arc::new(acl),
                subscribe: Arc::new(Acl::none()),
                expires_at: None,
                publish_events: limits.publish_events,
                publish_bytes: limits.publish_bytes,
                admin: false,
            });
            let receiver = Receiver {
                scheme: r.scheme,
                secret,
                principal,
            };
            if by_topic
                .insert(r.topic.clone(), Arc::new(receiver))
                .is_some()
            {
                return Err(format!("{at}: topic `{}` has two receivers", r.topic));
            }
        }
        Ok(Self { by_topic })
    }

    pub fn get(&self, topic: &str) -> Option<Arc<Receiver>> {
        self.by_topic.get(topic).cloned()
    }

    /// How many topics take signed webhooks.
    pub fn count(&self) -> usize {
        self.by_topic.len()
    }
}
