//! `/webhooks`: the endpoints API for services (admin only). Create, list, read, change and
//! delete webhook endpoints, replay from an event, and read recent attempts. A change is a
//! record written to the state topic; every shard applies it when it reads it back, and the
//! owner shard (re)starts the subscription's driver.
use std::rc::Rc;

use base64::Engine as _;
use serde::Deserialize;
use serde_json::{json, Value};

use super::client::Url;
use super::driver;
use super::engine::WebhookEngine;
use super::feed::PartitionFeed;
use super::message::parse_webhook_id;
use super::model::{
    cursor_key, unix_ms, unix_s, CursorMap, FilterSpec, Kind, PreviousSecret, StateRecord,
    Subscription,
};
use super::ordering::Ordering;
use super::table::Entry;
use crate::broker::PartitionKey;
use crate::codec::event_id::write_epoch;
use crate::codec::http1::{Method, Request};
use crate::codec::topic::{is_reserved, validate_topic};
use crate::delivery::policy_gate::authenticate;
use crate::delivery::publish::refusal;
use crate::delivery::response::Response;
use crate::policy::webhook_signature::standard_key;
use crate::shard::context::ShardContext;

/// Topics one endpoint may read.
const MAX_TOPICS: usize = 64;
/// Random bytes in a generated secret (Standard Webhooks suggests 24 to 64).
const SECRET_BYTES: usize = 24;
/// The shortest secret accepted from a client, in bytes.
const MIN_SECRET_BYTES: usize = 16;

/// What `/webhooks...` addresses.
#[derive(Debug, PartialEq, Eq)]
pub enum Target<'a> {
    Collection,
    One(&'a str),
    Replay(&'a str),
    Attempts(&'a str),
}

impl<'a> Target<'a> {
    /// From the path after `/webhooks` (`""`, `/{id}`, `/{id}/replay`, `/{id}/attempts`).
    pub fn parse(rest: &'a str) -> Option<Self> {
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.is_empty() {
            return Some(Target::Collection);
        }
        let rest = rest.strip_prefix('/')?;
        match rest.split_once('/') {
            None => Some(Target::One(rest)),
            Some((id, "replay")) => Some(Target::Replay(id)),
            Some((id, "attempts")) => Some(Target::Attempts(id)),
            _ => None,
        }
    }

    pub fn allowed(&self) -> &'static str {
        match self {
            Target::Collection => "GET, POST",
            Target::One(_) => "GET, PATCH, DELETE",
            Target::Replay(_) => "POST",
            Target::Attempts(_) => "GET",
        }
    }

    pub fn allows(&self, m: Method) -> bool {
        match self {
            Target::Collection => matches!(m, Method::Get | Method::Post),
            Target::One(_) => matches!(m, Method::Get | Method::Patch | Method::Delete),
            Target::Replay(_) => m == Method::Post,
            Target::Attempts(_) => m == Method::Get,
        }
    }
}

/// Handle one request to the endpoints API.
pub async fn handle(ctx: &Rc<ShardContext>, req: &Request, target: Target<'_>) -> Response {
    let Some(engine) = ctx.webhooks.get().cloned() else {
        return Response::text(503, "webhooks are not running on this gateway");
    };
    let principal = match authenticate(ctx, req) {
        Ok(p) => p,
        Err(refused) => return refused,
    };
    if !principal.admin {
        return Response::text(
            403,
            format!(
                "`{}` may not manage webhooks: the endpoints API needs an admin credential (an API key with admin = true)",
                principal.name
            ),
        );
    }
    if !target.allows(req.method) {
        return Response::text(
            405,
            format!("method not allowed here; allowed: {}", target.allowed()),
        )
        .with_header("allow", target.allowed());
    }
    let result = match (target, req.method) {
        (Target::Collection, Method::Get) => Ok(list(&engine)),
        (Target::Collection, _) => create(ctx, &engine, req, &principal.name).await,
        (Target::One(id), Method::Get) => {
            one(&engine, id).map(|e| Response::json(200, show(&engine, &e, None)))
        }
        (Target::One(id), Method::Delete) => delete(ctx, &engine, id).await,
        (Target::One(id), _) => patch(ctx, &engine, req, id).await,
        (Target::Replay(id), _) => replay(ctx, &engine, req, id).await,
        (Target::Attempts(id), _) => one(&engine, id).map(|_| {
            let status = engine.status(id);
            Response::json(200, json!({ "attempts": status.attempts }).to_string())
        }),
    };
    result.unwrap_or_else(|refused| refused)
}

fn one(engine: &WebhookEngine, id: &str) -> Result<Entry, Response> {
    engine
        .entry(id)
        .filter(|e| e.sub.kind == Kind::Endpoint)
        .ok_or_else(|| Response::text(404, format!("no webhook endpoint `{id}`")))
}

fn list(engine: &WebhookEngine) -> Response {
    let all: Vec<Value> = engine
        .entries()
        .iter()
        .map(|e| show_value(engine, e, None))
        .collect();
    Response::json(200, json!({ "webhooks": all }).to_string())
}

/// A subscription as the API shows it; `secret` only when just created or rotated.
fn show(engine: &WebhookEngine, e: &Entry, secret: Option<&str>) -> String {
    show_value(engine, e, secret).to_string()
}

fn show_value(engine: &WebhookEngine, e: &Entry, secret: Option<&str>) -> Value {
    let s = &e.sub;
    let status = engine.status(&s.id);
    let cursor = if status.cursor.is_empty() {
        e.cursor.clone()
    } else {
        status.cursor.clone()
    };
    let mut v = json!({
        "id": s.id,
        "kind": s.kind,
        "url": s.url,
        "topics": s.topics,
        "filter": s.filter,
        "status": if s.disabled.is_some() { "disabled" } else { "active" },
        "disabled_reason": s.disabled,
        "created_at": s.created_at,
        "lease_expires": s.lease_expires,
        "owner": s.owner,
        "cursor": cursor,
        "delivered": status.delivered,
        "failed_attempts": status.failed_attempts,
        "dead_lettered": status.dead_lettered,
        "skipped": status.skipped,
        "failing_since": status.failing_since,
        "secret_rotating_until": s.previous_secret.as_ref().map(|p| p.until),
        "ordering": s.ordering,
    });
    if let Some(secret) = secret {
        v["secret"] = Value::String(secret.to_owned());
    }
    v
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    url: String,
    topics: Vec<String>,
    #[serde(default)]
    filter: FilterSpec,
    #[serde(default)]
    secret: Option<String>,
    /// `latest` (default) or `earliest`.
    #[serde(default)]
    from: Option<String>,
    /// `partition` (default) or `key`.
    #[serde(default)]
    ordering: Option<Ordering>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchBody {
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    topics: Option<Vec<String>>,
    #[serde(default)]
    filter: Option<FilterSpec>,
    /// A new secret, or `"rotate"` for a generated one; the old one keeps signing for
    /// `webhooks.rotation_overlap_s`.
    #[serde(default)]
    secret: Option<String>,
    /// `true` re-enables a disabled endpoint, `false` disables it.
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default)]
    ordering: Option<Ordering>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplayBody {
    /// A `webhook-id` (send again from that event of its partition) or `earliest`.
    #[serde(default)]
    from: Option<String>,
    /// Unix milliseconds: send again every event appended since (durable log only).
    #[serde(default)]
    from_time_ms: Option<i64>,
}

fn body_json<'a, T: Deserialize<'a>>(req: &'a Request) -> Result<T, Response> {
    serde_json::from_slice(&req.body).map_err(|e| Response::text(400, format!("request body: {e}")))
}

fn check_url(url: &str) -> Result<String, Response> {
    Url::parse(url)
        .map(|u| u.to_string())
        .map_err(|e| Response::text(400, format!("url `{url}`: {e}")))
}

/// The topics of an endpoint: valid names, not too many, none twice, and with Kafka, topics
/// this gateway reads (or its own `gateway.*` topics).
fn check_topics(ctx: &ShardContext, topics: &[String]) -> Result<(), Response> {
    if topics.is_empty() {
        return Err(Response::text(400, "name at least one topic in `topics`"));
    }
    if topics.len() > MAX_TOPICS {
        return Err(Response::text(
            400,
            format!("at most {MAX_TOPICS} topics per endpoint"),
        ));
    }
    for (i, t) in topics.iter().enumerate() {
        validate_topic(t).map_err(|e| Response::text(400, format!("topic `{t}`: {e}")))?;
        if topics[..i].contains(t) {
            return Err(Response::text(400, format!("topic `{t}` is named twice")));
        }
    }
    if let Some(link) = &ctx.broker_link {
        for t in topics.iter().filter(|t| !is_reserved(t)) {
            link.partitions(t).map_err(|e| refusal(&e))?;
        }
    }
    Ok(())
}

fn check_secret(secret: &str) -> Result<(), Response> {
    let key = standard_key(secret).map_err(|e| Response::text(400, format!("secret: {e}")))?;
    if key.len() < MIN_SECRET_BYTES {
        return Err(Response::text(
            400,
            format!(
                "secret: at least {MIN_SECRET_BYTES} bytes of key after `whsec_` (base64), got {}",
                key.len()
            ),
        ));
    }
    Ok(())
}

/// Random bytes from the OS.
fn random_bytes(n: usize) -> Result<Vec<u8>, Response> {
    let mut buf = vec![0u8; n];
    getrandom::getrandom(&mut buf)
        .map_err(|e| Response::text(500, format!("no randomness for a secret: {e}")))?;
    Ok(buf)
}

fn new_secret() -> Result<String, Response> {
    let bytes = random_bytes(SECRET_BYTES)?;
    Ok(format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    ))
}

fn new_id() -> Result<String, Response> {
    let bytes = random_bytes(10)?;
    Ok(bytes.iter().fold(String::from("wh_"), |mut s, b| {
        s.push_str(&format!("{b:02x}"));
        s
    }))
}

async fn store(
    ctx: &ShardContext,
    engine: &WebhookEngine,
    record: &StateRecord,
) -> Result<(), Response> {
    engine
        .write_state(ctx, record)
        .await
        .map_err(|e| refusal(&e))
}

/// Store a subscription's definition and cursor; the entry as this shard now knows it.
async fn store_put(
    ctx: &ShardContext,
    engine: &WebhookEngine,
    sub: Subscription,
    cursor: CursorMap,
) -> Result<Entry, Response> {
    let id = sub.id.clone();
    let record = StateRecord::Put {
        sub: Box::new(sub),
        cursor,
        at: unix_ms(),
    };
    store(ctx, engine, &record).await?;
    one(engine, &id)
}

async fn create(
    ctx: &ShardContext,
    engine: &WebhookEngine,
    req: &Request,
    owner: &str,
) -> Result<Response, Response> {
    let body: CreateBody = body_json(req)?;
    let url = check_url(&body.url)?;
    check_topics(ctx, &body.topics)?;
    let secret = match body.secret {
        Some(s) => {
            check_secret(&s)?;
            s
        }
        None => new_secret()?,
    };
    let cursor = match body.from.as_deref() {
        None | Some("latest") => engine.heads(ctx, &body.topics),
        Some("earliest") => engine
            .heads(ctx, &body.topics)
            .into_keys()
            .map(|k| (k, 0))
            .collect(),
        Some(other) => {
            return Err(Response::text(
                400,
                format!("from: `{other}` is not `latest` or `earliest`"),
            ))
        }
    };
    let sub = Subscription {
        id: new_id()?,
        kind: Kind::Endpoint,
        url,
        topics: body.topics,
        filter: body.filter,
        secret: Some(secret.clone()),
        previous_secret: None,
        disabled: None,
        created_at: unix_s(),
        lease_expires: None,
        topic_url: None,
        owner: owner.to_owned(),
        ordering: body.ordering.unwrap_or_default(),
        version: 1,
    };
    let id = sub.id.clone();
    let entry = store_put(ctx, engine, sub, cursor).await?;
    Ok(Response::json(201, show(engine, &entry, Some(&secret)))
        .with_header("location", format!("/webhooks/{id}")))
}

async fn patch(
    ctx: &ShardContext,
    engine: &WebhookEngine,
    req: &Request,
    id: &str,
) -> Result<Response, Response> {
    let entry = one(engine, id)?;
    let body: PatchBody = body_json(req)?;
    let mut sub = entry.sub.clone();
    let mut cursor = engine.status(id).cursor;
    if cursor.is_empty() {
        cursor = entry.cursor.clone();
    }
    if let Some(url) = body.url {
        sub.url = check_url(&url)?;
    }
    if let Some(topics) = body.topics {
        check_topics(ctx, &topics)?;
        let heads = engine.heads(ctx, &topics);
        cursor.retain(|k, _| heads.contains_key(k));
        for (k, head) in heads {
            cursor.entry(k).or_insert(head);
        }
        sub.topics = topics;
    }
    if let Some(filter) = body.filter {
        sub.filter = filter;
    }
    let mut shown_secret = None;
    if let Some(secret) = body.secret {
        let secret = if secret == "rotate" {
            new_secret()?
        } else {
            secret
        };
        check_secret(&secret)?;
        if let Some(old) = sub.secret.replace(secret.clone()) {
            sub.previous_secret = Some(PreviousSecret {
                secret: old,
                until: unix_s() + engine.settings().rotation_overlap_s,
            });
        }
        shown_secret = Some(secret);
    }
    if let Some(ordering) = body.ordering {
        sub.ordering = ordering;
    }
    sub.version += 1;
    match body.enabled {
        Some(true) => sub.disabled = None,
        Some(false) => sub.disabled = Some("disabled through the API".to_owned()),
        None => {}
    }
    let entry = store_put(ctx, engine, sub, cursor).await?;
    Ok(Response::json(
        200,
        show(engine, &entry, shown_secret.as_deref()),
    ))
}

async fn delete(
    ctx: &ShardContext,
    engine: &WebhookEngine,
    id: &str,
) -> Result<Response, Response> {
    one(engine, id)?;
    let record = StateRecord::Delete {
        id: id.to_owned(),
        at: unix_ms(),
    };
    store(ctx, engine, &record).await?;
    Ok(Response::new(204, "text/plain; charset=utf-8", Vec::new()))
}

async fn replay(
    ctx: &ShardContext,
    engine: &WebhookEngine,
    req: &Request,
    id: &str,
) -> Result<Response, Response> {
    let entry = one(engine, id)?;
    let body: ReplayBody = body_json(req)?;
    let from = match (body.from, body.from_time_ms) {
        (Some(from), None) => from,
        (None, Some(at)) => return replay_since(ctx, engine, &entry, id, at).await,
        _ => {
            return Err(Response::text(
                400,
                "give one of `from` (a webhook-id, or `earliest`) and `from_time_ms`",
            ))
        }
    };
    let cursor: CursorMap = if from == "earliest" {
        engine
            .heads(ctx, &entry.sub.topics)
            .into_keys()
            .map(|k| (k, 0))
            .collect()
    } else {
        let (epoch, topic, partition, offset) = parse_webhook_id(&from).ok_or_else(|| {
            Response::text(
                400,
                format!(
                    "from: `{}` is not a webhook-id (epoch:topic:partition:offset) or `earliest`",
                    from
                ),
            )
        })?;
        let mut ours = String::new();
        write_epoch(&mut ours, ctx.epoch());
        if epoch != ours {
            return Err(Response::text(
                409,
                format!(
                    "from: `{}` is from an earlier run of the gateway (its events are gone)",
                    from
                ),
            ));
        }
        if !entry.sub.topics.contains(&topic) || partition >= driver::partition_count(ctx, &topic) {
            return Err(Response::text(
                400,
                format!("from: `{}` is not an event of this endpoint's topics", from),
            ));
        }
        let key = PartitionKey {
            topic: topic.as_str().into(),
            partition,
        };
        [(cursor_key(&key), offset)].into()
    };
    store_replay(ctx, engine, id, cursor).await
}

async fn store_replay(
    ctx: &ShardContext,
    engine: &WebhookEngine,
    id: &str,
    cursor: CursorMap,
) -> Result<Response, Response> {
    let record = StateRecord::Replay {
        id: id.to_owned(),
        cursor: cursor.clone(),
        at: unix_ms(),
    };
    store(ctx, engine, &record).await?;
    Ok(Response::json(
        202,
        json!({ "replaying_from": cursor }).to_string(),
    ))
}

/// Replay every event appended at or after `at_ms`, found by the durable log's record times.
async fn replay_since(
    ctx: &ShardContext,
    engine: &WebhookEngine,
    entry: &Entry,
    id: &str,
    at_ms: i64,
) -> Result<Response, Response> {
    let mut cursor = CursorMap::new();
    for topic in &entry.sub.topics {
        for partition in 0..driver::partition_count(ctx, topic) {
            let key = PartitionKey {
                topic: topic.as_str().into(),
                partition,
            };
            let offset = PartitionFeed::offset_at(ctx, &key, at_ms).await.ok_or_else(|| {
                Response::text(
                    409,
                    "from_time_ms needs the durable log (storage.mode = \"durable\" without Kafka): the memory history keeps no times; replay from a webhook-id instead",
                )
            })?;
            cursor.insert(cursor_key(&key), offset);
        }
    }
    store_replay(ctx, engine, id, cursor).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse() {
        assert_eq!(Target::parse(""), Some(Target::Collection));
        assert_eq!(Target::parse("/"), Some(Target::Collection));
        assert_eq!(Target::parse("/wh_1"), Some(Target::One("wh_1")));
        assert_eq!(Target::parse("/wh_1/replay"), Some(Target::Replay("wh_1")));
        assert_eq!(
            Target::parse("/wh_1/attempts"),
            Some(Target::Attempts("wh_1"))
        );
        assert_eq!(Target::parse("/wh_1/other"), None);
        assert_eq!(Target::parse("x"), None);
    }
}
