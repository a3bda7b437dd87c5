//! What the webhook endpoints API shows about a subscription's deliveries (recent attempts,
//! counts, where it stands), written by the shard that drives it and read by whichever shard
//! answers `GET /webhooks/{id}/attempts`.
//!
//! The one piece of webhook state shared between shards, behind a mutex: it is touched once per
//! attempt by the owner (an uncontended lock costs about what the attempt's bookkeeping does)
//! and by the API, never on the SSE/WebSocket path.
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;

use serde::Serialize;

/// One delivery attempt.
#[derive(Clone, Debug, Serialize)]
pub struct AttemptRecord {
    /// Unix ms when it started.
    pub at_ms: u64,
    /// The `webhook-id` of the event.
    pub webhook_id: String,
    /// 1 for the first try of this event.
    pub attempt: u32,
    /// The answer's status, when one came.
    pub status: Option<u16>,
    /// What went wrong without an answer (timeout, refused address, connection error).
    pub error: Option<String>,
    pub latency_ms: f64,
    /// `delivered`, `retry`, `dead-letter`, `gone` or `stopped`.
    pub outcome: &'static str,
    /// Seconds until the next try, for `retry`.
    pub retry_in_s: Option<f64>,
}

/// One subscription's delivery status.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SubscriptionStatus {
    pub delivered: u64,
    pub failed_attempts: u64,
    pub dead_lettered: u64,
    /// Events skipped because they were no longer retained when the subscription got there.
    pub skipped: u64,
    /// Unix seconds of the first failure since the last success.
    pub failing_since: Option<u64>,
    /// Per partition (`topic:partition`), the next offset to deliver.
    pub cursor: BTreeMap<String, u64>,
    /// Newest last.
    pub attempts: VecDeque<AttemptRecord>,
}

/// Every subscription's status.
#[derive(Default)]
pub struct StatusBoard {
    subs: Mutex<HashMap<String, SubscriptionStatus>>,
}

impl StatusBoard {
    /// Change `id`'s status (created when missing).
    pub fn update(&self, id: &str, f: impl FnOnce(&mut SubscriptionStatus)) {
        let mut subs = self.subs.lock().unwrap_or_else(|e| e.into_inner());
        match subs.get_mut(id) {
            Some(s) => f(s),
            None => f(subs.entry(id.to_owned()).or_default()),
        }
    }

    /// Add an attempt, keeping the newest `keep`.
    pub fn record(&self, id: &str, attempt: AttemptRecord, keep: usize) {
        self.update(id, |s| {
            match attempt.outcome {
                "delivered" => s.delivered += 1,
                "dead-letter" => {
                    s.failed_attempts += 1;
                    s.dead_lettered += 1
                }
                "retry" | "gone" => s.failed_attempts += 1,
                _ => {}
            }
            s.attempts.push_back(attempt);
            while s.attempts.len() > keep.max(1) {
                s.attempts.pop_front();
            }
        });
    }

    pub fn get(&self, id: &str) -> Option<SubscriptionStatus> {
        let subs = self.subs.lock().unwrap_or_else(|e| e.into_inner());
        subs.get(id).cloned()
    }

    pub fn remove(&self, id: &str) {
        let mut subs = self.subs.lock().unwrap_or_else(|e| e.into_inner());
        subs.remove(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(outcome: &'static str) -> AttemptRecord {
        AttemptRecord {
            at_ms: 1,
            webhook_id: "x".into(),
            attempt: 1,
            status: Some(200),
            error: None,
            latency_ms: 1.0,
            outcome,
            retry_in_s: None,
        }
    }

    #[test]
    fn keeps_the_newest_attempts_and_counts_outcomes() {
        let board = StatusBoard::default();
        for _ in 0..5 {
            board.record("a", attempt("retry"), 3);
        }
        board.record("a", attempt("delivered"), 3);
        let s = board.get("a").expect("status");
        assert_eq!(s.attempts.len(), 3);
        assert_eq!((s.delivered, s.failed_attempts), (1, 5));
        assert_eq!(s.attempts.back().map(|a| a.outcome), Some("delivered"));
    }
}
