//! What a WebSocket client (JSON mode) may ask over its socket, and the answers:
//!
//! ```text
//! -> {"op":"publish","id":"r1","topic":"orders","data":"...","type":"created","key":"k",
//!     "idempotencyKey":"x","headers":{"tenant":"a"}}
//! <- {"type":"ack","id":"r1","ids":["..."]}
//! -> {"op":"subscribe","id":"r2","topic":"orders","lastEventId":"...","type":"created",
//!     "key":"k","headers":{"tenant":"a"}}            (or "topics":["a","b"], no lastEventId)
//! <- {"type":"ack","id":"r2","topics":["orders"]}
//! -> {"op":"unsubscribe","id":"r3","topic":"orders"}  (or "topics")
//! <- {"type":"ack","id":"r3","topics":[]}
//! <- {"type":"error","id":"r1","status":403,"message":"..."}
//! ```
//!
//! `id` is the client's request id, echoed as sent (any JSON value). Statuses and messages are
//! those of the HTTP API. A message with `topic` is an event; one without is one of these
//! control messages (or `reset` / `dropped`). A subscribe's or unsubscribe's ack lists every
//! topic the connection reads after it; its events follow the ack, and after an
//! unsubscribe's ack no event of the topic comes.
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::rc::Rc;

use bytes::Bytes;
use serde::Deserialize;

use super::super::publish::{publish, Publication};
use super::subscriptions::{self, Change};
use crate::codec::topic::validate_topic;
use crate::codec::ws::frame::text_frame;
use crate::delivery::hook_gate;
use crate::delivery::subscriber::{SubState, Subscriber};
use crate::policy::principal::Principal;
use crate::shard::context::ShardContext;

/// One request from the client.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Request {
    op: String,
    /// Read before the request is parsed (see [`handle`]); listed so that it is not an
    /// unknown field.
    #[serde(default, rename = "id")]
    _id: serde_json::Value,
    topic: Option<String>,
    data: Option<String>,
    #[serde(rename = "type")]
    event_type: Option<String>,
    key: Option<String>,
    idempotency_key: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    /// Subscribe and unsubscribe: several topics at once.
    #[serde(default)]
    topics: Vec<String>,
    /// Subscribe: resume the one topic named from this id.
    last_event_id: Option<String>,
}

/// An answer's status and message.
pub struct Refused {
    status: u16,
    message: String,
}

impl Refused {
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }
}

/// What a request that succeeded answers.
enum Ack {
    /// A publish: the id of each event.
    Published(Vec<String>),
    /// A subscribe or unsubscribe: every topic the connection reads now.
    Subscriptions(Vec<String>),
}

/// Handle one text message and queue its answer.
pub async fn handle(
    ctx: &ShardContext,
    principal: &Principal,
    client: IpAddr,
    sub: &Rc<Subscriber>,
    text: &str,
) {
    // The request id is read first, so even a request refused for its shape is answered
    // with the id the client can match.
    let (id, outcome) = match serde_json::from_str::<serde_json::Value>(text) {
        Err(e) => (
            serde_json::Value::Null,
            Err(Refused::new(400, format!("not JSON: {e}"))),
        ),
        Ok(value) => {
            let id = value.get("id").cloned().unwrap_or(serde_json::Value::Null);
            match serde_json::from_value::<Request>(value) {
                Err(e) => (id, Err(Refused::new(400, format!("not a request: {e}")))),
                Ok(req) => (id, run(ctx, principal, client, sub, req).await),
            }
        }
    };
    answer(sub, id, outcome);
}

/// Refuse a request at once because `limit` of the client's requests are still being
/// handled (503: retry once acks arrive).
pub fn refuse_busy(sub: &Subscriber, text: &str, limit: usize) {
    let id = serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|v| v.get("id").cloned())
        .unwrap_or(serde_json::Value::Null);
    answer(
        sub,
        id,
        Err(Refused::new(
            503,
            format!("{limit} requests of this connection are still being handled; wait for their answers"),
        )),
    );
}

/// Queue the answer to request `id`, unless the stream is closing.
fn answer(sub: &Subscriber, id: serde_json::Value, outcome: Result<Ack, Refused>) {
    // A stream that is closing has sent (or is sending) its close frame: nothing after it.
    if matches!(sub.state(), SubState::CutOff(_) | SubState::Draining) {
        return;
    }
    let message = match outcome {
        Ok(Ack::Published(ids)) => serde_json::json!({"type": "ack", "id": id, "ids": ids}),
        Ok(Ack::Subscriptions(topics)) => {
            serde_json::json!({"type": "ack", "id": id, "topics": topics})
        }
        Err(r) => {
            serde_json::json!({"type": "error", "id": id, "status": r.status, "message": r.message})
        }
    };
    sub.push_control(text_frame(message.to_string().as_bytes()));
}

async fn run(
    ctx: &ShardContext,
    principal: &Principal,
    client: IpAddr,
    sub: &Rc<Subscriber>,
    req: Request,
) -> Result<Ack, Refused> {
    match req.op.as_str() {
        "publish" => {
            let publication = publication(req)?;
            publish(ctx, principal, client, publication)
                .await
                .map(Ack::Published)
                .map_err(|resp| Refused::new(resp.status, resp.text_body()))
        }
        "subscribe" => {
            if req.data.is_some() || req.idempotency_key.is_some() {
                return Err(Refused::new(
                    400,
                    "subscribe takes no `data` or `idempotencyKey` (did you mean publish?)",
                ));
            }
            let topics = Change::topics(req.topic, req.topics)?;
            hook_gate::subscribe(ctx, principal, client, &topics, "ws")
                .await
                .map_err(|resp| Refused::new(resp.status, resp.text_body()))?;
            let change = Change {
                topics,
                last_event_id: req.last_event_id.filter(|id| !id.is_empty()),
                types: req.event_type,
                key: req.key,
                headers: req.headers,
            };
            subscriptions::subscribe(ctx, principal, sub, change).map(Ack::Subscriptions)
        }
        "unsubscribe" => {
            let topics = Change::topics(req.topic, req.topics)?;
            subscriptions::unsubscribe(ctx, sub, &topics).map(Ack::Subscriptions)
        }
        other => Err(Refused::new(
            400,
            format!("unknown op `{other}`; use publish, subscribe or unsubscribe"),
        )),
    }
}

fn publication(req: Request) -> Result<Publication, Refused> {
    let topic = req
        .topic
        .ok_or_else(|| Refused::new(400, "publish needs a `topic`"))?;
    validate_topic(&topic).map_err(|e| Refused::new(400, format!("topic `{topic}`: {e}")))?;
    let data = req
        .data
        .ok_or_else(|| Refused::new(400, "publish needs `data` (a string)"))?;
    if !req.topics.is_empty() {
        return Err(Refused::new(400, "publish takes `topic`, not `topics`"));
    }
    if req.last_event_id.is_some() {
        return Err(Refused::new(400, "publish takes no `lastEventId`"));
    }
    Ok(Publication {
        topic,
        event_type: req.event_type.filter(|t| !t.is_empty()),
        idempotency_key: req.idempotency_key.filter(|k| !k.is_empty()),
        key: req.key,
        headers: req
            .headers
            .into_iter()
            .map(|(name, value)| (name.to_ascii_lowercase(), Bytes::from(value)))
            .collect(),
        datas: vec![Bytes::from(data)],
        via: "ws",
    })
}
