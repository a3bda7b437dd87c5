//! A subscriber's egress state, kept out of line (boxed, and only when egress limits are
//! configured) so a subscriber without limits carries one pointer, not the buckets: the fan-out
//! walks thousands of subscribers per event and every byte of their state costs cache.
use std::time::Instant;

use crate::policy::egress::{EgressLimiter, EgressVerdict};

/// Egress buckets and what they left behind.
#[derive(Debug)]
pub(super) struct EgressState {
    limiter: EgressLimiter,
    /// Over the limit in `delay` mode: nothing is written before this instant (the session
    /// waits for it; the writer leaves the subscriber alone).
    pub(super) held_until: Option<Instant>,
    /// Events dropped since the last one sent, and the cursor before the first of them.
    pub(super) dropped: u64,
    pub(super) resume_from: Option<String>,
    /// Every event dropped, for the shard's metrics.
    pub(super) dropped_total: u64,
}

impl EgressState {
    pub(super) fn new(limiter: EgressLimiter) -> Self {
        Self {
            limiter,
            held_until: None,
            dropped: 0,
            resume_from: None,
            dropped_total: 0,
        }
    }

    /// The limiter's verdict on an event of `size` bytes at `now`; a hold extends
    /// `held_until`.
    pub(super) fn admit(&mut self, size: usize, now: Instant) -> EgressVerdict {
        let verdict = self.limiter.admit(size, now);
        if let EgressVerdict::Hold(wait) = verdict {
            let until = now + wait;
            self.held_until = Some(self.held_until.map_or(until, |h| h.max(until)));
        }
        verdict
    }

    /// Whether writes are held at `now` (a hold that has passed is cleared).
    pub(super) fn is_held(&mut self, now: Instant) -> bool {
        if self.held_until.is_some_and(|until| until <= now) {
            self.held_until = None;
        }
        self.held_until.is_some()
    }
}
