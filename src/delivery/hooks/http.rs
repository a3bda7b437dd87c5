//! The HTTP hook (`[[hooks.publish]]`, `[[hooks.subscribe]]`): the request is POSTed as JSON to
//! the hook's URL on a kept-alive connection and its answer read with `codec::hook_answer`.
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::json;

use super::{
    Hook, HookError, HookFuture, HookSettings, PublishChange, PublishHookRequest, PublishVerdict,
    SubscribeHookRequest, SubscribeVerdict,
};
use crate::codec::hook_answer::{parse_hook_answer, HookAnswer};
use crate::config::{FailurePolicy, HookConfig};
use crate::delivery::webhook::client::{HttpClient, OutboundRequest, Url};
use crate::policy::acl::Acl;

/// The shard's client for its HTTP hooks: any address (the hooks are the operator's own
/// services, often on loopback), connections kept alive.
pub fn client(config: &crate::config::Config) -> Result<HttpClient, String> {
    use crate::policy::ssrf::{AddressPolicy, Cidr};
    let everything = ["0.0.0.0/0", "::/0"]
        .iter()
        .map(|c| c.parse::<Cidr>().map_err(|e| e.to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    HttpClient::new(crate::delivery::webhook::client::ClientConfig {
        allow: AddressPolicy::new(everything),
        connect_timeout: Duration::from_secs(2),
        idle_timeout: Duration::from_secs(30),
        max_idle_per_origin: 64,
        max_connections_per_origin: 256,
        extra_root_pem: config.webhooks.extra_ca_file.clone(),
        max_body_kept: 1 << 20,
    })
    .map_err(|e| format!("hooks: {e}"))
}

/// One configured HTTP hook on one shard.
pub struct HttpHook {
    name: String,
    url: Url,
    topics: Acl,
    settings: HookSettings,
    client: Rc<HttpClient>,
}

impl HttpHook {
    pub fn from_config(c: &HookConfig, client: Rc<HttpClient>) -> Result<Self, String> {
        let url = Url::parse(&c.url).map_err(|e| format!("hook url `{}`: {e}", c.url))?;
        let topics = Acl::parse(&c.topics).map_err(|e| format!("hook `{}` topics: {e}", c.url))?;
        Ok(Self {
            name: if c.name.is_empty() {
                c.url.clone()
            } else {
                c.name.clone()
            },
            url,
            topics,
            settings: HookSettings {
                timeout: Duration::from_millis(c.timeout_ms.max(1)),
                fail_open: c.failure == FailurePolicy::Open,
                breaker_failures: c.breaker_failures,
                breaker_open: Duration::from_millis(c.breaker_open_ms),
            },
            client,
        })
    }

    async fn ask(&self, body: serde_json::Value) -> Result<HookAnswer, HookError> {
        let body = body.to_string();
        let request = OutboundRequest {
            method: "POST",
            url: &self.url,
            headers: &[
                ("content-type", "application/json"),
                ("user-agent", "sluicegate-hooks/0.1"),
            ],
            body: body.as_bytes(),
        };
        let answer = self
            .client
            .send(&request, self.settings.timeout)
            .await
            .map_err(|e| HookError(e.to_string()))?;
        parse_hook_answer(answer.status, &answer.body).map_err(|e| HookError(e.to_string()))
    }
}

fn text(b: &Bytes) -> String {
    String::from_utf8_lossy(b).into_owned()
}

impl Hook for HttpHook {
    fn name(&self) -> &str {
        &self.name
    }

    fn settings(&self) -> HookSettings {
        self.settings
    }

    fn applies_to(&self, topic: &str) -> bool {
        self.topics.allows(topic, None)
    }

    fn on_publish<'a>(&'a self, req: &'a PublishHookRequest) -> HookFuture<'a, PublishVerdict> {
        Box::pin(async move {
            let headers: BTreeMap<&str, String> = req
                .headers
                .iter()
                .map(|(n, v)| (n.as_str(), text(v)))
                .collect();
            let body = json!({
                "hook": "publish",
                "topic": req.topic,
                "type": req.event_type,
                "key": req.key,
                "headers": headers,
                "data": req.data.iter().map(text).collect::<Vec<_>>(),
                "principal": req.principal,
                "client": req.client.to_string(),
                "via": req.via,
            });
            Ok(match self.ask(body).await? {
                HookAnswer::Accept => PublishVerdict::Accept,
                HookAnswer::Reject { status, reason } => PublishVerdict::Reject { status, reason },
                HookAnswer::Modify {
                    data,
                    event_type,
                    headers,
                    topics,
                } => PublishVerdict::Modify(PublishChange {
                    data: data.map(|d| d.into_iter().map(Bytes::from).collect()),
                    event_type,
                    headers: headers.map(|h| {
                        h.into_iter()
                            .map(|(n, v)| (n.to_ascii_lowercase(), Bytes::from(v)))
                            .collect()
                    }),
                    topics,
                }),
            })
        })
    }

    fn on_subscribe<'a>(
        &'a self,
        req: &'a SubscribeHookRequest,
    ) -> HookFuture<'a, SubscribeVerdict> {
        Box::pin(async move {
            let body = json!({
                "hook": "subscribe",
                "topics": req.topics,
                "principal": req.principal,
                "client": req.client.to_string(),
                "transport": req.transport,
            });
            match self.ask(body).await? {
                HookAnswer::Accept => Ok(SubscribeVerdict::Accept),
                HookAnswer::Reject { status, reason } => {
                    Ok(SubscribeVerdict::Reject { status, reason })
                }
                HookAnswer::Modify { .. } => Err(HookError(
                    "a subscribe hook may accept or reject, not modify".into(),
                )),
            }
        })
    }
}
