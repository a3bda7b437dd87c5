//! placeholder
pub fn benches(_c: &mut criterion::Criterion) {}
