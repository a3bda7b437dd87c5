//! The idempotency keys recently seen in one partition, so its owner shard can drop a record
//! that repeats one: a publisher's retry after an unknown outcome (504), or rskafka's own
//! resend of a produce whose connection broke. Pure: no runtime, no clock.

use std::collections::{HashMap, VecDeque};

use bytes::Bytes;

/// A bounded window of `(key, offset)`: the newest `capacity` keys of a partition, each with
/// the offset of its first copy. Oldest keys are forgotten first.
#[derive(Debug, Default)]
pub struct RecentIds {
    capacity: usize,
    order: VecDeque<Bytes>,
    first: HashMap<Bytes, i64>,
}

impl RecentIds {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            order: VecDeque::new(),
            first: HashMap::new(),
        }
    }

    /// Note that the record at `offset` carries `id`. Returns the offset of the first copy when
    /// it is a repeat of a key still in the window (the same record seen again is not a
    /// repeat). A repeat does not refresh its key's place, so the window stays bounded by the
    /// distinct keys it was given.
    pub fn repeat_of(&mut self, id: &Bytes, offset: i64) -> Option<i64> {
        if self.capacity == 0 {
            return None;
        }
        if let Some(&first) = self.first.get(id) {
            return (first != offset).then_some(first);
        }
        if self.order.len() >= self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.first.remove(&old);
            }
        }
        self.order.push_back(id.clone());
        self.first.insert(id.clone(), offset);
        None
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.order.len()
    }

    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn a_repeat_names_the_first_copy_and_the_same_record_is_not_a_repeat() {
        let mut w = RecentIds::new(8);
        assert_eq!(w.repeat_of(&b("a"), 3), None);
        assert_eq!(w.repeat_of(&b("b"), 4), None);
        assert_eq!(w.repeat_of(&b("a"), 9), Some(3));
        assert_eq!(
            w.repeat_of(&b("a"), 3),
            None,
            "offset 3 is the first copy itself"
        );
        assert_eq!(w.len(), 2);
    }

    #[test]
    fn the_oldest_key_is_forgotten_first() {
        let mut w = RecentIds::new(2);
        w.repeat_of(&b("a"), 0);
        w.repeat_of(&b("b"), 1);
        w.repeat_of(&b("c"), 2);
        assert_eq!(w.len(), 2);
        assert_eq!(w.repeat_of(&b("a"), 5), None, "a was forgotten");
        assert_eq!(w.repeat_of(&b("c"), 6), Some(2));
    }

    #[test]
    fn capacity_zero_is_off() {
        let mut w = RecentIds::new(0);
        w.repeat_of(&b("a"), 0);
        assert_eq!(w.repeat_of(&b("a"), 1), None);
        assert!(w.is_empty());
    }
}
