//! STUB (replaced by the helper's module at merge).
#![allow(dead_code)]
use super::bucket::TokenBucket;
use crate::config::Rate;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QuotaKind {
    PrincipalEvents,
    PrincipalBytes,
    TopicEvents,
    TopicBytes,
}
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct QuotaKey {
    pub kind: QuotaKind,
    pub name: Arc<str>,
}
pub struct QuotaBoard {
    shards: usize,
}
impl QuotaBoard {
    pub fn new(shards: usize) -> Self {
        Self { shards }
    }
}
pub struct LocalQuotas {
    board: Arc<QuotaBoard>,
    buckets: HashMap<QuotaKey, TokenBucket>,
}
impl LocalQuotas {
    pub fn new(_shard: usize, board: Arc<QuotaBoard>, _max: usize) -> Self {
        Self {
            board,
            buckets: HashMap::new(),
        }
    }
    pub fn check(
        &mut self,
        key: &QuotaKey,
        limit: Rate,
        cost: f64,
        now: Instant,
    ) -> Result<(), Duration> {
        let n = self.board.shards as f64;
        self.buckets
            .entry(key.clone())
            .or_insert_with(|| TokenBucket::new(limit.per_s / n, limit.effective_burst() / n, now))
            .try_take(cost, now)
    }
    pub fn rebalance(&mut self, _now: Instant) {}
}
