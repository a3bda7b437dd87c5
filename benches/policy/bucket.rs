//! Token buckets on the hot path: one local bucket, and a limit split across shards.
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::Criterion;
use sluicegate::config::Rate;
use sluicegate::internals::policy::{LocalQuotas, QuotaBoard, QuotaKey, QuotaKind, TokenBucket};

/// `bucket_check`: `TokenBucket::try_take` on a bucket that always admits (1 µs of refill
/// per call at 10M/s covers the unit cost), so every call takes the refill path.
fn bucket_check(c: &mut Criterion) {
    let t0 = Instant::now();
    let mut bucket = TokenBucket::new(1e7, 1e7, t0);
    let mut now = t0;
    c.bench_function("bucket_check", |b| {
        b.iter(|| {
            now += Duration::from_micros(1);
            black_box(bucket.try_take(black_box(1.0), now))
        })
    });
}

/// `split_check`: `LocalQuotas::check` on a warm key of a shard tracking 1000 keys out of 4
/// shards, limit high enough to admit.
fn split_check(c: &mut Criterion) {
    let t0 = Instant::now();
    let limit = Rate::new(1e9, 1e9);
    let board = Arc::new(QuotaBoard::new(4));
    let mut quotas = LocalQuotas::new(0, board, 4096);
    for i in 0..1000 {
        let key = QuotaKey::new(QuotaKind::PrincipalEvents, format!("principal-{i}"));
        let _ = quotas.check(&key, limit, 1.0, t0);
    }
    quotas.rebalance(t0 + Duration::from_millis(100));
    let key = QuotaKey::new(QuotaKind::PrincipalEvents, "principal-500");
    let mut now = t0 + Duration::from_millis(100);
    c.bench_function("split_check", |b| {
        b.iter(|| {
            now += Duration::from_micros(1);
            black_box(quotas.check(black_box(&key), limit, black_box(1.0), now))
        })
    });
}

/// The bucket benches, called from `main.rs`.
pub fn benches(c: &mut Criterion) {
    bucket_check(c);
    split_check(c);
}
