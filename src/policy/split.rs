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
//! 1. every holder gets a floor, [`FLOOR_TOTAL`]` / H`, so an idle holder can serve at once;
//! 2. the rest is water-filled (max-min fair) over the holders' wants, a want being the demand
//!    plus [`HEADROOM`], so a shard below its share can grow before the next rebalance;
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
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::bucket::{TokenBucket, NEVER};
use crate::config::Rate;

/// Share of a limit reserved as floors, split evenly over the shards.
pub const FLOOR_TOTAL: f64 = 0.05;
/// A shard's want is its demand times this, so it can grow 20% before the next rebalance.
pub const HEADROOM: f64 = 1.2;
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

/// Where shards publish their demand per key. Shared by all shards (`Arc`); locked only by
/// [`LocalQuotas::rebalance`].
#[derive(Debug)]
pub struct QuotaBoard {
    shards: usize,
    inner: Mutex<BoardInner>,
}

#[derive(Debug, Default)]
struct BoardInner {
    /// Per key, one slot per shard.
    keys: HashMap<QuotaKey, Box<[Slot]>>,
    last_sweep: Option<Instant>,
}

/// One shard's published demand for one key.
#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    /// Smoothed tokens a second asked.
    demand: f64,
    /// When it was published; `None` = never (or withdrawn).
    at: Option<Instant>,
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

    fn lock(&self) -> std::sync::MutexGuard<'_, BoardInner> {
        // The board only holds demand figures: after a panic elsewhere they are at worst a
        // period stale, which the next rebalance corrects.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl BoardInner {
    /// Publishes `shard`'s demand for `key` and writes every shard's fresh demand into `out`
    /// (`None` for the shards not holding the key: never published, withdrawn or stale).
    fn publish(
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
    fn withdraw(&mut self, key: &QuotaKey, shard: usize) {
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
    fn sweep(&mut self, fresh: Fresh) {
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
struct Fresh {
    now: Instant,
    window: Duration,
}

impl Fresh {
    fn is(&self, s: &Slot) -> bool {
        s.at.is_some_and(|at| self.now.saturating_duration_since(at) <= self.window)
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

/// A shard's part of one limit: fractions of the rate and of the burst, each summing to 1
/// over the shards holding the key.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Share {
    /// Fraction of `per_s`: follows demand (see the module doc).
    pub rate: f64,
    /// Fraction of the burst: halfway between the rate share and an equal split, so a shard
    /// with little demand still absorbs a cluster of arrivals, and one idle shard can serve
    /// several requests at once, while the slices still sum to the burst.
    pub burst: f64,
}

impl Share {
    /// 1/`n` of everything (a key not rebalanced yet).
    fn equal(n: usize) -> Self {
        let s = 1.0 / n.max(1) as f64;
        Self { rate: s, burst: s }
    }
}

/// A shard's rate and burst for `share` of `limit`.
fn slice(limit: Rate, share: Share) -> (f64, f64) {
    (
        limit.per_s * share.rate,
        limit.effective_burst() * share.burst,
    )
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
        entry.share = share;
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

/// Shard `me`'s share given the demand (tokens/s) of every shard holding the key (`None`
/// for the others) for a limit of `per_s`: floors, then the rest water-filled over the wants,
/// then the remainder spread evenly (see the module doc). Every holder computing this over the
/// same demands gets shares summing to 1.
///
/// Shards not holding the key get nothing reserved: if they see it they start with 1/N on
/// their own, so a key used on one shard gets the whole limit there, not the limit minus
/// floors for shards that never see it.
pub fn share_of(me: usize, demands: &[Option<f64>], per_s: f64, scratch: &mut Vec<f64>) -> Share {
    let holders = demands.iter().filter(|d| d.is_some()).count().max(1) as f64;
    let rate = rate_share(me, demands, per_s, holders, scratch);
    Share {
        rate,
        burst: (rate + 1.0 / holders) / 2.0,
    }
}

/// The rate part of [`share_of`].
fn rate_share(
    me: usize,
    demands: &[Option<f64>],
    per_s: f64,
    holders: f64,
    scratch: &mut Vec<f64>,
) -> f64 {
    let floor = FLOOR_TOTAL / holders;
    let rest = 1.0 - FLOOR_TOTAL;
    // What each holder wants above its floor, as a fraction of the limit.
    let extra = |d: f64| (d * HEADROOM / per_s - floor).max(0.0);
    let mine = demands.get(me).copied().flatten().map_or(0.0, extra);
    scratch.clear();
    scratch.extend(demands.iter().flatten().map(|&d| extra(d)));
    let wanted: f64 = scratch.iter().sum();
    if wanted <= rest {
        return floor + mine + (rest - wanted) / holders;
    }
    floor + mine.min(water_level(scratch, rest))
}

/// The level `l` at which `Σ min(want, l) = total` (given `Σ want > total`). Sorts `wants`.
fn water_level(wants: &mut [f64], total: f64) -> f64 {
    wants.sort_by(f64::total_cmp);
    let mut left = total;
    let mut count = wants.len();
    for &want in wants.iter() {
        // Every remaining shard wants at least `want`: if the rest cannot give them all that
        // much, the level is an equal split of the rest.
        if want * count as f64 >= left {
            break;
        }
        left -= want;
        count -= 1;
    }
    if count == 0 {
        f64::INFINITY
    } else {
        left / count as f64
    }
}

#[cfg(test)]
mod tests;
