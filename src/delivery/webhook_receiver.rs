//! `POST /webhook-receiver?topic=T`: a webhook provider pushes a payload, published to topic T
//! as one event. A topic with a receiver (`[[webhooks.receivers]]`) takes only deliveries whose
//! signature matches its secret (the signature is the credential); other topics take the usual
//! credentials. The `Content-Type` travels as the event's `content-type` header; a Standard
//! Webhooks `webhook-id` is the idempotency key, so a provider's redelivery is published once.
//! Answered 202 with the event's id.
use std::net::IpAddr;
use std::sync::Arc;

use bytes::Bytes;

use super::policy_gate::authenticate;
use super::publish::{ids_json, publish, Publication};
use super::response::Response;
use crate::codec::http1::Request;
use crate::codec::query;
use crate::codec::topic::validate_topic;
use crate::policy::principal::Principal;
use crate::policy::receivers::Delivery;
use crate::policy::webhook_signature::{StandardHeaders, HUB_HEADER};
use crate::shard::context::ShardContext;
use crate::telemetry::ShardMetrics;

/// Handle one delivery.
pub async fn handle(ctx: &ShardContext, req: &Request, client: IpAddr) -> Response {
    let topic = match topic_of(req) {
        Ok(t) => t,
        Err(refused) => return refused,
    };
    let principal: Arc<Principal> = match ctx.shared.policy.webhook_receiver(&topic) {
        Some(receiver) => {
            let delivery = Delivery {
                hub_signature: req.header_str(HUB_HEADER),
                standard: standard_headers(req),
                body: &req.body,
            };
            let tolerance = ctx.config().webhooks.tolerance_s;
            if let Err(e) = receiver.verify(delivery, unix_now(), tolerance) {
                ShardMetrics::add(&ctx.metrics().auth_failures_total, 1);
                return Response::text(401, format!("webhook for topic `{topic}`: {e}"));
            }
            receiver.principal.clone()
        }
        None => match authenticate(ctx, req) {
            Ok(p) => p,
            Err(refused) => return refused,
        },
    };
    if std::str::from_utf8(&req.body).is_err() {
        return Response::text(
            415,
            "the payload is not UTF-8 text; webhook payloads are published as text events",
        );
    }
    let event_type = match query::first(req.query(), "event") {
        Ok(t) => t.filter(|t| !t.is_empty()),
        Err(e) => return Response::text(400, format!("query: {e}")),
    };
    let headers = req
        .header("content-type")
        .map(|ct| vec![("content-type".to_owned(), Bytes::copy_from_slice(ct))])
        .unwrap_or_default();
    let publication = Publication {
        topic,
        event_type,
        // A provider retries with the same id: published once.
        idempotency_key: req
            .header_str("webhook-id")
            .filter(|id| !id.is_empty())
            .map(|id| format!("webhook-id:{id}")),
        key: None,
        headers,
        datas: vec![req.body.clone()],
        via: "webhook",
    };
    match publish(ctx, &principal, client, publication).await {
        Ok(ids) => Response::json(202, ids_json(&ids)),
        Err(refused) => refused,
    }
}

fn topic_of(req: &Request) -> Result<String, Response> {
    let topic = query::first(req.query(), "topic")
        .map_err(|e| Response::text(400, format!("query: {e}")))?
        .ok_or_else(|| Response::text(400, "name the topic: /webhook-receiver?topic=T"))?;
    validate_topic(&topic).map_err(|e| Response::text(400, format!("topic `{topic}`: {e}")))?;
    Ok(topic)
}

fn standard_headers(req: &Request) -> StandardHeaders<'_> {
    StandardHeaders {
        id: req.header_str("webhook-id"),
        timestamp: req.header_str("webhook-timestamp"),
        signature: req.header_str("webhook-signature"),
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
