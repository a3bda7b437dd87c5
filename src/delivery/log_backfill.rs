//! Read back from the durable embedded log what a resuming subscriber missed and this shard's
//! history no longer holds (the history is the log's hot tail).
//!
//! One task per (subscriber, partition) that needs it, like the Kafka backfill: it reads from
//! the subscriber's cursor up to the oldest event of the shard's history (from there the
//! session's refill takes over, gap-free), at most half the subscriber's queue limit ahead of
//! the socket. Events retention has deleted become a `reset` event.
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::subscriber::{Gap, SubState, Subscriber, GAP_REASON};
use crate::broker::durable::data_dir::partition_dir;
use crate::broker::durable::{publish_item, reader};
use crate::shard::context::ShardContext;
use crate::telemetry::ShardMetrics;

/// Pause before retrying a read that failed (an I/O error; the stream keeps its heartbeats).
const RETRY: Duration = Duration::from_millis(500);
/// Poll interval while the subscriber's queue is too full to take more.
const QUEUE_WAIT: Duration = Duration::from_millis(5);

/// Read partition `idx` of `sub` back from offset `from`.
pub async fn run(ctx: Rc<ShardContext>, sub: Rc<Subscriber>, idx: usize, mut from: u64) {
    let (Some(log), Some(key)) = (ctx.durable.as_ref(), sub.part_key(idx)) else {
        sub.finish_backfill(idx, true, None);
        return;
    };
    let dir = partition_dir(log.root(), &key.topic, key.partition);
    let high = (ctx.config().sse.max_queue_bytes / 2).max(1);
    let mut hint = None;
    let mut listing = reader::Listing::default();
    let mut settled = false;
    loop {
        if sub.is_finished()
            || !sub.is_live_slot(idx)
            || matches!(sub.state(), SubState::CutOff(_) | SubState::Draining)
        {
            break;
        }
        let queued = sub.queued_bytes();
        if queued >= high {
            glommio::timer::sleep(QUEUE_WAIT).await;
            continue;
        }
        // Up to where this shard's history starts: everything below it was delivered long ago.
        let Some(until) = ctx.histories.borrow().get(&key).map(|h| h.oldest()) else {
            settled = true;
            break;
        };
        if from >= until {
            settled = true;
            break;
        }
        let budget = high - queued;
        let interval = log.index_interval();
        let read = reader::read(&dir, from, until, budget, hint, interval, &mut listing);
        match read.await {
            Ok(chunk) => {
                if let Some(earliest) = chunk.earliest.filter(|&e| from < e) {
                    reset(&ctx, &sub, idx, &key, from, earliest.min(until));
                    from = earliest.min(until);
                    hint = None;
                    continue;
                }
                let now = Instant::now();
                for record in &chunk.records {
                    let framed = ctx
                        .framer()
                        .frame(&key, record.offset, &publish_item(record));
                    match framed {
                        Ok(event) => sub.push_backfilled(idx, &Rc::new(event), now),
                        Err(e) => {
                            tracing::warn!(offset = record.offset, error = %e, "stored event cannot be framed; skipped")
                        }
                    }
                }
                from = from.max(chunk.next);
                hint = chunk.position;
                if chunk.done {
                    if from < until {
                        // The log ends below the history's start: those events are gone.
                        reset(&ctx, &sub, idx, &key, from, until);
                        from = until;
                    }
                    settled = true;
                    break;
                }
            }
            Err(e) => {
                tracing::warn!(shard = ctx.id, error = %e, "reading the durable log back failed; retrying");
                glommio::timer::sleep(RETRY).await;
            }
        }
    }
    sub.finish_backfill(idx, settled, Some(from));
}

/// Events `[requested, oldest)` are no longer in the log: say so and move the cursor past them.
fn reset(
    ctx: &ShardContext,
    sub: &Subscriber,
    idx: usize,
    key: &crate::broker::PartitionKey,
    requested: u64,
    oldest: u64,
) {
    sub.advance_cursor(idx, oldest);
    let gap = Gap {
        key: key.clone(),
        requested,
        oldest,
    };
    sub.push_reset(GAP_REASON, std::slice::from_ref(&gap));
    ShardMetrics::add(&ctx.metrics().resets_total, 1);
}
