//! `GET /topics/{topic}/ws` and `GET /ws?topic=a&topic=b`: check the upgrade request (RFC 6455
//! handshake, origin, mode), create the subscriber, and write the 101 answer.
use std::net::IpAddr;
use std::rc::Rc;
use std::sync::Arc;

use super::framing::{WS_JSON, WS_RAW};
use super::peer::{Mode, WsPeer};
use crate::codec::http1::Request;
use crate::codec::query;
use crate::codec::ws::handshake::{check_upgrade, write_switching_protocols};
use crate::delivery::connection::{OpenStream, PeerKind};
use crate::delivery::cors::Cors;
use crate::delivery::response::Response;
use crate::delivery::subscribe::{self, Topics};
use crate::policy::principal::Principal;
use crate::shard::context::ShardContext;

/// The subprotocol of JSON envelopes (the default when none is asked for).
pub const JSON_PROTOCOL: &str = "sluicegate.v1";
/// The subprotocol of raw mode: each text frame is an event's data.
pub const RAW_PROTOCOL: &str = "sluicegate.raw";

/// Upgrade `req` to a WebSocket stream of `segment`'s topic (or the query's topics).
pub fn open(
    ctx: &Rc<ShardContext>,
    req: &Request,
    segment: Option<&str>,
    principal: Arc<Principal>,
    client: IpAddr,
) -> Result<OpenStream, Response> {
    let upgrade = check_upgrade(req, &[JSON_PROTOCOL, RAW_PROTOCOL]).map_err(|e| {
        let refused = Response::text(e.status(), e.to_string());
        if e.status() == 426 {
            refused.with_header("sec-websocket-version", "13")
        } else {
            refused
        }
    })?;
    check_origin(ctx, req)?;
    let raw_query = query::first(req.query(), "mode")
        .map_err(|e| Response::text(400, format!("query: {e}")))?
        .is_some_and(|m| m == "raw");
    let mode = if raw_query || upgrade.protocol.as_deref() == Some(RAW_PROTOCOL) {
        Mode::Raw
    } else {
        Mode::Json
    };
    if mode == Mode::Raw && segment.is_none() {
        return Err(Response::text(
            400,
            "raw mode is for one topic: /topics/{topic}/ws?mode=raw",
        ));
    }
    let framing = match mode {
        Mode::Json => &WS_JSON,
        Mode::Raw => &WS_RAW,
    };
    // Plain `/ws` may name no topic: the client subscribes by message.
    let sub = subscribe::open(ctx, req, segment, &principal, framing, Topics::Optional)?;
    let mut head = Vec::new();
    let shard = ctx.id.to_string();
    write_switching_protocols(
        &mut head,
        &upgrade.accept,
        upgrade.protocol.as_deref(),
        &[("x-sluicegate-shard", &shard)],
    );
    Ok(OpenStream {
        sub,
        head,
        expires_at: principal.expires_at,
        principal: principal.name.clone(),
        peer: PeerKind::Ws(Box::new(WsPeer::new(ctx.clone(), principal, client, mode))),
    })
}

/// A browser always sends `Origin`. With origins listed in `http.cors_allow_origins`, only
/// those may connect; with none listed, a page from anywhere may, except with the auth cookie
/// (a page on another site would act with the user's cookie: cross-site WebSocket hijacking).
fn check_origin(ctx: &ShardContext, req: &Request) -> Result<(), Response> {
    let Some(origin) = req.header_str("origin") else {
        return Ok(());
    };
    let http = &ctx.config().http;
    if !http.cors_allow_origins.is_empty() {
        return match Cors::for_origin(http, Some(origin)) {
            Some(_) => Ok(()),
            None => Err(Response::text(
                403,
                format!("origin `{origin}` is not in http.cors_allow_origins"),
            )),
        };
    }
    let cookie = &ctx.config().auth.cookie;
    let has_auth_cookie = !cookie.is_empty()
        && req
            .headers
            .iter()
            .filter(|(n, _)| n == "cookie")
            .any(|(_, v)| {
                v.split(|&b| b == b';').any(|pair| {
                    pair.trim_ascii_start()
                        .starts_with(format!("{cookie}=").as_bytes())
                })
            });
    if has_auth_cookie {
        return Err(Response::text(
            403,
            "a browser WebSocket authenticated by cookie needs its page's origin in http.cors_allow_origins",
        ));
    }
    Ok(())
}
