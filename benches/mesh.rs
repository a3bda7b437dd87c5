//! Ring hand-off between shards: the cost of passing one framed event through the mesh.
use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sluicegate::internals::broker::{FramedEvent, PartitionKey};
use sluicegate::internals::shard::{build_mesh, MeshMsg};

fn event(offset: u64) -> MeshMsg {
    MeshMsg::Event(FramedEvent {
        key: PartitionKey {
            topic: "bench".into(),
            partition: 0,
        },
        offset,
        frame: Bytes::from_static(b"id: x-1\ndata: hello\n\n"),
        id_len: 8,
        meta: Default::default(),
        wire: Default::default(),
    })
}

fn same_thread(c: &mut Criterion) {
    let mut g = c.benchmark_group("mesh");
    g.throughput(Throughput::Elements(64));
    let (mut eps, _) = build_mesh(2, 4096);
    let mut b = eps.pop().expect("two endpoints");
    let mut a = eps.pop().expect("two endpoints");
    let mut out = Vec::with_capacity(64);
    g.bench_function("send_and_drain_64_same_thread", |bench| {
        bench.iter(|| {
            for i in 0..64 {
                a.send(1, event(i));
            }
            a.ring_pending();
            b.drain_into(&mut out, 1024);
            black_box(out.drain(..).count())
        })
    });
    g.finish();
}

/// Two threads, as in the gateway: one producer shard, one consumer shard, spinning consumer
/// (measures the ring and the cache-line traffic, not the wake-up).
fn cross_thread(c: &mut Criterion) {
    let mut g = c.benchmark_group("mesh");
    const N: u64 = 100_000;
    g.throughput(Throughput::Elements(N));
    g.measurement_time(Duration::from_secs(5));
    g.bench_function("cross_thread_100k_events", |bench| {
        bench.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let (mut eps, _) = build_mesh(2, 4096);
                let mut b = eps.pop().expect("two endpoints");
                let mut a = eps.pop().expect("two endpoints");
                let consumer = std::thread::spawn(move || {
                    let mut got = 0u64;
                    let mut out = Vec::with_capacity(1024);
                    while got < N {
                        got += b.drain_into(&mut out, 1024) as u64;
                        out.clear();
                    }
                });
                let start = Instant::now();
                let mut sent = 0;
                while sent < N {
                    a.send(1, event(sent));
                    sent += 1;
                    if a.max_backlog() > 0 {
                        while a.flush_backlog() {
                            std::hint::spin_loop();
                        }
                    }
                }
                while a.flush_backlog() {
                    std::hint::spin_loop();
                }
                let _ = consumer.join();
                total += start.elapsed();
            }
            total
        })
    });
    g.finish();
}

criterion_group!(benches, same_thread, cross_thread);
criterion_main!(benches);
