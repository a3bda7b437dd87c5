//! Tasks waiting for the next event of a partition on this shard (webhook deliveries and the
//! webhook engine's state follower): `on_event` wakes the waiters of the event's partition.
//!
//! SSE and WebSocket subscribers are offered events by the registry's fan-out loop; a webhook
//! subscription instead *pulls* from the shard's history at its own pace (an endpoint may be
//! down for a day), so it only needs to know that the partition moved. Costs one emptiness
//! check per event while nobody waits.
use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use crate::broker::PartitionKey;

/// Per partition: how many events arrived (a generation) and who waits for the next one.
#[derive(Default)]
pub struct EventWaiters {
    by_partition: RefCell<HashMap<PartitionKey, Slot>>,
    /// Bumped by `wake_all` (shutdown, a subscription changed). Every waiter also sits in
    /// its partition's slot, which is where `wake_all` finds its waker.
    everyone: std::cell::Cell<u64>,
}

#[derive(Default)]
struct Slot {
    generation: u64,
    wakers: Vec<Waker>,
}

impl EventWaiters {
    /// An event of `key` arrived: wake who waits for it.
    pub fn on_event(&self, key: &PartitionKey) {
        let mut map = self.by_partition.borrow_mut();
        if map.is_empty() {
            return;
        }
        if let Some(slot) = map.get_mut(key) {
            slot.generation += 1;
            for w in slot.wakers.drain(..) {
                w.wake();
            }
        }
    }

    /// Wake every waiter (they look again at what they wait for).
    pub fn wake_all(&self) {
        self.everyone.set(self.everyone.get() + 1);
        for slot in self.by_partition.borrow_mut().values_mut() {
            slot.generation += 1;
            for w in slot.wakers.drain(..) {
                w.wake();
            }
        }
    }

    /// Resolves at the next event of `key` after this call (or at `wake_all`). Check what you
    /// wait for before awaiting it: nothing can arrive between the check and the first poll,
    /// because both run in one step of this shard's executor.
    pub fn next_event(&self, key: &PartitionKey) -> NextEvent<'_> {
        let generation = self
            .by_partition
            .borrow_mut()
            .entry(key.clone())
            .or_default()
            .generation;
        NextEvent {
            waiters: self,
            key: key.clone(),
            generation,
            everyone: self.everyone.get(),
        }
    }
}

/// See [`EventWaiters::next_event`].
pub struct NextEvent<'a> {
    waiters: &'a EventWaiters,
    key: PartitionKey,
    generation: u64,
    everyone: u64,
}

impl Future for NextEvent<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.waiters.everyone.get() != self.everyone {
            return Poll::Ready(());
        }
        let mut map = self.waiters.by_partition.borrow_mut();
        let slot = map.entry(self.key.clone()).or_default();
        if slot.generation != self.generation {
            return Poll::Ready(());
        }
        // No dedupe (it would be a scan per poll with 10k waiters): a future is polled again
        // only after a wake, which drained the list.
        slot.wakers.push(cx.waker().clone());
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_lite::future::{block_on, poll_once};

    fn key(t: &str) -> PartitionKey {
        PartitionKey {
            topic: t.into(),
            partition: 0,
        }
    }

    #[test]
    fn a_waiter_wakes_on_its_partition_only() {
        let waiters = EventWaiters::default();
        let mut wait = Box::pin(waiters.next_event(&key("a")));
        assert!(block_on(poll_once(&mut wait)).is_none());
        waiters.on_event(&key("b"));
        assert!(block_on(poll_once(&mut wait)).is_none());
        waiters.on_event(&key("a"));
        assert!(block_on(poll_once(&mut wait)).is_some());
    }

    #[test]
    fn wake_all_releases_every_waiter() {
        let waiters = EventWaiters::default();
        let mut wait = Box::pin(waiters.next_event(&key("a")));
        assert!(block_on(poll_once(&mut wait)).is_none());
        waiters.wake_all();
        assert!(block_on(poll_once(&mut wait)).is_some());
    }
}
