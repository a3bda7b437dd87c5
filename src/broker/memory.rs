//! Every shard's bounded in-memory history of each partition, for resume (both brokers).
use std::collections::VecDeque;
use std::rc::Rc;

use super::FramedEvent;

/// Limits of one partition's history.
#[derive(Clone, Copy, Debug)]
pub struct HistoryLimits {
    pub max_events: usize,
    pub max_bytes: usize,
}

/// A shard's copy of one partition's recent events, in offset order, for resume.
///
/// Every shard receives every event of every partition through its ring, so each keeps its own
/// history and resumes its own clients without asking another shard. The payload is shared:
/// a copy costs one reference per event per shard.
pub struct History {
    events: VecDeque<Rc<FramedEvent>>,
    bytes: usize,
    /// The offset the next appended event must have.
    head: u64,
    limits: HistoryLimits,
}

impl History {
    pub fn new(limits: HistoryLimits) -> Self {
        Self {
            events: VecDeque::new(),
            bytes: 0,
            head: 0,
            limits,
        }
    }

    /// Append the next event and trim to the limits (at least the newest event is kept).
    ///
    /// Offsets may skip forward: Kafka offsets that are not delivered (a record repeating an
    /// idempotency key, a value SSE cannot carry, transaction markers) leave holes that no
    /// subscriber, live or resuming, is meant to see. An offset going backwards cannot happen
    /// with one FIFO ring per owner; if it does, what came before is forgotten rather than
    /// replayed out of order.
    pub fn append(&mut self, event: Rc<FramedEvent>) {
        if event.offset < self.head {
            self.events.clear();
            self.bytes = 0;
        }
        self.head = event.offset + 1;
        self.bytes += event.frame.len();
        self.events.push_back(event);
        while self.events.len() > 1
            && (self.events.len() > self.limits.max_events || self.bytes > self.limits.max_bytes)
        {
            if let Some(old) = self.events.pop_front() {
                self.bytes -= old.frame.len();
            }
        }
    }

    /// The offset the next event will have (one past the newest).
    pub fn head(&self) -> u64 {
        self.head
    }

    /// The oldest offset still held (== head when empty).
    pub fn oldest(&self) -> u64 {
        self.events.front().map_or(self.head, |e| e.offset)
    }

    /// Events with offset >= `from`, oldest first.
    pub fn since(&self, from: u64) -> impl Iterator<Item = &Rc<FramedEvent>> {
        // Offsets ascend but may have holes, so search rather than index.
        let skip = self.events.partition_point(|e| e.offset < from);
        self.events.iter().skip(skip)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::PartitionKey;
    use bytes::Bytes;

    fn ev(offset: u64, len: usize) -> Rc<FramedEvent> {
        Rc::new(FramedEvent {
            key: PartitionKey {
                topic: "t".into(),
                partition: 0,
            },
            offset,
            frame: Bytes::from(vec![b'x'; len]),
            id_len: 0,
            meta: Default::default(),
            wire: Default::default(),
        })
    }

    #[test]
    fn history_trims_by_count_and_bytes() {
        let mut h = History::new(HistoryLimits {
            max_events: 3,
            max_bytes: 1000,
        });
        for i in 0..5 {
            h.append(ev(i, 10));
        }
        assert_eq!((h.oldest(), h.head()), (2, 5));
        assert_eq!(h.since(3).map(|e| e.offset).collect::<Vec<_>>(), vec![3, 4]);
        assert_eq!(h.since(0).count(), 3);
        h.append(ev(5, 995));
        assert_eq!(h.oldest(), 5, "bytes limit keeps only the newest");
    }

    #[test]
    fn history_keeps_events_across_a_hole_and_replays_around_it() {
        let limits = HistoryLimits {
            max_events: 10,
            max_bytes: 1000,
        };
        let mut h = History::new(limits);
        for i in [0, 1, 3, 4] {
            h.append(ev(i, 10));
        }
        assert_eq!((h.oldest(), h.head()), (0, 5));
        let offsets = |h: &History, from| h.since(from).map(|e| e.offset).collect::<Vec<_>>();
        assert_eq!(offsets(&h, 2), vec![3, 4], "from inside the hole");
        assert_eq!(offsets(&h, 3), vec![3, 4]);
        assert_eq!(offsets(&h, 1), vec![1, 3, 4]);
        h.append(ev(2, 10));
        assert_eq!(
            offsets(&h, 0),
            vec![2],
            "an offset going back forgets the rest"
        );
    }
}
