//! Per-key ordering within a partition (pure): several deliveries of one partition in flight
//! at once as long as no two share a key, and the cursor a restart may resume from (the
//! lowest offset not yet done with).
use std::collections::BTreeMap;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// What a subscription keeps in order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Ordering {
    /// Every event of a partition after the one before it is done (one request in flight per
    /// partition).
    #[default]
    Partition,
    /// Events with the same key in order (events without a key are one key); different keys
    /// in flight side by side.
    Key,
}

/// The deliveries of one partition in flight.
#[derive(Debug)]
pub struct KeyWindow {
    /// Offset -> key of each delivery started and not finished.
    in_flight: BTreeMap<u64, Option<Bytes>>,
    max: usize,
}

impl KeyWindow {
    pub fn new(max: usize) -> Self {
        Self {
            in_flight: BTreeMap::new(),
            max: max.max(1),
        }
    }

    /// May an event with `key` start now (room, and no delivery of its key in flight)?
    pub fn can_start(&self, key: Option<&Bytes>) -> bool {
        self.in_flight.len() < self.max && !self.in_flight.values().any(|k| k.as_ref() == key)
    }

    pub fn start(&mut self, offset: u64, key: Option<Bytes>) {
        self.in_flight.insert(offset, key);
    }

    pub fn finish(&mut self, offset: u64) {
        self.in_flight.remove(&offset);
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.in_flight.is_empty()
    }

    /// Where a restart resumes: the oldest delivery in flight, or `read_next` (everything
    /// read was done with; events are started in offset order).
    pub fn cursor(&self, read_next: u64) -> u64 {
        self.in_flight.keys().next().copied().unwrap_or(read_next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn k(s: &'static str) -> Option<Bytes> {
        Some(Bytes::from_static(s.as_bytes()))
    }

    #[test]
    fn one_delivery_per_key_and_the_cursor_waits_for_the_oldest() {
        let mut w = KeyWindow::new(3);
        assert!(w.can_start(k("a").as_ref()));
        w.start(10, k("a"));
        assert!(!w.can_start(k("a").as_ref()), "same key waits");
        assert!(w.can_start(k("b").as_ref()));
        w.start(11, k("b"));
        w.start(12, None);
        assert!(!w.can_start(k("c").as_ref()), "window full");
        assert_eq!(w.cursor(13), 10);
        w.finish(11);
        assert_eq!(w.cursor(13), 10, "the oldest is still owed");
        w.finish(10);
        assert_eq!(w.cursor(13), 12);
        w.finish(12);
        assert_eq!(w.cursor(13), 13);
        assert!(w.is_empty());
    }

    proptest! {
        /// Driving the window like a lane (start in offset order when allowed, finish in any
        /// order): the cursor never passes an unfinished delivery, never goes back, and two
        /// deliveries of one key are never in flight together.
        #[test]
        fn the_cursor_never_passes_an_unfinished_delivery(
            keys in proptest::collection::vec(0u8..4, 1..60),
            picks in proptest::collection::vec(any::<u16>(), 1..200),
            max in 1usize..6,
        ) {
            let mut w = KeyWindow::new(max);
            let mut next = 0usize;
            let mut done = vec![false; keys.len()];
            let mut last_cursor = 0u64;
            for pick in picks {
                let key = Some(Bytes::from(vec![keys.get(next).copied().unwrap_or(0)]));
                if next < keys.len() && w.can_start(key.as_ref()) && pick % 2 == 0 {
                    w.start(next as u64, key);
                    next += 1;
                } else if !w.is_empty() {
                    let in_flight: Vec<u64> = w.in_flight.keys().copied().collect();
                    let o = in_flight[pick as usize % in_flight.len()];
                    w.finish(o);
                    done[o as usize] = true;
                }
                let mut seen = std::collections::HashSet::new();
                for key in w.in_flight.values() {
                    prop_assert!(seen.insert(key.clone()), "one key twice in flight");
                }
                let cursor = w.cursor(next as u64);
                prop_assert!(cursor >= last_cursor);
                prop_assert!(done[..cursor as usize].iter().all(|&d| d));
                last_cursor = cursor;
            }
        }
    }
}
