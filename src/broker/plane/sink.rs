//! The plane's end of the ring to its shard: pushes events, wakes the shard, and waits (never
//! drops) while the ring is full.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use atomic_waker::AtomicWaker;
use tokio::sync::Notify;

use super::events::{PlaneCommand, PlaneEvent};

/// State both ends of a plane share.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    /// The shard task waiting for events; woken after each push.
    pub shard_waker: AtomicWaker,
    /// Wakes the plane's command task after the shard pushed a command.
    pub commands: Notify,
    /// Set by the plane while it waits for room in the event ring; the shard then notifies
    /// `space` after it popped something.
    pub wants_space: AtomicBool,
    pub space: Notify,
    /// Set once to stop the plane.
    pub shutdown: AtomicBool,
    pub shutdown_notify: Notify,
}

impl Shared {
    pub fn is_shutting_down(&self) -> bool {
        self.shutdown.load(Ordering::Acquire)
    }

    pub fn begin_shutdown(&self) {
        self.shutdown.store(true, Ordering::Release);
        self.shutdown_notify.notify_waiters();
        self.commands.notify_one();
    }
}

/// How long a full-ring wait sleeps before looking again even without a notification (covers
/// the window between the shard's check of `wants_space` and our `enable`).
const FULL_RING_RECHECK: Duration = Duration::from_millis(20);

pub(crate) struct EventSink {
    ring: RefCell<rtrb::Producer<PlaneEvent>>,
    shared: Arc<Shared>,
}

impl EventSink {
    pub fn new(ring: rtrb::Producer<PlaneEvent>, shared: Arc<Shared>) -> Self {
        Self {
            ring: RefCell::new(ring),
            shared,
        }
    }

    /// Push `event`, waiting while the ring is full. Returns false when the plane shuts down
    /// first (the event is dropped with the plane) or the shard's end is gone.
    pub async fn push(&self, mut event: PlaneEvent) -> bool {
        loop {
            // The borrow ends before any await: tasks on this thread share the producer.
            let pushed = {
                let mut ring = self.ring.borrow_mut();
                if ring.is_abandoned() {
                    return false;
                }
                ring.push(event)
            };
            match pushed {
                Ok(()) => {
                    self.shared.shard_waker.wake();
                    return true;
                }
                Err(rtrb::PushError::Full(back)) => event = back,
            }
            if self.shared.is_shutting_down() {
                return false;
            }
            let notified = self.shared.space.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            self.shared.wants_space.store(true, Ordering::Release);
            // Wake the shard in case it is asleep with a full ring to drain.
            self.shared.shard_waker.wake();
            if self.ring.borrow().slots() == 0 {
                let _ = tokio::time::timeout(FULL_RING_RECHECK, notified).await;
            }
        }
    }
}

/// Serve the shard's commands until the plane stops: `Shutdown` is handled here, every other
/// command goes to `on` (which spawns its work, so a slow request never holds up the next).
pub(crate) async fn serve_commands(
    commands: &mut rtrb::Consumer<PlaneCommand>,
    shared: &Shared,
    mut on: impl FnMut(PlaneCommand),
) {
    loop {
        while let Ok(command) = commands.pop() {
            match command {
                PlaneCommand::Shutdown => shared.begin_shutdown(),
                other => on(other),
            }
        }
        if shared.is_shutting_down() || commands.is_abandoned() {
            return;
        }
        shared.commands.notified().await;
    }
}
