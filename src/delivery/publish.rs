//! `POST /topics/{topic}/events`: read one event (or an NDJSON batch) and append it.
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use super::policy_gate::denied;
use super::response::Response;
use crate::broker::plane::{ProduceRecord, ID_HEADER};
use crate::broker::routing::partition_for_key;
use crate::broker::{PartitionKey, PublishItem, Refusal};
use crate::codec::event_id;
use crate::codec::http1::Request;
use crate::codec::query;
use crate::codec::sse::{validate, SseEvent};
use crate::codec::topic::{is_reserved, validate_topic};
use crate::policy::engine::ShardPolicy;
use crate::policy::principal::{Action, Principal};
use crate::shard::broker_link::BrokerLink;
use crate::shard::context::ShardContext;
use crate::telemetry::latency::Stage;
use crate::telemetry::system_events::SystemTopic;

/// An option given as a query parameter or, failing that, as a `Sluicegate-*` header.
fn option(req: &Request, name: &str, header: &str) -> Result<Option<String>, Response> {
    match query::first(req.query(), name) {
        Ok(Some(v)) => return Ok(Some(v)),
        Ok(None) => {}
        Err(e) => return Err(Response::text(400, format!("query: {e}"))),
    }
    match req.header(header) {
        None => Ok(None),
        Some(raw) => match std::str::from_utf8(raw) {
            Ok(v) => Ok(Some(v.trim().to_owned())),
            Err(_) => Err(Response::text(
                400,
                format!("header {header} is not valid UTF-8"),
            )),
        },
    }
}

/// Decode and check the `{topic}` path segment.
pub fn topic_from_segment(segment: &str) -> Result<String, Response> {
    let topic = query::percent_decode_path(segment)
        .map_err(|e| Response::text(400, format!("topic in path: {e}")))?;
    validate_topic(&topic).map_err(|e| Response::text(400, e.to_string()))?;
    Ok(topic.into_owned())
}

fn is_ndjson(req: &Request) -> bool {
    req.header_str("content-type").is_some_and(|ct| {
        let ct = ct.split(';').next().unwrap_or("").trim();
        ct.eq_ignore_ascii_case("application/x-ndjson")
            || ct.eq_ignore_ascii_case("application/jsonl")
    })
}

/// Split an NDJSON body into one event per non-empty line (a trailing CR is dropped).
fn batch_lines(body: &Bytes) -> Vec<Bytes> {
    let mut items = Vec::new();
    let mut start = 0;
    let bytes = &body[..];
    for end in memchr::memchr_iter(b'\n', bytes).chain(std::iter::once(bytes.len())) {
        let mut line_end = end;
        if line_end > start && bytes[line_end - 1] == b'\r' {
            line_end -= 1;
        }
        if line_end > start {
            items.push(body.slice(start..line_end));
        }
        start = end + 1;
        if start > bytes.len() {
            break;
        }
    }
    items
}

/// A publish as any transport hands it in (HTTP here, WebSocket `publish` messages), before
/// it is checked against the policy and appended.
#[derive(Debug, Default)]
pub struct Publication {
    /// The topic, validated as a name (not yet against reserved names or the ACL).
    pub topic: String,
    pub event_type: Option<String>,
    /// The idempotency key (single events only).
    pub idempotency_key: Option<String>,
    pub key: Option<String>,
    /// `Sluicegate-Header-<name>` headers, as `(name, value)`.
    pub headers: Vec<(String, Bytes)>,
    /// One event's data per entry (a batch has several).
    pub datas: Vec<Bytes>,
    /// Which way it came in, for `gateway.event.received`: `http`, `ws` or `webhook`.
    pub via: &'static str,
}

/// Handle a publish by `principal` from `client`; the answer lists the ids the events got.
pub async fn handle(
    ctx: &ShardContext,
    req: &Request,
    segment: &str,
    principal: &Principal,
    client: IpAddr,
) -> Response {
    let publication = match from_request(req, segment) {
        Ok(p) => p,
        Err(refused) => return refused,
    };
    match publish(ctx, principal, client, publication).await {
        Ok(ids) => Response::json(200, ids_json(&ids)),
        Err(refused) => refused,
    }
}

/// Read an HTTP publish: the topic from the path, options from the query or `Sluicegate-*`
/// headers, one event or an NDJSON batch from the body.
fn from_request(req: &Request, segment: &str) -> Result<Publication, Response> {
    let topic = topic_from_segment(segment)?;
    let event_type = option(req, "event", "sluicegate-event")?.filter(|t| !t.is_empty());
    let idempotency_key = option(req, "id", "sluicegate-id")?.filter(|t| !t.is_empty());
    let key = option(req, "key", "sluicegate-key")?;
    let datas = if is_ndjson(req) {
        if idempotency_key.is_some() {
            return Err(Response::text(
                400,
                "`id` cannot be used with a batch (it would apply to every line)",
            ));
        }
        let lines = batch_lines(&req.body);
        if lines.is_empty() {
            return Err(Response::text(
                400,
                "batch has no events (every line is empty)",
            ));
        }
        lines
    } else {
        vec![req.body.clone()]
    };
    Ok(Publication {
        topic,
        event_type,
        idempotency_key,
        key,
        headers: passthrough_headers(req),
        datas,
        via: "http",
    })
}

/// Check a publication against reserved topics, the principal's ACL, the event rules and the
/// rate limits, then append it (embedded broker) or produce it (Kafka); the ids the events
/// got, or the answer that refuses it.
pub async fn publish(
    ctx: &ShardContext,
    principal: &Principal,
    client: IpAddr,
    p: Publication,
) -> Result<Vec<String>, Response> {
    let started = Instant::now();
    // What the system events say about it, taken only while someone listens to them.
    let summary = ctx
        .shared
        .system_interest
        .any_publish_listener()
        .then(|| Summary::of(&p, ctx.config()));
    let result = publish_checked(ctx, principal, client, p).await;
    if result.is_ok() {
        ctx.latency().record(Stage::Publish, started.elapsed());
    }
    if let Some(summary) = summary {
        summary.emit(ctx, principal, client, &result);
    }
    result
}

/// A publication as `gateway.event.received` / `gateway.publish.rejected` describe it.
struct Summary {
    topic: String,
    event_type: Option<String>,
    key: Option<String>,
    count: usize,
    bytes: usize,
    via: &'static str,
    headers: serde_json::Map<String, serde_json::Value>,
    data: Option<Vec<String>>,
}

impl Summary {
    fn of(p: &Publication, config: &crate::config::Config) -> Self {
        let wanted = &config.system_events.headers;
        let headers = p
            .headers
            .iter()
            .filter(|(name, _)| wanted.iter().any(|w| w.eq_ignore_ascii_case(name)))
            .map(|(name, value)| {
                let value = String::from_utf8_lossy(value).into_owned();
                (name.clone(), serde_json::Value::String(value))
            })
            .collect();
        let data = config.system_events.include_payload.then(|| {
            p.datas
                .iter()
                .map(|d| String::from_utf8_lossy(d).into_owned())
                .collect()
        });
        Self {
            topic: p.topic.clone(),
            event_type: p.event_type.clone(),
            key: p.key.clone(),
            count: p.datas.len(),
            bytes: p.datas.iter().map(Bytes::len).sum(),
            via: p.via,
            headers,
            data,
        }
    }

    fn emit(
        self,
        ctx: &ShardContext,
        principal: &Principal,
        client: IpAddr,
        result: &Result<Vec<String>, Response>,
    ) {
        let mut event = serde_json::json!({
            "topic": self.topic,
            "type": self.event_type,
            "key": self.key,
            "count": self.count,
            "size": self.bytes,
            "principal": &*principal.name,
            "client": client.to_string(),
            "via": self.via,
            "shard": ctx.id,
        });
        match result {
            Ok(ids) => {
                event["ids"] = serde_json::json!(ids);
                event["headers"] = serde_json::Value::Object(self.headers);
                if let Some(data) = self.data {
                    event["data"] = serde_json::json!(data);
                }
                ctx.emit(SystemTopic::EventReceived, || event);
            }
            Err(refused) => {
                event["status"] = serde_json::json!(refused.status);
                event["reason"] = serde_json::json!(refused.text_body());
                ctx.emit(SystemTopic::PublishRejected, || event);
            }
        }
    }
}

async fn publish_checked(
    ctx: &ShardContext,
    principal: &Principal,
    client: IpAddr,
    p: Publication,
) -> Result<Vec<String>, Response> {
    if is_reserved(&p.topic) {
        return Err(Response::text(
            403,
            format!(
                "topic `{}` is reserved for the gateway's own events",
                p.topic
            ),
        ));
    }
    ShardPolicy::authorize(principal, Action::Publish, &[&p.topic]).map_err(|d| denied(ctx, &d))?;
    validate_events(&p).map_err(|e| Response::text(400, e))?;
    // Charged only once the request is known to be well-formed.
    let bytes = p.datas.iter().map(Bytes::len).sum();
    ctx.policy
        .admit_publish(
            principal,
            client,
            &p.topic,
            p.datas.len(),
            bytes,
            Instant::now(),
        )
        .map_err(|d| denied(ctx, &d))?;
    let (mut p, routes) = super::hook_gate::publish(ctx, principal, client, p).await?;
    let Some(mut topics) = routes else {
        let topic = std::mem::take(&mut p.topic);
        return append(ctx, topic, p.into_parts()).await;
    };
    // Routed by a hook to several topics: a copy each (of reference counts) but the last.
    let last = topics.pop().unwrap_or_default();
    let mut ids = Vec::new();
    for topic in topics {
        ids.extend(append(ctx, topic, p.clone_parts()).await?);
    }
    ids.extend(append(ctx, last, p.into_parts()).await?);
    Ok(ids)
}

/// Check every event of `p` against the SSE rules; the message says which line failed.
pub(super) fn validate_events(p: &Publication) -> Result<(), String> {
    for (i, data) in p.datas.iter().enumerate() {
        let ev = SseEvent {
            id: p.idempotency_key.as_deref(),
            event: p.event_type.as_deref(),
            data,
            retry_ms: None,
        };
        if let Err(e) = validate(&ev) {
            let which = if p.datas.len() > 1 {
                format!("line {}: ", i + 1)
            } else {
                String::new()
            };
            return Err(format!("{which}{e}"));
        }
    }
    Ok(())
}

/// What [`append`] takes of a publication.
struct Parts {
    event_type: Option<String>,
    idempotency_key: Option<String>,
    key: Option<String>,
    headers: Vec<(String, Bytes)>,
    datas: Vec<Bytes>,
}

impl Publication {
    fn into_parts(self) -> Parts {
        Parts {
            event_type: self.event_type,
            idempotency_key: self.idempotency_key,
            key: self.key,
            headers: self.headers,
            datas: self.datas,
        }
    }

    fn clone_parts(&self) -> Parts {
        Parts {
            event_type: self.event_type.clone(),
            idempotency_key: self.idempotency_key.clone(),
            key: self.key.clone(),
            headers: self.headers.clone(),
            datas: self.datas.clone(),
        }
    }
}

/// Append (or, with Kafka, produce) the events to `topic`; the ids they got.
async fn append(ctx: &ShardContext, topic: String, p: Parts) -> Result<Vec<String>, Response> {
    let Parts {
        event_type,
        idempotency_key,
        key,
        headers,
        datas,
    } = p;
    if let Some(link) = &ctx.broker_link {
        return produce_to_log(
            ctx,
            link,
            topic,
            event_type,
            idempotency_key,
            key,
            headers,
            datas,
        )
        .await;
    }
    let partitions = ctx.config().memory_broker.partitions;
    let partition = match &key {
        Some(k) => partition_for_key(k.as_bytes(), partitions),
        None => ctx.next_round_robin(partitions),
    };
    let event_type: Option<Arc<str>> = event_type.map(Into::into);
    let idempotency_key: Option<Box<str>> = idempotency_key.map(Into::into);
    let items = datas
        .into_iter()
        .map(|data| PublishItem {
            event_type: event_type.clone(),
            idempotency_key: idempotency_key.clone(),
            data,
            key: key.as_ref().map(|k| Bytes::copy_from_slice(k.as_bytes())),
            headers: headers.clone(),
        })
        .collect();
    let key = PartitionKey {
        topic: topic.into(),
        partition,
    };
    ctx.publish(key, items).await.map_err(|e| refusal(&e))
}

/// Request headers `Sluicegate-Header-<Name>: v` become record headers `<name>: v`.
const HEADER_PASSTHROUGH: &str = "sluicegate-header-";

/// The request's `Sluicegate-Header-<Name>: v` headers as `(name, v)` (names lower case).
fn passthrough_headers(req: &Request) -> Vec<(String, Bytes)> {
    req.headers
        .iter()
        .filter_map(|(name, value)| {
            let rest = name.strip_prefix(HEADER_PASSTHROUGH)?;
            (!rest.is_empty()).then(|| (rest.to_owned(), Bytes::copy_from_slice(value)))
        })
        .collect()
}

/// With Kafka (or Redis in broker mode): produce the events as one batch and answer once the broker acknowledged. They
/// reach subscribers through the consume path like any other record. A failure is 503 when
/// nothing was written and 504 when the outcome is unknown (see
/// [`crate::broker::plane::ProduceError::status`]).
#[allow(clippy::too_many_arguments)]
async fn produce_to_log(
    ctx: &ShardContext,
    link: &BrokerLink,
    topic: String,
    event_type: Option<String>,
    idempotency_key: Option<String>,
    key: Option<String>,
    extra: Vec<(String, Bytes)>,
    datas: Vec<Bytes>,
) -> Result<Vec<String>, Response> {
    link.partitions(&topic).map_err(|e| refusal(&e))?;
    // A Redis sink at its bound (overflow "block") pauses reading the log, so the event would
    // not come back to be mirrored (nor its acknowledgement, in time): refuse it now instead.
    let topic_key: Arc<str> = Arc::from(topic.as_str());
    if ctx.redis_sink.get().is_some_and(|s| s.refuses(&topic_key)) {
        return Err(refusal(&crate::broker::PublishError::Busy(
            "the Redis sink's queue is full (redis.sink_queue_events; Redis is slow or down)"
                .into(),
        )));
    }
    // The idempotency key travels in its own record header; a pass-through header of that
    // name would make the owner drop records the publisher never meant as retries.
    if extra.iter().any(|(name, _)| name == ID_HEADER) {
        return Err(Response::text(
            400,
            format!("header Sluicegate-Header-{ID_HEADER} is reserved; use Sluicegate-Id"),
        ));
    }
    let headers = link.publish_headers(event_type.as_deref(), &extra);
    let event_type = event_type.map(|t| Bytes::from(t.into_bytes()));
    let key = key.map(|k| Bytes::from(k.into_bytes()));
    // Batches refuse `id` before this point, so an id belongs to exactly one record.
    let id = idempotency_key.map(|k| Bytes::from(k.into_bytes()));
    let records = datas
        .into_iter()
        .map(|value| ProduceRecord {
            key: key.clone(),
            headers: headers.clone(),
            value,
            id: id.clone(),
            event_type: event_type.clone(),
        })
        .collect();
    match link.produce(topic.into(), records).await {
        Ok(produced) => Ok(produced
            .iter()
            .map(|p| event_id::format_single(ctx.epoch(), u64::try_from(p.offset).unwrap_or(0) + 1))
            .collect()),
        Err(e) => Err(refusal(&e)),
    }
}

/// The answer to a request a lower layer refused ([`crate::broker::PublishError`],
/// [`crate::broker::plane::ProduceError`], [`crate::shard::broker_link::TopicUnavailable`]):
/// each of those decides its own status and whether a retry may help; this is the one place
/// that turns that into a response, with `Retry-After` when it does.
pub(super) fn refusal(why: &impl Refusal) -> Response {
    let response = Response::text(why.status(), why.to_string());
    match why.retry_after() {
        Some(seconds) => response.with_header("retry-after", seconds.to_string()),
        None => response,
    }
}

/// `{"ids":[...]}` (ids are `[0-9a-z.-]`: no escaping needed).
pub(super) fn ids_json(ids: &[String]) -> String {
    let mut body = String::from("{\"ids\":[");
    for (i, id) in ids.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push('"');
        body.push_str(id);
        body.push('"');
    }
    body.push_str("]}\n");
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_lines_split_on_lf_and_drop_cr_and_empty_lines() {
        let body = Bytes::from_static(b"{\"a\":1}\r\n\n{\"b\":2}\nlast");
        let lines: Vec<_> = batch_lines(&body).into_iter().collect();
        assert_eq!(
            lines,
            vec![
                Bytes::from_static(b"{\"a\":1}"),
                Bytes::from_static(b"{\"b\":2}"),
                Bytes::from_static(b"last")
            ]
        );
        assert!(batch_lines(&Bytes::from_static(b"\n\r\n")).is_empty());
    }
}
