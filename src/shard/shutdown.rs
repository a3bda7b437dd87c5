//! Shutdown: a process-wide flag set by the signal thread, and a per-shard notifier for tasks.
//!
//! The signal thread sets [`GlobalShutdown`] and rings every shard's doorbell; each shard's mesh
//! task sees the flag and triggers its [`LocalShutdown`], which wakes the listener, idle HTTP
//! connections and SSE sessions on that shard (no cross-thread state beyond one atomic).
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
}
