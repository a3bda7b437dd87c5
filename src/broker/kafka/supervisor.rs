//! The plane's supervisor: connect with backoff, report each state change once, discover the
//! configured topics' partitions (creating missing topics when allowed) and start a fetch loop
//! for every partition this shard owns, refresh metadata, and reconnect after a task reports
//! the connection failed.

use std::collections::{BTreeSet, HashMap};
use std::rc::Rc;
use std::sync::Arc;

use rskafka::client::error::ProtocolError;
use rskafka::client::Client;

use crate::config::StartPosition;

use super::assign::owner_of;
use super::connect::build_client;
use super::fetch;
use super::state::{answer_within, Inner, RequestError};
use crate::broker::plane::events::{BrokerState, PlaneEvent};

/// Connect, serve until a task reports a failure, mark down, reconnect: forever.
pub(crate) async fn supervise(inner: Rc<Inner>) {
    let settings = &inner.settings;
    let mut backoff = settings.backoff();
    let mut reported: Option<bool> = None;
    let mut generation = 0u64;
    loop {
        let connected = build_client(
            &settings.bootstrap,
            &settings.client_id,
            settings.request_timeout,
        )
        .await;
        let client = match connected {
            Ok(client) => Arc::new(client),
            Err(reason) => {
                set_down(&inner, &mut reported, reason).await;
                tokio::time::sleep(backoff.next_delay()).await;
                continue;
            }
        };
        backoff.reset();
        generation += 1;
        inner.connected(generation, Arc::clone(&client));
        if reported != Some(true) {
            reported = Some(true);
            tracing::info!(shard = settings.shard, brokers = ?settings.bootstrap, "kafka: connected");
            inner
                .sink
                .push(PlaneEvent::BrokerState(BrokerState::Up))
                .await;
        }
        loop {
            discover(&inner, &client, generation).await;
            let refresh = tokio::time::sleep(settings.metadata_refresh);
            tokio::select! {
                () = refresh => {}
                () = inner.trouble() => break,
            }
        }
        let reason = inner.disconnected();
        set_down(&inner, &mut reported, reason).await;
    }
}

async fn set_down(inner: &Inner, reported: &mut Option<bool>, reason: String) {
    inner.link.send_modify(|l| {
        l.up = false;
        l.reason.clone_from(&reason);
    });
    if *reported != Some(false) {
        *reported = Some(false);
        tracing::warn!(shard = inner.settings.shard, %reason, "kafka: disconnected; retrying with backoff");
        let state = BrokerState::Down { reason };
        inner.sink.push(PlaneEvent::BrokerState(state)).await;
    }
}

/// List the configured topics, create missing ones if allowed, and start a fetch loop for
/// every partition this shard owns that has none yet.
async fn discover(inner: &Rc<Inner>, client: &Client, generation: u64) {
    let settings = &inner.settings;
    let mut listed = match list(inner, client, generation).await {
        Some(listed) => listed,
        None => return,
    };
    let missing: Vec<Arc<str>> = settings
        .topics
        .iter()
        .filter(|t| !listed.contains_key(t.as_ref()))
        .cloned()
        .collect();
    if !missing.is_empty() && settings.create_topics {
        for topic in &missing {
            create_topic(inner, client, topic).await;
        }
        listed = match list(inner, client, generation).await {
            Some(listed) => listed,
            None => return,
        };
    }
    for topic in &settings.topics {
        let Some(partitions) = listed.remove(topic.as_ref()) else {
            let reason = if settings.create_topics {
                "the topic does not exist and could not be created".to_owned()
            } else {
                "the topic does not exist on the brokers and kafka.create_topics is false"
                    .to_owned()
            };
            topic_error(inner, topic, reason).await;
            continue;
        };
        start_partitions(inner, topic, partitions).await;
    }
}

async fn list(
    inner: &Inner,
    client: &Client,
    generation: u64,
) -> Option<HashMap<String, BTreeSet<i32>>> {
    let listed = inner
        .request(generation, "metadata request", client.list_topics())
        .await;
    match listed {
        Ok(topics) => Some(topics.into_iter().map(|t| (t.name, t.partitions)).collect()),
        Err(err) => {
            // Without metadata nothing can be discovered on this connection, so even a broker's
            // refusal (not reported by `request`) reconnects, perhaps to another broker.
            if !err.is_transport() {
                inner.report_failure(generation, err.describe());
            }
            None
        }
    }
}

async fn create_topic(inner: &Inner, client: &Client, topic: &Arc<str>) {
    let s = &inner.settings;
    let Ok(controller) = client.controller_client() else {
        return;
    };
    let timeout_ms = i32::try_from(s.request_timeout.as_millis()).unwrap_or(i32::MAX);
    let create = controller.create_topic(
        topic.as_ref(),
        s.create_partitions,
        s.replication_factor,
        timeout_ms,
    );
    // Not `Inner::request`: the controller is its own connection, and a failure here is the
    // topic's problem (reported as such), not a reason to reconnect everything.
    match answer_within(s.request_timeout, "topic creation", create).await {
        Ok(()) => {
            tracing::info!(%topic, partitions = s.create_partitions, "kafka: created topic");
        }
        // Another shard's plane (or another gateway) was first.
        Err(err)
            if matches!(
                err.protocol_error(),
                Some(ProtocolError::TopicAlreadyExists)
            ) => {}
        Err(RequestError::TimedOut(_)) => {
            topic_error(inner, topic, "creating it timed out".to_owned()).await
        }
        Err(err) => {
            let reason = format!("cannot create it: {}", err.describe());
            topic_error(inner, topic, reason).await
        }
    }
}

async fn topic_error(inner: &Inner, topic: &Arc<str>, reason: String) {
    if inner.topic_failed(topic) {
        tracing::error!(%topic, %reason, "kafka: cannot read topic");
        let event = PlaneEvent::TopicError {
            topic: Arc::clone(topic),
            reason,
        };
        inner.sink.push(event).await;
    }
}

async fn start_partitions(inner: &Rc<Inner>, topic: &Arc<str>, partitions: BTreeSet<i32>) {
    let s = &inner.settings;
    let (new, first_sight) = inner.topic_partitions(topic, &partitions);
    if new.is_empty() {
        return;
    }
    // Partitions present at the first look start where configured; ones added later start
    // at their beginning, so nothing produced to them before we noticed is skipped.
    let start = if first_sight {
        s.start
    } else {
        StartPosition::Earliest
    };
    let owned: Vec<i32> = partitions
        .iter()
        .copied()
        .filter(|&p| owner_of(topic, p, s.shards) == s.shard)
        .collect();
    let mut positioned = Vec::new();
    for &p in new
        .iter()
        .filter(|&&p| owner_of(topic, p, s.shards) == s.shard)
    {
        tracing::debug!(%topic, partition = p, shard = s.shard, "kafka: fetching partition");
        let (tx, rx) = tokio::sync::oneshot::channel();
        positioned.push(rx);
        let task = fetch::run(Rc::clone(inner), Arc::clone(topic), p, start, Some(tx));
        tokio::task::spawn_local(task);
    }
    let count = partitions
        .iter()
        .next_back()
        .map_or(0, |&p| p.saturating_add(1));
    let event = PlaneEvent::Partitions {
        topic: Arc::clone(topic),
        count,
        owned,
    };
    if !first_sight {
        // Added partitions are read from their beginning: nothing can fall before them.
        inner.sink.push(event).await;
        return;
    }
    // At first sight (a start at `latest`), the shard hears of the topic, and `/readyz` turns
    // 200, only once every owned partition's fetch loop knows its start offset: a record
    // produced through another instance between "ready" and that lookup would otherwise fall
    // before this instance's start and never reach its clients. Waited for in a task of its
    // own: the supervisor must stay free to reconnect, which the lookups may need.
    let inner = Rc::clone(inner);
    tokio::task::spawn_local(async move {
        for rx in positioned {
            // An error means the loop ended (the plane stops); nothing to wait for then.
            let _ = rx.await;
        }
        inner.sink.push(event).await;
    });
}
