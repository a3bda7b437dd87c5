//! Connection admission per client IP: how many connections one address may hold open, and
//! how fast it may open new ones.
//!
//! This is the one policy state shared by all shards behind a lock: SO_REUSEPORT spreads one
//! address's connections over every shard, so a per-shard count could not hold a per-address
//! limit. It is touched twice per connection (accept and close), never per request or event,
//! and the map is split into stripes so shards rarely meet on the same lock. With both limits
//! off (the default) it is not touched at all.
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::bucket::TokenBucket;
use super::denial::{Denial, LimitName};
use crate::config::Rate;

const STRIPES: usize = 16;
/// Entries per stripe before idle ones (nothing open, bucket full) are swept.
const SWEEP_AT: usize = 4096;

#[derive(Debug)]
struct Entry {
    open: usize,
    bucket: Option<TokenBucket>,
}

/// Per-address connection counts and new-connection buckets.
#[derive(Debug)]
pub struct IpTable {
    stripes: Vec<Mutex<HashMap<IpAddr, Entry>>>,
    max_open: usize,
    rate: Rate,
}

/// A connection counted against its address; dropping it releases the count.
#[derive(Debug)]
pub struct IpPermit {
    table: Arc<IpTable>,
    ip: IpAddr,
}

impl Drop for IpPermit {
    fn drop(&mut self) {
        self.table.release(self.ip);
    }
}

impl IpTable {
    /// `None` when neither limit is set: admission then costs nothing.
    pub fn new(max_open: usize, rate: Rate) -> Option<Arc<Self>> {
        (max_open > 0 || rate.is_limited()).then(|| {
            Arc::new(Self {
                stripes: (0..STRIPES).map(|_| Mutex::new(HashMap::new())).collect(),
                max_open,
                rate,
            })
        })
    }

    fn stripe(&self, ip: &IpAddr) -> &Mutex<HashMap<IpAddr, Entry>> {
        let h = match ip {
            IpAddr::V4(v4) => u32::from(*v4) as usize,
            IpAddr::V6(v6) => (u128::from(*v6) ^ (u128::from(*v6) >> 64)) as usize,
        };
        &self.stripes[h.wrapping_mul(0x9E37_79B9) % STRIPES]
    }

    /// Admit one new connection from `ip`, or say which limit refuses it.
    pub fn admit(self: &Arc<Self>, ip: IpAddr, now: Instant) -> Result<IpPermit, Denial> {
        // A poisoned stripe only means another shard panicked mid-update; the counts are
        // still usable.
        let mut map = self.stripe(&ip).lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= SWEEP_AT {
            map.retain(|_, e| {
                e.open > 0
                    || e.bucket
                        .as_mut()
                        .is_some_and(|b| b.available(now) < b.burst())
            });
        }
        let entry = map.entry(ip).or_insert_with(|| Entry {
            open: 0,
            bucket: self
                .rate
                .is_limited()
                .then(|| TokenBucket::new(self.rate.per_s, self.rate.effective_burst(), now)),
        });
        if self.max_open > 0 && entry.open >= self.max_open {
            return Err(Denial::TooManyConnections {
                limit: self.max_open,
            });
        }
        if let Some(bucket) = &mut entry.bucket {
            if let Err(retry_after) = bucket.try_take(1.0, now) {
                return Err(Denial::RateLimited {
                    limit: LimitName::IpConnections,
                    rate: self.rate,
                    retry_after,
                });
            }
        }
        entry.open += 1;
        Ok(IpPermit {
            table: self.clone(),
            ip,
        })
    }

    fn release(&self, ip: IpAddr) {
        let mut map = self.stripe(&ip).lock().unwrap_or_else(|p| p.into_inner());
        if let Some(entry) = map.get_mut(&ip) {
            entry.open = entry.open.saturating_sub(1);
            if entry.open == 0 && entry.bucket.is_none() {
                map.remove(&ip);
            }
        }
    }

    /// Connections open from `ip`.
    #[cfg(test)]
    pub fn open(&self, ip: IpAddr) -> usize {
        let map = self.stripe(&ip).lock().unwrap_or_else(|p| p.into_inner());
        map.get(&ip).map_or(0, |e| e.open)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2));

    #[test]
    fn off_by_default() {
        assert!(IpTable::new(0, Rate::default()).is_none());
    }

    #[test]
    fn open_connections_are_counted_per_address_and_released_on_drop() {
        let table = IpTable::new(2, Rate::default()).unwrap();
        let now = Instant::now();
        let a1 = table.admit(A, now).unwrap();
        let _a2 = table.admit(A, now).unwrap();
        assert_eq!(
            table.admit(A, now).unwrap_err(),
            Denial::TooManyConnections { limit: 2 }
        );
        let _b = table.admit(B, now).unwrap();
        drop(a1);
        assert_eq!(table.open(A), 1);
        assert!(table.admit(A, now).is_ok());
    }

    #[test]
    fn new_connections_follow_the_bucket() {
        let table = IpTable::new(0, Rate::new(10.0, 2.0)).unwrap();
        let t0 = Instant::now();
        let _p = (table.admit(A, t0).unwrap(), table.admit(A, t0).unwrap());
        match table.admit(A, t0) {
            Err(Denial::RateLimited { retry_after, .. }) => {
                assert!(retry_after <= Duration::from_millis(100), "{retry_after:?}")
            }
            other => panic!("{other:?}"),
        }
        assert!(table.admit(A, t0 + Duration::from_millis(100)).is_ok());
    }
}
