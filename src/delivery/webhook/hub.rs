//! `POST /hub`: the WebSub hub (W3C WebSub §5-7). A subscriber asks to (un)subscribe a callback
//! to a topic; the hub answers 202 and verifies the intent asynchronously with a GET to the
//! callback carrying a challenge it must echo. A verified subscription is stored like an
//! endpoint's and delivered by the same engine (with `X-Hub-Signature` and `Link` headers);
//! a policy refusal is told to the callback with `hub.mode=denied`.
use std::rc::Rc;
use std::time::Duration;

use super::client::{OutboundRequest, Url};
use super::engine::{websub_id, WebhookEngine};
use super::model::{unix_ms, unix_s, FilterSpec, Kind, StateRecord, Subscription};
use crate::codec::http1::Request;
use crate::codec::topic::{is_reserved, validate_topic};
use crate::codec::websub_form::{parse_hub_request, HubMode, HubRequest};
use crate::delivery::policy_gate::authenticate;
use crate::delivery::publish::refusal;
use crate::delivery::response::Response;
use crate::policy::engine::ShardPolicy;
use crate::policy::principal::{Action, Principal};
use crate::shard::context::ShardContext;

/// Time limit of the verification request.
const VERIFY_TIMEOUT: Duration = Duration::from_secs(10);

/// Handle a subscription request.
pub async fn handle(ctx: &Rc<ShardContext>, req: &Request) -> Response {
    let Some(engine) = ctx.webhooks.get().cloned() else {
        return Response::text(503, "the WebSub hub is not running on this gateway");
    };
    let form = req.header_str("content-type").map(|ct| {
        ct.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    });
    if form.as_deref() != Some("application/x-www-form-urlencoded") {
        return Response::text(
            415,
            "a hub request is a form: Content-Type: application/x-www-form-urlencoded",
        );
    }
    let hub = match parse_hub_request(&req.body) {
        Ok(h) => h,
        Err(e) => return Response::text(400, e.to_string()),
    };
    let callback = match Url::parse(&hub.callback) {
        Ok(u) => u,
        Err(e) => return Response::text(400, format!("hub.callback `{}`: {e}", hub.callback)),
    };
    let topic = match topic_name(&engine, &hub.topic) {
        Ok(t) => t,
        Err(refused) => return refused,
    };
    if let Some(link) = ctx.broker_link.as_ref().filter(|_| !is_reserved(&topic)) {
        if let Err(e) = link.partitions(&topic) {
            return refusal(&e);
        }
    }
    let principal = match authenticate(ctx, req) {
        Ok(p) => p,
        Err(refused) => return refused,
    };
    let refusal = policy_refusal(&principal, &topic);
    let (ctx, engine) = (ctx.clone(), engine.clone());
    glommio::spawn_local(async move {
        match refusal {
            Some(reason) => deny(&engine, &callback, &hub, &reason).await,
            None => verify_and_store(&ctx, &engine, callback, hub, topic, &principal.name).await,
        }
    })
    .detach();
    Response::text(
        202,
        "accepted; the callback will be asked to verify the intent",
    )
}

/// The topic a `hub.topic` names: a topic name, or this gateway's URL for one
/// (`{public_url}/topics/{name}/events`).
fn topic_name(engine: &WebhookEngine, given: &str) -> Result<String, Response> {
    let public = &engine.settings().public_url;
    let name = given
        .strip_prefix(public.as_str())
        .and_then(|rest| rest.strip_prefix("/topics/"))
        .and_then(|rest| rest.strip_suffix("/events"))
        .unwrap_or(given);
    validate_topic(name).map_err(|e| {
        Response::text(
            400,
            format!("hub.topic `{given}`: not a topic name or {public}/topics/NAME/events ({e})"),
        )
    })?;
    Ok(name.to_owned())
}

/// Why the principal may not subscribe the topic, if it may not.
fn policy_refusal(principal: &Principal, topic: &str) -> Option<String> {
    if is_reserved(topic) && !principal.admin {
        return Some(format!(
            "topic `{topic}` is reserved for the gateway's administrators"
        ));
    }
    ShardPolicy::authorize(principal, Action::Subscribe, &[topic])
        .err()
        .map(|d| d.to_string())
}

/// Percent-encode a query value (RFC 3986 unreserved characters kept).
pub fn encode_component(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The callback URL with `params` added to its query.
fn with_query(callback: &Url, params: &[(&str, &str)]) -> Option<Url> {
    let base = callback.to_string();
    let mut url = base.clone();
    let mut sep = if base.contains('?') { '&' } else { '?' };
    for (name, value) in params {
        url.push(sep);
        url.push_str(name);
        url.push('=');
        url.push_str(&encode_component(value));
        sep = '&';
    }
    Url::parse(&url).ok()
}

async fn get(engine: &WebhookEngine, url: &Url) -> Result<(u16, Vec<u8>), String> {
    let request = OutboundRequest {
        method: "GET",
        url,
        headers: &[("user-agent", "sluicegate-websub/0.1")],
        body: &[],
    };
    engine
        .client()
        .send(&request, VERIFY_TIMEOUT)
        .await
        .map(|r| (r.status, r.body.to_vec()))
        .map_err(|e| e.to_string())
}

async fn deny(engine: &WebhookEngine, callback: &Url, hub: &HubRequest, reason: &str) {
    let Some(url) = with_query(
        callback,
        &[
            ("hub.mode", "denied"),
            ("hub.topic", &hub.topic),
            ("hub.reason", reason),
        ],
    ) else {
        return;
    };
    if let Err(e) = get(engine, &url).await {
        tracing::info!(callback = %callback, error = %e, "WebSub denial could not be delivered");
    }
}

async fn verify_and_store(
    ctx: &ShardContext,
    engine: &WebhookEngine,
    callback: Url,
    hub: HubRequest,
    topic: String,
    owner: &str,
) {
    let settings = engine.settings();
    let lease = hub
        .lease_seconds
        .unwrap_or(settings.lease_default_s)
        .clamp(settings.lease_min_s, settings.lease_max_s);
    let mode = match hub.mode {
        HubMode::Subscribe => "subscribe",
        HubMode::Unsubscribe => "unsubscribe",
    };
    let challenge = challenge();
    let lease_text = lease.to_string();
    let mut params = vec![
        ("hub.mode", mode),
        ("hub.topic", hub.topic.as_str()),
        ("hub.challenge", challenge.as_str()),
    ];
    if hub.mode == HubMode::Subscribe {
        params.push(("hub.lease_seconds", lease_text.as_str()));
    }
    let Some(url) = with_query(&callback, &params) else {
        return;
    };
    match get(engine, &url).await {
        Ok((status, body))
            if (200..300).contains(&status) && body.trim_ascii() == challenge.as_bytes() => {}
        Ok((status, _)) => {
            tracing::info!(callback = %callback, status, "WebSub intent not verified (the callback did not echo the challenge)");
            return;
        }
        Err(e) => {
            tracing::info!(callback = %callback, error = %e, "WebSub intent not verified");
            return;
        }
    }
    let id = websub_id(&callback.to_string(), &topic);
    let record = match hub.mode {
        HubMode::Unsubscribe => {
            if engine.entry(&id).is_none() {
                return;
            }
            StateRecord::Delete { id, at: unix_ms() }
        }
        HubMode::Subscribe => {
            let existing = engine.entry(&id);
            let cursor = match &existing {
                Some(e) => e.cursor.clone(),
                None => engine.heads(ctx, std::slice::from_ref(&topic)),
            };
            let sub = Subscription {
                id,
                kind: Kind::Websub,
                url: callback.to_string(),
                topics: vec![topic],
                filter: FilterSpec::default(),
                secret: hub.secret.clone(),
                previous_secret: None,
                disabled: None,
                created_at: existing.as_ref().map_or_else(unix_s, |e| e.sub.created_at),
                lease_expires: Some(unix_s() + lease),
                topic_url: Some(hub.topic.clone()),
                owner: owner.to_owned(),
                ordering: Default::default(),
                version: existing.map_or(1, |e| e.sub.version + 1),
            };
            StateRecord::Put {
                sub: Box::new(sub),
                cursor,
                at: unix_ms(),
            }
        }
    };
    if let Err(e) = engine.write_state(ctx, &record).await {
        tracing::warn!(callback = %callback, error = %e, "verified WebSub request could not be stored");
    }
}

/// A fresh challenge: 32 hex digits from the OS's randomness (or the clock if it fails).
fn challenge() -> String {
    let mut bytes = [0u8; 16];
    if getrandom::getrandom(&mut bytes).is_err() {
        bytes[..8].copy_from_slice(&unix_ms().to_le_bytes());
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(encode_component("a b&c=d/é"), "a%20b%26c%3Dd%2F%C3%A9");
        assert_eq!(encode_component("safe-._~"), "safe-._~");
    }
}
