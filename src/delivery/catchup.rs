//! A subscription's cursor and its catch-up: where each partition stands, whether the events it
//! still needs come from this shard's history, from the log (a backfill: Kafka or the durable embedded log) or are
//! gone (a `reset`), and when it has caught up and turns live.
//!
//! Pure bookkeeping over `History`: no queue, no socket, no runtime. The subscriber drives it
//! (`Subscriber::refill`) and queues what it says to read.
use crate::broker::memory::History;
use crate::broker::PartitionKey;

/// The `reason` of a reset caused by history trimming.
pub const GAP_REASON: &str = "events after Last-Event-ID are no longer retained";
/// The `reason` of a reset caused by an id from an earlier run of the gateway.
pub const RESTART_REASON: &str =
    "Last-Event-ID is from an earlier run of the gateway; its events are lost";
/// The `reason` of a reset caused by a cursor past the end of a Kafka partition (the topic was
/// re-created, or the id was forged): the partition is replayed from its start.
pub const PAST_END_REASON: &str =
    "Last-Event-ID is past the end of the partition (was the topic re-created?)";

/// The `partitions` array of a `reset` message: per gap, its topic, partition, the position
/// asked for and the oldest one retained. Topic names are `[A-Za-z0-9._-]`: no escaping.
pub fn gaps_json(gaps: &[Gap]) -> String {
    use std::fmt::Write as _;
    let mut json = String::from("[");
    for (i, g) in gaps.iter().enumerate() {
        if i > 0 {
            json.push(',');
        }
        let _ = write!(
            json,
            "{{\"topic\":\"{}\",\"partition\":{},\"requested\":{},\"oldest\":{}}}",
            g.key.topic, g.key.partition, g.requested, g.oldest
        );
    }
    json.push(']');
    json
}

/// A partition whose asked-for events are gone.
#[derive(Debug, PartialEq, Eq)]
pub struct Gap {
    pub key: PartitionKey,
    pub requested: u64,
    pub oldest: u64,
}

/// What a refill did besides queueing events.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Refill {
    /// Partitions whose asked-for events were gone (a `reset` was queued for each).
    pub gaps: Vec<Gap>,
    /// Partitions (index, from offset) whose missing events must be fetched from the broker:
    /// the caller starts a backfill task for each.
    pub backfill: Vec<(usize, u64)>,
}

/// Per-partition backfill bookkeeping of a log-backed subscription.
#[derive(Debug, Default)]
struct BackfillState {
    /// A backfill task is fetching this partition.
    running: Vec<bool>,
    /// The cursor is known to be at or past what Kafka held when the subscription started
    /// (live subscribers start settled; resumes settle when a backfill reaches the end).
    settled: Vec<bool>,
}

/// What to do for one partition on a refill.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// A backfill is fetching it: not caught up, nothing to read here.
    Wait,
    /// Start a backfill from this offset (and wait for it).
    Backfill(u64),
    /// Read the history from the cursor; `gap` when the cursor first jumped over lost events.
    Read { gap: Option<Gap> },
    /// This shard holds nothing of the partition and nothing is owed: caught up here.
    Nothing,
}

/// Where a subscription stands in each of its partitions.
#[derive(Debug)]
pub struct Cursor {
    /// Per partition: the next offset to send.
    next: Vec<u64>,
    /// Per partition: no position asked for and no history when subscribed, so the first event
    /// this shard holds is where the subscription starts (not offset 0).
    from_live: Vec<bool>,
    /// `Some` with a log (Kafka, durable log: missing events are read back), `None` in memory mode
    /// (they are gone: `reset`).
    backfill: Option<BackfillState>,
}

impl Cursor {
    pub fn new(start: Vec<u64>, from_live: Vec<bool>, log_backed: bool) -> Self {
        let n = start.len();
        debug_assert_eq!(n, from_live.len());
        let backfill = log_backed.then(|| BackfillState {
            running: vec![false; n],
            settled: from_live.clone(),
        });
        Self {
            next: start,
            from_live,
            backfill,
        }
    }

    pub fn positions(&self) -> &[u64] {
        &self.next
    }

    pub fn next(&self, idx: usize) -> u64 {
        self.next[idx]
    }

    /// An event of partition `idx` at `offset` was sent (or filtered out): move past it.
    pub fn passed(&mut self, idx: usize, offset: u64) {
        self.from_live[idx] = false;
        self.next[idx] = offset + 1;
    }

    /// Move partition `idx` forward to `next` (never back).
    pub fn advance(&mut self, idx: usize, next: u64) {
        self.next[idx] = self.next[idx].max(next);
    }

    /// Move partition `idx` back to `next` (never forward).
    pub fn rewind(&mut self, idx: usize, next: u64) {
        self.next[idx] = self.next[idx].min(next);
    }

    /// A backfill of partition `idx` ended; `settled` when it reached the broker's end or this
    /// shard's history.
    pub fn finish_backfill(&mut self, idx: usize, settled: bool) {
        if let Some(b) = &mut self.backfill {
            b.running[idx] = false;
            b.settled[idx] = settled;
        }
    }

    /// Add partitions at the end (a subscription added to a running stream).
    pub fn extend(&mut self, start: &[u64], from_live: &[bool]) {
        debug_assert_eq!(start.len(), from_live.len());
        self.next.extend_from_slice(start);
        self.from_live.extend_from_slice(from_live);
        if let Some(b) = &mut self.backfill {
            b.running.extend(std::iter::repeat_n(false, start.len()));
            b.settled.extend_from_slice(from_live);
        }
    }

    /// Keep only the partitions whose `keep` entry is true (in order).
    pub fn retain(&mut self, keep: &[bool]) {
        fn filter<T: Copy>(v: &mut Vec<T>, keep: &[bool]) {
            let mut i = 0;
            v.retain(|_| {
                i += 1;
                keep.get(i - 1).copied().unwrap_or(true)
            });
        }
        filter(&mut self.next, keep);
        filter(&mut self.from_live, keep);
        if let Some(b) = &mut self.backfill {
            filter(&mut b.running, keep);
            filter(&mut b.settled, keep);
        }
    }

    /// Whether a backfill task is fetching any partition (it holds a partition index).
    pub fn backfill_running(&self) -> bool {
        self.backfill
            .as_ref()
            .is_some_and(|b| b.running.iter().any(|&r| r))
    }

    /// Decide partition `idx`'s refill against this shard's `history` of it.
    pub fn step(&mut self, idx: usize, key: &PartitionKey, history: Option<&History>) -> Step {
        if let Some(b) = &self.backfill {
            if b.running[idx] {
                return Step::Wait;
            }
        }
        let wanted = self.next[idx];
        let settled = self.backfill.as_ref().map(|b| b.settled[idx]);
        let missing = match (history, settled) {
            (Some(h), _) if wanted < h.oldest() => true,
            // Kafka: past what this shard holds may be past the partition's end (a re-created
            // topic, a forged id); only the broker can tell, so ask it once. Marking the
            // cursor live here would drop every event below it.
            (Some(h), Some(false)) => wanted > h.head(),
            (Some(_), _) => false,
            (None, settled) => settled == Some(false),
        };
        if !missing {
            return match history {
                Some(_) => Step::Read { gap: None },
                None => Step::Nothing,
            };
        }
        if self.from_live[idx] {
            // Everything this shard holds arrived after the subscription: start there.
            if let Some(h) = history {
                self.next[idx] = h.oldest();
            }
            return Step::Read { gap: None };
        }
        if let Some(b) = &mut self.backfill {
            b.running[idx] = true;
            b.settled[idx] = false;
            return Step::Backfill(wanted);
        }
        match history {
            Some(h) => {
                self.next[idx] = h.oldest();
                Step::Read {
                    gap: Some(Gap {
                        key: key.clone(),
                        requested: wanted,
                        oldest: h.oldest(),
                    }),
                }
            }
            None => Step::Nothing,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::memory::HistoryLimits;
    use crate::broker::FramedEvent;
    use bytes::Bytes;
    use std::rc::Rc;

    fn key() -> PartitionKey {
        PartitionKey {
            topic: "t".into(),
            partition: 0,
        }
    }

    fn history(offsets: std::ops::Range<u64>) -> History {
        let mut h = History::new(HistoryLimits {
            max_events: 100,
            max_bytes: 1 << 20,
        });
        for offset in offsets {
            h.append(Rc::new(FramedEvent {
                key: key(),
                offset,
                frame: Bytes::from_static(b"data: x\n\n"),
                id_len: 0,
                meta: Default::default(),
                wire: Default::default(),
            }));
        }
        h
    }

    #[test]
    fn kafka_cursor_past_the_history_head_asks_the_broker_once() {
        let h = history(0..10);
        let mut c = Cursor::new(vec![5000], vec![false], true);
        assert_eq!(c.step(0, &key(), Some(&h)), Step::Backfill(5000));
        assert_eq!(c.step(0, &key(), Some(&h)), Step::Wait);
        // The backfill found the real end and rewound the cursor there.
        c.rewind(0, 10);
        c.finish_backfill(0, true);
        assert_eq!(c.step(0, &key(), Some(&h)), Step::Read { gap: None });
    }

    #[test]
    fn embedded_cursor_below_the_history_gets_a_gap() {
        let h = history(0..10);
        let mut trimmed = history(0..0);
        for e in h.since(0).skip(4) {
            trimmed.append(e.clone());
        }
        let mut c = Cursor::new(vec![2], vec![false], false);
        let step = c.step(0, &key(), Some(&trimmed));
        assert_eq!(
            step,
            Step::Read {
                gap: Some(Gap {
                    key: key(),
                    requested: 2,
                    oldest: 4
                })
            }
        );
        assert_eq!(c.next(0), 4);
    }

    #[test]
    fn live_start_with_no_history_waits_for_the_first_event() {
        let mut c = Cursor::new(vec![0], vec![true], true);
        assert_eq!(c.step(0, &key(), None), Step::Nothing);
        let h = history(0..3);
        let mut c = Cursor::new(vec![0], vec![true], false);
        assert_eq!(c.step(0, &key(), Some(&h)), Step::Read { gap: None });
    }
}
