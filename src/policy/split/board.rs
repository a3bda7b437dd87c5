//! The board where shards publish their demand for each limit that holds across shards, and
//! read each other's: the only shared state of the split, locked once per rebalance.
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::QuotaKey;

/// Where shards publish their demand per key. Shared by all shards (`Arc`); locked only by
/// [`LocalQuotas::rebalance`].
#[derive(Debug)]
pub struct QuotaBoard {
    shards: usize,
    inner: Mutex<BoardInner>,
}

#[derive(Debug, Default)]
pub(super) struct BoardInner {
    /// Per key, one slot per shard.
    keys: HashMap<QuotaKey, Box<[Slot]>>,
    last_sweep: Option<Instant>,
}

/// One shard's published demand for one key.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Slot {
    /// Smoothed tokens a second asked.
    pub(super) demand: f64,
    /// When it was published; `None` = never (or withdrawn).
    pub(super) at: Option<Instant>,
}

impl QuotaBoard {
    /// A board for `shards` shards (at least 1).
    pub fn new(shards: usize) -> Self {
        Self {
            shards: shards.max(1),
            inner: Mutex::new(BoardInner::default()),
        }
    }

    /// How many shards share it.
    pub fn shards(&self) -> usize {
        self.shards
    }

    /// Keys on the board (for tests and metrics; takes the lock).
    pub fn len(&self) -> usize {
        self.lock().keys.len()
    }

    /// Whether no key is on the board.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, BoardInner> {
        // The board only holds demand figures: after a panic elsewhere they are at worst a
        // period stale, which the next rebalance corrects.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl BoardInner {
    /// Publishes `shard`'s demand for `key` and writes every shard's fresh demand into `out`
    /// (`None` for the shards not holding the key: never published, withdrawn or stale).
    pub(super) fn publish(
        &mut self,
        key: &QuotaKey,
        me: Slot,
        shard: usize,
        fresh: Fresh,
        out: &mut [Option<f64>],
    ) {
        let slots = self
            .keys
            .entry(key.clone())
            .or_insert_with(|| vec![Slot::default(); out.len()].into_boxed_slice());
        if let Some(slot) = slots.get_mut(shard) {
            *slot = me;
        }
        for (o, s) in out.iter_mut().zip(slots.iter()) {
            *o = fresh.is(s).then_some(s.demand);
        }
    }

    /// Removes `shard`'s demand for `key`, and the key once no shard has any.
    pub(super) fn withdraw(&mut self, key: &QuotaKey, shard: usize) {
        let Some(slots) = self.keys.get_mut(key) else {
            return;
        };
        if let Some(slot) = slots.get_mut(shard) {
            *slot = Slot::default();
        }
        if slots.iter().all(|s| s.at.is_none()) {
            self.keys.remove(key);
        }
    }

    /// Drops the keys no shard has published lately (evicted ones are never withdrawn, since
    /// eviction happens in `check`, which does not lock). At most once per stale window.
    pub(super) fn sweep(&mut self, fresh: Fresh) {
        let due = self
            .last_sweep
            .is_none_or(|t| fresh.now.saturating_duration_since(t) >= fresh.window);
        if due {
            self.keys
                .retain(|_, slots| slots.iter().any(|s| fresh.is(s)));
            self.last_sweep = Some(fresh.now);
        }
    }
}

/// What counts as fresh on the board at one rebalance.
#[derive(Debug, Clone, Copy)]
pub(super) struct Fresh {
    pub(super) now: Instant,
    pub(super) window: Duration,
}

impl Fresh {
    pub(super) fn is(&self, s: &Slot) -> bool {
        s.at.is_some_and(|at| self.now.saturating_duration_since(at) <= self.window)
    }
}
