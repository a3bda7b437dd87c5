//! A resume's catch-up in broker mode: `XRANGE` from the asked offset (at most `read_count`
//! entries and about `max_bytes` of data), pipelined with the stream's first and last entries,
//! which tell "trimmed below" and "past the end" (both `OffsetOutOfRange`, a `reset` for the
//! client) from "caught up".
use std::sync::Arc;

use fred::interfaces::StreamsInterface;
use fred::types::Value;

use super::super::conn::{self, describe, Failure};
use super::super::entry::{self, stream_id_of};
use super::super::reply;
use super::Inner;
use crate::broker::plane::{FetchError, Fetched};

/// The first and next offsets of a stream (`(0, 0)` when it is empty or missing).
pub(super) fn bounds(first: Value, last: Value) -> Result<(u64, u64), String> {
    let first = reply::entries(first)?;
    let last = reply::entries(last)?;
    let (Some((first_id, _)), Some((last_id, _))) = (first.first(), last.first()) else {
        return Ok((0, 0));
    };
    let first = entry::offset_of(first_id).map_err(|e| e.to_string())?;
    let last = entry::offset_of(last_id).map_err(|e| e.to_string())?;
    Ok((first, last + 1))
}

pub(super) async fn fetch(
    inner: &Inner,
    topic: &Arc<str>,
    partition: i32,
    offset: i64,
    max_bytes: i32,
) -> Result<Fetched, FetchError> {
    let Some(client) = inner.client() else {
        return Err(FetchError::BrokerDown(
            "not connected to redis (reconnecting)".into(),
        ));
    };
    let p = u32::try_from(partition).map_err(|_| FetchError::Failed("bad partition".into()))?;
    let from = u64::try_from(offset).unwrap_or(0);
    let key = inner.key(topic, p);
    let count = Some(inner.settings.config.read_count);
    let pipeline = client.pipeline();
    let queued = [
        pipeline
            .xrange::<Value, _, _, _>(key.as_str(), stream_id_of(from), "+", count)
            .await,
        pipeline
            .xrange::<Value, _, _, _>(key.as_str(), "-", "+", Some(1))
            .await,
        pipeline
            .xrevrange::<Value, _, _, _>(key.as_str(), "+", "-", Some(1))
            .await,
    ];
    if let Some(Err(e)) = queued.into_iter().find(Result::is_err) {
        return Err(FetchError::Failed(describe(&e)));
    }
    let answers = conn::send_pipeline(&client, &pipeline, 3).await;
    let mut values = Vec::with_capacity(3);
    for answer in answers {
        match answer {
            Ok(v) => values.push(v),
            Err(e) => {
                return Err(match conn::sort(&e) {
                    Failure::Transport => {
                        inner.drop_client(describe(&e)).await;
                        FetchError::BrokerDown(describe(&e))
                    }
                    Failure::NotNow => FetchError::BrokerDown(describe(&e)),
                    Failure::Refused => FetchError::Failed(describe(&e)),
                })
            }
        }
    }
    let mut values = values.into_iter();
    let (Some(range), Some(first), Some(last)) = (values.next(), values.next(), values.next())
    else {
        return Err(FetchError::Failed(
            "redis answered fewer commands than were sent".into(),
        ));
    };
    let (earliest, latest) = bounds(first, last).map_err(FetchError::Failed)?;
    let entries = reply::entries(range).map_err(FetchError::Failed)?;
    let budget = usize::try_from(max_bytes).unwrap_or(usize::MAX).max(1);
    let mut records = Vec::with_capacity(entries.len());
    let mut bytes = 0usize;
    for (id, fields) in entries {
        // A byte budget as Kafka's fetch has: a resume of large events takes several fetches
        // instead of one that overruns the subscriber's queue. At least one record always.
        if !records.is_empty() && bytes >= budget {
            break;
        }
        match entry::decode(topic, partition, &id, fields) {
            Ok(record) => {
                bytes += record.value.len();
                records.push(record);
            }
            // An entry without data is skipped; a foreign id ends the read (nothing after it
            // has an offset).
            Err(entry::EntryError::NoData(_)) => {}
            Err(e) => return Err(FetchError::Failed(e.to_string())),
        }
    }
    // Below what the stream keeps (trimmed), or past its end (the stream was lost and began
    // again): the client's cursor cannot continue here.
    if (latest > 0 && from < earliest) || from > latest {
        return Err(FetchError::OffsetOutOfRange {
            earliest: i64::try_from(earliest).unwrap_or(i64::MAX),
            latest: i64::try_from(latest).unwrap_or(i64::MAX),
        });
    }
    Ok(Fetched {
        records,
        high_watermark: i64::try_from(latest).unwrap_or(i64::MAX),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry_value(id: &str) -> Value {
        Value::Array(vec![Value::Array(vec![
            Value::String(id.into()),
            Value::Array(vec![
                Value::String("data".into()),
                Value::String("x".into()),
            ]),
        ])])
    }

    #[test]
    fn stream_bounds_are_first_and_one_past_last() {
        assert_eq!(bounds(entry_value("0-3"), entry_value("0-9")), Ok((2, 9)));
        assert_eq!(
            bounds(Value::Array(Vec::new()), Value::Array(Vec::new())),
            Ok((0, 0))
        );
        assert!(bounds(entry_value("1700-0"), entry_value("0-9")).is_err());
    }
}
