//! `subscribe` and `unsubscribe` over a WebSocket: each topic a client adds is a subscription of
//! its own (its filter, and ids that resume that topic alone), checked as an SSE request is
//! (topic names, reserved topics, the per-stream topic limit, the principal's subscribe ACL,
//! where a resume starts), and applied to the stream's subscriber in one step on the shard.
use std::collections::BTreeMap;
use std::rc::Rc;

use super::ops::Refused;
use crate::codec::topic::validate_topic;
use crate::delivery::filter::EventFilter;
use crate::delivery::policy_gate::denied;
use crate::delivery::response::Response;
use crate::delivery::subscribe::{check_topics, partitions_of, start_at};
use crate::delivery::subscriber::{ChangeError, NewSubscription, Subscriber};
use crate::policy::engine::ShardPolicy;
use crate::policy::principal::{Action, Principal};
use crate::shard::context::ShardContext;
use crate::telemetry::ShardMetrics;

/// What a subscribe or unsubscribe request names.
pub struct Change {
    /// `topic`, or `topics`: at least one.
    pub topics: Vec<String>,
    /// Resume the one topic named from this id.
    pub last_event_id: Option<String>,
    /// Filters: event types (comma-separated), key, headers.
    pub types: Option<String>,
    pub key: Option<String>,
    pub headers: BTreeMap<String, String>,
}

impl Change {
    /// The topics named by `topic` and `topics` (one of the two).
    pub fn topics(topic: Option<String>, topics: Vec<String>) -> Result<Vec<String>, Refused> {
        match (topic, topics.is_empty()) {
            (Some(t), true) => Ok(vec![t]),
            (None, false) => Ok(topics),
            (Some(_), false) => Err(Refused::new(400, "name `topic` or `topics`, not both")),
            (None, true) => Err(Refused::new(400, "name a `topic` (or `topics`)")),
        }
    }
}

fn refused(resp: Response) -> Refused {
    Refused::new(resp.status, resp.text_body())
}

fn change_refused(err: ChangeError) -> Refused {
    match err {
        ChangeError::Closing => Refused::new(503, "the stream is closing"),
        ChangeError::AlreadySubscribed(t) => Refused::new(
            409,
            format!("topic `{t}` is already subscribed on this connection"),
        ),
        ChangeError::NotSubscribed(t) => Refused::new(
            404,
            format!("topic `{t}` is not subscribed on this connection"),
        ),
        ChangeError::PartOfUrlGroup(t) => Refused::new(
            409,
            format!(
                "topic `{t}` was subscribed in the URL with other topics: unsubscribe them together"
            ),
        ),
    }
}

/// Add a subscription per topic named (all or none); answers with every topic the stream
/// reads now.
pub fn subscribe(
    ctx: &ShardContext,
    principal: &Principal,
    sub: &Rc<Subscriber>,
    change: Change,
) -> Result<Vec<String>, Refused> {
    let Change {
        topics,
        last_event_id,
        types,
        key,
        headers,
    } = change;
    if last_event_id.is_some() && topics.len() != 1 {
        return Err(Refused::new(
            400,
            "`lastEventId` resumes one topic: send one subscribe per topic to resume",
        ));
    }
    for t in &topics {
        validate_topic(t).map_err(|e| Refused::new(400, format!("topic `{t}`: {e}")))?;
    }
    let current = sub.topics();
    if let Some(t) = topics.iter().find(|t| current.contains(t)) {
        return Err(change_refused(ChangeError::AlreadySubscribed(t.clone())));
    }
    check_topics(ctx, &topics, current.len(), principal.admin).map_err(refused)?;
    ShardPolicy::authorize(principal, Action::Subscribe, &topics)
        .map_err(|d| refused(denied(ctx, &d)))?;
    let filter = EventFilter::from_fields(types.as_deref(), key.as_deref(), headers);
    let mut added = Vec::with_capacity(topics.len());
    for t in &topics {
        let parts = partitions_of(ctx, std::slice::from_ref(t)).map_err(refused)?;
        let start = start_at(ctx, &parts, last_event_id.as_deref()).map_err(refused)?;
        if !start.restart_gaps.is_empty() {
            ShardMetrics::add(&ctx.metrics().resets_total, 1);
        }
        added.push(NewSubscription {
            parts,
            start: start.start,
            from_live: start.from_live,
            filter: filter.clone(),
            gaps: start.restart_gaps,
        });
    }
    ctx.subscribers
        .borrow_mut()
        .relayout(sub, || {
            added
                .into_iter()
                .try_for_each(|new| sub.add_subscription(new))
        })
        .map_err(change_refused)?;
    Ok(sub.topics())
}

/// End the subscriptions of the topics named; answers with the topics the stream still reads.
pub fn unsubscribe(
    ctx: &ShardContext,
    sub: &Rc<Subscriber>,
    topics: &[String],
) -> Result<Vec<String>, Refused> {
    ctx.subscribers
        .borrow_mut()
        .relayout(sub, || sub.remove_topics(topics))
        .map_err(change_refused)?;
    Ok(sub.topics())
}
