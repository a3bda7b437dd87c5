//! Shutdown: a process-wide flag set by the signal thread, a per-shard notifier for tasks, and
//! the barrier that orders a drain.
//!
//! The signal thread sets [`GlobalShutdown`] and rings every shard's doorbell; each shard's mesh
//! task sees the flag, sends a fence to every other shard and triggers its [`LocalShutdown`],
//! which wakes the listener, idle HTTP connections and SSE sessions on that shard (no
//! cross-thread state beyond one atomic). A shard closes its SSE streams only once its
//! [`DrainBarrier`] has seen every other shard's fence (see there why that loses nothing).
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Waker};

/// Set once when the process should drain and exit.
#[derive(Default)]
pub struct GlobalShutdown {
    requested: AtomicBool,
}

impl GlobalShutdown {
    pub fn request(&self) {
        self.requested.store(true, Ordering::SeqCst);
    }

    pub fn is_requested(&self) -> bool {
        self.requested.load(Ordering::SeqCst)
    }
}

/// One shard's view of shutdown: a flag plus the wakers of tasks waiting for it.
#[derive(Default)]
pub struct LocalShutdown {
    triggered: Cell<bool>,
    next_waiter: Cell<u64>,
    // Keyed so a waiter that is dropped (its connection closed) removes itself: connections come
    // and go all day, and a plain Vec of wakers would grow with every one that ever waited.
    waiters: RefCell<HashMap<u64, Waker>>,
}

impl LocalShutdown {
    pub fn trigger(&self) {
        if !self.triggered.replace(true) {
            let waiters = std::mem::take(&mut *self.waiters.borrow_mut());
            for (_, w) in waiters {
                w.wake();
            }
        }
    }

    pub fn is_triggered(&self) -> bool {
        self.triggered.get()
    }

    /// Resolves when shutdown has been triggered on this shard.
    pub fn wait(&self) -> ShutdownWait<'_> {
        let id = self.next_waiter.get();
        self.next_waiter.set(id + 1);
        ShutdownWait { shutdown: self, id }
    }
}

/// One shard's drain barrier: the fences still expected from the other shards.
///
/// Why: a publish is acknowledged by the shard that read it once the partition owner has framed
/// the event and pushed it into the ring to every shard. If a shard closed its streams as soon as
/// it saw the shutdown flag, an owner that had not seen it yet could still acknowledge events
/// that the closing shard then never delivers. So once the flag is set, owners refuse new
/// appends, and each shard sends a fence through the same FIFO rings as its events: a shard that
/// has read every other shard's fence has also read every event those shards broadcast for a
/// publish they acknowledged. Only then may it tell its subscribers to go.
pub struct DrainBarrier {
    missing: Cell<usize>,
    passed: LocalShutdown,
}

impl DrainBarrier {
    /// A barrier waiting for the fences of `peers` other shards.
    pub fn new(peers: usize) -> Self {
        let barrier = Self {
            missing: Cell::new(peers),
            passed: LocalShutdown::default(),
        };
        if peers == 0 {
            barrier.passed.trigger();
        }
        barrier
    }

    /// Another shard's fence arrived.
    pub fn on_fence(&self) {
        let missing = self.missing.get().saturating_sub(1);
        self.missing.set(missing);
        if missing == 0 {
            self.passed.trigger();
        }
    }

    #[cfg(test)]
    fn is_passed(&self) -> bool {
        self.passed.is_triggered()
    }

    /// Resolves once every other shard's fence has arrived.
    pub fn wait(&self) -> ShutdownWait<'_> {
        self.passed.wait()
    }
}

/// Future returned by [`LocalShutdown::wait`].
pub struct ShutdownWait<'a> {
    shutdown: &'a LocalShutdown,
    id: u64,
}

impl Future for ShutdownWait<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.shutdown.triggered.get() {
            return Poll::Ready(());
        }
        let mut waiters = self.shutdown.waiters.borrow_mut();
        match waiters.get_mut(&self.id) {
            Some(w) if w.will_wake(cx.waker()) => {}
            Some(w) => *w = cx.waker().clone(),
            None => {
                waiters.insert(self.id, cx.waker().clone());
            }
        }
        Poll::Pending
    }
}

impl Drop for ShutdownWait<'_> {
    fn drop(&mut self) {
        self.shutdown.waiters.borrow_mut().remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dropped_waiters_unregister() {
        let s = LocalShutdown::default();
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        {
            let mut w = std::pin::pin!(s.wait());
            assert!(w.as_mut().poll(&mut cx).is_pending());
            assert_eq!(s.waiters.borrow().len(), 1);
        }
        assert_eq!(s.waiters.borrow().len(), 0);
        let mut w = std::pin::pin!(s.wait());
        assert!(w.as_mut().poll(&mut cx).is_pending());
        s.trigger();
        assert!(w.as_mut().poll(&mut cx).is_ready());
    }

    #[test]
    fn drain_barrier_passes_after_every_peer_fence() {
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        assert!(
            DrainBarrier::new(0).is_passed(),
            "one shard: nothing to wait for"
        );
        let b = DrainBarrier::new(2);
        let mut w = std::pin::pin!(b.wait());
        assert!(w.as_mut().poll(&mut cx).is_pending());
        b.on_fence();
        assert!(!b.is_passed());
        assert!(w.as_mut().poll(&mut cx).is_pending());
        b.on_fence();
        assert!(b.is_passed());
        assert!(w.as_mut().poll(&mut cx).is_ready());
    }
}
