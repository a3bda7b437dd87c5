//! What a webhook subscription is (an endpoint registered through `/webhooks`, or a WebSub
//! subscriber's callback) and the records that keep subscriptions and their progress in the
//! log's `gateway.webhooks*` topics.
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::broker::PartitionKey;

/// Subscriptions: created, changed, replayed, deleted and checkpointed (read by every shard).
pub const STATE_TOPIC: &str = "gateway.webhooks";
/// Delivery progress of every subscription (read only at start).
pub const PROGRESS_TOPIC: &str = "gateway.webhooks.progress";
/// Events that exhausted their retries, with the reason and the last answer.
pub const DEAD_LETTER_TOPIC: &str = "gateway.webhooks.dead";
/// A subscription was disabled (410 Gone, or failing for `webhooks.disable_after_s`).
pub const DISABLED_TOPIC: &str = "gateway.webhook.disabled";

/// The topics the engine reads back whole at start.
pub fn is_state_topic(topic: &str) -> bool {
    topic == STATE_TOPIC || topic == PROGRESS_TOPIC
}

/// How a subscription came to be, which decides how it is signed and what a 410 does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// The endpoints API: Standard Webhooks signatures; a 410 disables it.
    Endpoint,
    /// A WebSub subscriber: `X-Hub-Signature` when it gave a secret, a lease; a 410 removes it.
    Websub,
}

/// Which events of its topics a subscription wants (as SSE's `?type=`, `?key=`,
/// `?header.NAME=`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FilterSpec {
    /// Any of these event types (empty: any).
    pub types: Vec<String>,
    /// Exactly this key.
    pub key: Option<String>,
    /// Each of these headers with exactly this value.
    pub headers: BTreeMap<String, String>,
}

/// A secret replaced by a rotation, still signing until `until` (Unix seconds).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreviousSecret {
    pub secret: String,
    pub until: u64,
}

/// One subscription, as stored and as every shard knows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscription {
    pub id: String,
    pub kind: Kind,
    /// The callback URL (normalized).
    pub url: String,
    pub topics: Vec<String>,
    #[serde(default)]
    pub filter: FilterSpec,
    /// Endpoints: `whsec_<base64>`; WebSub: `hub.secret`, if one was given.
    #[serde(default)]
    pub secret: Option<String>,
    #[serde(default)]
    pub previous_secret: Option<PreviousSecret>,
    /// Why it is disabled (no deliveries until re-enabled); `None` while active.
    #[serde(default)]
    pub disabled: Option<String>,
    /// Unix seconds.
    pub created_at: u64,
    /// WebSub: when the lease ends (Unix seconds).
    #[serde(default)]
    pub lease_expires: Option<u64>,
    /// WebSub: the topic as the subscriber named it (a name or this gateway's URL for it),
    /// sent back in `Link: rel="self"`.
    #[serde(default)]
    pub topic_url: Option<String>,
    /// Who created it (a principal name), for the API's listing.
    #[serde(default)]
    pub owner: String,
    /// In order per partition (default) or per key.
    #[serde(default)]
    pub ordering: super::ordering::Ordering,
    /// Bumped by every change of the definition, so a checkpoint written from an older
    /// definition (racing a change) never undoes the change.
    #[serde(default)]
    pub version: u64,
}

/// Where a subscription stands: per partition (`"topic:partition"`), the next offset to
/// deliver. Everything below it was answered 2xx, dead-lettered or filtered out.
pub type CursorMap = BTreeMap<String, u64>;

/// The cursor map's key of a partition.
pub fn cursor_key(key: &PartitionKey) -> String {
    format!("{}:{}", key.topic, key.partition)
}

/// One record of the state or progress topic (the event's data, JSON; its type is `op`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum StateRecord {
    /// Created or changed, or its periodic checkpoint (same version).
    Put {
        sub: Box<Subscription>,
        cursor: CursorMap,
        /// Unix ms when written: of two cursors for one subscription the later wins.
        at: u64,
    },
    /// Delivery progress (progress topic).
    Progress {
        id: String,
        cursor: CursorMap,
        at: u64,
    },
    /// Send again from these positions (state topic): the cursor moves back to them.
    Replay {
        id: String,
        cursor: CursorMap,
        at: u64,
    },
    /// Removed (state topic).
    Delete { id: String, at: u64 },
}

impl StateRecord {
    pub fn id(&self) -> &str {
        match self {
            StateRecord::Put { sub, .. } => &sub.id,
            StateRecord::Progress { id, .. }
            | StateRecord::Replay { id, .. }
            | StateRecord::Delete { id, .. } => id,
        }
    }

    pub fn at(&self) -> u64 {
        match self {
            StateRecord::Put { at, .. }
            | StateRecord::Progress { at, .. }
            | StateRecord::Replay { at, .. }
            | StateRecord::Delete { at, .. } => *at,
        }
    }

    /// The event type it is stored under.
    pub fn op(&self) -> &'static str {
        match self {
            StateRecord::Put { .. } => "put",
            StateRecord::Progress { .. } => "progress",
            StateRecord::Replay { .. } => "replay",
            StateRecord::Delete { .. } => "delete",
        }
    }
}

/// Unix milliseconds now.
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Unix seconds now.
pub fn unix_s() -> u64 {
    unix_ms() / 1000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_as_json_with_their_op() {
        let sub = Subscription {
            id: "wh_1".into(),
            kind: Kind::Endpoint,
            url: "http://127.0.0.1:9/x".into(),
            topics: vec!["orders".into()],
            filter: FilterSpec::default(),
            secret: Some("whsec_AAAA".into()),
            previous_secret: None,
            disabled: None,
            created_at: 1,
            lease_expires: None,
            topic_url: None,
            owner: "admin".into(),
            ordering: Default::default(),
            version: 1,
        };
        let cursor: CursorMap = [("orders:0".to_owned(), 7)].into();
        let r = StateRecord::Put {
            sub: Box::new(sub),
            cursor,
            at: 9,
        };
        let json = serde_json::to_string(&r).expect("json");
        assert!(json.starts_with("{\"op\":\"put\""), "{json}");
        assert!(!json.contains('\n'));
        let back: StateRecord = serde_json::from_str(&json).expect("parse");
        assert_eq!(back, r);
        assert_eq!((back.id(), back.at(), back.op()), ("wh_1", 9, "put"));
    }
}
