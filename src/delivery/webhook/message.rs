//! The HTTP request one event becomes for one subscription: body, content type, ids and
//! signatures (Standard Webhooks for endpoints, `X-Hub-Signature` and `Link` for WebSub).
use crate::broker::FramedEvent;
use crate::codec::event_id::write_epoch;
use crate::policy::webhook_signature::{sign_hub_sha256, sign_standard, standard_key};

use super::model::{Kind, Subscription};

/// Content type of an event published without one.
const DEFAULT_CONTENT_TYPE: &str = "application/json";

/// The keys a subscription signs with, decoded once per driver.
#[derive(Clone, Debug, Default)]
pub struct SigningKeys {
    /// Standard Webhooks HMAC keys: the current secret's, then a rotated one's while it is
    /// still valid (`until`, Unix seconds).
    standard: Vec<(Vec<u8>, u64)>,
    /// WebSub `hub.secret`.
    hub: Option<Vec<u8>>,
}

impl SigningKeys {
    pub fn of(sub: &Subscription) -> Result<Self, String> {
        let mut keys = SigningKeys::default();
        match sub.kind {
            Kind::Endpoint => {
                if let Some(secret) = &sub.secret {
                    let key = standard_key(secret).map_err(|e| e.to_string())?;
                    keys.standard.push((key, u64::MAX));
                }
                if let Some(prev) = &sub.previous_secret {
                    let key = standard_key(&prev.secret).map_err(|e| e.to_string())?;
                    keys.standard.push((key, prev.until));
                }
            }
            Kind::Websub => keys.hub = sub.secret.as_ref().map(|s| s.as_bytes().to_vec()),
        }
        Ok(keys)
    }
}

/// The `webhook-id` of an event: `{epoch}:{topic}:{partition}:{offset}` (the epoch makes it
/// unique across a memory-mode restart, where offsets start again). `POST
/// /webhooks/{id}/replay` takes it back.
pub fn webhook_id(epoch: u64, event: &FramedEvent) -> String {
    let mut id = String::with_capacity(48);
    write_epoch(&mut id, epoch);
    id.push(':');
    id.push_str(&event.key.topic);
    id.push(':');
    id.push_str(itoa::Buffer::new().format(event.key.partition));
    id.push(':');
    id.push_str(itoa::Buffer::new().format(event.offset));
    id
}

/// Parse a `webhook-id` back into (topic, partition, offset); the epoch is checked by the
/// caller against its own.
pub fn parse_webhook_id(id: &str) -> Option<(String, String, u32, u64)> {
    let mut parts = id.rsplitn(3, ':');
    let offset = parts.next()?.parse().ok()?;
    let partition = parts.next()?.parse().ok()?;
    let (epoch, topic) = parts.next()?.split_once(':')?;
    Some((epoch.to_owned(), topic.to_owned(), partition, offset))
}

/// One delivery's request: what is the same for every attempt.
pub struct Message {
    pub webhook_id: String,
    pub body: Vec<u8>,
    pub content_type: String,
    pub event_type: Option<String>,
    pub topic: String,
}

impl Message {
    pub fn of(epoch: u64, event: &FramedEvent) -> Self {
        let content_type = event
            .meta
            .header("content-type")
            .and_then(|v| std::str::from_utf8(v).ok())
            .filter(|v| !v.contains(['\r', '\n']))
            .unwrap_or(DEFAULT_CONTENT_TYPE)
            .to_owned();
        Self {
            webhook_id: webhook_id(epoch, event),
            body: event.data_text(),
            content_type,
            event_type: event.meta.event_type.as_deref().map(str::to_owned),
            topic: event.key.topic.to_string(),
        }
    }

    /// The headers of an attempt at Unix time `now` (signatures cover this timestamp).
    pub fn headers(
        &self,
        sub: &Subscription,
        keys: &SigningKeys,
        hub_url: &str,
        now: u64,
    ) -> Vec<(String, String)> {
        let mut h = vec![
            ("content-type".to_owned(), self.content_type.clone()),
            (
                "user-agent".to_owned(),
                "sluicegate-webhooks/0.1".to_owned(),
            ),
            ("sluicegate-topic".to_owned(), self.topic.clone()),
        ];
        if let Some(t) = &self.event_type {
            if !t.contains(['\r', '\n']) {
                h.push(("sluicegate-event-type".to_owned(), t.clone()));
            }
        }
        match sub.kind {
            Kind::Endpoint => {
                h.push(("webhook-id".to_owned(), self.webhook_id.clone()));
                h.push(("webhook-timestamp".to_owned(), now.to_string()));
                let signatures: Vec<String> = keys
                    .standard
                    .iter()
                    .filter(|(_, until)| now <= *until)
                    .filter_map(|(key, _)| {
                        sign_standard(key, &self.webhook_id, now as i64, &self.body)
                    })
                    .collect();
                if !signatures.is_empty() {
                    h.push(("webhook-signature".to_owned(), signatures.join(" ")));
                }
            }
            Kind::Websub => {
                let topic_url = sub.topic_url.as_deref().unwrap_or(&self.topic);
                h.push((
                    "link".to_owned(),
                    format!("<{hub_url}>; rel=\"hub\", <{topic_url}>; rel=\"self\""),
                ));
                if let Some(sig) = keys
                    .hub
                    .as_ref()
                    .and_then(|k| sign_hub_sha256(k, &self.body))
                {
                    h.push(("x-hub-signature".to_owned(), sig));
                }
            }
        }
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_ids_parse_back() {
        let (epoch, topic, p, o) = parse_webhook_id("k3x:orders.eu_1:2:41").expect("parse");
        assert_eq!(
            (epoch.as_str(), topic.as_str(), p, o),
            ("k3x", "orders.eu_1", 2, 41)
        );
        assert!(parse_webhook_id("orders:2:41").is_none());
        assert!(parse_webhook_id("x:orders:p:41").is_none());
    }
}
