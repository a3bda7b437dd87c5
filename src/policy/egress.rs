//! Egress limits on one subscriber connection: events and bytes per second, and what an
//! event over the limit does (delay, drop, disconnect). Pure: the subscriber asks per event,
//! passing the `now` its fan-out read once.
use std::time::{Duration, Instant};

use super::bucket::TokenBucket;
use crate::config::{EgressMode, LimitsConfig};

/// What to do with one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EgressVerdict {
    /// Within the limit: send it.
    Send,
    /// Over the limit in `delay` mode: queue it, and write nothing more until `Duration` has
    /// passed (the event was charged; the hold repays the debt).
    Hold(Duration),
    /// Over the limit in `drop` mode: skip it (and count it).
    Drop,
    /// Over the limit in `disconnect` mode: end the stream.
    Disconnect,
}

/// The buckets of one connection.
#[derive(Debug, Clone)]
pub struct EgressLimiter {
    events: Option<TokenBucket>,
    bytes: Option<TokenBucket>,
    mode: EgressMode,
}

impl EgressLimiter {
    /// `None` when no egress limit is configured (no cost per event then).
    pub fn from_config(limits: &LimitsConfig, now: Instant) -> Option<Self> {
        let bucket = |r: crate::config::Rate| {
            r.is_limited()
                .then(|| TokenBucket::new(r.per_s, r.effective_burst(), now))
        };
        let events = bucket(limits.egress_events);
        let bytes = bucket(limits.egress_bytes);
        (events.is_some() || bytes.is_some()).then_some(Self {
            events,
            bytes,
            mode: limits.egress_over_limit,
        })
    }

    /// Decide for one event of `size` bytes.
    pub fn admit(&mut self, size: usize, now: Instant) -> EgressVerdict {
        let size = size as f64;
        match self.mode {
            EgressMode::Delay => {
                let wait_events = self
                    .events
                    .as_mut()
                    .map_or(Duration::ZERO, |b| b.take_with_debt(1.0, now));
                let wait_bytes = self
                    .bytes
                    .as_mut()
                    .map_or(Duration::ZERO, |b| b.take_with_debt(size, now));
                match wait_events.max(wait_bytes) {
                    Duration::ZERO => EgressVerdict::Send,
                    wait => EgressVerdict::Hold(wait),
                }
            }
            EgressMode::Drop | EgressMode::Disconnect => {
                // Both must have room before either is charged, so a refusal costs nothing.
                let events_ok = self.events.as_mut().is_none_or(|b| b.available(now) >= 1.0);
                let bytes_ok = self.bytes.as_mut().is_none_or(|b| {
                    // An event larger than the whole burst passes when the bucket is full
                    // (else it could never be sent): it leaves the bucket in debt.
                    let room = b.available(now);
                    room >= size || room >= b.burst()
                });
                if events_ok && bytes_ok {
                    if let Some(b) = &mut self.events {
                        b.take_with_debt(1.0, now);
                    }
                    if let Some(b) = &mut self.bytes {
                        b.take_with_debt(size, now);
                    }
                    EgressVerdict::Send
                } else if self.mode == EgressMode::Drop {
                    EgressVerdict::Drop
                } else {
                    EgressVerdict::Disconnect
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Rate;

    fn limits(mode: EgressMode) -> LimitsConfig {
        LimitsConfig {
            egress_events: Rate::new(10.0, 2.0),
            egress_over_limit: mode,
            ..LimitsConfig::default()
        }
    }

    #[test]
    fn no_limit_no_limiter() {
        assert!(EgressLimiter::from_config(&LimitsConfig::default(), Instant::now()).is_none());
    }

    #[test]
    fn delay_holds_for_the_debt() {
        let t0 = Instant::now();
        let mut l = EgressLimiter::from_config(&limits(EgressMode::Delay), t0).unwrap();
        assert_eq!(l.admit(10, t0), EgressVerdict::Send);
        assert_eq!(l.admit(10, t0), EgressVerdict::Send);
        match l.admit(10, t0) {
            EgressVerdict::Hold(d) => {
                assert!(d > Duration::ZERO && d <= Duration::from_millis(100))
            }
            v => panic!("{v:?}"),
        }
    }

    #[test]
    fn drop_and_disconnect_refuse_over_the_limit_and_recover() {
        let t0 = Instant::now();
        for (mode, over) in [
            (EgressMode::Drop, EgressVerdict::Drop),
            (EgressMode::Disconnect, EgressVerdict::Disconnect),
        ] {
            let mut l = EgressLimiter::from_config(&limits(mode), t0).unwrap();
            assert_eq!(l.admit(1, t0), EgressVerdict::Send);
            assert_eq!(l.admit(1, t0), EgressVerdict::Send);
            assert_eq!(l.admit(1, t0), over);
            assert_eq!(
                l.admit(1, t0 + Duration::from_millis(100)),
                EgressVerdict::Send
            );
        }
    }

    #[test]
    fn a_byte_limit_counts_sizes() {
        let t0 = Instant::now();
        let cfg = LimitsConfig {
            egress_bytes: Rate::new(1000.0, 1000.0),
            egress_over_limit: EgressMode::Drop,
            ..LimitsConfig::default()
        };
        let mut l = EgressLimiter::from_config(&cfg, t0).unwrap();
        assert_eq!(l.admit(600, t0), EgressVerdict::Send);
        assert_eq!(l.admit(600, t0), EgressVerdict::Drop);
        assert_eq!(l.admit(400, t0), EgressVerdict::Send);
    }
}
