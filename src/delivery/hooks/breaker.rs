//! A circuit breaker per hook (pure; the clock is passed in): after `failures` failures in a
//! row the hook is not called for `open_for` (its failure policy answers at once, so a dead
//! hook costs nothing per request), then one trial call decides whether it closes again.
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Closed {
        failures: u32,
    },
    Open {
        until: Instant,
    },
    /// One trial call is out.
    HalfOpen,
}

/// One hook's breaker.
#[derive(Debug)]
pub struct Breaker {
    state: State,
    failures: u32,
    open_for: Duration,
}

impl Breaker {
    pub fn new(failures: u32, open_for: Duration) -> Self {
        Self {
            state: State::Closed { failures: 0 },
            failures: failures.max(1),
            open_for,
        }
    }

    /// May the hook be called at `now`? (A half-open breaker lets one call through.)
    pub fn allow(&mut self, now: Instant) -> bool {
        match self.state {
            State::Closed { .. } => true,
            State::Open { until } if now >= until => {
                self.state = State::HalfOpen;
                true
            }
            State::Open { .. } | State::HalfOpen => false,
        }
    }

    pub fn succeeded(&mut self) {
        self.state = State::Closed { failures: 0 };
    }

    /// A call failed (error or timeout) at `now`; true when this opened the breaker.
    pub fn failed(&mut self, now: Instant) -> bool {
        let failures = match self.state {
            State::Closed { failures } => failures + 1,
            State::HalfOpen | State::Open { .. } => self.failures,
        };
        if failures >= self.failures {
            let was_open = matches!(self.state, State::Open { .. });
            self.state = State::Open {
                until: now + self.open_for,
            };
            !was_open
        } else {
            self.state = State::Closed { failures };
            false
        }
    }

    #[cfg(test)]
    pub fn is_open(&self) -> bool {
        !matches!(self.state, State::Closed { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_failures_in_a_row_and_closes_after_a_good_trial() {
        let t0 = Instant::now();
        let mut b = Breaker::new(3, Duration::from_secs(5));
        assert!(b.allow(t0));
        assert!(!b.failed(t0));
        b.succeeded();
        assert!(!b.failed(t0) && !b.failed(t0), "a success resets the count");
        assert!(b.failed(t0), "third in a row opens it");
        assert!(!b.allow(t0 + Duration::from_secs(1)));
        assert!(
            b.allow(t0 + Duration::from_secs(5)),
            "one trial after the window"
        );
        assert!(!b.allow(t0 + Duration::from_secs(5)), "only one");
        assert!(
            b.failed(t0 + Duration::from_secs(6)),
            "a failed trial opens it again"
        );
        assert!(!b.allow(t0 + Duration::from_secs(7)));
        assert!(b.allow(t0 + Duration::from_secs(11)));
        b.succeeded();
        assert!(!b.is_open() && b.allow(t0 + Duration::from_secs(11)));
    }
}
