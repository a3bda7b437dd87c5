//! Answers awaited by connection tasks: a request goes out (over the mesh, or to the broker
//! plane) with an id, and the task waits until the answer with that id comes back.
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

struct Slot<T> {
    answer: Option<T>,
    waker: Option<Waker>,
}

/// Outstanding requests of one shard, keyed by request id.
pub struct Replies<T> {
    slots: RefCell<HashMap<u64, Slot<T>>>,
    next_id: Cell<u64>,
}

impl<T> Default for Replies<T> {
    fn default() -> Self {
        Self {
            slots: RefCell::new(HashMap::new()),
            next_id: Cell::new(0),
        }
    }
}

impl<T> Replies<T> {
    /// Reserve an id for a request about to be sent.
    pub fn register(&self) -> u64 {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        self.slots.borrow_mut().insert(
            id,
            Slot {
                answer: None,
                waker: None,
            },
        );
        id
    }

    /// Forget a request that could not be sent.
    pub fn cancel(&self, id: u64) {
        self.slots.borrow_mut().remove(&id);
    }

    /// The answer to request `id` arrived (ignored when its waiter has gone).
    pub fn complete(&self, id: u64, answer: T) {
        if let Some(slot) = self.slots.borrow_mut().get_mut(&id) {
            slot.answer = Some(answer);
            if let Some(w) = slot.waker.take() {
                w.wake();
            }
        }
    }

    /// Answer every outstanding request at once (e.g. the broker went away).
    pub fn complete_all(&self, answer: impl Fn() -> T) {
        for slot in self.slots.borrow_mut().values_mut() {
            if slot.answer.is_none() {
                slot.answer = Some(answer());
                if let Some(w) = slot.waker.take() {
                    w.wake();
                }
            }
        }
    }

    /// Wait for the answer to `id`; `None` if the request was cancelled. Dropping the future
    /// (the client went away), even before its first poll, forgets the request.
    pub fn wait(&self, id: u64) -> WaitReply<'_, T> {
        WaitReply { replies: self, id }
    }
}

/// Future returned by [`Replies::wait`].
pub struct WaitReply<'a, T> {
    replies: &'a Replies<T>,
    id: u64,
}

impl<T> Future for WaitReply<'_, T> {
    type Output = Option<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let mut slots = self.replies.slots.borrow_mut();
        let Some(slot) = slots.get_mut(&self.id) else {
            return Poll::Ready(None);
        };
        match slot.answer.take() {
            Some(answer) => Poll::Ready(Some(answer)),
            None => {
                slot.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

impl<T> Drop for WaitReply<'_, T> {
    fn drop(&mut self) {
        self.replies.slots.borrow_mut().remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_reach_their_waiter_and_dropped_waiters_are_forgotten() {
        let replies: Replies<u32> = Replies::default();
        let a = replies.register();
        replies.complete(a, 7);
        assert_eq!(futures_lite::future::block_on(replies.wait(a)), Some(7));
        assert!(replies.slots.borrow().is_empty());
        let b = replies.register();
        {
            let waiting = replies.wait(b);
            drop(waiting);
        }
        assert!(replies.slots.borrow().is_empty());
        replies.complete(b, 1); // late answer: ignored
        assert!(replies.slots.borrow().is_empty());
    }
}
