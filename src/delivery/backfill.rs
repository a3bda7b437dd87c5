//! Fetch back from Kafka what a resuming subscriber missed and this shard no longer holds.
//!
//! One task per (subscriber, partition) that needs it. It reads from the subscriber's cursor
//! until it reaches the oldest event of the shard's history (from there the session's refill
//! takes over, gap-free) or the partition's end as of the fetch; it queues at most half the
//! subscriber's queue limit ahead of the socket, so a long backfill never trips the slow-
//! consumer cut-off. Records no longer retained by Kafka become a `reset` event. A record that
//! repeats an idempotency key read earlier in the same backfill is skipped, as the owner shard
//! skips it live; a cursor between the two copies cannot know the first and sees the second.
use std::rc::Rc;
use std::time::Duration;

use super::subscriber::{Gap, SubState, Subscriber, GAP_REASON, PAST_END_REASON};
use crate::broker::plane::{FetchError, RecentIds};
use crate::shard::context::ShardContext;

/// Pause between attempts while the broker is unreachable (the stream keeps its heartbeats).
const RETRY: Duration = Duration::from_millis(500);
/// Poll interval while the subscriber's queue is too full to take more.
const QUEUE_WAIT: Duration = Duration::from_millis(5);

/// Backfill partition `idx` of `sub` from offset `from`.
pub async fn run(ctx: Rc<ShardContext>, sub: Rc<Subscriber>, idx: usize, mut from: u64) {
    let Some(link) = ctx.broker_link.as_ref() else {
        sub.finish_backfill(idx, true, None);
        return;
    };
    let Some(key) = sub.part_key(idx) else {
        sub.finish_backfill(idx, true, None);
        return;
    };
    let high = ctx.config().sse.max_queue_bytes / 2;
    let mut settled = false;
    let mut seen = RecentIds::new(link.dedup_window());
    loop {
        if sub.is_finished()
            || !sub.is_live_slot(idx)
            || matches!(sub.state(), SubState::CutOff(_) | SubState::Draining)
        {
            break;
        }
        if sub.queued_bytes() >= high.max(1) {
            glommio::timer::sleep(QUEUE_WAIT).await;
            continue;
        }
        // Stop where the shard's own history starts: the refill serves it from memory. Not
        // when the cursor is past the history's head: only the broker can tell whether that is
        // a position it has not delivered yet or one past the partition's end.
        let (history_start, history_head) = ctx
            .histories
            .borrow()
            .get(&key)
            .map_or((None, None), |h| (Some(h.oldest()), Some(h.head())));
        if history_start.is_some_and(|oldest| from >= oldest)
            && history_head.is_some_and(|head| from <= head)
        {
            settled = true;
            break;
        }
        match link.fetch(&key, from).await {
            Ok(fetched) => {
                let mut reached_history = false;
                for record in &fetched.records {
                    let Ok(offset) = u64::try_from(record.offset) else {
                        continue;
                    };
                    if history_start.is_some_and(|oldest| offset >= oldest) {
                        reached_history = true;
                        break;
                    }
                    let repeat = record
                        .idempotency_key()
                        .is_some_and(|id| seen.repeat_of(id, record.offset).is_some());
                    if !repeat {
                        if let Some(event) = link.frame_for_backfill(&ctx, record) {
                            sub.push_backfilled(idx, &event, std::time::Instant::now());
                        }
                    }
                    from = offset + 1;
                }
                let end = u64::try_from(fetched.high_watermark).unwrap_or(0);
                if reached_history || fetched.records.is_empty() || from >= end {
                    from = from.max(end.min(history_start.unwrap_or(end)));
                    settled = true;
                    break;
                }
            }
            Err(FetchError::OffsetOutOfRange { earliest, latest }) => {
                let (earliest, latest) = (earliest.max(0) as u64, latest.max(0) as u64);
                if from < earliest {
                    let gap = Gap {
                        key: key.clone(),
                        requested: from,
                        oldest: earliest,
                    };
                    from = earliest;
                    sub.advance_cursor(idx, from);
                    sub.push_reset(GAP_REASON, std::slice::from_ref(&gap));
                    crate::telemetry::ShardMetrics::add(&ctx.metrics().resets_total, 1);
                    continue;
                }
                // Past the end: the topic was re-created (offsets start again) or the id was
                // forged. Every record the partition holds is news to this client, so say so
                // with a reset and replay it from the start rather than wait, silently, for the
                // offsets to catch up with the bogus cursor.
                let gap = Gap {
                    key: key.clone(),
                    requested: from,
                    oldest: earliest,
                };
                from = earliest.min(latest);
                sub.rewind_cursor(idx, from);
                sub.push_reset(PAST_END_REASON, std::slice::from_ref(&gap));
                crate::telemetry::ShardMetrics::add(&ctx.metrics().resets_total, 1);
                continue;
            }
            Err(e) => {
                tracing::debug!(shard = ctx.id, error = %e, "backfill fetch failed; retrying");
                glommio::timer::sleep(RETRY).await;
            }
        }
    }
    sub.finish_backfill(idx, settled, Some(from));
}
