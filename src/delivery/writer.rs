//! The shard's fan-out writer: one task that writes live events straight to the sockets of the
//! subscribers that have something queued, instead of waking one session task per subscriber
//! per event.
//!
//! Why one task: at 10k subscribers of one topic an event is 10k deliveries. Waking 10k session
//! tasks costs a wake, a task switch and a poll each on top of the `sendmsg` that is the real
//! work; the writer walks a ready list and only calls `sendmsg`. A subscriber whose socket is
//! full is handed to its session (which waits for room with the reactor and writes the rest), so
//! the writer never waits on one client. Subscribers join the ready list in a different order
//! for each event (see `Registry::deliver`), and the writer yields after a bounded number of
//! subscribers, so a large fan-out neither starves publishes, accepts and other topics on the
//! shard nor always serves the same subscribers last.
use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::Future;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use super::subscriber::Subscriber;
use crate::telemetry::ShardMetrics;

/// Subscribers written per turn before the writer lets other tasks run: ~64 x 5 us of loopback
/// `sendmsg` is ~0.3 ms, short next to any latency a client can see, long next to a wake-up.
const SUBSCRIBERS_PER_TURN: usize = 64;

/// The ready list and the writer task's waker.
#[derive(Default)]
pub struct Writer {
    ready: RefCell<VecDeque<Rc<Subscriber>>>,
    waker: RefCell<Option<Waker>>,
}

impl Writer {
    /// Put `sub` on the ready list (the caller checked it is not on it yet).
    pub fn schedule(&self, sub: Rc<Subscriber>) {
        self.ready.borrow_mut().push_back(sub);
    }

    /// Wake the writer task if it sleeps; once per fanned-out event, not per subscriber.
    pub fn notify(&self) {
        if let Some(w) = self.waker.borrow_mut().take() {
            w.wake();
        }
    }

    pub fn pending(&self) -> usize {
        self.ready.borrow().len()
    }

    /// Resolves when the ready list is not empty.
    fn work(&self) -> impl Future<Output = ()> + '_ {
        std::future::poll_fn(move |cx: &mut Context<'_>| {
            if self.ready.borrow().is_empty() {
                *self.waker.borrow_mut() = Some(cx.waker().clone());
                Poll::Pending
            } else {
                Poll::Ready(())
            }
        })
    }

    /// The writer task: write ready subscribers, a bounded number per turn, until the shard
    /// stops.
    pub async fn run(&self, metrics: &ShardMetrics) {
        loop {
            self.work().await;
            for _ in 0..SUBSCRIBERS_PER_TURN {
                let Some(sub) = self.ready.borrow_mut().pop_front() else {
                    break;
                };
                let flushed = sub.write_scheduled();
                if flushed.writes > 0 {
                    ShardMetrics::add(&metrics.sse_writes_total, flushed.writes);
                    ShardMetrics::add(&metrics.sse_bytes_written_total, flushed.bytes);
                }
            }
            yield_once().await;
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
            .field("ready", &self.pending())
            .finish()
    }
}
