//! The shard's fan-out writer: one task that writes live events straight to the sockets of the
//! subscribers that have something queued, instead of waking one session task per subscriber
//! per event.
//!
//! Why one task: at 10k subscribers of one topic an event is 10k deliveries. Waking 10k session
//! tasks costs a wake, a task switch and a poll each on top of the `sendmsg` that is the real
//! work; the writer walks ready lists and only calls `sendmsg`. A subscriber whose socket is
//! full is handed to its session (which waits for room with the reactor and writes the rest), so
//! the writer never waits on one client.
//!
//! Fairness: each fanned-out event brings its own batch of subscribers to write, and the writer
//! serves the batches round-robin, a bounded number of subscribers at a time, so an event of a
//! small topic waits behind at most one turn of a 10k fan-out, not behind all of it. Every
//! millisecond of writing it steps aside for the reactor, so publishes and accepts are read
//! during a long fan-out. Subscribers join a batch in a different order for each event (see
//! `Registry::deliver`), so the last socket written is not always the same client.
use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::Future;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use super::subscriber::Subscriber;
use crate::telemetry::latency::{Stage, StageLatencies};
use crate::telemetry::ShardMetrics;

/// Subscribers written from one batch per turn: ~64 x 5 us of loopback `sendmsg` is ~0.3 ms,
/// short next to any latency a client can see, long next to a task switch.
const SUBSCRIBERS_PER_TURN: usize = 64;

/// Longest the writer keeps the shard's task queue busy before it steps aside long enough for
/// the reactor to look at sockets. Yielding alone is not enough: glommio polls for I/O only
/// when its task queue runs dry (or its 100 ms preemption timer fires), so a writer that is
/// always runnable would hold every publish and accept back for a whole pass over 10k sockets
/// (measured: a publish round trip's p99 went from 1 ms to 31 ms).
const IO_EVERY: Duration = Duration::from_millis(1);

/// How long the writer sleeps to let the reactor run: any timer makes the task queue go idle,
/// and the reactor then polls I/O before the timer fires; the length hardly matters.
const IO_PAUSE: Duration = Duration::from_micros(20);

/// Batches kept for reuse, so a fan-out allocates nothing once the shard has warmed up.
const SPARE_BATCHES: usize = 64;

/// The subscribers one event made ready, and how far the writer got through them.
struct Batch {
    subs: Vec<Rc<Subscriber>>,
    next: usize,
    /// When the event was offered to them (the fan-out latency stages start here).
    offered_at: Instant,
}

/// The batches waiting to be written, and the writer task's waker.
#[derive(Default)]
pub struct Writer {
    batches: RefCell<VecDeque<Batch>>,
    spare: RefCell<Vec<Vec<Rc<Subscriber>>>>,
    waker: RefCell<Option<Waker>>,
}

impl Writer {
    /// An empty list to collect one event's ready subscribers in (reused when there is one).
    pub fn new_batch(&self) -> Vec<Rc<Subscriber>> {
        self.spare.borrow_mut().pop().unwrap_or_default()
    }

    /// Queue one event's ready subscribers (offered to them at `offered_at`) and wake the
    /// writer task if it sleeps: once per fanned-out event, not per subscriber.
    pub fn submit(&self, subs: Vec<Rc<Subscriber>>, offered_at: Instant) {
        if subs.is_empty() {
            self.recycle(subs);
            return;
        }
        self.batches.borrow_mut().push_back(Batch {
            subs,
            next: 0,
            offered_at,
        });
        if let Some(w) = self.waker.borrow_mut().take() {
            w.wake();
        }
    }

    fn recycle(&self, mut subs: Vec<Rc<Subscriber>>) {
        subs.clear();
        let mut spare = self.spare.borrow_mut();
        if spare.len() < SPARE_BATCHES {
            spare.push(subs);
        }
    }

    /// Subscribers waiting to be written, over all batches.
    pub fn pending(&self) -> usize {
        self.batches
            .borrow()
            .iter()
            .map(|b| b.subs.len() - b.next)
            .sum()
    }

    /// Resolves when a batch is waiting.
    fn work(&self) -> impl Future<Output = ()> + '_ {
        std::future::poll_fn(move |cx: &mut Context<'_>| {
            if self.batches.borrow().is_empty() {
                *self.waker.borrow_mut() = Some(cx.waker().clone());
                Poll::Pending
            } else {
                Poll::Ready(())
            }
        })
    }

    /// One turn: up to [`SUBSCRIBERS_PER_TURN`] subscribers of the front batch; an unfinished
    /// batch goes to the back. Returns false when no batch was waiting.
    fn turn(&self, metrics: &ShardMetrics, latency: &StageLatencies) -> bool {
        let Some(mut batch) = self.batches.borrow_mut().pop_front() else {
            return false;
        };
        if batch.next == 0 {
            latency.record(Stage::FanoutFirstWrite, batch.offered_at.elapsed());
        }
        let end = (batch.next + SUBSCRIBERS_PER_TURN).min(batch.subs.len());
        for sub in &batch.subs[batch.next..end] {
            let flushed = sub.write_scheduled();
            if flushed.writes > 0 {
                ShardMetrics::add(&metrics.sse_writes_total, flushed.writes);
                ShardMetrics::add(&metrics.sse_bytes_written_total, flushed.bytes);
            }
        }
        batch.next = end;
        if batch.next < batch.subs.len() {
            self.batches.borrow_mut().push_back(batch);
        } else {
            latency.record(Stage::FanoutLastWrite, batch.offered_at.elapsed());
            self.recycle(batch.subs);
        }
        true
    }

    /// The writer task: write batches, a turn at a time, until the shard stops.
    pub async fn run(&self, metrics: &ShardMetrics, latency: &StageLatencies) {
        let mut stepped_aside = Instant::now();
        loop {
            self.work().await;
            while self.turn(metrics, latency) {
                if stepped_aside.elapsed() >= IO_EVERY {
                    glommio::timer::sleep(IO_PAUSE).await;
                    stepped_aside = Instant::now();
                } else {
                    yield_once().await;
                }
            }
            // Going back to sleep in `work` lets everything else run anyway.
            stepped_aside = Instant::now();
        }
    }
}

/// Let every other runnable task on the shard go first once.
fn yield_once() -> impl Future<Output = ()> {
    let mut yielded = false;
    std::future::poll_fn(move |cx| {
        if yielded {
            return Poll::Ready(());
        }
        yielded = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    })
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("pending", &self.pending())
            .finish()
    }
}
