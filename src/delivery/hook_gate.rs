//! Publishes and subscriptions through the shard's sync hooks (`delivery::hooks`), the one
//! place every transport asks them. Publish hooks may accept, refuse (the client gets the
//! hook's status and reason), change the data, type or headers, or route the publish to other
//! topics; what a hook hands back is checked like a publish (event rules, topic names, no
//! `gateway.*`), and a hook producing something invalid fails (502). Subscribe hooks accept or
//! refuse a stream (or a WebSocket's subscribe message) before it opens.
use std::net::IpAddr;

use super::hooks::{PublishHookRequest, SubscribeHookRequest};
use super::publish::{validate_events, Publication};
use super::response::Response;
use crate::codec::topic::{is_reserved, validate_topic};
use crate::policy::principal::Principal;
use crate::shard::context::ShardContext;

/// May `principal` open a stream of `topics` over `transport` (`sse` or `ws`)?
pub async fn subscribe(
    ctx: &ShardContext,
    principal: &Principal,
    client: IpAddr,
    topics: &[String],
    transport: &str,
) -> Result<(), Response> {
    let hooks = ctx.hooks();
    if !hooks.has_subscribe_hooks() {
        return Ok(());
    }
    let req = SubscribeHookRequest {
        topics: topics.to_vec(),
        principal: principal.name.to_string(),
        client,
        transport: transport.to_owned(),
    };
    // Boxed: the hook's state lives on the heap only when a hook runs, so the futures of the
    // request path without hooks stay as small as they were.
    Box::pin(hooks.on_subscribe(&req, ctx.metrics(), ctx.latency()))
        .await
        .map_err(|r| Response::text(r.status, r.reason))
}

/// Run the publish hooks over `p`: the publication to append, and the topics to append it to
/// when a hook routed it elsewhere (`None`: its own topic; no allocation without hooks).
pub async fn publish(
    ctx: &ShardContext,
    principal: &Principal,
    client: IpAddr,
    p: Publication,
) -> Result<(Publication, Option<Vec<String>>), Response> {
    let hooks = ctx.hooks();
    if !hooks.has_publish_hooks() {
        return Ok((p, None));
    }
    let req = PublishHookRequest {
        topic: p.topic.clone(),
        event_type: p.event_type.clone(),
        key: p.key.clone(),
        headers: p.headers.clone(),
        data: p.datas.clone(),
        principal: principal.name.to_string(),
        client,
        via: p.via.to_owned(),
    };
    // Boxed, as for subscriptions: a publish without hooks carries none of this state.
    let hooked = Box::pin(hooks.on_publish(req, ctx.metrics(), ctx.latency()))
        .await
        .map_err(|r| Response::text(r.status, r.reason))?;
    let out = Publication {
        topic: hooked.req.topic.clone(),
        event_type: hooked.req.event_type,
        idempotency_key: p.idempotency_key,
        key: hooked.req.key,
        headers: hooked.req.headers,
        datas: hooked.req.data,
        via: p.via,
    };
    let bad = |what: String| Response::text(502, format!("a publish hook {what}"));
    if out.datas.is_empty() {
        return Err(bad("left no event to publish".into()));
    }
    validate_events(&out).map_err(|e| bad(format!("produced an invalid event: {e}")))?;
    if let Some(topics) = &hooked.routes {
        if topics.is_empty() {
            return Err(bad("routed the publish to no topic".into()));
        }
        for t in topics {
            validate_topic(t).map_err(|e| bad(format!("routed to topic `{t}`: {e}")))?;
            if is_reserved(t) {
                return Err(bad(format!("routed to reserved topic `{t}`")));
            }
        }
    }
    Ok((out, hooked.routes))
}
