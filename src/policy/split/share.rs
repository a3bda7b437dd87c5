//! The share rule: how one limit is divided between the shards that hold its key, from their
//! demand (pure; see the `split` module doc).
use crate::config::Rate;

/// Share of a limit reserved as floors, split evenly over the shards.
pub const FLOOR_TOTAL: f64 = 0.05;
/// A shard's want is its demand times this, so it can grow 20% before the next rebalance.
pub const HEADROOM: f64 = 1.2;

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
    pub(super) fn equal(n: usize) -> Self {
        let s = 1.0 / n.max(1) as f64;
        Self { rate: s, burst: s }
    }
}

/// A shard's rate and burst for `share` of `limit`.
pub(super) fn slice(limit: Rate, share: Share) -> (f64, f64) {
    (
        limit.per_s * share.rate,
        limit.effective_burst() * share.burst,
    )
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
