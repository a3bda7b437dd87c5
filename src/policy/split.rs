//! Limits that hold across shards: per-shard token buckets, shares rebalanced from demand.
//!
//! Each shard keeps a local token bucket per key with a share of the global limit, and
//! rebalances the shares from demand every `rebalance_ms`.
//!
//! # The share rule
//! Each shard measures, per key, the tokens asked in the last period (admitted or refused),
//! capped at the whole limit, and smooths them: a rise counts at once (a shard that starts
//! being asked gets capacity at its next rebalance), a fall decays by half a period (one
//! quiet period does not give the capacity away). On rebalance it publishes that demand to
//! the [`QuotaBoard`], reads the other shards' and computes its [`Share`] with a rule every
//! shard applies the same way over the shards holding the key (H of them):
//!
//! 1. every holder gets a floor, [`share::FLOOR_TOTAL`]` / H`, so an idle holder can serve at once;
//! 2. the rest is water-filled (max-min fair) over the holders' wants, a want being the demand
//!    plus [`share::HEADROOM`], so a shard below its share can grow before the next rebalance;
//! 3. whatever no holder wants is spread evenly;
//! 4. the burst is shared halfway between that rate share and 1/H (see [`Share::burst`]).
//!
//! Rate and burst shares each sum to 1, so over any window the shards admit at most
//! `burst + per_s × t` once every holder has rebalanced over the same demands. Shards not
//! holding a key get nothing reserved: a key used on one shard gets the whole limit there.
//! The costs, measured by the simulation test below: a key new to a shard starts at 1/N
//! until that shard's first rebalance (too little for a busy shard, or more than the total
//! while another shard holds it all); shards rebalance at their own phases, so snapshots are
//! up to a period apart while demand moves; and when demand moves, the old shard's smoothed
//! demand takes a few periods to decay.
//!
//! `check` (per request) touches only this shard's map; the board's mutex is taken once per
//! rebalance.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::bucket::{TokenBucket, NEVER};
use crate::config::Rate;

mod board;
mod share;

pub use board::QuotaBoard;
use board::{BoardInner, Fresh, Slot};
use share::slice;
pub use share::{share_of, Share};
#[cfg(test)]
use share::{FLOOR_TOTAL, HEADROOM};

/// Weight of the last period when the demand falls (exponential decay, half per period).
const DECAY: f64 = 0.5;
/// A smoothed demand below this fraction of the limit counts as none.
const NO_DEMAND: f64 = 1e-3;
/// Rebalances without demand (and a full bucket) after which a key is forgotten.
const FORGET_AFTER: u32 = 10;
/// A shard's demand on the board older than this many of its periods (and at least
/// [`MIN_STALE`]) counts as none: the shard evicted the key or stopped rebalancing.
const STALE_PERIODS: u32 = 10;
const MIN_STALE: Duration = Duration::from_secs(1);
/// Entries looked at to pick one to evict when the map is full.
const EVICTION_SAMPLE: usize = 8;

/// What a limit that holds across shards counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QuotaKind {
    /// Events a principal publishes.
    PrincipalEvents,
    /// Bytes of event data a principal publishes.
    PrincipalBytes,
    /// Events a topic receives.
    TopicEvents,
    /// Bytes of event data a topic receives.
    TopicBytes,
}

/// One limited thing: a principal's (or anonymous client IP's) events or bytes, or a topic's.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct QuotaKey {
    /// What is counted.
    pub kind: QuotaKind,
    /// The principal's name, the client IP, or the topic.
    pub name: Arc<str>,
}

impl QuotaKey {
    /// The key for `kind` of `name`.
    pub fn new(kind: QuotaKind, name: impl Into<Arc<str>>) -> Self {
        Self {
            kind,
            name: name.into(),
        }
    }
}

/// One shard's view of the limits that hold across shards: a bucket per key holding this
/// shard's share. Not shared: one per shard, used from that shard's thread only.
#[derive(Debug)]
pub struct LocalQuotas {
    shard: usize,
    board: Arc<QuotaBoard>,
    max_keys: usize,
    /// Key -> position in `entries` (a dense vector, so eviction can sample by position).
    index: HashMap<QuotaKey, usize>,
    entries: Vec<Entry>,
    /// Where the next eviction sample starts (a clock sweep over `entries`).
    cursor: usize,
    last_rebalance: Option<Instant>,
    /// Last measured rebalance period.
    period: Duration,
    /// Per-shard demands and wants of the key being rebalanced (reused, no allocation).
    demands: Vec<Option<f64>>,
    scratch: Vec<f64>,
}

#[derive(Debug)]
struct Entry {
    key: QuotaKey,
    limit: Rate,
    share: Share,
    bucket: TokenBucket,
    /// Tokens asked since the last rebalance, admitted or refused.
    asked: f64,
    /// Smoothed tokens a second asked.
    demand: f64,
    /// Rebalances in a row with nothing asked.
    idle: u32,
    /// When the entry was made (the first period's start if before any rebalance).
    since: Instant,
    /// Rebalanced at least once. On its first rebalance a key keeps no more than its equal
    /// share: the other shards that saw it at the same time may not have published their
    /// demand yet, and taking the whole limit then overshot it (measured: ~100 events over
    /// burst + rate in the first second of a 2,000/s limit seen by two shards).
    rebalanced: bool,
}

impl Entry {
    /// Sets the bucket to this shard's share of the limit.
    fn apply(&mut self, now: Instant) {
        let (rate, burst) = slice(self.limit, self.share);
        self.bucket.set_limit(rate, burst, now);
    }

    /// Folds the last period's asks into the smoothed demand.
    fn measure(&mut self, window: Duration) {
        let asked_per_s = self.asked / window.as_secs_f64().max(1e-3);
        self.demand = if asked_per_s >= self.demand {
            asked_per_s
        } else {
            DECAY * asked_per_s + (1.0 - DECAY) * self.demand
        };
        // Demand past the whole limit says nothing more about how to share it, and capping
        // it makes a shard that stops being asked give its share back in a few periods.
        self.demand = self.demand.min(self.limit.per_s);
        if self.demand < NO_DEMAND * self.limit.per_s {
            self.demand = 0.0;
        }
        self.idle = if self.asked > 0.0 { 0 } else { self.idle + 1 };
        self.asked = 0.0;
    }
}

impl LocalQuotas {
    /// Shard `shard`'s quotas, publishing to `board`, tracking at most `max_keys` keys (at
    /// least 1; past that a new key evicts the least busy of a few sampled).
    pub fn new(shard: usize, board: Arc<QuotaBoard>, max_keys: usize) -> Self {
        let shards = board.shards();
        Self {
            shard: shard.min(shards - 1),
            board,
            max_keys: max_keys.max(1),
            index: HashMap::new(),
            entries: Vec::new(),
            cursor: 0,
            last_rebalance: None,
            period: Duration::ZERO,
            demands: vec![None; shards],
            scratch: Vec::with_capacity(shards),
        }
    }

    /// Charges `cost` against `key`'s `limit` at `now`. `Err(wait)` = refused, retry after
    /// `wait` (a hint: the share may grow at the next rebalance).
    ///
    /// An unlimited `limit` passes untracked. A cost above the whole limit's burst can never
    /// pass: `Err(`[`NEVER`]`)` (the engine answers 413). A cost that fits the limit but not
    /// this shard's slice passes once the slice is full, leaving a debt. A key never seen
    /// starts with 1/N of the limit until the next rebalance; a changed `limit` (config
    /// reload) applies at once, under the current share.
    pub fn check(
        &mut self,
        key: &QuotaKey,
        limit: Rate,
        cost: f64,
        now: Instant,
    ) -> Result<(), Duration> {
        if !limit.is_limited() {
            return Ok(());
        }
        if cost > limit.effective_burst() {
            return Err(NEVER);
        }
        let at = match self.index.get(key) {
            Some(&at) => at,
            None => self.insert(key, limit, now),
        };
        let entry = &mut self.entries[at];
        if entry.limit != limit {
            entry.limit = limit;
            entry.apply(now);
        }
        entry.asked += cost.max(0.0);
        entry.bucket.try_take_overdraft(cost, now)
    }

    /// Publishes this shard's demand, recomputes its shares, and forgets keys idle for
    /// [`FORGET_AFTER`] rebalances with a full bucket (withdrawing them from the board, and
    /// sweeping keys no shard published lately). Call it from the shard's timer every
    /// `rebalance_ms`, never per request: it locks the board once and walks every key.
    pub fn rebalance(&mut self, now: Instant) {
        if let Some(last) = self.last_rebalance {
            self.period = now.saturating_duration_since(last);
        }
        let fresh = Fresh {
            now,
            window: (self.period * STALE_PERIODS).max(MIN_STALE),
        };
        let board = Arc::clone(&self.board);
        let mut inner = board.lock();
        let mut at = 0;
        while at < self.entries.len() {
            if self.rebalance_entry(at, &mut inner, fresh) {
                at += 1;
            } else {
                inner.withdraw(&self.entries[at].key, self.shard);
                self.remove(at);
            }
        }
        inner.sweep(fresh);
        drop(inner);
        self.last_rebalance = Some(now);
    }

    /// Keys tracked on this shard.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no key is tracked.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// This shard's share of `key`'s limit, if tracked (for tests and metrics).
    pub fn share(&self, key: &QuotaKey) -> Option<Share> {
        self.index.get(key).map(|&at| self.entries[at].share)
    }

    /// Measures, publishes and reshares one entry; false when it should be forgotten.
    fn rebalance_entry(&mut self, at: usize, board: &mut BoardInner, fresh: Fresh) -> bool {
        let window = match self.last_rebalance {
            Some(last) => fresh.now.saturating_duration_since(last),
            None => fresh.now.saturating_duration_since(self.entries[at].since),
        };
        let entry = &mut self.entries[at];
        entry.measure(window);
        if entry.idle >= FORGET_AFTER && entry.demand == 0.0 && entry.bucket.is_full(fresh.now) {
            return false;
        }
        let me = Slot {
            demand: entry.demand,
            at: Some(fresh.now),
        };
        board.publish(&entry.key, me, self.shard, fresh, &mut self.demands);
        let share = share_of(
            self.shard,
            &self.demands,
            entry.limit.per_s,
            &mut self.scratch,
        );
        entry.share = if entry.rebalanced {
            share
        } else {
            entry.rebalanced = true;
            Share {
                rate: share.rate.min(entry.share.rate),
                burst: share.burst.min(entry.share.burst),
            }
        };
        entry.apply(fresh.now);
        true
    }

    /// Starts tracking `key` with an equal share; returns its position.
    fn insert(&mut self, key: &QuotaKey, limit: Rate, now: Instant) -> usize {
        if self.entries.len() >= self.max_keys {
            self.evict(now);
        }
        let share = Share::equal(self.board.shards());
        let (rate, burst) = slice(limit, share);
        self.entries.push(Entry {
            key: key.clone(),
            limit,
            share,
            bucket: TokenBucket::new(rate, burst, now),
            asked: 0.0,
            demand: 0.0,
            idle: 0,
            since: now,
            rebalanced: false,
        });
        let at = self.entries.len() - 1;
        self.index.insert(key.clone(), at);
        at
    }

    /// Drops one entry: the first of a few sampled that has a full bucket and nothing asked
    /// this period (safe to forget), else the least demanded of them. Forgetting a busy key
    /// lets it come back with a fresh slice: an overshoot of at most one slice per eviction,
    /// the price of bounded memory under key churn. Its board slot goes stale and is swept.
    fn evict(&mut self, now: Instant) {
        let len = self.entries.len();
        if len == 0 {
            return;
        }
        let mut victim = self.cursor % len;
        let mut least = f64::INFINITY;
        for step in 0..EVICTION_SAMPLE.min(len) {
            let at = (self.cursor + step) % len;
            let e = &mut self.entries[at];
            if e.asked == 0.0 && e.bucket.is_full(now) {
                victim = at;
                break;
            }
            let busy = e.demand + e.asked;
            if busy < least {
                least = busy;
                victim = at;
            }
        }
        self.cursor = (self.cursor + EVICTION_SAMPLE) % len;
        self.remove(victim);
    }

    /// Removes the entry at `at`, moving the last one into its place.
    fn remove(&mut self, at: usize) {
        let gone = self.entries.swap_remove(at);
        self.index.remove(&gone.key);
        if let Some(moved) = self.entries.get(at) {
            if let Some(pos) = self.index.get_mut(&moved.key) {
                *pos = at;
            }
        }
    }
}

#[cfg(test)]
mod tests;
