//! Small single-shard signals the webhook driver's tasks sleep on: a stop flag (a deletion,
//! a change, shutdown) and a counter of changes (an in-flight delivery finished).
use std::cell::{Cell, RefCell};
use std::task::{Poll, Waker};
use std::time::Duration;

/// Remember `waker` among `wakers`, once: a lane asks on every event it waits for, so keep one
/// waker per task, not one per ask.
fn register(wakers: &RefCell<Vec<Waker>>, waker: &Waker) {
    let mut wakers = wakers.borrow_mut();
    if !wakers.iter().any(|w| w.will_wake(waker)) {
        wakers.push(waker.clone());
    }
}

/// A stop flag tasks can sleep on.
#[derive(Default)]
pub struct StopFlag {
    set: Cell<bool>,
    wakers: RefCell<Vec<Waker>>,
}

impl StopFlag {
    pub fn is_set(&self) -> bool {
        self.set.get()
    }

    pub fn set(&self) {
        self.set.set(true);
        for w in self.wakers.borrow_mut().drain(..) {
            w.wake();
        }
    }

    /// Resolves once the flag is set.
    pub async fn wait(&self) {
        std::future::poll_fn(|cx| {
            if self.set.get() {
                return Poll::Ready(());
            }
            register(&self.wakers, cx.waker());
            Poll::Pending
        })
        .await
    }

    /// Sleep for `d`, or less when the flag is set meanwhile; true when it was set.
    pub async fn sleep(&self, d: Duration) -> bool {
        futures_lite::future::or(async { glommio::timer::sleep(d).await }, self.wait()).await;
        self.set.get()
    }
}

/// Something changed: who waits for the next change wakes.
#[derive(Default)]
pub struct Signal {
    generation: Cell<u64>,
    wakers: RefCell<Vec<Waker>>,
}

impl Signal {
    pub fn notify(&self) {
        self.generation.set(self.generation.get() + 1);
        for w in self.wakers.borrow_mut().drain(..) {
            w.wake();
        }
    }

    /// The current generation: `changed(g)` resolves once it moves past `g`.
    pub fn generation(&self) -> u64 {
        self.generation.get()
    }

    pub async fn changed(&self, since: u64) {
        std::future::poll_fn(|cx| {
            if self.generation.get() != since {
                return Poll::Ready(());
            }
            register(&self.wakers, cx.waker());
            Poll::Pending
        })
        .await
    }
}
