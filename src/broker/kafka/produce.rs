//! Producing: one request per partition per command, answered after the broker acknowledged;
//! refused at once while the plane is disconnected. A failure before the produce request was
//! issued is "nothing written" (`BrokerDown`); one after it is "outcome unknown"
//! (`Unacknowledged`).

use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Utc};
use rskafka::client::error::ProtocolError;
use rskafka::client::partition::Compression;
use rskafka::record::Record;

use crate::broker::routing::partition_for_key;

use super::state::{Inner, RequestError};
use crate::broker::plane::events::{
    combine_produce_errors as combine, PlaneEvent, ProduceError, ProduceRecord, Produced,
};
use crate::broker::plane::record::ID_HEADER;

pub(crate) async fn run(
    inner: Rc<Inner>,
    request_id: u64,
    topic: Arc<str>,
    partition: Option<i32>,
    records: Vec<ProduceRecord>,
) {
    let result = produce(&inner, &topic, partition, records).await;
    let event = PlaneEvent::ProduceDone { request_id, result };
    inner.sink.push(event).await;
}

fn now() -> DateTime<Utc> {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// A failure before any produce request went out (metadata, partition lookup): nothing was
/// written, whatever the cause.
fn unavailable(err: RequestError) -> ProduceError {
    if matches!(
        err.protocol_error(),
        Some(ProtocolError::UnknownTopicOrPartition)
    ) {
        ProduceError::UnknownTopic(err.describe())
    } else if err.is_transport() {
        ProduceError::BrokerDown(err.describe())
    } else {
        ProduceError::Rejected(err.describe())
    }
}

/// A failure of an issued produce request. A broker's error code is an answer (nothing
/// written); a transport failure or a timeout is not, and rskafka may have sent the request
/// (even more than once: it retries broken connections) before it gave up.
fn produce_error(err: RequestError) -> ProduceError {
    if matches!(
        err.protocol_error(),
        Some(ProtocolError::UnknownTopicOrPartition)
    ) {
        return ProduceError::UnknownTopic(err.describe());
    }
    match err {
        // Never sent (`request` does not answer this, but it means nothing was written).
        RequestError::Down(reason) => ProduceError::BrokerDown(reason),
        RequestError::TimedOut(reason) => ProduceError::Unacknowledged(reason),
        RequestError::Failed(_) if err.is_transport() => {
            ProduceError::Unacknowledged(err.describe())
        }
        RequestError::Failed(_) => ProduceError::Rejected(err.describe()),
    }
}

async fn produce(
    inner: &Rc<Inner>,
    topic: &Arc<str>,
    partition: Option<i32>,
    records: Vec<ProduceRecord>,
) -> Result<Vec<Produced>, ProduceError> {
    let link = inner.link();
    if !link.up {
        return Err(ProduceError::BrokerDown(link.reason));
    }
    if records.is_empty() {
        return Ok(Vec::new());
    }
    let targets = choose_partitions(inner, topic, partition, &records).await?;
    // Group by partition, keeping each record's index so offsets come back in input order.
    let timestamp = now();
    let mut batches: BTreeMap<i32, (Vec<usize>, Vec<Record>)> = BTreeMap::new();
    for (index, (record, target)) in records.into_iter().zip(targets).enumerate() {
        let batch = batches.entry(target).or_default();
        batch.0.push(index);
        let mut headers: BTreeMap<String, Vec<u8>> = record
            .headers
            .into_iter()
            .map(|(name, value)| (name, value.to_vec()))
            .collect();
        if let Some(id) = record.id {
            headers.insert(ID_HEADER.to_owned(), id.to_vec());
        }
        batch.1.push(Record {
            key: record.key.map(|k| k.to_vec()),
            value: Some(record.value.to_vec()),
            headers,
            timestamp,
        });
    }
    let total: usize = batches.values().map(|(indexes, _)| indexes.len()).sum();
    let mut tasks = Vec::with_capacity(batches.len());
    for (target, (indexes, batch)) in batches {
        let inner = Rc::clone(inner);
        let topic = Arc::clone(topic);
        let task = tokio::task::spawn_local(async move {
            let offsets = produce_batch(&inner, &topic, target, batch).await?;
            Ok::<_, ProduceError>((target, indexes, offsets))
        });
        tasks.push(task);
    }
    let mut out = vec![
        Produced {
            partition: 0,
            offset: -1
        };
        total
    ];
    let mut errors = Vec::new();
    let mut some_written = false;
    for task in tasks {
        match task.await {
            Ok(Ok((target, indexes, offsets))) => {
                some_written = true;
                for (index, offset) in indexes.into_iter().zip(offsets) {
                    if let Some(slot) = out.get_mut(index) {
                        *slot = Produced {
                            partition: target,
                            offset,
                        };
                    }
                }
            }
            Ok(Err(err)) => errors.push(err),
            // The task ended without its answer (the plane is stopping): it may have sent.
            Err(join) => errors.push(ProduceError::Unacknowledged(join.to_string())),
        }
    }
    match combine(errors, some_written) {
        Some(err) => Err(err),
        None => Ok(out),
    }
}

/// The partition of each record: the one asked for, else by key hash, else by idempotency key
/// hash (a retry must land on the first attempt's partition, where its owner can see the
/// repeat), else round robin.
async fn choose_partitions(
    inner: &Inner,
    topic: &Arc<str>,
    partition: Option<i32>,
    records: &[ProduceRecord],
) -> Result<Vec<i32>, ProduceError> {
    if let Some(p) = partition {
        return Ok(vec![p; records.len()]);
    }
    let count = inner
        .partition_count(topic)
        .await
        .map_err(unavailable)?
        .ok_or_else(|| ProduceError::UnknownTopic(format!("topic `{topic}` does not exist")))?;
    let targets = records
        .iter()
        .map(|r| {
            let p = match r.key.as_ref().or(r.id.as_ref()) {
                Some(key) => partition_for_key(key, count),
                None => inner.next_round_robin(count),
            };
            i32::try_from(p).unwrap_or(0)
        })
        .collect();
    Ok(targets)
}

async fn produce_batch(
    inner: &Inner,
    topic: &Arc<str>,
    partition: i32,
    batch: Vec<Record>,
) -> Result<Vec<i64>, ProduceError> {
    let (generation, pc) = inner
        .control_partition(topic, partition)
        .await
        .map_err(unavailable)?;
    let request = pc.produce(batch, Compression::NoCompression);
    inner
        .request(generation, "produce", request)
        .await
        .map_err(produce_error)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::Refusal;

    fn down() -> ProduceError {
        ProduceError::BrokerDown("down".into())
    }

    #[test]
    fn a_failure_that_may_have_written_wins() {
        let unknown = ProduceError::Unacknowledged("reset".into());
        assert_eq!(combine(vec![down(), unknown.clone()], false), Some(unknown));
        assert_eq!(combine(vec![down()], false), Some(down()));
        assert_eq!(combine(Vec::new(), true), None);
    }

    #[test]
    fn a_timeout_is_nothing_written_before_the_produce_and_outcome_unknown_after() {
        let timed_out = || RequestError::TimedOut("no answer".into());
        assert_eq!(unavailable(timed_out()).status(), 503);
        assert_eq!(produce_error(timed_out()).status(), 504);
        let down = || RequestError::Down("not connected".into());
        assert_eq!(unavailable(down()).status(), 503);
        assert_eq!(produce_error(down()).status(), 503);
    }

    #[test]
    fn nothing_written_is_not_claimed_when_another_partition_was_written() {
        let got = combine(vec![down()], true).expect("an error");
        assert_eq!(got.status(), 504, "{got}");
        let rejected = ProduceError::Rejected("too large".into());
        assert_eq!(combine(vec![rejected], true).map(|e| e.status()), Some(504));
    }
}
