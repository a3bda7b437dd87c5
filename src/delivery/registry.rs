//! The subscribers of one shard, indexed by partition, and the fan-out of a live event to them.
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use super::subscriber::{Offer, Subscriber};
use super::writer::Writer;
use crate::broker::{FramedEvent, PartitionKey};
use crate::codec::topic::is_reserved;
use crate::telemetry::system_events::SystemInterest;

/// All subscribers of one shard.
#[derive(Default)]
pub struct Registry {
    /// Per partition: (index of the partition in the subscriber's cursor, subscriber).
    by_part: HashMap<PartitionKey, Vec<(usize, Rc<Subscriber>)>>,
    all: HashMap<u64, Rc<Subscriber>>,
    next_id: u64,
    /// Told when a partition of a system topic gets its first subscriber here or loses its
    /// last, so system events are only built while someone reads them.
    interest: Option<Arc<SystemInterest>>,
}

impl Registry {
    pub fn new(interest: Arc<SystemInterest>) -> Self {
        Self {
            interest: Some(interest),
            ..Self::default()
        }
    }

    pub fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    pub fn add(&mut self, sub: Rc<Subscriber>) {
        for (idx, key) in sub.live_slots() {
            let list = self.by_part.entry(key.clone()).or_default();
            if list.is_empty() && is_reserved(&key.topic) {
                if let Some(i) = &self.interest {
                    i.add(&key.topic);
                }
            }
            list.push((idx, sub.clone()));
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
                    if let (Some(i), true) = (&self.interest, is_reserved(&key.topic)) {
                        i.remove(&key.topic);
                    }
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
