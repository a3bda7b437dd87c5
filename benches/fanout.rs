//! Fan-out of one framed event to 1k in-memory subscribers on one shard, and the gathered
//! write of their queues (to a sink, so only the gateway's own work is measured); once more
//! with egress limits configured on every subscriber but never reached, the policy's cost on
//! the delivery path.
use std::collections::HashMap;
use std::hint::black_box;
use std::rc::Rc;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sluicegate::config::{LimitsConfig, Rate};
use sluicegate::internals::broker::History;
use sluicegate::internals::broker::{FramedEvent, PartitionKey};
use sluicegate::internals::delivery::Registry;
use sluicegate::internals::delivery::Writer;
use sluicegate::internals::delivery::SSE;
use sluicegate::internals::delivery::{Subscriber, SubscriptionSpec};
use sluicegate::internals::policy::EgressLimiter;

const SUBSCRIBERS: usize = 1000;

fn key() -> PartitionKey {
    PartitionKey {
        topic: "bench".into(),
        partition: 0,
    }
}

/// Egress limits no benchmark comes near: every event passes both buckets.
fn generous_limits() -> LimitsConfig {
    LimitsConfig {
        egress_events: Rate::new(1e12, 1e12),
        egress_bytes: Rate::new(1e15, 1e15),
        ..LimitsConfig::default()
    }
}

fn registry(composite: bool, egress: bool) -> Registry {
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
        let now = std::time::Instant::now();
        if egress {
            sub.set_egress(EgressLimiter::from_config(&generous_limits(), now));
        }
        sub.refill(&histories, 1, now); // no history: goes live at once
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
        wire: Default::default(),
    })
}

fn fanout(c: &mut Criterion) {
    let mut g = c.benchmark_group("fanout_1k");
    g.throughput(Throughput::Elements(SUBSCRIBERS as u64));
    for (composite, egress) in [(false, false), (true, false), (false, true)] {
        let name = match (composite, egress) {
            (true, _) => "offer_and_write_multi_topic",
            (false, false) => "offer_and_write_single_topic",
            (false, true) => "offer_and_write_single_topic_egress_limited",
        };
        let reg = registry(composite, egress);
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
