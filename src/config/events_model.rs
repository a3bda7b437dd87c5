//! `[system_events]`: the gateway's events about its own work (`gateway.*` topics).
use serde::{Deserialize, Serialize};

/// `[system_events]`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct SystemEventsConfig {
    /// System events waiting to be published per shard; past it they are dropped and counted
    /// (`sluicegate_system_events_dropped_total`). Default 4096.
    pub queue_events: usize,
    /// `gateway.event.received` carries the event's data too. Default false.
    pub include_payload: bool,
    /// Event headers (`Sluicegate-Header-NAME`, a webhook's `content-type`) copied into
    /// `gateway.event.received`. Default ["content-type"].
    pub headers: Vec<String>,
}

impl Default for SystemEventsConfig {
    fn default() -> Self {
        Self {
            queue_events: 4096,
            include_payload: false,
            headers: vec!["content-type".to_owned()],
        }
    }
}
