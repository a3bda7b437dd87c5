//! Capped exponential backoff with jitter, for reconnecting to the brokers. The random source
//! is a seeded SplitMix64, so tests get a fixed sequence and planes on different shards (seeded
//! differently) do not retry in lock-step.

use std::time::Duration;

/// Delays that double from `initial` up to `max`; each one is drawn from `[d/2, d]`.
#[derive(Clone, Debug)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    current: Duration,
    state: u64,
}

impl Backoff {
    /// `max` below `initial` is taken as `initial`.
    pub fn new(initial: Duration, max: Duration, seed: u64) -> Self {
        let initial = initial.max(Duration::from_millis(1));
        Self {
            initial,
            max: max.max(initial),
            current: initial,
            state: seed,
        }
    }

    /// The next delay to wait.
    pub fn next_delay(&mut self) -> Duration {
        let ceiling = self.current;
        self.current = (self.current * 2).min(self.max);
        let half = ceiling / 2;
        let span = (ceiling - half).as_nanos() as u64;
        let jitter = if span == 0 {
            0
        } else {
            self.random() % (span + 1)
        };
        half + Duration::from_nanos(jitter)
    }

    /// Start over from `initial` (after a success).
    pub fn reset(&mut self) {
        self.current = self.initial;
    }

    fn random(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn grows_to_the_cap_and_resets() {
        let mut b = Backoff::new(100 * MS, 5000 * MS, 7);
        let delays: Vec<Duration> = (0..10).map(|_| b.next_delay()).collect();
        let ceilings = [100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000, 5000];
        for (d, c) in delays.iter().zip(ceilings) {
            assert!(*d <= c * MS && *d >= c * MS / 2, "{d:?} vs {c}");
        }
        b.reset();
        assert!(b.next_delay() <= 100 * MS);
    }

    #[test]
    fn same_seed_same_delays_other_seed_differs() {
        let run = |seed| {
            let mut b = Backoff::new(100 * MS, 5000 * MS, seed);
            (0..8).map(|_| b.next_delay()).collect::<Vec<_>>()
        };
        assert_eq!(run(1), run(1));
        assert_ne!(run(1), run(2));
    }

    proptest! {
        #[test]
        fn never_above_max(initial in 0u64..10_000, max in 0u64..100_000, seed in any::<u64>()) {
            let ms = Duration::from_millis;
            let mut b = Backoff::new(ms(initial), ms(max), seed);
            let cap = ms(max.max(initial).max(1));
            for _ in 0..40 {
                prop_assert!(b.next_delay() <= cap);
            }
        }
    }
}
