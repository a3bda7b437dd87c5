//! The embedded broker: the partitions a shard owns when no external broker is configured.
//! It assigns offsets, remembers idempotency keys, and frames each new event once; the shard
//! fans the frames out and every shard keeps them in its history (`memory.rs`).
use std::collections::{HashMap, VecDeque};

use super::framing::Framer;
use super::{FramedEvent, PartitionKey, PublishError, PublishItem};
use crate::codec::event_id;

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
            self.remember(k, offset, keep_keys);
        }
        Assigned::New(offset)
    }

    /// Remember idempotency key `k` of the event at `offset`, forgetting the oldest beyond
    /// `keep_keys`.
    fn remember(&mut self, k: &str, offset: u64, keep_keys: usize) {
        let k: Box<str> = k.into();
        self.keys.insert(k.clone(), offset);
        self.key_order.push_back((offset, k));
        while self.key_order.len() > keep_keys.max(1) {
            if let Some((_, old)) = self.key_order.pop_front() {
                self.keys.remove(&old);
            }
        }
    }

    /// Continue a partition recovered from disk: its next offset and the idempotency keys of
    /// its newest events (oldest first).
    pub fn restore<'a>(
        next_offset: u64,
        keys: impl IntoIterator<Item = (u64, &'a str)>,
        keep_keys: usize,
    ) -> Self {
        let mut p = Self {
            next_offset,
            ..Self::default()
        };
        for (offset, k) in keys {
            p.remember(k, offset, keep_keys);
        }
        p
    }

    /// Forget every offset from `next` on (events that were never written): they are given
    /// out again, and their idempotency keys are free again.
    pub fn rollback(&mut self, next: u64) {
        if next >= self.next_offset {
            return;
        }
        self.next_offset = next;
        while self.key_order.back().is_some_and(|(o, _)| *o >= next) {
            if let Some((_, k)) = self.key_order.pop_back() {
                self.keys.remove(&k);
            }
        }
    }
}

/// The partitions this shard owns.
pub struct EmbeddedBroker {
    partitions: HashMap<PartitionKey, OwnedPartition>,
    /// How many idempotency keys each partition remembers (its history length).
    keep_keys: usize,
}

/// What an append did: the id of every item (a repeat gets its first event's id) and the frames
/// of the new events, for the shard to fan out.
#[derive(Debug)]
pub struct Appended {
    pub ids: Vec<String>,
    pub framed: Vec<FramedEvent>,
    /// Per new event: its offset and the index of its item (for the durable log).
    pub new: Vec<(u64, usize)>,
}

impl EmbeddedBroker {
    pub fn new(keep_keys: usize) -> Self {
        Self {
            partitions: HashMap::new(),
            keep_keys,
        }
    }

    /// Continue partition `key` from its recovered state.
    pub fn restore<'a>(
        &mut self,
        key: PartitionKey,
        next_offset: u64,
        keys: impl IntoIterator<Item = (u64, &'a str)>,
    ) {
        let partition = OwnedPartition::restore(next_offset, keys, self.keep_keys);
        self.partitions.insert(key, partition);
    }

    /// Give offsets from `next` on in partition `key` out again (they were never written).
    pub fn rollback(&mut self, key: &PartitionKey, next: u64) {
        if let Some(p) = self.partitions.get_mut(key) {
            p.rollback(next);
        }
    }

    /// Give each item of `key` its offset (unless its idempotency key is a repeat) and frame the
    /// new ones once with `framer`.
    pub fn append(
        &mut self,
        key: &PartitionKey,
        items: &[PublishItem],
        framer: &mut Framer,
    ) -> Result<Appended, PublishError> {
        let partition = self.partitions.entry(key.clone()).or_default();
        let mut out = Appended {
            ids: Vec::with_capacity(items.len()),
            framed: Vec::with_capacity(items.len()),
            new: Vec::with_capacity(items.len()),
        };
        let first_new = partition.next_offset;
        for (i, item) in items.iter().enumerate() {
            let offset = match partition.assign(item.idempotency_key.as_deref(), self.keep_keys) {
                Assigned::Duplicate(offset) => offset,
                Assigned::New(offset) => {
                    match framer.frame(key, offset, item) {
                        Ok(framed) => out.framed.push(framed),
                        Err(e) => {
                            // None of this call's events happened.
                            partition.rollback(first_new);
                            return Err(e);
                        }
                    }
                    out.new.push((offset, i));
                    offset
                }
            };
            out.ids
                .push(event_id::format_single(framer.epoch(), offset + 1));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn append_frames_new_events_once_and_answers_repeats_with_the_first_id() {
        let mut broker = EmbeddedBroker::new(16);
        let mut framer = Framer::new(36);
        let key = PartitionKey {
            topic: "t".into(),
            partition: 0,
        };
        let item = |id: Option<&str>| PublishItem {
            event_type: None,
            idempotency_key: id.map(Into::into),
            data: bytes::Bytes::from_static(b"x"),
            key: None,
            headers: Vec::new(),
        };
        let first = broker
            .append(&key, &[item(Some("a")), item(None)], &mut framer)
            .expect("append");
        assert_eq!(first.ids, ["10-1", "10-2"]);
        assert_eq!(first.framed.len(), 2);
        let again = broker
            .append(&key, &[item(Some("a"))], &mut framer)
            .expect("append");
        assert_eq!(again.ids, ["10-1"], "a repeat answers with the first id");
        assert!(
            again.framed.is_empty(),
            "and is not framed or fanned out again"
        );
    }
}
