//! Fetching: the per-partition loop that feeds the shard (from the start position, then from
//! the exact next offset forever, across reconnects), and one-off catch-up reads.

use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::DateTime;
use rskafka::client::error::ProtocolError;
use rskafka::client::partition::{OffsetAt, PartitionClient, UnknownTopicHandling};
use rskafka::client::Client;
use rskafka::record::RecordAndOffset;

use crate::config::StartPosition;

use super::connect::build_client;
use super::state::{answer_within, Inner, RequestError};
use crate::broker::plane::events::{FetchError, Fetched, PlaneEvent};
use crate::broker::plane::record::{LogRecord, ID_HEADER};

/// An empty fetch that came back sooner than this did not long-poll (a broker that ignores
/// `max_wait_ms`, or only control batches); pause briefly so the loop cannot spin.
const MIN_EMPTY_FETCH: Duration = Duration::from_millis(5);
const EMPTY_FETCH_PAUSE: Duration = Duration::from_millis(50);

pub(crate) fn to_record(topic: &Arc<str>, partition: i32, r: RecordAndOffset) -> LogRecord {
    let record = r.record;
    LogRecord {
        topic: Arc::clone(topic),
        partition,
        offset: r.offset,
        timestamp_ms: record.timestamp.timestamp_millis(),
        key: record.key.map(Bytes::from),
        headers: record
            .headers
            .into_iter()
            .map(|(name, value)| (name, Bytes::from(value)))
            .collect(),
        value: record.value.map(Bytes::from).unwrap_or_default(),
        event_type: None,
    }
}

/// This loop's own connection: a long-polling fetch holds its connection for up to
/// `fetch_max_wait_ms`, and brokers answer one request per connection at a time.
struct Own {
    generation: u64,
    _client: Client,
    partition: PartitionClient,
}

/// Why a fetch loop could not open its connection.
enum OpenFailure {
    /// The connection failed (already reported): wait for the supervisor's next one.
    Transport,
    /// The broker answered but refused (e.g. the partition is not there yet).
    Refused,
}

enum Step {
    Continue,
    /// The connection failed: drop it and wait for the supervisor's next one.
    Reconnect,
    Stop,
}

/// Feed `partition` of `topic` to the shard until the plane stops.
/// `positioned` is told once the start offset is known (see `supervisor::start_partitions`).
pub(crate) async fn run(
    inner: Rc<Inner>,
    topic: Arc<str>,
    partition: i32,
    start: StartPosition,
    mut positioned: Option<tokio::sync::oneshot::Sender<()>>,
) {
    let mut next: Option<i64> = None;
    let mut own: Option<Own> = None;
    let mut failed_generation = 0u64;
    let mut backoff = inner.settings.backoff();
    loop {
        let Some(conn) = own.as_ref() else {
            let Some(generation) = inner.wait_up_after(failed_generation).await else {
                return;
            };
            match open(&inner, &topic, partition, generation).await {
                Ok(opened) => {
                    own = Some(opened);
                    backoff.reset();
                }
                Err(OpenFailure::Transport) => failed_generation = generation,
                Err(OpenFailure::Refused) => tokio::time::sleep(backoff.next_delay()).await,
            }
            continue;
        };
        let step = match next {
            None => match resolve_start(&inner, conn, start).await {
                Ok(offset) => {
                    tracing::debug!(%topic, partition, offset, "kafka: starting fetch");
                    if !seed_ids(&inner, &topic, partition, &conn.partition, offset).await {
                        return;
                    }
                    next = Some(offset);
                    if let Some(tx) = positioned.take() {
                        let _ = tx.send(());
                    }
                    Step::Continue
                }
                Err(err) => on_error(&topic, partition, &err),
            },
            Some(offset) => fetch_once(&inner, &topic, partition, conn, offset, &mut next).await,
        };
        match step {
            Step::Continue => {}
            Step::Stop => return,
            Step::Reconnect => {
                failed_generation = own.take().map_or(failed_generation, |o| o.generation);
            }
        }
        if inner.shared.is_shutting_down() {
            return;
        }
    }
}

async fn fetch_once(
    inner: &Inner,
    topic: &Arc<str>,
    partition: i32,
    conn: &Own,
    offset: i64,
    next: &mut Option<i64>,
) -> Step {
    let s = &inner.settings;
    let wait = Duration::from_millis(s.fetch_max_wait_ms.unsigned_abs().into());
    let began = Instant::now();
    let request = conn
        .partition
        .fetch_records(offset, 1..s.fetch_max_bytes, s.fetch_max_wait_ms);
    let answer = inner
        .request_within(wait + s.request_timeout, conn.generation, "fetch", request)
        .await;
    let (records, high_watermark) = match answer {
        Ok(answer) => answer,
        Err(err) if matches!(err.protocol_error(), Some(ProtocolError::OffsetOutOfRange)) => {
            return skip_to_retained(inner, topic, partition, conn, offset, next).await;
        }
        Err(err) => return on_error(topic, partition, &err),
    };
    // rskafka already drops records below `offset` from a batch that starts earlier.
    let records: Vec<LogRecord> = records
        .into_iter()
        .filter(|r| r.offset >= offset)
        .map(|r| to_record(topic, partition, r))
        .collect();
    let Some(last) = records.last().map(|r| r.offset) else {
        // Kafka answers OffsetOutOfRange past the end; some brokers (tansu) answer empty.
        if offset > high_watermark && high_watermark >= 0 {
            return skip_to_retained(inner, topic, partition, conn, offset, next).await;
        }
        if began.elapsed() < MIN_EMPTY_FETCH {
            tokio::time::sleep(EMPTY_FETCH_PAUSE).await;
        }
        return Step::Continue;
    };
    *next = Some(last + 1);
    let event = PlaneEvent::Records {
        topic: Arc::clone(topic),
        partition,
        records,
        high_watermark,
    };
    if inner.sink.push(event).await {
        Step::Continue
    } else {
        Step::Stop
    }
}

/// Read back the idempotency keys of up to `kafka.dedup_window` records before `start` and
/// hand them to the shard, so its window of recent keys covers what was written before this
/// loop started (a gateway starting at `latest`, or restarted). Best effort: a failure only
/// logs, the window then starts empty, and never takes the link down (no `Inner::request`:
/// the fetch that follows finds out about a broken connection). False when the shard is gone.
async fn seed_ids(
    inner: &Inner,
    topic: &Arc<str>,
    partition: i32,
    pc: &PartitionClient,
    start: i64,
) -> bool {
    let window = i64::try_from(inner.settings.dedup_window).unwrap_or(i64::MAX);
    let mut from = start.saturating_sub(window).max(0);
    let mut ids = Vec::new();
    let mut moved_to_earliest = false;
    while from < start {
        let timeout = inner.settings.request_timeout;
        let request = pc.fetch_records(from, 1..inner.settings.fetch_max_bytes, 0);
        let records = match answer_within(timeout, "fetch", request).await {
            Ok((records, _)) => records,
            // Below the log start (Kafka; tansu answers with what it has): start there, once.
            Err(err)
                if !moved_to_earliest
                    && matches!(err.protocol_error(), Some(ProtocolError::OffsetOutOfRange)) =>
            {
                moved_to_earliest = true;
                let earliest = pc.get_offset(OffsetAt::Earliest);
                match answer_within(timeout, "list offsets", earliest).await {
                    Ok(earliest) if earliest > from => {
                        from = earliest;
                        continue;
                    }
                    _ => break,
                }
            }
            Err(RequestError::TimedOut(_)) => break,
            Err(err) => {
                tracing::debug!(%topic, partition, error = %err.describe(), "kafka: cannot read back idempotency keys");
                break;
            }
        };
        let Some(last) = records.last().map(|r| r.offset) else {
            break;
        };
        for r in records {
            if r.offset < from || r.offset >= start {
                continue;
            }
            if let Some(id) = r.record.headers.get(ID_HEADER).filter(|v| !v.is_empty()) {
                ids.push((Bytes::copy_from_slice(id), r.offset));
            }
        }
        from = last + 1;
    }
    if ids.is_empty() {
        return true;
    }
    tracing::debug!(%topic, partition, keys = ids.len(), "kafka: idempotency keys read back");
    let event = PlaneEvent::SeenIds {
        topic: Arc::clone(topic),
        partition,
        ids,
    };
    inner.sink.push(event).await
}

/// Our next offset is no longer (or not yet) in the log. Below the log start, retention
/// removed records before we read them: log it and go on from the oldest retained one. Past
/// the end (the topic was re-created), go on from the end.
async fn skip_to_retained(
    inner: &Inner,
    topic: &Arc<str>,
    partition: i32,
    conn: &Own,
    offset: i64,
    next: &mut Option<i64>,
) -> Step {
    let bounds = offset_bounds(inner, conn.generation, &conn.partition).await;
    match bounds {
        Ok((earliest, latest)) => {
            let resume = if offset < earliest { earliest } else { latest };
            tracing::warn!(%topic, partition, offset, resume, earliest, latest, "kafka: offset out of range; skipping");
            *next = Some(resume);
            Step::Continue
        }
        Err(err) => on_error(topic, partition, &err),
    }
}

/// A request of the fetch loop failed: drop the connection. A transport failure was reported
/// by `Inner::request`; a refusal is only logged.
fn on_error(topic: &str, partition: i32, err: &RequestError) -> Step {
    if !err.is_transport() {
        tracing::warn!(%topic, partition, error = %err.describe(), "kafka: fetch refused; reconnecting");
    }
    Step::Reconnect
}

/// Connect this loop's own client; a transport failure is reported against `generation`.
async fn open(
    inner: &Inner,
    topic: &Arc<str>,
    partition: i32,
    generation: u64,
) -> Result<Own, OpenFailure> {
    let s = &inner.settings;
    let client = match build_client(&s.bootstrap, &s.client_id, s.request_timeout).await {
        Ok(client) => client,
        Err(reason) => {
            inner.report_failure(generation, reason);
            return Err(OpenFailure::Transport);
        }
    };
    let lookup = client.partition_client(topic.as_ref(), partition, UnknownTopicHandling::Error);
    match inner
        .request(generation, "partition leader lookup", lookup)
        .await
    {
        Ok(pc) => Ok(Own {
            generation,
            _client: client,
            partition: pc,
        }),
        Err(err) if err.is_transport() => Err(OpenFailure::Transport),
        Err(err) => {
            tracing::warn!(%topic, partition, error = %err.describe(), "kafka: cannot open partition");
            Err(OpenFailure::Refused)
        }
    }
}

/// The offset at `at` (ListOffsets) on the connection of `generation`.
async fn offset_at(
    inner: &Inner,
    generation: u64,
    pc: &PartitionClient,
    at: OffsetAt,
) -> Result<i64, RequestError> {
    inner
        .request(generation, "list offsets", pc.get_offset(at))
        .await
}

async fn offset_bounds(
    inner: &Inner,
    generation: u64,
    pc: &PartitionClient,
) -> Result<(i64, i64), RequestError> {
    let earliest = offset_at(inner, generation, pc, OffsetAt::Earliest).await?;
    let latest = offset_at(inner, generation, pc, OffsetAt::Latest).await?;
    Ok((earliest, latest))
}

/// The first offset to read for a start position. A timestamp past the last record lists as
/// -1: then start at the end.
async fn resolve_start(
    inner: &Inner,
    conn: &Own,
    start: StartPosition,
) -> Result<i64, RequestError> {
    let (generation, pc) = (conn.generation, &conn.partition);
    let at = match start {
        StartPosition::Latest => OffsetAt::Latest,
        StartPosition::Earliest => OffsetAt::Earliest,
        StartPosition::Timestamp(ms) => match DateTime::from_timestamp_millis(ms) {
            Some(time) => OffsetAt::Timestamp(time),
            None => OffsetAt::Latest,
        },
    };
    let offset = offset_at(inner, generation, pc, at).await?;
    if offset >= 0 {
        return Ok(offset);
    }
    offset_at(inner, generation, pc, OffsetAt::Latest).await
}

/// Answer a [`super::PlaneCommand::Fetch`].
pub(crate) async fn catch_up(
    inner: Rc<Inner>,
    request_id: u64,
    topic: Arc<str>,
    partition: i32,
    offset: i64,
    max_bytes: i32,
) {
    let result = read_back(&inner, &topic, partition, offset, max_bytes).await;
    let event = PlaneEvent::FetchDone { request_id, result };
    inner.sink.push(event).await;
}

async fn read_back(
    inner: &Inner,
    topic: &Arc<str>,
    partition: i32,
    offset: i64,
    max_bytes: i32,
) -> Result<Fetched, FetchError> {
    let (generation, pc) = inner
        .control_partition(topic, partition)
        .await
        .map_err(fetch_error)?;
    let request = pc.fetch_records(offset, 1..max_bytes.max(1), 0);
    let (records, high_watermark) = match inner.request(generation, "fetch", request).await {
        Ok(answer) => answer,
        Err(err) if matches!(err.protocol_error(), Some(ProtocolError::OffsetOutOfRange)) => {
            let (earliest, latest) = offset_bounds(inner, generation, &pc)
                .await
                .map_err(fetch_error)?;
            return Err(FetchError::OffsetOutOfRange { earliest, latest });
        }
        Err(err) => return Err(fetch_error(err)),
    };
    // Kafka answers OffsetOutOfRange past the end; some brokers (tansu) answer empty.
    if records.is_empty() && offset > high_watermark {
        let (earliest, latest) = offset_bounds(inner, generation, &pc)
            .await
            .map_err(fetch_error)?;
        return Err(FetchError::OffsetOutOfRange { earliest, latest });
    }
    let records: Vec<LogRecord> = records
        .into_iter()
        .filter(|r| r.offset >= offset)
        .map(|r| to_record(topic, partition, r))
        .collect();
    // Kafka answers OffsetOutOfRange below the log start; some brokers (tansu) answer with the
    // oldest records they still have. A later first offset may also be compaction, so ask
    // where the log starts before calling it a gap.
    let starts_later = records
        .first()
        .map_or(offset < high_watermark, |r| r.offset > offset);
    if starts_later {
        let (earliest, latest) = offset_bounds(inner, generation, &pc)
            .await
            .map_err(fetch_error)?;
        if offset < earliest {
            return Err(FetchError::OffsetOutOfRange { earliest, latest });
        }
    }
    Ok(Fetched {
        records,
        high_watermark,
    })
}

/// Not connected, no answer, or a broken connection: the broker is down for this client; a
/// broker's error code is a refusal.
fn fetch_error(err: RequestError) -> FetchError {
    if err.is_transport() {
        FetchError::BrokerDown(err.describe())
    } else {
        FetchError::Failed(err.describe())
    }
}
