//! The gateway's events about its own work (`gateway.event.received`, `gateway.subscriber.*`,
//! `gateway.webhook.*`, `gateway.publish.rejected`), published on reserved topics that
//! administrators can subscribe to like any other.
//!
//! Free while nobody listens: every emit first reads one relaxed atomic (how many listeners
//! the topic has, across shards) and builds nothing when it is zero. Bounded when someone
//! does: events wait in a per-shard queue of `system_events.queue_events`; past it they are
//! dropped and counted, and the task that publishes them drops (and counts) what the broker
//! refuses, so the data path is never held back by its own telemetry.
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, Ordering};
use std::task::{Poll, Waker};

use serde_json::Value;

/// A system topic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SystemTopic {
    EventReceived,
    PublishRejected,
    SubscriberConnected,
    SubscriberDisconnected,
    WebhookInvoking,
    WebhookInvoked,
    WebhookInvocationFailed,
}

impl SystemTopic {
    pub const ALL: [SystemTopic; 7] = [
        SystemTopic::EventReceived,
        SystemTopic::PublishRejected,
        SystemTopic::SubscriberConnected,
        SystemTopic::SubscriberDisconnected,
        SystemTopic::WebhookInvoking,
        SystemTopic::WebhookInvoked,
        SystemTopic::WebhookInvocationFailed,
    ];

    pub fn name(self) -> &'static str {
        match self {
            SystemTopic::EventReceived => "gateway.event.received",
            SystemTopic::PublishRejected => "gateway.publish.rejected",
            SystemTopic::SubscriberConnected => "gateway.subscriber.connected",
            SystemTopic::SubscriberDisconnected => "gateway.subscriber.disconnected",
            SystemTopic::WebhookInvoking => "gateway.webhook.invoking",
            SystemTopic::WebhookInvoked => "gateway.webhook.invoked",
            SystemTopic::WebhookInvocationFailed => "gateway.webhook.invocationFailed",
        }
    }

    pub fn from_name(name: &str) -> Option<SystemTopic> {
        SystemTopic::ALL.into_iter().find(|t| t.name() == name)
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Who listens to each system topic, over every shard: SSE and WebSocket subscribers (counted
/// once per shard and partition that has any) and webhook lanes.
#[derive(Default)]
pub struct SystemInterest {
    listeners: [AtomicU32; SystemTopic::ALL.len()],
}

impl SystemInterest {
    pub fn wanted(&self, topic: SystemTopic) -> bool {
        self.listeners[topic.index()].load(Ordering::Relaxed) > 0
    }

    /// Whether anyone listens to what publishes say (received or rejected).
    pub fn any_publish_listener(&self) -> bool {
        self.wanted(SystemTopic::EventReceived) || self.wanted(SystemTopic::PublishRejected)
    }

    /// Someone started reading `topic` (any topic name: others are ignored).
    pub fn add(&self, topic: &str) {
        if let Some(t) = SystemTopic::from_name(topic) {
            self.listeners[t.index()].fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn remove(&self, topic: &str) {
        if let Some(t) = SystemTopic::from_name(topic) {
            let _ =
                self.listeners[t.index()]
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
        }
    }
}

/// One shard's queue of system events waiting to be published.
pub struct SystemQueue {
    queue: RefCell<VecDeque<(SystemTopic, String)>>,
    capacity: usize,
    dropped: Cell<u64>,
    waker: RefCell<Option<Waker>>,
}

impl SystemQueue {
    pub fn new(capacity: usize) -> Self {
        Self {
            queue: RefCell::new(VecDeque::new()),
            capacity: capacity.max(1),
            dropped: Cell::new(0),
            waker: RefCell::new(None),
        }
    }

    /// Queue `event` (its JSON data), or drop and count it when the queue is full.
    pub fn push(&self, topic: SystemTopic, event: &Value) {
        let mut queue = self.queue.borrow_mut();
        if queue.len() >= self.capacity {
            self.dropped.set(self.dropped.get() + 1);
            return;
        }
        queue.push_back((topic, event.to_string()));
        if let Some(w) = self.waker.borrow_mut().take() {
            w.wake();
        }
    }

    /// Count events the publisher could not publish.
    pub fn count_dropped(&self, n: u64) {
        self.dropped.set(self.dropped.get() + n);
    }

    /// Dropped since the last call.
    pub fn take_dropped(&self) -> u64 {
        self.dropped.replace(0)
    }

    /// Everything queued, waiting for at least one event.
    pub async fn next_batch(&self) -> Vec<(SystemTopic, String)> {
        std::future::poll_fn(|cx| {
            let mut queue = self.queue.borrow_mut();
            if queue.is_empty() {
                *self.waker.borrow_mut() = Some(cx.waker().clone());
                return Poll::Pending;
            }
            Poll::Ready(queue.drain(..).collect())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_lite::future::{block_on, poll_once};

    #[test]
    fn names_round_trip_and_interest_counts() {
        for t in SystemTopic::ALL {
            assert_eq!(SystemTopic::from_name(t.name()), Some(t));
            assert!(t.name().starts_with("gateway."));
        }
        let interest = SystemInterest::default();
        assert!(!interest.wanted(SystemTopic::EventReceived));
        interest.add("gateway.event.received");
        interest.add("orders");
        assert!(interest.wanted(SystemTopic::EventReceived));
        interest.remove("gateway.event.received");
        interest.remove("gateway.event.received");
        assert!(
            !interest.wanted(SystemTopic::EventReceived),
            "never below zero"
        );
    }

    #[test]
    fn a_full_queue_drops_and_counts() {
        let q = SystemQueue::new(2);
        for i in 0..5 {
            q.push(SystemTopic::EventReceived, &serde_json::json!({ "i": i }));
        }
        assert_eq!(q.take_dropped(), 3);
        let batch = block_on(poll_once(Box::pin(q.next_batch()))).expect("ready");
        assert_eq!(batch.len(), 2);
        assert!(block_on(poll_once(Box::pin(q.next_batch()))).is_none());
    }
}
