//! Policy costs on the hot path: a token-bucket check, an ACL match against 100 patterns, JWT
//! verification (HS256, ES256). `cargo bench --bench policy`.
use criterion::{criterion_group, criterion_main};

mod acl;
mod bucket;
mod jwt;

criterion_group!(policy, bucket::benches, acl::benches, jwt::benches);
criterion_main!(policy);
