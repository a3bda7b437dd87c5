//! `GET /topics/{topic}/events` and `GET /events?topic=...`: check a subscription request and
//! build its [`Subscriber`], positioned from `Last-Event-ID` or at the live head.
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use super::filter::EventFilter;
use super::policy_gate::denied;
use super::publish::{refusal, topic_from_segment};
use super::response::Response;
use super::subscriber::{Gap, StreamFraming, Subscriber, SubscriptionSpec, RESTART_REASON};
use crate::broker::PartitionKey;
use crate::codec::event_id::parse_cursor;
use crate::codec::http1::Request;
use crate::codec::query;
use crate::codec::topic::{is_reserved, validate_topic};
use crate::policy::engine::ShardPolicy;
use crate::policy::principal::{Action, Principal};
use crate::shard::context::ShardContext;
use crate::telemetry::ShardMetrics;

fn accepts_event_stream(req: &Request) -> bool {
    match req.header_str("accept") {
        None => true,
        Some(accept) => accept.split(',').any(|item| {
            let media = item.split(';').next().unwrap_or("").trim();
            media.eq_ignore_ascii_case("text/event-stream")
                || media == "*/*"
                || media.eq_ignore_ascii_case("text/*")
        }),
    }
}

/// Whether a request must name a topic (SSE) or may name none (a WebSocket on plain `/ws`,
/// which subscribes by message).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Topics {
    Required,
    Optional,
}

fn topics_of(
    ctx: &ShardContext,
    req: &Request,
    segment: Option<&str>,
    need: Topics,
    admin: bool,
) -> Result<Vec<String>, Response> {
    let topics = match segment {
        Some(seg) => vec![topic_from_segment(seg)?],
        None => {
            let topics = query::all(req.query(), "topic")
                .map_err(|e| Response::text(400, format!("query: {e}")))?;
            if topics.is_empty() && need == Topics::Required {
                return Err(Response::text(
                    400,
                    "name at least one topic: /events?topic=a&topic=b",
                ));
            }
            for t in &topics {
                validate_topic(t).map_err(|e| Response::text(400, format!("topic `{t}`: {e}")))?;
            }
            topics
        }
    };
    check_topics(ctx, &topics, 0, admin)?;
    Ok(topics)
}

/// Refuse a list of topics to subscribe with duplicates, reserved names, or more than the
/// per-stream limit counting `already` topics the stream reads. The gateway's own `gateway.*`
/// topics (webhook state, dead letters, system events) are for administrators only.
pub fn check_topics(
    ctx: &ShardContext,
    topics: &[String],
    already: usize,
    admin: bool,
) -> Result<(), Response> {
    let max = ctx.config().sse.max_topics_per_subscription;
    if already + topics.len() > max {
        return Err(Response::text(
            400,
            format!(
                "too many topics: {} (at most {max}; see sse.max_topics_per_subscription)",
                already + topics.len()
            ),
        ));
    }
    for (i, t) in topics.iter().enumerate() {
        if topics[..i].contains(t) {
            return Err(Response::text(400, format!("topic `{t}` is named twice")));
        }
        if is_reserved(t) && !admin {
            return Err(Response::text(
                403,
                format!(
                    "topic `{t}` is reserved for the gateway's own events (administrators only)"
                ),
            ));
        }
    }
    Ok(())
}

fn last_event_id(req: &Request) -> Result<Option<String>, Response> {
    if let Some(raw) = req.header("last-event-id") {
        let id = std::str::from_utf8(raw)
            .map_err(|_| Response::text(400, "Last-Event-ID is not valid UTF-8"))?;
        if !id.trim().is_empty() {
            return Ok(Some(id.trim().to_owned()));
        }
    }
    query::first(req.query(), "lastEventId")
        .map(|v| v.filter(|s| !s.is_empty()))
        .map_err(|e| Response::text(400, format!("query: {e}")))
}

/// The partitions a subscription to `topics` reads, in cursor order.
pub fn partitions_of(ctx: &ShardContext, topics: &[String]) -> Result<Vec<PartitionKey>, Response> {
    let mut parts = Vec::new();
    for t in topics {
        let count = match &ctx.broker_link {
            None => ctx.config().memory_broker.partitions,
            Some(link) => link.partitions(t).map_err(|e| refusal(&e))?,
        };
        let topic: Arc<str> = Arc::from(t.as_str());
        parts.extend((0..count).map(|p| PartitionKey {
            topic: topic.clone(),
            partition: p,
        }));
    }
    Ok(parts)
}

/// Refuse an SSE request whose `Accept` excludes `text/event-stream`.
pub fn check_accept(req: &Request) -> Result<(), Response> {
    if accepts_event_stream(req) {
        Ok(())
    } else {
        Err(Response::text(
            406,
            "this endpoint streams text/event-stream; the Accept header excludes it",
        ))
    }
}

/// Check the request (and that `principal` may read every topic it names) and create its
/// subscriber (not yet registered with the shard), framed by `framing` (SSE, WebSocket).
pub fn open(
    ctx: &ShardContext,
    req: &Request,
    segment: Option<&str>,
    principal: &Principal,
    framing: &'static dyn StreamFraming,
    need: Topics,
) -> Result<Rc<Subscriber>, Response> {
    let topics = topics_of(ctx, req, segment, need, principal.admin)?;
    // Before anything is read: a resume (Last-Event-ID) gets the same check as a live start.
    ShardPolicy::authorize(principal, Action::Subscribe, &topics).map_err(|d| denied(ctx, &d))?;
    let parts = partitions_of(ctx, &topics)?;
    let filter = EventFilter::from_query(req.query())
        .map_err(|e| Response::text(400, format!("query: {e}")))?;
    // What this shard's history lacks is read back from the log: Kafka or the durable
    // embedded log.
    let log_backed = ctx.broker_link.is_some() || ctx.durable.is_some();
    let StartAt {
        start,
        from_live,
        restart_gaps,
    } = start_at(ctx, &parts, last_event_id(req)?.as_deref())?;
    let id = ctx.subscribers.borrow_mut().next_id();
    let sse = &ctx.config().sse;
    let spec = SubscriptionSpec {
        parts,
        start,
        from_live,
        filter,
        log_backed,
    };
    let sub = Rc::new(Subscriber::new(
        id,
        spec,
        ctx.epoch(),
        sse.max_queue_bytes,
        framing,
    ));
    sub.set_egress(ctx.policy.egress_limiter(Instant::now()));
    if let Some(opening) = framing.opening(sse.retry_ms) {
        sub.push_control(opening);
    }
    if !restart_gaps.is_empty() {
        ShardMetrics::add(&ctx.metrics().resets_total, 1);
        sub.push_reset(RESTART_REASON, &restart_gaps);
    }
    Ok(sub)
}

/// Where a new subscription starts in each of its partitions.
pub struct StartAt {
    /// Per partition: the next offset to send.
    pub start: Vec<u64>,
    /// Per partition: start at the first event that arrives (see `SubscriptionSpec`).
    pub from_live: Vec<bool>,
    /// Partitions whose asked-for events are lost (an id from an earlier run): a `reset`.
    pub restart_gaps: Vec<Gap>,
}

/// Position a subscription over `parts` from the id the client holds, or at the live head.
pub fn start_at(
    ctx: &ShardContext,
    parts: &[PartitionKey],
    last_id: Option<&str>,
) -> Result<StartAt, Response> {
    let kafka_backed = ctx.broker_link.is_some();
    let histories = ctx.histories.borrow();
    // Live start: the shard's head of each partition, or, where it holds nothing yet, the first
    // event that arrives (`from_live`).
    let live = || -> (Vec<u64>, Vec<bool>) {
        parts
            .iter()
            .map(|k| histories.get(k).map_or((0, true), |h| (h.head(), false)))
            .unzip()
    };
    let mut restart_gaps = Vec::new();
    let (start, from_live) = match last_id {
        None => live(),
        Some(id) => {
            let cursor = parse_cursor(id)
                .map_err(|e| Response::text(400, format!("Last-Event-ID `{id}`: {e}")))?;
            if cursor.next.len() != parts.len() {
                return Err(Response::text(
                    400,
                    format!(
                        "Last-Event-ID `{id}` names {} partitions; this subscription reads {}",
                        cursor.next.len(),
                        parts.len()
                    ),
                ));
            }
            ShardMetrics::add(&ctx.metrics().resumes_total, 1);
            let no_live = vec![false; parts.len()];
            if cursor.epoch == ctx.epoch() && kafka_backed {
                // Kafka keeps what this shard does not: fetched back as needed.
                (cursor.next, no_live)
            } else if cursor.epoch == ctx.epoch() {
                // Clamp ids from the future (forged or corrupted) to the live head. (The
                // durable log's head is every shard's history head: restored at start.)
                let head_of = |k: &PartitionKey| histories.get(k).map_or(0, |h| h.head());
                (
                    cursor
                        .next
                        .iter()
                        .zip(parts)
                        .map(|(&n, k)| n.min(head_of(k)))
                        .collect(),
                    no_live,
                )
            } else {
                let oldest_of = |k: &PartitionKey| histories.get(k).map_or(0, |h| h.oldest());
                for (k, &requested) in parts.iter().zip(&cursor.next) {
                    restart_gaps.push(Gap {
                        key: k.clone(),
                        requested,
                        oldest: oldest_of(k),
                    });
                }
                if kafka_backed {
                    live()
                } else {
                    (parts.iter().map(oldest_of).collect(), no_live)
                }
            }
        }
    };
    Ok(StartAt {
        start,
        from_live,
        restart_gaps,
    })
}
