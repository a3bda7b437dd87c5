//! The N×N mesh of `rtrb` SPSC rings between shards, and the doorbell that wakes a shard.
//!
//! Shard `i` owns the producer of ring `i→j` and the consumer of ring `j→i` for every other `j`.
//! A producer pushes, then rings the destination's [`Doorbell`]; the doorbell wakes the
//! destination's mesh task only when it is asleep (one atomic swap per batch otherwise), and the
//! wake goes through glommio's foreign-waker path (an eventfd), so an idle shard uses no CPU.
//!
//! When a ring is full the message is *parked* in a per-destination backlog (kept in order
//! behind the ring) instead of being dropped; the backlog's length is what publishers are refused
//! on (see `mesh.max_backlog`), so back-pressure reaches the producer of the events.
use std::collections::VecDeque;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::Poll;

use atomic_waker::AtomicWaker;
use rtrb::{Consumer, Producer, RingBuffer};

use crate::broker::{FramedEvent, PartitionKey, PublishError, PublishItem};

/// What shards say to each other.
#[derive(Debug)]
pub enum MeshMsg {
    /// A framed event from the partition owner, for local subscribers and history.
    Event(FramedEvent),
    /// Please append these events to a partition you own.
    Publish(PublishRequest),
    /// The answer to a [`PublishRequest`]: the ids the events got.
    PublishDone {
        request_id: u64,
        result: Result<Vec<String>, PublishError>,
    },
    /// The sender is shutting down: it acknowledges no more publishes, and every event it
    /// broadcast for one it acknowledged is ahead of this in the ring (see `DrainBarrier`).
    Fence,
}

/// A publish forwarded from the shard that read it to the shard that owns the partition.
#[derive(Debug)]
pub struct PublishRequest {
    pub from: usize,
    pub request_id: u64,
    pub key: PartitionKey,
    pub items: Vec<PublishItem>,
}

/// Wakes one shard's mesh task from any thread.
#[derive(Default)]
pub struct Doorbell {
    rung: AtomicBool,
    waker: AtomicWaker,
}

impl Doorbell {
    /// Ask the owner to look at its rings. Cheap when it is already awake or already rung.
    pub fn ring(&self) {
        if !self.rung.swap(true, Ordering::SeqCst) {
            self.waker.wake();
        }
    }

    /// Called by the owner before it drains: rings after this point will wake it again.
    pub fn reset(&self) {
        self.rung.store(false, Ordering::SeqCst);
    }

    /// Resolves once the bell has been rung since the last [`Doorbell::reset`].
    pub fn wait(&self) -> impl Future<Output = ()> + '_ {
        std::future::poll_fn(move |cx| {
            if self.rung.load(Ordering::SeqCst) {
                return Poll::Ready(());
            }
            self.waker.register(cx.waker());
            // Re-check: a ring between the load and the register would otherwise be missed.
            if self.rung.load(Ordering::SeqCst) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
    }
}

/// One shard's ends of the mesh.
pub struct MeshEndpoint {
    shard: usize,
    outs: Vec<Option<Producer<MeshMsg>>>,
    ins: Vec<Option<Consumer<MeshMsg>>>,
    bells: Arc<[Doorbell]>,
    backlog: Vec<VecDeque<MeshMsg>>,
    to_ring: Vec<bool>,
    /// Messages parked since the last [`MeshEndpoint::take_parked`] (for the metrics).
    parked_total: u64,
}

/// Build the rings for `shards` shards; element `i` goes to shard `i`.
pub fn build_mesh(shards: usize, ring_capacity: usize) -> (Vec<MeshEndpoint>, Arc<[Doorbell]>) {
    let bells: Arc<[Doorbell]> = (0..shards).map(|_| Doorbell::default()).collect();
    let mut outs: Vec<Vec<Option<Producer<MeshMsg>>>> = (0..shards)
        .map(|_| (0..shards).map(|_| None).collect())
        .collect();
    let mut ins: Vec<Vec<Option<Consumer<MeshMsg>>>> = (0..shards)
        .map(|_| (0..shards).map(|_| None).collect())
        .collect();
    for from in 0..shards {
        for to in 0..shards {
            if from != to {
                let (p, c) = RingBuffer::new(ring_capacity);
                outs[from][to] = Some(p);
                ins[to][from] = Some(c);
            }
        }
    }
    let endpoints = outs
        .into_iter()
        .zip(ins)
        .enumerate()
        .map(|(shard, (outs, ins))| MeshEndpoint {
            shard,
            outs,
            ins,
            bells: bells.clone(),
            backlog: (0..shards).map(|_| VecDeque::new()).collect(),
            to_ring: vec![false; shards],
            parked_total: 0,
        })
        .collect();
    (endpoints, bells)
}

impl MeshEndpoint {
    pub fn shard(&self) -> usize {
        self.shard
    }

    pub fn shards(&self) -> usize {
        self.outs.len()
    }

    /// This shard's own doorbell (shared, so it can be awaited without borrowing the endpoint).
    pub fn bells(&self) -> Arc<[Doorbell]> {
        self.bells.clone()
    }

    /// Queue `msg` for shard `to`, parking it behind the ring if the ring is full (order kept).
    /// The destination is woken by the next [`MeshEndpoint::ring_pending`].
    pub fn send(&mut self, to: usize, msg: MeshMsg) {
        let Some(Some(producer)) = self.outs.get_mut(to) else {
            debug_assert!(false, "no ring from shard {} to {to}", self.shard);
            return;
        };
        let parked = &mut self.backlog[to];
        if parked.is_empty() {
            match producer.push(msg) {
                Ok(()) => {}
                Err(rtrb::PushError::Full(msg)) => {
                    parked.push_back(msg);
                    self.parked_total += 1;
                }
            }
        } else {
            parked.push_back(msg);
            self.parked_total += 1;
        }
        self.to_ring[to] = true;
    }

    /// Move parked messages into rings that have room; true if any are still parked.
    pub fn flush_backlog(&mut self) -> bool {
        let mut left = false;
        for (to, parked) in self.backlog.iter_mut().enumerate() {
            let Some(Some(producer)) = self.outs.get_mut(to) else {
                continue;
            };
            while let Some(msg) = parked.pop_front() {
                match producer.push(msg) {
                    Ok(()) => self.to_ring[to] = true,
                    Err(rtrb::PushError::Full(msg)) => {
                        parked.push_front(msg);
                        left = true;
                        break;
                    }
                }
            }
        }
        left
    }

    /// How many messages were parked since the last call.
    pub fn take_parked(&mut self) -> u64 {
        std::mem::take(&mut self.parked_total)
    }

    /// The longest backlog towards any shard (what publishes are refused on).
    pub fn max_backlog(&self) -> usize {
        self.backlog.iter().map(VecDeque::len).max().unwrap_or(0)
    }

    /// Wake every shard that was sent something since the last call.
    pub fn ring_pending(&mut self) {
        for (to, flag) in self.to_ring.iter_mut().enumerate() {
            if std::mem::take(flag) {
                self.bells[to].ring();
            }
        }
    }

    /// Move up to `max_per_ring` messages from each inbound ring into `out`; returns how many.
    pub fn drain_into(&mut self, out: &mut Vec<MeshMsg>, max_per_ring: usize) -> usize {
        let before = out.len();
        for consumer in self.ins.iter_mut().flatten() {
            let n = consumer.slots().min(max_per_ring);
            if n == 0 {
                continue;
            }
            if let Ok(chunk) = consumer.read_chunk(n) {
                out.extend(chunk);
            }
        }
        out.len() - before
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn event(offset: u64) -> MeshMsg {
        MeshMsg::Event(FramedEvent {
            key: PartitionKey {
                topic: "t".into(),
                partition: 0,
            },
            offset,
            frame: Bytes::from_static(b"data: x\n\n"),
            id_len: 0,
            meta: Default::default(),
            wire: Default::default(),
        })
    }

    fn offsets(msgs: &[MeshMsg]) -> Vec<u64> {
        msgs.iter()
            .filter_map(|m| match m {
                MeshMsg::Event(e) => Some(e.offset),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn full_ring_parks_in_order_and_flushes_later() {
        let (mut eps, _) = build_mesh(2, 4);
        let mut b = eps.pop().unwrap();
        let mut a = eps.pop().unwrap();
        for i in 0..10 {
            a.send(1, event(i));
        }
        assert_eq!(a.max_backlog(), 6);
        assert_eq!(a.take_parked(), 6, "each parked message is counted once");
        assert_eq!(a.take_parked(), 0);
        let mut got = Vec::new();
        b.drain_into(&mut got, 100);
        assert!(a.flush_backlog(), "still 2 parked after refilling 4");
        b.drain_into(&mut got, 100);
        assert!(!a.flush_backlog());
        b.drain_into(&mut got, 100);
        assert_eq!(offsets(&got), (0..10).collect::<Vec<_>>());
    }

    #[test]
    fn doorbell_wakes_a_waiter_once() {
        let bell = Doorbell::default();
        bell.reset();
        bell.ring();
        bell.ring();
        futures_lite::future::block_on(bell.wait());
        bell.reset();
        let mut waiting = std::pin::pin!(bell.wait());
        let waker = futures_lite::future::block_on(std::future::poll_fn(|cx| {
            Poll::Ready(cx.waker().clone())
        }));
        let mut cx = std::task::Context::from_waker(&waker);
        assert!(waiting.as_mut().poll(&mut cx).is_pending());
        bell.ring();
        assert!(waiting.as_mut().poll(&mut cx).is_ready());
    }
}
