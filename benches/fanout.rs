//! Fan-out of one framed event to 1k in-memory subscribers on one shard, and the gathered
//! write of their queues (to a sink, so only the gateway's own work is measured).
use std::collections::HashMap;
use std::hint::black_box;
use std::rc::Rc;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sluicegate::internals::broker::History;
use sluicegate::internals::broker::{FramedEvent, PartitionKey};
use sluicegate::internals::delivery::Registry;
use sluicegate::internals::delivery::Writer;
use sluicegate::internals::delivery::SSE;
use sluicegate::internals::delivery::{Subscriber, SubscriptionSpec};

const SUBSCRIBERS: usize = 1000;

fn key() -> PartitionKey {
    PartitionKey {
        topic: "bench".into(),
        partition: 0,
    }
}

fn registry(composite: bool) -> Registry {
    let mut reg = Registry::default();
    let histories: HashMap<PartitionKey, History> = HashMap::new();
    for _ in 0..SUBSCRIBERS {
        let id = reg.next_id();
        let mut parts = vec![key()];
        if composite {
            parts.push(PartitionKey {
                topic: "other".into(),
                partition: 0,
            });
        }
        let sub = Rc::new(Subscriber::new(
            id,
            SubscriptionSpec::live(parts),
            7,
            usize::MAX,
            &SSE,
        ));
        sub.refill(&histories, 1, std::time::Instant::now()); // no history: goes live at once
        reg.add(sub);
    }
    reg
}

fn event(offset: u64) -> Rc<FramedEvent> {
    let frame = format!("id: 7-{}\ndata: {}\n\n", offset + 1, "x".repeat(100));
    let id_len = frame.find('\n').map_or(0, |i| i + 1);
    Rc::new(FramedEvent {
        key: key(),
        offset,
        frame: Bytes::from(frame),
        id_len,
        meta: Default::default(),
    })
}

fn fanout(c: &mut Criterion) {
    let mut g = c.benchmark_group("fanout_1k");
    g.throughput(Throughput::Elements(SUBSCRIBERS as u64));
    for composite in [false, true] {
        let name = if composite {
            "offer_and_write_multi_topic"
        } else {
            "offer_and_write_single_topic"
        };
        let reg = registry(composite);
        // No sockets attached: nothing is scheduled, the loop below writes every queue.
        let writer = Writer::default();
        let mut offset = 0;
        g.bench_function(name, |b| {
            b.iter(|| {
                let ev = event(offset);
                offset += 1;
                black_box(reg.deliver(&ev, &writer));
                let mut bytes = 0;
                for sub in reg.subscribers() {
                    let _ = sub.write_with(256, |slices| {
                        let n: usize = slices.iter().map(|s| s.len()).sum();
                        bytes += n;
                        Ok::<usize, ()>(n)
                    });
                }
                black_box(bytes)
            })
        });
    }
    g.finish();
}

criterion_group!(benches, fanout);
criterion_main!(benches);
