//! A token bucket driven by the caller's clock: `rate` tokens a second, up to `burst` saved.

use std::time::{Duration, Instant};

/// The wait that means "never under this limit": the cost is above the burst (a bucket can
/// never hold that many tokens), or the rate is 0 and the tokens are not there. Distinct from
/// every real wait, which saturates at [`MAX_WAIT`]. The engine answers a cost above the burst
/// with 413 rather than 429.
pub const NEVER: Duration = Duration::MAX;

/// The longest finite wait a bucket reports (about 584 years), so that [`NEVER`] stays
/// distinguishable however small the rate.
pub const MAX_WAIT: Duration = Duration::from_nanos(u64::MAX);

/// The deepest debt [`TokenBucket::take_with_debt`] runs up, as time at the bucket's rate.
/// Charges beyond it are forgiven: a connection held back by a minute is a slow consumer that
/// the queue's bound is expected to have cut long before, and the cap keeps the balance and
/// the wait finite whatever is charged.
pub const MAX_DEBT: Duration = Duration::from_secs(60);

/// Relative slack on comparisons, so that float rounding in a refill never turns the wait a
/// bucket reported into a refusal when the caller comes back after exactly that wait.
const SLACK: f64 = 1e-9;

/// A token bucket. Time is always passed in (no clock inside), which makes it deterministic to
/// test and cheap to call; a `now` earlier than one seen before counts as no time passed.
///
/// The balance is an `f64` refilled from the exact [`Duration`] since the last call (integer
/// nanoseconds), so long runs do not drift: the only rounding is one ulp per call on a value
/// no larger than the burst.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A bucket refilling at `rate` tokens a second up to `burst`, full at `now`. A negative
    /// or NaN rate or burst counts as 0.
    pub fn new(rate: f64, burst: f64, now: Instant) -> Self {
        let burst = sanitize(burst);
        Self {
            rate: sanitize(rate),
            burst,
            tokens: burst,
            last: now,
        }
    }

    /// Takes `cost` tokens if they are there at `now`. Otherwise `Err(wait)`: coming back after
    /// `wait` (with nothing else taken meanwhile) finds them.
    ///
    /// A cost above the burst can never pass (the bucket never holds that many): it returns
    /// `Err(`[`NEVER`]`)` without touching the balance. A negative or NaN cost counts as 0.
    pub fn try_take(&mut self, cost: f64, now: Instant) -> Result<(), Duration> {
        let cost = sanitize(cost);
        if cost > self.burst {
            return Err(NEVER);
        }
        self.refill(now);
        self.take_if_there(cost)
    }

    /// Like [`try_take`](Self::try_take), except that a cost above the burst passes once the
    /// bucket is full, leaving the difference as debt (bounded by [`MAX_DEBT`]) that later
    /// takes wait out. While not full it returns the wait until full.
    ///
    /// For a bucket holding a share of a larger limit (`split`): a request that fits the
    /// whole limit but not this shard's slice of it must still pass eventually; the debt
    /// keeps the long-run rate.
    pub fn try_take_overdraft(&mut self, cost: f64, now: Instant) -> Result<(), Duration> {
        let cost = sanitize(cost);
        self.refill(now);
        if cost <= self.burst {
            return self.take_if_there(cost);
        }
        if self.tokens + slack(self.burst) >= self.burst {
            self.charge(cost);
            Ok(())
        } else {
            Err(self.wait_for(self.burst - self.tokens))
        }
    }

    /// Always takes `cost` (the balance may go negative) and returns how long until the
    /// balance is back at 0 or more: `Duration::ZERO` when not in debt.
    ///
    /// For "delay" egress: an event is charged when queued and the socket's writes are held
    /// for the returned time. The debt is capped at [`MAX_DEBT`] worth of the rate; charges
    /// beyond it are forgiven. With a rate of 0 a debt is never repaid: [`NEVER`].
    pub fn take_with_debt(&mut self, cost: f64, now: Instant) -> Duration {
        self.refill(now);
        self.charge(sanitize(cost));
        if self.tokens + slack(self.burst) >= 0.0 {
            Duration::ZERO
        } else {
            self.wait_for(-self.tokens)
        }
    }

    /// Changes the limit at `now`: the time up to `now` refills under the old rate, then the
    /// new rate and burst apply, with the balance capped at the new burst (a larger burst is
    /// not a gift of tokens).
    pub fn set_limit(&mut self, rate: f64, burst: f64, now: Instant) {
        self.refill(now);
        self.rate = sanitize(rate);
        self.burst = sanitize(burst);
        self.tokens = self.tokens.min(self.burst);
    }

    /// The balance at `now` (negative while in debt).
    pub fn available(&mut self, now: Instant) -> f64 {
        self.refill(now);
        self.tokens
    }

    /// Whether the bucket is full at `now` (forgetting it loses nothing).
    pub fn is_full(&mut self, now: Instant) -> bool {
        self.refill(now);
        self.tokens + slack(self.burst) >= self.burst
    }

    /// Tokens added a second.
    pub fn rate(&self) -> f64 {
        self.rate
    }

    /// Most tokens the bucket holds.
    pub fn burst(&self) -> f64 {
        self.burst
    }

    /// Adds what the time since the last call earned, up to the burst. Time going backwards
    /// adds nothing and does not move `last` back (it would be counted twice).
    fn refill(&mut self, now: Instant) {
        if now <= self.last {
            return;
        }
        let elapsed = (now - self.last).as_secs_f64();
        self.last = now;
        if self.tokens < self.burst {
            self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        }
    }

    fn take_if_there(&mut self, cost: f64) -> Result<(), Duration> {
        if self.tokens + slack(cost) >= cost {
            self.tokens -= cost;
            Ok(())
        } else {
            Err(self.wait_for(cost - self.tokens))
        }
    }

    /// Takes `cost` whatever the balance, down to the debt cap.
    fn charge(&mut self, cost: f64) {
        let floor = if self.rate > 0.0 {
            -self.rate * MAX_DEBT.as_secs_f64()
        } else {
            // Nothing repays a debt at rate 0; the wait is NEVER whatever the depth.
            f64::NEG_INFINITY
        };
        self.tokens = (self.tokens - cost).max(floor);
    }

    /// Time for the rate to add `deficit` tokens, rounded up to the nanosecond.
    fn wait_for(&self, deficit: f64) -> Duration {
        if deficit <= 0.0 {
            return Duration::ZERO;
        }
        if self.rate <= 0.0 {
            return NEVER;
        }
        let nanos = (deficit / self.rate * 1e9).ceil();
        if nanos.is_nan() || nanos >= MAX_WAIT.as_nanos() as f64 {
            MAX_WAIT
        } else {
            Duration::from_nanos(nanos as u64)
        }
    }
}

/// NaN and negative amounts count as 0.
fn sanitize(x: f64) -> f64 {
    if x > 0.0 {
        x
    } else {
        0.0
    }
}

fn slack(amount: f64) -> f64 {
    SLACK * amount.max(1.0)
}

#[cfg(test)]
mod tests;
