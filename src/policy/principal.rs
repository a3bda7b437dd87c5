//! Who a request is: a principal with its topic ACLs, its publish limits and, for a token,
//! when it stops being valid.
use std::sync::Arc;

use super::acl::Acl;
use crate::config::Rate;

/// What a principal asks to do with a topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Publish,
    Subscribe,
}

impl Action {
    /// The verb, for messages.
    pub fn verb(self) -> &'static str {
        match self {
            Action::Publish => "publish to",
            Action::Subscribe => "subscribe to",
        }
    }
}

/// How the principal proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// No credential.
    Anonymous,
    /// An API key from `[[auth.api_keys]]`.
    ApiKey,
    /// A verified JWT.
    Jwt,
    /// A webhook delivery whose signature matched its topic's receiver secret.
    Webhook,
}

/// An authenticated (or anonymous) client.
#[derive(Debug)]
pub struct Principal {
    pub kind: Kind,
    /// A name for messages and rate-limit keys: `anonymous`, the API key's `name`, or
    /// `jwt:<sub>`. Never a secret.
    pub name: Arc<str>,
    /// The JWT `sub`, substituted for `{sub}` in ACL patterns.
    pub sub: Option<Arc<str>>,
    pub publish: Arc<Acl>,
    pub subscribe: Arc<Acl>,
    /// Unix seconds after which the credential is no longer valid (a JWT's `exp`).
    pub expires_at: Option<u64>,
    /// Events this principal may publish (across shards).
    pub publish_events: Rate,
    /// Bytes this principal may publish (across shards).
    pub publish_bytes: Rate,
    /// May manage the gateway (the webhook endpoints API): an API key with `admin = true`, or
    /// anonymous requests of a gateway with no credentials on loopback (`auth.anonymous = "auto"`).
    pub admin: bool,
}

impl Principal {
    /// The ACL for `action`.
    pub fn acl(&self, action: Action) -> &Acl {
        match action {
            Action::Publish => &self.publish,
            Action::Subscribe => &self.subscribe,
        }
    }

    /// Whether it may do `action` on `topic`.
    pub fn allows(&self, action: Action, topic: &str) -> bool {
        self.acl(action).allows(topic, self.sub.as_deref())
    }
}
