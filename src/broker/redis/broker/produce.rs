//! Publishing in broker mode: each record is `XADD key MAXLEN ~ n NOMKSTREAM 0-* fields` to its
//! partition's stream, pipelined, and answered after Redis replied. `0-*` (Redis 7) makes Redis
//! number a partition's entries 1, 2, 3... whichever instance appends, so the offset (the
//! sequence number minus one) is the same on every instance. `NOMKSTREAM`: a stream that is gone
//! (Redis lost its data) is not begun again at 0-1 under readers positioned past it; the
//! publish is refused instead.
use std::sync::Arc;

use fred::interfaces::StreamsInterface;
use fred::types::Value;

use super::super::conn::{self, cap, describe, Failure};
use super::super::entry::{self, EntryParts};
use super::Inner;
use crate::broker::plane::events::combine_produce_errors;
use crate::broker::plane::{ProduceError, ProduceRecord, Produced, ID_HEADER};
use crate::broker::routing::partition_for_key;

/// The partition of each record: by key hash, else by idempotency key hash (a retry lands
/// where its first attempt did), else round robin; as the Kafka plane and the embedded broker.
fn choose_partition(inner: &Inner, record: &ProduceRecord) -> u32 {
    let count = inner.settings.partitions.max(1);
    match record.key.as_ref().or(record.id.as_ref()) {
        Some(key) => partition_for_key(key, count),
        None => {
            let next = inner.round_robin.get().wrapping_add(1);
            inner.round_robin.set(next);
            next % count
        }
    }
}

pub(super) async fn produce(
    inner: &Inner,
    topic: &Arc<str>,
    partition: Option<i32>,
    records: Vec<ProduceRecord>,
) -> Result<Vec<Produced>, ProduceError> {
    let Some(client) = inner.client() else {
        return Err(ProduceError::BrokerDown(
            "not connected to redis (reconnecting)".into(),
        ));
    };
    if !inner.settings.topics.iter().any(|t| t == topic) {
        return Err(ProduceError::UnknownTopic(format!(
            "topic `{topic}` is not one of redis.topics"
        )));
    }
    let pipeline = client.pipeline();
    let mut targets = Vec::with_capacity(records.len());
    for record in &records {
        let target = match partition {
            Some(p) => u32::try_from(p).unwrap_or(0),
            None => choose_partition(inner, record),
        };
        targets.push(target);
        let mut headers: Vec<(&str, &[u8])> = record
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), &v[..]))
            .collect();
        if let Some(id) = &record.id {
            headers.push((ID_HEADER, &id[..]));
        }
        let fields = entry::encode(&EntryParts {
            id: None,
            event_type: record.event_type.as_deref(),
            key: record.key.as_deref(),
            headers,
            data: &record.value,
        });
        let key = inner.key(topic, target);
        // Queuing in a pipeline only buffers the command; an error here is an argument error,
        // before anything was sent.
        let queued = pipeline
            .xadd::<Value, _, _, _, _>(key, true, cap(&inner.settings.config), "0-*", fields)
            .await;
        if let Err(e) = queued {
            return Err(ProduceError::Rejected(describe(&e)));
        }
    }
    let answers = conn::send_pipeline(&client, &pipeline, records.len()).await;
    let mut out = Vec::with_capacity(records.len());
    let mut errors = Vec::new();
    let mut some_written = false;
    let mut lost_connection = None;
    for (target, answer) in targets.iter().zip(answers) {
        let partition = i32::try_from(*target).unwrap_or(i32::MAX);
        match answer {
            Ok(Value::Null) => errors.push(missing_stream(inner, topic, *target)),
            Ok(value) => {
                let id = value.as_str().map(|s| s.to_string()).unwrap_or_default();
                match entry::offset_of(&id) {
                    Ok(offset) => {
                        some_written = true;
                        out.push(Produced {
                            partition,
                            offset: i64::try_from(offset).unwrap_or(i64::MAX),
                        });
                    }
                    Err(e) => errors.push(ProduceError::Rejected(e.to_string())),
                }
            }
            Err(e) => match conn::sort(&e) {
                Failure::Transport => {
                    lost_connection = Some(describe(&e));
                    errors.push(ProduceError::Unacknowledged(describe(&e)));
                }
                // Redis answered "not now" (loading, out of memory, read-only): not written.
                Failure::NotNow => errors.push(ProduceError::BrokerDown(describe(&e))),
                Failure::Refused => errors.push(ProduceError::Rejected(describe(&e))),
            },
        }
    }
    if let Some(reason) = lost_connection {
        inner.drop_client(reason).await;
    }
    if errors.is_empty() && out.len() < records.len() {
        errors.push(ProduceError::Unacknowledged(
            "redis answered fewer commands than were sent".into(),
        ));
    }
    match combine_produce_errors(errors, some_written) {
        Some(err) => Err(err),
        None => Ok(out),
    }
}

/// `XADD ... NOMKSTREAM` answered nil: the stream is gone. Logged once per stream.
fn missing_stream(inner: &Inner, topic: &str, partition: u32) -> ProduceError {
    let key = inner.key(topic, partition);
    if inner.missing_logged.borrow_mut().insert(key.clone()) {
        tracing::error!(%key, %topic, partition, "redis: the partition's stream does not exist (did Redis lose its data?); publishes to it are refused until the gateways restart, which makes it again (logged once per stream)");
    }
    ProduceError::BrokerDown(format!(
        "the stream of {topic} partition {partition} is missing in Redis (was its data lost?); restart the gateways to make it again"
    ))
}
