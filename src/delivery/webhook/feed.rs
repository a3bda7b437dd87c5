//! One partition read at a subscriber's own pace: from this shard's history while the
//! position is in it, from the durable log below it, and waiting for the next event at the
//! head. A webhook subscription pulls (its endpoint may be down for a day), where an SSE
//! subscriber is pushed to by the fan-out loop.
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::Duration;

use crate::broker::durable::data_dir::partition_dir;
use crate::broker::durable::{publish_item, reader};
use crate::broker::plane::FetchError;
use crate::broker::{FramedEvent, PartitionKey};
use crate::codec::topic::is_reserved;
use crate::shard::context::ShardContext;

/// Data read from the log per disk read.
const READ_BUDGET: usize = 256 * 1024;
/// Pause before retrying a failed disk read.
const READ_RETRY: Duration = Duration::from_millis(500);

/// What the feed has next.
#[derive(Debug)]
pub enum Next {
    Event(Rc<FramedEvent>),
    /// Events `[requested, oldest)` are gone (retention, or memory mode's bounded history);
    /// the feed continues at `oldest`.
    Gap {
        requested: u64,
        oldest: u64,
    },
}

/// What one read from Kafka did.
enum KafkaRead {
    /// Events queued, or the position moved: look again.
    Read,
    /// Nothing more yet: wait for the next event.
    AtEnd,
    Gap(Next),
}

/// A reader of one partition from a position.
pub struct PartitionFeed {
    key: PartitionKey,
    /// The next offset to read.
    next: u64,
    /// Events read from the log and not yet handed out.
    from_disk: VecDeque<Rc<FramedEvent>>,
    listing: reader::Listing,
    hint: Option<reader::ReadPosition>,
}

impl PartitionFeed {
    pub fn new(key: PartitionKey, next: u64) -> Self {
        Self {
            key,
            next,
            from_disk: VecDeque::new(),
            listing: reader::Listing::default(),
            hint: None,
        }
    }

    /// The event at the position, or the gap before it, without waiting; `None` at the head.
    pub async fn poll_next(&mut self, ctx: &ShardContext) -> Option<Next> {
        loop {
            if let Some(event) = self.from_disk.pop_front() {
                if event.offset < self.next {
                    continue;
                }
                self.next = event.offset + 1;
                return Some(Next::Event(event));
            }
            let found = ctx
                .histories
                .borrow()
                .get(&self.key)
                .map(|h| (h.oldest(), h.since(self.next).next().cloned()));
            if let Some(link) = ctx
                .broker_link
                .as_ref()
                .filter(|_| !is_reserved(&self.key.topic))
            {
                match found {
                    Some((oldest, event)) if self.next >= oldest => {
                        let event = event?;
                        self.next = event.offset + 1;
                        return Some(Next::Event(event));
                    }
                    // Below this shard's history, or none yet (after a restart the history
                    // fills from new records only): read Kafka back.
                    _ => match self.fetch_kafka(ctx, link, found.map(|f| f.0)).await {
                        KafkaRead::Read => continue,
                        KafkaRead::AtEnd => return None,
                        KafkaRead::Gap(gap) => return Some(gap),
                    },
                }
            }
            let (oldest, event) = found?;
            if self.next >= oldest {
                let event = event?;
                self.next = event.offset + 1;
                return Some(Next::Event(event));
            }
            // Below the history: read the log back, or say the events are gone.
            let Some(log) = ctx.durable.as_ref() else {
                let requested = self.next;
                self.next = oldest;
                return Some(Next::Gap { requested, oldest });
            };
            let dir = partition_dir(log.root(), &self.key.topic, self.key.partition);
            let read = reader::read(
                &dir,
                self.next,
                oldest,
                READ_BUDGET,
                self.hint,
                log.index_interval(),
                &mut self.listing,
            )
            .await;
            match read {
                Ok(chunk) => {
                    if let Some(earliest) = chunk.earliest.filter(|&e| self.next < e) {
                        let requested = self.next;
                        self.next = earliest.min(oldest);
                        self.hint = None;
                        return Some(Next::Gap {
                            requested,
                            oldest: self.next,
                        });
                    }
                    for record in &chunk.records {
                        let framed =
                            ctx.framer()
                                .frame(&self.key, record.offset, &publish_item(record));
                        match framed {
                            Ok(event) => self.from_disk.push_back(Rc::new(event)),
                            Err(e) => {
                                tracing::warn!(offset = record.offset, error = %e, "stored event cannot be framed; skipped")
                            }
                        }
                    }
                    self.hint = chunk.position;
                    if self.from_disk.is_empty() {
                        let requested = self.next;
                        // Nothing more on disk below the history: the rest is gone.
                        self.next = if chunk.done {
                            oldest
                        } else {
                            chunk.next.max(self.next)
                        };
                        if self.next > requested && chunk.done {
                            return Some(Next::Gap {
                                requested,
                                oldest: self.next,
                            });
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(shard = ctx.id, topic = %self.key.topic, error = %e, "reading the durable log back for a webhook failed; retrying");
                    glommio::timer::sleep(READ_RETRY).await;
                }
            }
        }
    }

    /// Fetch from Kafka from the position up to `until` (this shard's history start).
    async fn fetch_kafka(
        &mut self,
        ctx: &ShardContext,
        link: &crate::shard::broker_link::BrokerLink,
        until: Option<u64>,
    ) -> KafkaRead {
        let until = until.unwrap_or(u64::MAX);
        match link.fetch(&self.key, self.next).await {
            Ok(fetched) => {
                for record in &fetched.records {
                    let Ok(offset) = u64::try_from(record.offset) else {
                        continue;
                    };
                    if offset < self.next || offset >= until {
                        continue;
                    }
                    // A record that cannot be framed is skipped (the link counts it).
                    if let Some(event) = link.frame_for_backfill(ctx, record) {
                        self.from_disk.push_back(event);
                    }
                }
                if !self.from_disk.is_empty() {
                    return KafkaRead::Read;
                }
                // Nothing deliverable read: move past what was read (records that cannot be
                // framed, holes such as transaction markers), never past the partition's end
                // or the history's start, so the next look makes progress.
                let limit = u64::try_from(fetched.high_watermark)
                    .unwrap_or(0)
                    .min(until);
                if self.next >= limit {
                    return KafkaRead::AtEnd;
                }
                let seen = fetched
                    .records
                    .iter()
                    .filter_map(|r| u64::try_from(r.offset).ok())
                    .max();
                self.next = match seen {
                    Some(last) if last + 1 > self.next => (last + 1).min(limit),
                    _ => limit,
                };
                KafkaRead::Read
            }
            Err(FetchError::OffsetOutOfRange { earliest, latest }) => {
                let (earliest, latest) = (earliest.max(0) as u64, latest.max(0) as u64);
                let requested = self.next;
                // Below the retained start: gone. Past the end (a re-created topic): from
                // the start again.
                self.next = if requested < earliest {
                    earliest
                } else {
                    earliest.min(latest)
                };
                KafkaRead::Gap(Next::Gap {
                    requested,
                    oldest: self.next,
                })
            }
            Err(e) => {
                tracing::debug!(shard = ctx.id, error = %e, "webhook fetch from Kafka failed; retrying");
                glommio::timer::sleep(READ_RETRY).await;
                KafkaRead::Read
            }
        }
    }

    /// The first offset at or after Unix time `at_ms` (the head when every event is older),
    /// read from the durable log's record times; `None` without the durable log (the
    /// history keeps no times).
    pub async fn offset_at(ctx: &ShardContext, key: &PartitionKey, at_ms: i64) -> Option<u64> {
        let log = ctx.durable.as_ref()?;
        let head = ctx.histories.borrow().get(key).map_or(0, |h| h.head());
        let dir = partition_dir(log.root(), &key.topic, key.partition);
        let mut listing = reader::Listing::default();
        let (mut from, mut hint) = (0, None);
        while from < head {
            let read = reader::read(
                &dir,
                from,
                head,
                READ_BUDGET,
                hint,
                log.index_interval(),
                &mut listing,
            );
            let chunk = read.await.ok()?;
            if let Some(earliest) = chunk.earliest.filter(|&e| from < e) {
                from = earliest;
                hint = None;
                continue;
            }
            if let Some(r) = chunk.records.iter().find(|r| r.timestamp_ms >= at_ms) {
                return Some(r.offset);
            }
            if chunk.done || chunk.next <= from {
                break;
            }
            from = chunk.next;
            hint = chunk.position;
        }
        Some(head)
    }

    /// The next event or gap, waiting for it at the head; `None` when `stop` says so (checked
    /// whenever the feed wakes).
    pub async fn next(&mut self, ctx: &ShardContext, stop: &dyn Fn() -> bool) -> Option<Next> {
        loop {
            if stop() {
                return None;
            }
            let wait = ctx.event_waiters.next_event(&self.key);
            if let Some(next) = self.poll_next(ctx).await {
                return Some(next);
            }
            wait.await;
        }
    }
}
