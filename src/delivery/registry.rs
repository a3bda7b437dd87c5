//! The subscribers of one shard, indexed by partition, and the fan-out of a live event to them.
use std::collections::HashMap;
use std::rc::Rc;

use super::subscriber::{Offer, Subscriber};
use super::writer::Writer;
use crate::broker::{FramedEvent, PartitionKey};

/// All subscribers of one shard.
#[derive(Default)]
pub struct Registry {
    /// Per partition: (index of the partition in the subscriber's cursor, subscriber).
    by_part: HashMap<PartitionKey, Vec<(usize, Rc<Subscriber>)>>,
    all: HashMap<u64, Rc<Subscriber>>,
    next_id: u64,
}

impl Registry {
    pub fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    pub fn add(&mut self, sub: Rc<Subscriber>) {
        for (idx, key) in sub.live_slots() {
            self.by_part
                .entry(key)
                .or_default()
                .push((idx, sub.clone()));
        }
        self.all.insert(sub.id, sub);
    }

    pub fn remove(&mut self, sub: &Subscriber) {
        self.all.remove(&sub.id);
        for (_, key) in sub.live_slots() {
            if let Some(list) = self.by_part.get_mut(&key) {
                list.retain(|(_, s)| s.id != sub.id);
                if list.is_empty() {
                    self.by_part.remove(&key);
                }
            }
        }
    }

    /// Change a registered subscriber's subscriptions with `change` (which may renumber its
    /// slots): it is taken out of the index by its old slots and put back by its new ones, in
    /// one step on the shard, so no event is offered to it in between.
    pub fn relayout<T>(&mut self, sub: &Rc<Subscriber>, change: impl FnOnce() -> T) -> T {
        self.remove(sub);
        let out = change();
        if !sub.is_finished() {
            self.add(sub.clone());
        }
        out
    }

    /// Offer a live event to every subscriber of its partition, handing those the writer should
    /// serve to it as one batch; returns how many queued it.
    ///
    /// The walk starts at a different subscriber for each event (the offset picks it), so the
    /// order in which sockets are written rotates: with thousands of subscribers the last one
    /// served waits the whole fan-out, and that should not always be the same client.
    pub fn deliver(&self, event: &Rc<FramedEvent>, writer: &Writer) -> u64 {
        let Some(list) = self.by_part.get(&event.key) else {
            return 0;
        };
        // One clock reading per event, for every subscriber's egress bucket.
        let now = std::time::Instant::now();
        let start = (event.offset % list.len() as u64) as usize;
        let (tail, head) = list.split_at(start);
        let mut queued = 0;
        let mut ready = writer.new_batch();
        for (idx, sub) in head.iter().chain(tail) {
            match sub.offer_live(*idx, event, now) {
                Offer::Skipped => {}
                Offer::Queued => queued += 1,
                Offer::Schedule => {
                    queued += 1;
                    ready.push(sub.clone());
                }
            }
        }
        writer.submit(ready, now);
        queued
    }

    pub fn len(&self) -> usize {
        self.all.len()
    }

    pub fn is_empty(&self) -> bool {
        self.all.is_empty()
    }

    pub fn subscribers(&self) -> impl Iterator<Item = &Rc<Subscriber>> {
        self.all.values()
    }
}
