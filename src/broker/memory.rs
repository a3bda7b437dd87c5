//! The embedded in-memory broker: offset assignment at the owner, bounded history everywhere.
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;

use super::FramedEvent;

/// Owner-side state of one partition: the next offset and the idempotency keys still retained.
#[derive(Default)]
pub struct OwnedPartition {
    next_offset: u64,
    keys: HashMap<Box<str>, u64>,
    key_order: VecDeque<(u64, Box<str>)>,
}

/// Result of asking the owner for an offset.
#[derive(Debug, PartialEq, Eq)]
pub enum Assigned {
    /// A new event at this offset.
    New(u64),
    /// The idempotency key was seen before: the earlier event's offset.
    Duplicate(u64),
}

impl OwnedPartition {
    /// Give the next event its offset, unless its idempotency key is a repeat.
    /// `keep_keys` bounds how many keys are remembered (the history length).
    pub fn assign(&mut self, key: Option<&str>, keep_keys: usize) -> Assigned {
        if let Some(k) = key {
            if let Some(&offset) = self.keys.get(k) {
                return Assigned::Duplicate(offset);
            }
        }
        let offset = self.next_offset;
        self.next_offset += 1;
        if let Some(k) = key {
            let k: Box<str> = k.into();
            self.keys.insert(k.clone(), offset);
            self.key_order.push_back((offset, k));
            while self.key_order.len() > keep_keys.max(1) {
                if let Some((_, old)) = self.key_order.pop_front() {
                    self.keys.remove(&old);
                }
            }
        }
        Assigned::New(offset)
    }

    pub fn next_offset(&self) -> u64 {
        self.next_offset
    }
}

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

    #[test]
    fn idempotency_keys_repeat_the_first_offset_until_forgotten() {
        let mut p = OwnedPartition::default();
        assert_eq!(p.assign(Some("a"), 2), Assigned::New(0));
        assert_eq!(p.assign(Some("a"), 2), Assigned::Duplicate(0));
        assert_eq!(p.assign(None, 2), Assigned::New(1));
        assert_eq!(p.assign(Some("b"), 2), Assigned::New(2));
        assert_eq!(p.assign(Some("c"), 2), Assigned::New(3));
        assert_eq!(
            p.assign(Some("a"), 2),
            Assigned::New(4),
            "forgotten after 2 newer keys"
        );
    }
}
