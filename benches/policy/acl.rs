//! ACL matching: one topic against 100 patterns (literal, `*`, `**`, `{sub}`), when the last
//! pattern matches and when none does: the worst cases of a linear scan.
use criterion::{black_box, Criterion};
use sluicegate::internals::policy::Acl;

/// 100 patterns, a quarter of each kind; the last is `tenant.{sub}.events.**`.
fn patterns() -> Vec<String> {
    let mut out = Vec::with_capacity(100);
    for i in 0..99 {
        out.push(match i % 4 {
            0 => format!("orders.region{i}.created"),
            1 => format!("orders.*.shard{i}"),
            2 => format!("audit{i}.**"),
            _ => format!("user.{{sub}}.inbox{i}"),
        });
    }
    out.push("tenant.{sub}.events.**".to_owned());
    out
}

/// Registered from `benches/policy/main.rs`.
pub fn benches(c: &mut Criterion) {
    let acl = match Acl::parse(&patterns()) {
        Ok(acl) => acl,
        Err(e) => panic!("bench patterns: {e}"),
    };
    let last = "tenant.alice.events.eu.orders";
    let none = "payments.eu.settled.v2";
    assert!(acl.allows(last, Some("alice")));
    assert!(!acl.allows(none, Some("alice")));

    let mut group = c.benchmark_group("acl_match_100_patterns");
    group.bench_function("last_matches", |b| {
        b.iter(|| acl.allows(black_box(last), black_box(Some("alice"))))
    });
    group.bench_function("none_matches", |b| {
        b.iter(|| acl.allows(black_box(none), black_box(Some("alice"))))
    });
    group.finish();
}
